/**
 * A restore drill: prove that a stored backup really restores, without touching the live
 * cluster. The backup is streamed from storage into a throwaway OpenBao with the same checks
 * as a restore (src/executor/restore.ts: manifest, SHA-256 tap, archive inspector, and a gate
 * that holds the last chunk until all of them passed), then the drill proves as much as the
 * key material allows:
 *
 *   loaded    OpenBao accepted the snapshot and applied it; the archive's Raft index is the
 *             manifest's; the restored seal configuration is the manifest's `sealType`.
 *   verified  and, opened with the key material, the restored data comes up, its applied Raft
 *             index is past the snapshot's, its cluster id is the manifest's, a token valid in
 *             the restored data reads the canary the backup wrote just before its snapshot
 *             (exactly that version and value), and the mounts and auth methods are counted.
 *
 * Invariants:
 * - Never the live cluster: the throwaway must be a loopback address (config.ts) and
 *   *uninitialised* when the drill starts — the drill initialises it itself. A live cluster is
 *   always initialised, so even a port-forward to it on 127.0.0.1 is refused before a byte is
 *   sent.
 * - Key material decides the outcome, never a guess: none → "loaded"; unseal keys, or a
 *   throwaway configured with the source cluster's auto-unseal → "verified" or a failure. Key
 *   material that cannot open the backup is a failure (`UnsealRefused`), not a quiet "loaded".
 * - Nothing read from the throwaway leaves the process: the canary's value is hashed as it is
 *   read, tokens and keys are secrets every message is redacted with, and the result holds
 *   only counts, versions and indexes. The throwaway's data lives in its own scratch directory
 *   (the Pod's emptyDir) and dies with it; the drill writes nothing anywhere else.
 *
 * What OpenBao shows, found with the real `bao` (v2.4.0, Raft, single node):
 * - A snapshot of another cluster (force-restored into a Shamir throwaway) is applied under the
 *   state lock: `sys/seal-status` blocks ~5–6 s, then the node reports `sealed: true` — it
 *   failed to read the restored keyring with its own keys ("error reloading root key …
 *   message authentication failed") and sealed itself. The throwaway was unsealed before, so
 *   "sealed now" is the proof it applied the snapshot. Its own root token is gone with its data.
 * - Sealed, `sys/seal-status` still answers, with the *restored* seal configuration: `type`,
 *   `t` and `n` are the source cluster's (a source initialised 2-of-3 shows t=2, n=3 on a 1-of-1
 *   throwaway); `core/seal-config` is stored unencrypted. `cluster_id` is absent while sealed.
 *   When the restored seal type differs from the throwaway's seal stanza, seal-status answers
 *   500 `barrier seal type of "transit" does not match expected type of "shamir"` (or `… does
 *   not match loaded type of …` the other way round): the first name is the restored type.
 * - Sealed, nothing tells the applied Raft index: `sys/leader` and `sys/health` answer 503 or
 *   "sealed" without indexes; only `sys/metrics` (if the listener allows unauthenticated
 *   metrics) shows that a restore happened (`vault_raft_restoreUserSnapshot_count`), with no
 *   index. So "loaded" checks the index where it can be read — the archive's meta.json, at the
 *   gate, against the manifest — and "verified" checks the applied index once the data is open.
 * - hashicorp/raft restores a user snapshot at max(snapshot index, own last index) + 1 (the log
 *   says "restored user snapshot: index=N"); opened, `sys/leader` shows `raft_applied_index`
 *   above the snapshot's index, and `sys/health` shows the *source* cluster's `cluster_id`
 *   (stored in the data) while `cluster_name` is the throwaway's own.
 * - Unsealing with the source cluster's keys works after a force restore; a wrong key of the
 *   right form counts towards the threshold, and the combination is refused with "failed to
 *   decrypt keys from storage" or "failed to compute combined key"; no answer echoes a key.
 * - `snapshot-force` skips the sealed checksums (SHA256SUMS.sealed) entirely: an archive
 *   repacked with a changed state.bin and recomputed SHA256SUMS is accepted. Opened with the
 *   keys, a changed value then fails to read ("decryption failed: cipher: message
 *   authentication failed", 500); a changed core entry leaves the node unsealed but never
 *   active ("post-unseal setup failed"). So "loaded" cannot detect such a change; "verified"
 *   does.
 * - A throwaway with the *same* Transit auto-unseal as the source accepts the snapshot on the
 *   plain endpoint: it opens SHA256SUMS.sealed with that key, refuses a repacked archive (500
 *   "failed checking integrity of snapshot: hash check failed for \"state.bin\"") and, once
 *   applied, opens the restored keyring itself: it stays unsealed, becomes active again (new
 *   `active_time`) and serves the restored data. A different Transit key is refused on the
 *   plain endpoint: 400 "could not verify hash file, possibly the snapshot is using a different
 *   autoseal key; use the snapshot-force API to bypass this check".
 */
import { setTimeout as sleep } from "node:timers/promises";
import { VerificationError } from "../executor/failure.ts";
import { openVerifiedSnapshot, storedSnapshotError } from "../executor/restore.ts";
import { OpenBaoError } from "../openbao/errors.ts";
import type { OpenBaoHttp } from "../openbao/http.ts";
import { restoreSnapshot } from "../openbao/snapshot.ts";
import type { SnapshotManifest } from "../snapshot/manifest.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { type CanaryLocation, readCanary } from "./canary.ts";
import { DrillConfigError } from "./config.ts";
import {
  type AfterRestore,
  afterRestore,
  canaryToRead,
  checkArchiveIndex,
  checkCanary,
  checkRestored,
  checkSealType,
  type DrillOutcome,
  type KeyMaterial,
  keyMaterialPlan,
  loadedMessage,
  restoredSealType,
  restoreWithForce,
  verifiedMessage,
} from "./outcome.ts";
import { type LeaderFacts, type SealObservation, Throwaway } from "./throwaway.ts";

/**
 * How long the throwaway may take for each wait (becoming active, applying the snapshot,
 * coming up after the unseal) together. OpenBao needs seconds; the Job's deadline bounds
 * the whole run anyway.
 */
export const defaultDrillTimeoutMs = 300_000;
const pollMs = 500;

export interface DrillInput {
  readonly store: ObjectStore;
  /** The backup to drill (already resolved when `latest` was asked for). */
  readonly key: string;
  /** Its manifest, read and checked against the object (`readCheckedManifest`). */
  readonly manifest: SnapshotManifest;
  /** The throwaway: loopback, fresh. The drill initialises it (one share; see `Throwaway`). */
  readonly throwaway: { readonly address: string; readonly http: OpenBaoHttp };
  /** The source cluster's Shamir unseal keys; empty when none are given. */
  readonly unsealKeys: readonly string[];
  /** The canary the backup must have written (`DRILL_CANARY_PATH`); else the manifest's, if any. */
  readonly requiredCanary?: CanaryLocation | undefined;
  /** A token valid in the restored data; asked for only once that data is open. */
  readonly restoredToken: () => Promise<string>;
  /** Tells a token the restored data does not know from a missing policy, after a 403. */
  readonly explainDenial?: (token: string, err: unknown) => Promise<unknown>;
  /** Every secret met is added here, for redaction. */
  readonly secrets: string[];
  readonly signal: AbortSignal;
  readonly timeoutMs?: number;
  /** How long to wait for the throwaway to listen at all (`throwawayStartMs`). */
  readonly startWaitMs?: number;
  readonly now?: () => Date;
}

async function waitUntil<T>(
  deadline: number,
  signal: AbortSignal,
  step: () => Promise<{ done: T } | { waiting: string }>,
  timedOut: (last: string) => Error,
): Promise<T> {
  let last = "no answer yet";
  for (;;) {
    try {
      const result = await step();
      if ("done" in result) return result.done;
      last = result.waiting;
    } catch (err) {
      // Unreachable for a moment (OpenBao restarting its listeners) is waited out; anything
      // a check decided is final.
      if (!(err instanceof OpenBaoError) || (err.code !== "Unreachable" && err.code !== "BadResponse")) throw err;
      last = err.message;
    }
    if (Date.now() >= deadline) throw timedOut(last);
    await sleep(pollMs, undefined, { signal });
  }
}

/**
 * How long the first look waits for the throwaway to listen. In a drill Pod the throwaway is a
 * native sidecar started just before the executor (it has no shell for a probe to run, and it
 * listens on the Pod's loopback only, which a kubelet probe cannot reach): it needs a moment.
 */
export const throwawayStartMs = 60_000;

/** The first look: reachable (waiting for it to start listening), and what it is (a drill needs a fresh one). */
async function firstLook(
  throwaway: Throwaway,
  signal: AbortSignal,
  waitMs = throwawayStartMs,
): Promise<SealObservation> {
  const started = Date.now();
  for (;;) {
    try {
      return await throwaway.sealStatus(15_000);
    } catch (err) {
      if (!(err instanceof OpenBaoError) || err.code !== "Unreachable") throw err;
      if (Date.now() - started < waitMs) {
        await sleep(pollMs, undefined, { signal });
        continue;
      }
      throw new OpenBaoError(
        "Unreachable",
        `${err.message}; the throwaway OpenBao must be running there (DRILL_OPENBAO_ADDR): in a drill Job its second container, on a workstation a \`bao server\` you started (docs/drills.md)`,
        { address: throwaway.address, cause: err },
      );
    }
  }
}

/** OpenBao's refusal of the snapshot, in a drill's terms. */
function refusal(err: unknown, key: string, plan: KeyMaterial): unknown {
  if (!(err instanceof OpenBaoError) || (err.code !== "RestoreFailed" && err.code !== "BadResponse")) return err;
  if (err.status === undefined) return err;
  if (plan.kind === "auto-unseal" && /different (?:autoseal key|set of unseal keys)/.test(err.message)) {
    return new VerificationError(
      "UnsealRefused",
      `the throwaway's ${plan.sealType} seal is not the one ${key} was sealed with: OpenBao cannot open the snapshot's sealed checksums (${err.message}); give the throwaway the source cluster's seal (the same Transit key or KMS key)`,
      { cause: err },
    );
  }
  const changed = /hash check failed|failed checking integrity/.test(err.message)
    ? " — its content does not match the checksums OpenBao sealed into it when it wrote it, so it was changed afterwards"
    : "";
  return new VerificationError(
    "SnapshotRefused",
    `OpenBao refused ${key} although its bytes match its manifest: ${err.message}${changed}; this backup cannot be restored as it is stored`,
    { cause: err },
  );
}

async function active(
  throwaway: Throwaway,
  deadline: number,
  signal: AbortSignal,
  timedOut: (last: string) => Error,
): Promise<LeaderFacts> {
  return waitUntil<LeaderFacts>(
    deadline,
    signal,
    async () => {
      const leader = await throwaway.leader();
      if (leader?.isSelf && leader.activeTime !== undefined) return { done: leader };
      return { waiting: leader === undefined ? "sys/leader does not answer (sealed?)" : "unsealed, but not active" };
    },
    timedOut,
  );
}

export async function runDrill(input: DrillInput): Promise<DrillOutcome> {
  const now = input.now ?? (() => new Date());
  const started = now().getTime();
  const timeoutMs = input.timeoutMs ?? defaultDrillTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  const within = `within ${Math.round(timeoutMs / 1000)} s`;
  const { key, manifest, secrets, signal } = input;
  const { address, http } = input.throwaway;
  const throwaway = new Throwaway(http, address, signal);
  secrets.push(...input.unsealKeys);

  // 1. A fresh OpenBao, and key material that fits the backup — before a byte moves.
  const first = await firstLook(throwaway, signal, input.startWaitMs);
  if (first.kind !== "status" || first.status.initialized) {
    throw new DrillConfigError(
      "DRILL_OPENBAO_ADDR",
      `${address} is an initialised OpenBao: a drill restores only into a fresh, uninitialised one (a \`bao server\` on an empty Raft directory), so that it can never overwrite a real cluster — a port-forward to one is loopback too; nothing was sent`,
    );
  }
  const plan = keyMaterialPlan(first.status.type, input.unsealKeys.length, manifest.sealType);
  const canary = canaryToRead(manifest, input.requiredCanary, key);
  if (input.requiredCanary !== undefined && plan.kind === "none") {
    throw new DrillConfigError(
      "DRILL_CANARY_PATH",
      "a canary can be read only once the restored data is open: give the source cluster's unseal keys (DRILL_UNSEAL_KEYS_DIR) or a throwaway with its auto-unseal",
    );
  }

  // 2. Initialise it: one share, the root token only good until the snapshot replaces its data.
  const init = await throwaway.initialise(plan.kind === "auto-unseal");
  secrets.push(init.rootToken, ...(init.unsealKey === undefined ? [] : [init.unsealKey]));
  if (init.unsealKey !== undefined) {
    const opened = await throwaway.unseal([init.unsealKey]);
    if (opened.result !== "unsealed") {
      throw new OpenBaoError("BadResponse", `${address} did not unseal with the key its own sys/init gave`, {
        address,
      });
    }
  }
  const before = await active(
    throwaway,
    deadline,
    signal,
    (last) =>
      new VerificationError(
        "RestoreNotServed",
        `the throwaway at ${address} did not become active after its initialisation ${within} (${last}); nothing was restored`,
      ),
  );

  // 3. The backup, checked on its way: OpenBao gets the last chunk only if everything matched.
  //    A drill proves the backup, so it checks state.bin against SHA256SUMS itself as well.
  const { body, destroy } = await openVerifiedSnapshot(input.store, key, manifest, signal, {
    check: (info) => checkArchiveIndex(info.index, manifest, key),
    hashState: true,
  });
  try {
    await restoreSnapshot(http, address, init.rootToken, body, { force: restoreWithForce(plan), signal });
  } catch (err) {
    throw storedSnapshotError(refusal(err, key, plan), key);
  } finally {
    destroy();
  }

  // 4. Applied: sealed itself, or (same auto-unseal) active again on the restored data.
  const autoUnseal = plan.kind === "auto-unseal";
  const applied = await waitUntil<Exclude<AfterRestore, { state: "waiting" }>>(
    deadline,
    signal,
    async () => {
      const seal = await throwaway.sealStatus();
      const open = seal.kind === "status" && !seal.status.sealed;
      const state = afterRestore(before, seal, open ? await throwaway.leader() : undefined, autoUnseal);
      return state.state === "waiting" ? { waiting: state.detail } : { done: state };
    },
    (last) =>
      autoUnseal && last.startsWith("sealed")
        ? new VerificationError(
            "UnsealRefused",
            `OpenBao applied ${key}, but the throwaway's ${plan.sealType} seal did not open the restored data ${within} (${last}): it is not the seal the source cluster used`,
          )
        : new VerificationError(
            "RestoreNotServed",
            `OpenBao accepted ${key}, but did not apply it ${within} (${last})`,
          ),
  );
  const sealType = restoredSealType(applied);
  checkSealType(manifest, sealType, key);
  const elapsed = (): number => now().getTime() - started;
  if (plan.kind === "none") {
    return {
      outcome: "loaded",
      key,
      raftIndex: manifest.raftIndex,
      sealType,
      durationMs: elapsed(),
      message: loadedMessage(key, manifest, applied),
    };
  }

  // 5. Open it with the key material.
  if (applied.state === "foreign-seal") {
    throw new VerificationError(
      "UnsealRefused",
      `the restored data of ${key} is sealed by ${applied.restored}; the throwaway ${plan.kind === "unseal-keys" ? "was given Shamir unseal keys" : `runs the ${applied.configured} seal`}, which cannot open it`,
    );
  }
  if (applied.state === "sealed") {
    const opened = await throwaway.unseal(input.unsealKeys);
    if (opened.result === "refused") {
      throw new VerificationError(
        "UnsealRefused",
        `the unseal keys in DRILL_UNSEAL_KEYS_DIR do not open the restored data of ${key}: OpenBao says "${opened.detail}"; they are not the keys of the cluster this backup was taken from`,
      );
    }
    if (opened.result === "short") {
      throw new VerificationError(
        "UnsealRefused",
        `${opened.given} unseal key(s) in DRILL_UNSEAL_KEYS_DIR, the restored data of ${key} needs ${opened.threshold}; give at least that many of the source cluster's keys`,
      );
    }
  }
  const open = await active(
    throwaway,
    deadline,
    signal,
    (last) =>
      new VerificationError(
        "RestoredDataUnreadable",
        `the restored data of ${key} opened, but OpenBao did not become active on it ${within} (${last}): it cannot load its own keys or mounts, so the data does not decrypt or is damaged`,
      ),
  );
  checkRestored(manifest, { appliedIndex: open.appliedIndex, clusterId: await throwaway.clusterId() }, key);

  // 6. Read it with a token of the restored data: the canary, the mounts, the auth methods.
  const token = await input.restoredToken();
  secrets.push(token);
  const reading = async <T>(read: () => Promise<T>): Promise<T> => {
    try {
      return await read();
    } catch (err) {
      throw await deniedInRestoredData(err, token, input.explainDenial);
    }
  };
  if (canary !== undefined) {
    const read = await reading(() => readCanary(http, address, token, canary, signal));
    checkCanary(canary, read, key);
  }
  const secretMounts = await reading(() => countMounts(http, address, token, "sys/mounts", signal));
  const authMethods = await reading(() => countMounts(http, address, token, "sys/auth", signal));
  return {
    outcome: "verified",
    key,
    raftIndex: manifest.raftIndex,
    sealType,
    durationMs: elapsed(),
    restoredIndex: open.appliedIndex,
    ...(canary === undefined ? {} : { canary: { path: `${canary.mount}/${canary.path}`, version: canary.version } }),
    secretMounts,
    authMethods,
    message: verifiedMessage(key, plan, { restoredIndex: open.appliedIndex, canary, secretMounts, authMethods }),
  };
}

/** A 403 while reading the restored data: say which token and policy a drill needs. */
async function deniedInRestoredData(
  err: unknown,
  token: string,
  explain: ((token: string, err: unknown) => Promise<unknown>) | undefined,
): Promise<unknown> {
  if (!(err instanceof OpenBaoError) || err.code !== "PermissionDenied") return err;
  const explained = explain === undefined ? err : await explain(token, err);
  const base = explained instanceof OpenBaoError ? explained : err;
  return new OpenBaoError(
    base.code,
    `${base.message} — a drill reads the restored data with a token valid in it (one that existed in the source cluster when the backup was taken, or a JWT login through its restored auth method) carrying the drill policy of docs/drills.md`,
    { status: base.status, address: base.address, cause: err },
  );
}

/** How many entries `sys/mounts` or `sys/auth` lists (paths end in "/"). */
async function countMounts(
  http: OpenBaoHttp,
  address: string,
  token: string,
  path: "sys/mounts" | "sys/auth",
  signal: AbortSignal,
): Promise<number> {
  let answer: { data?: Record<string, unknown> } | undefined;
  try {
    answer = await http.json<{ data?: Record<string, unknown> }>(address, {
      method: "GET",
      path,
      token,
      timeoutMs: 30_000,
      signal,
    });
  } catch (err) {
    if (err instanceof OpenBaoError && err.status !== undefined && err.status >= 500) {
      throw new VerificationError(
        "RestoredDataUnreadable",
        `the restored data opened, but OpenBao could not list ${path}: ${err.message}`,
        { cause: err },
      );
    }
    throw err;
  }
  return Object.keys(answer?.data ?? {}).filter((name) => name.endsWith("/")).length;
}
