/**
 * A throwaway OpenBao for restore drills, as a drill Pod's second container or a person on a
 * workstation starts it: one `bao server`, Integrated Storage (Raft) on a fresh scratch
 * directory, listening on 127.0.0.1 only, plain HTTP (nothing leaves the machine), and left
 * *uninitialised* — the drill initialises it. With `seal` it auto-unseals through a Transit key
 * (test/servers/transit.ts), as the source cluster does.
 *
 * It is stopped by its PID on every path: by `stop()` (SIGTERM, then SIGKILL), and by the exit
 * hooks of test/servers/process.ts if the test process itself ends first; its data directory
 * is removed with it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openbaoBinary, type TransitSeal, transitSealStanza } from "./openbao.ts";
import { freePort } from "./ports.ts";
import { type ManagedProcess, removeScratch, scratchDir, startProcess, waitFor } from "./process.ts";

export interface ThrowawayOpenBao {
  /** `http://127.0.0.1:<port>` */
  readonly address: string;
  readonly process: ManagedProcess;
  /** Its scratch directory (Raft data, configuration, log). */
  readonly dir: string;
  /** `GET sys/seal-status` as it answers (status and parsed body), for assertions. */
  sealStatus(): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

export async function startThrowawayOpenBao(options: { seal?: TransitSeal } = {}): Promise<ThrowawayOpenBao> {
  const dir = scratchDir("throwaway-openbao");
  mkdirSync(join(dir, "raft"));
  const [apiPort, clusterPort] = [await freePort(), await freePort()];
  const address = `http://127.0.0.1:${apiPort}`;
  let seal = "";
  if (options.seal) {
    const caPath = join(dir, "transit-ca.crt");
    writeFileSync(caPath, options.seal.caPem);
    seal = transitSealStanza(options.seal, caPath);
  }
  const configPath = join(dir, "throwaway.hcl");
  writeFileSync(
    configPath,
    `
storage "raft" {
  path = "${join(dir, "raft")}"
  node_id = "throwaway"
  performance_multiplier = 1
}
listener "tcp" {
  address = "127.0.0.1:${apiPort}"
  cluster_address = "127.0.0.1:${clusterPort}"
  tls_disable = true
}
api_addr = "${address}"
cluster_addr = "https://127.0.0.1:${clusterPort}"
disable_mlock = true
ui = false
log_level = "info"
${seal}`,
  );
  const proc = startProcess({
    name: "throwaway-openbao",
    command: openbaoBinary(),
    args: ["server", `-config=${configPath}`],
    env: { PATH: process.env.PATH ?? "", HOME: dir },
    logDir: join(dir, "logs"),
  });
  const sealStatus = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${address}/v1/sys/seal-status`, { signal: AbortSignal.timeout(60_000) });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    return { status: res.status, body };
  };
  const stop = async (): Promise<void> => {
    await proc.stop();
    removeScratch(dir);
  };
  try {
    await waitFor(async () => (await sealStatus()).body.initialized === false, {
      what: "the throwaway OpenBao listening, uninitialised",
      timeoutMs: 30_000,
      processes: [proc],
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, process: proc, dir, sealStatus, stop };
}
