/**
 * How part-upload.ts cuts a stream into parts and what it hands each provider: the pure
 * mechanism, with a PartStore that records what it is given. What the stores accept (MinIO
 * checks each part's CRC32 against the bytes it received) is tested on the wire in
 * test/storage/s3-multipart.test.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { type PartStore, uploadInParts } from "../../../src/storage/part-upload.ts";

interface Sent {
  readonly partNumber: number;
  readonly bytes: Buffer;
  readonly last: boolean;
  readonly crc32: number | undefined;
}

function recordingStore(): { store: PartStore<number>; sent: Sent[]; committed: number[][] } {
  const sent: Sent[] = [];
  const committed: number[][] = [];
  const store: PartStore<number> = {
    single: async () => {
      throw new Error("not expected: one part only");
    },
    start: async () => ({
      sendPart: async (partNumber, body, _stopped, last, crc) => {
        // Copied now: the buffer is refilled once this settles.
        sent.push({ partNumber, bytes: Buffer.from(body), last, crc32: crc });
        await new Promise((resolve) => setImmediate(resolve));
        return partNumber;
      },
      complete: async (parts) => {
        committed.push([...parts]);
      },
      abort: async () => {},
    }),
  };
  return { store, sent, committed };
}

async function* unevenly(data: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    yield data.subarray(offset, offset + size);
    offset += size;
  }
}

describe("uploadInParts", () => {
  const partSize = 64 * 1024;
  const data = randomBytes(5 * partSize + 12_345);

  test("with crc32, every part's CRC32 is that of its own bytes, whatever the chunks", async () => {
    for (const sizes of [[1, 7, 16_384, 70_000, 3], [partSize], [3 * partSize + 1]]) {
      const { store, sent, committed } = recordingStore();
      await uploadInParts(unevenly(data, sizes), { partSize, concurrency: 2, crc32: true }, store);
      assert.deepEqual(
        sent.map((s) => s.bytes.length),
        [partSize, partSize, partSize, partSize, partSize, 12_345],
      );
      assert.ok(Buffer.concat(sent.map((s) => s.bytes)).equals(data));
      for (const s of sent) assert.equal(s.crc32, crc32(s.bytes), `part ${s.partNumber}, chunks ${sizes.join(",")}`);
      assert.deepEqual(
        sent.map((s) => s.last),
        [false, false, false, false, false, true],
      );
      assert.deepEqual(committed, [[1, 2, 3, 4, 5, 6]]);
    }
  });

  test("without crc32, no CRC32 is taken", async () => {
    const { store, sent } = recordingStore();
    await uploadInParts(unevenly(data, [10_000]), { partSize, concurrency: 3 }, store);
    assert.equal(sent.length, 6);
    assert.ok(sent.every((s) => s.crc32 === undefined));
  });

  test("a stream of exactly whole parts: the last full part is the last one", async () => {
    const whole = data.subarray(0, 3 * partSize);
    const { store, sent } = recordingStore();
    await uploadInParts(unevenly(whole, [5000]), { partSize, concurrency: 1, crc32: true }, store);
    assert.deepEqual(
      sent.map((s) => [s.bytes.length, s.last, s.crc32 === crc32(s.bytes)]),
      [
        [partSize, false, true],
        [partSize, false, true],
        [partSize, true, true],
      ],
    );
  });
});
