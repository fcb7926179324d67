/**
 * Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it.
 *
 * Every replica runs a `LeaderElector` on the same Lease. The pure `decide` function says
 * what one attempt should do; `LeaderElector` runs the attempts on a clock:
 * - A candidate tries every `retryPeriodMs` (+ up to 20 % jitter). It takes the Lease when
 *   there is none, when it is released (empty holder), or when the holder has not renewed
 *   for `leaseDurationSeconds` as measured on the candidate's own clock since it last saw
 *   the Lease change (so clock skew between replicas does not matter).
 * - Every write is optimistic: create fails if the Lease exists, update carries the
 *   resourceVersion read just before. A conflict means another replica wrote first: this
 *   one is not the leader and tries again later. Two replicas can never both succeed.
 * - The leader renews every `retryPeriodMs`, with one update from the Lease it last wrote
 *   (no read first); after a failed renewal it reads the Lease again. If no renewal has succeeded for
 *   `renewDeadlineMs`, or a renewal finds another holder, leadership is lost. Because
 *   `renewDeadlineMs < leaseDurationMs`, the old leader gives up before any candidate can
 *   consider the Lease expired.
 * - `onStartedLeading(signal)` runs when the Lease is acquired; `signal` aborts when
 *   leadership ends for any reason, and then `onStoppedLeading()` runs (awaited) — once.
 * - On cancellation (graceful shutdown) the leader keeps renewing until
 *   `onStoppedLeading()` has finished (so leader-only work never overlaps a successor),
 *   then releases the Lease (empty holder, resourceVersion-checked) so a successor takes
 *   over within one retry period instead of a full lease duration.
 * - After losing leadership an elector does not campaign again: `run` returns. The Manager
 *   then stops, and the operator process exits (see manager.ts).
 */
import { ApiException, CoordinationV1Api, type KubeConfig, V1MicroTime } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { errorFields, type Logger, silentLogger } from "../observability/logger.ts";
import { type RuntimeMetrics, runtimeMetrics } from "../observability/metrics.ts";
import { type Clock, sleep, systemClock } from "./clock.ts";
import { httpStatusOf } from "./kube-http.ts";

// ── the Lease as the election sees it ─────────────────────────────────────────────────────

export interface LeaseRecord {
  /** "" when released. */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** Milliseconds since the epoch. */
  readonly acquireTime: number | undefined;
  readonly renewTime: number | undefined;
  readonly leaseTransitions: number;
}

export interface LeaseState {
  readonly record: LeaseRecord;
  readonly resourceVersion: string;
}

/** What this replica last saw of the Lease, and when (its own clock). */
export interface Observation {
  readonly resourceVersion: string;
  readonly record: LeaseRecord;
  readonly at: number;
}

/** Another replica wrote the Lease first (HTTP 409 on create or update). */
export class LeaseConflictError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LeaseConflictError";
  }
}

/** Reads and writes one Lease. Implementations map 409 to `LeaseConflictError`. */
export interface LeaseStore {
  /** A description for logs, e.g. `ns/name`. */
  readonly description: string;
  get(): Promise<LeaseState | undefined>;
  create(record: LeaseRecord): Promise<LeaseState>;
  /** Replaces the Lease spec if its resourceVersion is still `resourceVersion`. */
  update(record: LeaseRecord, resourceVersion: string): Promise<LeaseState>;
}

// ── the decision ──────────────────────────────────────────────────────────────────────────

export type Decision =
  | { readonly action: "create"; readonly record: LeaseRecord }
  | { readonly action: "update"; readonly record: LeaseRecord; readonly resourceVersion: string }
  /** Held by `holder`; it may be taken over at `expiresAt` (this replica's clock) if not renewed. */
  | { readonly action: "wait"; readonly holder: string; readonly expiresAt: number };

export interface DecideInput {
  readonly current: LeaseState | undefined;
  readonly observed: Observation | undefined;
  readonly identity: string;
  readonly now: number;
  readonly leaseDurationMs: number;
}

/**
 * One election step: create, take over / renew (update), or wait. Pure: the clock is `now`.
 * Returns the observation to keep for the next step (it changes whenever the Lease did).
 */
export function decide(input: DecideInput): { decision: Decision; observed: Observation | undefined } {
  const { current, identity, now } = input;
  const leaseDurationSeconds = Math.max(1, Math.ceil(input.leaseDurationMs / 1000));
  if (current === undefined) {
    const record: LeaseRecord = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    };
    return { decision: { action: "create", record }, observed: input.observed };
  }
  const observed =
    input.observed !== undefined && input.observed.resourceVersion === current.resourceVersion
      ? input.observed
      : { resourceVersion: current.resourceVersion, record: current.record, at: now };
  const holder = current.record.holderIdentity;
  if (holder !== "" && holder !== identity) {
    const durationMs =
      current.record.leaseDurationSeconds > 0 ? current.record.leaseDurationSeconds * 1000 : input.leaseDurationMs;
    const expiresAt = observed.at + durationMs;
    if (now < expiresAt) return { decision: { action: "wait", holder, expiresAt }, observed };
  }
  const renewing = holder === identity;
  const record: LeaseRecord = {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: renewing ? (current.record.acquireTime ?? now) : now,
    renewTime: now,
    leaseTransitions: renewing ? current.record.leaseTransitions : current.record.leaseTransitions + 1,
  };
  return { decision: { action: "update", record, resourceVersion: current.resourceVersion }, observed };
}

/** True when the leader must give up: its last successful renewal is `renewDeadlineMs` old. */
export function renewDeadlinePassed(lastRenewAt: number, now: number, renewDeadlineMs: number): boolean {
  return now - lastRenewAt >= renewDeadlineMs;
}

export interface ElectionTimings {
  /** How long a Lease not renewed stays valid for candidates; default 15 s. */
  readonly leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it gives up; default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Interval between attempts (acquire and renew); default 2 s. */
  readonly retryPeriodMs?: number;
}

export const defaultTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

/** Fills defaults and checks leaseDuration > renewDeadline > 1.2 × retryPeriod (client-go's rule). */
export function resolveTimings(timings: ElectionTimings = {}): Required<ElectionTimings> {
  const resolved = {
    leaseDurationMs: timings.leaseDurationMs ?? defaultTimings.leaseDurationMs,
    renewDeadlineMs: timings.renewDeadlineMs ?? defaultTimings.renewDeadlineMs,
    retryPeriodMs: timings.retryPeriodMs ?? defaultTimings.retryPeriodMs,
  };
  if (!(resolved.leaseDurationMs > resolved.renewDeadlineMs)) {
    throw new Error("leader election: leaseDurationMs must be greater than renewDeadlineMs");
  }
  if (!(resolved.renewDeadlineMs > resolved.retryPeriodMs * jitterFactor)) {
    throw new Error(`leader election: renewDeadlineMs must be greater than ${jitterFactor} × retryPeriodMs`);
  }
  if (!(resolved.retryPeriodMs > 0)) throw new Error("leader election: retryPeriodMs must be positive");
  return resolved;
}

/** Candidates wait retryPeriod × [1, jitterFactor). */
const jitterFactor = 1.2;

// ── the Kubernetes Lease store ────────────────────────────────────────────────────────────

/** `V1MicroTime` serializes with microseconds, as the Lease's MicroTime fields require. */
function microTime(ms: number | undefined): V1MicroTime | undefined {
  return ms === undefined ? undefined : new V1MicroTime(ms);
}

/** The client hands MicroTime fields back as strings (it does not know the type) or Dates. */
function toMillis(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "string") {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

export class KubeLeaseStore implements LeaseStore {
  readonly description: string;
  readonly #api: CoordinationV1Api;
  readonly #namespace: string;
  readonly #name: string;

  constructor(kubeConfig: KubeConfig, namespace: string, name: string) {
    this.#api = kubeConfig.makeApiClient(CoordinationV1Api);
    this.#namespace = namespace;
    this.#name = name;
    this.description = `${namespace}/${name}`;
  }

  async get(): Promise<LeaseState | undefined> {
    try {
      return this.#state(await this.#api.readNamespacedLease({ name: this.#name, namespace: this.#namespace }));
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord): Promise<LeaseState> {
    try {
      const created = await this.#api.createNamespacedLease({
        namespace: this.#namespace,
        body: { metadata: { name: this.#name, namespace: this.#namespace }, spec: this.#spec(record) },
      });
      return this.#state(created);
    } catch (err) {
      throw this.#conflict(err, "create");
    }
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<LeaseState> {
    try {
      const updated = await this.#api.replaceNamespacedLease({
        name: this.#name,
        namespace: this.#namespace,
        body: { metadata: { name: this.#name, namespace: this.#namespace, resourceVersion }, spec: this.#spec(record) },
      });
      return this.#state(updated);
    } catch (err) {
      throw this.#conflict(err, "update");
    }
  }

  #spec(record: LeaseRecord) {
    return {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      acquireTime: microTime(record.acquireTime),
      renewTime: microTime(record.renewTime),
      leaseTransitions: record.leaseTransitions,
    };
  }

  #state(lease: {
    metadata?: { resourceVersion?: string };
    spec?: {
      holderIdentity?: string;
      leaseDurationSeconds?: number;
      acquireTime?: unknown;
      renewTime?: unknown;
      leaseTransitions?: number;
    };
  }): LeaseState {
    const spec = lease.spec ?? {};
    return {
      resourceVersion: lease.metadata?.resourceVersion ?? "",
      record: {
        holderIdentity: spec.holderIdentity ?? "",
        leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
        acquireTime: toMillis(spec.acquireTime),
        renewTime: toMillis(spec.renewTime),
        leaseTransitions: spec.leaseTransitions ?? 0,
      },
    };
  }

  #conflict(err: unknown, what: string): unknown {
    if (err instanceof ApiException && err.code === 409) {
      return new LeaseConflictError(`Lease ${this.description}: ${what} conflicted with another writer`, {
        cause: err,
      });
    }
    return err;
  }
}

// ── the elector ───────────────────────────────────────────────────────────────────────────

export interface LeaderCallbacks {
  /** Leadership acquired; `signal` aborts when it ends. Must not block (start work and return). */
  onStartedLeading(signal: AbortSignal): void;
  /**
   * Leadership ended (lost or cancelled); awaited before the Lease is released. Returning
   * false keeps the Lease from being released (the work did not stop: let the Lease expire).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: lets plain `async () => {}` callbacks implement it
  onStoppedLeading(): Promise<boolean | void> | boolean | void;
  /** The observed holder changed (including to this replica). */
  onNewLeader?(identity: string): void;
}

export interface LeaderElectorOptions extends ElectionTimings {
  readonly store: LeaseStore;
  /** Unique per replica, e.g. the Pod name plus a random suffix. */
  readonly identity: string;
  /** Release the Lease when cancelled while leading; default true. */
  readonly releaseOnCancel?: boolean;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly registry?: Registry;
  /** Random source for the candidate's jitter. */
  readonly random?: () => number;
}

export type ElectionOutcome =
  /** `signal` aborted before this replica ever led. */
  | "cancelled"
  /** Led until `signal` aborted; the Lease was released unless `releaseOnCancel` is false or the work did not stop. */
  | "stopped"
  /** Led, then lost the Lease (renew deadline passed, or another holder found). */
  | "lost";

/** `promise`, or a rejection after `ms` (the request itself may still complete later). */
function withTimeout<T>(clock: Clock, promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimer(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (err: unknown) => {
        timer.cancel();
        reject(err);
      },
    );
  });
}

export class LeaderElector {
  readonly identity: string;
  readonly #store: LeaseStore;
  readonly #timings: Required<ElectionTimings>;
  readonly #releaseOnCancel: boolean;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #metrics: RuntimeMetrics | undefined;
  readonly #random: () => number;
  #observed: Observation | undefined;
  #leading = false;
  #leader: string | undefined;
  /** Clock time of the last successful acquire/renew while leading. */
  #lastRenewAt = 0;
  /** The last attempt wrote the Lease: the next renewal may skip reading it. */
  #renewFromLastWrite = false;

  constructor(options: LeaderElectorOptions) {
    this.identity = options.identity;
    this.#store = options.store;
    this.#timings = resolveTimings(options);
    this.#releaseOnCancel = options.releaseOnCancel ?? true;
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger()).child({ lease: options.store.description });
    this.#metrics = options.registry === undefined ? undefined : runtimeMetrics(options.registry);
    this.#random = options.random ?? Math.random;
    this.#metrics?.leaderStatus.set({ name: this.#store.description }, 0);
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** The holder last observed on the Lease (this replica's identity while it leads). */
  leader(): string | undefined {
    return this.#leader;
  }

  /**
   * Campaigns until this replica leads, leads until the Lease is lost or `signal` aborts,
   * and returns how it ended. Never throws for API errors (they are retried).
   */
  async run(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<ElectionOutcome> {
    const { retryPeriodMs } = this.#timings;
    // ── campaign
    for (;;) {
      if (signal.aborted) return "cancelled";
      if (await this.#tryAcquireOrRenew(callbacks)) break;
      await sleep(this.#clock, retryPeriodMs * (1 + (jitterFactor - 1) * this.#random()), signal);
    }
    // ── lead
    this.#setLeading(true);
    this.#logger.info({ identity: this.identity }, "became leader");
    const leading = new AbortController();
    callbacks.onStartedLeading(leading.signal);

    const renewals = new AbortController();
    const renewLoop = this.#renewLoop(renewals.signal, callbacks);
    const lostOrCancelled = await Promise.race([
      renewLoop.then(() => "lost" as const),
      new Promise<"cancelled">((resolve) => {
        if (signal.aborted) resolve("cancelled");
        else signal.addEventListener("abort", () => resolve("cancelled"), { once: true });
      }),
    ]);

    if (lostOrCancelled === "lost") {
      this.#setLeading(false);
      this.#logger.error({ identity: this.identity }, "leadership lost; stopping leader-only work");
      leading.abort();
      await callbacks.onStoppedLeading();
      return "lost";
    }

    // Cancelled: stop the work while still renewing, then stop renewing and release.
    leading.abort();
    const stopped = await callbacks.onStoppedLeading();
    renewals.abort();
    const stillLeading = await renewLoop.then(() => this.#leading);
    this.#setLeading(false);
    if (stillLeading && this.#releaseOnCancel && stopped !== false) await this.#release();
    return stillLeading ? "stopped" : "lost";
  }

  /** Renews every retry period; resolves when leadership is lost or `signal` aborts. */
  async #renewLoop(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.#timings;
    for (;;) {
      await sleep(this.#clock, retryPeriodMs, signal);
      if (signal.aborted) return;
      const renewed = await this.#tryAcquireOrRenew(callbacks);
      if (signal.aborted) return;
      if (!renewed) {
        if (this.#leader !== undefined && this.#leader !== this.identity) {
          this.#logger.error({ holder: this.#leader }, "another replica holds the Lease");
          this.#leading = false;
          return;
        }
        if (renewDeadlinePassed(this.#lastRenewAt, this.#clock.now(), renewDeadlineMs)) {
          this.#logger.error({ renewDeadlineMs }, "could not renew the Lease before the renew deadline");
          this.#leading = false;
          return;
        }
      }
    }
  }

  /** One attempt; true when this replica holds the Lease afterwards. */
  async #tryAcquireOrRenew(callbacks: LeaderCallbacks): Promise<boolean> {
    // The leader renews from the Lease it last wrote, without reading it first (as client-go
    // does): one request per period instead of two. A 409 (someone else wrote it) reads the
    // Lease and decides again at once; any other failure (a timeout whose write may have
    // landed) makes the next attempt read it first.
    const known = this.#leading && this.#renewFromLastWrite ? this.#observed : undefined;
    this.#renewFromLastWrite = false;
    if (known !== undefined && known.record.holderIdentity === this.identity) {
      const outcome = await this.#decideAndWrite(
        { resourceVersion: known.resourceVersion, record: known.record },
        callbacks,
      );
      if (outcome !== "conflict") return outcome === "held";
    }
    const current = await this.#read();
    if (current === "failed") return false;
    return (await this.#decideAndWrite(current, callbacks)) === "held";
  }

  /** A hung request must not outlive the renew deadline. */
  #requestTimeoutMs(): number {
    return Math.max(1, this.#timings.renewDeadlineMs - this.#timings.retryPeriodMs);
  }

  async #read(): Promise<LeaseState | undefined | "failed"> {
    try {
      return await withTimeout(this.#clock, this.#store.get(), this.#requestTimeoutMs(), "reading the Lease");
    } catch (err) {
      this.#logger.warn(errorFields(err), "Lease request failed");
      return "failed";
    }
  }

  /** One election step from `current`: "held" when this replica holds the Lease afterwards. */
  async #decideAndWrite(
    current: LeaseState | undefined,
    callbacks: LeaderCallbacks,
  ): Promise<"held" | "not-held" | "conflict"> {
    const timeoutMs = this.#requestTimeoutMs();
    try {
      const step = decide({
        current,
        observed: this.#observed,
        identity: this.identity,
        now: this.#clock.now(),
        leaseDurationMs: this.#timings.leaseDurationMs,
      });
      this.#observed = step.observed;
      const { decision } = step;
      if (decision.action === "wait") {
        this.#observeLeader(decision.holder, callbacks);
        return "not-held";
      }
      const written =
        decision.action === "create"
          ? await withTimeout(this.#clock, this.#store.create(decision.record), timeoutMs, "creating the Lease")
          : await withTimeout(
              this.#clock,
              this.#store.update(decision.record, decision.resourceVersion),
              timeoutMs,
              "updating the Lease",
            );
      const at = this.#clock.now();
      this.#observed = { resourceVersion: written.resourceVersion, record: written.record, at };
      this.#lastRenewAt = at;
      this.#renewFromLastWrite = true;
      this.#observeLeader(this.identity, callbacks);
      return "held";
    } catch (err) {
      if (err instanceof LeaseConflictError) {
        this.#logger.debug(errorFields(err), "Lease write conflicted");
        return "conflict";
      }
      this.#logger.warn(errorFields(err), "Lease request failed");
      return "not-held";
    }
  }

  async #release(): Promise<void> {
    try {
      const current = await withTimeout(
        this.#clock,
        this.#store.get(),
        this.#timings.renewDeadlineMs,
        "reading the Lease",
      );
      if (current === undefined || current.record.holderIdentity !== this.identity) return;
      const now = this.#clock.now();
      await withTimeout(
        this.#clock,
        this.#store.update(
          {
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: current.record.leaseTransitions,
          },
          current.resourceVersion,
        ),
        this.#timings.renewDeadlineMs,
        "releasing the Lease",
      );
      this.#leader = undefined;
      this.#logger.info("released the Lease");
    } catch (err) {
      this.#logger.warn(errorFields(err), "could not release the Lease; it will expire");
    }
  }

  #observeLeader(holder: string, callbacks: LeaderCallbacks): void {
    if (holder === this.#leader) return;
    this.#leader = holder;
    this.#logger.info({ holder }, "new leader observed");
    try {
      callbacks.onNewLeader?.(holder);
    } catch (err) {
      this.#logger.error(errorFields(err), "onNewLeader threw");
    }
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#metrics?.leaderStatus.set({ name: this.#store.description }, leading ? 1 : 0);
  }
}
