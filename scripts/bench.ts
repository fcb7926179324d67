/**
 * `npm run bench`: throughput, memory and control-plane benchmarks (BENCHMARKS.md). Not part
 * of the pass/fail suite; nothing here is evidence for a feature (the snapshot source in
 * bench/source.ts is a load generator).
 *
 *   npm run bench                         everything (executor, then operator)
 *   npm run bench -- executor             executor only     npm run bench -- operator
 *   npm run bench -- openbao              executor against a real OpenBao (secrets=8000 value=8K)
 *   npm run bench -- destinations         executor to 1, 2 and 3 stores at once, and each alone
 *   npm run bench -- drill                restore drill of a real ~1 GiB OpenBao backup beside raw and restore
 *                                         (drill-size=1G drill-value=512K repeat=3; only when named: ~8 min,
 *                                         ~4.5 GiB RAM and ~6 GiB in /tmp)
 *   options (key=value, after --):
 *     sizes=256M,1G,4G      MinIO sizes (default 256M,1G)
 *     other-sizes=256M      fake-gcs-server and Azurite sizes (default 256M; "none" to skip)
 *     dest-sizes=256M,1G    destinations: sizes (default 256M)
 *     providers=s3,gcs,azure
 *     restore=s3            providers whose restore is measured (default s3)
 *     sweep=on|off          partSize × concurrency sweep on MinIO at 256 MiB (default on)
 *     part=10M conc=3       the executor's defaults
 *     repeat=1              runs of each figure (the median is reported)
 *     tls=on|off            the snapshot source over HTTPS (default on, as OpenBao)
 *     sink-tls=on|off       MinIO over HTTPS, as AWS S3 always is (default off)
 *     baselines=on|off      executor: (a) and (b) next to every executor run (default on; off for an A/B)
 *     executor-root=DIR     executor: measure another checkout's executor, e.g. the last commit, against
 *                           the same servers and baselines (DIR needs node_modules, e.g. a symlink)
 *     executor-build=dist|src  executor: as the image runs it (tsc, then node --enable-source-maps
 *                           dist/cli/main.js) or from src/ with Node's type stripping (default dist)
 *     executor-flags="…"    executor: more Node flags, beside the Job's NODE_OPTIONS; with --trace-gc
 *                           each executor line counts its mark-compacts and scavenges
 *     secrets=8000 value=8K real OpenBao: KV v2 secrets written before the backup, and their size
 *     clusters=1000         operator: OpenBaoCluster objects on one cron minute
 *     cpu-prof=on           V8 CPU profiles of the executor / operator (bench/results/profiles/)
 *     heap=on               operator: V8 heap snapshots, settled and mid-burst (bench/results/profiles/)
 *     node-options="…"      operator: NODE_OPTIONS (default: the Helm chart's nodeOptions; "none")
 *     job-env=on|off        executor: the backup Job's runtime settings (its NODE_OPTIONS; default on)
 *     operator-args="…"     operator: extra flags, e.g. "--workers=4" or "--no-leader-election"
 *     baseline=on|off       operator: the minimal client's burst after the operator's (default on)
 * Results: printed as Markdown tables and written to bench/results/<what>-<time>.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { benchDestinations } from "../bench/destinations.ts";
import { benchDrill, drillTables } from "../bench/drill.ts";
import { benchExecutor } from "../bench/executor.ts";
import { floorTable, measurePrimitives } from "../bench/floor.ts";
import { MiB, parseSize } from "../bench/measure.ts";
import { benchOpenBao } from "../bench/openbao.ts";
import { benchOperator, operatorTables } from "../bench/operator.ts";
import {
  cpuTable,
  destinationsMemoryTable,
  destinationsThroughputTable,
  memoryTable,
  throughputTable,
} from "../bench/report.ts";
import type { Provider } from "../bench/sinks.ts";
import { projectRoot } from "../test/servers/catalog.ts";

const args = process.argv.slice(2);
const options = new Map<string, string>();
const what = new Set<string>();
for (const arg of args) {
  const eq = arg.indexOf("=");
  if (eq > 0) options.set(arg.slice(0, eq), arg.slice(eq + 1));
  else what.add(arg);
}
const all = what.size === 0;
/** `executor-build=`: how the executor is run (bench/executor.ts, ExecutorBuild). */
function executorBuild(): "dist" | "src" {
  const value = options.get("executor-build") ?? "dist";
  if (value !== "dist" && value !== "src") throw new Error(`executor-build=${value}: use dist or src`);
  return value;
}
const list = (name: string, fallback: string): string[] =>
  (options.get(name) ?? fallback)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "" && s !== "none");
const providersOf = (name: string, fallback: string): Provider[] =>
  list(name, fallback).map((p) => {
    if (p !== "s3" && p !== "gcs" && p !== "azure") throw new Error(`${name}: unknown provider ${p}`);
    return p;
  });

const log = (line: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};
const resultsDir = join(projectRoot, "bench", "results");
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
function save(name: string, data: unknown): void {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${name}-${stamp}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  log(`results written to ${path}`);
}

/** `cpu-prof=on`: V8 CPU profiles of the executor / operator processes (summarise with bench/profile.ts). */
function profileDir(name: string, always = false): string | undefined {
  if (!always && options.get("cpu-prof") !== "on") return undefined;
  const dir = join(resultsDir, "profiles", `${name}-${stamp}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The operator's V8 heap limits as the Helm chart sets them: `nodeOptions` in its values.yaml. */
const chartNodeOptions =
  /^nodeOptions:\s*"([^"]*)"/m.exec(
    readFileSync(join(import.meta.dirname, "..", "deploy/chart/values.yaml"), "utf8"),
  )?.[1] ?? "";

log(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 1024 / MiB).toFixed(1)} GiB, Node ${process.version}`,
);

if (all || what.has("executor")) {
  const s3Sizes = list("sizes", "256M,1G").map(parseSize);
  const otherSizes = list("other-sizes", "256M").map(parseSize);
  const providers = providersOf("providers", "s3,gcs,azure");
  const sweepOn = (options.get("sweep") ?? "on") === "on";
  const rows = await benchExecutor({
    providers,
    sizes: { s3: s3Sizes, gcs: otherSizes, azure: otherSizes },
    restore: providersOf("restore", "s3"),
    sweep: sweepOn
      ? { provider: "s3", size: 256 * MiB, parts: [5 * MiB, 10 * MiB, 32 * MiB], concurrency: [1, 3, 8] }
      : undefined,
    partSize: parseSize(options.get("part") ?? "10M"),
    concurrency: Number(options.get("conc") ?? "3"),
    tls: (options.get("tls") ?? "on") === "on",
    sinkTls: options.get("sink-tls") === "on",
    baselines: (options.get("baselines") ?? "on") === "on",
    executorRoot: options.get("executor-root"),
    executorBuild: executorBuild(),
    executorFlags: (options.get("executor-flags") ?? "").split(" ").filter((f) => f !== ""),
    repeat: Number(options.get("repeat") ?? "1"),
    cpuProfileDir: profileDir("executor"),
    jobRuntimeEnv: (options.get("job-env") ?? "on") === "on",
    log,
  });
  // The per-byte floor needs (a)'s legs of the same run; measured last, with the servers idle.
  const primitives = (options.get("baselines") ?? "on") === "on" ? measurePrimitives(log) : undefined;
  save("executor", rows);
  if (primitives !== undefined) save("floor", primitives);
  process.stdout.write(`\n## Executor throughput\n\n${throughputTable(rows)}\n\n`);
  process.stdout.write(`## Executor memory\n\n${memoryTable(rows)}\n\n`);
  process.stdout.write(`## CPU per GiB and peak RSS (executor and baselines)\n\n${cpuTable(rows)}\n\n`);
  if (primitives !== undefined) {
    process.stdout.write(
      `## Per-byte floor: (a)'s legs plus the checks (bench/floor.ts)\n\n${floorTable(rows, primitives)}\n\n`,
    );
  }
}

if (all || what.has("destinations")) {
  const rows = await benchDestinations({
    sizes: list("dest-sizes", "256M").map(parseSize),
    partSize: parseSize(options.get("part") ?? "10M"),
    concurrency: Number(options.get("conc") ?? "3"),
    tls: (options.get("tls") ?? "on") === "on",
    repeat: Number(options.get("repeat") ?? "1"),
    cpuProfileDir: profileDir("destinations"),
    jobRuntimeEnv: (options.get("job-env") ?? "on") === "on",
    log,
  });
  save("destinations", rows);
  process.stdout.write(`\n## Several destinations: throughput\n\n${destinationsThroughputTable(rows)}\n\n`);
  process.stdout.write(`## Several destinations: memory\n\n${destinationsMemoryTable(rows)}\n\n`);
}

// Only when named: a real 1 GiB snapshot needs minutes and gigabytes (see the header).
if (what.has("drill")) {
  const result = await benchDrill({
    size: parseSize(options.get("drill-size") ?? "1G"),
    valueBytes: parseSize(options.get("drill-value") ?? "512K"),
    repeat: Number(options.get("repeat") ?? "3"),
    partSize: parseSize(options.get("part") ?? "10M"),
    concurrency: Number(options.get("conc") ?? "3"),
    cpuProfileDir: profileDir("drill"),
    log,
  });
  save("drill", result);
  process.stdout.write(`\n## Restore drills\n\n${drillTables(result)}\n\n`);
}

if (all || what.has("openbao")) {
  const row = await benchOpenBao({
    secrets: Number(options.get("secrets") ?? "8000"),
    valueBytes: parseSize(options.get("value") ?? "8K"),
    partSize: parseSize(options.get("part") ?? "10M"),
    concurrency: Number(options.get("conc") ?? "3"),
    log,
  });
  save("openbao", row);
  process.stdout.write(`\n## Executor against a real OpenBao\n\n${throughputTable([row])}\n\n`);
}

if (all || what.has("operator")) {
  const nodeOptions = options.get("node-options") ?? (chartNodeOptions || "none");
  const result = await benchOperator({
    clusters: Number(options.get("clusters") ?? "1000"),
    cpuProfileDir: profileDir("operator"),
    heapSnapshotDir: options.get("heap") === "on" ? profileDir("operator-heap", true) : undefined,
    nodeOptions: nodeOptions === "none" ? undefined : nodeOptions,
    operatorArgs: (options.get("operator-args") ?? "").split(" ").filter((a) => a !== ""),
    baseline: (options.get("baseline") ?? "on") === "on",
    log,
  });
  save("operator", result);
  process.stdout.write(`\n## Operator scale\n\n${operatorTables(result)}\n\n`);
}
process.exit(0);
