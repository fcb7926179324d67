/**
 * `bao-backup backup`: one Raft snapshot, one pass over its bytes.
 *
 *   OpenBao leader ──GET snapshot──► tap (SHA-256, count) ─► inspector (gzip/tar/SHA256SUMS)
 *                                                             └─► store.upload(key)
 *   then HEAD (size, encryption) ─► manifest <key>.json (HEAD: encryption) ─► retention (same identity)
 *
 * All or nothing: any failure before the manifest is written leaves no object under the key
 * (the store aborts its upload; a completed object that fails verification is deleted).
 */
import { pipeline, Readable } from "node:stream";
import { explainDenial } from "../openbao/auth.ts";
import { OpenBaoHttp } from "../openbao/http.ts";
import { openSnapshot } from "../openbao/snapshot.ts";
import { createSnapshotInspector } from "../snapshot/archive.ts";
import { buildKey, clusterPrefix, createKeyParser, manifestKey, newKeyId } from "../snapshot/key.ts";
import { recordableClusterId, recordableSealType, serializeManifest } from "../snapshot/manifest.ts";
import { deletionGroups, type ListedObject, planRetention } from "../snapshot/retention.ts";
import { createTap } from "../snapshot/tap.ts";
import { encryptionMismatch } from "../storage/encryption.ts";
import type { ObjectHead, ObjectStore, WriteLock } from "../storage/index.ts";
import { deleteUnlocked, earliestRelease, lockMismatch, writeLockFor } from "../storage/locks.ts";
import type { BackupConfig } from "./config.ts";
import { classify, failureResult, VerificationError } from "./failure.ts";
import { startProgress } from "./progress.ts";
import type { BackupSuccess, ExecutorResult, RetentionOutcome } from "./result.ts";
import { clusterFacts, leaderAndToken, openStore } from "./session.ts";

export interface RunOptions {
  readonly now?: () => Date;
  readonly signal?: AbortSignal;
}

export async function runBackup(config: BackupConfig, options: RunOptions = {}): Promise<ExecutorResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const controller = new AbortController();
  const forward = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", forward, { once: true });
  const signal = controller.signal;
  const secrets: string[] = [];
  const http = new OpenBaoHttp(config.tls);
  let store: ObjectStore | undefined;
  // The key carries the time this run started, never a scheduled time (SPEC §5 trap 2).
  const key = buildKey({
    pathPrefix: config.target.pathPrefix,
    namespace: config.cluster.namespace,
    cluster: config.cluster.name,
    time: started,
    kind: config.kind,
    // The Job's key id when the operator gave one: its backup can then be found without its report.
    random: config.keyId ?? newKeyId(),
  });
  let uploaded = false;
  // Snapshot and manifest are locked alike (storage/locks.ts): a manifest that could be deleted
  // would leave a locked snapshot that no restore accepts.
  const lock =
    config.target.provider === "s3" && config.target.objectLock !== undefined
      ? writeLockFor(config.target.objectLock, {
          created: started,
          maxAgeMs: config.retention?.maxAgeMs ?? 0,
          preUpgrade: config.kind === "pre-upgrade",
        })
      : undefined;
  try {
    store = await openStore(config, secrets);
    const { leader, token } = await leaderAndToken(http, config, secrets, signal);
    const facts = await clusterFacts(http, leader, signal);
    const version = facts.version;

    const source = await openSnapshot(http, leader, token, signal).catch(async (err: unknown) => {
      throw await explainDenial(http, leader, config.auth, token, err, signal);
    });
    const tap = createTap();
    const inspector = createSnapshotInspector();
    // Errors anywhere destroy every stage; the upload then sees the error, never a clean end.
    pipeline(source, tap, inspector, () => {});
    const progress = startProgress(`snapshot → ${key}`, () => tap.bytes);
    let upload: { size: number };
    try {
      upload = await store.upload(key, inspector, {
        contentType: "application/gzip",
        metadata: { cluster: config.cluster.name, namespace: config.cluster.namespace, backup_type: config.kind },
        // The expected size raises the part size before the provider's part limit (storage/parts.ts).
        ...(config.sizeHint === undefined ? {} : { sizeHint: config.sizeHint }),
        ...(lock === undefined ? {} : { lock }),
        signal,
      });
    } catch (err) {
      source.destroy();
      throw err;
    } finally {
      progress.stop();
    }
    uploaded = true;
    const info = await inspector.result;
    const sha256 = tap.sha256("hex");
    if (upload.size !== tap.bytes) {
      throw new VerificationError("SizeMismatch", `uploaded ${upload.size} bytes but streamed ${tap.bytes}`);
    }
    const head = await store.head(key);
    if (head === null) throw new VerificationError("ObjectMissing", `${key} is not in ${store.location} after upload`);
    if (head.size !== tap.bytes) {
      throw new VerificationError(
        "SizeMismatch",
        `${key} holds ${head.size} bytes in ${store.location}, ${tap.bytes} were streamed`,
      );
    }
    checkStored(config, store, head, lock);
    const manifest = serializeManifest({
      formatVersion: 1,
      key,
      size: tap.bytes,
      sha256,
      raftIndex: info.index,
      raftTerm: info.term,
      openbaoVersion: version ?? null,
      clusterId: recordableClusterId(facts.clusterId),
      sealType: recordableSealType(facts.sealType),
      created: started.toISOString(),
    });
    const body = Buffer.from(manifest);
    await store.upload(manifestKey(key), Readable.from([body]), {
      contentLength: body.length,
      contentType: "application/json",
      ...(lock === undefined ? {} : { lock }),
      signal,
    });
    if (config.target.encryption !== undefined || lock !== undefined) {
      // The manifest is encrypted and locked like the snapshot; a store that ignored the request
      // for one small PUT would leave the backup's record in the clear, or deletable.
      const manifestHead = await store.head(manifestKey(key));
      if (manifestHead === null) {
        throw new VerificationError("ObjectMissing", `${manifestKey(key)} is not in ${store.location} after upload`);
      }
      checkStored(config, store, manifestHead, lock);
    }

    const abandonedUploads = await abortAbandonedUploads(config, store, started);
    const retention = config.retention ? await applyRetention(config, store, key, now()) : undefined;
    const result: BackupSuccess = {
      mode: "backup",
      ok: true,
      key,
      size: tap.bytes,
      sha256,
      durationMs: now().getTime() - started.getTime(),
      raftIndex: info.index,
      raftTerm: info.term,
      openbaoVersion: version,
      startedAt: started.toISOString(),
      retention,
      ...(abandonedUploads > 0 ? { abandonedUploadsAborted: abandonedUploads } : {}),
    };
    return result;
  } catch (err) {
    if (uploaded && store) {
      // The object exists but is not verified (or has no manifest): remove it.
      await store.deleteMany([key, manifestKey(key)]).catch(() => undefined);
    }
    return failureResult("backup", err, { secrets, key, started, now: now() });
  } finally {
    options.signal?.removeEventListener("abort", forward);
    http.close();
    await store?.close().catch(() => undefined);
  }
}

/**
 * The stored object carries the encryption `target.encryption` and the lock `target.objectLock`
 * ask for (nothing is compared when they ask for none). A mismatch fails the run; its objects
 * are then deleted (a locked one only hidden behind a delete marker until its lock ends).
 */
function checkStored(config: BackupConfig, store: ObjectStore, head: ObjectHead, lock: WriteLock | undefined): void {
  const problem = encryptionMismatch(config.target, head.encryption);
  if (problem !== undefined) {
    throw new VerificationError("EncryptionMismatch", `${head.key} in ${store.location}: ${problem}`);
  }
  const lockProblem = lock === undefined ? undefined : lockMismatch(lock, head.lock);
  if (lockProblem !== undefined) {
    throw new VerificationError("ObjectLockMismatch", `${head.key} in ${store.location}: ${lockProblem}`);
  }
}

/**
 * Aborts this cluster's multipart uploads that runs before this one left open: a failed run
 * aborts its own upload, but cannot when the store is unreachable at that moment. The
 * operation lock means no other run of this cluster uploads now, so every upload of one of
 * its snapshot keys started before this run is abandoned. Never fatal: the backup is done.
 */
async function abortAbandonedUploads(config: BackupConfig, store: ObjectStore, started: Date): Promise<number> {
  const location = {
    pathPrefix: config.target.pathPrefix,
    namespace: config.cluster.namespace,
    cluster: config.cluster.name,
  };
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
 * reported (count in the result, keys in the human line).
 */
async function applyRetention(
  config: BackupConfig,
  store: ObjectStore,
  justWritten: string,
  now: Date,
): Promise<RetentionOutcome> {
  const policy = config.retention;
  if (!policy) return { kept: 0, deleted: 0, failed: 0 };
  const location = {
    pathPrefix: config.target.pathPrefix,
    namespace: config.cluster.namespace,
    cluster: config.cluster.name,
  };
  try {
    const listed: ListedObject[] = [];
    for await (const object of store.list(clusterPrefix(location))) listed.push({ key: object.key });
    const plan = planRetention(listed, policy, { ...location, justWritten, now });
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
