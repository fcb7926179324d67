/**
 * Bounded memory (SPEC §4): uploading 1 GiB keeps the process's resident memory growth near
 * `partSize × (concurrency + 2)`, whatever the size, for every provider. The upload runs in a
 * child process (memory-child.ts) so the measurement is that of one upload, not of the test
 * runner. Garbage is collected before each sample (every 100 ms), so the figure is close to
 * what the upload holds rather than what V8 has yet to collect (see memory-child.ts).
 *
 * Measured here (partSize 8 MiB, concurrency 3, bound without allowance 40 MiB; 2026-12-06):
 * S3 53 MiB and Azure 55 MiB (both on part-upload.ts: `concurrency + 1` pooled part buffers,
 * 32 MiB, plus the SDK's and the sockets' own); GCS 27 MiB with the library's resumable upload,
 * 16 MiB (2026-12-07) with gcs/resumable.ts on part-upload.ts (two part buffers: a resumable
 * session takes one chunk at a time).
 * The allowance covers the SDKs, lazily swept buffers and allocator slack; a leak that grows
 * with the object (like the one upload-guard.test.ts guards against) exceeds it many times over.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { superviseServers } from "../servers/process.ts";
import { startStorageServer, storageProviders } from "../servers/storage.ts";

superviseServers();

const MiB = 1024 * 1024;
const partSize = 8 * MiB;
const concurrency = 3;
const size = 1024 * MiB;
/** Beyond the parts themselves: SDK chunking copies, lazily swept buffers, malloc arenas. */
const allowance = 64 * MiB;
const bound = partSize * (concurrency + 2) + allowance;

interface Measurement {
  bytes: number;
  stored: number;
  buffersGrowth: number;
  seconds: number;
  baselineRss: number;
  peakRss: number;
  growth: number;
  partSize: number;
}

function runChild(spec: unknown, credentials: unknown): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "--expose-gc",
        join(import.meta.dirname, "memory-child.ts"),
        JSON.stringify(spec),
        JSON.stringify(credentials),
        String(size),
        "live",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`memory child exited ${code}:\n${err}`));
      else resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Measurement);
    });
  });
}

describe("memory stays bounded while uploading 1 GiB", () => {
  for (const provider of storageProviders) {
    test(`${provider}: RSS growth ≤ partSize × (concurrency + 2) + ${allowance / MiB} MiB`, async () => {
      const server = await startStorageServer(provider, { name: `${provider}-memory` });
      try {
        await server.createBucket("memory");
        const m = await runChild(server.target("memory", { partSize, concurrency }), server.credentials);
        process.stdout.write(
          `# ${provider}: 1 GiB in ${m.seconds.toFixed(1)} s (${(size / MiB / m.seconds).toFixed(0)} MiB/s); ` +
            `RSS ${(m.baselineRss / MiB).toFixed(0)} → ${(m.peakRss / MiB).toFixed(0)} MiB, ` +
            `growth ${(m.growth / MiB).toFixed(1)} MiB, Buffers ${(m.buffersGrowth / MiB).toFixed(1)} MiB ` +
            `= ${(m.buffersGrowth / partSize).toFixed(1)} × partSize ` +
            `(partSize ${partSize / MiB} MiB, concurrency ${concurrency})\n`,
        );
        assert.equal(m.bytes, size);
        assert.equal(m.stored, size);
        assert.ok(m.growth <= bound, `RSS grew by ${(m.growth / MiB).toFixed(1)} MiB, more than ${bound / MiB} MiB`);
      } finally {
        await server.stop();
      }
    });
  }
});
