/**
 * A manual clock for unit tests of timer-driven code (work-queue delays, backoff, leader
 * election). Time moves only through `advance`, which fires due timers in deadline order and
 * lets the promise chains they start settle before moving on.
 */
import type { Clock, Timer } from "../../../src/runtime/clock.ts";

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Lets every queued microtask and already-due macrotask run (promise chains settle). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<Pending>();

  constructor(start = Date.parse("2026-01-01T00:00:00Z")) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    const pending: Pending = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#timers.add(pending);
    return { cancel: () => this.#timers.delete(pending) };
  }

  /** Timers not yet fired or cancelled. */
  pending(): number {
    return this.#timers.size;
  }

  /** Deadlines of the pending timers, soonest first, relative to now. */
  pendingDelays(): number[] {
    return [...this.#timers].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      const next = [...this.#timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.#timers.delete(next);
      this.#now = next.at;
      next.fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}
