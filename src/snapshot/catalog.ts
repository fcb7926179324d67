/**
 * One cluster's stored backups, read from the store: every snapshot key of the cluster with
 * what its manifest says and whether it is verified. `bao-backup list` prints this, and
 * `bao-backup restore --key latest` chooses from it — one reading of the store, so what `list`
 * calls verified is exactly what `latest` may pick.
 *
 * "Verified" means the manifest `<key>.json` exists, parses, names this key and records the
 * object's size as stored now. Reading the bytes (SHA-256, archive) is `verify`'s job, and a
 * restore repeats it while streaming.
 */
import type { ObjectInfo, ObjectStore } from "../storage/object-store.ts";
import {
  type ClusterLocation,
  clusterPrefix,
  createKeyParser,
  type ParsedKey,
  type SnapshotKind,
  snapshotKeyOfManifest,
} from "./key.ts";
import { parseManifest, type SnapshotManifest } from "./manifest.ts";

/** Anything larger is not a manifest; it is never downloaded. */
export const maxManifestBytes = 64 * 1024;

/** The key `restore` accepts in place of an object key: the newest verified backup. */
export const latestKey = "latest";

export interface CatalogEntry {
  readonly key: string;
  readonly kind: SnapshotKind;
  /** The time in the key: when the backup run started (whole seconds). */
  readonly keyTime: Date;
  /** The snapshot object as listed (size, last modified). */
  readonly object: ObjectInfo;
  /** The parsed manifest, when it exists and parses for this key. */
  readonly manifest: SnapshotManifest | undefined;
  /** Why the backup is not verified; null when it is. */
  readonly problem: string | null;
}

export interface VerifiedEntry extends CatalogEntry {
  readonly manifest: SnapshotManifest;
  readonly problem: null;
}

export function isVerified(entry: CatalogEntry): entry is VerifiedEntry {
  return entry.problem === null && entry.manifest !== undefined;
}

async function readManifestOf(
  store: ObjectStore,
  key: string,
  manifest: ObjectInfo | undefined,
): Promise<{ manifest: SnapshotManifest } | { problem: string }> {
  if (manifest === undefined) return { problem: "no manifest" };
  if (manifest.size > maxManifestBytes) return { problem: `manifest is ${manifest.size} bytes, not a manifest` };
  const chunks: Buffer[] = [];
  for await (const chunk of await store.download(manifest.key)) chunks.push(Buffer.from(chunk as Uint8Array));
  try {
    return { manifest: parseManifest(Buffer.concat(chunks), { expectedKey: key }) };
  } catch (err) {
    return { problem: `manifest invalid: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Newest key time first; equal times by key, descending, so the order never depends on the store. */
function byKeyTime(a: { key: string; keyTime: Date }, b: { key: string; keyTime: Date }): number {
  return b.keyTime.getTime() - a.keyTime.getTime() || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0);
}

/**
 * Lists the cluster's prefix and reads every snapshot's manifest (a few at a time). Only keys
 * of exactly this cluster in the standard format count (`parseKey`); anything else under the
 * prefix is ignored. Newest key time first. Storage errors propagate.
 */
export async function readCatalog(
  store: ObjectStore,
  location: ClusterLocation,
  options: { readonly only?: (parsed: ParsedKey) => boolean } = {},
): Promise<CatalogEntry[]> {
  const parse = createKeyParser(location);
  const snapshots: { info: ObjectInfo; parsed: ParsedKey }[] = [];
  const manifests = new Map<string, ObjectInfo>();
  for await (const info of store.list(clusterPrefix(location))) {
    const parsed = parse(info.key);
    if (parsed) {
      // `only` narrows before any manifest is read (confirm wants one key id, not the catalog).
      if (options.only === undefined || options.only(parsed)) snapshots.push({ info, parsed });
      continue;
    }
    const owner = snapshotKeyOfManifest(info.key);
    if (owner !== null) manifests.set(owner, info);
  }
  snapshots.sort((a, b) =>
    byKeyTime({ key: a.info.key, keyTime: a.parsed.time }, { key: b.info.key, keyTime: b.parsed.time }),
  );
  const out: CatalogEntry[] = [];
  // A few manifests at a time: small objects, one round trip each.
  const batch = 8;
  for (let i = 0; i < snapshots.length; i += batch) {
    const slice = snapshots.slice(i, i + batch);
    const read = await Promise.all(slice.map(({ info }) => readManifestOf(store, info.key, manifests.get(info.key))));
    slice.forEach(({ info, parsed }, j) => {
      const r = read[j] ?? { problem: "no manifest" };
      const manifest = "manifest" in r ? r.manifest : undefined;
      let problem = "problem" in r ? r.problem : null;
      if (manifest && manifest.size !== info.size) {
        problem = `size mismatch: object ${info.size} bytes, manifest ${manifest.size}`;
      }
      out.push({ key: info.key, kind: parsed.kind, keyTime: parsed.time, object: info, manifest, problem });
    });
  }
  return out;
}

/**
 * The newest verified backup, of any kind (scheduled, manual, pre-upgrade): newest by the
 * manifest's `created`, equal times by the higher Raft index, then by the key's time and the
 * key itself, so the choice is the same whatever order the store listed. Undefined when no
 * entry is verified.
 */
export function newestVerified(entries: readonly CatalogEntry[]): VerifiedEntry | undefined {
  let best: VerifiedEntry | undefined;
  for (const entry of entries) {
    if (!isVerified(entry)) continue;
    if (best === undefined || compareNewest(entry, best) < 0) best = entry;
  }
  return best;
}

/** Negative when `a` is newer than `b` (sorts newest first). */
export function compareNewest(a: VerifiedEntry, b: VerifiedEntry): number {
  return (
    Date.parse(b.manifest.created) - Date.parse(a.manifest.created) ||
    b.manifest.raftIndex - a.manifest.raftIndex ||
    byKeyTime(a, b)
  );
}

/** Why `latest` found nothing: a sentence for the failure message (no secrets: keys and counts). */
export function noVerifiedBackupReason(entries: readonly CatalogEntry[]): string {
  if (entries.length === 0) return "no backup is stored there";
  const newest = entries[0];
  return (
    `${entries.length} backup${entries.length === 1 ? " is" : "s are"} stored there, none verified` +
    (newest ? ` (the newest, ${newest.key}: ${newest.problem ?? "not verified"})` : "")
  );
}
