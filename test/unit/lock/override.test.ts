/**
 * Issue 15, defect 4: `overrideOperationLock` took the lock from a running backup Job that kept
 * running; after the restore the lock was freed while that backup still ran, so another
 * operation could start beside it. Both planners are driven against one shared cluster, the
 * way the two controllers of one operator see it, with a fixed clock.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { OpenBaoCluster, OpenBaoRestore } from "../../../src/api/types.ts";
import { type BackupPlan, planBackup } from "../../../src/backup/plan.ts";
import type { ReportedResult } from "../../../src/executor/result.ts";
import type { ObservedJob } from "../../../src/jobs/result.ts";
import { planRestore, type RestoreObservation, type RestorePlan } from "../../../src/restore/plan.ts";

const t = (iso: string): Date => new Date(iso);
const finalizer = "openbao.org/release-operation-lock";

function cluster(): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "openbao", uid: "uid-1", annotations: {} },
    spec: {
      replicas: 3,
      version: "2.4.0",
      backup: { schedule: "0 3 * * *", jwtAuthRole: "backup", target: { bucket: "b" }, activeDeadlineSeconds: 600 },
    },
    status: { phase: "Running", initialized: true, currentVersion: "2.4.0" },
  };
}

function restore(): OpenBaoRestore {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoRestore",
    metadata: {
      name: "urgent",
      namespace: "openbao",
      uid: "0a1b2c3d-1111-2222-3333-444455556666",
      creationTimestamp: "2026-11-21T10:00:05Z",
      generation: 1,
      finalizers: [finalizer],
    },
    spec: {
      cluster: "bao",
      source: { target: { bucket: "b" }, key: "p/k.snap" },
      jwtAuthRole: "restore",
      force: true,
      overrideOperationLock: true,
    },
  };
}

const running = (name: string): ObservedJob => ({
  name,
  phase: "Running",
  finishedAt: undefined,
  jobFailureReason: undefined,
  result: undefined,
  podTerminated: false,
});
const succeeded = (name: string, finishedAt: Date): ObservedJob => {
  const result: ReportedResult = {
    ok: true,
    key: "p/k.snap",
    size: 10,
    sha256: "ab".repeat(32),
    durationMs: 1000,
    raftIndex: undefined,
    reason: undefined,
    message: undefined,
    retentionDeleted: undefined,
    retentionFailed: undefined,
  };
  return { name, phase: "Succeeded", finishedAt, jobFailureReason: undefined, result, podTerminated: true };
};

/** The world both controllers see: the cluster, the restore, and which Jobs run. */
interface World {
  cluster: OpenBaoCluster;
  restore: OpenBaoRestore;
  /** The backup Job (by name) and whether it still runs (its executor has not stopped). */
  backupJob: { name: string; runs: boolean; exists: boolean } | undefined;
  restoreJobCreated: boolean;
}

function backupPass(w: World, now: Date): BackupPlan {
  const plan = planBackup({
    cluster: w.cluster,
    jobs: w.backupJob?.exists ? [running(w.backupJob.name)] : [],
    activeRestores: w.restore.status?.phase === "Completed" ? [] : ["urgent"],
    missingSecrets: [],
    now,
    defaultImage: "img:1",
  });
  if (plan.status) w.cluster = { ...w.cluster, status: { ...w.cluster.status, ...plan.status } };
  if (plan.deleteJob !== undefined && plan.deleteJob === w.backupJob?.name) {
    // Background deletion: the Job goes at once; its Pod stops after SIGTERM (see restorePass).
    w.backupJob = { ...w.backupJob, exists: false };
  }
  return plan;
}

function restoreObs(w: World, now: Date): RestoreObservation {
  const job = w.backupJob;
  return {
    restore: w.restore,
    cluster: w.cluster,
    job: undefined,
    activeJobPods: 0,
    peers: [],
    missingSecrets: [],
    now,
    defaultImage: "img:1",
    backupWork: {
      runningJobs: job?.exists && job.runs ? [job.name] : [],
      activePods: job?.runs ? 1 : 0,
    },
  };
}

function restorePass(w: World, now: Date): RestorePlan {
  const plan = planRestore(restoreObs(w, now));
  if (plan.lock) {
    const lock = plan.lock.kind === "acquire" ? plan.lock.lock : null;
    w.cluster = { ...w.cluster, status: { ...w.cluster.status, operationLock: lock } };
  }
  if (plan.status) w.restore = { ...w.restore, status: plan.status };
  if (plan.createJob) w.restoreJobCreated = true;
  if (plan.deleteBackupJobs?.includes(w.backupJob?.name ?? "") && w.backupJob) {
    w.backupJob = { ...w.backupJob, exists: false };
  }
  return plan;
}

/** The lock's holder now (a function: assertions on a field would narrow it for good). */
const holderOf = (w: World): string | undefined => w.cluster.status?.operationLock?.holder;

/** The defect's invariant: while the backup Job runs, the lock is held and no restore Job exists. */
function assertNothingBeside(w: World, when: string): void {
  if (!w.backupJob?.runs) return;
  assert.ok(w.cluster.status?.operationLock, `${when}: the lock is held while backup Job ${w.backupJob.name} runs`);
  assert.equal(w.restoreJobCreated, false, `${when}: no restore Job runs beside backup Job ${w.backupJob.name}`);
}

/** A manual backup started at 10:00:00 whose Job runs. */
function backupRunning(): World {
  const c = cluster();
  c.metadata.annotations = { "openbao.org/trigger-backup": "now" };
  const w: World = { cluster: c, restore: restore(), backupJob: undefined, restoreJobCreated: false };
  const started = planBackup({
    cluster: c,
    jobs: [],
    activeRestores: [],
    missingSecrets: [],
    now: t("2026-11-21T10:00:00Z"),
    defaultImage: "img:1",
  });
  const name = started.createJob?.name ?? "";
  assert.ok(name);
  w.cluster = { ...c, metadata: { ...c.metadata, annotations: {} }, status: { ...c.status, ...started.status } };
  w.backupJob = { name, runs: true, exists: true };
  return w;
}

describe("defect 4: an override stops what it displaces", () => {
  test("the restore does not start beside the backup Job whose lock it took; it starts once that Job is gone", () => {
    const w = backupRunning();
    const backupJob = w.backupJob?.name ?? "";
    assert.equal(holderOf(w), "openbaocluster/backup");

    const took = restorePass(w, t("2026-11-21T10:00:10Z"));
    assert.equal(took.lock?.kind, "acquire", "the override takes the lock at once");
    assertNothingBeside(w, "the override");
    assert.equal(took.createJob, undefined, "no restore Job while the backup Job runs");
    assert.deepEqual(took.deleteBackupJobs, [backupJob], "the displaced backup Job is stopped");
    assert.equal(w.restore.status?.phase, "Validating");
    assert.match(w.restore.status?.message ?? "", new RegExp(`backup Job ${backupJob}`));

    // The backup controller sees its Job displaced: it records it once, honestly, as a failure.
    const seen = backupPass(w, t("2026-11-21T10:00:11Z"));
    assert.equal(seen.recorded?.ok, false);
    assert.equal(w.cluster.status?.backup?.lastFailureReason, "LockOverridden");
    assert.match(w.cluster.status?.backup?.lastFailureMessage ?? "", /OpenBaoRestore urgent/);
    assert.equal(w.cluster.status?.backup?.currentJob, null);
    assert.equal(holderOf(w), "openbaorestore/urgent", "the restore keeps the lock");
    const failed = seen.events.find((e) => e.reason === "BackupFailed");
    assert.ok(failed && failed.type === "Warning", "a Warning event names the override");
    assert.match(failed.message, /overrideOperationLock/);
    assert.equal(backupPass(w, t("2026-11-21T10:00:12Z")).recorded, undefined, "recorded once");

    // The Pod is still stopping (SIGTERM): the restore keeps waiting, under its lock.
    const stopping = restorePass(w, t("2026-11-21T10:00:12Z"));
    assertNothingBeside(w, "while the Pod stops");
    assert.equal(stopping.createJob, undefined);
    assert.equal(stopping.lock, undefined, "the lock is neither released nor re-taken");
    assert.ok((stopping.requeueAfterMs ?? Infinity) <= 2000, "re-checked soon");

    // The Pod stopped: the restore starts.
    if (w.backupJob) w.backupJob = { ...w.backupJob, runs: false };
    const starts = restorePass(w, t("2026-11-21T10:00:20Z"));
    assert.equal(starts.status?.phase, "Running");
    assert.ok(starts.createJob, "the restore Job is created once nothing of the backup runs");
    assert.equal(holderOf(w), "openbaorestore/urgent");
  });

  test("with the backup controller slow to stop its Job, the restore still never starts beside it", () => {
    const w = backupRunning();
    restorePass(w, t("2026-11-21T10:00:10Z"));
    // Even if the backup controller were slow, the restore does not start while the backup runs.
    for (const s of ["11", "13", "15"]) {
      const p = restorePass(w, t(`2026-11-21T10:00:${s}Z`));
      assert.equal(p.createJob, undefined, `10:00:${s}: the backup Job still runs`);
      assertNothingBeside(w, `10:00:${s}`);
    }
  });

  test("a backup Job that succeeded before it could be stopped is recorded as the success it is", () => {
    const w = backupRunning();
    restorePass(w, t("2026-11-21T10:00:10Z"));
    const name = w.backupJob?.name ?? "";
    const p = planBackup({
      cluster: w.cluster,
      jobs: [succeeded(name, t("2026-11-21T10:00:09Z"))],
      activeRestores: ["urgent"],
      missingSecrets: [],
      now: t("2026-11-21T10:00:11Z"),
      defaultImage: "img:1",
    });
    assert.equal(p.recorded?.ok, true);
    assert.equal(p.deleteJob, undefined, "a finished Job is left for its logs");
    assert.equal(p.status?.operationLock?.holder, "openbaorestore/urgent", "the restore's lock is never released");
  });

  test("the wait is bounded by the backup Job's deadline: a Pod that never stops does not hold the restore forever", () => {
    const w = backupRunning();
    restorePass(w, t("2026-11-21T10:00:10Z"));
    backupPass(w, t("2026-11-21T10:00:11Z"));
    // activeDeadlineSeconds 600: the Pod still shows running ten minutes and more later.
    const before = restorePass(w, t("2026-11-21T10:09:00Z"));
    assert.equal(before.createJob, undefined, "within the deadline it waits");
    const after = restorePass(w, t("2026-11-21T10:13:00Z"));
    assert.ok(after.createJob, "past the deadline (and the stop grace) it starts");
    assert.ok(after.events.some((e) => e.type === "Warning" && /still/.test(e.message)));
  });
});
