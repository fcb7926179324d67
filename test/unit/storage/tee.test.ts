/**
 * storage/tee.ts: one stream read once, every chunk to every branch (the same buffers), the
 * source paced by the slowest branch, a branch that stops never holding back the others, and
 * a source failure reaching every branch.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { tee } from "../../../src/storage/tee.ts";

/** A source of `count` chunks that records how many were pulled. */
function source(
  count: number,
  failAt?: number,
): { iterable: AsyncIterable<Uint8Array>; pulled(): number; closed(): boolean } {
  let pulled = 0;
  let closed = false;
  const iterable: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]() {
      return {
        async next() {
          if (failAt !== undefined && pulled === failAt) throw new Error("source broke");
          if (pulled >= count) return { value: undefined, done: true };
          pulled++;
          return { value: Buffer.from([pulled]), done: false };
        },
        async return() {
          closed = true;
          return { value: undefined, done: true };
        },
      };
    },
  };
  return { iterable, pulled: () => pulled, closed: () => closed };
}

async function drain(branch: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of branch) out.push(chunk);
  return out;
}

describe("tee", () => {
  test("every branch gets every chunk, the very same buffers, in order", async () => {
    const s = source(5);
    const { branches } = tee(s.iterable, 3);
    const results = await Promise.all(branches.map(drain));
    for (const r of results)
      assert.deepEqual(
        r.map((c) => c[0]),
        [1, 2, 3, 4, 5],
      );
    for (let i = 0; i < 5; i++) {
      assert.equal(results[0]?.[i], results[1]?.[i], "no copies");
      assert.equal(results[0]?.[i], results[2]?.[i]);
    }
    assert.equal(s.pulled(), 5, "the source is read once");
  });

  test("the source goes at the pace of the slowest branch: one chunk ahead at most", async () => {
    const s = source(10);
    const { branches } = tee(s.iterable, 2);
    const fast = branches[0]?.[Symbol.asyncIterator]();
    const slow = branches[1]?.[Symbol.asyncIterator]();
    assert.ok(fast && slow);
    await fast.next();
    // The fast branch asks again; the slow one has not taken chunk 1: nothing more is pulled.
    const waiting = fast.next();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(s.pulled(), 1);
    await slow.next();
    assert.equal((await waiting).value?.[0], 2);
    assert.equal(s.pulled(), 2);
  });

  test("a branch that stops (return, or detach after its upload failed) never holds back the others", async () => {
    const s = source(4);
    const stopped = tee(s.iterable, 3);
    const first = stopped.branches[0]?.[Symbol.asyncIterator]();
    await first?.next();
    await first?.return?.();
    stopped.detach(2); // its consumer failed without closing the iterator
    assert.deepEqual(
      (await drain(stopped.branches[1] as AsyncIterable<Uint8Array>)).map((c) => c[0]),
      [1, 2, 3, 4],
    );
    assert.equal(s.closed(), false, "the source ran to its end");
  });

  test("when every branch stops, the source is closed", async () => {
    const s = source(100);
    const { branches, detach } = tee(s.iterable, 2);
    await branches[0]?.[Symbol.asyncIterator]().next();
    detach(0);
    detach(1);
    assert.equal(s.closed(), true);
    assert.ok(s.pulled() < 100);
  });

  test("a source failure reaches every live branch as the same error", async () => {
    const s = source(10, 3);
    const { branches } = tee(s.iterable, 3);
    const errors = await Promise.all(
      branches.map((b) =>
        drain(b).then(
          () => undefined,
          (err: unknown) => err,
        ),
      ),
    );
    for (const e of errors) assert.equal((e as Error).message, "source broke");
    assert.equal(errors[0], errors[1]);
  });

  test("at least one branch", () => {
    assert.throws(() => tee(source(1).iterable, 0), RangeError);
  });
});
