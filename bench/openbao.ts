/**
 * The "realistic size" row: `bao-backup backup` against a real 1-node OpenBao (Raft, TLS) filled
 * with KV v2 secrets of random values (barrier-encrypted, so incompressible, as in production),
 * into MinIO, with the same baselines as bench/executor.ts:
 *   (a) the snapshot read from OpenBao and discarded (OpenBao producing it included), and the
 *       same bytes (saved once to a scratch file) sent by one raw PUT;
 *   (b) OpenBao's snapshot response piped into the same lib-storage upload.
 * There is no hook into OpenBao for the start of the stream, so the executor's figure is its
 * whole run as it reports it (`durationMs`: leader discovery, login and health check included —
 * a few milliseconds on loopback — Node start-up excluded).
 */
import { randomBytes } from "node:crypto";
import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { projectRoot } from "../test/servers/catalog.ts";
import { startOpenBao } from "../test/servers/openbao.ts";
import { scratchDir } from "../test/servers/process.ts";
import type { ClientJob } from "./client.ts";
import { type ExecutorMeasured, executorEnv, runClientJob, type ThroughputRow } from "./executor.ts";
import { MiB, rate, runNode } from "./measure.ts";
import { startSink } from "./sinks.ts";
import { prepareArchive } from "./source.ts";

export interface OpenBaoBenchOptions {
  /** Secrets to write and the size of each value (bytes). */
  readonly secrets: number;
  readonly valueBytes: number;
  readonly partSize: number;
  readonly concurrency: number;
  readonly log: (line: string) => void;
}

async function inParallel(count: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

function download(url: string, token: string, caPem: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { "x-vault-token": token }, ca: caPem }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`snapshot download: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      pipeline(res, createWriteStream(path)).then(resolve, reject);
    });
    req.on("error", reject);
    req.end();
  });
}

export async function benchOpenBao(options: OpenBaoBenchOptions): Promise<ThroughputRow> {
  const { log } = options;
  const dir = scratchDir("bench-openbao");
  log("openbao: starting a 1-node OpenBao and MinIO");
  const [bao, sink] = await Promise.all([startOpenBao({ nodes: 1 }), startSink("s3")]);
  try {
    const t = Date.now();
    await inParallel(options.secrets, 16, async (i) => {
      await bao.writeSecret(`bench/s${i}`, {
        value: randomBytes(Math.floor(options.valueBytes * 0.75)).toString("base64"),
      });
    });
    log(
      `openbao: wrote ${options.secrets} secrets of ${options.valueBytes} bytes in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    const address = bao.addresses[0] ?? "";
    const snapshotFile = join(dir, "snapshot.snap");
    await download(`${address}/v1/sys/storage/raft/snapshot`, bao.rootToken, bao.caPem, snapshotFile);
    const caFile = join(dir, "ca.crt");
    writeFileSync(caFile, bao.caPem);
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, bao.rootToken);

    const base: Omit<ClientJob, "mode" | "key"> = {
      source: { address, token: bao.rootToken, caPem: bao.caPem },
      sink: sink.info,
      // Unused by these modes except as a type-correct placeholder (no generated archive here).
      plan: prepareArchive(1024),
      partSize: options.partSize,
      concurrency: options.concurrency,
      file: snapshotFile,
    };
    const read = await runClientJob({ ...base, mode: "read", key: "" });
    log(`openbao: (a) snapshot read ${read.mibps.toFixed(0)} MiB/s (${(read.bytes / MiB).toFixed(1)} MiB)`);
    const put = await runClientJob({ ...base, mode: "put-raw", key: "raw/openbao" });
    log(`openbao: (a) raw put ${put.mibps.toFixed(0)} MiB/s`);
    const sdk = await runClientJob({ ...base, mode: "sdk-upload", key: "sdk/openbao" });
    log(`openbao: (b) sdk upload ${sdk.mibps.toFixed(0)} MiB/s`);

    const termination = join(dir, "termination");
    const run = await runNode([join(projectRoot, "src", "cli", "main.ts"), "backup"], {
      ...sink.env,
      CLUSTER_NAME: "bench",
      CLUSTER_NAMESPACE: "bench",
      BACKUP_OPENBAO_ADDRESSES: address,
      BACKUP_CA_FILE: caFile,
      BACKUP_AUTH_METHOD: "token",
      BACKUP_TOKEN_FILE: tokenFile,
      BACKUP_TERMINATION_MESSAGE_PATH: termination,
      BACKUP_PART_SIZE: String(options.partSize),
      BACKUP_CONCURRENCY: String(options.concurrency),
      ...executorEnv(true),
    });
    const result = JSON.parse(readFileSync(termination, "utf8")) as Record<string, unknown>;
    if (run.code !== 0 || result.ok !== true) throw new Error(`executor backup failed: ${JSON.stringify(result)}`);
    const bytes = Number(result.size);
    const ms = Number(result.durationMs);
    const exec: ExecutorMeasured = {
      bytes,
      ms,
      mibps: rate(bytes, ms),
      wallMs: run.endedAt - run.startedAt,
      peakRss: run.memory?.hwm ?? Number.NaN,
      idleRss: Number.NaN,
      key: String(result.key),
    };
    log(`openbao: executor backup ${exec.mibps.toFixed(0)} MiB/s (peak RSS ${(exec.peakRss / MiB).toFixed(0)} MiB)`);
    return {
      provider: "s3",
      op: "backup",
      size: bytes,
      partSize: options.partSize,
      concurrency: options.concurrency,
      executor: [exec],
      sourceLeg: [read],
      sinkLeg: [put],
      minimal: [sdk],
    };
  } finally {
    await sink.stop();
    await bao.stop();
  }
}
