/**
 * Issue 5 acceptance: the operator (a real `bao-backup operator` process) against the real
 * kube-apiserver, Jobs run by the job runner with the real executor, real OpenBao and MinIO.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { printJobRunnerOnFailure } from "../servers/job-runner.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { namespace, type OperatorProcess, type Stack, s3Target, startStack } from "./stack.ts";

superviseServers();
printJobRunnerOnFailure();

const longName = "l".repeat(63);
const clusters = ["sched", "manual", "failing", longName, "upgrade", "removed"];
const tokenAuth = { tokenSecretRef: { name: "bao-token" } };
const condition = (c: OpenBaoCluster, type: string) => c.status?.conditions?.find((x) => x.type === type);

describe("BackupManager end to end", { concurrency: true }, () => {
  let stack: Stack;
  let operator: OperatorProcess;
  before(async () => {
    stack = await startStack(clusters);
    operator = await stack.startOperator();
  });
  after(async () => {
    await stack?.stop();
  });

  const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000) =>
    waitFor(check, { what, timeoutMs, intervalMs: 300, processes: [operator.process] });

  test(
    "* * * * * gives exactly one Job per window over three windows, each recorded",
    { timeout: 300_000 },
    async () => {
      await stack.createCluster("sched", {
        schedule: "* * * * *",
        jwtAuthRole: "backup",
        target: s3Target(stack.target),
      });
      const recorded = new Set<string>();
      await until(
        "three recorded scheduled backups",
        async () => {
          const c = await stack.getCluster("sched");
          if (c.status?.backup?.lastRecordedJob) recorded.add(c.status.backup.lastRecordedJob);
          return recorded.size >= 3 && c;
        },
        260_000,
      );
      const jobs = await stack.jobsOf("sched");
      const windows = jobs.map((j) => j.metadata?.annotations?.["openbao.org/scheduled-time"]);
      assert.equal(new Set(windows).size, jobs.length, `one Job per window: ${windows.join(", ")}`);
      for (const name of recorded) {
        const run = await stack.runner.waitForRun(name);
        assert.equal(run.outcome, "Complete", run.notes.join("\n"));
        const result = JSON.parse(run.terminationMessage) as { key: string; sha256: string; size: number };
        const object = await stack.target.get(result.key);
        assert.ok(object, `${result.key} stored`);
        assert.equal(createHash("sha256").update(object).digest("hex"), result.sha256);
        assert.ok(await stack.target.get(`${result.key}.json`), "manifest stored");
      }
      const c = await stack.getCluster("sched");
      const b = c.status?.backup;
      assert.equal(b?.consecutiveFailures, 0);
      const last = JSON.parse((await stack.runner.waitForRun(b?.lastRecordedJob ?? "")).terminationMessage) as {
        key: string;
        sha256: string;
        size: number;
      };
      assert.equal(b?.lastBackupName, last.key);
      assert.equal(b?.lastBackupSHA256, last.sha256);
      assert.equal(b?.lastBackupSize, last.size);
      assert.ok(b?.lastBackupTime);
      assert.equal(condition(c, "BackupHealthy")?.status, "True");
      const metrics = await operator.metrics();
      assert.match(
        metrics,
        /openbao_backup_success_total\{namespace="openbao",cluster="sched",type="scheduled"\} [3-9]/,
      );
      assert.match(metrics, /openbao_backup_last_success_timestamp_seconds\{namespace="openbao",cluster="sched"\} \d/);
      // Every recorded Job completed with a result: none may have been counted as a failure
      // (a Job seen Complete before its Pod's report once was: late-report.test.ts).
      assert.doesNotMatch(
        metrics,
        /openbao_backup_failure_total\{namespace="openbao",cluster="sched",type="scheduled"\} [1-9]/,
      );
    },
  );

  test("manual trigger while Upgrading waits (annotation kept), then runs once Running", async () => {
    await stack.createCluster("manual", { schedule: quietSchedule, ...tokenAuth, target: s3Target(stack.target) });
    await stack.setStatus("manual", { phase: "Upgrading", upgrade: { from: "2.4.0", to: "2.5.0" } });
    await stack.patchCluster("manual", { metadata: { annotations: { "openbao.org/trigger-backup": "please" } } });
    const blocked = await until("BackupBlocked", async () => {
      const c = await stack.getCluster("manual");
      return condition(c, "BackingUp")?.reason === "BackupBlocked" && c;
    });
    assert.match(condition(blocked, "BackingUp")?.message ?? "", /Upgrading/);
    await sleep(2000);
    assert.equal((await stack.jobsOf("manual")).length, 0, "no Job while upgrading");
    assert.equal((await stack.getCluster("manual")).metadata.annotations?.["openbao.org/trigger-backup"], "please");

    await stack.setStatus("manual", { phase: "Running", upgrade: null });
    const done = await until("manual backup recorded", async () => {
      const c = await stack.getCluster("manual");
      return c.status?.backup?.lastBackupName !== undefined && c;
    });
    assert.equal(done.metadata.annotations?.["openbao.org/trigger-backup"], undefined, "trigger cleared");
    const jobs = await stack.jobsOf("manual");
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0]?.metadata?.labels?.["openbao.org/backup-type"], "manual");
  });

  test("a failing Job counts once however many reconciles follow; the next success resets it", async () => {
    await stack.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: "wrong-credentials" },
        stringData: { accessKeyId: "nobody", secretAccessKey: "wrong-secret-value" },
      },
    });
    const bad = { ...s3Target(stack.target), credentialsSecretRef: { name: "wrong-credentials" } };
    await stack.createCluster("failing", { schedule: quietSchedule, ...tokenAuth, target: bad });
    await stack.patchCluster("failing", { metadata: { annotations: { "openbao.org/trigger-backup": "1" } } });
    const failed = await until("failure recorded", async () => {
      const c = await stack.getCluster("failing");
      return (c.status?.backup?.consecutiveFailures ?? 0) > 0 && c;
    });
    assert.equal(failed.status?.backup?.consecutiveFailures, 1);
    assert.match(failed.status?.backup?.lastFailureReason ?? "", /^Storage/);
    assert.doesNotMatch(JSON.stringify(failed.status), /wrong-secret-value/, "no secret in status");
    assert.equal(condition(failed, "BackupHealthy")?.status, "False");
    for (let i = 0; i < 4; i++) {
      await stack.patchCluster("failing", { metadata: { labels: { touch: String(i) } } });
      await sleep(400);
    }
    assert.equal((await stack.getCluster("failing")).status?.backup?.consecutiveFailures, 1, "counted once");

    await stack.patchCluster("failing", {
      spec: { backup: { target: { credentialsSecretRef: { name: "s3-credentials" } } } },
      metadata: { annotations: { "openbao.org/trigger-backup": "2" } },
    });
    const healed = await until("success resets", async () => {
      const c = await stack.getCluster("failing");
      return c.status?.backup?.consecutiveFailures === 0 && c.status.backup.lastBackupName !== undefined && c;
    });
    assert.equal(condition(healed, "BackupHealthy")?.status, "True");
  });

  test("trap 8: a 63-character cluster name gets a valid Job name and backs up", async () => {
    await stack.createCluster(longName, { schedule: quietSchedule, ...tokenAuth, target: s3Target(stack.target) });
    await stack.patchCluster(longName, { metadata: { annotations: { "openbao.org/trigger-backup": "1" } } });
    const c = await until("long-name backup recorded", async () => {
      const x = await stack.getCluster(longName);
      return x.status?.backup?.lastBackupName !== undefined && x;
    });
    const job = c.status?.backup?.lastRecordedJob ?? "";
    assert.ok(job.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(job), job);
  });

  test("a version bump with preUpgradeSnapshot runs one pre-upgrade Job and sets PreUpgradeSnapshotReady", async () => {
    await stack.createCluster(
      "upgrade",
      { schedule: quietSchedule, ...tokenAuth, target: s3Target(stack.target) },
      { spec: { upgrade: { preUpgradeSnapshot: true } } },
    );
    await stack.patchCluster("upgrade", { spec: { version: "2.5.0" } });
    // What a lifecycle controller checks: True, for the generation that carries the bump.
    const ready = await until("PreUpgradeSnapshotReady=True for the new generation", async () => {
      const c = await stack.getCluster("upgrade");
      const ready = condition(c, "PreUpgradeSnapshotReady");
      return ready?.status === "True" && ready.observedGeneration === c.metadata.generation && c;
    });
    assert.equal(condition(ready, "PreUpgradeSnapshotReady")?.reason, "PreUpgradeBackupSucceeded");
    assert.match(ready.status?.backup?.preUpgrade?.key ?? "", /\/pre-upgrade-\d{4}-/);
    const jobs = await stack.jobsOf("upgrade");
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0]?.metadata?.labels?.["openbao.org/backup-type"], "pre-upgrade");
    await sleep(1500);
    assert.equal((await stack.jobsOf("upgrade")).length, 1, "no second pre-upgrade Job");
  });
});
