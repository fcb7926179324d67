/**
 * `bao-backup backup`: one Raft snapshot, one pass over its bytes, to one or more destinations.
 *
 *   OpenBao leader ──GET snapshot──► tap (SHA-256, count) ─► inspector (gzip/tar/SHA256SUMS)
 *                                                             └─► tee ─► store.upload(key) per destination
 *   then per destination (destination.ts): HEAD (size, encryption, lock) ─► manifest <key>.json
 *   ─► abandoned uploads ─► retention (that destination only)
 *
 * All or nothing per destination: any failure before its manifest is written leaves no object
 * under its key (the store aborts its upload; a completed object that fails verification is
 * deleted). A failure of the source (OpenBao, the archive) fails every destination alike, so
 * the run fails as it would with one. With several destinations (`BACKUP_ADDITIONAL_TARGETS`)
 * one destination failing leaves the others to complete, with identical SHA-256 in every
 * manifest; `BACKUP_SUCCESS_POLICY` (success-policy.ts) decides the run's result, and every
 * destination's outcome is in it.
 */
import { pipeline } from "node:stream";
import { writeCanary } from "../drill/canary.ts";
import { explainDenial } from "../openbao/auth.ts";
import { OpenBaoHttp } from "../openbao/http.ts";
import { openSnapshot } from "../openbao/snapshot.ts";
import { createSnapshotInspector } from "../snapshot/archive.ts";
import { buildKey, newKeyId } from "../snapshot/key.ts";
import { type ManifestCanary, recordableClusterId, recordableSealType } from "../snapshot/manifest.ts";
import { createTap } from "../snapshot/tap.ts";
import { isStorageError } from "../storage/errors.ts";
import type { ObjectStore } from "../storage/index.ts";
import { tee } from "../storage/tee.ts";
import type { BackupConfig } from "./config.ts";
import {
  abortAbandonedUploads,
  applyRetention,
  type Copy,
  discardCopy,
  lockFor,
  verifyAndRecord,
} from "./destination.ts";
import { classify, failureResult } from "./failure.ts";
import { startProgress } from "./progress.ts";
import { holdsKeys, SecretNotFoundError } from "./required-secrets.ts";
import type { BackupSuccess, DestinationReport, ExecutorResult, RetentionOutcome } from "./result.ts";
import { clusterFacts, leaderAndToken, openStore } from "./session.ts";
import { decide } from "./success-policy.ts";

export interface RunOptions {
  readonly now?: () => Date;
  readonly signal?: AbortSignal;
}

/** A destination's copy once its store is open, and what became of it. */
interface Run extends Copy {
  store: ObjectStore | undefined;
  /** Set when this destination failed; the others go on. */
  error: unknown;
  uploadedBytes: number | undefined;
  retention: RetentionOutcome | undefined;
  abandonedUploads: number;
}

/** A destination's message in the result: short, so that every destination fits the termination message. */
const maxDestinationMessageChars = 200;

export async function runBackup(config: BackupConfig, options: RunOptions = {}): Promise<ExecutorResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const controller = new AbortController();
  const forward = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", forward, { once: true });
  const signal = controller.signal;
  const secrets: string[] = [];
  const http = new OpenBaoHttp(config.tls);
  // The Job's key id when the operator gave one: its backup can then be found without its report.
  const random = config.keyId ?? newKeyId();
  const runs: Run[] = config.destinations.map((destination) => ({
    destination,
    // The key carries the time this run started, never a scheduled time (SPEC §5 trap 2).
    key: buildKey({
      pathPrefix: destination.target.pathPrefix,
      namespace: config.cluster.namespace,
      cluster: config.cluster.name,
      time: started,
      kind: config.kind,
      random,
    }),
    lock: lockFor(destination.target, config, started),
    store: undefined,
    error: undefined,
    uploadedBytes: undefined,
    retention: undefined,
    abandonedUploads: 0,
  }));
  const main = runs[0] as Run;
  const several = runs.length > 1;
  try {
    // With one destination a store that cannot be opened fails the run at once, as always;
    // with several it fails that destination only.
    for (const run of runs) {
      try {
        const { credentialsSecret, credentialsDir } = run.destination;
        if (credentialsSecret !== undefined && !holdsKeys(credentialsDir)) {
          throw new SecretNotFoundError(
            credentialsSecret,
            `Secret ${credentialsSecret} (the credentials of destination ${run.destination.name}) does not exist in namespace ${config.cluster.namespace}, or holds no keys: create it, or fix spec.backup.additionalTargets`,
          );
        }
        run.store = await openStore(run.destination, secrets);
      } catch (err) {
        if (!several) throw err;
        run.error = err;
      }
    }
    const open = runs.filter((r) => r.store !== undefined);
    if (open.length === 0) throw main.error;

    const { leader, token } = await leaderAndToken(http, config, secrets, signal);
    const facts = await clusterFacts(http, leader, signal);
    // Written just before the snapshot, so the snapshot holds it (src/drill/canary.ts). A canary
    // that cannot be written never costs the backup: it goes on without one and says why, and a
    // drill that requires the canary then fails (CanaryMissing).
    let canary: ManifestCanary | undefined;
    let canaryProblem: string | undefined;
    if (config.canary !== undefined) {
      try {
        canary = await writeCanary(http, leader, token, {
          location: config.canary,
          backupKey: main.key,
          now: now(),
          signal,
        });
      } catch (err) {
        canaryProblem = classify(err, secrets, "backup").message;
      }
    }
    const source = await openSnapshot(http, leader, token, signal).catch(async (err: unknown) => {
      throw await explainDenial(http, leader, config.auth, token, err, signal);
    });
    const tap = createTap();
    const inspector = createSnapshotInspector();
    // Errors anywhere destroy every stage; each upload then sees the error, never a clean end.
    pipeline(source, tap, inspector, () => {});
    const { branches, detach } = tee(inspector, open.length);
    const progress = startProgress(`snapshot → ${main.key}`, () => tap.bytes);
    const settled = await Promise.allSettled(
      open.map(async (run, i) => {
        try {
          const upload = await (run.store as ObjectStore).upload(run.key, branches[i] as AsyncIterable<Uint8Array>, {
            contentType: "application/gzip",
            metadata: { cluster: config.cluster.name, namespace: config.cluster.namespace, backup_type: config.kind },
            // The expected size raises the part size before the provider's part limit (storage/parts.ts).
            ...(config.sizeHint === undefined ? {} : { sizeHint: config.sizeHint }),
            ...(run.lock === undefined ? {} : { lock: run.lock }),
            signal,
          });
          run.uploadedBytes = upload.size;
        } catch (err) {
          // A failed destination must not hold back the others' stream.
          detach(i);
          throw err;
        }
      }),
    );
    progress.stop();
    // The source's own failure (OpenBao, the archive) is not one destination's: it fails the run.
    const sourceFailure = settled.find(
      (s): s is PromiseRejectedResult => s.status === "rejected" && !isStorageError(s.reason),
    );
    settled.forEach((s, i) => {
      if (s.status === "rejected") (open[i] as Run).error = s.reason;
    });
    const uploaded = open.filter((r) => r.uploadedBytes !== undefined);
    if (sourceFailure !== undefined || uploaded.length === 0) {
      source.destroy();
      await Promise.all(uploaded.map((r) => discardCopy(r, r.store as ObjectStore)));
      throw sourceFailure?.reason ?? main.error ?? uploaded[0]?.error ?? open[0]?.error;
    }
    const info = await inspector.result.catch(async (err: unknown) => {
      await Promise.all(uploaded.map((r) => discardCopy(r, r.store as ObjectStore)));
      throw err;
    });
    const sha256 = tap.sha256("hex");
    const manifest = {
      formatVersion: 1 as const,
      size: tap.bytes,
      sha256,
      raftIndex: info.index,
      raftTerm: info.term,
      openbaoVersion: facts.version ?? null,
      clusterId: recordableClusterId(facts.clusterId),
      sealType: recordableSealType(facts.sealType),
      created: started.toISOString(),
      ...(canary === undefined ? {} : { canary }),
    };
    await Promise.all(
      uploaded.map(async (run) => {
        const store = run.store as ObjectStore;
        try {
          await verifyAndRecord(
            run,
            store,
            { uploaded: run.uploadedBytes ?? 0, streamed: tap.bytes },
            manifest,
            signal,
          );
        } catch (err) {
          run.error = err;
          return;
        }
        run.abandonedUploads = await abortAbandonedUploads(run, store, config, started);
        // Pre-upgrade snapshots are rollback points: retention runs after scheduled backups only.
        if (config.retention && config.kind !== "pre-upgrade") {
          run.retention = await applyRetention(run, store, config, config.retention, now());
        }
      }),
    );
    if (!several && main.error !== undefined) throw main.error;

    const reports = several ? runs.map((r) => report(r, secrets)) : undefined;
    const decision = decide(config.successPolicy, reports ?? [{ name: main.destination.name, ok: true }]);
    if (!decision.ok) {
      const failedBy = runs.find((r) => r.destination.name === decision.failedBy?.name) ?? main;
      const failure = failureResult("backup", failedBy.error, { secrets, key: main.key, started, now: now() });
      const stored = runs.filter((r) => r.error === undefined).map((r) => r.destination.name);
      return {
        ...failure,
        message: `destination ${failedBy.destination.name} (${failedBy.store?.location ?? "not opened"}): ${failure.message}; policy ${config.successPolicy}: ${stored.length === 0 ? "no destination holds the backup" : `stored and verified in ${stored.join(", ")}`}`,
        ...(reports === undefined ? {} : { destinations: reports }),
      };
    }
    const result: BackupSuccess = {
      mode: "backup",
      ok: true,
      key: main.error === undefined ? main.key : (runs.find((r) => r.error === undefined)?.key ?? main.key),
      size: tap.bytes,
      sha256,
      durationMs: now().getTime() - started.getTime(),
      raftIndex: info.index,
      raftTerm: info.term,
      openbaoVersion: facts.version,
      startedAt: started.toISOString(),
      retention: main.retention,
      ...(main.abandonedUploads > 0 ? { abandonedUploadsAborted: main.abandonedUploads } : {}),
      ...(reports === undefined ? {} : { destinations: reports }),
      ...(canary === undefined ? {} : { canaryVersion: canary.version }),
      ...(canaryProblem === undefined ? {} : { canaryProblem }),
    };
    return result;
  } catch (err) {
    return failureResult("backup", err, { secrets, key: main.key, started, now: now() });
  } finally {
    options.signal?.removeEventListener("abort", forward);
    http.close();
    await Promise.all(runs.map((r) => r.store?.close().catch(() => undefined)));
  }
}

/** One destination's line of the result. */
function report(run: Run, secrets: readonly string[]): DestinationReport {
  const base = {
    name: run.destination.name,
    location: run.store?.location ?? `${run.destination.target.provider}://${run.destination.target.bucket}`,
    key: run.key,
  };
  if (run.error === undefined) {
    return { ...base, ok: true, ...(run.retention === undefined ? {} : { retention: withoutKeys(run.retention) }) };
  }
  const failure = classify(run.error, secrets, "backup");
  const message =
    failure.message.length > maxDestinationMessageChars
      ? `${failure.message.slice(0, maxDestinationMessageChars)}…`
      : failure.message;
  return { ...base, ok: false, reason: failure.reason, message };
}

/** Retention of a secondary destination without its list of keys (the count stays). */
function withoutKeys(retention: RetentionOutcome): RetentionOutcome {
  const { unverifiedKeys: _keys, ...rest } = retention;
  return rest;
}
