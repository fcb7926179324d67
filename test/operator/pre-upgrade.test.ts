/**
 * Issue 15, defect 3, end to end: a second writer plays the lifecycle operator and follows
 * docs/lifecycle-operators.md — it takes the Upgrade lock, bumps spec.version and waits for
 * PreUpgradeSnapshotReady — against the real operator (a process), real kube-apiserver,
 * OpenBao and MinIO, Jobs run by the job runner. Before the fix this deadlocked: preflight
 * refused every lock not held by backup. Then the upgrade completes and is reverted, and the
 * next upgrade to the same version takes a fresh snapshot (defect 1).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { printJobRunnerOnFailure } from "../servers/job-runner.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { type OperatorProcess, type Stack, s3Target, startStack } from "./stack.ts";

superviseServers();
printJobRunnerOnFailure();

const cluster = "bao";
const upgradeLock = {
  operation: "Upgrade",
  holder: "openbaocluster/upgrade",
  acquiredAt: "2026-12-05T10:00:00Z",
  message: "lifecycle operator: upgrade",
};

describe("the pre-upgrade snapshot with a lifecycle operator holding the Upgrade lock", { timeout: 600_000 }, () => {
  let stack: Stack;
  let operator: OperatorProcess;
  before(async () => {
    stack = await startStack([cluster]);
    operator = await stack.startOperator();
  });
  after(async () => {
    await stack?.stop();
  });

  const ready = (c: OpenBaoCluster) => {
    const cond = c.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady");
    return cond?.status === "True" && cond.observedGeneration === c.metadata.generation ? cond : undefined;
  };
  const until = <T>(what: string, check: () => Promise<T | undefined | false>) =>
    waitFor(check, { what, timeoutMs: 120_000, intervalMs: 300, processes: [operator.process] });

  test("lock taken first, then the wait: the snapshot runs under the Upgrade lock, which stays the upgrade's", async () => {
    await stack.createCluster(cluster, {
      schedule: quietSchedule,
      tokenSecretRef: { name: "bao-token" },
      target: s3Target(stack.target),
    });
    await stack.patchCluster(cluster, { spec: { upgrade: { preUpgradeSnapshot: true } } });
    await until("the operator observed the cluster", async () => (await stack.getCluster(cluster)).status?.backup);

    // The lifecycle operator: lock, phase, then the version bump; then it waits.
    await stack.setStatus(cluster, { phase: "Upgrading", operationLock: upgradeLock });
    await stack.patchCluster(cluster, { spec: { version: "2.5.0" } });
    const done = await until("PreUpgradeSnapshotReady=True for this generation", async () => {
      const c = await stack.getCluster(cluster);
      return ready(c) && c;
    });
    const pu = done.status?.backup?.preUpgrade;
    assert.equal(pu?.phase, "Succeeded");
    assert.equal(pu?.fromVersion, "2.4.0");
    assert.equal(pu?.targetVersion, "2.5.0");
    assert.ok(pu?.key && (await stack.target.get(pu.key)), "the rollback point is in the bucket");
    assert.deepEqual(done.status?.operationLock, upgradeLock, "the Upgrade lock is still the lifecycle operator's");
    const firstKey = pu?.key;

    // The upgrade is abandoned: spec.version back, the lock released by its holder.
    await stack.patchCluster(cluster, { spec: { version: "2.4.0" } });
    await stack.setStatus(cluster, { phase: "Running", operationLock: null });
    const ended = await until("the record marked as history", async () => {
      const c = await stack.getCluster(cluster);
      return c.status?.backup?.preUpgrade?.endedAt ? c : undefined;
    });
    assert.equal(ended.status?.backup?.preUpgrade?.key, firstKey, "the old rollback point is still named");

    // The same upgrade again, this time without taking the lock first: a fresh snapshot.
    await stack.patchCluster(cluster, { spec: { version: "2.5.0" } });
    const again = await until("a new rollback point for the new upgrade", async () => {
      const c = await stack.getCluster(cluster);
      return ready(c) && c.status?.backup?.preUpgrade?.endedAt === undefined && c;
    });
    assert.notEqual(again.status?.backup?.preUpgrade?.key, firstKey, "not the old snapshot");
    assert.equal(again.status?.operationLock ?? null, null, "the Backup lock it took is released");
    const jobs = (await stack.jobsOf(cluster)).map((j) => j.metadata?.name ?? "");
    assert.equal(jobs.filter((n) => n.startsWith("pre-upgrade-")).length, 2, `two distinct Jobs: ${jobs.join(", ")}`);
  });
});
