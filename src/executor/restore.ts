/**
 * `bao-backup restore`: stream a stored snapshot back into OpenBao.
 *
 *   HEAD key ─► manifest <key>.json (size, sha256) ─► leader + login
 *   download ─► tap (SHA-256) ─► inspector ─► gate ─► POST sys/storage/raft/snapshot[-force]
 *
 * The gate holds back the last chunk until the whole object has been hashed and matched
 * against the manifest: a missing, truncated or corrupted object is refused before OpenBao
 * has received a complete snapshot, so it applies nothing. The inspector checks the archive's
 * structure and every gzip CRC-32 but not state.bin's SHA-256 against SHA256SUMS: the manifest
 * match already proves these are the bytes a backup checked, and OpenBao checks SHA256SUMS
 * itself before applying (archive.ts, `hashState`).
 *
 * After the POST the run is not over: OpenBao answers 204 once it has *buffered* the
 * snapshot and applies it afterwards, in the background, under its state lock (≥ 5 s), and
 * then re-runs its active-node setup. For a few seconds more the standbys answer with a 307
 * redirect instead of forwarding requests to the new active node. `awaitRestoreServed`
 * therefore waits until (1) the active node has finished applying (its `active_time` moved
 * and its applied Raft index passed the restore's log entries), (2) every member has applied
 * up to that index, and (3) every member serves an authenticated request through the
 * active node (no redirect, not sealed), and (4) what this run marked in the data before the
 * restore is gone: a node that restarted before applying the snapshot passes (1)–(3) while
 * serving the old data (pre-restore-mark.ts). Only then does the run succeed; otherwise it
 * fails with exit 6 (`RestoreNotServed`) naming each member that did not converge and why.
 * No member needs a restart: OpenBao's own restore callback purges each node's caches.
 *
 * `--key latest` is resolved once, first: the newest verified backup of the source cluster as
 * `bao-backup list` reads the store (src/snapshot/catalog.ts); none → `NoVerifiedBackup`
 * (exit 6). The result reports the key it resolved to.
 *
 * A snapshot of another cluster (restored with `--force`) leaves OpenBao sealed: it applies
 * the snapshot, finds the restored keyring sealed with the other cluster's keys, and seals
 * itself. With `--expect-sealed` the run succeeds as soon as every member reports sealed
 * (`sealed: true` in the result); the person then unseals with the original cluster's keys.
 */
import { pipeline, type Readable, Transform, type TransformCallback } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { explainDenial } from "../openbao/auth.ts";
import { OpenBaoError } from "../openbao/errors.ts";
import { OpenBaoHttp, readCapped } from "../openbao/http.ts";
import { restoreSnapshot } from "../openbao/snapshot.ts";
import { createSnapshotInspector, type SnapshotInfo } from "../snapshot/archive.ts";
import { latestKey, newestVerified, noVerifiedBackupReason, readCatalog } from "../snapshot/catalog.ts";
import { SnapshotArchiveError } from "../snapshot/errors.ts";
import { clusterPrefix, manifestKey } from "../snapshot/key.ts";
import { parseManifest, type SnapshotManifest } from "../snapshot/manifest.ts";
import type { HashingTap } from "../snapshot/tap.ts";
import { createTap } from "../snapshot/tap.ts";
import type { ObjectStore } from "../storage/index.ts";
import { ConfigError, type RestoreConfig } from "./config.ts";
import { failureResult, VerificationError } from "./failure.ts";
import { markPreRestoreState, type PreRestoreMark, preRestoreStateServed, removeMark } from "./pre-restore-mark.ts";
import { startProgress } from "./progress.ts";
import type { ExecutorResult, RestoreSuccess } from "./result.ts";
import { leaderAndToken, login, openStore } from "./session.ts";

const maxManifestBytes = 64 * 1024;

async function readManifest(store: ObjectStore, key: string): Promise<SnapshotManifest> {
  const head = await store.head(manifestKey(key));
  if (head === null) {
    throw new VerificationError(
      "ManifestMissing",
      `${manifestKey(key)} is missing: the backup was never verified; refusing to restore it`,
    );
  }
  if (head.size > maxManifestBytes)
    throw new VerificationError("ManifestInvalid", `${manifestKey(key)} is ${head.size} bytes, not a manifest`);
  const chunks: Buffer[] = [];
  for await (const chunk of await store.download(manifestKey(key))) chunks.push(Buffer.from(chunk as Uint8Array));
  return parseManifest(Buffer.concat(chunks), { expectedKey: key });
}

/** Passes bytes through, holding back the last chunk until `verify` accepts the whole stream. */
class VerifyGate extends Transform {
  #held: Buffer | undefined;
  readonly #verify: () => void;
  constructor(verify: () => void) {
    super();
    this.#verify = verify;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.#held) this.push(this.#held);
    this.#held = chunk;
    done();
  }
  override _flush(done: TransformCallback): void {
    try {
      this.#verify();
    } catch (err) {
      done(err as Error);
      return;
    }
    if (this.#held) this.push(this.#held);
    done();
  }
}

function verifier(tap: HashingTap, expected: { size: number; sha256: string }, key: string): () => void {
  return () => {
    if (tap.bytes !== expected.size) {
      throw new VerificationError(
        "SizeMismatch",
        `${key} streamed ${tap.bytes} bytes, its manifest says ${expected.size}; nothing was restored`,
      );
    }
    const actual = tap.sha256("hex");
    if (actual !== expected.sha256) {
      throw new VerificationError(
        "ChecksumMismatch",
        `${key} has sha256 ${actual}, its manifest says ${expected.sha256}; nothing was restored`,
      );
    }
  };
}

/**
 * The object `key` and its manifest, checked against each other before any byte moves: the
 * object exists, its manifest exists, parses and names it, and both record the same size.
 * Shared with the restore drill (src/drill/), which streams the same way into a throwaway.
 */
export async function readCheckedManifest(store: ObjectStore, key: string): Promise<SnapshotManifest> {
  const head = await store.head(key);
  if (head === null)
    throw new VerificationError("ObjectMissing", `${key} does not exist in ${store.location}; nothing was restored`);
  const manifest = await readManifest(store, key);
  if (head.size !== manifest.size) {
    throw new VerificationError(
      "SizeMismatch",
      `${key} holds ${head.size} bytes, its manifest says ${manifest.size}; nothing was restored`,
    );
  }
  return manifest;
}

/** A stored snapshot on its way to OpenBao: `body` ends only after every check has passed. */
export interface VerifiedSnapshot {
  /** The request body for OpenBao: the object's bytes, the last chunk held back by the gate. */
  readonly body: Readable;
  /** Bytes and SHA-256 of what was downloaded. */
  readonly tap: HashingTap;
  /** Stops the download (call once OpenBao has answered, whatever it answered). */
  destroy(): void;
}

/**
 * download ─► tap (SHA-256) ─► inspector ─► gate. The gate holds back the last chunk until the
 * size and SHA-256 match the manifest and `check` (when given) accepts the archive's facts
 * (the inspector has read all of them by then): whatever fails, OpenBao never receives a
 * complete snapshot. `hashState: false` spares the inspector's SHA-256 of state.bin (see
 * `SnapshotInspectorOptions.hashState` for why a restore may).
 */
export async function openVerifiedSnapshot(
  store: ObjectStore,
  key: string,
  manifest: SnapshotManifest,
  signal: AbortSignal,
  options: { readonly check?: (info: SnapshotInfo) => void; readonly hashState: boolean },
): Promise<VerifiedSnapshot> {
  const { check, hashState } = options;
  const source = await store.download(key, { signal });
  const tap = createTap();
  const inspector = createSnapshotInspector({ hashState });
  const checksums = verifier(tap, manifest, key);
  const gate = new VerifyGate(() => {
    checksums();
    // Set before the inspector passes the end on, so always present here.
    if (check !== undefined && inspector.info !== null) check(inspector.info);
  });
  pipeline(source, tap, inspector, gate, () => {});
  return { body: gate, tap, destroy: () => source.destroy() };
}

/**
 * An archive that failed inspection while streaming is a stored object failing verification:
 * the inspector stopped the stream before its end, so OpenBao received no complete snapshot.
 */
export function storedSnapshotError(err: unknown, key: string): unknown {
  return err instanceof SnapshotArchiveError
    ? new VerificationError(err.code, `${key} is not a valid snapshot: ${err.message}; nothing was restored`, {
        cause: err,
      })
    : err;
}

/** `GET sys/leader` as OpenBao answers it (unauthenticated; served by every member itself). */
interface LeaderView {
  readonly is_self?: boolean;
  readonly leader_address?: string;
  readonly active_time?: string;
  readonly raft_committed_index?: number;
  readonly raft_applied_index?: number;
}

/** The active node as it was just before the snapshot was sent. */
interface BeforeRestore {
  readonly activeTime: string | undefined;
  readonly committedIndex: number;
}

/**
 * How long the members may take to serve the restored data. OpenBao itself needs 5–15 s
 * (apply under the state lock, active-node setup, standbys reconnecting); the Job's
 * `activeDeadlineSeconds` bounds the whole run anyway.
 */
export const defaultServeTimeoutMs = 300_000;
const pollMs = 500;
/**
 * A restore adds at least three Raft entries after the last one seen before it: the restored
 * snapshot (last index + 1), a no-op barrier, and the log that runs the restore callback on
 * the standbys.
 */
const restoreLogEntries = 3;

async function leaderView(http: OpenBaoHttp, member: string, signal: AbortSignal): Promise<LeaderView> {
  // The active node holds its state lock while it applies a snapshot; this call waits for it.
  const view = await http.json<LeaderView>(member, { method: "GET", path: "sys/leader", timeoutMs: 60_000, signal });
  return view ?? {};
}

function describeProblem(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One authenticated request through `member`: `auth/token/lookup-self` is never answered by a
 * standby itself, so any answer from the active node (200, or 403 for a token that is not
 * valid in the restored data) proves the member forwards to it; a 307 means the standby is
 * not forwarding yet, 503 that it is sealed.
 */
async function probe(
  http: OpenBaoHttp,
  member: string,
  token: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  const res = await http.request(member, {
    method: "GET",
    path: "auth/token/lookup-self",
    token,
    timeoutMs: 15_000,
    signal,
  });
  await readCapped(res, 64 * 1024, member).catch(() => "");
  const status = res.statusCode ?? 0;
  if (status === 200 || status === 403) return undefined;
  if (status === 307) return "answers with a redirect instead of forwarding to the active node (not serving yet)";
  if (status === 503) return "is sealed or not ready (503)";
  if (status === 429) return "reports itself as a standby that cannot serve (429)";
  return `answered an authenticated request with HTTP ${status}`;
}

/** The members that answer `sys/seal-status` with `sealed: true` (sorted). */
async function sealedMembers(http: OpenBaoHttp, members: readonly string[], signal: AbortSignal): Promise<string[]> {
  const sealed: string[] = [];
  await Promise.all(
    members.map(async (m) => {
      const status = await http
        .json<{ sealed?: boolean }>(m, { method: "GET", path: "sys/seal-status", timeoutMs: 5000, signal })
        .catch(() => undefined);
      if (status?.sealed === true) sealed.push(m);
    }),
  );
  return sealed.sort();
}

async function sealedHint(http: OpenBaoHttp, members: readonly string[], signal: AbortSignal): Promise<string> {
  const sealed = await sealedMembers(http, members, signal);
  return sealed.length === 0
    ? ""
    : `; sealed: ${sealed.join(", ")} — a snapshot from another cluster needs that cluster's unseal keys: unseal these members with them`;
}

/**
 * Waits until every member serves the restored data (see the module doc); throws
 * `RestoreNotServed`. With `expectSealed`, every member reporting sealed ends the wait too:
 * resolves `{ sealed: true }`.
 */
export async function awaitRestoreServed(
  http: OpenBaoHttp,
  config: Pick<RestoreConfig, "members" | "auth" | "staticToken" | "key" | "expectSealed">,
  before: BeforeRestore,
  oldToken: string,
  mark: PreRestoreMark,
  secrets: string[],
  signal: AbortSignal,
  timeoutMs: number,
): Promise<{ sealed: boolean }> {
  const deadline = Date.now() + timeoutMs;
  const problems = new Map<string, string>();
  const fail = async (stage: string): Promise<never> => {
    const detail = [...problems.entries()].map(([m, p]) => `${m}: ${p}`).join("; ");
    const hint = await sealedHint(http, config.members, signal);
    throw new VerificationError(
      "RestoreNotServed",
      `OpenBao accepted ${config.key}, but ${stage} within ${Math.round(timeoutMs / 1000)} s (${detail || "no answer"})${hint}`,
    );
  };

  // 1. The active node has applied the snapshot and finished its active-node setup again.
  let active: { address: string; index: number } | undefined;
  while (active === undefined) {
    for (const member of config.members) {
      try {
        const view = await leaderView(http, member, signal);
        const applied = view.raft_applied_index ?? 0;
        if (
          view.is_self === true &&
          // An OpenBao that reports no active_time leaves the Raft index as the only signal.
          (before.activeTime === undefined || view.active_time !== before.activeTime) &&
          applied >= before.committedIndex + restoreLogEntries
        ) {
          active = { address: member, index: applied };
          break;
        }
        problems.set(member, view.is_self ? `active, applied index ${applied}, restore not applied yet` : "standby");
      } catch (err) {
        problems.set(member, describeProblem(err));
      }
    }
    if (active !== undefined) break;
    if (config.expectSealed) {
      const sealed = await sealedMembers(http, config.members, signal);
      if (sealed.length === config.members.length) return { sealed: true };
    }
    if (Date.now() >= deadline) await fail("no active node finished applying it");
    await sleep(pollMs, undefined, { signal });
  }
  problems.clear();

  // 2. A token of the restored data when the auth method can give one (a JWT login against the
  //    restored auth configuration); otherwise the old token, whose 403 still proves forwarding.
  let token = oldToken;
  let fresh = false;
  try {
    token = await login(http, active.address, config, signal);
    secrets.push(token);
    fresh = config.auth.method === "jwt";
  } catch (err) {
    if (!(err instanceof OpenBaoError)) throw err;
  }

  // 3. Every member has applied the restore and serves requests through the active node;
  // 4. and the state this run marked before sending the snapshot is no longer served.
  const pending = new Set(config.members);
  for (;;) {
    for (const member of [...pending]) {
      try {
        const view = await leaderView(http, member, signal);
        const applied = view.raft_applied_index ?? 0;
        if (applied < active.index) {
          problems.set(member, `applied Raft index ${applied}, the restore is at ${active.index}`);
          continue;
        }
        const problem = await probe(http, member, token, signal);
        if (problem === undefined) {
          pending.delete(member);
          problems.delete(member);
        } else problems.set(member, problem);
      } catch (err) {
        problems.set(member, describeProblem(err));
      }
    }
    if (pending.size === 0) {
      try {
        const stale = await preRestoreStateServed(http, active.address, oldToken, mark, signal);
        if (stale === undefined) break;
        throw new VerificationError(
          "RestoreNotServed",
          `OpenBao accepted ${config.key}, but ${stale}: it restarted or lost leadership before applying the snapshot; run the restore again`,
        );
      } catch (err) {
        if (err instanceof VerificationError) throw err;
        problems.set(active.address, `cannot tell whether the data from before is gone: ${describeProblem(err)}`);
      }
    }
    if (Date.now() >= deadline) {
      await fail(
        pending.size === 0
          ? "whether it replaced the data could not be checked"
          : `${pending.size} of ${config.members.length} member(s) did not serve it`,
      );
    }
    await sleep(pollMs, undefined, { signal });
  }
  if (fresh) {
    // Best effort: the login token of the check is not needed any more.
    await http
      .request(active.address, { method: "POST", path: "auth/token/revoke-self", token, timeoutMs: 5000, signal })
      .then((res) => readCapped(res, 64 * 1024, active.address))
      .catch(() => undefined);
  }
  return { sealed: false };
}

/**
 * OpenBao refuses a snapshot of another cluster on the plain endpoint ("different set of unseal
 * keys; use the snapshot-force API"): say which setting does that.
 */
function withForceHint(err: unknown, force: boolean): unknown {
  if (force || !(err instanceof OpenBaoError) || err.code !== "RestoreFailed") return err;
  if (!/different set of unseal keys|snapshot-force/.test(err.message)) return err;
  return new OpenBaoError(
    "RestoreFailed",
    `${err.message.trimEnd()}; a snapshot of another cluster is restored with --force (BACKUP_FORCE=true; an OpenBaoRestore's spec.force), and OpenBao then opens with that cluster's unseal keys`,
    { status: err.status, address: err.address, cause: err },
  );
}

/**
 * OpenBao checked the archive's contents against its SHA256SUMS (the inspector leaves state.bin's
 * to it, see `hashState`) and they do not match: the stored object is not an intact snapshot,
 * although its bytes match the manifest (which was then written for another archive, or
 * rewritten). Reported like the inspector's own findings, as a verification failure.
 */
function integrityRefusal(err: unknown, key: string): unknown {
  if (!(err instanceof OpenBaoError) || err.code !== "RestoreFailed") return err;
  if (!/failed checking integrity of snapshot/.test(err.message)) return err;
  return new VerificationError(
    "SnapshotCorrupt",
    `${key} is not a valid snapshot: OpenBao found its contents do not match their checksums (${err.message}); nothing was restored`,
    { cause: err },
  );
}

/** `--key latest`: the newest verified backup of the source cluster, or `NoVerifiedBackup`. */
export async function resolveLatest(store: ObjectStore, config: RestoreConfig): Promise<string> {
  const source = config.source;
  if (source === undefined) {
    throw new ConfigError("BACKUP_SOURCE_CLUSTER", `is required with --key ${latestKey}: whose backups to choose from`);
  }
  const location = { pathPrefix: config.target.pathPrefix, namespace: source.namespace, cluster: source.name };
  const entries = await readCatalog(store, location);
  const newest = newestVerified(entries);
  if (newest === undefined) {
    throw new VerificationError(
      "NoVerifiedBackup",
      `no verified backup of ${source.namespace}/${source.name} in ${store.location}/${clusterPrefix(location)}: ${noVerifiedBackupReason(entries)}; nothing was restored`,
    );
  }
  return newest.key;
}

export async function runRestore(
  config: RestoreConfig,
  options: { now?: () => Date; signal?: AbortSignal; serveTimeoutMs?: number } = {},
): Promise<ExecutorResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const controller = new AbortController();
  const forward = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", forward, { once: true });
  const signal = controller.signal;
  const secrets: string[] = [];
  const http = new OpenBaoHttp(config.tls);
  let store: ObjectStore | undefined;
  const latest = config.key === latestKey;
  // With `latest`, undefined until resolved: a failure before that names no key.
  let resolved: string | undefined = latest ? undefined : config.key;
  let marked: { address: string; token: string; mark: PreRestoreMark } | undefined;
  try {
    store = await openStore(config, secrets);
    const key = resolved ?? (await resolveLatest(store, config));
    resolved = key;
    const manifest = await readCheckedManifest(store, key);
    const { leader, token } = await leaderAndToken(http, config, secrets, signal);
    const view = await leaderView(http, leader, signal);
    const before: BeforeRestore = {
      activeTime: view.active_time,
      committedIndex: view.raft_committed_index ?? view.raft_applied_index ?? 0,
    };
    const mark = await markPreRestoreState(http, leader, token, config.auth, signal);
    marked = { address: leader, token, mark };

    const { body, tap, destroy } = await openVerifiedSnapshot(store, key, manifest, signal, { hashState: false });
    const progress = startProgress(`${key} → OpenBao`, () => tap.bytes);
    try {
      await restoreSnapshot(http, leader, token, body, { force: config.force, signal }).catch(async (err: unknown) => {
        const explained = await explainDenial(http, leader, config.auth, token, err, signal);
        throw integrityRefusal(withForceHint(explained, config.force), key);
      });
    } finally {
      progress.stop();
      destroy();
    }
    const served = await awaitRestoreServed(
      http,
      { ...config, key },
      before,
      token,
      mark,
      secrets,
      signal,
      options.serveTimeoutMs ?? defaultServeTimeoutMs,
    );
    const result: RestoreSuccess = {
      mode: "restore",
      ok: true,
      key,
      size: tap.bytes,
      sha256: manifest.sha256,
      durationMs: now().getTime() - started.getTime(),
      startedAt: started.toISOString(),
      ...(latest ? { latest: true as const } : {}),
      ...(served.sealed ? { sealed: true as const } : {}),
    };
    return result;
  } catch (err) {
    const cause = storedSnapshotError(err, resolved ?? config.key);
    return failureResult("restore", cause, { secrets, key: resolved, started, now: now() });
  } finally {
    // Gone with the old data after a restore; removed where the data was not replaced.
    if (marked !== undefined) await removeMark(http, marked.address, marked.token, marked.mark, signal);
    options.signal?.removeEventListener("abort", forward);
    http.close();
    await store?.close().catch(() => undefined);
  }
}
