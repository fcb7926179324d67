import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backoffDelay, KeyedBackoff } from "../../../src/runtime/backoff.ts";
import { Queue } from "../../../src/runtime/workqueue.ts";
import { FakeClock, settle } from "./fake-clock.ts";

/** Takes every key that is ready now, without waiting. */
async function drainReady(queue: Queue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) {
    const key = await queue.get();
    if (key === undefined) break;
    keys.push(key);
  }
  return keys;
}

describe("work queue: dedup and ordering", () => {
  test("a key waiting in the queue is there once however often it is added", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    for (const key of ["ns/a", "ns/b", "ns/a", "ns/a", "ns/c", "ns/b"]) queue.add(key);
    assert.equal(queue.len(), 3);
    assert.deepEqual(await drainReady(queue), ["ns/a", "ns/b", "ns/c"]);
  });

  test("get() waits for the next add", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    const pending = queue.get();
    let got: string | undefined;
    void pending.then((key) => {
      got = key;
    });
    await settle();
    assert.equal(got, undefined);
    queue.add("ns/x");
    assert.equal(await pending, "ns/x");
    assert.equal(queue.len(), 0, "handed straight to the waiting worker");
  });
});

describe("work queue: the priority lane", () => {
  test("keys added with priority are handed out before the others, each lane in order", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    for (const key of ["ns/window-1", "ns/window-2", "ns/window-3"]) queue.add(key);
    queue.add("ns/finished-1", { priority: true });
    queue.add("ns/finished-2", { priority: true });
    assert.equal(queue.len(), 5);
    assert.deepEqual(await drainReady(queue), [
      "ns/finished-1",
      "ns/finished-2",
      "ns/window-1",
      "ns/window-2",
      "ns/window-3",
    ]);
  });

  test("a waiting key added again with priority moves ahead once; without priority it is never demoted", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    for (const key of ["ns/a", "ns/b", "ns/c"]) queue.add(key);
    queue.add("ns/c", { priority: true });
    queue.add("ns/c");
    queue.add("ns/c", { priority: true });
    assert.equal(queue.len(), 3, "still once in the queue");
    assert.deepEqual(await drainReady(queue), ["ns/c", "ns/a", "ns/b"]);
    assert.equal(await Promise.race([queue.get(), settle().then(() => "nothing")]), "nothing", "no stale duplicate");
  });

  test("a key added with priority while it is processed goes ahead after done()", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    queue.add("ns/a");
    assert.equal(await queue.get(), "ns/a");
    queue.add("ns/b");
    queue.add("ns/c");
    queue.add("ns/a", { priority: true });
    queue.done("ns/a");
    assert.deepEqual(await drainReady(queue), ["ns/a", "ns/b", "ns/c"]);
  });

  test("a handed-out key queued again without priority takes its place at the back", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    queue.add("ns/a");
    queue.add("ns/b");
    queue.add("ns/b", { priority: true });
    assert.equal(await queue.get(), "ns/b");
    queue.done("ns/b");
    queue.add("ns/b");
    queue.add("ns/c");
    assert.deepEqual(await drainReady(queue), ["ns/a", "ns/b", "ns/c"]);
  });

  test("shutting down without drain drops both lanes", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    queue.add("ns/a");
    queue.add("ns/b", { priority: true });
    await queue.shutDown({ drain: false });
    assert.equal(queue.len(), 0);
    assert.equal(await queue.get(), undefined);
  });
});

describe("work queue: one worker per key", () => {
  test("a key added while processing is queued again only after done()", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    queue.add("ns/a");
    const key = await queue.get();
    assert.equal(key, "ns/a");
    queue.add("ns/a");
    queue.add("ns/a");
    assert.equal(queue.len(), 0, "not handed out while processing");
    assert.equal(queue.processingLen(), 1);
    queue.done("ns/a");
    assert.equal(queue.len(), 1, "queued again once, after done");
    assert.equal(await queue.get(), "ns/a");
    queue.done("ns/a");
    assert.equal(queue.len(), 0);
  });

  test("many workers, many adds: never two workers on one key, every add is followed by a reconcile", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    const active = new Set<string>();
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    let step = 0;
    let overlaps = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        if (active.has(key)) overlaps++;
        active.add(key);
        lastStart.set(key, ++step);
        await settle(1 + (key.length % 3));
        active.delete(key);
        queue.done(key);
      }
    };
    const workers = Array.from({ length: 4 }, () => worker());
    for (let i = 0; i < 400; i++) {
      const key = `ns/k${i % 7}`;
      lastAdd.set(key, ++step);
      queue.add(key);
      if (i % 5 === 0) await settle(1);
    }
    await queue.shutDown({ drain: true });
    await Promise.all(workers);
    assert.equal(overlaps, 0);
    for (const [key, added] of lastAdd) {
      assert.ok((lastStart.get(key) ?? 0) > added, `${key} was processed after its last add`);
    }
  });
});

describe("work queue: rate-limited retries", () => {
  test("backoff doubles per failure, is capped, and restarts after forget", async () => {
    const clock = new FakeClock();
    const queue = new Queue({ clock, backoff: { baseMs: 100, maxMs: 1_000 } });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      queue.addRateLimited("ns/a");
      const due = queue.delayedUntil("ns/a");
      assert.ok(due !== undefined);
      delays.push(due - clock.now());
      await clock.advance(due - clock.now());
      assert.equal(await queue.get(), "ns/a");
      queue.done("ns/a");
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1_000, 1_000]);
    assert.equal(queue.retries("ns/a"), 6);
    queue.forget("ns/a");
    assert.equal(queue.retries("ns/a"), 0);
    queue.addRateLimited("ns/a");
    assert.equal(queue.delayedUntil("ns/a"), clock.now() + 100);
  });

  test("a retried key is not ready before its delay, and exactly at it", async () => {
    const clock = new FakeClock();
    const queue = new Queue({ clock, backoff: { baseMs: 200 } });
    queue.addRateLimited("ns/a");
    await clock.advance(199);
    assert.equal(queue.len(), 0);
    await clock.advance(1);
    assert.equal(queue.len(), 1);
  });

  test("keys back off independently", () => {
    const clock = new FakeClock();
    const queue = new Queue({ clock, backoff: { baseMs: 100 } });
    queue.addRateLimited("ns/a");
    queue.forget("ns/a");
    queue.addRateLimited("ns/a");
    queue.addRateLimited("ns/b");
    assert.equal(queue.retries("ns/a"), 1);
    assert.equal(queue.retries("ns/b"), 1);
  });

  test("backoffDelay: exponential, capped, jitter stays within bounds", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffDelay(n, { baseMs: 500, maxMs: 3_000 })),
      [500, 1_000, 2_000, 3_000, 3_000],
    );
    assert.equal(backoffDelay(10_000, { baseMs: 1, maxMs: 7 }), 7, "no overflow for huge attempt counts");
    for (const random of [0, 0.5, 0.999]) {
      const delay = backoffDelay(2, { baseMs: 1_000, maxMs: 60_000, jitter: 0.2, random: () => random });
      assert.ok(delay >= 1_600 && delay <= 2_400, `${delay}`);
    }
    const keyed = new KeyedBackoff({ baseMs: 10 });
    assert.deepEqual([keyed.next("x"), keyed.next("x"), keyed.next("y")], [10, 20, 10]);
  });
});

describe("work queue: addAfter", () => {
  test("one exact timer per key: the soonest deadline wins, a later one does not postpone it", async () => {
    const clock = new FakeClock();
    const queue = new Queue({ clock });
    queue.addAfter("ns/a", 60_000);
    queue.addAfter("ns/a", 30_000);
    queue.addAfter("ns/a", 90_000);
    assert.equal(clock.pending(), 1, "one timer, no polling");
    assert.deepEqual(clock.pendingDelays(), [30_000]);
    await clock.advance(29_999);
    assert.equal(queue.len(), 0);
    await clock.advance(1);
    assert.deepEqual(await drainReady(queue), ["ns/a"]);
    queue.done("ns/a");
    await clock.advance(120_000);
    assert.equal(queue.len(), 0, "the replaced deadlines do not fire");
    assert.equal(clock.pending(), 0);
  });

  test("a timer firing while the key is processed queues it after done()", async () => {
    const clock = new FakeClock();
    const queue = new Queue({ clock });
    queue.add("ns/a");
    assert.equal(await queue.get(), "ns/a");
    queue.addAfter("ns/a", 1_000);
    await clock.advance(1_000);
    assert.equal(queue.len(), 0);
    queue.done("ns/a");
    assert.equal(queue.len(), 1);
  });

  test("zero or negative delays add at once; delays of different keys are independent", async () => {
    const clock = new FakeClock();
    const queue = new Queue({ clock });
    queue.addAfter("ns/now", 0);
    queue.addAfter("ns/past", -5);
    queue.addAfter("ns/x", 10);
    queue.addAfter("ns/y", 5);
    assert.deepEqual(await drainReady(queue), ["ns/now", "ns/past"]);
    await clock.advance(10);
    assert.deepEqual(await drainReady(queue), ["ns/y", "ns/x"]);
  });
});

describe("work queue: shutdown", () => {
  test("drain: queued keys are still handed out, resolves after the last done(), then get() is undefined", async () => {
    const clock = new FakeClock();
    const queue = new Queue({ clock });
    queue.add("ns/a");
    queue.add("ns/b");
    queue.addAfter("ns/later", 1_000);
    assert.equal(await queue.get(), "ns/a");
    let drained = false;
    const shutdown = queue.shutDown().then(() => {
      drained = true;
    });
    assert.equal(clock.pending(), 0, "delayed keys are cancelled");
    queue.add("ns/new");
    assert.equal(await queue.get(), "ns/b", "queued before shutdown: still handed out");
    queue.done("ns/a");
    await settle();
    assert.equal(drained, false, "ns/b still processing");
    queue.done("ns/b");
    await shutdown;
    assert.equal(drained, true);
    assert.equal(await queue.get(), undefined, "ns/new was ignored");
  });

  test("discard: queued keys are dropped, waiting workers are released, in-flight keys are awaited", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    queue.add("ns/a");
    queue.add("ns/b");
    assert.equal(await queue.get(), "ns/a");
    queue.add("ns/a"); // dirty while processing: must not come back
    const idleWorker = (async () => {
      await queue.get(); // ns/b
      return queue.get(); // waits
    })();
    await settle();
    queue.done("ns/b");
    let drained = false;
    const shutdown = queue.shutDown({ drain: false }).then(() => {
      drained = true;
    });
    assert.equal(await idleWorker, undefined);
    await settle();
    assert.equal(drained, false);
    queue.done("ns/a");
    await shutdown;
    assert.equal(queue.len(), 0);
    assert.equal(await queue.get(), undefined);
  });

  test("shutDown is idempotent and resolves at once when idle", async () => {
    const queue = new Queue({ clock: new FakeClock() });
    await queue.shutDown();
    await queue.shutDown({ drain: false });
    assert.equal(queue.shuttingDown, true);
  });
});
