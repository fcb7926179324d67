/**
 * Object key naming (SPEC §4):
 *
 *   <pathPrefix>/<namespace>/<cluster>/<YYYY-MM-DDTHH-MM-SSZ>-<8 hex>.snap
 *   <pathPrefix>/<namespace>/<cluster>/pre-upgrade-<YYYY-MM-DDTHH-MM-SSZ>-<8 hex>.snap
 *
 * with `<key>.json` beside each snapshot for its manifest. An empty pathPrefix drops the
 * leading segment (never a leading `/`). The timestamp is UTC to the second and is the time
 * the run started, passed in by the caller; the 8 hex digits are random (also passed in) so
 * two runs in the same second never collide.
 *
 * `parseKey` is deliberately strict: retention may only ever delete what it parses (SPEC §5
 * trap 1), so only an exact key of exactly this cluster, in exactly this format, is recognised.
 */
import { randomBytes } from "node:crypto";
import { KeyPartError } from "./errors.ts";

export type SnapshotKind = "scheduled" | "pre-upgrade";

/** Where one cluster's snapshots live. */
export interface ClusterLocation {
  /** Bucket-relative prefix, may be empty. Trailing slashes are ignored. */
  pathPrefix: string;
  /** Kubernetes namespace of the OpenBaoCluster. */
  namespace: string;
  /** Name of the OpenBaoCluster. */
  cluster: string;
}

export interface BuildKeyInput extends ClusterLocation {
  /** When the run started (SPEC §5 trap 2: never the scheduled time). Sub-second part is dropped. */
  time: Date;
  kind: SnapshotKind;
  /** Exactly 8 lower-case hex digits, e.g. from `newKeyId()`. */
  random: string;
}

export interface ParsedKey {
  kind: SnapshotKind;
  /** The timestamp in the key (whole seconds, UTC). */
  time: Date;
  /** The 8 hex digits. */
  id: string;
}

export const snapshotSuffix = ".snap";
export const manifestSuffix = ".json";
export const preUpgradeMarker = "pre-upgrade-";

/** S3, GCS and Azure all cap names at 1024 bytes; the manifest (`.json`) must fit too. */
const maxKeyBytes = 1024 - manifestSuffix.length;
/** Leaves room for the longest namespace, cluster and file name under the 1024-byte cap. */
const maxPathPrefixBytes = 512;

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const keyId = /^[0-9a-f]{8}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;
const fileName = /^(pre-upgrade-)?(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z-([0-9a-f]{8})\.snap$/;

/**
 * Validates a pathPrefix and returns it without trailing slashes. Throws `KeyPartError`
 * (field `pathPrefix`) for a leading `/`, an empty segment (`//`), a `.` or `..` segment,
 * a backslash, a control character, or more than 512 bytes.
 */
export function normalizePathPrefix(pathPrefix: string): string {
  const fail = (problem: string): never => {
    throw new KeyPartError("pathPrefix", `${JSON.stringify(pathPrefix)} ${problem}`);
  };
  if (pathPrefix.startsWith("/")) {
    fail('must not start with "/"; object keys are relative to the bucket (write "backups", not "/backups")');
  }
  if (controlCharacter.test(pathPrefix)) fail("must not contain control characters");
  if (pathPrefix.includes("\\")) fail('must not contain backslashes; separate segments with "/"');
  const trimmed = pathPrefix.replace(/\/+$/, "");
  if (trimmed === "") return "";
  if (trimmed.includes("//")) fail('must not contain empty segments ("//")');
  if (trimmed.split("/").some((segment) => segment === "." || segment === "..")) {
    fail('must not contain "." or ".." segments');
  }
  if (Buffer.byteLength(trimmed) > maxPathPrefixBytes) fail(`must be at most ${maxPathPrefixBytes} bytes`);
  return trimmed;
}

function checkNamespace(namespace: string): void {
  if (namespace.length > 63 || !dnsLabel.test(namespace)) {
    throw new KeyPartError(
      "namespace",
      `${JSON.stringify(namespace)} is not a Kubernetes namespace name (lower-case letters, digits and "-", at most 63)`,
    );
  }
}

function checkCluster(cluster: string): void {
  if (cluster.length > 253 || !dnsSubdomain.test(cluster)) {
    throw new KeyPartError(
      "cluster",
      `${JSON.stringify(cluster)} is not a Kubernetes object name (lower-case letters, digits, "-" and ".", at most 253)`,
    );
  }
}

/**
 * The prefix under which all of one cluster's objects live, always ending in `/` so that a
 * listing of `prod` never includes `prod-2`: `backups/ns/prod/`, or `ns/prod/` without a
 * pathPrefix.
 */
export function clusterPrefix(location: ClusterLocation): string {
  const prefix = normalizePathPrefix(location.pathPrefix);
  checkNamespace(location.namespace);
  checkCluster(location.cluster);
  return `${prefix === "" ? "" : `${prefix}/`}${location.namespace}/${location.cluster}/`;
}

/** `YYYY-MM-DDTHH-MM-SSZ` in UTC (colons replaced so the key is safe on every store and shell). */
export function formatKeyTimestamp(time: Date): string {
  const ms = time.getTime();
  if (!Number.isFinite(ms)) throw new KeyPartError("time", "is not a valid date");
  const year = time.getUTCFullYear();
  if (year < 0 || year > 9999) throw new KeyPartError("time", `year ${year} cannot be written with 4 digits`);
  const two = (n: number): string => String(n).padStart(2, "0");
  return (
    `${String(year).padStart(4, "0")}-${two(time.getUTCMonth() + 1)}-${two(time.getUTCDate())}` +
    `T${two(time.getUTCHours())}-${two(time.getUTCMinutes())}-${two(time.getUTCSeconds())}Z`
  );
}

/** 8 random lower-case hex digits for `buildKey`. */
export function newKeyId(): string {
  return randomBytes(4).toString("hex");
}

/** Builds the object key of a new snapshot. Throws `KeyPartError` naming the field at fault. */
export function buildKey(input: BuildKeyInput): string {
  if (!keyId.test(input.random)) {
    throw new KeyPartError("random", `${JSON.stringify(input.random)} must be exactly 8 lower-case hex digits`);
  }
  if (input.kind !== "scheduled" && input.kind !== "pre-upgrade") {
    throw new KeyPartError("kind", `${JSON.stringify(input.kind)} must be "scheduled" or "pre-upgrade"`);
  }
  const marker = input.kind === "pre-upgrade" ? preUpgradeMarker : "";
  const key = `${clusterPrefix(input)}${marker}${formatKeyTimestamp(input.time)}-${input.random}${snapshotSuffix}`;
  if (Buffer.byteLength(key) > maxKeyBytes) {
    throw new KeyPartError("pathPrefix", `makes the object key longer than ${maxKeyBytes} bytes`);
  }
  return key;
}

/**
 * Recognises a snapshot key of exactly this cluster in exactly the standard format, or returns
 * null: other clusters (including one whose name shares a prefix), manifests (`.snap.json`),
 * impossible dates, wrong digit counts, upper-case hex and extra suffixes are all null.
 * Throws `KeyPartError` only when the location itself is invalid.
 */
export function parseKey(key: string, location: ClusterLocation): ParsedKey | null {
  return createKeyParser(location)(key);
}

/**
 * `parseKey` with the location validated once, for scanning a long listing. Throws
 * `KeyPartError` when the location is invalid.
 */
export function createKeyParser(location: ClusterLocation): (key: string) => ParsedKey | null {
  const prefix = clusterPrefix(location);
  return (key) => {
    if (!key.startsWith(prefix)) return null;
    const name = key.slice(prefix.length);
    const match = fileName.exec(name);
    if (!match) return null;
    const [, marker, year, month, day, hour, minute, second, id] = match;
    if (id === undefined) return null;
    const time = new Date(0);
    time.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
    time.setUTCHours(Number(hour), Number(minute), Number(second), 0);
    // Date silently rolls 2024-02-30 into March and 24:00 into the next day; the round trip
    // rejects every such near-miss.
    const stampStart = marker?.length ?? 0;
    if (formatKeyTimestamp(time) !== name.slice(stampStart, stampStart + 20)) return null;
    return { kind: marker === undefined ? "scheduled" : "pre-upgrade", time, id };
  };
}

/** The manifest written beside a snapshot. */
export function manifestKey(key: string): string {
  return `${key}${manifestSuffix}`;
}

/** The snapshot a manifest key belongs to, or null when the key is not a manifest key. */
export function snapshotKeyOfManifest(key: string): string | null {
  return key.endsWith(`${snapshotSuffix}${manifestSuffix}`) ? key.slice(0, -manifestSuffix.length) : null;
}
