/**
 * Who holds a cluster's operation lock, read from `status.operationLock` alone. Part of the
 * operation lock module; its invariants are in lock.ts.
 */
import { LockHolder, restoreLockHolder, restoreLockHolderPrefix } from "../api/constants.ts";
import { fromTimestamp } from "../api/predicates.ts";
import type { ObjectMeta, OperationLock } from "../api/types.ts";

export type HolderKind = "free" | "backup" | "upgrade" | "restore";

export function isLockHeld(lock: OperationLock | null | undefined): lock is OperationLock {
  return lock !== undefined && lock !== null;
}

export function holderKind(lock: OperationLock | null | undefined): HolderKind {
  if (!isLockHeld(lock)) return "free";
  if (lock.holder === LockHolder.Backup) return "backup";
  if (lock.holder === LockHolder.Upgrade) return "upgrade";
  return "restore";
}

export function isBackupLock(lock: OperationLock | null | undefined): boolean {
  return holderKind(lock) === "backup";
}

/** The OpenBaoRestore name holding the lock, if a restore holds it. */
export function restoreHoldingLock(lock: OperationLock | null | undefined): string | undefined {
  return isLockHeld(lock) && lock.holder.startsWith(restoreLockHolderPrefix)
    ? lock.holder.slice(restoreLockHolderPrefix.length)
    : undefined;
}

/** Whether `holder` (a holder string: `openbaocluster/backup`, `openbaorestore/<name>`…) holds the lock. */
export function heldBy(lock: OperationLock | null | undefined, holder: string): boolean {
  return isLockHeld(lock) && lock.holder === holder;
}

/**
 * Whether `lock` was taken by this very OpenBaoRestore, not by a deleted namesake before it:
 * holder strings carry only the name, so a lock acquired before the restore was created is
 * someone else's (left over, see orphans.ts).
 */
export function holdsLock(restore: { metadata: ObjectMeta }, lock: OperationLock | null | undefined): boolean {
  if (!heldBy(lock, restoreLockHolder(restore.metadata.name ?? ""))) return false;
  const acquired = fromTimestamp(lock?.acquiredAt);
  const created = fromTimestamp(restore.metadata.creationTimestamp);
  return acquired === undefined || created === undefined || acquired.getTime() >= created.getTime();
}

/** `Backup (openbaocluster/backup) since <time>: <message>`, for status messages and Events. */
export function describeLock(lock: OperationLock): string {
  const since = lock.acquiredAt ? ` since ${lock.acquiredAt}` : "";
  const what = lock.message ? `: ${lock.message}` : "";
  return `${lock.operation} (${lock.holder})${since}${what}`;
}
