/**
 * `bao-backup drill-prepare`: the first init container of a drill Pod. It writes the
 * throwaway OpenBao's configuration into the Pod's scratch volume (an emptyDir shared with the
 * throwaway), because an OpenBao image has no shell to write one and a ConfigMap would be one
 * more object per cluster to create, update and clean up.
 *
 * The configuration is fixed by design, never taken from the user: Integrated Storage (Raft) on
 * the scratch volume (the data dies with the Pod), one listener on 127.0.0.1 only (nothing
 * outside the Pod can reach the restored secrets), plain HTTP (the traffic never leaves the
 * Pod), no mlock (no IPC_LOCK capability), no UI. An auto-unseal stanza, when the drill has one
 * (`spec.backup.drill.sealConfigSecretRef`), is a second `-config` file read by OpenBao itself
 * from its own Secret volume: this container never sees it.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exitCodes } from "../cli/exit-codes.ts";

/** Where the drill Pod mounts its scratch volume, and the throwaway's fixed ports (src/jobs/drill-pod.ts). */
export const drillScratch = {
  dir: "/drill",
  config: "config.hcl",
  raft: "raft",
  /** The throwaway's TMPDIR: OpenBao spools a snapshot it restores to a temp file first, and its root filesystem is read-only. */
  tmp: "tmp",
  apiPort: 8200,
  clusterPort: 8201,
} as const;

/** The throwaway's configuration for a scratch directory `dir`. */
export function throwawayConfig(dir: string): string {
  const { apiPort, clusterPort } = drillScratch;
  return `# Written by bao-backup drill-prepare: a throwaway OpenBao for one restore drill.
storage "raft" {
  path    = "${join(dir, drillScratch.raft)}"
  node_id = "drill"
  # One node: elect at once. The default (production) timings held a fresh throwaway 5–9 s
  # before it became active, 1.4–2 s with this (BENCHMARKS.md, restore drills).
  performance_multiplier = 1
}
listener "tcp" {
  address         = "127.0.0.1:${apiPort}"
  cluster_address = "127.0.0.1:${clusterPort}"
  tls_disable     = true
}
api_addr      = "http://127.0.0.1:${apiPort}"
cluster_addr  = "https://127.0.0.1:${clusterPort}"
disable_mlock = true
ui            = false
`;
}

export async function drillPrepareCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(
      `Usage: bao-backup drill-prepare [--dir ${drillScratch.dir}]\n\nWrites the throwaway OpenBao's configuration (${drillScratch.config}) and its empty Raft directory into the drill Pod's scratch volume. Run by the operator's drill Jobs as their first init container.\n`,
    );
    return exitCodes.ok;
  }
  const at = argv.indexOf("--dir");
  const dir = at === -1 ? drillScratch.dir : argv[at + 1];
  if (dir === undefined || !dir.startsWith("/")) {
    process.stderr.write("bao-backup drill-prepare: --dir needs an absolute path\n");
    return exitCodes.config;
  }
  await mkdir(join(dir, drillScratch.raft), { recursive: true, mode: 0o700 });
  await mkdir(join(dir, drillScratch.tmp), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, drillScratch.config), throwawayConfig(dir), { mode: 0o600 });
  process.stdout.write(
    `wrote ${join(dir, drillScratch.config)} (Raft at ${join(dir, drillScratch.raft)}, 127.0.0.1:${drillScratch.apiPort})\n`,
  );
  return exitCodes.ok;
}
