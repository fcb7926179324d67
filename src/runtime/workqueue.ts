/**
 * The work queue between event handlers and reconcile workers, modelled on client-go's
 * rate-limited delaying queue. It holds keys (`namespace/name`), never objects: a worker
 * reads the current state from the cache when it gets the key (level-based reconciliation).
 *
 * Invariants:
 * - Dedup: a key waiting in the queue is there once, however often it is added.
 * - No two workers hold the same key: a key added while it is being processed is marked
 *   dirty and queued again only when the worker calls `done(key)`.
 * - Fairness: keys are handed out in the order they became ready, within two lanes: keys
 *   added with `priority` (e.g. a Job finished: a result to record) go before the others
 *   (e.g. a schedule window opening for a thousand clusters at once). Adding a waiting key
 *   with priority moves it to the priority lane; adding it without never demotes it.
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
  /** Queues `key` now (no-op if it is already queued, or shutting down); see the lanes above. */
  add(key: string, options?: { readonly priority?: boolean }): void;
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

type Lane = "priority" | "normal";

/** A position in a lane; stale once the key was handed out or moved (its `seq` no longer matches). */
interface Slot {
  readonly key: string;
  readonly seq: number;
}

interface Delayed {
  readonly at: number;
  readonly timer: Timer;
}

export class Queue implements WorkQueue {
  readonly #clock: Clock;
  readonly #backoff: KeyedBackoff;
  /** Slots of keys ready to hand out, in order, per lane (may hold stale slots). */
  #lanes: Record<Lane, Slot[]> = { priority: [], normal: [] };
  /** Keys ready to hand out: their lane and current slot; every one is also in #dirty. */
  readonly #ready = new Map<string, { lane: Lane; seq: number }>();
  #seq = 0;
  /** Keys added with priority while being processed: queued in the priority lane by done(). */
  readonly #priorityWhenDone = new Set<string>();
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

  add(key: string, options: { readonly priority?: boolean } = {}): void {
    if (this.#shuttingDown) return;
    const lane: Lane = options.priority === true ? "priority" : "normal";
    if (this.#dirty.has(key)) {
      if (lane === "normal") return;
      if (this.#processing.has(key)) this.#priorityWhenDone.add(key);
      else if (this.#ready.get(key)?.lane === "normal") this.#push(key, lane); // move ahead
      return;
    }
    this.#dirty.add(key);
    if (this.#processing.has(key)) {
      // queued again by done()
      if (lane === "priority") this.#priorityWhenDone.add(key);
      return;
    }
    this.#push(key, lane);
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
    const key = this.#shiftReady();
    if (key !== undefined) return Promise.resolve(this.#handOut(key));
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    if (!this.#processing.delete(key)) return;
    const priority = this.#priorityWhenDone.delete(key);
    if (this.#dirty.has(key)) this.#push(key, priority ? "priority" : "normal");
    this.#checkDrained();
  }

  len(): number {
    return this.#ready.size;
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
        this.#priorityWhenDone.clear();
        this.#ready.clear();
        this.#lanes = { priority: [], normal: [] };
      }
      this.#drainedPromise = new Promise((resolve) => {
        this.#drained = resolve;
      });
      // Workers waiting on an empty queue get nothing more.
      if (this.#ready.size === 0) for (const waiter of this.#waiters.splice(0)) waiter(undefined);
      this.#checkDrained();
    }
    return this.#drainedPromise;
  }

  #push(key: string, lane: Lane): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter(this.#handOut(key));
      return;
    }
    const seq = ++this.#seq;
    this.#ready.set(key, { lane, seq });
    this.#lanes[lane].push({ key, seq });
  }

  /** The first live slot's key, priority lane first; stale slots are dropped on the way. */
  #shiftReady(): string | undefined {
    for (const lane of ["priority", "normal"] as const) {
      const slots = this.#lanes[lane];
      for (let slot = slots.shift(); slot !== undefined; slot = slots.shift()) {
        if (this.#ready.get(slot.key)?.seq === slot.seq) return slot.key;
      }
    }
    return undefined;
  }

  #handOut(key: string): string {
    this.#ready.delete(key);
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }

  #checkDrained(): void {
    if (!this.#shuttingDown || this.#processing.size > 0 || this.#ready.size > 0) return;
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    this.#drained?.();
  }
}
