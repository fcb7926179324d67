/**
 * `bao-backup restore`: stream a stored snapshot back into OpenBao.
 *
 *   HEAD key ─► manifest <key>.json (size, sha256) ─► leader + login
 *   download ─► tap (SHA-256) ─► inspector ─► gate ─► POST sys/storage/raft/snapshot[-force]
 *
 * The gate holds back the last chunk until the whole object has been hashed and matched
 * against the manifest: a missing, truncated or corrupted object is refused before OpenBao
 * has received a complete snapshot, so it applies nothing.
 */
import { pipeline, Transform, type TransformCallback } from "node:stream";
import { OpenBaoHttp } from "../openbao/http.ts";
import { restoreSnapshot } from "../openbao/snapshot.ts";
import { createSnapshotInspector } from "../snapshot/archive.ts";
import { manifestKey } from "../snapshot/key.ts";
import { parseManifest } from "../snapshot/manifest.ts";
import type { HashingTap } from "../snapshot/tap.ts";
import { createTap } from "../snapshot/tap.ts";
import type { ObjectStore } from "../storage/index.ts";
import type { RestoreConfig } from "./config.ts";
import { classify, VerificationError } from "./failure.ts";
import { startProgress } from "./progress.ts";
import type { ExecutorResult } from "./result.ts";
import { leaderAndToken, openStore } from "./session.ts";

const maxManifestBytes = 64 * 1024;

async function readManifest(store: ObjectStore, key: string): Promise<ReturnType<typeof parseManifest>> {
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

export async function runRestore(
  config: RestoreConfig,
  options: { now?: () => Date; signal?: AbortSignal } = {},
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
  const key = config.key;
  try {
    store = await openStore(config, secrets);
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
    const { leader, token } = await leaderAndToken(http, config.members, config.auth, secrets, signal);

    const source = await store.download(key, { signal });
    const tap = createTap();
    const inspector = createSnapshotInspector();
    const gate = new VerifyGate(verifier(tap, manifest, key));
    pipeline(source, tap, inspector, gate, () => {});
    const progress = startProgress(`${key} → OpenBao`, () => tap.bytes);
    try {
      await restoreSnapshot(http, leader, token, gate, { force: config.force, signal });
    } finally {
      progress.stop();
      source.destroy();
    }
    return {
      mode: "restore",
      ok: true,
      key,
      size: tap.bytes,
      sha256: manifest.sha256,
      durationMs: now().getTime() - started.getTime(),
      startedAt: started.toISOString(),
    };
  } catch (err) {
    const failure = classify(err, secrets, "restore");
    return {
      mode: "restore",
      ok: false,
      exitCode: failure.exitCode,
      reason: failure.reason,
      message: failure.message,
      key,
      durationMs: now().getTime() - started.getTime(),
      startedAt: started.toISOString(),
    };
  } finally {
    options.signal?.removeEventListener("abort", forward);
    http.close();
    await store?.close().catch(() => undefined);
  }
}
