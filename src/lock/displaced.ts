/**
 * What an override displaces, and how long a restore waits for it (invariants 6 and 7 of
 * lock.ts). A restore that took the lock starts its Job only once no backup work of the
 * cluster runs: the backup Job in flight (`status.backup.currentJob`) has been recorded, and
 * no backup Job or Pod of the cluster still runs an executor. With `overrideOperationLock` it
 * stops that work (the controllers delete the Jobs; their Pods get SIGTERM); without, it only
 * waits. Either way the wait ends at the backup Job deadline, counted from when the restore
 * took the lock, plus a stop grace: the displaced Job started before that, so by then
 * Kubernetes itself would have stopped it, and a Pod still shown running is one nobody can stop
 * (a lost node). The restore then starts with a Warning rather than wait forever.
 */
import { FailureReason } from "../api/constants.ts";
import type { OperationLock } from "../api/types.ts";
import { restoreHoldingLock } from "./holder.ts";

/** The backup work of one cluster that still runs (work.ts observes it). */
export interface BackupWork {
  /** The backup Job in flight (`status.backup.currentJob`), whether or not it is visible yet. */
  readonly inFlight: string | undefined;
  /** Backup Jobs of the cluster whose executor has not finished (being deleted or not). */
  readonly runningJobs: readonly string[];
  /** Backup Pods of the cluster whose executor has not finished, their Job deleted or not. */
  readonly activePods: number;
}

/** After the deadline, how long a deleted Pod may take to stop (SIGTERM, grace, SIGKILL). */
export const stopGraceMs = 120_000;
/** Re-check interval while displaced work stops; after `stopGraceMs`, `stuckRecheckMs`. */
export const stopRecheckMs = 2000;
export const stuckRecheckMs = 30_000;

export function backupRuns(work: BackupWork): boolean {
  return work.inFlight !== undefined || work.runningJobs.length > 0 || work.activePods > 0;
}

/**
 * The Jobs to delete to stop `work`: those seen running, which are owned by the cluster. Never
 * a name merely recorded in status: a Job of that name may be someone else's (JobNameConflict).
 * The Job in flight is stopped as soon as a cache shows it, by the restore or the backup side.
 */
export function jobsToStop(work: BackupWork): string[] {
  return [...new Set(work.runningJobs)];
}

function describeWork(work: BackupWork): string {
  const jobs = [...new Set([...(work.inFlight === undefined ? [] : [work.inFlight]), ...work.runningJobs])];
  const pods = `${work.activePods} Pod${work.activePods === 1 ? "" : "s"}`;
  if (jobs.length === 0) return `${pods} of a stopped backup Job`;
  return `backup Job ${jobs.join(", ")}${work.activePods > 0 ? ` (${pods})` : ""}`;
}

export type DisplacedVerdict =
  | { readonly kind: "clear" }
  /** Keep waiting; `stop` lists the Jobs to delete (empty without override). */
  | { readonly kind: "wait"; readonly stop: readonly string[]; readonly message: string; readonly recheckMs: number }
  /** The bound passed and something still shows running: start anyway, saying so. */
  | { readonly kind: "overdue"; readonly message: string };

export interface WaitInput {
  readonly cluster: string;
  readonly override: boolean;
  /** When the restore took the lock (this pass: now). */
  readonly since: Date;
  /** The cluster's backup `activeDeadlineSeconds`: the longest the displaced Job could run. */
  readonly deadlineSeconds: number;
  readonly now: Date;
}

/** Whether a restore holding the lock may start its Job, given the backup work that runs. */
export function waitForBackupWork(work: BackupWork, input: WaitInput): DisplacedVerdict {
  if (!backupRuns(work)) return { kind: "clear" };
  const waited = input.now.getTime() - input.since.getTime();
  const limit = input.deadlineSeconds * 1000 + stopGraceMs;
  const what = describeWork(work);
  if (waited >= limit) {
    return {
      kind: "overdue",
      message: `${what} still runs ${Math.round(waited / 1000)} s after the restore took the operation lock of cluster ${input.cluster}, past the backup Job deadline (${input.deadlineSeconds} s): Kubernetes cannot stop it (a lost node?); starting the restore anyway`,
    };
  }
  const message = input.override
    ? `holding the operation lock of cluster ${input.cluster} (spec.overrideOperationLock): stopping ${what} before the restore starts`
    : `holding the operation lock of cluster ${input.cluster}: waiting for ${what} to end before the restore starts`;
  const recheck = waited < stopGraceMs ? stopRecheckMs : stuckRecheckMs;
  return {
    kind: "wait",
    stop: input.override ? jobsToStop(work) : [],
    message,
    recheckMs: Math.max(1, Math.min(recheck, limit - waited)),
  };
}

/**
 * Backup side: the OpenBaoRestore that took the lock while this cluster's backup Job is in
 * flight. By invariant 7 that is an override: the Job is displaced and must stop.
 */
export function displacedBy(lock: OperationLock | null | undefined): string | undefined {
  return restoreHoldingLock(lock);
}

/** The failure recorded for a displaced backup Job: never a silent success, never "lost". */
export function displacedFailure(jobName: string, restore: string): { reason: string; message: string } {
  return {
    reason: FailureReason.LockOverridden,
    message: `OpenBaoRestore ${restore} took the operation lock (spec.overrideOperationLock) while Job ${jobName} ran: the Job was stopped and no snapshot of it is recorded`,
  };
}
