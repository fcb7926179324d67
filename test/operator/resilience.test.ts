/**
 * Issue 5 acceptance, the hard parts: the operator SIGKILLed while its Job runs, two
 * replicas behind a Lease with the leader killed, and spec.backup removed mid-run. These
 * run one after another: they pause and resume the job runner.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { quietSchedule } from "../quiet-schedule.ts";
import { printJobRunnerOnFailure } from "../servers/job-runner.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { type Stack, s3Target, startStack } from "./stack.ts";

superviseServers();
printJobRunnerOnFailure();

const tokenAuth = { tokenSecretRef: { name: "bao-token" } };

describe("BackupManager resilience", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack(["crash", "ha", "removed"]);
  });
  after(async () => {
    await stack?.stop();
  });

  const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000) =>
    waitFor(check, { what, timeoutMs, intervalMs: 300 });
  const trigger = (name: string, value: string) =>
    stack.patchCluster(name, { metadata: { annotations: { "openbao.org/trigger-backup": value } } });

  test("operator killed while its Job runs: no duplicate Job, the result recorded once, the lock released", async () => {
    const first = await stack.startOperator({ name: "operator-a" });
    await stack.createCluster("crash", { schedule: quietSchedule, ...tokenAuth, target: s3Target(stack.target) });
    stack.runner.pause();
    await trigger("crash", "1");
    await until("the Job exists", async () => (await stack.jobsOf("crash")).length === 1);
    const locked = await stack.getCluster("crash");
    assert.equal(locked.status?.operationLock?.holder, "openbaocluster/backup");
    first.process.kill("SIGKILL");
    await first.process.exited;

    stack.runner.resume();
    const [job] = await stack.jobsOf("crash");
    const run = await stack.runner.waitForRun(job?.metadata?.name ?? "");
    assert.equal(run.outcome, "Complete");

    const second = await stack.startOperator({ name: "operator-b" });
    const recorded = await until("result recorded by the new operator", async () => {
      const c = await stack.getCluster("crash");
      return c.status?.backup?.lastBackupName !== undefined && c;
    });
    assert.equal(recorded.status?.operationLock ?? null, null, "lock released");
    assert.equal(recorded.status?.backup?.consecutiveFailures, 0);
    await sleep(1500);
    assert.equal((await stack.jobsOf("crash")).length, 1, "no duplicate Job");
    assert.match(
      await second.metrics(),
      /openbao_backup_success_total\{namespace="openbao",cluster="crash",type="manual"\} 1\n/,
    );
    await second.process.stop();
  });

  test(
    "two replicas: only the Lease holder acts; kill it and the other runs the next window once",
    { timeout: 240_000 },
    async () => {
      const a = await stack.startOperator({ name: "replica-a", leaderElection: true });
      const b = await stack.startOperator({ name: "replica-b", leaderElection: true });
      await stack.createCluster("ha", { schedule: "* * * * *", ...tokenAuth, target: s3Target(stack.target) });
      const firstWindow = await until(
        "the first window's backup",
        async () => {
          const c = await stack.getCluster("ha");
          return c.status?.backup?.lastRecordedJob;
        },
        100_000,
      );
      const jobsBefore = await stack.jobsOf("ha");
      assert.equal(jobsBefore.length, 1, "both replicas saw the window; one Job");
      const lease = await stack.kube.kubeConfig
        .makeApiClient((await import("@kubernetes/client-node")).CoordinationV1Api)
        .readNamespacedLease({ name: "openbao-backup-operator", namespace: "openbao" });
      const holder = lease.spec?.holderIdentity ?? "";
      const leaderIsA = (await fetch(`${a.healthUrl}/metrics`).then((r) => r.text())).match(
        /leader_election_master_status\{[^}]*\} 1/,
      );
      const [leader, follower] = leaderIsA ? [a, b] : [b, a];
      assert.ok(holder, "a Lease holder is recorded");
      leader.process.kill("SIGKILL");

      await until(
        "the next window's backup by the surviving replica",
        async () => {
          const c = await stack.getCluster("ha");
          return c.status?.backup?.lastRecordedJob !== firstWindow && c;
        },
        100_000,
      );
      const jobs = await stack.jobsOf("ha");
      const windows = jobs.map((j) => j.metadata?.annotations?.["openbao.org/scheduled-time"]);
      assert.equal(new Set(windows).size, jobs.length, `one Job per window: ${windows.join(", ")}`);
      assert.ok(follower.process.running, "the survivor keeps running");
      await follower.process.stop();
    },
  );

  test("spec.backup removed mid-run: the lock is kept while the Job runs and released when it ends", async () => {
    const op = await stack.startOperator({ name: "operator-c" });
    await stack.createCluster("removed", { schedule: quietSchedule, ...tokenAuth, target: s3Target(stack.target) });
    stack.runner.pause();
    await trigger("removed", "1");
    await until("the Job exists", async () => (await stack.jobsOf("removed")).length === 1);
    await stack.patchCluster("removed", { spec: { backup: null } });
    await sleep(2000);
    assert.equal(
      (await stack.getCluster("removed")).status?.operationLock?.holder,
      "openbaocluster/backup",
      "held while the Job runs",
    );
    stack.runner.resume();
    const released = await until("lock released after the Job ended", async () => {
      const c = await stack.getCluster("removed");
      return (c.status?.operationLock ?? null) === null && c.status?.backup?.lastRecordedJob !== undefined && c;
    });
    assert.equal(released.status?.backup?.nextScheduledBackup, undefined);
    await op.process.stop();
  });

  test("a leader whose API server stalls past its renew deadline steps down and its process ends", async () => {
    // What happened on the real node: the Lease renewal timed out against a stalled API server,
    // the replica stopped ("stopped" logged) and then stayed up, its stalled requests holding the
    // event loop, until the kubelet killed it. A replica that lost its Lease must end at once.
    const operator = await stack.startOperator({ name: "operator-stall", leaderElection: true });
    await until("the replica leads", async () =>
      /leader_election_master_status\{[^}]*\} 1/.test(await operator.metrics()),
    );
    const resume = stack.stallApiServer();
    try {
      // Renew deadline 3 s, the leader-only work's graceful stop (reconciles waiting on the
      // stalled server) at most 30 s, then the process ends within a second.
      const code = await Promise.race([operator.process.exited, sleep(50_000).then(() => "still running" as const)]);
      assert.equal(code, 1, "exit code 1: the Lease was lost (Kubernetes restarts it as a fresh candidate)");
    } finally {
      resume();
    }
  });
});
