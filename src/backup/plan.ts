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
 *   answered, cleared, and never starts a second Job.
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
  resolveBackupSpec,
  setCondition,
  toTimestamp,
  wantsPreUpgradeSnapshot,
} from "../api/predicates.ts";
import type {
  BackupStatus,
  Condition,
  CurrentJob,
  OpenBaoCluster,
  OperationLock,
  PreUpgradeStatus,
} from "../api/types.ts";
import { backupJobName, preUpgradeJobName } from "../jobs/names.ts";
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

/** A Job named in `currentJob` but not (yet) visible is re-created within this grace. */
export const jobCreateGraceMs = 120_000;
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

function currentJobType(job: CurrentJob): BackupTypeValue {
  return job.type;
}

export function planBackup(obs: BackupObservation): BackupPlan {
  const { cluster, now } = obs;
  const before = {
    backup: cluster.status?.backup ?? {},
    operationLock: cluster.status?.operationLock ?? null,
    conditions: cluster.status?.conditions ?? [],
  };
  const name = cluster.metadata.name ?? "";
  const backup: BackupStatus = structuredClone(before.backup);
  let lock: OperationLock | null = before.operationLock;
  let conditions: Condition[] = before.conditions;
  const events: PlannedEvent[] = [];
  let recorded: RecordedOutcome | undefined;
  let createJob: JobRequest | undefined;
  let deleteJob: string | undefined;
  let clearTrigger = false;
  let blocked: BlockedReasonValue[] = [];
  const requeue: number[] = [];
  // observedGeneration lets a lifecycle controller tell a current PreUpgradeSnapshotReady
  // from one computed before its spec.version bump was seen.
  const generation = cluster.metadata.generation;
  const setCond: SetCond = (type, status, reason, message) => {
    const input = {
      type,
      status,
      reason,
      message,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    };
    conditions = [...setCondition(conditions, input, now)];
  };
  const releaseOurs = (): void => {
    lock = releaseLock(lock, LockHolder.Backup);
  };
  const spec = cluster.spec?.backup;
  const readiness = readinessOf(cluster, obs.statefulSet);
  const resolved = spec
    ? resolveBackupSpec(spec, {
        clusterName: name,
        defaultImage: obs.defaultImage,
        memberAddresses:
          readiness.source === "StatefulSet"
            ? statefulSetAddresses(readiness.statefulSet, cluster.metadata.namespace ?? "")
            : undefined,
      })
    : undefined;

  // 1. The Job in flight: record its result once, re-create it, or declare it lost.
  const trigger = pendingTrigger(cluster);
  /** The pending trigger is the request the Job in flight answers (left by a crash before its removal). */
  let answered = false;
  const current = backup.currentJob ?? undefined;
  if (current) {
    const job = obs.jobs.find((j) => j.name === current.name);
    const type = currentJobType(current);
    answered = trigger !== undefined && job?.trigger === trigger;
    const resultWait = job ? resultWaitMs(job, now) : 0;
    const displacing = displacedBy(lock);
    if (resultWait > 0) {
      // Finished, but its Pod's report is not visible yet: the Job stays in flight until it is.
      requeue.push(resultWait);
    } else if (displacing !== undefined && job?.phase !== "Succeeded") {
      // A restore took the lock over while this Job was in flight: stop it and say so, once.
      // A failed Job is kept for its logs; one not cached yet is stopped by the restore when
      // it shows up (src/lock/displaced.ts); the restore keeps the lock (src/lock/lock.ts, 6).
      if (job?.phase === "Running") deleteJob = current.name;
      recorded = record(backup, displacedJob(current.name, displacing, job, now), type, now, events);
      backup.currentJob = null;
      backup.lastRecordedJob = current.name;
    } else if (job && job.phase !== "Running") {
      recorded = record(backup, job, type, now, events);
      backup.currentJob = null;
      backup.lastRecordedJob = job.name;
      releaseOurs();
    } else if (!job) {
      const age = now.getTime() - (fromTimestamp(current.createdAt)?.getTime() ?? 0);
      const decision = decideLock(lock, lockRequest(type, current.name), now);
      if (resolved && age < jobCreateGraceMs && mayRun(decision)) {
        // A Job never runs without its lock: a lock freed meanwhile (by hand) is taken again.
        lock = lockAfter(decision, lock);
        // Decided, but the create did not happen (or is not visible yet): make it so. A
        // manual decision was made for the trigger still pending (it is removed only after
        // the create): this Job answers it, or the trigger would start a second Job later.
        const answers = type === BackupType.Manual ? trigger : undefined;
        answered = answers !== undefined;
        createJob = jobRequest(
          cluster,
          current.name,
          type,
          fromTimestamp(current.window),
          resolved,
          backup.preUpgrade,
          answers,
        );
        requeue.push(jobCreateGraceMs - age);
      } else {
        const lost: ObservedJob = {
          name: current.name,
          phase: "Failed",
          finishedAt: now,
          jobFailureReason: FailureReason.JobLost,
          result: undefined,
          podTerminated: false,
        };
        recorded = record(backup, lost, type, now, events);
        backup.currentJob = null;
        backup.lastRecordedJob = current.name;
        if (isBackupLock(lock)) {
          releaseOurs();
          events.push({
            type: "Warning",
            reason: EventReason.LockRecovered,
            message: `Job ${current.name} disappeared before it finished; released the operation lock`,
          });
        }
      }
    }
  } else if (leftOverBackupLock(lock, undefined)) {
    releaseOurs();
    events.push({
      type: "Normal",
      reason: EventReason.LockRecovered,
      message: "released a backup operation lock that no Job holds",
    });
  }
  const inFlight = backup.currentJob ?? undefined;
  if (answered) clearTrigger = true;
  /** A trigger still waiting for a Job of its own. */
  const request = answered ? undefined : trigger;

  // 2. No spec.backup: nothing to schedule; keep the lock only while a Job still runs.
  if (!spec || !resolved) {
    if (spec && !resolved) {
      setCond(
        ConditionType.BackupHealthy,
        "False",
        Reason.InvalidConfiguration,
        "spec.backup names no OpenBao authentication: set jwtAuthRole or tokenSecretRef",
      );
    }
    delete backup.nextScheduledBackup;
    setBackingUp(inFlight, setCond);
    return finish();
  }

  // 3. The schedule.
  let schedule: Schedule | undefined;
  try {
    schedule = parseSchedule(resolved.schedule, resolved.timeZone);
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    if (getCondition(conditions, ConditionType.BackupHealthy)?.reason !== Reason.InvalidSchedule) {
      events.push({ type: "Warning", reason: EventReason.ScheduleInvalid, message: err.message });
    }
    setCond(ConditionType.BackupHealthy, "False", Reason.InvalidSchedule, err.message);
  }
  const observed = observeSchedule(spec, backup.observedSchedule, now);
  if (observed.changed && backup.observedSchedule) {
    events.push({
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
  if (schedule && !resolved.suspend) {
    const next = nextWindowAfter(schedule, now);
    if (next) {
      backup.nextScheduledBackup = toTimestamp(next);
      requeue.push(next.getTime() - now.getTime());
    } else delete backup.nextScheduledBackup;
  } else delete backup.nextScheduledBackup;

  // 4. Pre-upgrade snapshot state for the pending version.
  const preUpgradeWanted = wantsPreUpgradeSnapshot(cluster);
  if (preUpgradeWanted) {
    backup.preUpgrade = currentEpisode(cluster, backup.preUpgrade ?? undefined, now);
    preUpgradeCondition(backup.preUpgrade, setCond);
  } else {
    const ended = endEpisode(backup.preUpgrade ?? undefined, now);
    if (ended) backup.preUpgrade = ended;
  }
  if (!preUpgradeWanted && preUpgradeSnapshotEnabled(cluster.spec)) {
    setCond(
      ConditionType.PreUpgradeSnapshotReady,
      "True",
      Reason.PreUpgradeBackupNotRequired,
      "no upgrade is pending: spec.version equals status.currentVersion",
    );
  }

  // 5. What should run now, if nothing is in flight.
  let want: Want | undefined;
  if (!inFlight) {
    const pu = backup.preUpgrade;
    const schedDue =
      schedule && !resolved.suspend
        ? dueWindow({
            schedule,
            now,
            lastAttemptScheduledTime: fromTimestamp(backup.lastAttemptScheduledTime),
            scheduleObservedAt: observedAt,
          })
        : undefined;
    const preUpgradeAttempt = preUpgradeWanted && pu ? attemptNow(pu, now) : undefined;
    if (preUpgradeAttempt && !preUpgradeAttempt.attempt && preUpgradeAttempt.retryInMs !== undefined) {
      requeue.push(preUpgradeAttempt.retryInMs);
    }
    if (preUpgradeAttempt?.attempt) {
      want = { type: BackupType.PreUpgrade, window: undefined, skippedWindows: 0, manual: false };
    } else if (schedDue?.due) {
      want = {
        type: BackupType.Scheduled,
        window: schedDue.window,
        skippedWindows: schedDue.skippedWindows,
        manual: request !== undefined,
      };
    } else if (request !== undefined) {
      want = { type: BackupType.Manual, window: undefined, skippedWindows: 0, manual: true };
    }
  }

  // 6. Preflight, then start.
  if (want) {
    const blockers = preflight(obs, want.type, lock, readiness);
    if (blockers.length > 0) {
      blocked = [...new Set(blockers.map((b) => b.reason))];
      const message = `${want.type} backup blocked: ${blockers.map((b) => b.message).join("; ")}`;
      if (getCondition(conditions, ConditionType.BackingUp)?.message !== message) {
        events.push({ type: "Warning", reason: EventReason.BackupBlocked, message });
      }
      setCond(ConditionType.BackingUp, "False", Reason.BackupBlocked, message);
      requeue.push(blockedRecheckMs);
    } else if (want.type === BackupType.Manual && jobNameTaken(obs, backup, backupJobName(name, now))) {
      // A manual Job is named after the current second, and a Job of this cluster already has
      // that name (a window's Job that ended within the same second). Creating it would adopt
      // that Job and record its result a second time, and the request would never run: wait
      // for the next second instead (a sub-second delay, so no condition or event).
      requeue.push(1000 - (now.getTime() % 1000));
    } else {
      const attempt = want.type === BackupType.PreUpgrade ? (backup.preUpgrade?.attempts ?? 0) + 1 : undefined;
      const jobName =
        want.type === BackupType.PreUpgrade
          ? preUpgradeJobName(name, backup.preUpgrade ? jobNameSeed(backup.preUpgrade) : "", attempt ?? 1)
          : backupJobName(name, want.window ?? now);
      const job: CurrentJob = { name: jobName, type: want.type, createdAt: toTimestamp(now) };
      if (want.window) job.window = toTimestamp(want.window);
      backup.currentJob = job;
      backup.lastAttemptTime = toTimestamp(now);
      if (want.window) backup.lastAttemptScheduledTime = toTimestamp(want.window);
      if (want.type === BackupType.PreUpgrade && backup.preUpgrade) {
        backup.preUpgrade = attemptStarted(backup.preUpgrade, attempt ?? 1, jobName);
        preUpgradeCondition(backup.preUpgrade, setCond);
      }
      // Preflight refused a lock held by others; a pre-upgrade snapshot under the lifecycle
      // operator's Upgrade lock shares it, leaving it as it is (src/lock/lock.ts).
      lock = lockAfter(decideLock(lock, lockRequest(want.type, jobName), now), lock);
      createJob = jobRequest(
        cluster,
        jobName,
        want.type,
        want.window,
        resolved,
        backup.preUpgrade,
        want.manual ? request : undefined,
      );
      clearTrigger = clearTrigger || want.manual;
      if (want.manual)
        events.push({
          type: "Normal",
          reason: EventReason.ManualBackupRequested,
          message: `manual backup requested (${Annotation.TriggerBackup}=${request ?? ""})`,
        });
      if (want.skippedWindows > 0) {
        events.push({
          type: "Normal",
          reason: EventReason.BackupCatchUp,
          message: `${want.skippedWindows} missed window(s) collapse into one catch-up backup for ${toTimestamp(want.window ?? now)}`,
        });
      }
      events.push({
        type: "Normal",
        reason:
          want.type === BackupType.PreUpgrade ? EventReason.PreUpgradeBackupCreated : EventReason.BackupJobCreated,
        message: `created ${want.type} backup Job ${jobName}`,
      });
    }
  }
  setBackingUp(backup.currentJob ?? undefined, setCond, want !== undefined && createJob === undefined);

  // 7. Health: the last attempt failed, or the last good backup is two windows old.
  health(backup, schedule, observedAt, now, setCond);
  return finish();

  function finish(): BackupPlan {
    const next: StatusWrite = { backup, operationLock: lock, conditions };
    const changed = !deepEqual(next, before);
    const positive = requeue.filter((ms) => ms > 0);
    return {
      status: changed ? next : undefined,
      createJob,
      deleteJob,
      clearTrigger,
      events,
      recorded,
      blocked,
      requeueAfterMs: positive.length > 0 ? Math.min(...positive) : undefined,
    };
  }
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
      message: `Job ${job.name} stored ${result.key} (${result.size ?? "?"} bytes)`,
    });
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
  return {
    type,
    ok,
    size: result?.size,
    durationMs: result?.durationMs,
    retentionDeleted: result?.retentionDeleted,
    retentionFailed: ok && ((result?.retentionFailed ?? 0) > 0 || result?.retentionError === true),
    finishedAt,
  };
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
