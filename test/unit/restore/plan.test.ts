/**
 * The RestoreManager's decisions, scenario by scenario, with a fixed clock (SPEC §2
 * OpenBaoRestore, §3). Each scenario feeds the plan's writes back in as the next observation,
 * like the controller does.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { OpenBaoCluster, OpenBaoRestore, OperationLock } from "../../../src/api/types.ts";
import type { ReportedResult } from "../../../src/executor/result.ts";
import { jobCreateGraceMs, maxJobCreateGraceMs } from "../../../src/jobs/missing.ts";
import { resultGraceMs } from "../../../src/jobs/result.ts";
import { holdsLock } from "../../../src/lock/holder.ts";
import { deletionGraceMs } from "../../../src/lock/orphans.ts";
import {
  type ObservedJob,
  planRestore,
  type RestoreObservation,
  type RestorePeer,
  type RestorePlan,
} from "../../../src/restore/plan.ts";

const t = (iso: string): Date => new Date(iso);
const created = "2026-11-21T10:00:00Z";
const finalizer = "openbao.org/release-operation-lock";
const jobName = "restore-r1-0a1b2c3d";

function restore(spec: Partial<OpenBaoRestore["spec"]> = {}, name = "r1"): OpenBaoRestore {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoRestore",
    metadata: {
      name,
      namespace: "openbao",
      uid: "0a1b2c3d-1111-2222-3333-444455556666",
      creationTimestamp: created,
      generation: 1,
    },
    spec: {
      cluster: "bao",
      source: { target: { provider: "s3", bucket: "b", credentialsSecretRef: { name: "s3-creds" } }, key: "p/k.snap" },
      jwtAuthRole: "restore",
      ...spec,
    } as OpenBaoRestore["spec"],
  };
}

function cluster(status: Partial<NonNullable<OpenBaoCluster["status"]>> = {}): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "openbao", uid: "cluster-uid", resourceVersion: "7" },
    spec: {
      replicas: 3,
      backup: {
        schedule: "@daily",
        jwtAuthRole: "backup",
        openbaoAddresses: ["https://a:8200", "https://b:8200", "https://c:8200"],
        activeDeadlineSeconds: 900,
        serviceAccount: { annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x" } },
        target: { bucket: "b" },
      },
    },
    status: { phase: "Running", initialized: true, currentVersion: "2.4.0", operationLock: null, ...status },
  };
}

const lockOf = (holder: string, acquiredAt = "2026-11-21T09:59:00Z"): OperationLock => {
  if (holder === "openbaocluster/backup")
    return { operation: "Backup", holder, acquiredAt, message: "manual backup Job x" };
  if (holder === "openbaocluster/upgrade") return { operation: "Upgrade", holder, acquiredAt };
  return { operation: "Restore", holder: holder as `openbaorestore/${string}`, acquiredAt };
};

interface World {
  restore: OpenBaoRestore;
  cluster: OpenBaoCluster | undefined;
}

function obs(w: World, now: Date, extra: Partial<RestoreObservation> = {}): RestoreObservation {
  return {
    restore: w.restore,
    cluster: w.cluster,
    job: undefined,
    activeJobPods: 0,
    peers: [],
    missingSecrets: [],
    now,
    defaultImage: "img:1",
    backupWork: { runningJobs: [], activePods: 0 },
    ...extra,
  };
}

/** Applies a plan's writes, as the controller would. */
function apply(w: World, plan: RestorePlan): World {
  const restore = structuredClone(w.restore);
  let c = w.cluster ? structuredClone(w.cluster) : undefined;
  if (plan.addFinalizer) restore.metadata.finalizers = [...(restore.metadata.finalizers ?? []), finalizer];
  if (plan.lock && c) c.status = { ...c.status, operationLock: plan.lock.kind === "acquire" ? plan.lock.lock : null };
  if (plan.status) restore.status = plan.status;
  if (plan.removeFinalizer)
    restore.metadata.finalizers = (restore.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  if (c === undefined) c = undefined;
  return { restore, cluster: c };
}

const result = (ok: boolean, reason?: string, message?: string): ReportedResult => ({
  ok,
  key: ok ? "p/k.snap" : "p/k.snap",
  size: ok ? 4096 : undefined,
  sha256: ok ? "ab".repeat(32) : undefined,
  durationMs: 9000,
  raftIndex: undefined,
  reason,
  message,
  retentionDeleted: undefined,
  retentionFailed: undefined,
});
const job = (phase: ObservedJob["phase"], r?: ReportedResult, jobFailureReason?: string): ObservedJob => ({
  name: jobName,
  phase,
  finishedAt: phase === "Running" ? undefined : t("2026-11-21T10:00:40Z"),
  jobFailureReason,
  result: r,
  podTerminated: phase !== "Running",
});

/** A restore that validated, took the lock and started its Job at 10:00:10. */
function running(spec: Partial<OpenBaoRestore["spec"]> = {}): World {
  let w: World = { restore: restore(spec), cluster: cluster() };
  w = apply(w, planRestore(obs(w, t("2026-11-21T10:00:10Z"))));
  assert.equal(w.restore.status?.phase, "Running");
  return w;
}

const cond = (w: { status?: { conditions?: { type: string; status: string; reason: string }[] } }, type: string) =>
  w.status?.conditions?.find((c) => c.type === type);

describe("planRestore: validation", () => {
  test("a new restore: finalizer first, Secrets looked up before anything starts", () => {
    const w: World = { restore: restore(), cluster: cluster() };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { missingSecrets: undefined }));
    assert.equal(p.addFinalizer, true);
    assert.deepEqual([...p.secretsToCheck].sort(), ["bao-tls-ca", "s3-creds"]);
    assert.equal(p.lock, undefined, "no lock before the Secrets are known");
    assert.equal(p.createJob, undefined);
    assert.equal(p.status?.phase, "Validating");
    assert.ok(p.events.some((e) => e.reason === "RestoreValidating"));
  });

  test("valid and the lock is free: lock, Running and the Job in one plan, the Job built from restore + cluster", () => {
    const w: World = {
      restore: restore({ tokenSecretRef: { name: "tok" }, jwtAuthRole: undefined } as never),
      cluster: cluster(),
    };
    const first = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { missingSecrets: undefined }));
    assert.deepEqual([...first.secretsToCheck].sort(), ["bao-tls-ca", "s3-creds", "tok"]);
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z")));
    assert.equal(p.lock?.kind, "acquire");
    assert.equal(p.lock?.kind === "acquire" && p.lock.lock.holder, "openbaorestore/r1");
    assert.equal(p.lock?.kind === "acquire" && p.lock.lock.operation, "Restore");
    assert.equal(p.status?.phase, "Running");
    assert.equal(p.status?.startTime, "2026-11-21T10:00:01Z");
    assert.equal(p.status?.snapshotKey, "p/k.snap");
    assert.equal(cond(p, "RestoreComplete")?.reason, "RestoreRunning");
    assert.equal(p.started, true);
    const j = p.createJob;
    assert.ok(j);
    assert.equal(j.name, jobName);
    assert.ok(j.name.length <= 63);
    assert.equal(j.key, "p/k.snap");
    assert.equal(j.force, false);
    assert.deepEqual(j.auth, { method: "token", secretName: "tok", secretKey: "token" });
    assert.equal(j.target.provider, "s3");
    assert.deepEqual(j.openbaoAddresses, ["https://a:8200", "https://b:8200", "https://c:8200"]);
    assert.equal(j.tlsSecretName, "bao-tls-ca");
    assert.equal(j.activeDeadlineSeconds, 900);
    assert.equal(j.image, "img:1");
    assert.equal(j.serviceAccountName, "bao-restore");
    assert.equal(j.serviceAccountAnnotations["eks.amazonaws.com/role-arn"], "arn:aws:iam::1:role/x");
    assert.ok(p.events.some((e) => e.reason === "RestoreJobCreated"));
    assert.ok(p.events.some((e) => e.reason === "LockAcquired"));
  });

  const failures: [string, World, RegExp][] = [
    [
      "cluster missing",
      { restore: restore(), cluster: undefined },
      /OpenBaoCluster bao does not exist in namespace openbao/,
    ],
    [
      "cluster not initialized",
      { restore: restore(), cluster: cluster({ initialized: false }) },
      /cluster bao is not initialized.*spec\.force/,
    ],
    [
      "cluster upgrading",
      { restore: restore(), cluster: cluster({ phase: "Upgrading", upgrade: { to: "2.5.0" } }) },
      /cluster bao is upgrading/,
    ],
    [
      "overrideOperationLock without force",
      { restore: restore({ overrideOperationLock: true }), cluster: cluster() },
      /spec\.overrideOperationLock requires spec\.force/,
    ],
    [
      "no auth",
      { restore: restore({ jwtAuthRole: undefined } as never), cluster: cluster() },
      /no OpenBao authentication configured: set spec\.jwtAuthRole .* or spec\.tokenSecretRef/,
    ],
  ];
  for (const [what, w, message] of failures) {
    test(`${what} → Failed with a precise message; no lock, no Job`, () => {
      const p = planRestore(obs(w, t("2026-11-21T10:00:01Z")));
      assert.equal(p.status?.phase, "Failed");
      assert.match(p.status?.message ?? "", message);
      assert.equal(p.status?.completionTime, "2026-11-21T10:00:01Z");
      assert.equal(cond(p, "RestoreComplete")?.status, "False");
      assert.equal(cond(p, "RestoreComplete")?.reason, "RestoreValidationFailed");
      assert.equal(p.lock, undefined);
      assert.equal(p.createJob, undefined);
      assert.equal(p.finished?.ok, false);
      assert.equal(p.finished?.reason, "ValidationFailed");
      assert.ok(p.events.some((e) => e.type === "Warning" && e.reason === "RestoreFailed"));
    });
  }

  test("a missing Secret fails the restore and names it", () => {
    const w: World = { restore: restore(), cluster: cluster() };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { missingSecrets: ["s3-creds"] }));
    assert.equal(p.status?.phase, "Failed");
    assert.match(p.status?.message ?? "", /Secret s3-creds not found in namespace openbao/);
  });

  test("force skips the cluster-state checks (not initialized, upgrading) and uses snapshot-force", () => {
    const w: World = {
      restore: restore({ force: true }),
      cluster: cluster({ initialized: false, phase: "Upgrading", upgrade: { to: "2.5.0" } }),
    };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z")));
    assert.equal(p.status?.phase, "Running");
    assert.equal(p.createJob?.force, true);
  });
});

describe("planRestore: the operation lock", () => {
  test("a backup holds the lock: wait in Validating, message names operation and holder; never steal it", () => {
    const w: World = { restore: restore(), cluster: cluster({ operationLock: lockOf("openbaocluster/backup") }) };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z")));
    assert.equal(p.lock, undefined);
    assert.equal(p.createJob, undefined);
    assert.equal(p.status?.phase, "Validating");
    assert.match(p.status?.message ?? "", /held by Backup \(openbaocluster\/backup\) since 2026-11-21T09:59:00Z/);
    assert.equal(cond(p, "RestoreComplete")?.reason, "RestoreWaitingForLock");
    assert.equal(p.requeueAfterMs, 30_000);
    // Nothing new to say on the next pass: no write, no event.
    const again = planRestore(obs(apply(w, p), t("2026-11-21T10:00:05Z")));
    assert.equal(again.status, undefined);
    assert.equal(again.events.length, 0);
    // force alone does not take it either
    const forced = planRestore(obs({ ...w, restore: restore({ force: true }) }, t("2026-11-21T10:00:05Z")));
    assert.equal(forced.lock, undefined);
  });

  test("the backup releases the lock: the waiting restore starts on the next pass", () => {
    let w: World = { restore: restore(), cluster: cluster({ operationLock: lockOf("openbaocluster/backup") }) };
    w = apply(w, planRestore(obs(w, t("2026-11-21T10:00:01Z"))));
    w.cluster = cluster();
    const p = planRestore(obs(w, t("2026-11-21T10:00:30Z")));
    assert.equal(p.lock?.kind, "acquire");
    assert.equal(p.status?.phase, "Running");
  });

  test("override + force takes an upgrade's lock: Warning events (restore and cluster), condition set", () => {
    const w: World = {
      restore: restore({ force: true, overrideOperationLock: true }),
      cluster: cluster({
        phase: "Upgrading",
        upgrade: { to: "2.5.0" },
        operationLock: lockOf("openbaocluster/upgrade"),
      }),
    };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z")));
    assert.equal(p.lock?.kind, "acquire");
    assert.equal(p.lock?.kind === "acquire" && p.lock.overridden?.holder, "openbaocluster/upgrade");
    assert.equal(p.status?.phase, "Running");
    const c = cond(p, "OperationLockOverride");
    assert.equal(c?.status, "True");
    assert.equal(c?.reason, "OperationLockOverridden");
    const warnings = p.events.filter((e) => e.type === "Warning" && e.reason === "OperationLockOverridden");
    assert.deepEqual(warnings.map((e) => e.on).sort(), ["cluster", "restore"]);
    assert.match(warnings[0]?.message ?? "", /openbaocluster\/upgrade/);
  });

  test("override + force never takes another restore's lock", () => {
    const w: World = {
      restore: restore({ force: true, overrideOperationLock: true }),
      cluster: cluster({ operationLock: lockOf("openbaorestore/other") }),
    };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z")));
    assert.equal(p.lock, undefined);
    assert.equal(p.status?.phase, "Validating");
    assert.match(
      p.status?.message ?? "",
      /another restore holds the operation lock: Restore \(openbaorestore\/other\)/,
    );
  });

  test("first come, first served: an older unfinished restore of the cluster goes first; override jumps the queue", () => {
    const peers: RestorePeer[] = [
      { name: "r0", createdAt: t("2026-11-21T09:00:00Z"), phase: "Validating", deleting: false },
      { name: "old-done", createdAt: t("2026-11-21T08:00:00Z"), phase: "Completed", deleting: false },
      { name: "gone", createdAt: t("2026-11-21T08:30:00Z"), phase: "Running", deleting: true },
      { name: "r2", createdAt: t("2026-11-21T11:00:00Z"), phase: undefined, deleting: false },
    ];
    const w: World = { restore: restore(), cluster: cluster() };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { peers }));
    assert.equal(p.lock, undefined);
    assert.match(p.status?.message ?? "", /queued behind OpenBaoRestore r0/);
    const alone = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { peers: peers.slice(1) }));
    assert.equal(alone.lock?.kind, "acquire", "finished, deleting and younger restores do not block");
    const urgent = { ...w, restore: restore({ force: true, overrideOperationLock: true }) };
    assert.equal(planRestore(obs(urgent, t("2026-11-21T10:00:01Z"), { peers })).lock?.kind, "acquire");
  });

  test("a lock taken by a pass that crashed before its status write is ours: reused, not re-acquired", () => {
    const w: World = {
      restore: restore(),
      cluster: cluster({ operationLock: lockOf("openbaorestore/r1", "2026-11-21T10:00:01Z") }),
    };
    const p = planRestore(obs(w, t("2026-11-21T10:00:02Z")));
    assert.equal(p.lock, undefined);
    assert.equal(p.status?.phase, "Running");
    assert.ok(p.createJob);
  });

  test("a lock left by a deleted restore of the same name (older than this one) is replaced", () => {
    const stale = lockOf("openbaorestore/r1", "2026-11-21T09:00:00Z");
    const w: World = { restore: restore(), cluster: cluster({ operationLock: stale }) };
    assert.equal(holdsLock(w.restore, stale), false);
    const p = planRestore(obs(w, t("2026-11-21T10:00:02Z")));
    assert.equal(p.lock?.kind, "acquire");
    assert.ok(p.events.some((e) => e.on === "cluster" && e.reason === "LockRecovered"));
  });
});

describe("planRestore: backup work beside the restore (issue 15, defect 4)", () => {
  const inFlight = (lock: OperationLock | null): OpenBaoCluster => {
    const c = cluster({ operationLock: lock });
    c.status = {
      ...c.status,
      backup: { currentJob: { name: "backup-bao-1", type: "manual", createdAt: "2026-11-21T09:59:00Z" } },
    };
    return c;
  };
  const busy = { runningJobs: ["backup-bao-1"], activePods: 1 };

  test("without override, a backup Job in flight is waited for without taking the lock, even a free one", () => {
    const w: World = { restore: restore(), cluster: inFlight(null) };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { backupWork: busy }));
    assert.equal(p.lock, undefined, "the lock is not taken from under a backup in flight");
    assert.equal(p.createJob, undefined);
    assert.deepEqual(p.deleteBackupJobs, [], "nothing is stopped without override");
    assert.equal(p.status?.phase, "Validating");
    assert.match(p.status?.message ?? "", /waiting for backup Job backup-bao-1 of cluster bao to finish/);
    assert.equal(cond(p, "RestoreComplete")?.reason, "RestoreWaitingForLock");
  });

  test("without override, Pods of a deleted backup Job still stopping: lock taken, Job held back, nothing deleted", () => {
    let w: World = { restore: restore(), cluster: cluster() };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { backupWork: { runningJobs: [], activePods: 1 } }));
    assert.equal(p.lock?.kind, "acquire");
    assert.equal(p.createJob, undefined);
    assert.deepEqual(p.deleteBackupJobs, []);
    assert.match(
      p.status?.message ?? "",
      /holding the operation lock of cluster bao: waiting for 1 Pod of a stopped backup Job/,
    );
    assert.ok(p.events.some((e) => e.reason === "LockAcquired"));
    w = apply(w, p);
    const next = planRestore(obs(w, t("2026-11-21T10:00:05Z")));
    assert.equal(next.status?.phase, "Running");
    assert.ok(next.createJob);
    assert.equal(next.lock, undefined, "the lock it holds is kept as it is");
    assert.ok(!next.events.some((e) => e.reason === "LockAcquired"), "said once, by the pass that took it");
  });

  test("override of an upgrade's lock while a pre-upgrade Job runs under it: the Job is stopped first", () => {
    const c = inFlight(lockOf("openbaocluster/upgrade"));
    c.status = { ...c.status, phase: "Upgrading", upgrade: { to: "2.5.0" } };
    const w: World = { restore: restore({ force: true, overrideOperationLock: true }), cluster: c };
    const p = planRestore(obs(w, t("2026-11-21T10:00:01Z"), { backupWork: busy }));
    assert.equal(p.lock?.kind === "acquire" && p.lock.overridden?.holder, "openbaocluster/upgrade");
    assert.deepEqual(p.deleteBackupJobs, ["backup-bao-1"]);
    assert.equal(p.createJob, undefined);
    assert.equal(cond(p, "OperationLockOverride")?.status, "True");
  });

  test("deleted while it waits for a displaced backup: it holds the lock, so it releases it", () => {
    const w0: World = {
      restore: restore({ force: true, overrideOperationLock: true }),
      cluster: inFlight(lockOf("openbaocluster/backup")),
    };
    const w = apply(w0, planRestore(obs(w0, t("2026-11-21T10:00:01Z"), { backupWork: busy })));
    assert.equal(w.cluster?.status?.operationLock?.holder, "openbaorestore/r1");
    const deleted = {
      ...w,
      restore: { ...w.restore, metadata: { ...w.restore.metadata, deletionTimestamp: "2026-11-21T10:00:02Z" } },
    };
    const p = planRestore(obs(deleted, t("2026-11-21T10:00:03Z"), { backupWork: busy }));
    assert.equal(p.lock?.kind, "release");
    assert.equal(p.removeFinalizer, true);
  });
});

describe("planRestore: running and results", () => {
  test("while the Job runs: nothing to write", () => {
    const w = running();
    const p = planRestore(obs(w, t("2026-11-21T10:00:20Z"), { job: job("Running") }));
    assert.equal(p.status, undefined);
    assert.equal(p.createJob, undefined);
    assert.equal(p.lock, undefined);
    assert.equal(p.events.length, 0);
  });

  test("success: Completed with size, time and condition, lock released, recorded once; terminal never changes", () => {
    let w = running();
    const done = job("Succeeded", result(true));
    const p = planRestore(obs(w, t("2026-11-21T10:00:45Z"), { job: done }));
    assert.equal(p.status?.phase, "Completed");
    assert.equal(p.status?.completionTime, "2026-11-21T10:00:40Z");
    assert.equal(p.status?.snapshotSize, 4096);
    assert.equal(p.status?.snapshotKey, "p/k.snap");
    assert.match(p.status?.message ?? "", /every member serves the restored data/);
    assert.equal(cond(p, "RestoreComplete")?.status, "True");
    assert.equal(cond(p, "RestoreComplete")?.reason, "RestoreSucceeded");
    assert.equal(p.lock?.kind, "release");
    assert.deepEqual(p.finished, { ok: true, reason: "RestoreSucceeded", durationMs: 30_000, size: 4096 });
    assert.ok(p.events.some((e) => e.reason === "RestoreSucceeded"));
    w = apply(w, p);
    assert.equal(w.cluster?.status?.operationLock, null);
    // Terminal: later observations (even a "failed" Job) change nothing; the finalizer goes.
    const later = planRestore(obs(w, t("2026-11-21T10:05:00Z"), { job: job("Failed", undefined, "DeadlineExceeded") }));
    assert.equal(later.status, undefined);
    assert.equal(later.finished, undefined);
    assert.equal(later.lock, undefined);
    assert.equal(later.removeFinalizer, true);
  });

  test("a Job seen Complete before its Pod's report: no verdict and the lock kept until the result arrives", () => {
    let w = running();
    const early = { ...job("Succeeded"), podTerminated: false };
    const waiting = planRestore(obs(w, t("2026-11-21T10:00:41Z"), { job: early }));
    assert.equal(waiting.status, undefined, "still Running: a restore that succeeded must not be called failed");
    assert.equal(waiting.finished, undefined);
    assert.equal(waiting.lock, undefined, "the lock stays");
    assert.equal(waiting.requeueAfterMs, resultGraceMs - 1000);
    const p = planRestore(obs(w, t("2026-11-21T10:00:42Z"), { job: job("Succeeded", result(true)) }));
    assert.equal(p.status?.phase, "Completed");
    assert.equal(p.lock?.kind, "release");
    // Without any report by the end of the grace, the verdict is given (the Pod is gone).
    w = running();
    const late = planRestore(obs(w, new Date(t("2026-11-21T10:00:40Z").getTime() + resultGraceMs), { job: early }));
    assert.equal(late.status?.phase, "Failed");
    assert.match(late.status?.message ?? "", /succeeded but left no readable result/);
    assert.equal(late.lock?.kind, "release");
  });

  test("missing object (exit 6 ObjectMissing): Failed with the executor's precise message, lock released", () => {
    const w = running();
    const missing = result(false, "ObjectMissing", "p/k.snap does not exist in s3://b; nothing was restored");
    const p = planRestore(obs(w, t("2026-11-21T10:00:45Z"), { job: job("Failed", missing) }));
    assert.equal(p.status?.phase, "Failed");
    assert.equal(p.status?.message, "ObjectMissing: p/k.snap does not exist in s3://b; nothing was restored");
    assert.equal(cond(p, "RestoreComplete")?.reason, "RestoreFailed");
    assert.equal(p.lock?.kind, "release");
    assert.equal(p.finished?.reason, "ObjectMissing");
  });

  test("a failed Job without a result uses the Job's reason (DeadlineExceeded)", () => {
    const w = running();
    const p = planRestore(obs(w, t("2026-11-21T10:00:45Z"), { job: job("Failed", undefined, "DeadlineExceeded") }));
    assert.match(p.status?.message ?? "", /^DeadlineExceeded: Job restore-r1-0a1b2c3d failed/);
  });

  test("a Job not visible yet is re-created within the grace, then declared lost (lock released)", () => {
    const w = running();
    const early = planRestore(obs(w, t("2026-11-21T10:00:30Z")));
    assert.equal(early.createJob?.name, jobName);
    assert.equal(early.status, undefined);
    const late = planRestore(obs(w, new Date(t("2026-11-21T10:00:10Z").getTime() + maxJobCreateGraceMs + 1)));
    assert.equal(late.createJob, undefined);
    assert.equal(late.status?.phase, "Failed");
    assert.match(late.status?.message ?? "", /disappeared before it reported a result/);
    assert.equal(late.lock?.kind, "release");
  });

  test("a restore Job seen and then gone is never run a second time: Failed at once, lock released", () => {
    const w = running();
    const gone = planRestore(obs(w, t("2026-11-21T10:00:30Z"), { jobSighting: "observed" }));
    assert.equal(gone.createJob, undefined, "a restore runs once");
    assert.equal(gone.status?.phase, "Failed");
    assert.match(gone.status?.message ?? "", /disappeared before it reported a result/);
    assert.equal(gone.lock?.kind, "release");
  });

  test("a restore Job this process created and cannot see yet: waited for, not created again", () => {
    const w = running();
    const wait = planRestore(obs(w, t("2026-11-21T10:00:30Z"), { jobSighting: "created" }));
    assert.equal(wait.createJob, undefined);
    assert.equal(wait.status, undefined);
    assert.equal(wait.requeueAfterMs, maxJobCreateGraceMs - 20_000);
  });

  test("with a 60 s Job TTL a new leader re-creates a missing restore Job only in the first 30 s", () => {
    const w = running();
    const grace = jobCreateGraceMs(60);
    const early = planRestore(obs(w, t("2026-11-21T10:00:30Z"), { jobCreateGraceMs: grace }));
    assert.equal(early.createJob?.name, jobName);
    const late = planRestore(obs(w, t("2026-11-21T10:01:10Z"), { jobCreateGraceMs: grace }));
    assert.equal(late.createJob, undefined, "the TTL may have collected it: never run twice");
    assert.equal(late.status?.phase, "Failed");
  });

  test("crash between the terminal status and the lock release: the next pass releases it", () => {
    const w = running();
    const p = planRestore(obs(w, t("2026-11-21T10:00:45Z"), { job: job("Succeeded", result(true)) }));
    const half: World = { restore: { ...w.restore, status: p.status }, cluster: w.cluster };
    const next = planRestore(obs(half, t("2026-11-21T10:00:46Z")));
    assert.equal(next.lock?.kind, "release");
    assert.equal(next.status, undefined);
    assert.equal(next.finished, undefined, "not counted twice");
    assert.equal(next.removeFinalizer, true);
  });
});

describe("planRestore: deletion (finalizer)", () => {
  const deleting = (w: World, at = "2026-11-21T10:00:20Z"): World => ({
    ...w,
    restore: { ...w.restore, metadata: { ...w.restore.metadata, deletionTimestamp: at } },
  });

  test("deleted while its Job runs: the Job is deleted first, the lock kept until the Job and its Pods are gone", () => {
    const w = deleting(running());
    const p1 = planRestore(obs(w, t("2026-11-21T10:00:21Z"), { job: job("Running"), activeJobPods: 1 }));
    assert.equal(p1.deleteJob, jobName);
    assert.equal(p1.lock, undefined);
    assert.equal(p1.removeFinalizer, false);
    assert.ok(p1.requeueAfterMs !== undefined && p1.requeueAfterMs <= 2000);
    const p2 = planRestore(obs(w, t("2026-11-21T10:00:23Z"), { activeJobPods: 1 }));
    assert.equal(p2.lock, undefined, "a Pod still runs");
    const p3 = planRestore(obs(w, t("2026-11-21T10:00:25Z")));
    assert.equal(p3.lock?.kind, "release");
    assert.equal(p3.removeFinalizer, true);
    assert.equal(p3.finished?.reason, "Deleted");
  });

  test("Pods that never stop do not hold the lock forever", () => {
    const w = deleting(running());
    const p = planRestore(
      obs(w, new Date(t("2026-11-21T10:00:20Z").getTime() + deletionGraceMs), { activeJobPods: 1 }),
    );
    assert.equal(p.lock?.kind, "release");
    assert.ok(p.events.some((e) => e.type === "Warning" && e.reason === "LockRecovered"));
  });

  test("a waiting restore that is deleted just lets go (it holds no lock)", () => {
    let w: World = { restore: restore(), cluster: cluster({ operationLock: lockOf("openbaocluster/backup") }) };
    w = apply(w, planRestore(obs(w, t("2026-11-21T10:00:01Z"))));
    const p = planRestore(obs(deleting(w), t("2026-11-21T10:00:21Z")));
    assert.equal(p.lock, undefined, "the backup's lock is not touched");
    assert.equal(p.removeFinalizer, true);
    assert.equal(p.finished, undefined);
  });

  test("without our finalizer there is nothing to do", () => {
    const w = deleting({ restore: restore(), cluster: cluster() });
    const p = planRestore(obs(w, t("2026-11-21T10:00:21Z")));
    assert.equal(p.removeFinalizer, false);
    assert.equal(p.lock, undefined);
    assert.equal(p.status, undefined);
  });
});
