/** The per-byte floor the bench compares the executor with (bench/floor.ts): what it adds up. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ThroughputRow } from "../../../bench/executor.ts";
import { checksFloor, floorTable } from "../../../bench/floor.ts";

const GiB = 1024 ** 3;
const primitives = { sha256: 0.6, crc32: 0.2, gunzip: 0.8, copy: 0.05 };
const leg = (cpuSeconds: number) => ({ bytes: GiB, ms: 1000, mibps: 1024, cpuMs: cpuSeconds * 1000 });

test("the checks: a SHA-256 pass and a gunzip; a backup also a second SHA-256, and its parts a copy and a CRC32", () => {
  assert.equal(checksFloor("restore", primitives), 0.6 + 0.8);
  assert.equal(checksFloor("backup", primitives), 2 * 0.6 + 0.8 + 0.2 + 0.05);
});

test("the floor of a row is its (a) legs plus the checks, and the executor is read as a ratio to it", () => {
  const row: ThroughputRow = {
    provider: "s3",
    op: "backup",
    size: GiB,
    partSize: 10 * 1024 * 1024,
    concurrency: 3,
    executor: [{ ...leg(5), wallMs: 1000, peakRss: 1, idleRss: 1, key: "k" }],
    sourceLeg: [leg(1.4)],
    sinkLeg: [leg(0.3)],
    minimal: [],
  };
  const lines = floorTable([row, { ...row, op: "restore", sourceLeg: [] }], primitives).split("\n");
  // Header, separator, one row: a row without (a)'s legs has no floor.
  assert.equal(lines.filter((l) => l.startsWith("|")).length, 3);
  const cells = (lines.find((l) => l.startsWith("| s3")) ?? "").split("|").map((c) => c.trim());
  assert.deepEqual(cells.slice(1, -1), ["s3", "backup", "1 GiB", "1.40 / 0.30", "2.25", "3.95", "5.00", "1.27×"]);
});
