/**
 * `bao-backup list`: one cluster's backups, newest first, with what each manifest says.
 * "verified" means the manifest `<key>.json` exists, parses, names this key and records the
 * object's size as stored now; `verify <key>` goes further and reads every byte.
 */

import { clusterPrefix, createKeyParser, type ParsedKey, snapshotKeyOfManifest } from "../snapshot/key.ts";
import { parseManifest, type SnapshotManifest } from "../snapshot/manifest.ts";
import type { ObjectInfo, ObjectStore } from "../storage/index.ts";
import { exitCodes } from "./exit-codes.ts";
import {
  closeQuietly,
  humanAge,
  humanBytes,
  type Located,
  locate,
  outputFlags,
  outputFormat,
  parseFlags,
  printJson,
  reportFailure,
  storageFlags,
  storageHelp,
  table,
} from "./shared.ts";

const help = `Usage: bao-backup list [cluster] [options]

Lists a cluster's backups: key, size, age, raft index and whether its manifest is present
and consistent with the stored object (verified). Newest first.

${storageHelp}

Options:
  -o, --output json|text   json for scripts (default text)
  -h, --help

Exit codes: 0 listed (also when empty), 1 configuration, 2 Kubernetes auth, 5 storage.
`;

export interface ListedBackup {
  key: string;
  kind: ParsedKey["kind"];
  size: number;
  /** The time in the key: when the backup run started. */
  created: string;
  ageSeconds: number;
  lastModified: string;
  raftIndex: number | null;
  sha256: string | null;
  openbaoVersion: string | null;
  verified: boolean;
  /** Why not verified, else null. */
  problem: string | null;
}

const maxManifestBytes = 64 * 1024;

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

/** Reads the listing and every manifest; shared with other subcommands. */
export async function listBackups(located: Located, now = new Date()): Promise<ListedBackup[]> {
  const { store, target, namespace, cluster } = located;
  const location = { pathPrefix: target.pathPrefix, namespace, cluster };
  const prefix = clusterPrefix(location);
  const parse = createKeyParser(location);
  const snapshots: { info: ObjectInfo; parsed: ParsedKey }[] = [];
  const manifests = new Map<string, ObjectInfo>();
  for await (const info of store.list(prefix)) {
    const parsed = parse(info.key);
    if (parsed) {
      snapshots.push({ info, parsed });
      continue;
    }
    const owner = snapshotKeyOfManifest(info.key);
    if (owner !== null) manifests.set(owner, info);
  }
  snapshots.sort((a, b) => b.parsed.time.getTime() - a.parsed.time.getTime() || (a.info.key < b.info.key ? 1 : -1));
  const out: ListedBackup[] = [];
  // A few manifests at a time: small objects, one round trip each.
  const batch = 8;
  for (let i = 0; i < snapshots.length; i += batch) {
    const slice = snapshots.slice(i, i + batch);
    const read = await Promise.all(slice.map(({ info }) => readManifestOf(store, info.key, manifests.get(info.key))));
    slice.forEach(({ info, parsed }, j) => {
      const r = read[j] ?? { problem: "no manifest" };
      let problem = "problem" in r ? r.problem : null;
      const manifest = "manifest" in r ? r.manifest : undefined;
      if (manifest && manifest.size !== info.size) {
        problem = `size mismatch: object ${info.size} bytes, manifest ${manifest.size}`;
      }
      out.push({
        key: info.key,
        kind: parsed.kind,
        size: info.size,
        created: parsed.time.toISOString(),
        ageSeconds: Math.max(0, Math.floor((now.getTime() - parsed.time.getTime()) / 1000)),
        lastModified: info.lastModified.toISOString(),
        raftIndex: manifest?.raftIndex ?? null,
        sha256: manifest?.sha256 ?? null,
        openbaoVersion: manifest?.openbaoVersion ?? null,
        verified: problem === null,
        problem,
      });
    });
  }
  return out;
}

export async function listCommand(argv: readonly string[]): Promise<number> {
  let located: Located | undefined;
  try {
    const args = parseFlags(argv, { ...storageFlags, ...outputFlags }, 1);
    if (args.values.help === true) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const format = outputFormat(args);
    located = await locate(args, args.positionals[0]);
    const backups = await listBackups(located);
    const prefix = clusterPrefix({
      pathPrefix: located.target.pathPrefix,
      namespace: located.namespace,
      cluster: located.cluster,
    });
    if (format === "json") {
      printJson({ location: located.store.location, prefix, backups });
      return exitCodes.ok;
    }
    if (backups.length === 0) {
      process.stdout.write(`No backups under ${located.store.location}/${prefix}\n`);
      return exitCodes.ok;
    }
    const rows = backups.map((b) => [
      b.key,
      humanBytes(b.size),
      humanAge(b.ageSeconds * 1000),
      b.raftIndex === null ? "-" : String(b.raftIndex),
      b.verified ? "yes" : `no (${b.problem})`,
    ]);
    process.stdout.write(`${table(["KEY", "SIZE", "AGE", "RAFT INDEX", "VERIFIED"], rows)}\n`);
    const unverified = backups.filter((b) => !b.verified).length;
    process.stdout.write(
      `\n${backups.length} backup${backups.length === 1 ? "" : "s"} in ${located.store.location}/${prefix}` +
        (unverified > 0 ? `; ${unverified} not verified (check with \`bao-backup verify <key>\`)` : "") +
        "\n",
    );
    return exitCodes.ok;
  } catch (err) {
    return reportFailure("list", err, located?.secrets);
  } finally {
    await closeQuietly(located?.store);
  }
}
