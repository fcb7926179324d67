/**
 * The RestoreManager's decisions (SPEC §2 OpenBaoRestore, §3), as one pure function of the
 * observed state and the clock: `planRestore(observation) → plan`. The controller performs
 * the plan in a fixed order — finalizer, lock acquisition (cluster), restore status, events
 * and metrics, lock release (cluster), Job deletion or creation, finalizer removal — and
 * decides nothing itself.
 *
 *   (new) ─► Validating ─┬─► Running ─┬─► Completed
 *            │   ▲  wait │            └─► Failed   (Job failed / lost)
 *            │   └───────┘  (for the lock, an older restore, or a backup to stop)
 *            └─► Failed  (cluster missing, not initialized / upgrading without force,
 *                         no auth, a Secret missing, overrideOperationLock without force)
 *
 * `Pending` is the phase of an object no pass has looked at yet (no status): the first pass
 * always moves it on. Invariants (each covered by a scenario test with a fixed clock):
 * - terminal phases never change: a Completed or Failed restore only releases a lock it
 *   still holds and drops its finalizer;
 * - the lock is decided by src/lock/ (lock.ts holds its invariants): taken (an optimistic
 *   write on the cluster) before the restore says Running, and the Job is created only after
 *   both, so a Job never runs without the lock; a lock taken by a pass that crashed before its
 *   status write is recognised as ours and kept;
 * - a restore waits (Validating, message naming the operation and holder) while a backup,
 *   an upgrade or another restore holds the lock, while a backup Job of the cluster is in
 *   flight, and behind older unfinished restores of the same cluster (first come, first
 *   served). With `overrideOperationLock` + `force` it takes the lock from a backup or an
 *   upgrade (Warning Event, `OperationLockOverride` condition), never from another restore:
 *   two restores of one cluster never run at once;
 * - no restore Job runs beside a backup (issue 15, defect 4): holding the lock, the restore
 *   starts its Job only once no backup Job or Pod of the cluster runs; with override it deletes
 *   the backup Jobs it displaces. The wait ends at the backup Job deadline since the lock was
 *   taken (src/lock/displaced.ts), so a Pod nobody can stop does not hold it forever;
 * - the lock is released when the Job's result is recorded (status first, then the lock, so a
 *   crash in between is repaired by the next pass), when the Job is lost, and — through the
 *   finalizer — when the restore is deleted: its Job is deleted first and the lock released
 *   once the Job and its Pods are gone (or after `deletionGraceMs`, so it never blocks forever);
 * - a result is recorded exactly once: only the transition out of Running records it, and
 *   that transition is an optimistic status write.
 *
 * Where the rest lives: the operation lock in src/lock/ (lock.ts holds its invariants), the
 * Job's result in src/jobs/result.ts (shared with backups; nothing here imports src/backup/),
 * the optimistic status writes in src/kube/status.ts.
 */
import {
  BackupType,
  Condition as ConditionType,
  type ConditionType as ConditionTypeValue,
  defaults,
  EventReason,
  type EventReasonValue,
  FailureReason,
  LockHolder,
  latestSnapshotKey,
  Reason,
  restoreFinalizer,
} from "../api/constants.ts";
import {
  fromTimestamp,
  isRestoreTerminal,
  isUpgrading,
  type ResolvedAuth,
  type ResolvedTarget,
  resolveAuth,
  resolveTarget,
  resolveTlsSecretName,
  setCondition,
  toTimestamp,
} from "../api/predicates.ts";
import type {
  ExecutorResourcesSpec,
  OpenBaoCluster,
  OpenBaoRestore,
  OpenBaoRestoreStatus,
  OperationLock,
  RestorePhase,
  TargetSpec,
} from "../api/types.ts";
import { decideMissingJob, type JobSighting, maxJobCreateGraceMs } from "../jobs/missing.ts";
import { restoreJobName } from "../jobs/names.ts";
import { failureOf, type ObservedJob, resultWaitMs } from "../jobs/result.ts";
import { type BackupWork, waitForBackupWork } from "../lock/displaced.ts";
import { describeLock, holdsLock } from "../lock/holder.ts";
import { decideLock } from "../lock/lock.ts";
import { deletionGraceMs, releaseOnDeletion } from "../lock/orphans.ts";
import { readinessBlockers, readinessOf, statefulSetAddresses } from "../readiness/decide.ts";
import type { ObservedStatefulSet } from "../readiness/statefulset.ts";

export type { ObservedJob };

/** Another OpenBaoRestore of the same cluster, for first-come-first-served ordering. */
export interface RestorePeer {
  readonly name: string;
  readonly createdAt: Date | undefined;
  readonly phase: RestorePhase | undefined;
  readonly deleting: boolean;
}

export interface RestoreObservation {
  readonly restore: OpenBaoRestore;
  /** The target cluster; undefined when it does not exist (confirmed by a live read). */
  readonly cluster: OpenBaoCluster | undefined;
  /** The restore's own Job (deterministic name, owner reference with the restore's UID). */
  readonly job: ObservedJob | undefined;
  /** Pods of that Job that have not terminated (deletion waits for them). */
  readonly activeJobPods: number;
  /** The other OpenBaoRestores naming the same cluster, in the same namespace. */
  readonly peers: readonly RestorePeer[];
  /**
   * Secrets the restore needs that do not exist; undefined when not looked up yet. The
   * controller looks them up only when the plan is about to start the restore
   * (`plan.secretsToCheck`) and then plans again with the answer.
   */
  readonly missingSecrets: readonly string[] | undefined;
  readonly now: Date;
  /** The operator's own image: the executor image unless the restore or the cluster names one. */
  readonly defaultImage: string;
  /** The StatefulSet the cluster describes, if it exists (readiness and addresses without a lifecycle operator). */
  readonly statefulSet?: ObservedStatefulSet | undefined;
  /**
   * Backup Jobs and Pods of the cluster still running (src/lock/work.ts); the Job in flight is
   * read from the cluster's status. A restore never starts its Job beside them.
   */
  readonly backupWork: Pick<BackupWork, "runningJobs" | "activePods">;
  /** What this process knows of the restore's Job when it cannot see it (src/jobs/missing.ts); nothing when absent. */
  readonly jobSighting?: JobSighting | undefined;
  /** How long a decided Job may be invisible before it is lost (`jobCreateGraceMs` of the Job TTL). */
  readonly jobCreateGraceMs?: number;
}

/** Everything the controller needs to build the restore Job and its ServiceAccount. */
export interface RestoreJobRequest {
  readonly name: string;
  readonly clusterName: string;
  readonly key: string;
  readonly force: boolean;
  readonly image: string;
  readonly auth: ResolvedAuth;
  readonly target: ResolvedTarget;
  readonly replicas: number;
  readonly openbaoAddresses: string[] | undefined;
  /** Undefined when every member is `http://`: no CA to mount. */
  readonly tlsSecretName: string | undefined;
  readonly activeDeadlineSeconds: number;
  readonly resources: ExecutorResourcesSpec | undefined;
  readonly serviceAccountName: string;
  /** From the cluster's `spec.backup` (workload identity for the same bucket), if any. */
  readonly serviceAccountAnnotations: Record<string, string>;
  readonly podLabels: Record<string, string>;
  readonly podAnnotations: Record<string, string>;
}

export interface PlannedEvent {
  /** The object the Event is about. */
  readonly on: "restore" | "cluster";
  readonly type: "Normal" | "Warning";
  readonly reason: EventReasonValue;
  readonly message: string;
}

/** A change to `status.operationLock` of the cluster (an optimistic write). */
export type LockChange =
  | { readonly kind: "acquire"; readonly lock: OperationLock; readonly overridden: OperationLock | undefined }
  | { readonly kind: "release" };

/** A restore that reached a terminal phase in this pass, for metrics. */
export interface RestoreOutcome {
  readonly ok: boolean;
  /** Short code: the executor's reason, `ValidationFailed`, `JobLost`, `Deleted`… */
  readonly reason: string;
  readonly durationMs: number | undefined;
  readonly size: number | undefined;
}

export interface RestorePlan {
  readonly addFinalizer: boolean;
  readonly lock: LockChange | undefined;
  /** The full status to write (optimistically), or undefined when nothing changed. */
  readonly status: OpenBaoRestoreStatus | undefined;
  readonly createJob: RestoreJobRequest | undefined;
  /** Name of the restore's Job to delete (the restore is being deleted while it runs). */
  readonly deleteJob: string | undefined;
  /** Backup Jobs of the cluster to delete: the restore took the lock over from them (src/lock/displaced.ts). */
  readonly deleteBackupJobs: readonly string[];
  readonly removeFinalizer: boolean;
  readonly events: PlannedEvent[];
  /** A restore Job was started by this pass. */
  readonly started: boolean;
  readonly finished: RestoreOutcome | undefined;
  /** Secrets to look up before starting; empty unless the plan starts the restore unchecked. */
  readonly secretsToCheck: readonly string[];
  readonly requeueAfterMs: number | undefined;
}

/** How soon a waiting restore re-checks the lock (cluster events wake it earlier). */
export const lockRecheckMs = 30_000;
/** Re-check interval while a deleted restore's Job and Pods go away (src/lock/orphans.ts bounds the wait). */
export const deletionRecheckMs = 2000;

/** `<cluster>-restore`: the ServiceAccount of restore Jobs, which OpenBao's restore role binds. */
export function restoreServiceAccountName(cluster: string): string {
  return `${cluster.slice(0, 245)}-restore`;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function ordered(a: { createdAt: Date | undefined; name: string }, b: { createdAt: Date | undefined; name: string }) {
  const ta = a.createdAt?.getTime() ?? 0;
  const tb = b.createdAt?.getTime() ?? 0;
  return ta !== tb ? ta - tb : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** `latest` read as what it means, for messages; a key as itself. */
function describeKey(key: string): string {
  return key === latestSnapshotKey ? "the newest verified backup (latest)" : key;
}

export function planRestore(obs: RestoreObservation): RestorePlan {
  const { restore, cluster, now } = obs;
  const name = restore.metadata.name ?? "";
  const namespace = restore.metadata.namespace ?? "";
  const spec = restore.spec;
  const before: OpenBaoRestoreStatus = restore.status ?? {};
  const status: OpenBaoRestoreStatus = structuredClone(before);
  const phase = before.phase;
  const lock = cluster?.status?.operationLock ?? null;
  const ours = holdsLock(restore, lock);
  const hasFinalizer = (restore.metadata.finalizers ?? []).includes(restoreFinalizer);
  const deleting = restore.metadata.deletionTimestamp !== undefined;
  const jobName = restoreJobName({ metadata: { name, uid: restore.metadata.uid ?? "" } });
  const graceMs = obs.jobCreateGraceMs ?? maxJobCreateGraceMs;
  const generation = restore.metadata.generation;

  const events: PlannedEvent[] = [];
  let addFinalizer = false;
  let removeFinalizer = false;
  let lockChange: LockChange | undefined;
  let createJob: RestoreJobRequest | undefined;
  let deleteJob: string | undefined;
  let deleteBackupJobs: readonly string[] = [];
  let started = false;
  let finished: RestoreOutcome | undefined;
  let secretsToCheck: string[] = [];
  const requeue: number[] = [];

  const setCond = (type: ConditionTypeValue, s: "True" | "False" | "Unknown", reason: string, message: string) => {
    const input = {
      type,
      status: s,
      reason,
      message,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    };
    status.conditions = [...setCondition(status.conditions, input, now)];
  };
  const event = (
    type: "Normal" | "Warning",
    reason: EventReasonValue,
    message: string,
    on: "restore" | "cluster" = "restore",
  ) => events.push({ on, type, reason, message: message.slice(0, 1024) });
  const release = (why: string): void => {
    if (!ours) return;
    lockChange = { kind: "release" };
    event("Normal", EventReason.LockReleased, `released the operation lock of cluster ${spec.cluster}: ${why}`);
  };
  const durationMs = (end: Date): number | undefined => {
    const start = fromTimestamp(before.startTime);
    return start ? Math.max(0, end.getTime() - start.getTime()) : undefined;
  };
  const fail = (reason: string, condReason: string, message: string, end: Date = now): void => {
    status.phase = "Failed";
    status.completionTime = toTimestamp(end);
    status.message = message.slice(0, 4096);
    setCond(ConditionType.RestoreComplete, "False", condReason, status.message);
    event(
      "Warning",
      EventReason.RestoreFailed,
      `restore of ${describeKey(status.snapshotKey ?? spec.source.key)} into ${spec.cluster} failed: ${message}`,
    );
    finished = { ok: false, reason, durationMs: durationMs(end), size: undefined };
  };

  // 1. Deleted: stop the Job, wait for it to go, then release the lock and let the object go.
  if (deleting) {
    if (hasFinalizer) {
      const deletedAt = fromTimestamp(restore.metadata.deletionTimestamp) ?? now;
      const waited = now.getTime() - deletedAt.getTime();
      if (obs.job?.phase === "Running") {
        deleteJob = obs.job.name;
        if (!isRestoreTerminal(phase)) {
          event(
            "Warning",
            EventReason.RestoreFailed,
            `the OpenBaoRestore was deleted while Job ${obs.job.name} ran: deleting the Job (a snapshot OpenBao had already received in full is applied regardless)`,
          );
        }
        requeue.push(deletionRecheckMs);
      } else if (releaseOnDeletion(obs.activeJobPods, waited) === "wait") {
        requeue.push(Math.min(deletionRecheckMs, deletionGraceMs - waited));
      } else {
        if (releaseOnDeletion(obs.activeJobPods, waited) === "release-anyway") {
          event(
            "Warning",
            EventReason.LockRecovered,
            `${obs.activeJobPods} Pod(s) of Job ${jobName} still run ${Math.round(waited / 1000)} s after the restore was deleted; releasing the lock anyway`,
          );
        }
        release("the OpenBaoRestore was deleted");
        removeFinalizer = true;
        if (phase === "Running")
          finished = { ok: false, reason: "Deleted", durationMs: durationMs(now), size: undefined };
      }
    }
    return finish();
  }

  // 2. Terminal: never changes again; only a lock still held and the finalizer are cleaned up.
  if (isRestoreTerminal(phase)) {
    release(`the restore is ${phase}`);
    if (hasFinalizer) removeFinalizer = true;
    return finish();
  }

  if (!hasFinalizer) addFinalizer = true;

  // 3. Running: record the Job's result once, re-create a Job not created yet, or declare it lost.
  if (phase === "Running") {
    const job = obs.job;
    const resultWait = job ? resultWaitMs(job, now) : 0;
    if (resultWait > 0) {
      // Finished, but its Pod's report is not visible yet (see resultGraceMs): wait for it.
      requeue.push(resultWait);
    } else if (job && job.phase !== "Running") {
      recordJob(job);
      release(`Job ${job.name} finished`);
    } else if (!job) {
      const request = cluster ? jobRequest(cluster) : undefined;
      const missing = decideMissingJob({
        decidedAt: fromTimestamp(before.startTime),
        now,
        sighting: obs.jobSighting,
        graceMs,
        creatable: request !== undefined,
      });
      if (missing.action !== "lost") {
        // Decided, not visible yet: wait for the cache, or create it when this process never did.
        if (missing.action === "create") createJob = request;
        requeue.push(missing.recheckMs);
      } else {
        fail(
          FailureReason.JobLost,
          Reason.RestoreFailed,
          `Job ${jobName} disappeared before it reported a result; OpenBao may or may not have applied ${describeKey(status.snapshotKey ?? spec.source.key)}: check the cluster and create a new OpenBaoRestore`,
        );
        release(`Job ${jobName} was lost`);
      }
    }
    return finish();
  }

  // 4. Pending / Validating: validate, then wait for or take the lock, then start.
  if (phase !== "Validating") {
    event(
      "Normal",
      EventReason.RestoreValidating,
      `validating the restore of ${describeKey(spec.source.key)} into cluster ${spec.cluster}`,
    );
  }
  const invalid = validate();
  if (invalid) {
    fail("ValidationFailed", Reason.RestoreValidationFailed, invalid);
    release("the restore failed validation");
    return finish();
  }
  const target = cluster as OpenBaoCluster; // validate() returned undefined: the cluster exists
  const force = spec.force === true;
  const override = force && spec.overrideOperationLock === true;

  const decision = decideLock(
    lock,
    {
      operation: "Restore",
      restore,
      override,
      message: `OpenBaoRestore ${name} restores ${describeKey(spec.source.key)}`,
    },
    now,
  );
  const inFlight = target.status?.backup?.currentJob?.name ?? undefined;
  let wait: string | undefined;
  if (decision.kind === "wait") {
    const holder = decision.holder;
    wait =
      holder.operation === "Restore"
        ? `another restore holds the operation lock: ${describeLock(holder)}; restores of one cluster never run at once`
        : `waiting for the operation lock, held by ${describeLock(holder)}${
            holder.holder === LockHolder.Upgrade ? " (spec.overrideOperationLock with spec.force takes it over)" : ""
          }`;
  } else if (decision.kind === "acquire" && !override) {
    const ahead = obs.peers
      .filter((p) => p.name !== name && !p.deleting && !isRestoreTerminal(p.phase))
      .filter((p) => ordered(p, { name, createdAt: fromTimestamp(restore.metadata.creationTimestamp) }) < 0)
      .sort(ordered)[0];
    if (ahead) wait = `queued behind OpenBaoRestore ${ahead.name}, an older restore of cluster ${spec.cluster}`;
    else if (inFlight !== undefined) {
      // Never take the lock from under a backup Job in flight (src/lock/lock.ts, invariant 7).
      wait = `waiting for backup Job ${inFlight} of cluster ${spec.cluster} to finish`;
    }
  }

  if (wait !== undefined) {
    status.phase = "Validating";
    if (before.message !== wait) event("Normal", EventReason.RestoreValidating, wait);
    status.message = wait;
    setCond(ConditionType.RestoreComplete, "False", Reason.RestoreWaitingForLock, wait);
    requeue.push(lockRecheckMs);
    return finish();
  }

  // 5. Take the lock (unless ours already), wait for the backup work it displaces, then start.
  if (obs.missingSecrets === undefined) {
    // The controller looks the Secrets up and plans again; nothing is started unchecked.
    secretsToCheck = secretNames(target);
    status.phase = "Validating";
    status.message = `validating the restore of ${describeKey(spec.source.key)} into cluster ${spec.cluster}`;
    setCond(ConditionType.RestoreComplete, "False", Reason.RestoreValidating, status.message);
    return finish();
  }
  const request = jobRequest(target);
  if (!request) return finish(); // unreachable: validate() refused a spec without auth
  if (decision.kind === "override") {
    lockChange = { kind: "acquire", lock: decision.lock, overridden: decision.displaced };
    const message = `took the operation lock of cluster ${spec.cluster} from ${describeLock(decision.displaced)} (spec.overrideOperationLock with spec.force)`;
    event("Warning", EventReason.OperationLockOverridden, message);
    event("Warning", EventReason.OperationLockOverridden, `OpenBaoRestore ${name} ${message}`, "cluster");
    setCond(ConditionType.OperationLockOverride, "True", Reason.OperationLockOverridden, message);
  } else if (decision.kind === "acquire") {
    lockChange = { kind: "acquire", lock: decision.lock, overridden: undefined };
    if (decision.replaced) {
      event(
        "Normal",
        EventReason.LockRecovered,
        `replaced a lock left by an earlier OpenBaoRestore named ${name}`,
        "cluster",
      );
    }
  }
  // The pass that writes the lock says so; a later pass holding it (renew) does not repeat it.
  if (lockChange) event("Normal", EventReason.LockAcquired, `holding the operation lock of cluster ${spec.cluster}`);
  // Since when the restore holds the lock (a hand-written lock without a readable time: since its creation).
  const heldSince =
    decision.kind === "renew"
      ? (fromTimestamp(decision.lock.acquiredAt) ?? fromTimestamp(restore.metadata.creationTimestamp) ?? now)
      : now;
  const displaced = waitForBackupWork(
    { inFlight, ...obs.backupWork },
    {
      cluster: spec.cluster,
      override,
      since: heldSince,
      deadlineSeconds: target.spec?.backup?.activeDeadlineSeconds ?? defaults.activeDeadlineSeconds,
      now,
    },
  );
  if (displaced.kind === "wait") {
    deleteBackupJobs = displaced.stop;
    status.phase = "Validating";
    if (before.message !== displaced.message) event("Normal", EventReason.RestoreValidating, displaced.message);
    status.message = displaced.message;
    setCond(ConditionType.RestoreComplete, "False", Reason.RestoreWaitingForLock, displaced.message);
    requeue.push(displaced.recheckMs);
    return finish();
  }
  if (displaced.kind === "overdue") {
    event("Warning", override ? EventReason.OperationLockOverridden : EventReason.RestoreValidating, displaced.message);
  }
  status.phase = "Running";
  status.startTime = toTimestamp(now);
  // "latest" is resolved by the Job; its result records the key it chose.
  if (spec.source.key !== latestSnapshotKey) status.snapshotKey = spec.source.key;
  status.message = `Job ${request.name} restores ${describeKey(spec.source.key)} into cluster ${spec.cluster}${force ? " (snapshot-force)" : ""}`;
  setCond(ConditionType.RestoreComplete, "False", Reason.RestoreRunning, status.message);
  createJob = request;
  started = true;
  event(
    "Normal",
    EventReason.RestoreJobCreated,
    `created Job ${request.name} to restore ${describeKey(spec.source.key)}`,
  );
  requeue.push(graceMs);
  return finish();

  /** The first reason the restore cannot run, as a message naming the field and the fix. */
  function validate(): string | undefined {
    if (!cluster) {
      return `OpenBaoCluster ${spec.cluster} does not exist in namespace ${namespace}: fix spec.cluster or create the cluster, then create a new OpenBaoRestore`;
    }
    if (spec.overrideOperationLock === true && spec.force !== true) {
      return "spec.overrideOperationLock requires spec.force: true";
    }
    if (resolveAuth(spec) === undefined) {
      return "no OpenBao authentication configured: set spec.jwtAuthRole (JWT auth) or spec.tokenSecretRef (a Secret holding a token)";
    }
    if (spec.source.target === undefined && cluster.spec?.backup?.target === undefined) {
      return `spec.source.target is not set and cluster ${spec.cluster} has no spec.backup.target to take it from: set spec.source.target, then create a new OpenBaoRestore`;
    }
    const readiness = readinessOf(cluster, obs.statefulSet);
    if (spec.force !== true && readiness.source === "StatefulSet") {
      const blocked = readinessBlockers(cluster, readiness, BackupType.Manual)[0];
      if (blocked) {
        return `cluster ${spec.cluster} cannot take a restore: ${blocked.message}; start its Pods, or set spec.force to skip this check`;
      }
    } else if (spec.force !== true) {
      if (cluster.status?.initialized !== true) {
        return `cluster ${spec.cluster} is not initialized (status.initialized is not true): restore into an initialized cluster, or set spec.force to skip this check`;
      }
      if (isUpgrading(cluster) || cluster.status?.phase === "Upgrading") {
        return `cluster ${spec.cluster} is upgrading: create the restore after the upgrade, or set spec.force (and spec.overrideOperationLock to take the upgrade's lock)`;
      }
    }
    const missing = obs.missingSecrets ?? [];
    if (missing.length > 0) {
      return `Secret ${missing.join(", ")} not found in namespace ${namespace}: create ${missing.length > 1 ? "them" : "it"} or fix the reference, then create a new OpenBaoRestore`;
    }
    return undefined;
  }

  function secretNames(c: OpenBaoCluster): string[] {
    const names: string[] = [];
    const tls = tlsSecretName(c);
    if (tls !== undefined) names.push(tls);
    const auth = resolveAuth(spec);
    if (auth?.method === "token") names.push(auth.secretName);
    const credentials = sourceTarget(c)?.credentialsSecretRef?.name;
    if (credentials) names.push(credentials);
    return [...new Set(names)];
  }

  /** `spec.source.target`, else the cluster's own `spec.backup.target` (validate() refused neither). */
  function sourceTarget(c: OpenBaoCluster): TargetSpec | undefined {
    return spec.source.target ?? c.spec?.backup?.target;
  }

  /** Explicit `openbaoAddresses`, else the StatefulSet's members when readiness comes from it. */
  function memberAddresses(c: OpenBaoCluster): string[] | undefined {
    const explicit = c.spec?.backup?.openbaoAddresses;
    if (explicit !== undefined && explicit.length > 0) return [...explicit];
    const readiness = readinessOf(c, obs.statefulSet);
    return readiness.source === "StatefulSet" ? statefulSetAddresses(readiness.statefulSet, namespace) : undefined;
  }

  function tlsSecretName(c: OpenBaoCluster): string | undefined {
    return resolveTlsSecretName(c.spec?.backup?.tlsSecretRef, spec.cluster, memberAddresses(c));
  }

  function jobRequest(c: OpenBaoCluster): RestoreJobRequest | undefined {
    const auth = resolveAuth(spec);
    const target = sourceTarget(c);
    if (!auth || !target) return undefined;
    const backup = c.spec?.backup;
    const readiness = readinessOf(c, obs.statefulSet);
    return {
      name: jobName,
      clusterName: spec.cluster,
      key: spec.source.key,
      force: spec.force === true,
      image: spec.image ?? backup?.image ?? backup?.executorImage ?? obs.defaultImage,
      auth,
      target: resolveTarget(target),
      replicas: readiness.source === "StatefulSet" ? readiness.statefulSet.replicas : (c.spec?.replicas ?? 1),
      openbaoAddresses: memberAddresses(c),
      tlsSecretName: tlsSecretName(c),
      activeDeadlineSeconds: backup?.activeDeadlineSeconds ?? defaults.activeDeadlineSeconds,
      resources: backup?.resources,
      serviceAccountName: restoreServiceAccountName(spec.cluster),
      serviceAccountAnnotations: { ...backup?.serviceAccount?.annotations },
      podLabels: { ...backup?.podLabels },
      podAnnotations: { ...backup?.podAnnotations },
    };
  }

  function recordJob(job: ObservedJob): void {
    const end = job.finishedAt ?? now;
    const result = job.result;
    if (job.phase === "Succeeded" && result?.ok === true) {
      const key = result.key ?? spec.source.key;
      status.phase = "Completed";
      status.completionTime = toTimestamp(end);
      status.snapshotKey = key;
      if (result.size !== undefined) status.snapshotSize = result.size;
      const sha = result.sha256 ? `, sha256 ${result.sha256.slice(0, 12)}…` : "";
      status.message =
        `restored ${key} (${result.size ?? "?"} bytes${sha}) into cluster ${spec.cluster}; every member serves the restored data`.slice(
          0,
          4096,
        );
      setCond(ConditionType.RestoreComplete, "True", Reason.RestoreSucceeded, status.message);
      event("Normal", EventReason.RestoreSucceeded, status.message);
      finished = { ok: true, reason: Reason.RestoreSucceeded, durationMs: durationMs(end), size: result.size };
      return;
    }
    if (result?.ok === false && result.key !== undefined && spec.source.key === latestSnapshotKey) {
      status.snapshotKey = result.key;
    }
    const { reason, message: detail } = failureOf(job);
    fail(reason, Reason.RestoreFailed, `${reason}: ${detail}`, end);
  }

  function finish(): RestorePlan {
    const positive = requeue.filter((ms) => ms > 0);
    return {
      addFinalizer,
      lock: lockChange,
      status: deepEqual(status, before) ? undefined : status,
      createJob,
      deleteJob,
      deleteBackupJobs,
      removeFinalizer,
      events,
      started,
      finished,
      secretsToCheck,
      requeueAfterMs: positive.length > 0 ? Math.min(...positive) : undefined,
    };
  }
}
