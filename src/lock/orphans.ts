/**
 * Locks nobody holds any more (invariant 8 of lock.ts): recovered, never timed out. Each is
 * released with a `LockRecovered` Event by the planner or controller that finds it.
 */
import { restoreLockHolder } from "../api/constants.ts";
import type { OperationLock } from "../api/types.ts";
import { heldBy, isBackupLock } from "./holder.ts";

/**
 * A Backup lock with no backup Job in flight: left over (a crash between the lock's write and
 * the Job's, then the Job recorded lost; or a hand edit). Nothing it protects runs.
 */
export function leftOverBackupLock(lock: OperationLock | null | undefined, inFlight: string | undefined): boolean {
  return inFlight === undefined && isBackupLock(lock);
}

/**
 * The lock names OpenBaoRestore `name`, which the caller confirmed no longer exists (its
 * finalizer removed by hand): release it.
 */
export function orphanedRestoreLock(lock: OperationLock | null | undefined, name: string): boolean {
  return heldBy(lock, restoreLockHolder(name));
}

/** A deleted restore waits this long for its Job's Pods to stop before it releases the lock anyway. */
export const deletionGraceMs = 120_000;

/**
 * A deleted restore whose Job was deleted: release the lock once its Pods stopped, or anyway
 * after `deletionGraceMs` (a Pod on a lost node never stops), saying so.
 */
export function releaseOnDeletion(activePods: number, waitedMs: number): "wait" | "release" | "release-anyway" {
  if (activePods === 0) return "release";
  return waitedMs < deletionGraceMs ? "wait" : "release-anyway";
}
