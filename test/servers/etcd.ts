/**
 * A single-member etcd on 127.0.0.1 for one test's kube-apiserver: free client and peer
 * ports, a scratch data directory removed on stop, fsync off (the data is thrown away).
 */
import { join } from "node:path";
import { serverBinary } from "./catalog.ts";
import { freePort } from "./ports.ts";
import { type ManagedProcess, removeScratch, scratchDir, startProcess, waitFor } from "./process.ts";

export interface EtcdOptions {
  /** Log and member name, e.g. "etcd" (default). */
  readonly name?: string;
  /** Directory for the log file; a scratch directory by default. */
  readonly logDir?: string;
  readonly timeoutMs?: number;
}

export interface EtcdHandle {
  /** e.g. http://127.0.0.1:40123 — what kube-apiserver's `--etcd-servers` takes. */
  readonly clientUrl: string;
  readonly dataDir: string;
  readonly process: ManagedProcess;
  /** Resolves once etcd answers /health; rejects (with its log) if it exits or times out first. */
  readonly ready: Promise<void>;
  /** Stops etcd and removes its data directory. */
  stop(): Promise<void>;
}

/** The etcd binary: `OPENBAO_BACKUP_ETCD_BIN` if set, else the cached build. */
export function etcdBinary(): string {
  return process.env.OPENBAO_BACKUP_ETCD_BIN ?? serverBinary("etcd");
}

/** True when a process failed because a port chosen by `freePort` was taken before it bound it. */
export function lostPortRace(proc: ManagedProcess): boolean {
  return /address already in use/.test(proc.logTail(20_000));
}

/**
 * Spawns etcd without waiting for it: `ready` says when it serves. Lets a caller start
 * kube-apiserver alongside (it retries its etcd connection), which saves a second.
 */
export async function launchEtcd(options: EtcdOptions = {}): Promise<EtcdHandle> {
  const name = options.name ?? "etcd";
  const dataDir = scratchDir(`${name}-data`);
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const proc = startProcess({
    name,
    command: etcdBinary(),
    args: [
      `--name=${name}`,
      `--data-dir=${join(dataDir, "member-data")}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${name}=${peerUrl}`,
      "--initial-cluster-state=new",
      // Throwaway data: skip fsync, which is most of etcd's write latency on a test machine.
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    ...(options.logDir === undefined ? {} : { logDir: options.logDir }),
  });
  const ready = waitFor(
    async () => {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { health?: string };
      return res.ok && body.health === "true";
    },
    { what: `${name} /health`, timeoutMs: options.timeoutMs ?? 30_000, intervalMs: 50, processes: [proc] },
  ).then(() => undefined);
  // Observed by the caller when it awaits `ready`; never an unhandled rejection meanwhile.
  ready.catch(() => undefined);
  return {
    clientUrl,
    dataDir,
    process: proc,
    ready,
    async stop() {
      await proc.stop();
      removeScratch(dataDir);
    },
  };
}

/** Ports are chosen, then bound by etcd: retried when another process took one in between. */
const attempts = 3;

/** Starts etcd and waits until it serves. */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdHandle> {
  for (let attempt = 1; ; attempt++) {
    const etcd = await launchEtcd(options);
    try {
      await etcd.ready;
      return etcd;
    } catch (err) {
      await etcd.stop();
      if (attempt >= attempts || !lostPortRace(etcd.process)) throw err;
    }
  }
}
