/**
 * `bao-backup verify <key>`: reads one stored snapshot end to end and checks it the way a
 * restore would before anything reaches OpenBao: the object exists, its manifest exists and
 * names it, the sizes agree (HEAD, bytes read, manifest), the SHA-256 matches the manifest,
 * and the archive itself is sound (gzip, tar, SHA256SUMS, meta.json), with the raft index the
 * manifest recorded; and, when the target asks for server-side encryption, that the store
 * reports it for both objects (the comparison a backup makes, src/storage/encryption.ts).
 * Exit 6 when any check fails, 5 when storage fails, 0 when good.
 */
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createSnapshotInspector, type SnapshotInfo } from "../snapshot/archive.ts";
import { SnapshotArchiveError } from "../snapshot/errors.ts";
import { manifestKey } from "../snapshot/key.ts";
import { parseManifest, type SnapshotManifest } from "../snapshot/manifest.ts";
import { createTap } from "../snapshot/tap.ts";
import { describeStoredEncryption, encryptionMismatch } from "../storage/encryption.ts";
import { StorageError, type StoredEncryption } from "../storage/index.ts";
import { exitCodes } from "./exit-codes.ts";
import {
  closeQuietly,
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
  UsageError,
} from "./shared.ts";

const help = `Usage: bao-backup verify <key> [options]

Downloads one backup and checks it: object and manifest present, sizes, SHA-256 against the
manifest, and the snapshot archive itself (gzip, tar, SHA256SUMS, meta.json, raft index).
When encryption is asked for (--sse / --sse-kms-key-id, --gcs-kms-key-name,
--azure-encryption-scope, or the cluster's spec.backup.target.encryption with --kubeconfig),
the store must report it for the object and its manifest.
<key> is the full object key as \`bao-backup list\` prints it. The manifest line also shows
what the manifest recorded about the source cluster: OpenBao version, cluster id, seal type.

${storageHelp}
(--cluster and --namespace are only needed with --kubeconfig.)

Options:
  -o, --output json|text   json for scripts (default text)
  -h, --help

Exit codes: 0 good, 1 configuration, 5 storage failed, 6 verification failed (missing,
mismatching or corrupt).
`;

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const maxManifestBytes = 64 * 1024;

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export interface VerifyReport {
  key: string;
  location: string;
  ok: boolean;
  size: number | null;
  sha256: string | null;
  raftIndex: number | null;
  /** What the manifest recorded about the source cluster (null when not recorded or no manifest). */
  openbaoVersion: string | null;
  clusterId: string | null;
  sealType: string | null;
  /** What the store reports about the snapshot object's server-side encryption (null: no object). */
  encryption: StoredEncryption | null;
  checks: Check[];
}

/** `created …` and, when recorded, the source cluster's OpenBao version, id and seal type. */
function manifestDetail(manifest: SnapshotManifest): string {
  const facts = [
    manifest.openbaoVersion ? `OpenBao ${manifest.openbaoVersion}` : undefined,
    manifest.clusterId ? `cluster id ${manifest.clusterId}` : undefined,
    manifest.sealType ? `seal ${manifest.sealType}` : undefined,
  ].filter((f) => f !== undefined);
  return `created ${manifest.created}${facts.length > 0 ? `; ${facts.join(", ")}` : ""}`;
}

export async function verifyKey(located: Located, key: string): Promise<VerifyReport> {
  const { store } = located;
  const checks: Check[] = [];
  const report: VerifyReport = {
    key,
    location: store.location,
    ok: false,
    size: null,
    sha256: null,
    raftIndex: null,
    openbaoVersion: null,
    clusterId: null,
    sealType: null,
    encryption: null,
    checks,
  };
  const done = (): VerifyReport => {
    report.ok = checks.length > 0 && checks.every((c) => c.ok);
    return report;
  };

  const head = await store.head(key);
  if (head === null) {
    checks.push({ name: "object", ok: false, detail: `${key} does not exist in ${store.location}` });
    return done();
  }
  report.size = head.size;
  report.encryption = head.encryption;
  const stored =
    head.encryption.type === undefined ? "" : `, ${describeStoredEncryption(store.provider, head.encryption)}`;
  checks.push({ name: "object", ok: true, detail: `${humanBytes(head.size)} (${head.size} bytes)${stored}` });

  let manifest: SnapshotManifest | undefined;
  const mHead = await store.head(manifestKey(key));
  if (mHead === null) {
    checks.push({
      name: "manifest",
      ok: false,
      detail: `${manifestKey(key)} is missing: the backup was never verified`,
    });
  } else if (mHead.size > maxManifestBytes) {
    checks.push({ name: "manifest", ok: false, detail: `${manifestKey(key)} is ${mHead.size} bytes, not a manifest` });
  } else {
    try {
      manifest = parseManifest(await readAll(await store.download(manifestKey(key))), { expectedKey: key });
      report.openbaoVersion = manifest.openbaoVersion;
      report.clusterId = manifest.clusterId ?? null;
      report.sealType = manifest.sealType ?? null;
      checks.push({ name: "manifest", ok: true, detail: manifestDetail(manifest) });
    } catch (err) {
      if (err instanceof StorageError) throw err;
      checks.push({ name: "manifest", ok: false, detail: err instanceof Error ? err.message : String(err) });
    }
  }

  // Only when the target asks for encryption (flags, or the cluster's spec with --kubeconfig):
  // the same comparison a backup makes right after its upload.
  if (located.target.encryption !== undefined) {
    const problems = [
      [key, encryptionMismatch(located.target, head.encryption)],
      ...(mHead === null ? [] : [[manifestKey(key), encryptionMismatch(located.target, mHead.encryption)]]),
    ].filter((p): p is [string, string] => p[1] !== undefined);
    checks.push({
      name: "encryption",
      ok: problems.length === 0,
      detail:
        problems.length === 0
          ? `${describeStoredEncryption(store.provider, head.encryption)}, as asked${mHead === null ? "" : " (manifest too)"}`
          : problems.map(([k, p]) => `${k}: ${p}`).join("; "),
    });
  }

  const tap = createTap();
  const inspector = createSnapshotInspector();
  let info: SnapshotInfo | undefined;
  let archiveProblem: string | undefined;
  try {
    await pipeline(
      await store.download(key),
      tap,
      inspector,
      new Writable({
        write(_chunk, _encoding, callback) {
          callback();
        },
      }),
    );
    info = await inspector.result;
  } catch (err) {
    if (!(err instanceof SnapshotArchiveError)) throw err;
    archiveProblem = err.message;
  }

  if (archiveProblem !== undefined) {
    checks.push({ name: "archive", ok: false, detail: archiveProblem });
  } else if (info) {
    checks.push({
      name: "archive",
      ok: true,
      detail: `gzip/tar/SHA256SUMS sound; raft index ${info.index}, term ${info.term}${info.sealed ? ", sealed sums present" : ""}`,
    });
    report.raftIndex = info.index;
  }
  if (tap.finished) {
    report.sha256 = tap.sha256();
    const read = tap.bytes;
    const sizes = [read, head.size, ...(manifest ? [manifest.size] : [])];
    checks.push({
      name: "size",
      ok: sizes.every((s) => s === read),
      detail: manifest
        ? `read ${read}, stored ${head.size}, manifest ${manifest.size} bytes`
        : `read ${read}, stored ${head.size} bytes (no manifest to compare)`,
    });
    if (manifest) {
      checks.push({
        name: "sha256",
        ok: manifest.sha256 === report.sha256,
        detail:
          manifest.sha256 === report.sha256 ? report.sha256 : `object ${report.sha256}, manifest ${manifest.sha256}`,
      });
    }
  } else {
    checks.push({ name: "sha256", ok: false, detail: "not computed: the archive could not be read to its end" });
  }
  if (manifest && info) {
    checks.push({
      name: "raft index",
      ok: manifest.raftIndex === info.index && manifest.raftTerm === info.term,
      detail: `archive ${info.index}/${info.term}, manifest ${manifest.raftIndex}/${manifest.raftTerm} (index/term)`,
    });
  }
  return done();
}

export async function verifyCommand(argv: readonly string[]): Promise<number> {
  let located: Located | undefined;
  try {
    const args = parseFlags(argv, { ...storageFlags, ...outputFlags }, 1);
    if (args.values.help === true) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const format = outputFormat(args);
    const key = args.positionals[0];
    if (key === undefined)
      throw new UsageError("<key> is required: the object key to verify, as `bao-backup list` prints it");
    if (key.endsWith(".json")) throw new UsageError(`${key} is a manifest; give the .snap key it describes`);
    located = await locate(args, undefined, { clusterOptional: true });
    const report = await verifyKey(located, key);
    if (format === "json") printJson(report);
    else {
      const width = Math.max(...report.checks.map((c) => c.name.length));
      const lines = report.checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(width)}  ${c.detail}`);
      const out = `${report.ok ? "Verified" : "Verification FAILED for"} ${key} in ${report.location}\n${lines.join("\n")}\n`;
      process.stdout.write(out);
    }
    return report.ok ? exitCodes.ok : exitCodes.verification;
  } catch (err) {
    return reportFailure("verify", err, located?.secrets);
  } finally {
    await closeQuietly(located?.store);
  }
}
