/**
 * The BackupManager's decisions (SPEC §3), as one pure function of observed state and the
 * clock: `planBackup(observation) → plan`. The controller performs the plan in order —
 * status (one optimistic write), then the Job, then the trigger annotation — and never
 * decides anything itself.
 *
 * Invariants (each covered by a scenario test with a fixed clock):
 * - at most one Job per cron window: the window is recorded, with the lock and the Job's
 *   name (`currentJob`), in the same write that precedes the Job; Job names are derived
 *   from the window, so a repeated create is an AlreadyExists, never a second Job; a manual
 *   Job (named after the current second) never takes the name of an existing Job;
 * - a Job's result is recorded exactly once: recording clears `currentJob` and releases the
 *   lock in one write, and only the Job named in `currentJob` is ever recorded;
 * - the lock is decided by src/lock/ (lock.ts holds its invariants): taken in the status write
 *   that records the Job, released when its Job ends or is gone, when no Job holds it, and
 *   when `spec.backup` is removed (after the running Job ends); a Job is (re-)created only
 *   under it;
 * - a Job whose lock a restore took over (`overrideOperationLock`) is stopped and recorded
 *   once as a `LockOverridden` failure, unless it had already succeeded (issue 15, defect 4);
 * - a blocked run changes nothing but conditions and events, keeps the manual trigger and
 *   re-checks soon (trap 11: never silent);
 * - a trigger is honoured once: the Job answering it carries its value, so a trigger still
 *   present after a crash (status written, annotation not yet removed) is recognised as
 *   answered, cleared, and never starts a second Job;
 * - a Job whose result is lost (the Job gone, or its Pod with its report) is recorded only
 *   after a confirm Job looked in storage for the snapshot ending in its key id: the success it
 *   was when found, `JobLost` otherwise (issue 15, defect 6); a Job this process created or
 *   saw is never created again, and a new process creates one only within a grace shorter than
 *   half the Job TTL (src/jobs/missing.ts): a vanished Job is lost, never silently re-run.
 *
 * Where the rest lives: the operation lock in src/lock/ (lock.ts holds its invariants), a Job
 * and its Pods turned into a result in src/jobs/result.ts, the cron windows in schedule.ts, the
 * rollback point in pre-upgrade.ts, the optimistic status write in src/kube/status.ts.
 */
import {
  Annotation,
  BackupType,
  type BackupTypeValue,
  BlockedReason,
  type BlockedReasonValue,
  Condition as ConditionType,
  type ConditionType as ConditionTypeValue,
  EventReason,
  type EventReasonValue,
  FailureReason,
  LockHolder,
  limits,
  Reason,
} from "../api/constants.ts";
import {
  fromTimestamp,
  getCondition,
  observeSchedule,
  pendingTrigger,
  preUpgradeSnapshotEnabled,
  type ResolvedBackupSpec,
  removeCondition,
  resolveBackupSpec,
  setCondition,
  toTimestamp,
  wantsPreUpgradeSnapshot,
} from "../api/predicates.ts";
import type {
  BackupStatus,
  Condition,
  CurrentJob,
  DestinationStatus,
  OpenBaoCluster,
  OperationLock,
  PreUpgradeStatus,
} from "../api/types.ts";
import type { ReportedDestination } from "../executor/result.ts";
import { decideMissingJob, type JobSighting, maxJobCreateGraceMs } from "../jobs/missing.ts";
import { backupJobName, backupKeyId, confirmJobName, preUpgradeJobName } from "../jobs/names.ts";
import { failureOf, type ObservedJob, resultWaitMs } from "../jobs/result.ts";
import { displacedBy, displacedFailure } from "../lock/displaced.ts";
import { isBackupLock } from "../lock/holder.ts";
import { decideLock, type LockDecision, type LockRequest, mayRun, releaseLock } from "../lock/lock.ts";
import { leftOverBackupLock } from "../lock/orphans.ts";
import { type Readiness, readinessBlockers, readinessOf, statefulSetAddresses } from "../readiness/decide.ts";
import type { ObservedStatefulSet } from "../readiness/statefulset.ts";
import { formatDuration } from "../util/duration.ts";
import {
  afterFailedAttempt,
  attemptNow,
  attemptStarted,
  currentEpisode,
  endEpisode,
  jobNameSeed,
} from "./pre-upgrade.ts";
import { dueWindow, isBackupStale, nextWindowAfter, parseSchedule, type Schedule, ScheduleError } from "./schedule.ts";

export interface BackupObservation {
  readonly cluster: OpenBaoCluster;
  readonly jobs: readonly ObservedJob[];
  /** Names of non-terminal OpenBaoRestores for this cluster. */
  readonly activeRestores: readonly string[];
  /** Secrets the backup spec references that do not exist. */
  readonly missingSecrets: readonly string[];
  readonly now: Date;
  /** The operator's own image: the executor image unless the spec names one. */
  readonly defaultImage: string;
  /** The StatefulSet `spec.backup.statefulSetName` (default: the cluster's name) names, if it exists. */
  readonly statefulSet?: ObservedStatefulSet | undefined;
  /** What this process knows of the Jobs in flight it cannot see (src/jobs/missing.ts); none when absent. */
  readonly sightings?: ReadonlyMap<string, JobSighting>;
  /** How long a decided Job may be invisible before it is lost (`jobCreateGraceMs` of the Job TTL). */
  readonly jobCreateGraceMs?: number;
}

export interface JobRequest {
  readonly name: string;
  readonly type: BackupTypeValue;
  readonly window: Date | undefined;
  readonly spec: ResolvedBackupSpec;
  readonly targetVersion: string | undefined;
  readonly attempt: number | undefined;
  /** The trigger value this Job answers: stamped on it as the `openbao.org/trigger` annotation. */
  readonly trigger: string | undefined;
  /** The 8 hex digits the snapshot key ends in (`BACKUP_KEY_ID`, annotation `openbao.org/key-id`). */
  readonly keyId?: string | undefined;
  /** A confirm Job: the backup Job whose lost result it looks for in storage. */
  readonly confirms?: string | undefined;
  /** Bytes the snapshot is expected to reach (`BACKUP_SIZE_HINT`): the part size is raised to fit it. */
  readonly sizeHint?: number | undefined;
}

export interface PlannedEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: EventReasonValue;
  readonly message: string;
}

/** What was recorded this pass, for metrics. */
export interface RecordedOutcome {
  readonly type: BackupTypeValue;
  readonly ok: boolean;
  readonly size: number | undefined;
  readonly durationMs: number | undefined;
  readonly retentionDeleted: number | undefined;
  /** A successful backup whose retention could not delete an object, or could not run at all. */
  readonly retentionFailed: boolean;
  readonly finishedAt: Date;
  /** With several destinations: each one's outcome as the Job reported it. */
  readonly destinations?: readonly { readonly name: string; readonly ok: boolean }[] | undefined;
}

export interface StatusWrite {
  readonly backup: BackupStatus;
  readonly operationLock: OperationLock | null;
  readonly conditions: Condition[];
}

export interface BackupPlan {
  /** The status to write (optimistically), or undefined when nothing changed. */
  readonly status: StatusWrite | undefined;
  readonly createJob: JobRequest | undefined;
  /** The running Job to delete before the status write: a restore took its lock over (src/lock/displaced.ts). */
  readonly deleteJob: string | undefined;
  readonly clearTrigger: boolean;
  readonly events: PlannedEvent[];
  readonly recorded: RecordedOutcome | undefined;
  /** Why preflight refused a due backup this pass; empty when nothing was refused (metrics). */
  readonly blocked: readonly BlockedReasonValue[];
  readonly requeueAfterMs: number | undefined;
}

/**
 * A backup Job is told to expect the last backup's size × this (`BACKUP_SIZE_HINT`): the
 * executor raises the part size so that size fits the provider's part limit (10,000 parts on
 * S3), leaving room for the snapshot to double before a backup could fail with StorageTooLarge.
 */
export const sizeHintHeadroom = 2;

/** How soon a blocked run is re-checked (events also wake the controller earlier). */
export const blockedRecheckMs = 30_000;

type SetCond = (
  type: ConditionTypeValue,
  status: "True" | "False" | "Unknown",
  reason: string,
  message: string,
) => void;

interface Want {
  readonly type: BackupTypeValue;
  readonly window: Date | undefined;
  readonly skippedWindows: number;
  readonly manual: boolean;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The status being planned, and what the pass will do, as the steps below build it up.
 * `planBackup` owns it; each step reads the observation and adds to it.
 */
interface Draft {
  readonly obs: BackupObservation;
  readonly now: Date;
  readonly name: string;
  readonly backup: BackupStatus;
  lock: OperationLock | null;
  conditions: Condition[];
  readonly setCond: SetCond;
  readonly events: PlannedEvent[];
  readonly requeue: number[];
  recorded: RecordedOutcome | undefined;
  createJob: JobRequest | undefined;
  deleteJob: string | undefined;
  clearTrigger: boolean;
  blocked: BlockedReasonValue[];
}

/**
 * One pass, in named steps: settle the Job in flight; without a usable `spec.backup` stop
 * there; read the schedule; follow the pre-upgrade episode; choose what is due; preflight
 * and start it; judge health.
 */
export function planBackup(obs: BackupObservation): BackupPlan {
  const { cluster, now } = obs;
  const before = {
    backup: cluster.status?.backup ?? {},
    operationLock: cluster.status?.operationLock ?? null,
    conditions: cluster.status?.conditions ?? [],
  };
  // observedGeneration lets a lifecycle controller tell a current PreUpgradeSnapshotReady
  // from one computed before its spec.version bump was seen.
  const generation = cluster.metadata.generation;
  const draft: Draft = {
    obs,
    now,
    name: cluster.metadata.name ?? "",
    backup: structuredClone(before.backup),
    lock: before.operationLock,
    conditions: before.conditions,
    setCond: (type, status, reason, message) => {
      const input = {
        type,
        status,
        reason,
        message,
        ...(generation === undefined ? {} : { observedGeneration: generation }),
      };
      draft.conditions = [...setCondition(draft.conditions, input, now)];
    },
    events: [],
    requeue: [],
    recorded: undefined,
    createJob: undefined,
    deleteJob: undefined,
    clearTrigger: false,
    blocked: [],
  };
  const spec = cluster.spec?.backup;
  const readiness = readinessOf(cluster, obs.statefulSet);
  const resolved = spec
    ? resolveBackupSpec(spec, {
        clusterName: draft.name,
        defaultImage: obs.defaultImage,
        memberAddresses:
          readiness.source === "StatefulSet"
            ? statefulSetAddresses(readiness.statefulSet, cluster.metadata.namespace ?? "")
            : undefined,
      })
    : undefined;

  const trigger = pendingTrigger(cluster);
  const answered = settleInFlight(draft, resolved, trigger);
  if (answered) draft.clearTrigger = true;
  /** A trigger still waiting for a Job of its own. */
  const request = answered ? undefined : trigger;

  if (!spec || !resolved) {
    destinationsHealth(draft, undefined);
    withoutBackupSpec(draft, spec !== undefined);
    return finish(draft, before);
  }
  const { schedule, observedAt } = followSchedule(draft, spec, resolved, readiness);
  const preUpgradeWanted = followPreUpgrade(draft);
  const want = dueWork(draft, schedule, resolved, observedAt, preUpgradeWanted, request);
  if (want) start(draft, want, resolved, readiness, request);
  setBackingUp(
    draft.backup.currentJob ?? undefined,
    draft.setCond,
    want !== undefined && draft.createJob === undefined,
  );
  health(draft.backup, schedule, observedAt, now, draft.setCond);
  destinationsHealth(draft, resolved);
  return finish(draft, before);
}

function finish(
  draft: Draft,
  before: { backup: BackupStatus; operationLock: OperationLock | null; conditions: Condition[] },
): BackupPlan {
  const next: StatusWrite = { backup: draft.backup, operationLock: draft.lock, conditions: draft.conditions };
  const positive = draft.requeue.filter((ms) => ms > 0);
  return {
    status: deepEqual(next, before) ? undefined : next,
    createJob: draft.createJob,
    deleteJob: draft.deleteJob,
    clearTrigger: draft.clearTrigger,
    events: draft.events,
    recorded: draft.recorded,
    blocked: draft.blocked,
    requeueAfterMs: positive.length > 0 ? Math.min(...positive) : undefined,
  };
}

/**
 * Step 1, the Job in flight: wait for its report, record its result once, stop it when a
 * restore took its lock over, re-create it when the create did not happen, or declare it
 * lost. Returns whether the pending trigger is the request this Job answers (left by a crash
 * before the trigger's removal).
 */
function settleInFlight(draft: Draft, resolved: ResolvedBackupSpec | undefined, trigger: string | undefined): boolean {
  const { backup, now, obs } = draft;
  const current = backup.currentJob ?? undefined;
  if (!current) {
    if (leftOverBackupLock(draft.lock, undefined)) {
      draft.lock = releaseLock(draft.lock, LockHolder.Backup);
      draft.events.push({
        type: "Normal",
        reason: EventReason.LockRecovered,
        message: "released a backup operation lock that no Job holds",
      });
    }
    return false;
  }
  const job = obs.jobs.find((j) => j.name === current.name);
  const type = current.type;
  const answered = trigger !== undefined && job?.trigger === trigger;
  const resultWait = job ? resultWaitMs(job, now) : 0;
  const displacing = displacedBy(draft.lock);
  if (resultWait > 0) {
    // Finished, but its Pod's report is not visible yet: the Job stays in flight until it is.
    draft.requeue.push(resultWait);
    return answered;
  }
  if (displacing !== undefined && job?.phase !== "Succeeded") {
    // A restore took the lock over while this Job was in flight: stop it and say so, once.
    // A failed Job is kept for its logs; one not cached yet is stopped by the restore when
    // it shows up (src/lock/displaced.ts); the restore keeps the lock (src/lock/lock.ts, 6).
    if (job?.phase === "Running") draft.deleteJob = current.name;
    recordEnded(draft, displacedJob(current.name, displacing, job, now), type, false);
    return answered;
  }
  if (current.confirm) {
    confirmLost(draft, current, current.confirm, resolved);
    return answered;
  }
  if (job?.phase === "Succeeded" && job.result === undefined && resolved && current.keyId !== undefined) {
    // Succeeded, but its report is gone (or unreadable): storage knows whether it stored a backup.
    // (A Job from before key ids is recorded as the Job says: "no readable result".)
    startConfirm(draft, current, resolved, FailureReason.JobFailed);
    return answered;
  }
  if (job) {
    if (job.phase !== "Running") recordEnded(draft, job, type, true);
    return answered;
  }
  const decision = decideLock(draft.lock, lockRequest(type, current.name), now);
  const missing = decideMissingJob({
    decidedAt: fromTimestamp(current.createdAt),
    now,
    sighting: obs.sightings?.get(current.name),
    graceMs: graceOf(obs),
    creatable: resolved !== undefined && mayRun(decision),
  });
  if (missing.action === "wait") {
    draft.requeue.push(missing.recheckMs);
    return answered;
  }
  if (resolved && missing.action === "create") {
    // A Job never runs without its lock: a lock freed meanwhile (by hand) is taken again.
    draft.lock = lockAfter(decision, draft.lock);
    // Decided, but the create did not happen (or is not visible yet): make it so. A
    // manual decision was made for the trigger still pending (it is removed only after
    // the create): this Job answers it, or the trigger would start a second Job later.
    const answers = type === BackupType.Manual ? trigger : undefined;
    draft.createJob = {
      ...jobRequest(
        obs.cluster,
        current.name,
        type,
        fromTimestamp(current.window),
        resolved,
        backup.preUpgrade,
        answers,
      ),
      keyId: current.keyId,
    };
    draft.requeue.push(missing.recheckMs);
    return answers !== undefined;
  }
  startConfirm(draft, current, resolved, FailureReason.JobLost);
  return answered;
}

/**
 * The Job in flight is gone (or its report is): before anything is recorded, a confirm Job
 * looks in storage for the backup whose key ends in the Job's key id (issue 15, defect 6), so
 * a backup that was stored is recorded as stored, and the same event always gives the same
 * record. Without a target to search (spec.backup removed) or a key id (a Job created before
 * key ids were recorded), the loss is recorded at once.
 */
function startConfirm(
  draft: Draft,
  current: CurrentJob,
  resolved: ResolvedBackupSpec | undefined,
  reason: LostReason,
): void {
  const what = lostWhat(current.name, reason);
  if (!resolved || current.keyId === undefined) {
    const why = resolved
      ? "it has no key id to look for in storage"
      : "spec.backup is gone, so storage cannot be searched";
    recordLost(draft, current, `${what}; ${why}`, reason);
    return;
  }
  const job = confirmJobName(current.name);
  draft.backup.currentJob = { ...current, confirm: { job, startedAt: toTimestamp(draft.now), reason } };
  draft.createJob = confirmRequest(draft, current, job, resolved, current.keyId);
  draft.requeue.push(graceOf(draft.obs));
  draft.events.push({
    type: "Warning",
    reason: EventReason.BackupResultMissing,
    message: `${what}; Job ${job} looks in storage for its backup (key id ${current.keyId})`,
  });
}

/** Step 1 for a Job whose result was lost: wait for the confirm Job, then record what storage says. */
function confirmLost(
  draft: Draft,
  current: CurrentJob,
  confirm: NonNullable<CurrentJob["confirm"]>,
  resolved: ResolvedBackupSpec | undefined,
): void {
  const { now, obs } = draft;
  const reason = confirm.reason ?? FailureReason.JobLost;
  const what = lostWhat(current.name, reason);
  const check = obs.jobs.find((j) => j.name === confirm.job);
  if (!check) {
    const missing = decideMissingJob({
      decidedAt: fromTimestamp(confirm.startedAt),
      now,
      sighting: obs.sightings?.get(confirm.job),
      graceMs: graceOf(obs),
      creatable: resolved !== undefined && current.keyId !== undefined,
    });
    if (missing.action !== "lost") {
      // Decided, not yet visible (or the create did not happen): wait for it, or make it so.
      if (missing.action === "create" && resolved && current.keyId !== undefined)
        draft.createJob = confirmRequest(draft, current, confirm.job, resolved, current.keyId);
      draft.requeue.push(missing.recheckMs);
      return;
    }
    recordLost(
      draft,
      current,
      `${what}, and Job ${confirm.job} that was to look for its backup in storage disappeared too`,
      reason,
    );
    return;
  }
  if (check.phase === "Running") return;
  const wait = resultWaitMs(check, now);
  if (wait > 0) {
    draft.requeue.push(wait);
    return;
  }
  const found = check.phase === "Succeeded" && check.result?.ok === true && check.result.key !== undefined;
  if (found && check.result) {
    // The backup's own facts, from its manifest; the confirm's duration and retention are not the backup's.
    const result = { ...check.result, durationMs: undefined, retentionDeleted: undefined, retentionFailed: undefined };
    recordEnded(draft, { ...check, name: current.name, result }, current.type, true, confirm.job);
    return;
  }
  if (check.result?.reason === notFoundReason) {
    recordLost(
      draft,
      current,
      `${what}, and storage holds no backup of it (key id ${current.keyId ?? "?"}, checked by Job ${confirm.job})`,
      reason,
    );
    return;
  }
  const failed = failureOf(check);
  recordLost(
    draft,
    current,
    `${what}, and Job ${confirm.job} could not look for its backup in storage: ${failed.reason}: ${failed.message}`,
    reason,
  );
}

/** The confirm executor's reason when no backup with the key id is in storage (src/executor/confirm.ts). */
const notFoundReason = "BackupNotFound";

function confirmRequest(
  draft: Draft,
  current: CurrentJob,
  name: string,
  resolved: ResolvedBackupSpec,
  keyId: string,
): JobRequest {
  return {
    ...jobRequest(
      draft.obs.cluster,
      name,
      current.type,
      fromTimestamp(current.window),
      resolved,
      draft.backup.preUpgrade,
      undefined,
    ),
    keyId,
    confirms: current.name,
    // It only reads: no upload to size.
    sizeHint: undefined,
  };
}

/** Why a Job in flight has no result: gone (JobLost), or finished without a readable one (JobFailed). */
type LostReason = "JobLost" | "JobFailed";

/** The grace for a decided Job that is not visible (src/jobs/missing.ts). */
function graceOf(obs: BackupObservation): number {
  return obs.jobCreateGraceMs ?? maxJobCreateGraceMs;
}

function lostWhat(job: string, reason: LostReason): string {
  return reason === FailureReason.JobLost
    ? `Job ${job} disappeared before its result was read`
    : `Job ${job} succeeded but left no readable result`;
}

/** Records the Job in flight as failed with `reason` and `message`, releasing the lock it held. */
function recordLost(
  draft: Draft,
  current: CurrentJob,
  message: string,
  reason: LostReason = FailureReason.JobLost,
): void {
  const lost: ObservedJob = {
    name: current.name,
    phase: "Failed",
    finishedAt: draft.now,
    jobFailureReason: reason,
    result: undefined,
    podTerminated: false,
    explained: { reason, message },
  };
  const heldLock = isBackupLock(draft.lock);
  recordEnded(draft, lost, current.type, heldLock);
  if (heldLock && reason === FailureReason.JobLost) {
    draft.events.push({
      type: "Warning",
      reason: EventReason.LockRecovered,
      message: `Job ${current.name} disappeared before it finished; released the operation lock`,
    });
  }
}

/**
 * Records the Job in flight as ended and forgets it; `release` frees the backup's lock.
 * `foundBy` names the confirm Job that found its backup in storage after its result was lost.
 */
function recordEnded(draft: Draft, job: ObservedJob, type: BackupTypeValue, release: boolean, foundBy?: string): void {
  draft.recorded = record(draft.backup, job, type, draft.now, draft.events, foundBy);
  draft.backup.currentJob = null;
  draft.backup.lastRecordedJob = job.name;
  if (release) draft.lock = releaseLock(draft.lock, LockHolder.Backup);
}

/** Step 2, no usable `spec.backup`: nothing to schedule; the lock stays only while a Job still runs. */
function withoutBackupSpec(draft: Draft, specPresent: boolean): void {
  if (specPresent) {
    draft.setCond(
      ConditionType.BackupHealthy,
      "False",
      Reason.InvalidConfiguration,
      "spec.backup names no OpenBao authentication: set jwtAuthRole or tokenSecretRef",
    );
  }
  delete draft.backup.nextScheduledBackup;
  setBackingUp(draft.backup.currentJob ?? undefined, draft.setCond);
}

/** Step 3, the schedule: parse it (an invalid one is a condition and one event), note changes, the next window. */
function followSchedule(
  draft: Draft,
  spec: NonNullable<NonNullable<OpenBaoCluster["spec"]>["backup"]>,
  resolved: ResolvedBackupSpec,
  readiness: Readiness,
): { schedule: Schedule | undefined; observedAt: Date } {
  const { backup, now } = draft;
  let schedule: Schedule | undefined;
  try {
    schedule = parseSchedule(resolved.schedule, resolved.timeZone);
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    if (getCondition(draft.conditions, ConditionType.BackupHealthy)?.reason !== Reason.InvalidSchedule) {
      draft.events.push({ type: "Warning", reason: EventReason.ScheduleInvalid, message: err.message });
    }
    draft.setCond(ConditionType.BackupHealthy, "False", Reason.InvalidSchedule, err.message);
  }
  const observed = observeSchedule(spec, backup.observedSchedule, now);
  if (observed.changed && backup.observedSchedule) {
    draft.events.push({
      type: "Normal",
      reason: EventReason.ScheduleChanged,
      message: `schedule is now "${resolved.schedule}" (${resolved.timeZone})${resolved.suspend ? ", suspended" : ""}`,
    });
  }
  backup.observedSchedule = observed.observed;
  backup.readiness =
    readiness.source === "StatefulSet"
      ? { source: readiness.source, statefulSet: readiness.statefulSet.name }
      : { source: readiness.source };
  const observedAt = fromTimestamp(observed.observed.observedTime) ?? now;
  const next = schedule && !resolved.suspend ? nextWindowAfter(schedule, now) : undefined;
  if (next) {
    backup.nextScheduledBackup = toTimestamp(next);
    draft.requeue.push(next.getTime() - now.getTime());
  } else delete backup.nextScheduledBackup;
  return { schedule, observedAt };
}

/** Step 4, the pre-upgrade episode of the pending version (src/backup/pre-upgrade.ts). Returns whether one is wanted. */
function followPreUpgrade(draft: Draft): boolean {
  const { backup, now } = draft;
  const cluster = draft.obs.cluster;
  const wanted = wantsPreUpgradeSnapshot(cluster);
  if (wanted) {
    backup.preUpgrade = currentEpisode(cluster, backup.preUpgrade ?? undefined, now);
    preUpgradeCondition(backup.preUpgrade, draft.setCond);
    return true;
  }
  const ended = endEpisode(backup.preUpgrade ?? undefined, now);
  if (ended) backup.preUpgrade = ended;
  if (preUpgradeSnapshotEnabled(cluster.spec)) {
    draft.setCond(
      ConditionType.PreUpgradeSnapshotReady,
      "True",
      Reason.PreUpgradeBackupNotRequired,
      "no upgrade is pending: spec.version equals status.currentVersion",
    );
  }
  return false;
}

/** Step 5, what should run now: nothing while a Job is in flight; else a pre-upgrade attempt, a due window, a manual request. */
function dueWork(
  draft: Draft,
  schedule: Schedule | undefined,
  resolved: ResolvedBackupSpec,
  observedAt: Date,
  preUpgradeWanted: boolean,
  request: string | undefined,
): Want | undefined {
  const { backup, now } = draft;
  if (backup.currentJob) return undefined;
  const pu = backup.preUpgrade;
  const preUpgradeAttempt = preUpgradeWanted && pu ? attemptNow(pu, now) : undefined;
  if (preUpgradeAttempt?.attempt) {
    return { type: BackupType.PreUpgrade, window: undefined, skippedWindows: 0, manual: false };
  }
  if (preUpgradeAttempt?.retryInMs !== undefined) draft.requeue.push(preUpgradeAttempt.retryInMs);
  const schedDue =
    schedule && !resolved.suspend
      ? dueWindow({
          schedule,
          now,
          lastAttemptScheduledTime: fromTimestamp(backup.lastAttemptScheduledTime),
          scheduleObservedAt: observedAt,
        })
      : undefined;
  if (schedDue?.due) {
    return {
      type: BackupType.Scheduled,
      window: schedDue.window,
      skippedWindows: schedDue.skippedWindows,
      manual: request !== undefined,
    };
  }
  if (request !== undefined) return { type: BackupType.Manual, window: undefined, skippedWindows: 0, manual: true };
  return undefined;
}

/** Step 6, preflight, then start: take the lock in the status write that names the Job, and ask for the Job. */
function start(
  draft: Draft,
  want: Want,
  resolved: ResolvedBackupSpec,
  readiness: Readiness,
  request: string | undefined,
): void {
  const { backup, now, obs, name } = draft;
  const blockers = preflight(obs, want.type, draft.lock, readiness);
  if (blockers.length > 0) {
    draft.blocked = [...new Set(blockers.map((b) => b.reason))];
    const message = `${want.type} backup blocked: ${blockers.map((b) => b.message).join("; ")}`;
    if (getCondition(draft.conditions, ConditionType.BackingUp)?.message !== message) {
      draft.events.push({ type: "Warning", reason: EventReason.BackupBlocked, message });
    }
    draft.setCond(ConditionType.BackingUp, "False", Reason.BackupBlocked, message);
    draft.requeue.push(blockedRecheckMs);
    return;
  }
  if (want.type === BackupType.Manual && jobNameTaken(obs, backup, backupJobName(name, now))) {
    // A manual Job is named after the current second, and a Job of this cluster already has
    // that name (a window's Job that ended within the same second). Creating it would adopt
    // that Job and record its result a second time, and the request would never run: wait
    // for the next second instead (a sub-second delay, so no condition or event).
    draft.requeue.push(1000 - (now.getTime() % 1000));
    return;
  }
  const attempt = want.type === BackupType.PreUpgrade ? (backup.preUpgrade?.attempts ?? 0) + 1 : undefined;
  const jobName =
    want.type === BackupType.PreUpgrade
      ? preUpgradeJobName(name, backup.preUpgrade ? jobNameSeed(backup.preUpgrade) : "", attempt ?? 1)
      : backupJobName(name, want.window ?? now);
  const keyId = backupKeyId(obs.cluster.metadata.namespace ?? "", jobName, obs.cluster.metadata.uid ?? "");
  const job: CurrentJob = { name: jobName, type: want.type, createdAt: toTimestamp(now), keyId };
  if (want.window) job.window = toTimestamp(want.window);
  backup.currentJob = job;
  backup.lastAttemptTime = toTimestamp(now);
  if (want.window) backup.lastAttemptScheduledTime = toTimestamp(want.window);
  if (want.type === BackupType.PreUpgrade && backup.preUpgrade) {
    backup.preUpgrade = attemptStarted(backup.preUpgrade, attempt ?? 1, jobName);
    preUpgradeCondition(backup.preUpgrade, draft.setCond);
  }
  // Preflight refused a lock held by others; a pre-upgrade snapshot under the lifecycle
  // operator's Upgrade lock shares it, leaving it as it is (src/lock/lock.ts).
  draft.lock = lockAfter(decideLock(draft.lock, lockRequest(want.type, jobName), now), draft.lock);
  draft.createJob = {
    ...jobRequest(
      obs.cluster,
      jobName,
      want.type,
      want.window,
      resolved,
      backup.preUpgrade,
      want.manual ? request : undefined,
    ),
    keyId,
  };
  draft.clearTrigger = draft.clearTrigger || want.manual;
  if (want.manual) {
    draft.events.push({
      type: "Normal",
      reason: EventReason.ManualBackupRequested,
      message: `manual backup requested (${Annotation.TriggerBackup}=${request ?? ""})`,
    });
  }
  if (want.skippedWindows > 0) {
    draft.events.push({
      type: "Normal",
      reason: EventReason.BackupCatchUp,
      message: `${want.skippedWindows} missed window(s) collapse into one catch-up backup for ${toTimestamp(want.window ?? now)}`,
    });
  }
  draft.events.push({
    type: "Normal",
    reason: want.type === BackupType.PreUpgrade ? EventReason.PreUpgradeBackupCreated : EventReason.BackupJobCreated,
    message: `created ${want.type} backup Job ${jobName}`,
  });
}

function lockRequest(type: BackupTypeValue, jobName: string): LockRequest {
  return { operation: "Backup", type, message: `${type} backup Job ${jobName}` };
}

/** The lock to hold after `decision`: taken when acquired; kept (ours, or the upgrade's we share) otherwise. */
function lockAfter(decision: LockDecision, lock: OperationLock | null): OperationLock | null {
  return decision.kind === "acquire" ? decision.lock : lock;
}

/** A Job in flight whose lock `restore` took over, as the failure it is (src/lock/displaced.ts). */
function displacedJob(name: string, restore: string, seen: ObservedJob | undefined, now: Date): ObservedJob {
  const explained = displacedFailure(name, restore);
  return {
    name,
    phase: "Failed",
    finishedAt: seen?.finishedAt ?? now,
    jobFailureReason: explained.reason,
    result: undefined,
    podTerminated: false,
    explained,
  };
}

/** Whether `jobName` is a Job of this cluster that exists or whose result was recorded. */
function jobNameTaken(obs: BackupObservation, backup: BackupStatus, jobName: string): boolean {
  return backup.lastRecordedJob === jobName || obs.jobs.some((j) => j.name === jobName);
}

/** The size hint for a new upload: the last backup's size with headroom, when known. */
function sizeHint(lastBackupSize: number | undefined): number | undefined {
  const hint = (lastBackupSize ?? 0) * sizeHintHeadroom;
  return hint > 0 && Number.isSafeInteger(hint) ? hint : undefined;
}

function jobRequest(
  cluster: OpenBaoCluster,
  name: string,
  type: BackupTypeValue,
  window: Date | undefined,
  spec: ResolvedBackupSpec,
  preUpgrade: PreUpgradeStatus | undefined,
  trigger: string | undefined,
): JobRequest {
  return {
    name,
    type,
    window,
    spec,
    targetVersion: type === BackupType.PreUpgrade ? (preUpgrade?.targetVersion ?? cluster.spec?.version) : undefined,
    attempt: type === BackupType.PreUpgrade ? preUpgrade?.attempts : undefined,
    trigger,
    sizeHint: sizeHint(cluster.status?.backup?.lastBackupSize),
  };
}

interface Blocker {
  readonly reason: BlockedReasonValue;
  readonly message: string;
}

export function preflight(
  obs: BackupObservation,
  type: BackupTypeValue,
  lock: OperationLock | null,
  readiness: Readiness = readinessOf(obs.cluster, obs.statefulSet),
): Blocker[] {
  const blockers: Blocker[] = readinessBlockers(obs.cluster, readiness, type);
  if (obs.activeRestores.length > 0) {
    blockers.push({
      reason: BlockedReason.RestoreInProgress,
      message: `OpenBaoRestore ${obs.activeRestores.join(", ")} is in progress`,
    });
  }
  const decision = decideLock(lock, lockRequest(type, ""), obs.now);
  if (decision.kind === "wait") {
    blockers.push({
      reason: BlockedReason.OperationLockHeld,
      message: `the operation lock is held by ${decision.holder.holder} (${decision.holder.operation})`,
    });
  }
  if (obs.jobs.some((j) => j.phase === "Running")) {
    blockers.push({
      reason: BlockedReason.BackupInProgress,
      message: `Job ${obs.jobs.find((j) => j.phase === "Running")?.name ?? ""} is still running`,
    });
  }
  if (obs.missingSecrets.length > 0) {
    blockers.push({
      reason: BlockedReason.SecretNotFound,
      message: `Secret ${obs.missingSecrets.join(", ")} not found in namespace ${obs.cluster.metadata.namespace ?? ""}`,
    });
  }
  return blockers;
}

function setBackingUp(current: CurrentJob | undefined, setCond: SetCond, blocked = false): void {
  if (current) {
    const reason = current.type === BackupType.PreUpgrade ? Reason.PreUpgradeJobRunning : Reason.BackupJobRunning;
    setCond(ConditionType.BackingUp, "True", reason, `${current.type} backup Job ${current.name} is running`);
  } else if (!blocked) {
    setCond(ConditionType.BackingUp, "False", Reason.NoBackupRunning, "no backup Job is running");
  }
}

function preUpgradeCondition(pu: PreUpgradeStatus, setCond: SetCond): void {
  const c = ConditionType.PreUpgradeSnapshotReady;
  switch (pu.phase) {
    case "Succeeded":
      setCond(
        c,
        "True",
        Reason.PreUpgradeBackupSucceeded,
        `pre-upgrade snapshot ${pu.key ?? ""} for ${pu.targetVersion} is stored`,
      );
      break;
    case "Running":
      setCond(
        c,
        "False",
        Reason.PreUpgradeBackupRunning,
        `pre-upgrade snapshot for ${pu.targetVersion}: attempt ${pu.attempts} running (Job ${pu.jobName ?? ""})`,
      );
      break;
    case "Failed":
      setCond(
        c,
        "False",
        Reason.PreUpgradeBackupFailed,
        `pre-upgrade snapshot for ${pu.targetVersion} failed ${pu.attempts} time(s); not retrying until spec.version changes`,
      );
      break;
    default:
      setCond(
        c,
        "False",
        Reason.PreUpgradeBackupPending,
        `pre-upgrade snapshot for ${pu.targetVersion} pending (${pu.attempts} of ${limits.preUpgradeMaxAttempts} attempts used` +
          (pu.nextAttemptTime ? `; next attempt at ${pu.nextAttemptTime})` : ")"),
      );
  }
}

/** Records one terminal Job into `backup` (mutated); returns the outcome for metrics. */
function record(
  backup: BackupStatus,
  job: ObservedJob,
  type: BackupTypeValue,
  now: Date,
  events: PlannedEvent[],
  foundBy?: string,
): RecordedOutcome {
  const finishedAt = job.finishedAt ?? now;
  const result = job.result;
  const ok = job.phase === "Succeeded" && result?.ok === true && result.key !== undefined;
  if (ok) {
    backup.lastBackupTime = toTimestamp(finishedAt);
    backup.lastBackupName = result.key;
    if (result.size !== undefined) backup.lastBackupSize = result.size;
    if (result.durationMs !== undefined) backup.lastBackupDuration = formatDuration(result.durationMs);
    if (result.sha256 !== undefined) backup.lastBackupSHA256 = result.sha256;
    if (result.raftIndex !== undefined) backup.lastBackupRaftIndex = result.raftIndex;
    backup.consecutiveFailures = 0;
    if (type !== BackupType.PreUpgrade) backup.lastRetentionDeleted = result.retentionDeleted ?? 0;
    if (type === BackupType.PreUpgrade && backup.preUpgrade) {
      backup.preUpgrade = { ...backup.preUpgrade, phase: "Succeeded", key: result.key };
    }
    events.push({
      type: "Normal",
      reason: type === BackupType.PreUpgrade ? EventReason.PreUpgradeBackupSucceeded : EventReason.BackupSucceeded,
      message:
        `Job ${job.name} stored ${result.key} (${result.size ?? "?"} bytes)` +
        (foundBy === undefined
          ? ""
          : `; its result was lost, and Job ${foundBy} found the backup and its manifest in storage`),
    });
    if (result.canaryProblem !== undefined) {
      events.push({
        type: "Warning",
        reason: EventReason.BackupCanaryNotWritten,
        message: `Job ${job.name} stored ${result.key} without the drill canary: ${result.canaryProblem}`.slice(
          0,
          1024,
        ),
      });
    }
    if ((result.retentionFailed ?? 0) > 0) {
      events.push({
        type: "Warning",
        reason: EventReason.RetentionFailed,
        message: `retention could not delete ${result.retentionFailed} object(s) after Job ${job.name}`,
      });
    }
  } else {
    const { reason, message } = failureOf(job);
    backup.consecutiveFailures = (backup.consecutiveFailures ?? 0) + 1;
    backup.lastFailureReason = reason;
    backup.lastFailureMessage = message.slice(0, 4096);
    backup.lastFailureTime = toTimestamp(finishedAt);
    if (type === BackupType.PreUpgrade && backup.preUpgrade) {
      backup.preUpgrade = afterFailedAttempt(backup.preUpgrade, finishedAt);
    }
    events.push({
      type: "Warning",
      reason: type === BackupType.PreUpgrade ? EventReason.PreUpgradeBackupFailed : EventReason.BackupFailed,
      message: `Job ${job.name} failed: ${reason}: ${message}`.slice(0, 1024),
    });
  }
  const destinations = result?.destinations;
  if (destinations !== undefined) recordDestinations(backup, job, destinations, finishedAt, events);
  return {
    type,
    ok,
    size: result?.size,
    durationMs: result?.durationMs,
    retentionDeleted: result?.retentionDeleted,
    retentionFailed: ok && ((result?.retentionFailed ?? 0) > 0 || result?.retentionError === true),
    finishedAt,
    destinations: destinations?.map((d) => ({ name: d.name, ok: d.ok })),
  };
}

/**
 * Each destination's own record, from a Job that reported several (`status.backup.destinations`,
 * in the Job's order, `primary` first; a destination no longer reported is dropped). A failed
 * copy gets a Warning whatever the success policy made of the Job: never silent.
 */
function recordDestinations(
  backup: BackupStatus,
  job: ObservedJob,
  reported: readonly ReportedDestination[],
  finishedAt: Date,
  events: PlannedEvent[],
): void {
  const before = new Map((backup.destinations ?? []).map((d) => [d.name, d]));
  backup.destinations = reported.map((d): DestinationStatus => {
    const previous = before.get(d.name) ?? { name: d.name };
    const location = d.location ?? previous.location;
    const base = { ...previous, ...(location === undefined ? {} : { location }) };
    if (d.ok) {
      return {
        ...base,
        lastBackupTime: toTimestamp(finishedAt),
        ...(d.key === undefined ? {} : { lastBackupName: d.key }),
        consecutiveFailures: 0,
      };
    }
    const reason = d.reason ?? "Unknown";
    const message = d.message ?? "no message";
    events.push({
      type: "Warning",
      reason: EventReason.BackupDestinationFailed,
      message:
        `Job ${job.name}: destination ${d.name}${location === undefined ? "" : ` (${location})`} holds no copy of this backup: ${reason}: ${message}`.slice(
          0,
          1024,
        ),
    });
    return {
      ...base,
      consecutiveFailures: (previous.consecutiveFailures ?? 0) + 1,
      lastFailureReason: reason,
      lastFailureMessage: message,
      lastFailureTime: toTimestamp(finishedAt),
    };
  });
}

/**
 * `DestinationsHealthy`, with additional destinations only: False while a destination holds no
 * copy of the last backup — also when the success policy made the Job a success, so a failing
 * second copy is a condition, not only an Event and a metric (never silent). Each destination's
 * own record is `status.backup.destinations` (recordDestinations).
 */
function destinationsHealth(draft: Draft, resolved: ResolvedBackupSpec | undefined): void {
  const type = ConditionType.DestinationsHealthy;
  if (!resolved || resolved.additionalTargets.length === 0) {
    draft.conditions = [...removeCondition(draft.conditions, type)];
    return;
  }
  // A destination taken out of spec.backup is dropped from status by the next Job; until then it is not judged.
  const configured = new Set(["primary", ...resolved.additionalTargets.map((t) => t.name)]);
  const reported = (draft.backup.destinations ?? []).filter((d) => configured.has(d.name));
  if (reported.length === 0) {
    draft.setCond(type, "Unknown", Reason.NoDestinationReportYet, "no backup Job has reported its destinations yet");
    return;
  }
  const failing = reported.filter((d) => (d.consecutiveFailures ?? 0) > 0);
  if (failing.length === 0) {
    const names = reported.map((d) => d.name).join(", ");
    draft.setCond(
      type,
      "True",
      Reason.AllDestinationsStored,
      `the last backup is stored in every destination: ${names}`,
    );
    return;
  }
  const said = failing.map(
    (d) =>
      `${d.name}${d.location === undefined ? "" : ` (${d.location})`}: ${d.lastFailureReason ?? "Unknown"}: ${d.lastFailureMessage ?? "no message"}; ${d.consecutiveFailures} consecutive failure(s)`,
  );
  draft.setCond(
    type,
    "False",
    Reason.DestinationFailed,
    `${failing.length === 1 ? "a destination holds" : `${failing.length} destinations hold`} no copy of the last backup: ${said.join("; ")}`.slice(
      0,
      4096,
    ),
  );
}

function health(
  backup: BackupStatus,
  schedule: Schedule | undefined,
  observedAt: Date,
  now: Date,
  setCond: SetCond,
): void {
  if (!schedule) return; // InvalidSchedule already set
  const c = ConditionType.BackupHealthy;
  const lastGood = fromTimestamp(backup.lastBackupTime);
  if ((backup.consecutiveFailures ?? 0) > 0) {
    setCond(
      c,
      "False",
      Reason.BackupFailed,
      `the last attempt failed (${backup.lastFailureReason ?? "unknown"}); ${backup.consecutiveFailures} consecutive failure(s)`,
    );
  } else if (isBackupStale(schedule, lastGood ?? observedAt, now)) {
    setCond(
      c,
      "False",
      Reason.BackupStale,
      lastGood
        ? `the last good backup (${toTimestamp(lastGood)}) is older than two schedule windows`
        : "no backup has succeeded for two schedule windows",
    );
  } else if (lastGood) {
    setCond(
      c,
      "True",
      Reason.BackupSucceeded,
      `last good backup ${backup.lastBackupName ?? ""} at ${toTimestamp(lastGood)}`,
    );
  } else {
    setCond(c, "Unknown", Reason.NoBackupYet, "no backup has completed yet");
  }
}
