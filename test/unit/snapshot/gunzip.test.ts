import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { SyncGunzip } from "../../../src/snapshot/gunzip.ts";

/** Decompresses `input` fed in `chunk`-byte pieces; returns what came out and the decompressor. */
function run(
  input: Buffer,
  chunk: number,
  outputBytes?: number,
): { out: Buffer; gunzip: SyncGunzip; pieces: number[] } {
  const parts: Buffer[] = [];
  const pieces: number[] = [];
  const gunzip = new SyncGunzip((bytes) => {
    pieces.push(bytes.length);
    parts.push(Buffer.from(bytes));
  }, outputBytes);
  for (let i = 0; i < input.length; i += chunk) gunzip.write(input.subarray(i, i + chunk));
  gunzip.end();
  return { out: Buffer.concat(parts), gunzip, pieces };
}

describe("SyncGunzip", () => {
  const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 7)]);
  const gz = gzipSync(data);

  test("decompresses what gzip wrote, whatever the input and output sizes", () => {
    for (const [chunk, outputBytes] of [
      [1, 1],
      [7, 4096],
      [gz.length, 1 << 20],
      [16_384, 256 * 1024],
    ] as const) {
      const { out, gunzip, pieces } = run(gz, chunk, outputBytes);
      assert.ok(out.equals(data), `chunk ${chunk}, output ${outputBytes}`);
      assert.equal(gunzip.bytesWritten, gz.length);
      assert.ok(
        pieces.every((n) => n <= outputBytes),
        "never more than the output buffer at once",
      );
    }
  });

  test("hands out views of one reused buffer: what is kept must be copied", () => {
    const views: Buffer[] = [];
    const gunzip = new SyncGunzip((bytes) => views.push(bytes), 4096);
    gunzip.write(gz);
    gunzip.end();
    assert.ok(views.length > 2);
    assert.equal(views[0]?.buffer, views[1]?.buffer);
  });

  test("concatenated gzip members come out one after another", () => {
    const second = Buffer.from("second member");
    const { out } = run(Buffer.concat([gz, gzipSync(second)]), 5000);
    assert.ok(out.equals(Buffer.concat([data, second])));
  });

  test("damaged data throws zlib's error with its code", () => {
    const damaged = Buffer.from(gz);
    damaged[10] = 0xff; // the first deflate block header: an invalid block type
    assert.throws(() => run(damaged, 1024), { code: "Z_DATA_ERROR" });
  });

  test("a damaged checksum fails at the end of the data", () => {
    const damaged = Buffer.from(gz);
    const crcAt = damaged.length - 8;
    damaged[crcAt] = (damaged[crcAt] ?? 0) ^ 1;
    assert.throws(() => run(damaged, 1024), { code: "Z_DATA_ERROR" });
  });

  test("data cut short throws Z_BUF_ERROR from end, an empty stream too", () => {
    assert.throws(() => run(gz.subarray(0, gz.length - 5), 1024), { code: "Z_BUF_ERROR" });
    assert.throws(() => run(Buffer.alloc(0), 1), { code: "Z_BUF_ERROR" });
  });

  test("zeros after the last member are left unconsumed", () => {
    const { out, gunzip } = run(Buffer.concat([gz, Buffer.alloc(100)]), 3000);
    assert.ok(out.equals(data));
    assert.equal(gunzip.bytesWritten, gz.length);
    assert.equal(gunzip.ended, true);
  });

  test("other bytes after the last member are read as a damaged next member", () => {
    assert.throws(() => run(Buffer.concat([gz, Buffer.from("not gzip")]), 3000), { code: "Z_DATA_ERROR" });
  });

  test("what the output callback throws comes out of write", () => {
    const gunzip = new SyncGunzip(() => {
      throw new Error("tar reader refused");
    });
    assert.throws(() => gunzip.write(gz), /tar reader refused/);
    gunzip.close();
  });
});
