/**
 * An informer: a local cache of one resource (optionally one namespace, optionally
 * label/field-selected), kept current by list + watch, with event handlers.
 *
 * It is a small reflector of our own over the client's `Watch`, not the client's
 * `ListWatch`/`makeInformer`, because that one stops for good after the first error (an
 * unreachable API server, a 403, a failed relist: it emits `error` and never restarts), can
 * leave a rejected promise unhandled when authentication fails on a reconnect, has no
 * "synced" signal, lists without pagination, and fills its cache from typed lists (`Date`
 * timestamps) and raw watch events (string timestamps) alike.
 *
 * Invariants:
 * - The cache holds the API server's JSON (`Wire<T>`): timestamps are strings, for lists and
 *   watch events alike. Objects in it are shared: callers must not mutate them.
 * - `hasSynced()` becomes true after the first complete (paginated) list has been stored and
 *   stays true; the cache is then served even while the API server is unreachable.
 * - It never stops by itself: every error, closed or timed-out watch is followed by a new
 *   watch from the last resource version seen, after an exponential backoff when it failed
 *   (a watch that ends normally after events is restarted at once). `410 Gone`/`Expired`
 *   (resource version too old: compaction, API server restart) clears the resource version,
 *   so the next round relists, and the relist emits exactly the differences from the cache
 *   as add/update/delete events.
 * - Handlers run synchronously, in event order, after the cache has been updated; a handler
 *   that throws is logged and does not disturb the informer or the other handlers. Handlers
 *   should only enqueue keys (see controller.ts).
 * - An update whose resourceVersion equals the cached one is not an event.
 */
import { type KubeConfig, Watch } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { errorFields, type Logger, silentLogger } from "../observability/logger.ts";
import { type RuntimeMetrics, runtimeMetrics } from "../observability/metrics.ts";
import { type BackoffOptions, backoffDelay } from "./backoff.ts";
import { type Clock, sleep, systemClock } from "./clock.ts";
import { getJson, httpStatusOf, KubeApiError } from "./kube-http.ts";

export type { Wire } from "./kube-http.ts";

/** The fields of ObjectMeta the runtime reads; every Kubernetes object as JSON has this shape. */
export interface ObjectMetaLike {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: { [key: string]: string };
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMetaLike;
}

/** What to watch. */
export interface ResourceRef {
  /** `v1`, `batch/v1`, `openbao.org/v1alpha1`. */
  readonly apiVersion: string;
  /** Plural resource name: `configmaps`, `jobs`, `openbaoclusters`. */
  readonly plural: string;
  /** Only this namespace; all namespaces when omitted (and for cluster-scoped resources). */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

export type InformerEvent<T> =
  | { readonly type: "add"; readonly object: T }
  | { readonly type: "update"; readonly object: T; readonly old: T }
  | { readonly type: "delete"; readonly object: T };

export type EventHandler<T> = (event: InformerEvent<T>) => void;

/** `namespace/name`, or `name` for a cluster-scoped object. */
export function objectKey(object: KubeObject): string {
  const name = object.metadata?.name ?? "";
  const namespace = object.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

/** The inverse of `objectKey`. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf("/");
  return slash < 0
    ? { namespace: undefined, name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The collection path of a resource, e.g. `/apis/batch/v1/namespaces/x/jobs`. */
export function resourcePath(resource: ResourceRef): string {
  const base = resource.apiVersion.includes("/") ? `/apis/${resource.apiVersion}` : `/api/${resource.apiVersion}`;
  const namespace = resource.namespace ? `/namespaces/${encodeURIComponent(resource.namespace)}` : "";
  return `${base}${namespace}/${resource.plural}`;
}

/** A readable, stable name: `jobs.batch/v1 in ns (app=x)`. */
export function resourceName(resource: ResourceRef): string {
  const parts = [`${resource.plural}.${resource.apiVersion}`];
  if (resource.namespace) parts.push(`in ${resource.namespace}`);
  const selectors = [resource.labelSelector, resource.fieldSelector].filter(Boolean).join(",");
  if (selectors) parts.push(`(${selectors})`);
  return parts.join(" ");
}

export interface InformerOptions {
  readonly kubeConfig: KubeConfig;
  readonly resource: ResourceRef;
  readonly logger?: Logger;
  readonly registry?: Registry;
  readonly clock?: Clock;
  /** Backoff after failed lists or watches; default 500 ms doubling to 15 s, ±20 % jitter. */
  readonly backoff?: BackoffOptions;
  /** Items per list page; default 500. */
  readonly pageSize?: number;
  /** Server-side watch timeout per request; default a random 300–600 s (as client-go). */
  readonly watchTimeoutSeconds?: () => number;
  /**
   * Applied to every object before it is cached (list items and watch events), e.g. to drop
   * `managedFields` and fields no reader needs: the cache of a busy resource (Jobs, Pods)
   * is most of the operator's memory. It may mutate and must keep `metadata`.
   */
  readonly transform?: (object: KubeObject) => KubeObject;
}

/** Counters for tests and diagnostics. */
export interface InformerStats {
  /** Completed full lists (the initial sync and every relist). */
  lists: number;
  /** Watch requests started. */
  watches: number;
  /** Watches or lists that failed (connection refused, HTTP error, ERROR event). */
  errors: number;
  /** `410 Gone`/`Expired` answers that forced a relist. */
  expired: number;
  /** Events delivered to handlers. */
  events: number;
}

type WatchEnd =
  | { readonly reason: "aborted" | "closed" | "timeout" | "expired"; readonly events: number }
  | { readonly reason: "error"; readonly events: number; readonly error: unknown };

interface ListPage {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

/** How long past its server-side timeout a silent watch is given before the client drops it. */
const watchGraceSeconds = 30;

/** A secondary index: its values per object, and the objects per value (by object key). */
interface Index<T> {
  readonly keysOf: (object: T) => readonly string[];
  readonly byValue: Map<string, Map<string, T>>;
}

/** A watch that ends sooner than this without an event counts as a failure (no hot loop). */
const minHealthyWatchMs = 1_000;

const defaultInformerBackoff: BackoffOptions = { baseMs: 500, maxMs: 15_000, jitter: 0.2 };

function isObjectWithMeta(value: unknown): value is KubeObject {
  return typeof value === "object" && value !== null && typeof (value as KubeObject).metadata === "object";
}

export class Informer<T extends KubeObject = KubeObject> {
  readonly resource: ResourceRef;
  /** Human-readable name of what this informer watches. */
  readonly name: string;
  readonly stats: InformerStats = { lists: 0, watches: 0, errors: 0, expired: 0, events: 0 };
  readonly #kubeConfig: KubeConfig;
  readonly #watch: Watch;
  readonly #path: string;
  readonly #logger: Logger;
  readonly #metrics: RuntimeMetrics | undefined;
  readonly #clock: Clock;
  readonly #backoff: BackoffOptions;
  readonly #pageSize: number;
  readonly #watchTimeoutSeconds: () => number;
  readonly #transform: (object: T) => T;
  readonly #handlers = new Set<EventHandler<T>>();
  #cache = new Map<string, T>();
  /** Secondary indexes: name → (index value → (object key → object)). */
  readonly #indexes = new Map<
    string,
    { keysOf: (object: T) => readonly string[]; byValue: Map<string, Map<string, T>> }
  >();
  #resourceVersion = "";
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: InformerOptions) {
    this.resource = options.resource;
    this.name = resourceName(options.resource);
    this.#kubeConfig = options.kubeConfig;
    this.#watch = new Watch(options.kubeConfig);
    this.#path = resourcePath(options.resource);
    this.#logger = (options.logger ?? silentLogger()).child({ informer: this.name });
    this.#metrics = options.registry === undefined ? undefined : runtimeMetrics(options.registry);
    this.#clock = options.clock ?? systemClock;
    this.#backoff = options.backoff ?? defaultInformerBackoff;
    this.#pageSize = options.pageSize ?? 500;
    this.#watchTimeoutSeconds = options.watchTimeoutSeconds ?? (() => Math.floor(300 + Math.random() * 300));
    const transform = options.transform;
    this.#transform = transform === undefined ? (object) => object : (object) => transform(object) as T;
    this.#metrics?.informerSynced.set({ resource: this.name }, 0);
  }

  // ── cache ────────────────────────────────────────────────────────────────────────────────

  /** The cached object, or undefined. For cluster-scoped resources pass `undefined` as namespace. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#cache.get(namespace ? `${namespace}/${name}` : name);
  }

  /** The cached object under a queue key (`namespace/name`). */
  getByKey(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** Cached objects, all or one namespace's, in no particular order. */
  list(namespace?: string): T[] {
    const all = [...this.#cache.values()];
    return namespace === undefined ? all : all.filter((object) => object.metadata?.namespace === namespace);
  }

  /**
   * Adds a secondary index: `keysOf` names the index values of an object (e.g. the UID of its
   * controlling owner), kept current with the cache, so `byIndex` finds a cluster's Jobs
   * without scanning every cached Job. Objects are indexed as cached (after `transform`).
   */
  addIndex(name: string, keysOf: (object: T) => readonly string[]): void {
    if (this.#indexes.has(name)) throw new Error(`informer ${this.name}: index ${name} exists`);
    const index = { keysOf, byValue: new Map<string, Map<string, T>>() };
    this.#indexes.set(name, index);
    for (const [key, object] of this.#cache) this.#indexOne(index, key, object);
  }

  /** Cached objects whose index `name` has `value`, in no particular order. */
  byIndex(name: string, value: string): T[] {
    const index = this.#indexes.get(name);
    if (index === undefined) throw new Error(`informer ${this.name}: no index ${name}`);
    const objects = index.byValue.get(value);
    return objects === undefined ? [] : [...objects.values()];
  }

  #indexOne(index: Index<T>, key: string, object: T): void {
    for (const value of index.keysOf(object)) {
      let objects = index.byValue.get(value);
      if (objects === undefined) {
        objects = new Map();
        index.byValue.set(value, objects);
      }
      objects.set(key, object);
    }
  }

  #unindexOne(index: Index<T>, key: string, object: T): void {
    for (const value of index.keysOf(object)) {
      const objects = index.byValue.get(value);
      objects?.delete(key);
      if (objects?.size === 0) index.byValue.delete(value);
    }
  }

  /** Keeps every index in step with one cache change (`old` out, `next` in). */
  #reindex(key: string, old: T | undefined, next: T | undefined): void {
    for (const index of this.#indexes.values()) {
      if (old !== undefined) this.#unindexOne(index, key, old);
      if (next !== undefined) this.#indexOne(index, key, next);
    }
  }

  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves true once synced, or false if `signal` aborts (or the informer stops) first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => resolve(false);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#syncWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(this.#synced);
      });
    });
  }

  /** The resource version the next watch starts from ("" when the next round relists). */
  lastResourceVersion(): string {
    return this.#resourceVersion;
  }

  // ── handlers ─────────────────────────────────────────────────────────────────────────────

  /**
   * Calls `handler` for every later event. With `replay` (default) it is first called with
   * an `add` for every object already cached, so a handler added after the sync (a
   * controller starting when it becomes leader) still sees every object once.
   * Returns a function that removes the handler.
   */
  addHandler(handler: EventHandler<T>, options: { replay?: boolean } = {}): () => void {
    this.#handlers.add(handler);
    if (options.replay !== false) {
      for (const object of this.#cache.values()) this.#call(handler, { type: "add", object });
    }
    return () => {
      this.#handlers.delete(handler);
    };
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────

  /** Starts listing and watching in the background (idempotent). */
  start(): void {
    if (this.#loop !== undefined) return;
    const abort = new AbortController();
    this.#abort = abort;
    this.#loop = this.#run(abort.signal).catch((err: unknown) => {
      // #run handles its own errors; reaching this is a bug worth a loud line.
      this.#logger.error(errorFields(err), "informer loop crashed");
    });
  }

  /** Stops watching; resolves once the loop has ended. The cache stays readable. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    for (const waiter of this.#syncWaiters.splice(0)) waiter();
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let expiredInARow = 0;
    while (!signal.aborted) {
      let failure: unknown;
      try {
        if (this.#resourceVersion === "") await this.#relist(signal);
        if (signal.aborted) break;
        const watchStarted = this.#clock.now();
        const end = await this.#watchOnce(signal);
        if (end.reason !== "aborted") {
          this.#metrics?.informerWatchRestarts.inc({ resource: this.name, reason: end.reason });
        }
        switch (end.reason) {
          case "aborted":
            break;
          case "expired":
            this.stats.expired++;
            this.#resourceVersion = "";
            expiredInARow++;
            this.#logger.info({ events: end.events }, "resource version expired; relisting");
            // A relist that is expired again at once is a failure, not progress.
            if (expiredInARow > 2) failure = new KubeApiError("watch expired repeatedly", { statusCode: 410 });
            else failures = 0;
            break;
          case "error":
            failure = end.error;
            break;
          case "closed":
          case "timeout":
            if (end.events === 0 && this.#clock.now() - watchStarted < minHealthyWatchMs) {
              // Something between us and the API server closes watches at once: back off.
              failure = new KubeApiError(`watch ${this.#path} closed at once`);
              break;
            }
            expiredInARow = 0;
            failures = 0;
            this.#logger.debug({ reason: end.reason, events: end.events }, "watch ended; watching again");
            break;
        }
      } catch (err) {
        failure = err;
      }
      if (failure === undefined || signal.aborted) continue;
      this.stats.errors++;
      if (httpStatusOf(failure) === 410) {
        // A relist's continue token expired: start the list again from scratch.
        this.#resourceVersion = "";
      }
      failures++;
      const delayMs = backoffDelay(failures, this.#backoff);
      this.#logger.warn(
        { ...errorFields(failure), attempt: failures, retryInMs: delayMs, synced: this.#synced },
        "list/watch failed; retrying",
      );
      await sleep(this.#clock, delayMs, signal);
    }
  }

  /** Lists every page, replaces the cache, and emits the differences. */
  async #relist(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let resourceVersion = "";
    let continueToken: string | undefined;
    do {
      const page = (await getJson(
        this.#kubeConfig,
        this.#path,
        {
          limit: this.#pageSize,
          continue: continueToken,
          labelSelector: this.resource.labelSelector,
          fieldSelector: this.resource.fieldSelector,
        },
        { signal },
      )) as ListPage;
      // List items carry no apiVersion/kind for built-in types; watch events do. Make them alike.
      const itemApiVersion = page.apiVersion;
      const itemKind = page.kind?.replace(/List$/, "");
      for (const item of page.items ?? []) {
        if (!isObjectWithMeta(item)) continue;
        if (item.apiVersion === undefined && itemApiVersion !== undefined) item.apiVersion = itemApiVersion;
        if (item.kind === undefined && itemKind !== undefined) item.kind = itemKind;
        items.push(this.#transform(item as T));
      }
      resourceVersion = page.metadata?.resourceVersion ?? "";
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken !== undefined && !signal.aborted);
    if (signal.aborted) return;

    const previous = this.#cache;
    const next = new Map<string, T>();
    for (const item of items) next.set(objectKey(item), item);
    this.#cache = next;
    for (const index of this.#indexes.values()) {
      index.byValue.clear();
      for (const [key, object] of next) this.#indexOne(index, key, object);
    }
    this.#resourceVersion = resourceVersion;
    this.stats.lists++;
    this.#metrics?.informerLists.inc({ resource: this.name });
    for (const [key, object] of next) {
      const old = previous.get(key);
      if (old === undefined) this.#emit({ type: "add", object });
      else if (old.metadata?.resourceVersion !== object.metadata?.resourceVersion) {
        this.#emit({ type: "update", object, old });
      }
    }
    for (const [key, object] of previous) {
      if (!next.has(key)) this.#emit({ type: "delete", object });
    }
    this.#logger.debug({ objects: next.size, resourceVersion }, "listed");
    if (!this.#synced) {
      this.#synced = true;
      this.#metrics?.informerSynced.set({ resource: this.name }, 1);
      this.#logger.info({ objects: next.size }, "cache synced");
      for (const waiter of this.#syncWaiters.splice(0)) waiter();
    }
  }

  /** One watch request, from the current resource version, until it ends. */
  async #watchOnce(signal: AbortSignal): Promise<WatchEnd> {
    let events = 0;
    let expired = false;
    let errorEvent: KubeApiError | undefined;
    let finish: (err: unknown) => void = () => undefined;
    const ended = new Promise<unknown>((resolve) => {
      finish = resolve;
    });
    const onEvent = (type: string, object: unknown): void => {
      if (signal.aborted) return;
      if (type === "ERROR") {
        const status = (object ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
        if (status.code === 410 || status.reason === "Expired" || status.reason === "Gone") expired = true;
        else {
          errorEvent = new KubeApiError(`watch ${this.#path}: ${String(status.message ?? "ERROR event")}`, {
            ...(typeof status.code === "number" ? { statusCode: status.code } : {}),
            ...(typeof status.reason === "string" ? { reason: status.reason } : {}),
          });
        }
        return; // the server closes the stream after an ERROR event
      }
      if (!isObjectWithMeta(object)) return;
      const resourceVersion = object.metadata?.resourceVersion;
      if (type === "ADDED" || type === "MODIFIED") {
        events++;
        this.#upsert(this.#transform(object as T));
      } else if (type === "DELETED") {
        events++;
        this.#remove(object as T);
      } else if (type !== "BOOKMARK") {
        return;
      }
      if (resourceVersion) this.#resourceVersion = resourceVersion;
    };

    this.stats.watches++;
    const timeoutSeconds = this.#watchTimeoutSeconds();
    // The client aborts a watch that has had no data for `requestTimeoutMs` (30 s by default),
    // while a quiet watch gets a bookmark only about once a minute: every watch would end
    // after 30 s and be opened again. The server ends it after `timeoutSeconds`; the client's
    // timer only has to catch a connection that died silently (undici bounds the connect).
    // (The field is TypeScript-private but read on every timer reset; the test in
    // test/operator/runtime.test.ts "a quiet watch stays open…" fails if a client upgrade stops
    // honouring it.)
    (this.#watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs =
      (timeoutSeconds + watchGraceSeconds) * 1000;
    const query = {
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      labelSelector: this.resource.labelSelector,
      fieldSelector: this.resource.fieldSelector,
    };
    let request: AbortController | undefined;
    const onAbort = (): void => request?.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      request = await this.#watch.watch(this.#path, query, onEvent, (err: unknown) => finish(err ?? null));
      if (signal.aborted) request.abort();
      const err = await ended;
      if (signal.aborted) return { reason: "aborted", events };
      if (expired || httpStatusOf(err) === 410) return { reason: "expired", events };
      if (errorEvent !== undefined) return { reason: "error", events, error: errorEvent };
      if (err instanceof Error && err.name === "TimeoutError") return { reason: "timeout", events };
      if (err !== null && err !== undefined) {
        const status = httpStatusOf(err);
        const error =
          status === undefined
            ? err
            : new KubeApiError(`watch ${this.#path}: HTTP ${status}`, { statusCode: status, cause: err });
        return { reason: "error", events, error };
      }
      return { reason: "closed", events };
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  #upsert(object: T): void {
    const key = objectKey(object);
    const old = this.#cache.get(key);
    if (old !== undefined && old.metadata?.resourceVersion === object.metadata?.resourceVersion) return;
    this.#cache.set(key, object);
    this.#reindex(key, old, object);
    this.#emit(old === undefined ? { type: "add", object } : { type: "update", object, old });
  }

  #remove(object: T): void {
    const key = objectKey(object);
    const old = this.#cache.get(key);
    if (old === undefined) return;
    this.#cache.delete(key);
    this.#reindex(key, old, undefined);
    this.#emit({ type: "delete", object });
  }

  #emit(event: InformerEvent<T>): void {
    this.stats.events++;
    for (const handler of this.#handlers) this.#call(handler, event);
  }

  #call(handler: EventHandler<T>, event: InformerEvent<T>): void {
    try {
      handler(event);
    } catch (err) {
      this.#logger.error({ ...errorFields(err), event: event.type, key: objectKey(event.object) }, "handler threw");
    }
  }
}
