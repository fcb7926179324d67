/**
 * A Job seen finished before its Pod's report. The operator watches Jobs and Pods through
 * separate watches, so it can see a Job's `Complete` while its cache still shows the Pod
 * running, without the termination message that carries the result. Recording at that moment
 * called a good backup "succeeded but left no readable result" (counted as a failure: the
 * flaky `openbao_backup_success_total` of the `* * * * *` test), and would call a restore
 * that rewound OpenBao `Failed`.
 *
 * Here the job runner writes each Pod's terminated status 4 s after the Job's final status
 * (`podReportDelayMs`), so every Job is seen finished long before its result: the backup must
 * still be recorded as the success it was, counted once, and the restore must be `Completed`
 * with the data back on every member. Real executor, OpenBao, MinIO and kube-apiserver.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Label } from "../../src/api/constants.ts";
import { type JobRunner, printJobRunnerOnFailure, startJobRunner } from "../servers/job-runner.ts";
import { superviseServers } from "../servers/process.ts";
import { namespace, type RestoreStack, startRestoreStack } from "./restore-stack.ts";

superviseServers();
printJobRunnerOnFailure();

const cluster = "late";
const reportDelayMs = 4000;

/** The value of one sample of `metric` with these labels; 0 when absent. */
function sample(metrics: string, metric: string, labels: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${metric}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("a Job seen finished before its Pod's report is recorded by its result", () => {
  let stack: RestoreStack;
  let runner: JobRunner;
  before(async () => {
    stack = await startRestoreStack([cluster], { foreignRunClusters: [cluster] });
    runner = await startJobRunner({
      kubeConfig: stack.kube.kubeConfig,
      namespace,
      labelSelector: `${Label.Cluster}=${cluster}`,
      podReportDelayMs: reportDelayMs,
    });
  });
  after(async () => {
    await runner?.stop();
    await stack?.stop();
  });

  test("backup: a success, counted once; restore: Completed, every secret back on every member", async () => {
    await stack.createCluster(cluster, "s3");
    await stack.bao.writeSecret("late/s", { value: "before" });

    const key = await stack.backup(cluster, "first");
    const backup = (await stack.getCluster(cluster)).status?.backup;
    const job = backup?.lastRecordedJob ?? "";
    const run = await runner.waitForRun(job);
    assert.equal(run.outcome, "Complete", run.notes.join("\n"));
    assert.ok(
      run.notes.some((n) => n.includes("Pod report delayed")),
      `the fault was injected: ${run.notes.join("; ")}`,
    );
    const reported = JSON.parse(run.terminationMessage) as { key: string; sha256: string };
    assert.equal(key, reported.key);
    assert.equal(backup?.lastBackupSHA256, reported.sha256);
    assert.equal(backup?.consecutiveFailures ?? 0, 0);
    assert.ok(await stack.targets.s3.get(key), `${key} stored`);
    const labels = `namespace="${namespace}",cluster="${cluster}",type="manual"`;
    const metrics = await stack.metrics();
    assert.equal(sample(metrics, "openbao_backup_success_total", labels), 1, "the success counted once");
    assert.equal(sample(metrics, "openbao_backup_failure_total", labels), 0, "and never as a failure");
    const reasons = (await stack.eventsOf(cluster)).map((e) => e.reason);
    assert.ok(!reasons.includes("BackupFailed"), `no failure event: ${reasons.join(", ")}`);

    await stack.bao.writeSecret("late/s", { value: "after" });
    await stack.createRestore("late-restore", {
      cluster,
      source: { target: stack.target("s3"), key },
      jwtAuthRole: "restore",
    });
    const done = await stack.waitRestore("late-restore", "Completed");
    assert.match(done.status?.message ?? "", /every member serves the restored data/);
    for (const node of stack.bao.nodes) {
      assert.deepEqual(await stack.bao.readSecret("late/s", node.index), { value: "before" }, `node ${node.index}`);
    }
    assert.equal((await stack.getCluster(cluster)).status?.operationLock ?? null, null, "lock released");
    const restoreRuns = runner.runs.filter((r) => r.jobName !== job);
    assert.equal(restoreRuns.length, 1);
    assert.ok(restoreRuns[0]?.notes.some((n) => n.includes("Pod report delayed")));
  });
});
