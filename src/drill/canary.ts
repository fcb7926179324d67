/**
 * The canary: a KV v2 secret the backup writes into the cluster just before it takes the
 * snapshot, so that a drill can prove the restored data is *that* backup's data and not merely
 * some data that opens. Without it, a drill of a snapshot that silently lost its last writes
 * (or of another, older snapshot under this backup's name and manifest) would still pass.
 *
 * Invariants:
 * - The value is 32 random bytes (base64url), new for every backup: equal values mean the same
 *   write, never a coincidence. Beside it the secret holds the backup's key and the time, for a
 *   person reading the canary in the cluster; neither is secret.
 * - The manifest records where the canary is, the KV version the write created and the SHA-256
 *   of the value — never the value (src/snapshot/manifest.ts says why). The drill reads the
 *   value, hashes it at once and keeps only the digest; no value leaves the process.
 * - The drill reads the latest version: a snapshot holds the state at the moment it was taken,
 *   so the latest version in the restored data must be the one the backup wrote. A later write
 *   (the next backup's canary) is in the live cluster, never in this snapshot.
 *
 * `writeCanary` is the backup executor's part (called before it opens the snapshot stream);
 * `readCanary` the drill's. Policies each needs: docs/drills.md.
 */
import { createHash, randomBytes } from "node:crypto";
import { VerificationError } from "../executor/failure.ts";
import { OpenBaoError } from "../openbao/errors.ts";
import { errorForStatus, type OpenBaoHttp, openBaoErrors, readCapped } from "../openbao/http.ts";
import { canaryPathPattern, type ManifestCanary } from "../snapshot/manifest.ts";
import { ConfigLayerError } from "../util/coded-error.ts";

/** Where a canary lives: a KV version 2 mount and a secret path inside it. */
export interface CanaryLocation {
  readonly mount: string;
  readonly path: string;
}

export const defaultCanaryLocation: CanaryLocation = { mount: "secret", path: "openbao-backup/canary" };

/** `secret/openbao-backup/canary`: how settings, messages and policies write a location. */
export function formatCanaryLocation(location: CanaryLocation): string {
  return `${location.mount}/${location.path}`;
}

/**
 * A canary location that cannot be used. The message says what is wrong and how to write it;
 * a configuration loader wraps it in its own error naming the setting it came from.
 */
export class CanaryLocationError extends ConfigLayerError<"InvalidConfig"> {}

/**
 * `secret/openbao-backup/canary` → mount `secret`, path `openbao-backup/canary`: the first
 * segment is the mount (a mount whose own path has a slash cannot be named this way).
 */
export function parseCanaryLocation(text: string): CanaryLocation {
  const trimmed = text.trim().replace(/^\/+|\/+$/g, "");
  const slash = trimmed.indexOf("/");
  const mount = slash === -1 ? "" : trimmed.slice(0, slash);
  const path = slash === -1 ? "" : trimmed.slice(slash + 1);
  if (mount === "" || path === "") {
    throw new CanaryLocationError(
      "InvalidConfig",
      `${JSON.stringify(text)} must be <KV v2 mount>/<secret path>, e.g. ${formatCanaryLocation(defaultCanaryLocation)}`,
    );
  }
  if (!canaryPathPattern.test(mount) || !canaryPathPattern.test(path) || trimmed.length > 256) {
    throw new CanaryLocationError(
      "InvalidConfig",
      `${JSON.stringify(text)} may hold only letters, digits, "_", "." and "-" between single slashes (no "." or ".." segment), at most 256 characters`,
    );
  }
  return { mount, path };
}

/** Lower-case hex SHA-256 of a canary value, the only form in which it is kept. */
export function canaryDigest(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

function dataPath(location: CanaryLocation): string {
  return `${location.mount}/data/${location.path}`;
}

export interface WriteCanaryOptions {
  readonly location: CanaryLocation;
  /** The key of the backup about to be taken (written beside the value, for people). */
  readonly backupKey: string;
  readonly now: Date;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Writes a new canary on the leader with the backup's token and returns what the manifest
 * records. Call it just before opening the snapshot stream: OpenBao answers the write once
 * the leader applied it, so the snapshot taken next holds it. Throws `OpenBaoError`:
 * `PermissionDenied` when the policy lacks `create`/`update` on the canary, `BadResponse` when
 * the mount is not KV version 2; the message names the path and the fix. Whether a failure
 * stops the backup is the caller's choice (see docs/drills.md).
 */
export async function writeCanary(
  http: OpenBaoHttp,
  leader: string,
  token: string,
  options: WriteCanaryOptions,
): Promise<ManifestCanary> {
  const { location } = options;
  const where = formatCanaryLocation(location);
  const value = randomBytes(32).toString("base64url");
  const fix = `it needs a KV version 2 mount at ${location.mount}/ and create and update on ${dataPath(location)} in the backup token's policy`;
  let answer: { data?: { version?: unknown } } | undefined;
  try {
    answer = await http.json<{ data?: { version?: unknown } }>(
      leader,
      {
        method: "POST",
        path: dataPath(location),
        token,
        json: { data: { value, backup: options.backupKey, written: options.now.toISOString() } },
        timeoutMs: 15_000,
        signal: options.signal,
      },
      "BadResponse",
    );
  } catch (err) {
    if (!(err instanceof OpenBaoError) || err.code === "Unreachable") throw err;
    throw new OpenBaoError(
      err.code,
      `could not write the canary ${where} before the snapshot: ${err.message}; ${fix}`,
      {
        status: err.status,
        address: err.address,
        cause: err,
      },
    );
  }
  const version = answer?.data?.version;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
    // A KV version 1 mount takes the same request as a secret named "data/…" and answers 204.
    throw new OpenBaoError(
      "BadResponse",
      `${leader} stored the canary ${where} without a KV version: ${location.mount}/ is not a KV version 2 mount; ${fix}`,
      { address: leader },
    );
  }
  return { mount: location.mount, path: location.path, version, sha256: canaryDigest(value) };
}

/** What the drill learnt about the canary in the restored data (the value only as its digest). */
export type CanaryRead =
  | { readonly found: true; readonly version: number; readonly sha256: string }
  | { readonly found: false; readonly detail: string };

interface KvReadAnswer {
  data?: { data?: { value?: unknown } | null; metadata?: { version?: unknown; deletion_time?: unknown } };
}

/**
 * Reads the canary's latest version from the restored data. 404 → not found; 403 → an
 * `OpenBaoError` PermissionDenied; 5xx (a value that does not decrypt, data that does not
 * load) → `RestoredDataUnreadable` with OpenBao's own words.
 */
export async function readCanary(
  http: OpenBaoHttp,
  address: string,
  token: string,
  location: CanaryLocation,
  signal: AbortSignal,
): Promise<CanaryRead> {
  const path = dataPath(location);
  const res = await http.request(address, { method: "GET", path, token, timeoutMs: 30_000, signal });
  const text = await readCapped(res, 64 * 1024, address);
  const status = res.statusCode ?? 0;
  if (status === 404) {
    let deleted = false;
    try {
      deleted = typeof (JSON.parse(text) as KvReadAnswer).data?.metadata?.deletion_time === "string";
    } catch {
      // a plain 404: no such secret
    }
    return { found: false, detail: deleted ? "its latest version is deleted" : "there is no such secret" };
  }
  if (status >= 500) {
    throw new VerificationError(
      "RestoredDataUnreadable",
      `the restored data opened, but OpenBao could not read the canary ${formatCanaryLocation(location)} (${status}: ${openBaoErrors(text) || "no detail"}): the restored data does not decrypt or is damaged`,
    );
  }
  if (status !== 200) throw errorForStatus(status, text, address, path, "BadResponse");
  let answer: KvReadAnswer;
  try {
    answer = JSON.parse(text) as KvReadAnswer;
  } catch {
    throw new OpenBaoError("BadResponse", `${address} answered ${path} with something that is not JSON`, { address });
  }
  const value = answer.data?.data?.value;
  const version = answer.data?.metadata?.version;
  if (typeof value !== "string" || typeof version !== "number") {
    return { found: false, detail: "the secret there holds no canary value (it is not what a backup writes)" };
  }
  return { found: true, version, sha256: canaryDigest(value) };
}
