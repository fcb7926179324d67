/**
 * Several destinations (BENCHMARKS.md "Several destinations"): `bao-backup backup` writing one
 * snapshot stream to 1, 2 and 3 stores at once — MinIO alone, MinIO + fake-gcs-server, MinIO +
 * fake-gcs-server + Azurite — and, for comparison, each store alone and the two fast ones
 * together (MinIO + Azurite: fake-gcs-server, the slowest, paces every set it is in), in the same
 * run, on the same servers and the same snapshot source, one run after another. MinIO is the main target (the
 * BACKUP_* settings); the others are BACKUP_ADDITIONAL_TARGETS entries built from their sinks'
 * env, with the same partSize and concurrency, under the default success policy (All), so a run
 * counts only when every destination succeeded.
 * The measuring is bench/executor.ts's `runExecutor` (throughput from the source's GET to the end
 * of the run, wall time, peak RSS and growth over the idle process, CPU seconds).
 */
import { type ExecutorMeasured, runExecutor, startWorld } from "./executor.ts";
import { MiB, sizeLabel } from "./measure.ts";
import { type Provider, type Sink, startSink } from "./sinks.ts";
import { prepareArchive } from "./source.ts";

/** What is measured, in this order at each size: each store alone, then 2, then 3 at once. */
export const destinationSets: readonly (readonly Provider[])[] = [
  ["s3"],
  ["gcs"],
  ["azure"],
  ["s3", "azure"],
  ["s3", "gcs"],
  ["s3", "gcs", "azure"],
];

export const sinkNames: Readonly<Record<Provider, string>> = {
  s3: "MinIO",
  gcs: "fake-gcs-server",
  azure: "Azurite",
};

export interface DestinationsBenchOptions {
  readonly sizes: readonly number[];
  readonly partSize: number;
  readonly concurrency: number;
  readonly tls: boolean;
  readonly repeat: number;
  readonly cpuProfileDir?: string | undefined;
  readonly jobRuntimeEnv?: boolean | undefined;
  readonly log: (line: string) => void;
}

export interface DestinationsRow {
  /** The main target first. */
  readonly destinations: readonly Provider[];
  readonly size: number;
  readonly partSize: number;
  readonly concurrency: number;
  readonly executor: ExecutorMeasured[];
}

/** One BACKUP_ADDITIONAL_TARGETS entry for `sink`, as the operator writes it from spec.backup.target. */
function additionalTarget(sink: Sink, partSize: number, concurrency: number): Record<string, unknown> {
  const env = sink.env;
  return {
    name: sink.info.provider,
    target: {
      provider: env.BACKUP_PROVIDER,
      endpoint: env.BACKUP_ENDPOINT,
      bucket: env.BACKUP_BUCKET,
      partSize,
      concurrency,
      ...(env.BACKUP_USE_PATH_STYLE === "true" ? { usePathStyle: true } : {}),
      ...(env.BACKUP_GCS_PROJECT ? { gcs: { project: env.BACKUP_GCS_PROJECT } } : {}),
      ...(env.BACKUP_AZURE_STORAGE_ACCOUNT ? { azure: { storageAccount: env.BACKUP_AZURE_STORAGE_ACCOUNT } } : {}),
    },
    credentialsDir: env.BACKUP_CREDENTIALS_DIR,
  };
}

export async function benchDestinations(options: DestinationsBenchOptions): Promise<DestinationsRow[]> {
  const { partSize, concurrency, log } = options;
  const world = await startWorld(options);
  const sinks = new Map<Provider, Sink>();
  const rows: DestinationsRow[] = [];
  try {
    for (const provider of ["s3", "gcs", "azure"] as const) {
      log(`starting ${provider} sink`);
      sinks.set(provider, await startSink(provider));
    }
    const sinkOf = (p: Provider): Sink => {
      const sink = sinks.get(p);
      if (!sink) throw new Error(`no ${p} sink`);
      return sink;
    };
    for (const size of options.sizes) {
      const t = Date.now();
      const plan = prepareArchive(size);
      world.source.serve(plan);
      log(`  prepared ${sizeLabel(size)} archive (${plan.streamLength} bytes) in ${Date.now() - t} ms`);
      const here = destinationSets.map(
        (destinations): DestinationsRow => ({ destinations, size, partSize, concurrency, executor: [] }),
      );
      rows.push(...here);
      for (let rep = 0; rep < options.repeat; rep++) {
        for (const row of here) {
          const [main, ...others] = row.destinations.map(sinkOf);
          if (!main) continue;
          const env: Record<string, string> =
            others.length === 0
              ? {}
              : {
                  BACKUP_ADDITIONAL_TARGETS: JSON.stringify(
                    others.map((s) => additionalTarget(s, partSize, concurrency)),
                  ),
                };
          const m = await runExecutor(world, main, "backup", { partSize, concurrency, env });
          const failed = (m.destinations ?? []).filter((d) => !d.ok);
          if (failed.length > 0 || (others.length > 0 && m.destinations?.length !== row.destinations.length)) {
            throw new Error(`${row.destinations.join("+")}: destinations ${JSON.stringify(m.destinations)}`);
          }
          row.executor.push(m);
          log(
            `  ${row.destinations.join("+")} ${sizeLabel(size)} p${partSize / MiB}c${concurrency}: ` +
              `${m.mibps.toFixed(0)} MiB/s (${m.ms} ms, wall ${(m.wallMs / 1000).toFixed(1)} s, ` +
              `CPU ${((m.cpuMs ?? Number.NaN) / 1000).toFixed(2)} s, peak RSS ${(m.peakRss / MiB).toFixed(0)} MiB, ` +
              `idle ${(m.idleRss / MiB).toFixed(0)} MiB)`,
          );
          for (const s of [main, ...others]) await s.clear();
        }
      }
    }
  } finally {
    for (const sink of sinks.values()) await sink.stop();
    await world.source.stop();
  }
  return rows;
}
