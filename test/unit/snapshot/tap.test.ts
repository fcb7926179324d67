import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { createTap } from "../../../src/snapshot/tap.ts";

function collect(): { sink: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return { sink, chunks };
}

const cases: { name: string; chunks: Buffer[] }[] = [
  { name: "no bytes", chunks: [] },
  { name: "one chunk", chunks: [Buffer.from("hello")] },
  { name: "many uneven chunks", chunks: [randomBytes(1), randomBytes(65536), Buffer.alloc(0), randomBytes(777)] },
  { name: "a large stream", chunks: Array.from({ length: 64 }, () => randomBytes(64 * 1024)) },
];

for (const c of cases) {
  test(`tap counts, hashes and passes through unchanged: ${c.name}`, async () => {
    const whole = Buffer.concat(c.chunks);
    const tap = createTap();
    const { sink, chunks } = collect();
    await pipeline(Readable.from(c.chunks), tap, sink);
    assert.equal(tap.bytes, whole.length);
    assert.equal(tap.sha256(), createHash("sha256").update(whole).digest("hex"));
    assert.equal(tap.sha256("base64"), createHash("sha256").update(whole).digest("base64"));
    assert.ok(Buffer.concat(chunks).equals(whole));
    assert.equal(tap.finished, true);
  });
}

test("tap reports bytes while streaming but refuses a digest of part of the stream", async () => {
  const tap = createTap();
  const { sink } = collect();
  tap.pipe(sink);
  tap.write(Buffer.alloc(10));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(tap.bytes, 10);
  assert.equal(tap.finished, false);
  assert.throws(() => tap.sha256(), /has not ended/);
  tap.end(Buffer.alloc(5));
  await new Promise((resolve) => sink.on("finish", resolve));
  assert.equal(tap.bytes, 15);
  assert.equal(tap.sha256(), createHash("sha256").update(Buffer.alloc(15)).digest("hex"));
});

test("a tap on a stream that fails never yields a digest (trap 3: no hash of a truncated stream)", async () => {
  const tap = createTap();
  const { sink } = collect();
  const source = Readable.from(
    (function* () {
      yield Buffer.alloc(100);
      throw new Error("connection dropped");
    })(),
  );
  await assert.rejects(pipeline(source, tap, sink), /connection dropped/);
  assert.equal(tap.bytes, 100);
  assert.throws(() => tap.sha256(), /has not ended/);
});
