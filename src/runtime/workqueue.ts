/**
 * The work queue between event handlers and reconcile workers, modelled on client-go's
 * rate-limited delaying queue. It holds keys (`namespace/name`), never objects: a worker
 * reads the current state from the cache when it gets the key (level-based reconciliation).
 *
 * Invariants:
 * - Dedup: a key waiting in the queue is there once, however often it is added.
 * - No two workers hold the same key: a key added while it is being processed is marked
 *   dirty and queued again only when the worker calls `done(key)`.
 * - Fairness: keys are handed out in the order they became ready.
 * - Delays are exact timers, one per key (no polling): `addAfter(key, ms)` keeps the
 *   sooner of the pending and the new deadline, so a later "requeue after" never postpones
 *   an earlier one. A timer that fires adds the key like `add`.
 * - `addRateLimited(key)` delays by the key's exponential backoff (`KeyedBackoff`); each
 *   call without a `forget(key)` in between doubles it. `forget` resets it, nothing else.
 * - After `shutDown()` nothing is accepted: adds are ignored and pending timers are
 *   cancelled. With `drain` (the default) the keys already queued are still handed out;
 *   without it they are dropped. `get()` resolves `undefined` once nothing is left to hand
 *   out, and `shutDown()` resolves once every key handed out has been `done`.
 */
import { type BackoffOptions, KeyedBackoff } from "./backoff.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";

export interface WorkQueue {
  /** Queues `key` now (no-op if it is already queued, or shutting down). */
  add(key: string): void;
  /** Queues `key` after `delayMs`; of several pending delays for one key the soonest wins. */
  addAfter(key: string, delayMs: number): void;
  /** Queues `key` after its next backoff delay (failure count + 1). */
  addRateLimited(key: string): void;
  /** Resets the backoff of `key` (after a success, or when giving up). */
  forget(key: string): void;
  /** Consecutive `addRateLimited` calls for `key` since it was last forgotten. */
  retries(key: string): number;
  /** The next key to process; waits while the queue is empty; `undefined` once shut down and drained. */
  get(): Promise<string | undefined>;
  /** The worker finished `key`; if it was added meanwhile it is queued again. */
  done(key: string): void;
  /** Keys ready to be handed out. */
  len(): number;
  /** Keys waiting for a timer (`addAfter`, `addRateLimited`). */
  delayedLen(): number;
  /** When `key` is due from a timer, in clock milliseconds, if one is pending. */
  delayedUntil(key: string): number | undefined;
  /** Keys handed out and not yet `done`. */
  processingLen(): number;
  readonly shuttingDown: boolean;
  /** See the module doc; resolves when every handed-out key is `done`. */
  shutDown(options?: { drain?: boolean }): Promise<void>;
}

export interface WorkQueueOptions {
  readonly clock?: Clock;
  readonly backoff?: BackoffOptions;
}

interface Delayed {
  readonly at: number;
  readonly timer: Timer;
}

export class Queue implements WorkQueue {
  readonly #clock: Clock;
  readonly #backoff: KeyedBackoff;
  /** Keys ready to hand out, in order; every one is also in #dirty. */
  #queue: string[] = [];
  /** Keys that need processing (queued, or added again while processing). */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #delayed = new Map<string, Delayed>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  #shuttingDown = false;
  #drained: (() => void) | undefined;
  #drainedPromise: Promise<void> | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#backoff = new KeyedBackoff(options.backoff);
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // queued again by done()
    this.#push(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const at = this.#clock.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return; // the sooner deadline wins
      pending.timer.cancel();
    }
    const timer = this.#clock.setTimer(() => {
      if (this.#delayed.get(key)?.timer !== timer) return;
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.#delayed.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    this.addAfter(key, this.#backoff.next(key));
  }

  forget(key: string): void {
    this.#backoff.forget(key);
  }

  retries(key: string): number {
    return this.#backoff.failures(key);
  }

  get(): Promise<string | undefined> {
    const key = this.#queue.shift();
    if (key !== undefined) return Promise.resolve(this.#handOut(key));
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    if (!this.#processing.delete(key)) return;
    if (this.#dirty.has(key)) this.#push(key);
    this.#checkDrained();
  }

  len(): number {
    return this.#queue.length;
  }

  delayedLen(): number {
    return this.#delayed.size;
  }

  delayedUntil(key: string): number | undefined {
    return this.#delayed.get(key)?.at;
  }

  processingLen(): number {
    return this.#processing.size;
  }

  shutDown(options: { drain?: boolean } = {}): Promise<void> {
    if (this.#drainedPromise === undefined) {
      this.#shuttingDown = true;
      for (const { timer } of this.#delayed.values()) timer.cancel();
      this.#delayed.clear();
      if (options.drain === false) {
        // Queued keys are dropped, and keys being processed are not queued again by done().
        this.#dirty.clear();
        this.#queue = [];
      }
      this.#drainedPromise = new Promise((resolve) => {
        this.#drained = resolve;
      });
      // Workers waiting on an empty queue get nothing more.
      if (this.#queue.length === 0) for (const waiter of this.#waiters.splice(0)) waiter(undefined);
      this.#checkDrained();
    }
    return this.#drainedPromise;
  }

  #push(key: string): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(this.#handOut(key));
    else this.#queue.push(key);
  }

  #handOut(key: string): string {
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }

  #checkDrained(): void {
    if (!this.#shuttingDown || this.#processing.size > 0 || this.#queue.length > 0) return;
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    this.#drained?.();
  }
}
