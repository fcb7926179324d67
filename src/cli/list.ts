/**
 * `bao-backup list`: one cluster's backups, newest first, with what each manifest says.
 * "verified" means the manifest `<key>.json` exists, parses, names this key and records the
 * object's size as stored now; `verify <key>` goes further and reads every byte. The reading
 * itself is `readCatalog` (src/snapshot/catalog.ts), which `restore --key latest` uses too.
 */

import { readCatalog } from "../snapshot/catalog.ts";
import { clusterPrefix, type ParsedKey } from "../snapshot/key.ts";
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
and consistent with the stored object (verified). Newest first. With -o json each backup
also carries what its manifest recorded about the source cluster: OpenBao version, cluster
id and seal type (null when unknown or written by an older version).

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
  /** The source cluster's id and seal type from the manifest (null when not recorded). */
  clusterId: string | null;
  sealType: string | null;
  verified: boolean;
  /** Why not verified, else null. */
  problem: string | null;
}

/** Reads the listing and every manifest; shared with other subcommands. */
export async function listBackups(located: Located, now = new Date()): Promise<ListedBackup[]> {
  const { store, target, namespace, cluster } = located;
  const entries = await readCatalog(store, { pathPrefix: target.pathPrefix, namespace, cluster });
  return entries.map((e) => ({
    key: e.key,
    kind: e.kind,
    size: e.object.size,
    created: e.keyTime.toISOString(),
    ageSeconds: Math.max(0, Math.floor((now.getTime() - e.keyTime.getTime()) / 1000)),
    lastModified: e.object.lastModified.toISOString(),
    raftIndex: e.manifest?.raftIndex ?? null,
    sha256: e.manifest?.sha256 ?? null,
    openbaoVersion: e.manifest?.openbaoVersion ?? null,
    clusterId: e.manifest?.clusterId ?? null,
    sealType: e.manifest?.sealType ?? null,
    verified: e.problem === null,
    problem: e.problem,
  }));
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
