/**
 * One destination's copy of a backup: what `bao-backup backup` does with each store once the
 * snapshot stream has been written to it (src/executor/backup.ts reads the snapshot once and
 * tees it to every destination).
 *
 *   upload (done by the caller) ─► HEAD (size, encryption, lock) ─► manifest <key>.json
 *   (HEAD: encryption, lock) ─► abandoned multipart uploads ─► retention (this destination only)
 *
 * All or nothing per destination: a copy that fails a check after its upload is deleted (its
 * snapshot and manifest), so a destination either holds a verified backup under the key or
 * nothing; the other destinations are not touched. Every destination writes the same manifest
 * (same size, SHA-256, raft index), except for its own key.
 */
import { Readable } from "node:stream";
import { clusterPrefix, createKeyParser, manifestKey } from "../snapshot/key.ts";
import { type SnapshotManifest, serializeManifest } from "../snapshot/manifest.ts";
import { deletionGroups, type ListedObject, planRetention, type RetentionPolicy } from "../snapshot/retention.ts";
import { encryptionMismatch } from "../storage/encryption.ts";
import type { ObjectHead, ObjectStore, Target, WriteLock } from "../storage/index.ts";
import { deleteUnlocked, earliestRelease, lockMismatch, writeLockFor } from "../storage/locks.ts";
import type { BackupConfig, Destination } from "./config.ts";
import { classify, VerificationError } from "./failure.ts";
import type { RetentionOutcome } from "./result.ts";

/** A destination with its key for this run and the lock its objects get. */
export interface Copy {
  readonly destination: Destination;
  readonly key: string;
  readonly lock: WriteLock | undefined;
}

/**
 * The lock `target.objectLock` puts on a backup's objects (snapshot and manifest alike: a
 * manifest that could be deleted would leave a locked snapshot that no restore accepts).
 */
export function lockFor(target: Target, config: Pick<BackupConfig, "retention" | "kind">, started: Date) {
  if (target.provider !== "s3" || target.objectLock === undefined) return undefined;
  return writeLockFor(target.objectLock, {
    created: started,
    maxAgeMs: config.retention?.maxAgeMs ?? 0,
    preUpgrade: config.kind === "pre-upgrade",
  });
}

/**
 * The stored object carries the encryption `target.encryption` and the lock `target.objectLock`
 * ask for (nothing is compared when they ask for none).
 */
function checkStored(copy: Copy, store: ObjectStore, head: ObjectHead): void {
  const problem = encryptionMismatch(copy.destination.target, head.encryption);
  if (problem !== undefined) {
    throw new VerificationError("EncryptionMismatch", `${head.key} in ${store.location}: ${problem}`);
  }
  const lockProblem = copy.lock === undefined ? undefined : lockMismatch(copy.lock, head.lock);
  if (lockProblem !== undefined) {
    throw new VerificationError("ObjectLockMismatch", `${head.key} in ${store.location}: ${lockProblem}`);
  }
}

/**
 * Checks the uploaded snapshot (`uploaded` bytes stored, `streamed` read) and writes its
 * manifest. Throws with the first problem, after deleting what this copy stored.
 */
export async function verifyAndRecord(
  copy: Copy,
  store: ObjectStore,
  sizes: { uploaded: number; streamed: number },
  manifest: Omit<SnapshotManifest, "key">,
  signal: AbortSignal,
): Promise<void> {
  const { key } = copy;
  try {
    if (sizes.uploaded !== sizes.streamed) {
      throw new VerificationError("SizeMismatch", `uploaded ${sizes.uploaded} bytes but streamed ${sizes.streamed}`);
    }
    const head = await store.head(key);
    if (head === null) throw new VerificationError("ObjectMissing", `${key} is not in ${store.location} after upload`);
    if (head.size !== sizes.streamed) {
      throw new VerificationError(
        "SizeMismatch",
        `${key} holds ${head.size} bytes in ${store.location}, ${sizes.streamed} were streamed`,
      );
    }
    checkStored(copy, store, head);
    const body = Buffer.from(serializeManifest({ ...manifest, key }));
    await store.upload(manifestKey(key), Readable.from([body]), {
      contentLength: body.length,
      contentType: "application/json",
      ...(copy.lock === undefined ? {} : { lock: copy.lock }),
      signal,
    });
    if (copy.destination.target.encryption !== undefined || copy.lock !== undefined) {
      // The manifest is encrypted and locked like the snapshot; a store that ignored the request
      // for one small PUT would leave the backup's record in the clear, or deletable.
      const manifestHead = await store.head(manifestKey(key));
      if (manifestHead === null) {
        throw new VerificationError("ObjectMissing", `${manifestKey(key)} is not in ${store.location} after upload`);
      }
      checkStored(copy, store, manifestHead);
    }
  } catch (err) {
    await discardCopy(copy, store);
    throw err;
  }
}

/** Removes a copy that is not verified (a locked one is only hidden until its lock ends). */
export async function discardCopy(copy: Copy, store: ObjectStore): Promise<void> {
  await store.deleteMany([copy.key, manifestKey(copy.key)]).catch(() => undefined);
}

interface ClusterLocation {
  readonly pathPrefix: string;
  readonly namespace: string;
  readonly cluster: string;
}

function locationOf(copy: Copy, config: Pick<BackupConfig, "cluster">): ClusterLocation {
  return {
    pathPrefix: copy.destination.target.pathPrefix,
    namespace: config.cluster.namespace,
    cluster: config.cluster.name,
  };
}

/**
 * Aborts this cluster's multipart uploads that runs before this one left open: a failed run
 * aborts its own upload, but cannot when the store is unreachable at that moment. The
 * operation lock means no other run of this cluster uploads now, so every upload of one of
 * its snapshot keys started before this run is abandoned. Never fatal: the backup is done.
 */
export async function abortAbandonedUploads(
  copy: Copy,
  store: ObjectStore,
  config: Pick<BackupConfig, "cluster">,
  started: Date,
): Promise<number> {
  const location = locationOf(copy, config);
  const isOurs = createKeyParser(location);
  try {
    const outcome = await store.abortIncompleteUploads(
      clusterPrefix(location),
      // Manifests are single PUTs; only snapshot keys are ever multipart. This run's own upload
      // is complete by now, so it is not listed whatever the two clocks say.
      (u) => u.initiated < started && isOurs(u.key) !== null,
    );
    return outcome.aborted;
  } catch {
    return 0;
  }
}

/**
 * Retention after a verified success; never fatal to the backup (SPEC §4). Only verified
 * snapshots count; those without a manifest are kept until the planner may delete them, and
 * reported (count in the result, keys in the human line). What a lock holds is kept and
 * reported (storage/locks.ts).
 */
export async function applyRetention(
  copy: Copy,
  store: ObjectStore,
  config: Pick<BackupConfig, "cluster">,
  policy: RetentionPolicy,
  now: Date,
): Promise<RetentionOutcome> {
  const location = locationOf(copy, config);
  try {
    const listed: ListedObject[] = [];
    for await (const object of store.list(clusterPrefix(location))) listed.push({ key: object.key });
    const plan = planRetention(listed, policy, { ...location, justWritten: copy.key, now });
    const outcome = await deleteUnlocked(store, deletionGroups(plan), now);
    const snapshots = (keys: readonly string[]): string[] => {
      const set = new Set(keys);
      return [...new Set(plan.delete.filter((d) => set.has(d.key)).map((d) => d.snapshot))];
    };
    const snapshotsDeleted = plan.delete.filter(
      (d) => d.object === "snapshot" && outcome.deleted.includes(d.key),
    ).length;
    const keptSnapshots = plan.keep.filter((k) => k.object === "snapshot").length;
    const unverified = plan.unverified.map((u) => u.key);
    const locked = snapshots(outcome.locked.map((l) => l.key));
    const lockedUntil = earliestRelease(outcome.locked);
    const versionsKept = snapshots(outcome.versionsKept.map((v) => v.key));
    return {
      kept: keptSnapshots,
      deleted: snapshotsDeleted,
      failed: outcome.failed.length,
      // Kept under a lock: reported, never a failure; the first run after the lock deletes them.
      ...(locked.length > 0 ? { locked: locked.length, ...(lockedUntil ? { lockedUntil } : {}) } : {}),
      ...(versionsKept.length > 0
        ? { versionsKept: versionsKept.length, versionsNote: outcome.versionsKept[0]?.reason ?? "" }
        : {}),
      // Orphans are kept and named so a person sees them (`bao-backup verify`, `prune --dry-run`).
      ...(unverified.length > 0 ? { unverified: unverified.length, unverifiedKeys: unverified } : {}),
      ...(outcome.failed.length > 0
        ? {
            error: `could not delete ${outcome.failed.length} object(s), first: ${outcome.failed[0]?.error.message ?? ""}`,
          }
        : {}),
    };
  } catch (err) {
    return { kept: 0, deleted: 0, failed: 0, error: `retention did not run: ${classify(err).message}` };
  }
}
