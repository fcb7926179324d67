/**
 * The operation lock (`status.operationLock` of an OpenBaoCluster): at most one of backup,
 * upgrade and restore runs on a cluster at a time. This module owns every decision about it —
 * acquire, renew, override, release, stopping what an override displaces, and orphan recovery —
 * for the three kinds of holder; the planners (backup/plan.ts, restore/plan.ts) apply its
 * verdicts and the controllers write them. Files: holder.ts (who holds it), lock.ts (this:
 * acquire, renew, override, release), displaced.ts (what an override stops, and how long a
 * restore waits for it), work.ts (the backup Jobs and Pods that still run, from the caches),
 * orphans.ts (locks nobody holds any more). docs/lifecycle-operators.md states the protocol
 * for other writers; test/unit/lock/lock.test.ts checks every holder × operation pair.
 *
 * Invariants:
 * 1. One holder. Every write of the lock (ours, and the lifecycle operator's by the protocol)
 *    is a PUT of the status with the resourceVersion it was planned from: two writers never
 *    both believe they hold it.
 * 2. Who takes what:
 *    - a backup (scheduled, manual) takes a free lock, in the same status write that records
 *      its Job (`status.backup.currentJob`), and never anyone else's;
 *    - a pre-upgrade snapshot takes a free lock the same way, or runs under the lifecycle
 *      operator's Upgrade lock, which it then neither replaces nor releases ("share");
 *    - the Upgrade lock is taken and released by the lifecycle operator only;
 *    - a restore takes a free lock, or one left by a deleted OpenBaoRestore of the same name;
 *      with `force` + `overrideOperationLock` it takes it from a backup or an upgrade
 *      ("override"), never from another restore: two restores of a cluster never run at once.
 * 3. Renew: a holder that holds the lock keeps it as it is. Locks do not expire and
 *    openbao-backup never writes `renewedAt`: a lock whose holder is gone is recovered
 *    (orphans.ts), never timed out, so a slow operation is never run over.
 * 4. Release is by holder: a holder clears the lock only while it still holds it, so a release
 *    never frees a lock someone else took in between.
 * 5. A Job runs only under its lock: a backup Job is created (or re-created after a crash)
 *    only while its decision is acquire, renew or share; a restore Job only while its restore
 *    holds the lock.
 * 6. An override stops what it displaces (issue 15, defect 4): the restore takes the lock
 *    first, so the displaced backup can neither be re-created nor started anew; the backup
 *    controller then deletes its Job in flight and records it once as a failure
 *    (`LockOverridden`, a Warning naming the restore) unless it had already succeeded; the
 *    restore deletes any backup Job of the cluster it sees running and starts its own Job only
 *    when no backup Job or Pod of the cluster runs. The wait is bounded: past the backup Job
 *    deadline (plus a stop grace) since the lock was taken, Kubernetes would have stopped that
 *    Job anyway, and the restore starts with a Warning. So the lock is never free, and no
 *    restore runs, while a displaced backup still runs.
 * 7. Without override a restore never takes the lock while a backup Job is in flight: the
 *    lock held by a restore while `currentJob` is set therefore means an override.
 * 8. An owned lock never blocks forever (orphans.ts): a backup lock is released when its Job
 *    ends or is gone, or when no Job holds it; a restore lock when the restore ends, is
 *    deleted (after its Job's Pods stop, at most `deletionGraceMs`), or no longer exists.
 */
import type { BackupTypeValue } from "../api/constants.ts";
import { BackupType, LockHolder, LockOperation, restoreLockHolder } from "../api/constants.ts";
import { toTimestamp } from "../api/predicates.ts";
import type { ObjectMeta, OperationLock } from "../api/types.ts";
import { heldBy, holderKind, holdsLock, isLockHeld, restoreHoldingLock } from "./holder.ts";

/** What an operation asks of the lock. `message` goes into the lock it takes. */
export type LockRequest =
  | { readonly operation: "Backup"; readonly type: BackupTypeValue; readonly message: string }
  | {
      readonly operation: "Restore";
      readonly restore: { readonly metadata: ObjectMeta };
      /** `spec.force` and `spec.overrideOperationLock` both set. */
      readonly override: boolean;
      readonly message: string;
    };

export type LockDecision =
  /** Free, or left by a deleted namesake restore (`replaced`): take it. */
  | { readonly kind: "acquire"; readonly lock: OperationLock; readonly replaced: OperationLock | undefined }
  /** The requester holds it already: keep it unchanged. */
  | { readonly kind: "renew"; readonly lock: OperationLock }
  /** A pre-upgrade snapshot under the lifecycle operator's Upgrade lock: run, leave the lock alone. */
  | { readonly kind: "share"; readonly lock: OperationLock }
  /** `overrideOperationLock`: take it from a backup or an upgrade, and stop what it displaces. */
  | { readonly kind: "override"; readonly lock: OperationLock; readonly displaced: OperationLock }
  /** Someone else holds it: wait for them. */
  | { readonly kind: "wait"; readonly holder: OperationLock };

/** Whether the decision lets the requester run (and hold or share the lock). */
export function mayRun(decision: LockDecision): boolean {
  return decision.kind !== "wait";
}

/** The lock `request` would hold, taken `now`. */
function newLock(request: LockRequest, now: Date): OperationLock {
  const common = { acquiredAt: toTimestamp(now), message: request.message.slice(0, 1024) };
  if (request.operation === "Backup") {
    return { operation: LockOperation.Backup, holder: LockHolder.Backup, ...common };
  }
  return {
    operation: LockOperation.Restore,
    holder: restoreLockHolder(request.restore.metadata.name ?? ""),
    ...common,
  };
}

/** The one table of who may take what (invariant 2); test/unit/lock/lock.test.ts walks all of it. */
export function decideLock(lock: OperationLock | null | undefined, request: LockRequest, now: Date): LockDecision {
  if (!isLockHeld(lock)) return { kind: "acquire", lock: newLock(request, now), replaced: undefined };
  const kind = holderKind(lock);
  if (request.operation === "Backup") {
    if (kind === "backup") return { kind: "renew", lock };
    if (kind === "upgrade" && request.type === BackupType.PreUpgrade) return { kind: "share", lock };
    return { kind: "wait", holder: lock };
  }
  if (kind === "restore") {
    if (holdsLock(request.restore, lock)) return { kind: "renew", lock };
    if (restoreHoldingLock(lock) === request.restore.metadata.name) {
      // A deleted OpenBaoRestore of the same name took it before this one existed.
      return { kind: "acquire", lock: newLock(request, now), replaced: lock };
    }
    return { kind: "wait", holder: lock };
  }
  if (request.override) return { kind: "override", lock: newLock(request, now), displaced: lock };
  return { kind: "wait", holder: lock };
}

/** The lock after `holder` lets go: cleared only while `holder` still holds it (invariant 4). */
export function releaseLock(lock: OperationLock | null | undefined, holder: string): OperationLock | null {
  if (!isLockHeld(lock)) return null;
  return heldBy(lock, holder) ? null : lock;
}
