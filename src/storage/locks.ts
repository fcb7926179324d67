/**
 * Retention's delete on buckets that lock objects, for every provider alike: what a lock holds
 * is kept and reported with when it can go, never attempted and counted as a failure.
 *
 * A lock does not always stop a delete: on a versioned S3 bucket a plain DELETE of a locked
 * object succeeds — it only adds a delete marker, the locked version stays, billed and
 * invisible, and nothing would remove it after the lock expires. So the lock is read first
 * (one HEAD per key; retention deletes a few keys per run) and a held object is left exactly
 * as it is: still listed, still restorable, deleted by the first run after its lock ends.
 * A HEAD that fails, or reports no lock (AWS omits the lock headers without
 * s3:GetObjectRetention), lets the delete go ahead; the store then reports what it did.
 *
 * Writing: `writeLockFor` is the lock `target.objectLock` puts on a backup's objects, and
 * `lockMismatch` checks what HEAD reports after the upload, as encryption.ts does for SSE.
 */
import type { DeleteManyResult, ObjectStore, StoredLock, WriteLock } from "./object-store.ts";
import type { S3ObjectLock } from "./target.ts";

export interface LockedObject {
  readonly key: string;
  /** When its retention ends; undefined when only a legal hold keeps it (no end of its own). */
  readonly until: Date | undefined;
  readonly legalHold: boolean;
  readonly mode: string | undefined;
}

export interface UnlockedDeleteResult extends DeleteManyResult {
  /** Kept because a lock holds them at `now`. */
  readonly locked: LockedObject[];
}

/** Whether `lock` holds an object at `now`: a legal hold, or retention that has not ended. */
export function lockHolds(lock: StoredLock, now: Date): boolean {
  return lock.legalHold || (lock.retainUntil !== undefined && lock.retainUntil.getTime() > now.getTime());
}

/** The earliest end of the retentions in `locked` (legal holds have none), ISO 8601. */
export function earliestRelease(locked: readonly LockedObject[]): string | undefined {
  const ends = locked.flatMap((l) => (l.until === undefined || l.legalHold ? [] : [l.until.getTime()]));
  return ends.length === 0 ? undefined : new Date(Math.min(...ends)).toISOString();
}

/**
 * Deletes the groups no lock holds at `now`: a group (a snapshot and its manifest) goes whole
 * or stays whole, so a locked snapshot never loses the manifest that makes it restorable. The
 * members a lock holds are returned in `locked`; their groups are untouched.
 */
export async function deleteUnlocked(
  store: ObjectStore,
  groups: readonly (readonly string[])[],
  now: Date,
): Promise<UnlockedDeleteResult> {
  const locked: LockedObject[] = [];
  const free: string[] = [];
  for (const group of groups) {
    const held: LockedObject[] = [];
    for (const key of group) {
      const head = await store.head(key).catch(() => null);
      if (head !== null && lockHolds(head.lock, now)) {
        held.push({ key, until: head.lock.retainUntil, legalHold: head.lock.legalHold, mode: head.lock.mode });
      }
    }
    if (held.length > 0) locked.push(...held);
    else free.push(...group);
  }
  const outcome = free.length > 0 ? await store.deleteMany(free) : { deleted: [], failed: [], versionsKept: [] };
  return { ...outcome, locked };
}

/**
 * The lock `objectLock` puts on one backup's objects: retained until `created` + `maxAgeMs`
 * + grace (rounded up to a whole second, the precision S3 keeps), and under a legal hold for a
 * pre-upgrade snapshot when `preUpgradeLegalHold` asks for one.
 */
export function writeLockFor(
  objectLock: S3ObjectLock,
  options: { created: Date; maxAgeMs: number; preUpgrade: boolean },
): WriteLock {
  const until = options.created.getTime() + options.maxAgeMs + objectLock.graceMs;
  return {
    mode: objectLock.mode,
    retainUntil: new Date(Math.ceil(until / 1000) * 1000),
    legalHold: options.preUpgrade && objectLock.preUpgradeLegalHold,
  };
}

/** Why the stored lock is not the one asked for, or undefined when it is (or stronger). */
export function lockMismatch(requested: WriteLock, stored: StoredLock): string | undefined {
  if (stored.mode === undefined && stored.retainUntil === undefined && !stored.legalHold) {
    return `the store reports no lock on it, ${requested.mode} until ${requested.retainUntil.toISOString()} was asked for (the bucket must have Object Lock enabled, and this identity needs s3:GetObjectRetention and s3:GetObjectLegalHold to see it)`;
  }
  if (stored.mode !== requested.mode) {
    return `it is locked in mode ${stored.mode ?? "none"}, ${requested.mode} was asked for`;
  }
  if (stored.retainUntil === undefined || stored.retainUntil.getTime() < requested.retainUntil.getTime() - 1000) {
    return `it is retained until ${stored.retainUntil?.toISOString() ?? "never"}, ${requested.retainUntil.toISOString()} was asked for`;
  }
  if (requested.legalHold && !stored.legalHold) return "it carries no legal hold, one was asked for";
  return undefined;
}
