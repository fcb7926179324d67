/**
 * Executor benchmark (BENCHMARKS.md §1–2): `bao-backup backup` and `restore` as real child
 * processes, against the snapshot source (bench/source.ts) and a real storage server, with
 * the baselines measured in the same run, one after another on the same servers:
 *   (a) physical limit = the slower of the source read and discarded (`read`) and the same
 *       bytes through the sink's rawest path (`put-raw`); for restore, the slower of the raw
 *       GET from the sink (`get-raw`) and the same bytes POSTed to the source (`post-raw`);
 *   (b) minimal client = source → the same SDK upload (restore: SDK download → POST), same
 *       part size and concurrency, nothing else (`sdk-upload`, `sdk-download`).
 * Throughput is bytes / time of the transfer: for the executor from the moment the source
 * sees its snapshot GET (restore: POST) until the end of the run as the executor itself
 * reports it (startedAt + durationMs: upload, HEAD, manifest — restore: POST and the served
 * check), so the Node start-up and login before the stream are excluded (wall time is
 * reported apart). For the baselines, the client's own clock around its transfer.
 * Memory: VmHWM (peak RSS) of the executor process, sampled from /proc every 25 ms, and its
 * growth over VmRSS at the moment the source saw the stream start (the "idle" process: all
 * modules loaded, logged in, connections open, nothing streamed).
 * `startWorld` and `runExecutor` are shared with bench/destinations.ts (several destinations).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { imageNodeFlags } from "../src/cli/node-flags.ts";
import { executorRuntimeEnv } from "../src/jobs/executor-job.ts";
import { projectRoot } from "../test/servers/catalog.ts";
import { scratchDir } from "../test/servers/process.ts";
import { createCertificateAuthority, issueCertificate } from "../test/servers/tls.ts";
import type { ClientJob, ClientMode, ClientResult } from "./client.ts";
import { cpuPerGiB, MiB, type ProcMemory, rate, runNode, sizeLabel } from "./measure.ts";
import { type Provider, type Sink, startSink } from "./sinks.ts";
import {
  type ArchivePlan,
  prepareArchive,
  type SnapshotSource,
  startSnapshotSource,
  type TransferEvent,
} from "./source.ts";

/**
 * How the executor is run: `dist` as the image runs it (`node --enable-source-maps
 * dist/cli/main.js`, compiled by `tsc -p tsconfig.build.json` first), or `src` (Node strips the
 * types of each module as it loads: ≈ 14 MiB more resident memory and the stripping's CPU).
 */
export type ExecutorBuild = "dist" | "src";

/** Compiles `root` as the image build does; returns the entry point and Node's flags for it. */
function executorEntry(root: string, build: ExecutorBuild): { readonly cli: string; readonly nodeArgs: string[] } {
  if (build === "src") return { cli: join(root, "src", "cli", "main.ts"), nodeArgs: [] };
  const tsc = join(projectRoot, "node_modules", ".bin", "tsc");
  const built = spawnSync(tsc, ["-p", join(root, "tsconfig.build.json")], { cwd: root, encoding: "utf8" });
  if (built.status !== 0) {
    throw new Error(`tsc -p ${root}/tsconfig.build.json failed:\n${built.stdout}${built.stderr}`);
  }
  return { cli: join(root, "dist", "cli", "main.js"), nodeArgs: [...imageNodeFlags] };
}
const clientScript = join(projectRoot, "bench", "client.ts");

export interface ExecutorBenchOptions {
  readonly providers: readonly Provider[];
  /** Sizes per provider (archive bytes). */
  readonly sizes: Readonly<Record<Provider, readonly number[]>>;
  readonly restore: readonly Provider[];
  /** partSize × concurrency sweep on this provider at this size (empty: none). */
  readonly sweep:
    | {
        readonly provider: Provider;
        readonly size: number;
        readonly parts: readonly number[];
        readonly concurrency: readonly number[];
      }
    | undefined;
  readonly partSize: number;
  readonly concurrency: number;
  readonly tls: boolean;
  /** Run (a) and (b) next to the executor (default true); false: the executor alone, e.g. for an A/B. */
  readonly baselines?: boolean | undefined;
  /** MinIO over HTTPS (`sink-tls=on`), as AWS S3 always is. */
  readonly sinkTls?: boolean | undefined;
  /** Another checkout whose executor is measured (`executor-root=`); default this one. */
  readonly executorRoot?: string | undefined;
  /** The executor as the image runs it (`dist`, the default) or from its sources (`executor-build=src`). */
  readonly executorBuild?: ExecutorBuild | undefined;
  /** More Node flags for the executor (`executor-flags=`), e.g. `--trace-gc`. */
  readonly executorFlags?: readonly string[] | undefined;
  readonly repeat: number;
  /** Write a V8 CPU profile of every executor run here (`--cpu-prof`). */
  readonly cpuProfileDir?: string | undefined;
  /** Run the executor with the backup Job's runtime settings (`executorRuntimeEnv`); true by default. */
  readonly jobRuntimeEnv?: boolean | undefined;
  readonly log: (line: string) => void;
}

export interface Measured {
  readonly bytes: number;
  readonly ms: number;
  readonly mibps: number;
  /**
   * CPU time of the measuring process over the transfer (baselines: their own clock; executor:
   * from the stream's start to its exit). The steadier figure when the machine is shared.
   */
  readonly cpuMs?: number;
  /** Peak RSS (VmHWM) of the measuring process: the executor's, or the baseline client's. */
  readonly peakRss?: number;
}

export interface ExecutorMeasured extends Measured {
  readonly wallMs: number;
  readonly peakRss: number;
  readonly idleRss: number;
  readonly key: string;
  /** Mark-compacts and scavenges the executor made, when its flags include `--trace-gc` (finding 11). */
  readonly gc?: { readonly markCompacts: number; readonly scavenges: number };
  /** With several destinations: each one's outcome as the executor reported it (main target first). */
  readonly destinations?: readonly { readonly name: string; readonly ok: boolean; readonly reason?: string }[];
}

export interface ThroughputRow {
  readonly provider: Provider;
  readonly op: "backup" | "restore";
  readonly size: number;
  readonly partSize: number;
  readonly concurrency: number;
  readonly executor: ExecutorMeasured[];
  /** (a): source leg, sink leg. */
  readonly sourceLeg: Measured[];
  readonly sinkLeg: Measured[];
  /** (b) */
  readonly minimal: Measured[];
}

function measuredOf(result: ClientResult, peakRss: number | undefined): Measured {
  const ms = Math.max(1, result.endedAt - result.startedAt);
  return {
    bytes: result.bytes,
    ms,
    mibps: rate(result.bytes, ms),
    ...(result.cpuMs === undefined ? {} : { cpuMs: result.cpuMs }),
    ...(peakRss === undefined ? {} : { peakRss }),
  };
}

/** The snapshot source and the files every executor run reads (token, CA), shared by a whole run. */
export interface World {
  readonly source: SnapshotSource;
  readonly cpuProfileDir: string | undefined;
  readonly jobRuntimeEnv: boolean;
  /** The executor's entry point (executorEntry): this checkout's, or another's (`executor-root=`). */
  readonly cli: string;
  /** Node's flags before the entry point (the image's `--enable-source-maps` for `dist`). */
  readonly nodeArgs: readonly string[];
  readonly files: { readonly dir: string; readonly caFile: string | undefined; readonly tokenFile: string };
}

/** Starts the snapshot source (over HTTPS from a CA made for the run, unless `tls` is false). */
export async function startWorld(options: {
  readonly tls: boolean;
  readonly cpuProfileDir?: string | undefined;
  readonly jobRuntimeEnv?: boolean | undefined;
  /**
   * Run the executor of another checkout (its src/cli/main.ts) against the same servers and
   * baselines, e.g. the last commit for an A/B; default this checkout.
   */
  readonly executorRoot?: string | undefined;
  readonly executorBuild?: ExecutorBuild | undefined;
  /** More Node flags for the executor (`executor-flags=`), e.g. `--trace-gc`. */
  readonly executorFlags?: readonly string[] | undefined;
}): Promise<World> {
  const built = executorEntry(options.executorRoot ?? projectRoot, options.executorBuild ?? "dist");
  const entry = { cli: built.cli, nodeArgs: [...built.nodeArgs, ...(options.executorFlags ?? [])] };
  const dir = scratchDir("bench-executor");
  let tls: { certPem: string; keyPem: string; caPem: string } | undefined;
  let caFile: string | undefined;
  if (options.tls) {
    const caDir = join(dir, "ca");
    mkdirSync(caDir);
    const ca = createCertificateAuthority(caDir, "bench source CA");
    const cert = issueCertificate(ca, "bench-source");
    tls = { certPem: cert.certPem, keyPem: cert.keyPem, caPem: ca.certPem };
    caFile = ca.certPath;
  }
  const source = await startSnapshotSource(tls ? { tls } : {});
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, source.token);
  return {
    source,
    cpuProfileDir: options.cpuProfileDir,
    jobRuntimeEnv: options.jobRuntimeEnv ?? true,
    ...entry,
    files: { dir, caFile, tokenFile },
  };
}

async function runClient(
  world: World,
  sink: Sink,
  mode: ClientMode,
  plan: ArchivePlan,
  key: string,
  partSize: number,
  concurrency: number,
): Promise<Measured> {
  const job: ClientJob = {
    mode,
    source: { address: world.source.address, token: world.source.token, caPem: world.source.caPem },
    sink: sink.info,
    plan,
    key,
    partSize,
    concurrency,
  };
  return runClientJob(job);
}

/** ", N mark-compacts, M scavenges" when the run was traced (`executor-flags=--trace-gc`). */
function gcOf(m: ExecutorMeasured): string {
  return m.gc === undefined ? "" : `, ${m.gc.markCompacts} mark-compacts, ${m.gc.scavenges} scavenges`;
}

/** Runs one baseline client process (bench/client.ts) and returns what it measured. */
export async function runClientJob(job: ClientJob): Promise<Measured> {
  const run = await runNode([clientScript, JSON.stringify(job)], {});
  if (run.code !== 0) throw new Error(`client ${job.mode} failed (exit ${run.code}): ${run.stderr.slice(-2000)}`);
  const line = run.stdout.trim().split("\n").at(-1) ?? "{}";
  return measuredOf(JSON.parse(line) as ClientResult, run.memory?.hwm);
}

let runCounter = 0;

/**
 * The runtime environment of a measured executor run: the backup Job's runtime settings
 * (`executorRuntimeEnv`) unless `jobRuntimeEnv` is false, plus the profiler's flags.
 */
export function executorEnv(jobRuntimeEnv: boolean, cpuProfileDir?: string | undefined): Record<string, string> {
  const env: Record<string, string> = jobRuntimeEnv ? { ...executorRuntimeEnv } : {};
  if (cpuProfileDir) {
    env.NODE_OPTIONS = [env.NODE_OPTIONS, "--cpu-prof", `--cpu-prof-dir=${cpuProfileDir}`].filter(Boolean).join(" ");
  }
  return env;
}

/**
 * One measured executor run against `sink` (its main target); `env` adds settings (e.g.
 * BACKUP_ADDITIONAL_TARGETS). Throws unless the run succeeded.
 */
export async function runExecutor(
  world: World,
  sink: Sink,
  mode: "backup" | "restore",
  options: { partSize: number; concurrency: number; key?: string; env?: Record<string, string> },
): Promise<ExecutorMeasured> {
  const termination = join(world.files.dir, `termination-${++runCounter}`);
  const env: Record<string, string> = {
    ...sink.env,
    CLUSTER_NAME: "bench",
    CLUSTER_NAMESPACE: "bench",
    BACKUP_OPENBAO_ADDRESSES: world.source.address,
    BACKUP_AUTH_METHOD: "token",
    BACKUP_TOKEN_FILE: world.files.tokenFile,
    BACKUP_TERMINATION_MESSAGE_PATH: termination,
    BACKUP_PART_SIZE: String(options.partSize),
    BACKUP_CONCURRENCY: String(options.concurrency),
    ...(world.files.caFile ? { BACKUP_CA_FILE: world.files.caFile } : {}),
    ...(options.key ? { BACKUP_KEY: options.key } : {}),
    ...executorEnv(world.jobRuntimeEnv, world.cpuProfileDir),
    ...options.env,
  };
  let transfer: TransferEvent | undefined;
  let idle: ProcMemory | undefined;
  let sampler: { now(): ProcMemory | undefined; cpuMs(): number | undefined } | undefined;
  let idleCpuMs: number | undefined;
  world.source.onTransferStart = (event) => {
    transfer = event;
    idle = sampler?.now();
    idleCpuMs = sampler?.cpuMs();
  };
  const run = await runNode([...world.nodeArgs, world.cli, mode], env, (_pid, s) => {
    sampler = s;
  });
  world.source.onTransferStart = undefined;
  let result: Record<string, unknown> = {};
  try {
    result = JSON.parse(readFileSync(termination, "utf8")) as Record<string, unknown>;
  } catch {
    // reported below
  }
  if (run.code !== 0 || result.ok !== true || transfer === undefined) {
    throw new Error(
      `executor ${mode} failed (exit ${run.code}): ${JSON.stringify(result)}\n${run.stderr.slice(-3000)}`,
    );
  }
  const end = Date.parse(String(result.startedAt)) + Number(result.durationMs);
  const bytes = Number(result.size);
  const ms = Math.max(1, end - transfer.startedAt);
  return {
    bytes,
    ms,
    mibps: rate(bytes, ms),
    wallMs: run.endedAt - run.startedAt,
    peakRss: run.memory?.hwm ?? Number.NaN,
    idleRss: idle?.rss ?? Number.NaN,
    cpuMs: (run.cpuMs ?? Number.NaN) - (idleCpuMs ?? Number.NaN),
    key: String(result.key),
    // `--trace-gc` prints a line per collection on stdout (the result is read from its file).
    ...(world.nodeArgs.includes("--trace-gc")
      ? {
          gc: {
            markCompacts: run.stdout.match(/: Mark-Compact /g)?.length ?? 0,
            scavenges: run.stdout.match(/: Scavenge /g)?.length ?? 0,
          },
        }
      : {}),
    ...(Array.isArray(result.destinations)
      ? {
          destinations: (result.destinations as { name: string; ok: boolean; reason?: string }[]).map((d) => ({
            name: d.name,
            ok: d.ok,
            ...(d.reason === undefined ? {} : { reason: d.reason }),
          })),
        }
      : {}),
  };
}

async function throughput(
  world: World,
  sink: Sink,
  size: number,
  options: {
    partSize: number;
    concurrency: number;
    restore: boolean;
    repeat: number;
    /** (a)'s legs. */
    baselines: boolean;
    /** (b), the bare SDK. */
    minimal: boolean;
  },
  log: (line: string) => void,
): Promise<ThroughputRow[]> {
  const provider = sink.info.provider;
  const t = Date.now();
  const plan = prepareArchive(size);
  world.source.serve(plan);
  log(`  prepared ${sizeLabel(size)} archive (${plan.streamLength} bytes) in ${Date.now() - t} ms`);
  const { partSize, concurrency } = options;
  const backup: ThroughputRow = {
    provider,
    op: "backup",
    size,
    partSize,
    concurrency,
    executor: [],
    sourceLeg: [],
    sinkLeg: [],
    minimal: [],
  };
  const restore: ThroughputRow = { ...backup, op: "restore", executor: [], sourceLeg: [], sinkLeg: [], minimal: [] };
  const show = (what: string, m: Measured): void =>
    log(
      `  ${provider} ${sizeLabel(size)} p${partSize / MiB}c${concurrency} ${what}: ${m.mibps.toFixed(0)} MiB/s (${m.ms} ms` +
        `${m.cpuMs === undefined ? "" : `, CPU ${(m.cpuMs / 1000).toFixed(2)} s = ${cpuPerGiB(m).toFixed(2)} s/GiB`}` +
        `${m.peakRss === undefined ? "" : `, peak RSS ${(m.peakRss / MiB).toFixed(0)} MiB`})`,
    );
  for (let rep = 0; rep < options.repeat; rep++) {
    if (options.baselines) {
      const read = await runClient(world, sink, "read", plan, "", partSize, concurrency);
      show("(a) source read", read);
      backup.sourceLeg.push(read);
      const put = await runClient(world, sink, "put-raw", plan, `raw/${rep}`, partSize, concurrency);
      show("(a) raw put", put);
      backup.sinkLeg.push(put);
    }
    if (options.minimal) {
      const sdk = await runClient(world, sink, "sdk-upload", plan, `sdk/${rep}`, partSize, concurrency);
      show("(b) sdk upload", sdk);
      backup.minimal.push(sdk);
    }
    const exec = await runExecutor(world, sink, "backup", { partSize, concurrency });
    show(
      `executor backup (peak RSS ${(exec.peakRss / MiB).toFixed(0)} MiB, idle ${(exec.idleRss / MiB).toFixed(0)} MiB${gcOf(exec)})`,
      exec,
    );
    backup.executor.push(exec);
    if (options.restore) {
      if (options.baselines) {
        const get = await runClient(world, sink, "get-raw", plan, exec.key, partSize, concurrency);
        show("(a) raw get", get);
        restore.sinkLeg.push(get);
        const post = await runClient(world, sink, "post-raw", plan, "", partSize, concurrency);
        show("(a) post to source", post);
        restore.sourceLeg.push(post);
      }
      if (options.minimal) {
        const down = await runClient(world, sink, "sdk-download", plan, exec.key, partSize, concurrency);
        show("(b) sdk download → post", down);
        restore.minimal.push(down);
      }
      const back = await runExecutor(world, sink, "restore", { partSize, concurrency, key: exec.key });
      show(
        `executor restore (peak RSS ${(back.peakRss / MiB).toFixed(0)} MiB, idle ${(back.idleRss / MiB).toFixed(0)} MiB${gcOf(back)})`,
        back,
      );
      restore.executor.push(back);
    }
    await sink.clear();
  }
  return options.restore ? [backup, restore] : [backup];
}

export async function benchExecutor(options: ExecutorBenchOptions): Promise<ThroughputRow[]> {
  const world = await startWorld(options);
  const { source } = world;
  const rows: ThroughputRow[] = [];
  try {
    for (const provider of options.providers) {
      const sizes = options.sizes[provider];
      const sweepHere = options.sweep?.provider === provider ? options.sweep : undefined;
      if (sizes.length === 0 && !sweepHere) continue;
      options.log(`starting ${provider} sink`);
      const sink = await startSink(provider, { tls: options.sinkTls });
      try {
        for (const size of sizes) {
          rows.push(
            ...(await throughput(
              world,
              sink,
              size,
              {
                partSize: options.partSize,
                concurrency: options.concurrency,
                restore: options.restore.includes(provider),
                repeat: options.repeat,
                baselines: options.baselines ?? true,
                minimal: options.baselines ?? true,
              },
              options.log,
            )),
          );
        }
        if (sweepHere) {
          for (const partSize of sweepHere.parts) {
            for (const concurrency of sweepHere.concurrency) {
              rows.push(
                ...(await throughput(
                  world,
                  sink,
                  sweepHere.size,
                  {
                    partSize,
                    concurrency,
                    restore: false,
                    repeat: 1,
                    baselines: false,
                    minimal: options.baselines ?? true,
                  },
                  options.log,
                )),
              );
            }
          }
        }
      } finally {
        await sink.stop();
      }
    }
  } finally {
    await source.stop();
  }
  return rows;
}
