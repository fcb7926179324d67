/**
 * The per-byte floor of the executor's work on this machine, measured in the same run as the
 * executor: what its bytes cannot avoid costing in one Node process, so that the executor's CPU
 * per GiB can be read as a ratio to it (issue 19: "≥ 70% of the physical limit", "≤ 4 CPU
 * s/GiB").
 *
 * A backup's bytes are received from OpenBao (HTTPS) and sent to the store, both measured by
 * (a)'s legs in the same run; on the way, by contract (SPEC §4), they are hashed (SHA-256, the
 * manifest's), decompressed (gzip, its CRC-32 included) and the tar's state.bin hashed again
 * (SHA-256, against SHA256SUMS); each part is copied once into its buffer and carries a CRC32.
 * A restore's bytes take the same checks between the store (GET) and OpenBao (POST), but for
 * the second SHA-256: state.bin's is left to the manifest match and to OpenBao (finding 18). The
 * primitives are measured one after the other, each over 1 GiB, in a process of their own with
 * the executor's Node flags and NODE_OPTIONS (in the bench's own process, whose heap holds the
 * run, the zlib stream used before finding 16 cost 3× as much: its output buffers started
 * collections there):
 *   sha256  node:crypto, 16 KiB updates (the TLS records the tap sees)
 *   crc32   zlib.crc32 of 10 MiB parts
 *   gunzip  the bench's own archive (bench/source.ts), in 16 KiB writes, decompressed
 *           synchronously into one reused buffer, as the inspector does (src/snapshot/gunzip.ts)
 *   copy    Buffer.copy of 16 KiB chunks into 10 MiB parts
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { imageNodeFlags } from "../src/cli/node-flags.ts";
import { executorRuntimeEnv } from "../src/jobs/executor-job.ts";
import { SyncGunzip } from "../src/snapshot/gunzip.ts";
import type { ThroughputRow } from "./executor.ts";
import { cpuPerGiB, MiB, median, sizeLabel, table } from "./measure.ts";
import { archiveChunks, GiB, prepareArchive } from "./source.ts";

/** CPU seconds per GiB of each primitive. */
export interface Primitives {
  readonly sha256: number;
  readonly crc32: number;
  readonly gunzip: number;
  readonly copy: number;
}

async function cpuSecondsPerGiB(bytes: number, work: () => Promise<void> | void): Promise<number> {
  const before = process.cpuUsage();
  await work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6 / (bytes / GiB);
}

/** The primitives, measured in this process. */
export async function measurePrimitivesHere(): Promise<Primitives> {
  const part = Buffer.alloc(10 * MiB, 0x5a);
  const record = 16 * 1024;
  const sha256 = await cpuSecondsPerGiB(GiB, () => {
    const hash = createHash("sha256");
    for (let n = 0; n < GiB; n += record) hash.update(part.subarray(n % part.length, (n % part.length) + record));
    hash.digest();
  });
  const crc = await cpuSecondsPerGiB(GiB, () => {
    let value = 0;
    for (let n = 0; n < GiB; n += part.length) value = crc32(part, value);
  });
  const into = Buffer.allocUnsafe(part.length);
  const copy = await cpuSecondsPerGiB(GiB, () => {
    for (let n = 0; n < GiB; n += record) part.copy(into, n % into.length, 0, record);
  });
  const plan = prepareArchive(GiB);
  const gunzip = await cpuSecondsPerGiB(plan.streamLength, () => {
    const inflater = new SyncGunzip(() => {});
    for (const chunk of archiveChunks(plan)) {
      for (let offset = 0; offset < chunk.length; offset += record)
        inflater.write(chunk.subarray(offset, offset + record));
    }
    inflater.end();
  });
  return { sha256, crc32: crc, gunzip, copy };
}

/** The primitives, measured in a fresh Node process with the executor's flags (the image's and the Job's). */
export function measurePrimitives(log: (line: string) => void): Primitives {
  const script =
    `const { measurePrimitivesHere } = await import(${JSON.stringify(import.meta.url)});` +
    "process.stdout.write(JSON.stringify(await measurePrimitivesHere()));";
  const child = spawnSync(process.execPath, [...imageNodeFlags, "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, ...executorRuntimeEnv },
  });
  if (child.status !== 0) throw new Error(`measuring the per-byte primitives failed: ${child.stderr || child.error}`);
  const { sha256, crc32: crc, gunzip, copy } = JSON.parse(child.stdout) as Primitives;
  const primitives = { sha256, crc32: crc, gunzip, copy };
  log(
    `  per-byte primitives (CPU s/GiB): SHA-256 ${sha256.toFixed(2)}, CRC32 ${crc.toFixed(2)}, ` +
      `gunzip ${gunzip.toFixed(2)}, copy ${copy.toFixed(2)}`,
  );
  return primitives;
}

/**
 * CPU s/GiB the checks cost on the way: a SHA-256 pass and a gunzip; a backup also state.bin's
 * SHA-256 against SHA256SUMS, and its parts a copy and a CRC32.
 */
export function checksFloor(op: "backup" | "restore", p: Primitives): number {
  return op === "backup" ? 2 * p.sha256 + p.gunzip + p.crc32 + p.copy : p.sha256 + p.gunzip;
}

export function floorTable(rows: readonly ThroughputRow[], p: Primitives): string {
  const cpu = (values: ThroughputRow["sourceLeg"]): number => median(values.map(cpuPerGiB));
  return table(
    [
      "sink",
      "op",
      "size",
      "(a) legs CPU s/GiB: source / sink",
      "checks CPU s/GiB",
      "floor CPU s/GiB",
      "executor CPU s/GiB",
      "executor / floor",
    ],
    rows
      .filter((r) => r.executor.length > 0 && r.sourceLeg.length > 0 && r.sinkLeg.length > 0)
      .map((row) => {
        const legs = cpu(row.sourceLeg) + cpu(row.sinkLeg);
        const checks = checksFloor(row.op, p);
        const executor = cpu(row.executor);
        return [
          row.provider,
          row.op,
          sizeLabel(row.size),
          `${cpu(row.sourceLeg).toFixed(2)} / ${cpu(row.sinkLeg).toFixed(2)}`,
          checks.toFixed(2),
          (legs + checks).toFixed(2),
          executor.toFixed(2),
          `${(executor / (legs + checks)).toFixed(2)}×`,
        ];
      }),
  );
}
