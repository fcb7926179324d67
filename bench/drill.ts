/**
 * Restore drills at a realistic size: `bao-backup drill` of a ~1 GiB backup of a real OpenBao
 * into a fresh throwaway `bao server` (test/servers/throwaway-openbao.ts: Raft on a scratch
 * directory, loopback, plain HTTP — the drill Pod's second container), measuring both
 * "containers": the executor process and the throwaway OpenBao process.
 *
 * The backup: a real 1-node OpenBao (Raft, TLS) filled with KV v2 secrets of random values
 * (barrier-encrypted, so the snapshot is incompressible, as in production) up to the size asked
 * for, stored with `bao-backup backup` (with the canary) in MinIO. The source OpenBao is stopped
 * before anything is measured, so it competes for nothing.
 *
 * Measured in every repetition (the order rotated by one each time), each into its own fresh
 * throwaway:
 *   raw       the rawest path: `curl -T` of the same object (saved once to a file) into the
 *             throwaway's sys/storage/raft/snapshot-force, until sys/seal-status reports
 *             sealed (OpenBao applied a foreign snapshot and sealed itself) — OpenBao's own
 *             limit for ingesting it. The bench initialises and unseals the throwaway first
 *             (not timed; `prepMs`).
 *   restore   `bao-backup restore --force --expect-sealed` of the backup from MinIO into a
 *             throwaway the bench initialised and unsealed the same way: the executor's plain
 *             restore into a live single node with the same server configuration as the drill's.
 *   loaded    `bao-backup drill` without key material.
 *   verified  `bao-backup drill` with the source's Shamir unseal key (and its canary).
 * The drill's figures include what a drill does on top of a restore (initialising and unsealing
 * the throwaway, and for verified: unsealing the restored data, waiting until it is active,
 * reading the canary); the baselines' preparation is reported apart (`prepMs`).
 *
 * Per process: wall time (executor: spawn to exit, Node start-up included; raw: curl's start
 * until sealed), CPU time (utime + stime from /proc/<pid>/stat; the throwaway's over the
 * operation only), peak RSS = VmHWM (the executor: sampled every 25 ms by runNode; the
 * throwaway: read at the end, so since its start — a fresh server is ~100 MiB), and for the
 * throwaway the sampled peaks of RssAnon (Go heap: what a memory limit must hold) and RssFile
 * (file-backed pages: Raft's bbolt mmap, reclaimable), and its peak disk use: its data
 * directory plus the files it holds open elsewhere (the uploaded snapshot's temporary file).
 *
 * What this shows about OpenBao itself (the same in all four, raw included): snapshot-force
 * first copies the upload into a temporary file in $TMPDIR (raft-snapshot's
 * WriteToTempFileWithSealer: os.TempDir(), not the Raft directory), answers, and then applies
 * it by writing a new bbolt file in transactions of 50,000 keys (physical/raft/snapshot.go),
 * each held in memory until it commits — so with large values a whole 1 GiB snapshot sits in
 * one transaction.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  createWriteStream,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { projectRoot } from "../test/servers/catalog.ts";
import { httpsJson } from "../test/servers/https-json.ts";
import { type OpenBaoCluster, startOpenBao } from "../test/servers/openbao.ts";
import { scratchDir } from "../test/servers/process.ts";
import { startThrowawayOpenBao, type ThrowawayOpenBao } from "../test/servers/throwaway-openbao.ts";
import { executorEnv } from "./executor.ts";
import { MiB, median, mib, procCpuMs, rate, runNode, sampleMemory, sizeLabel, table } from "./measure.ts";
import { rawRequest, type Sink, startSink } from "./sinks.ts";

const cli = join(projectRoot, "src", "cli", "main.ts");
const canaryPath = "secret/openbao-backup/canary";

export interface DrillBenchOptions {
  /** Snapshot size to aim for (bytes of secret values written). */
  readonly size: number;
  /** Size of each secret's value (bytes); below Raft's 1 MiB entry limit. */
  readonly valueBytes: number;
  readonly repeat: number;
  readonly partSize: number;
  readonly concurrency: number;
  /** Write each executor run's output here, if set. */
  readonly logDir?: string | undefined;
  /** Write a V8 CPU profile of every measured executor run here (`--cpu-prof`). */
  readonly cpuProfileDir?: string | undefined;
  /**
   * Flags for the Node of the measured executor runs, before the script (e.g. `--trace-gc`,
   * printed into `logDir`; not every flag is allowed in NODE_OPTIONS).
   */
  readonly nodeFlags?: readonly string[] | undefined;
  readonly log: (line: string) => void;
}

export type DrillRunKind = "raw" | "restore" | "loaded" | "verified";
const kinds: readonly DrillRunKind[] = ["raw", "restore", "loaded", "verified"];

/** The throwaway `bao server` over one operation. */
export interface ServerFigures {
  /** CPU time over the operation (its start-up excluded). */
  readonly cpuMs: number;
  /** VmRSS just before the operation. */
  readonly startRss: number;
  /** VmHWM at the end: the kernel's peak since the process started. */
  readonly peakRss: number;
  /** Sampled peaks (every 50 ms) of the anonymous and file-backed parts of the RSS. */
  readonly peakAnon: number;
  readonly peakFile: number;
  /** When the sampled anonymous peak was seen, from the start of the operation. */
  readonly peakAnonAtMs: number;
  /** Sampled peak (every 500 ms) of its data directory plus the files it holds open elsewhere. */
  readonly peakDisk: number;
  /** The two parts of `peakDisk`, each at its own peak. */
  readonly peakDataDir: number;
  readonly peakElsewhere: number;
}

/** The executor (restore, drill) or curl (raw). */
export interface ClientFigures {
  readonly peakRss: number;
  readonly cpuMs: number;
}

export interface DrillRun {
  readonly kind: DrillRunKind;
  readonly rep: number;
  /** See the module comment for where it starts and ends. */
  readonly wallMs: number;
  /** raw, restore: initialising and unsealing the throwaway before the operation (not in wallMs). */
  readonly prepMs?: number;
  /** The executor's own `durationMs` (Node start-up excluded). */
  readonly reportedMs?: number;
  /** raw: when curl had sent everything and got OpenBao's answer, from the start. */
  readonly uploadMs?: number;
  readonly outcome: string;
  readonly client: ClientFigures;
  readonly server: ServerFigures;
}

export interface DrillBenchResult {
  readonly snapshotBytes: number;
  readonly secrets: number;
  readonly valueBytes: number;
  readonly fillMs: number;
  readonly backup: { readonly wallMs: number; readonly mibps: number; readonly peakRss: number };
  readonly runs: DrillRun[];
}

// ---------------------------------------------------------------- the throwaway, from /proc

interface StatusFigures {
  readonly rss: number;
  readonly hwm: number;
  readonly anon: number;
  readonly file: number;
}

function statusFigures(pid: number): StatusFigures | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string): number => {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
      return m?.[1] === undefined ? Number.NaN : Number(m[1]) * 1024;
    };
    return { rss: kib("VmRSS"), hwm: kib("VmHWM"), anon: kib("RssAnon"), file: kib("RssFile") };
  } catch {
    return undefined;
  }
}

/** Allocated bytes (st_blocks, not the apparent size: bbolt files may be sparse) under `dir`. */
function diskUse(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      total += st.isDirectory() ? diskUse(path) : st.blocks * 512;
    } catch {
      // Removed between readdir and stat (Raft's temporary files): not there any more.
    }
  }
  return total;
}

/**
 * Regular files the process holds open outside `dir` (through /proc/<pid>/fd, so an unlinked
 * temporary file still counts): where OpenBao buffers an uploaded snapshot.
 */
function openFilesElsewhere(pid: number, dir: string): number {
  let total = 0;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 0;
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (!target.startsWith("/") || target.startsWith(dir) || target.startsWith("/dev/")) continue;
      const st = statSync(`/proc/${pid}/fd/${fd}`);
      if (st.isFile()) total += st.blocks * 512;
    } catch {
      // Closed meanwhile.
    }
  }
  return total;
}

function watchServer(pid: number, dir: string): { stop(): ServerFigures } {
  const started = Date.now();
  const first = statusFigures(pid);
  const startCpu = procCpuMs(pid) ?? Number.NaN;
  let last = first;
  let lastCpu = startCpu;
  let peakAnon = first?.anon ?? 0;
  let peakAnonAtMs = 0;
  let peakFile = first?.file ?? 0;
  let peakDisk = 0;
  let peakDataDir = 0;
  let peakElsewhere = 0;
  let tick = 0;
  const sample = (): void => {
    const now = statusFigures(pid);
    if (now) {
      last = now;
      if (now.anon > peakAnon) {
        peakAnon = now.anon;
        peakAnonAtMs = Date.now() - started;
      }
      peakFile = Math.max(peakFile, now.file);
    }
    const cpu = procCpuMs(pid);
    if (cpu !== undefined && !Number.isNaN(cpu)) lastCpu = cpu;
    // Walking the directory and the fd table costs more than reading status: every 10th tick.
    if (tick++ % 10 === 0) {
      const data = diskUse(dir);
      const elsewhere = openFilesElsewhere(pid, dir);
      peakDataDir = Math.max(peakDataDir, data);
      peakElsewhere = Math.max(peakElsewhere, elsewhere);
      peakDisk = Math.max(peakDisk, data + elsewhere);
    }
  };
  const timer = setInterval(sample, 50);
  return {
    stop() {
      clearInterval(timer);
      tick = 0;
      sample();
      return {
        cpuMs: lastCpu - startCpu,
        startRss: first?.rss ?? Number.NaN,
        peakRss: last?.hwm ?? Number.NaN,
        peakAnon,
        peakAnonAtMs,
        peakFile,
        peakDisk,
        peakDataDir,
        peakElsewhere,
      };
    },
  };
}

// ---------------------------------------------------------------- talking to the throwaway

async function call(
  address: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${address}/v1/${path}`, {
    method,
    headers: { ...(token ? { "x-vault-token": token } : {}), ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    // OpenBao holds seal-status while it applies a snapshot (its state lock): long on 1 GiB.
    signal: AbortSignal.timeout(300_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`throwaway ${method} ${path} → ${res.status}: ${text.slice(0, 300)}`);
  return text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
}

/** What the drill does first, done by the bench for the baselines: init (1 share), unseal, active. */
async function initAndUnseal(throwaway: ThrowawayOpenBao): Promise<string> {
  const init = await call(throwaway.address, "POST", "sys/init", { secret_shares: 1, secret_threshold: 1 });
  const key = (init.keys_base64 as string[] | undefined)?.[0] ?? "";
  await call(throwaway.address, "POST", "sys/unseal", { key });
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(100)) {
    const leader = await call(throwaway.address, "GET", "sys/leader").catch(() => ({}) as Record<string, unknown>);
    if (leader.is_self === true) return String(init.root_token);
  }
  throw new Error("the throwaway did not become active after its unseal");
}

async function waitSealed(throwaway: ThrowawayOpenBao): Promise<void> {
  for (const deadline = Date.now() + 300_000; Date.now() < deadline; await sleep(100)) {
    const status = await call(throwaway.address, "GET", "sys/seal-status").catch(() => ({}) as Record<string, unknown>);
    if (status.initialized === true && status.sealed === true) return;
  }
  throw new Error("the throwaway never sealed itself after the snapshot");
}

function runCurl(args: readonly string[]): Promise<{ code: number | null; stdout: string; client: ClientFigures }> {
  return new Promise((resolve, reject) => {
    const child = spawn("curl", [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    const sampler = child.pid === undefined ? undefined : sampleMemory(child.pid);
    child.on("error", reject);
    child.on("close", (code) => {
      const memory = sampler?.stop();
      resolve({ code, stdout, client: { peakRss: memory?.hwm ?? Number.NaN, cpuMs: sampler?.cpuMs() ?? Number.NaN } });
    });
  });
}

// ---------------------------------------------------------------- the backup

async function fill(
  bao: OpenBaoCluster,
  secrets: number,
  valueBytes: number,
  log: (line: string) => void,
): Promise<void> {
  let next = 0;
  let done = 0;
  const address = bao.addresses[0] ?? "";
  const write = async (i: number): Promise<void> => {
    // base64 of 3/4 × valueBytes random bytes: valueBytes characters, encrypted by the barrier.
    const value = randomBytes(Math.floor(valueBytes * 0.75)).toString("base64");
    for (let attempt = 1; ; attempt++) {
      const res = await httpsJson(`${address}/v1/secret/data/bench/s${i}`, {
        method: "POST",
        body: { data: { value } },
        caPem: bao.caPem,
        headers: { "x-vault-token": bao.rootToken },
        // Raft fsyncs every entry; on a shared 2-core machine one write can take seconds.
        timeoutMs: 120_000,
      }).catch((err: unknown) => ({ status: 0, text: String(err) }));
      if (res.status >= 200 && res.status < 300) return;
      if (attempt >= 3) throw new Error(`writing bench/s${i}: ${res.status} ${res.text.slice(0, 300)}`);
    }
  };
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < secrets) {
        await write(next++);
        if (++done % Math.max(1, Math.floor(secrets / 10)) === 0) log(`drill: wrote ${done}/${secrets} secrets`);
      }
    }),
  );
}

function download(url: string, headers: Record<string, string>, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(url, { headers }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`download ${url}: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      pipeline(res, createWriteStream(path)).then(resolve, reject);
    });
    req.on("error", reject);
    req.end();
  });
}

interface Prepared {
  readonly key: string;
  readonly snapshotFile: string;
  readonly snapshotBytes: number;
  readonly sourceToken: string;
  readonly keysDir: string;
  readonly secrets: number;
  readonly fillMs: number;
  readonly backup: DrillBenchResult["backup"];
}

async function prepareBackup(options: DrillBenchOptions, sink: Sink, dir: string): Promise<Prepared> {
  const { log } = options;
  const secrets = Math.max(1, Math.ceil(options.size / options.valueBytes));
  const bao = await startOpenBao({ nodes: 1 });
  try {
    const t = Date.now();
    await fill(bao, secrets, options.valueBytes, log);
    const fillMs = Date.now() - t;
    log(`drill: wrote ${secrets} secrets of ${options.valueBytes} bytes in ${(fillMs / 1000).toFixed(0)} s`);

    // The root token of the source: valid in every restored copy, as a drill's token must be.
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, bao.rootToken);
    const caFile = join(dir, "ca.crt");
    writeFileSync(caFile, bao.caPem);
    const keysDir = join(dir, "keys");
    mkdirSync(keysDir);
    writeFileSync(join(keysDir, "key-1"), `${bao.unsealKey}\n`);

    const termination = join(dir, "termination-backup");
    const run = await runNode([cli, "backup"], {
      ...sink.env,
      CLUSTER_NAME: "bench",
      CLUSTER_NAMESPACE: "bench",
      BACKUP_OPENBAO_ADDRESSES: bao.addresses.join(","),
      BACKUP_CA_FILE: caFile,
      BACKUP_AUTH_METHOD: "token",
      BACKUP_TOKEN_FILE: tokenFile,
      BACKUP_TERMINATION_MESSAGE_PATH: termination,
      BACKUP_PART_SIZE: String(options.partSize),
      BACKUP_CONCURRENCY: String(options.concurrency),
      BACKUP_CANARY_PATH: canaryPath,
      ...executorEnv(true),
    });
    const result = readResult(termination);
    if (run.code !== 0 || result.ok !== true) throw new Error(`backup failed: ${JSON.stringify(result)}`);
    const key = String(result.key);
    const snapshotBytes = Number(result.size);
    const backup = {
      wallMs: run.endedAt - run.startedAt,
      mibps: rate(snapshotBytes, Number(result.durationMs)),
      peakRss: run.memory?.hwm ?? Number.NaN,
    };
    log(
      `drill: backup ${key}: ${sizeLabel(snapshotBytes)} (${snapshotBytes} bytes) at ${backup.mibps.toFixed(0)} MiB/s, ` +
        `wall ${(backup.wallMs / 1000).toFixed(1)} s, peak RSS ${(backup.peakRss / MiB).toFixed(0)} MiB`,
    );
    // The same bytes as stored (what the drill streams), saved once for the raw baseline; the
    // read also warms MinIO's page cache for the first measured run.
    const snapshotFile = join(dir, "snapshot.snap");
    const get = await rawRequest(sink.info, "get", key);
    await download(get.url, get.headers, snapshotFile);
    if (statSync(snapshotFile).size !== snapshotBytes) throw new Error("the downloaded snapshot has the wrong size");
    return {
      key,
      snapshotFile,
      snapshotBytes,
      sourceToken: bao.rootToken,
      keysDir,
      secrets,
      fillMs,
      backup,
    };
  } finally {
    // Not needed any more: stopped so that it competes with nothing measured.
    await bao.stop();
  }
}

function readResult(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------- the measured operations

let runCounter = 0;

async function measure(
  kind: DrillRunKind,
  rep: number,
  ctx: {
    prepared: Prepared;
    sink: Sink;
    dir: string;
    partSize: number;
    concurrency: number;
    logDir: string | undefined;
    cpuProfileDir: string | undefined;
    nodeFlags: readonly string[];
  },
): Promise<DrillRun> {
  const { prepared, sink, dir } = ctx;
  const throwaway = await startThrowawayOpenBao();
  try {
    const pid = throwaway.process.child.pid;
    if (pid === undefined) throw new Error("the throwaway has no pid");
    let prepMs: number | undefined;
    let token = "";
    if (kind === "raw" || kind === "restore") {
      const t = Date.now();
      token = await initAndUnseal(throwaway);
      prepMs = Date.now() - t;
    }
    const watch = watchServer(pid, throwaway.dir);
    if (kind === "raw") {
      const started = Date.now();
      const curl = await runCurl([
        "-sS",
        "--fail-with-body",
        "-X",
        "POST",
        "-T",
        prepared.snapshotFile,
        // No 100-continue round trip (curl waits up to 1 s for it on a large upload).
        "-H",
        "Expect:",
        "-H",
        `X-Vault-Token: ${token}`,
        "-o",
        "/dev/null",
        `${throwaway.address}/v1/sys/storage/raft/snapshot-force`,
      ]);
      const uploadMs = Date.now() - started;
      if (curl.code !== 0) throw new Error(`curl snapshot-force failed (exit ${curl.code}): ${curl.stdout}`);
      await waitSealed(throwaway);
      const wallMs = Date.now() - started;
      const server = watch.stop();
      return { kind, rep, wallMs, prepMs: prepMs ?? 0, uploadMs, outcome: "sealed", client: curl.client, server };
    }
    const termination = join(dir, `termination-${++runCounter}`);
    const tokenFile = join(dir, `token-${runCounter}`);
    writeFileSync(tokenFile, kind === "restore" ? token : prepared.sourceToken);
    const common: Record<string, string> = {
      ...sink.env,
      BACKUP_KEY: prepared.key,
      BACKUP_AUTH_METHOD: "token",
      BACKUP_TOKEN_FILE: tokenFile,
      BACKUP_TERMINATION_MESSAGE_PATH: termination,
      BACKUP_PART_SIZE: String(ctx.partSize),
      BACKUP_CONCURRENCY: String(ctx.concurrency),
      ...executorEnv(true, ctx.cpuProfileDir),
    };
    const env: Record<string, string> =
      kind === "restore"
        ? {
            ...common,
            CLUSTER_NAME: "bench",
            CLUSTER_NAMESPACE: "bench",
            BACKUP_OPENBAO_ADDRESSES: throwaway.address,
            BACKUP_FORCE: "true",
            BACKUP_EXPECT_SEALED: "true",
          }
        : {
            ...common,
            DRILL_OPENBAO_ADDR: throwaway.address,
            ...(kind === "verified" ? { DRILL_UNSEAL_KEYS_DIR: prepared.keysDir, DRILL_CANARY_PATH: canaryPath } : {}),
          };
    const run = await runNode([...ctx.nodeFlags, cli, kind === "restore" ? "restore" : "drill"], env);
    const server = watch.stop();
    if (ctx.logDir !== undefined) {
      writeFileSync(join(ctx.logDir, `${kind}-${rep + 1}.log`), `${run.stdout}\n--- stderr\n${run.stderr}`);
    }
    const result = readResult(termination);
    const outcome = kind === "restore" ? (result.sealed === true ? "sealed" : "served") : String(result.outcome);
    const expected = kind === "restore" ? "sealed" : kind;
    if (run.code !== 0 || result.ok !== true || outcome !== expected) {
      throw new Error(`${kind} failed (exit ${run.code}): ${JSON.stringify(result)}\n${run.stderr.slice(-3000)}`);
    }
    return {
      kind,
      rep,
      wallMs: run.endedAt - run.startedAt,
      ...(prepMs === undefined ? {} : { prepMs }),
      reportedMs: Number(result.durationMs),
      outcome,
      client: { peakRss: run.memory?.hwm ?? Number.NaN, cpuMs: run.cpuMs ?? Number.NaN },
      server,
    };
  } finally {
    await throwaway.stop();
  }
}

export async function benchDrill(options: DrillBenchOptions): Promise<DrillBenchResult> {
  const { log } = options;
  const dir = scratchDir("bench-drill");
  log(`drill: starting MinIO and a 1-node OpenBao; aiming at a ${sizeLabel(options.size)} snapshot`);
  const sink = await startSink("s3");
  try {
    const prepared = await prepareBackup(options, sink, dir);
    const runs: DrillRun[] = [];
    for (let rep = 0; rep < options.repeat; rep++) {
      // Rotated each repetition: no kind always runs right after the same other one (the
      // previous throwaway's 2 GiB of writes are still being flushed and deleted).
      const order = kinds.map((_, i) => kinds[(i + rep) % kinds.length] ?? "raw");
      for (const kind of order) {
        const run = await measure(kind, rep, {
          prepared,
          sink,
          dir,
          partSize: options.partSize,
          concurrency: options.concurrency,
          logDir: options.logDir,
          cpuProfileDir: options.cpuProfileDir,
          nodeFlags: options.nodeFlags ?? [],
        });
        log(
          `drill: #${rep + 1} ${kind} (${run.outcome}): ${(run.wallMs / 1000).toFixed(1)} s` +
            `${run.prepMs === undefined ? "" : ` (+${(run.prepMs / 1000).toFixed(1)} s init/unseal before)`}` +
            `${run.uploadMs === undefined ? "" : ` (curl answered at ${(run.uploadMs / 1000).toFixed(1)} s)`}; ` +
            `${kind === "raw" ? "curl" : "executor"} peak ${(run.client.peakRss / MiB).toFixed(0)} MiB, CPU ${(run.client.cpuMs / 1000).toFixed(1)} s; ` +
            `bao peak ${(run.server.peakRss / MiB).toFixed(0)} MiB (anon ${(run.server.peakAnon / MiB).toFixed(0)} at ${(run.server.peakAnonAtMs / 1000).toFixed(1)} s, file ${(run.server.peakFile / MiB).toFixed(0)}), ` +
            `CPU ${(run.server.cpuMs / 1000).toFixed(1)} s, disk ${(run.server.peakDisk / MiB).toFixed(0)} MiB ` +
            `(data dir ${(run.server.peakDataDir / MiB).toFixed(0)}, elsewhere ${(run.server.peakElsewhere / MiB).toFixed(0)})`,
        );
        runs.push(run);
      }
    }
    return {
      snapshotBytes: prepared.snapshotBytes,
      secrets: prepared.secrets,
      valueBytes: options.valueBytes,
      fillMs: prepared.fillMs,
      backup: prepared.backup,
      runs,
    };
  } finally {
    await sink.stop();
  }
}

// ---------------------------------------------------------------- report

/** Median, with the range when there are several runs. */
function spread(values: readonly number[], digits: number, scale = 1): string {
  const scaled = values.map((v) => v / scale).filter((v) => Number.isFinite(v));
  if (scaled.length === 0) return "–";
  const m = median(scaled).toFixed(digits);
  if (scaled.length === 1) return m;
  return `${m} (${Math.min(...scaled).toFixed(digits)}–${Math.max(...scaled).toFixed(digits)})`;
}

/**
 * Ratio of `kind` to `base` per repetition (both measured back to back in it), then the
 * median: pairs runs that saw the same load on the shared machine.
 */
function ratio(
  result: DrillBenchResult,
  kind: DrillRunKind,
  base: DrillRunKind,
  figure: (run: DrillRun) => number,
): string {
  const values: number[] = [];
  for (const run of result.runs.filter((r) => r.kind === kind)) {
    const other = result.runs.find((r) => r.kind === base && r.rep === run.rep);
    if (other) values.push(figure(run) / figure(other));
  }
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  return finite.length === 0 ? "–" : `${median(finite).toFixed(2)}×`;
}

const labels: Readonly<Record<DrillRunKind, string>> = {
  raw: "raw: curl → snapshot-force, until sealed",
  restore: "`bao-backup restore --force` (throwaway pre-initialised)",
  loaded: "`bao-backup drill`, no keys → loaded",
  verified: "`bao-backup drill`, Shamir keys → verified",
};

/** The figures (medians, range in brackets) and the ratios to the baselines, as Markdown. */
export function drillTables(result: DrillBenchResult): string {
  const of = (kind: DrillRunKind): DrillRun[] => result.runs.filter((r) => r.kind === kind);
  const figures = table(
    [
      "run",
      "wall s",
      "executor's own s",
      "init/unseal before s",
      "executor (curl) peak RSS MiB",
      "executor (curl) CPU s",
      "bao peak RSS MiB",
      "bao peak anon / file MiB",
      "bao CPU s",
      "bao peak disk MiB (data dir + temp file)",
    ],
    kinds.map((kind) => {
      const runs = of(kind);
      return [
        labels[kind],
        spread(
          runs.map((r) => r.wallMs),
          1,
          1000,
        ),
        kind === "raw"
          ? "–"
          : spread(
              runs.map((r) => r.reportedMs ?? Number.NaN),
              1,
              1000,
            ),
        kind === "raw" || kind === "restore"
          ? spread(
              runs.map((r) => r.prepMs ?? Number.NaN),
              1,
              1000,
            )
          : "(in wall)",
        spread(
          runs.map((r) => r.client.peakRss),
          0,
          MiB,
        ),
        spread(
          runs.map((r) => r.client.cpuMs),
          1,
          1000,
        ),
        spread(
          runs.map((r) => r.server.peakRss),
          0,
          MiB,
        ),
        `${spread(
          runs.map((r) => r.server.peakAnon),
          0,
          MiB,
        )} / ${spread(
          runs.map((r) => r.server.peakFile),
          0,
          MiB,
        )}`,
        spread(
          runs.map((r) => r.server.cpuMs),
          1,
          1000,
        ),
        `${spread(
          runs.map((r) => r.server.peakDisk),
          0,
          MiB,
        )} (${mib(median(runs.map((r) => r.server.peakDataDir)))} + ${mib(median(runs.map((r) => r.server.peakElsewhere)))})`,
      ];
    }),
  );
  const ratios = table(
    [
      "run",
      "wall / raw",
      "wall / restore",
      "wall / (restore + its init/unseal)",
      "executor peak RSS / restore's",
      "executor CPU / restore's",
      "bao peak RSS / raw's",
      "bao peak anon / raw's",
      "bao CPU / raw's",
    ],
    (["restore", "loaded", "verified"] as const).map((kind) => [
      labels[kind],
      ratio(result, kind, "raw", (r) => r.wallMs),
      ratio(result, kind, "restore", (r) => r.wallMs),
      // What a drill does that a restore does not starts with initialising the throwaway:
      // compared with the restore plus the same preparation, the drill's own overhead remains.
      ratio(result, kind, "restore", (r) => r.wallMs + (r.kind === "restore" ? (r.prepMs ?? 0) : 0)),
      ratio(result, kind, "restore", (r) => r.client.peakRss),
      ratio(result, kind, "restore", (r) => r.client.cpuMs),
      ratio(result, kind, "raw", (r) => r.server.peakRss),
      ratio(result, kind, "raw", (r) => r.server.peakAnon),
      ratio(result, kind, "raw", (r) => r.server.cpuMs),
    ]),
  );
  const reps = Math.max(...kinds.map((k) => of(k).length));
  return [
    `Snapshot: ${sizeLabel(result.snapshotBytes)} (${result.snapshotBytes} bytes; ${result.secrets} KV v2 secrets of ` +
      `${result.valueBytes >= MiB ? sizeLabel(result.valueBytes) : `${(result.valueBytes / 1024).toFixed(0)} KiB`} random values, written in ${(result.fillMs / 1000).toFixed(0)} s); backup ` +
      `${(result.backup.wallMs / 1000).toFixed(1)} s wall, ${result.backup.mibps.toFixed(0)} MiB/s. ` +
      `${reps} repetition(s): median (range).`,
    "",
    figures,
    "",
    "Ratios (per repetition, then the median):",
    "",
    ratios,
  ].join("\n");
}
