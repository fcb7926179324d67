/**
 * A controller: informer events → keys in a work queue → N workers calling one `Reconciler`.
 *
 * The whole contract with product code is `Reconciler.reconcile(key)`: read the current
 * state (from the caches or the API server), make the world match, and
 * - return `{ requeueAfterMs }` to be called again for this key after that delay (an exact
 *   timer, e.g. the next schedule window; of several pending requeues the soonest wins);
 * - return nothing when done until the next event;
 * - throw to be retried with per-key exponential backoff (transient errors, conflicts);
 * - throw a `TerminalError` when retrying cannot help: it is logged, counted, passed to
 *   `onTerminalError`, and the key is not retried until its next event.
 *
 * Invariants:
 * - Level-based: handlers enqueue keys, never objects; many events for one key collapse
 *   into one reconcile of the latest state.
 * - One key is never reconciled by two workers at once (the queue guarantees it); different
 *   keys run concurrently on up to `workers` workers.
 * - Success (with or without requeue) and terminal errors reset the key's backoff.
 * - Workers start only after every watched informer has synced, so a reconcile never sees
 *   a half-filled cache. Handlers are attached at start with a replay of the cache, so every
 *   existing object is reconciled once when the controller starts (e.g. on becoming leader).
 * - `start(signal)` resolves after `signal` aborts and every in-flight reconcile has
 *   returned; queued keys are dropped then (the next leader reconciles everything anyway).
 *   The signal passed to `reconcile` aborts at the same moment. A controller starts once.
 */
import type { Registry } from "prom-client";
import { componentLogger, errorFields, type Logger, silentLogger } from "../observability/logger.ts";
import { type RuntimeMetrics, runtimeMetrics } from "../observability/metrics.ts";
import type { BackoffOptions } from "./backoff.ts";
import { type Clock, systemClock } from "./clock.ts";
import { type Informer, type KubeObject, objectKey } from "./informer.ts";
import { Queue, type WorkQueue } from "./workqueue.ts";

export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (0: at once). */
  readonly requeueAfterMs?: number;
}

export interface Reconciler {
  /** `key` is `namespace/name`; `signal` aborts when the controller stops (shutdown, leadership lost). */
  // biome-ignore lint/suspicious/noConfusingVoidType: lets `async reconcile(): Promise<void>` implement it
  reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | void>;
}

/** A failure retrying cannot fix (an invalid spec, a foreign object in the way): not retried. */
export class TerminalError extends Error {
  readonly terminal = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TerminalError";
  }
}

/** True for a `TerminalError`, also one from another copy of this module. */
export function isTerminalError(err: unknown): err is TerminalError {
  return err instanceof TerminalError || (err instanceof Error && (err as { terminal?: unknown }).terminal === true);
}

/** Maps an object of a watched resource to the keys to reconcile (none, one or several). */
export type MapFn<T> = (object: T) => Iterable<string> | string | undefined;

/** The object's own key: for the controller's primary resource. */
export const enqueueObject: MapFn<KubeObject> = (object) => objectKey(object);

/**
 * The keys of the object's owners of `kind` (and, if given, API group), same namespace:
 * a change to a Job enqueues the OpenBaoCluster that owns it.
 */
export function enqueueOwner(owner: { kind: string; group?: string; controllerOnly?: boolean }): MapFn<KubeObject> {
  return (object) => {
    const namespace = object.metadata?.namespace;
    const keys: string[] = [];
    for (const ref of object.metadata?.ownerReferences ?? []) {
      if (ref.kind !== owner.kind) continue;
      if (owner.group !== undefined && groupOf(ref.apiVersion) !== owner.group) continue;
      if (owner.controllerOnly && ref.controller !== true) continue;
      keys.push(namespace ? `${namespace}/${ref.name}` : ref.name);
    }
    return keys;
  };
}

/** The key named by a label, same namespace: a Pod labelled `job-name=x` enqueues `ns/x`. */
export function enqueueByLabel(label: string): MapFn<KubeObject> {
  return (object) => {
    const value = object.metadata?.labels?.[label];
    if (!value) return undefined;
    const namespace = object.metadata?.namespace;
    return namespace ? `${namespace}/${value}` : value;
  };
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

export interface ControllerOptions {
  /** Names the queue, the logs and the metrics (`controller="backup"`). */
  readonly name: string;
  readonly reconciler: Reconciler;
  /** Concurrent reconciles of different keys; default 1. */
  readonly workers?: number;
  /** Backoff of failed keys; default 200 ms doubling to 5 min. */
  readonly backoff?: BackoffOptions;
  readonly logger?: Logger;
  readonly registry?: Registry;
  readonly clock?: Clock;
  /** Called once per terminal failure, e.g. to write an Event or a condition. Must not throw. */
  readonly onTerminalError?: (key: string, error: TerminalError) => void;
}

interface Source {
  readonly informer: Informer<KubeObject>;
  readonly map: MapFn<KubeObject>;
  readonly priority: boolean;
}

export interface WatchOptions {
  /**
   * Keys from this source go ahead of the others in the queue (see workqueue.ts): e.g. a
   * finished Job whose result waits to be recorded, while a schedule window has queued
   * every cluster at once.
   */
  readonly priority?: boolean;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly #reconciler: Reconciler;
  readonly #workers: number;
  readonly #logger: Logger;
  readonly #metrics: RuntimeMetrics | undefined;
  readonly #clock: Clock;
  readonly #onTerminalError: ((key: string, error: TerminalError) => void) | undefined;
  readonly #sources: Source[] = [];
  #started = false;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.#reconciler = options.reconciler;
    this.#workers = Math.max(1, Math.floor(options.workers ?? 1));
    this.#clock = options.clock ?? systemClock;
    this.queue = new Queue({ clock: this.#clock, ...(options.backoff ? { backoff: options.backoff } : {}) });
    this.#logger = componentLogger(options.logger ?? silentLogger(), "controller", options.name);
    this.#metrics = options.registry === undefined ? undefined : runtimeMetrics(options.registry);
    this.#onTerminalError = options.onTerminalError;
  }

  /**
   * Reconcile keys mapped from `informer`'s objects: by default the object's own key. For an
   * update both the old and the new object are mapped (a relabelled Pod enqueues both owners).
   * Call before `start`.
   */
  watch<T extends KubeObject>(informer: Informer<T>, map?: MapFn<T>, options: WatchOptions = {}): this {
    if (this.#started) throw new Error(`controller ${this.name}: watch() after start()`);
    this.#sources.push({
      informer: informer as unknown as Informer<KubeObject>,
      map: (map ?? enqueueObject) as MapFn<KubeObject>,
      priority: options.priority === true,
    });
    return this;
  }

  /** Queues a key directly (e.g. from a timer of the product's own). */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  /** Runs until `signal` aborts; see the module doc. */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error(`controller ${this.name} already started`);
    this.#started = true;
    const log = this.#logger;
    this.#metrics?.trackQueue(this.name, this.queue);
    this.#metrics?.maxConcurrentReconciles.set({ controller: this.name }, this.#workers);
    const detach: (() => void)[] = [];
    try {
      const synced = await Promise.all(this.#sources.map((source) => source.informer.waitForSync(signal)));
      if (signal.aborted || synced.includes(false)) return;
      for (const source of this.#sources) {
        detach.push(
          source.informer.addHandler((event) => {
            this.#enqueueMapped(source, event.object);
            if (event.type === "update") this.#enqueueMapped(source, event.old);
          }),
        );
      }
      log.info({ workers: this.#workers }, "starting workers");
      const workers = Array.from({ length: this.#workers }, () => this.#work(signal));
      const stopped = new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await stopped;
      for (const remove of detach.splice(0)) remove();
      await this.queue.shutDown({ drain: false });
      await Promise.all(workers);
      log.info("workers stopped");
    } finally {
      for (const remove of detach) remove();
      // Nothing can be handed out any more; a queue shut down already resolves at once.
      await this.queue.shutDown({ drain: false });
      this.#metrics?.untrackQueue(this.name);
    }
  }

  #enqueueMapped(source: Source, object: KubeObject): void {
    let mapped: Iterable<string> | string | undefined;
    try {
      mapped = source.map(object);
    } catch (err) {
      this.#logger.error({ ...errorFields(err), object: objectKey(object) }, "map function threw");
      return;
    }
    if (mapped === undefined) return;
    for (const key of typeof mapped === "string" ? [mapped] : mapped) {
      if (!key) continue;
      this.#metrics?.workqueueAdds.inc({ name: this.name });
      this.queue.add(key, { priority: source.priority });
    }
  }

  async #work(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.#reconcileOne(key, signal);
      } finally {
        this.queue.done(key);
      }
    }
  }

  async #reconcileOne(key: string, signal: AbortSignal): Promise<void> {
    const labels = { controller: this.name };
    const started = this.#clock.now();
    this.#metrics?.activeWorkers.inc(labels);
    try {
      const result = await this.#reconciler.reconcile(key, signal);
      const requeueAfterMs = result?.requeueAfterMs;
      this.queue.forget(key);
      if (requeueAfterMs !== undefined && Number.isFinite(requeueAfterMs) && requeueAfterMs >= 0) {
        this.queue.addAfter(key, requeueAfterMs);
        this.#metrics?.reconcileTotal.inc({ ...labels, result: "requeue_after" });
        this.#logger.debug({ key, requeueAfterMs }, "reconciled; requeue scheduled");
      } else {
        this.#metrics?.reconcileTotal.inc({ ...labels, result: "success" });
        this.#logger.debug({ key }, "reconciled");
      }
    } catch (err) {
      if (isTerminalError(err)) {
        this.queue.forget(key);
        this.#metrics?.reconcileTotal.inc({ ...labels, result: "terminal_error" });
        this.#metrics?.terminalReconcileErrors.inc(labels);
        this.#logger.error(
          { key, ...errorFields(err) },
          "reconcile failed for good; not retrying until the next change",
        );
        try {
          this.#onTerminalError?.(key, err);
        } catch (hookErr) {
          this.#logger.error({ key, ...errorFields(hookErr) }, "onTerminalError threw");
        }
      } else if (signal.aborted) {
        // Cancelled by shutdown: not a failure of the key.
        this.#metrics?.reconcileTotal.inc({ ...labels, result: "error" });
        this.#logger.info({ key, ...errorFields(err) }, "reconcile interrupted by shutdown");
      } else {
        this.queue.addRateLimited(key);
        this.#metrics?.reconcileTotal.inc({ ...labels, result: "error" });
        this.#metrics?.reconcileErrors.inc(labels);
        this.#metrics?.workqueueRetries.inc({ name: this.name });
        this.#logger.warn(
          { key, retries: this.queue.retries(key), ...errorFields(err) },
          "reconcile failed; retrying with backoff",
        );
      }
    } finally {
      this.#metrics?.activeWorkers.dec(labels);
      this.#metrics?.reconcileTime.observe(labels, (this.#clock.now() - started) / 1000);
    }
  }
}
