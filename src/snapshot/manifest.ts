/**
 * The manifest `<key>.json`, written after the snapshot object has been uploaded and verified
 * (SPEC §4). Restore reads it to check the object's SHA-256 while streaming; `list` and
 * `inspect` read it to show what a snapshot holds without downloading it.
 *
 * Compatibility: `formatVersion` changes only for incompatible changes, and a reader refuses
 * a version it does not know. Fields added compatibly keep the version, so the parser
 * ignores fields it does not know (an older executor can still restore a newer backup);
 * every known field is checked strictly.
 *
 * Added compatibly (still version 1): `clusterId` and `sealType`, what a person restoring into
 * a new OpenBao needs to know about the cluster the snapshot came from (whose unseal keys,
 * recovery keys or KMS key open the restored data). Manifests written before them lack both
 * fields and stay valid; a manifest written now always has both (null when unknown).
 *
 * Added compatibly (still version 1): `canary`, what a restore drill (src/drill/) reads back to
 * prove that the restored data is this backup's: the KV v2 secret the backup wrote just before
 * taking the snapshot, its version, and the SHA-256 of its value — never the value. The value is
 * random and worthless outside the cluster, but the manifest sits beside the snapshot in a bucket
 * that more people and tools can read than OpenBao, and a digest proves the match as well as the
 * value would. Absent when the backup wrote no canary (it is opt-in) and in older manifests; an
 * older reader ignores it.
 */
import { ManifestError } from "./errors.ts";

export const manifestFormatVersion = 1;

export interface SnapshotManifest {
  formatVersion: typeof manifestFormatVersion;
  /** The snapshot object's key (the manifest's own key minus `.json`). */
  key: string;
  /** Bytes of the snapshot object, as streamed and as HEAD reported. */
  size: number;
  /** Lower-case hex SHA-256 of the snapshot object's bytes. */
  sha256: string;
  /** Raft index and term from the archive's meta.json. */
  raftIndex: number;
  raftTerm: number;
  /** Version reported by the OpenBao leader, or null when it could not be determined. */
  openbaoVersion: string | null;
  /**
   * The source cluster's id (`cluster_id` of `sys/health`), null when it could not be read;
   * absent in manifests written before the field existed.
   */
  clusterId?: string | null;
  /**
   * The source cluster's seal type (`type` of `sys/seal-status`: `shamir`, `awskms`,
   * `transit`, …), null when it could not be read; absent in older manifests.
   */
  sealType?: string | null;
  /** The canary the backup wrote just before the snapshot; absent when it wrote none. */
  canary?: ManifestCanary;
  /** When the snapshot was taken, ISO 8601 UTC (`2025-01-02T03:04:05.000Z`). */
  created: string;
}

/**
 * A canary as the manifest records it: where the backup wrote it (KV v2 mount and secret path,
 * as `bao kv put -mount=<mount> <path>` names them), the version that write created, and the
 * lower-case hex SHA-256 of the `value` field written.
 */
export interface ManifestCanary {
  mount: string;
  path: string;
  version: number;
  sha256: string;
}

const sha256Hex = /^[0-9a-f]{64}$/;
/**
 * A KV mount or secret path the canary may use: segments of letters, digits and `_.-`, joined
 * by single slashes, no `.` or `..` segment; bounded. Narrower than OpenBao allows, so that a
 * path can be put in a URL, a policy and a message as it is.
 */
export const canaryPathPattern = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;
const maxCanaryPathChars = 256;
/** A cluster id as OpenBao writes it (a UUID), bounded and printable. */
const clusterIdPattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** A seal type as OpenBao names it (`shamir`, `awskms`, `azurekeyvault`, `pkcs11`, …). */
const sealTypePattern = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const isoUtc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nonNegativeInteger(record: Record<string, unknown>, field: string): number {
  const value = record[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ManifestError(`must be a non-negative integer, got ${describe(value)}`, { field });
  }
  return value;
}

/** `value` when it is a cluster id a manifest can record, else null (a writer never fails over it). */
export function recordableClusterId(value: string | undefined): string | null {
  return value !== undefined && clusterIdPattern.test(value) ? value : null;
}

/** `value` when it is a seal type a manifest can record, else null. */
export function recordableSealType(value: string | undefined): string | null {
  return value !== undefined && sealTypePattern.test(value) ? value : null;
}

/** An optional field: absent stays absent; present must be null or match `pattern`. */
function optionalText(
  record: Record<string, unknown>,
  field: "clusterId" | "sealType",
  pattern: RegExp,
  what: string,
): string | null | undefined {
  const value = record[field];
  if (value === undefined || value === null) return value;
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new ManifestError(`must be ${what} or null, got ${describe(value)}`, { field });
  }
  return value;
}

/** `canary`: absent stays absent; present must be a whole, valid record (unknown members ignored). */
function optionalCanary(record: Record<string, unknown>): ManifestCanary | undefined {
  const value = record.canary;
  if (value === undefined) return undefined;
  if (!isRecord(value)) throw new ManifestError(`must be an object, got ${describe(value)}`, { field: "canary" });
  const text = (name: "mount" | "path"): string => {
    const member = value[name];
    if (typeof member !== "string" || member.length > maxCanaryPathChars || !canaryPathPattern.test(member)) {
      throw new ManifestError(`must be a KV path like "openbao-backup/canary", got ${describe(member)}`, {
        field: `canary.${name}`,
      });
    }
    return member;
  };
  const mount = text("mount");
  const path = text("path");
  const version = value.version;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
    throw new ManifestError(`must be a positive integer, got ${describe(version)}`, { field: "canary.version" });
  }
  const sha256 = value.sha256;
  if (typeof sha256 !== "string" || !sha256Hex.test(sha256)) {
    throw new ManifestError(`must be 64 lower-case hex digits, got ${describe(sha256)}`, { field: "canary.sha256" });
  }
  return { mount, path, version, sha256 };
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing (the field is missing)";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Checks a manifest value (parsed JSON or one about to be written) and returns a clean copy
 * holding only the known fields. Throws `ManifestError` naming the first field at fault.
 */
export function validateManifest(value: unknown, options: { expectedKey?: string } = {}): SnapshotManifest {
  if (!isRecord(value)) throw new ManifestError(`must be a JSON object, got ${describe(value)}`);

  if (value.formatVersion !== manifestFormatVersion) {
    const known = typeof value.formatVersion === "number" && Number.isInteger(value.formatVersion);
    throw new ManifestError(
      known
        ? `version ${value.formatVersion} is not supported by this build (it reads version ${manifestFormatVersion}); use a newer bao-backup`
        : `must be ${manifestFormatVersion}, got ${describe(value.formatVersion)}`,
      { field: "formatVersion" },
    );
  }

  const key = value.key;
  if (typeof key !== "string" || key === "") {
    throw new ManifestError(`must be a non-empty string, got ${describe(key)}`, { field: "key" });
  }
  if (options.expectedKey !== undefined && key !== options.expectedKey) {
    throw new ManifestError(`names ${JSON.stringify(key)}, but it belongs to ${JSON.stringify(options.expectedKey)}`, {
      field: "key",
    });
  }

  const size = nonNegativeInteger(value, "size");

  const sha256 = value.sha256;
  if (typeof sha256 !== "string" || !sha256Hex.test(sha256)) {
    throw new ManifestError(`must be 64 lower-case hex digits, got ${describe(sha256)}`, { field: "sha256" });
  }

  const raftIndex = nonNegativeInteger(value, "raftIndex");
  const raftTerm = nonNegativeInteger(value, "raftTerm");

  const openbaoVersion = value.openbaoVersion;
  if (openbaoVersion !== null && (typeof openbaoVersion !== "string" || openbaoVersion === "")) {
    throw new ManifestError(`must be a non-empty string or null, got ${describe(openbaoVersion)}`, {
      field: "openbaoVersion",
    });
  }

  const created = value.created;
  if (typeof created !== "string" || !isRealIsoUtc(created)) {
    throw new ManifestError(`must be an ISO 8601 UTC time like "2025-01-02T03:04:05Z", got ${describe(created)}`, {
      field: "created",
    });
  }

  const clusterId = optionalText(value, "clusterId", clusterIdPattern, "a cluster id like a UUID");
  const sealType = optionalText(value, "sealType", sealTypePattern, 'a seal type like "shamir" or "awskms"');
  const canary = optionalCanary(value);

  return {
    formatVersion: manifestFormatVersion,
    key,
    size,
    sha256,
    raftIndex,
    raftTerm,
    openbaoVersion,
    ...(clusterId === undefined ? {} : { clusterId }),
    ...(sealType === undefined ? {} : { sealType }),
    ...(canary === undefined ? {} : { canary }),
    created,
  };
}

/** The manifest as written to storage: validated, fixed field order, two-space JSON, final newline. */
export function serializeManifest(manifest: SnapshotManifest): string {
  return `${JSON.stringify(validateManifest(manifest), null, 2)}\n`;
}

/**
 * Parses a manifest's text (or bytes). With `expectedKey`, the manifest must name that
 * snapshot. Throws `ManifestError`.
 */
export function parseManifest(text: string | Uint8Array, options: { expectedKey?: string } = {}): SnapshotManifest {
  const source = typeof text === "string" ? text : decodeUtf8(text);
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (cause) {
    throw new ManifestError(`is not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`, {
      cause,
    });
  }
  return validateManifest(value, options);
}

/** The ISO form, and a real instant: Date.parse accepts 2025-02-30 and 24:00 by rolling over. */
function isRealIsoUtc(text: string): boolean {
  if (!isoUtc.test(text)) return false;
  const ms = Date.parse(text);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === text.slice(0, 19);
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new ManifestError("is not valid UTF-8", { cause });
  }
}
