/**
 * The upload guard shared by every provider (src/storage/upload.ts), without a server: its
 * `send` here is a plain sink that reads the body the way an SDK does. What is checked is the
 * guard's own logic: which error wins, that a bad stream errors *before* its end (so no SDK
 * can commit it), the part limit, contentLength, and abort while the source is silent.
 * The same paths against real stores are in contract.ts.
 */
import assert from "node:assert/strict";
import type { Readable } from "node:stream";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { StorageError } from "../../src/storage/errors.ts";
import { type StreamUploadParams, streamUpload } from "../../src/storage/upload.ts";

interface SinkResult {
  bytes: number;
  ended: boolean;
}

/** Reads the body to the end, as an SDK would; records whether it saw a clean end. */
function sink(out: SinkResult): (body: Readable) => Promise<void> {
  return async (body) => {
    for await (const chunk of body) out.bytes += (chunk as Buffer).length;
    out.ended = true;
  };
}

async function* chunks(count: number, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) yield new Uint8Array(size).fill(i);
}

function params(
  overrides: Partial<StreamUploadParams> & Pick<StreamUploadParams, "source" | "send">,
): StreamUploadParams {
  return {
    provider: "s3",
    key: "k",
    options: {},
    plan: { partSize: 100, maxBytes: 1_000_000 },
    discard: async () => {},
    toError: (err) => new StorageError("Other", `wrapped: ${String(err)}`, { cause: err }),
    ...overrides,
  };
}

describe("streamUpload guard", () => {
  test("passes every byte through and returns the count", async () => {
    const out = { bytes: 0, ended: false };
    const n = await streamUpload(params({ source: chunks(10, 1000), send: sink(out) }));
    assert.equal(n, 10_000);
    assert.deepEqual(out, { bytes: 10_000, ended: true });
  });

  test("a failing source rejects with the source's own error, never a clean end", async () => {
    const boom = new Error("snapshot stream broke");
    async function* source(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(500);
      throw boom;
    }
    const out = { bytes: 0, ended: false };
    await assert.rejects(streamUpload(params({ source: source(), send: sink(out) })), (err) => err === boom);
    assert.equal(out.ended, false);
  });

  test("an unknown-size stream is refused before it passes partSize × maxParts", async () => {
    const out = { bytes: 0, ended: false };
    await assert.rejects(
      streamUpload(params({ source: chunks(20, 10), plan: { partSize: 10, maxBytes: 100 }, send: sink(out) })),
      (err) => err instanceof StorageError && err.code === "TooLarge" && /raise target\.partSize/.test(err.message),
    );
    assert.ok(out.bytes <= 100, `sink saw ${out.bytes} bytes`);
    assert.equal(out.ended, false);
  });

  test("more or fewer bytes than contentLength fail before the end", async () => {
    for (const [count, declared] of [
      [5, 400],
      [3, 400],
    ] as const) {
      const out = { bytes: 0, ended: false };
      await assert.rejects(
        streamUpload(params({ source: chunks(count, 100), options: { contentLength: declared }, send: sink(out) })),
        (err) => err instanceof StorageError && err.code === "SizeMismatch",
      );
      assert.equal(out.ended, false, `${count * 100} bytes declared as ${declared}`);
    }
  });

  test("an abort stops a silent source, releases it, and rejects with Aborted", async () => {
    let released = false;
    const source: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<Uint8Array>>(() => {}),
        return: async () => {
          released = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const controller = new AbortController();
    const out = { bytes: 0, ended: false };
    const started = Date.now();
    setTimeout(() => controller.abort(new Error("deadline")), 100);
    await assert.rejects(
      streamUpload(params({ source, options: { signal: controller.signal }, send: sink(out) })),
      (err) => err instanceof StorageError && err.code === "Aborted",
    );
    assert.ok(Date.now() - started < 2000);
    await sleep(10);
    assert.equal(released, true);
    assert.equal(out.ended, false);
  });

  test("a store failure is classified by the provider's toError", async () => {
    const failure = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    await assert.rejects(
      streamUpload(
        params({
          source: chunks(3, 10),
          send: async () => {
            throw failure;
          },
        }),
      ),
      (err) => err instanceof StorageError && err.cause === failure,
    );
  });

  test("an SDK that finishes without reading to the end is a failure, and the object is discarded", async () => {
    let discarded = false;
    await assert.rejects(
      streamUpload(
        params({
          source: chunks(10, 10),
          send: async (body) => {
            for await (const _ of body) break;
          },
          discard: async () => {
            discarded = true;
          },
        }),
      ),
      (err) => err instanceof StorageError && /before the source ended/.test(err.message),
    );
    assert.equal(discarded, true);
  });
});

describe("streamUpload guard memory", () => {
  test("holds no chunk once passed on, with or without a signal (regression: Promise.race kept every chunk)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    for (const signal of [undefined, new AbortController().signal]) {
      gc();
      const before = process.memoryUsage().arrayBuffers;
      let peak = before;
      await streamUpload(
        params({
          source: (async function* () {
            for (let i = 0; i < 1024; i++) yield new Uint8Array(64 * 1024);
          })(),
          options: signal ? { signal } : {},
          plan: { partSize: 8 * 1024 * 1024, maxBytes: Number.POSITIVE_INFINITY },
          send: async (body) => {
            let n = 0;
            for await (const _ of body) {
              if (++n % 128 === 0) {
                gc();
                peak = Math.max(peak, process.memoryUsage().arrayBuffers);
              }
            }
          },
        }),
      );
      assert.ok(peak - before < 24 * 1024 * 1024, `64 MiB through the guard held ${(peak - before) >> 20} MiB`);
    }
  });
});

test("an abort fired while the source produces a chunk stops the stream at that chunk", async () => {
  const controller = new AbortController();
  let produced = 0;
  async function* source(): AsyncGenerator<Uint8Array> {
    for (;;) {
      produced++;
      if (produced === 3) controller.abort();
      yield new Uint8Array(10);
    }
  }
  await assert.rejects(
    streamUpload(
      params({ source: source(), options: { signal: controller.signal }, send: sink({ bytes: 0, ended: false }) }),
    ),
    (err) => err instanceof StorageError && err.code === "Aborted",
  );
  assert.ok(produced <= 4, `the source was read ${produced} times`);
});
