/**
 * The Manager runs everything of one operator process: shared informers, controllers and
 * other runnables, leader election, and the /healthz, /readyz and /metrics server.
 *
 * Invariants:
 * - Informers (caches) and runnables with `needsLeaderElection: false` run on every replica;
 *   controllers and other leader-only runnables start only once this replica holds the Lease
 *   (at once when leader election is disabled). The health server runs from `start()` to
 *   the end of `stop()` on every replica; `/readyz` is 200 once every informer has synced.
 * - Informers are shared: asking twice for the same resource returns the same informer.
 * - Graceful stop (`stop()`, SIGTERM via `stopOnSignals`): leader-only runnables are told to
 *   stop and awaited (in-flight reconciles finish, queued keys are dropped) while the Lease
 *   is still renewed; then the Lease is released, so a successor starts within one retry
 *   period; then informers, other runnables and the server stop. The whole stop is bounded
 *   by `gracefulShutdownTimeoutMs`; if runnables do not finish in time the Lease is not
 *   released (it expires instead), so a successor never overlaps them.
 * - Losing the Lease is final: leader-only work stops at once and the whole Manager stops
 *   with reason "leadership-lost" — it does not campaign again with caches and timers of a
 *   past term. The process is expected to exit then (`runUntilStopped` returns exit code
 *   1) so Kubernetes restarts it as a fresh candidate. The state lives in the API server,
 *   so nothing is lost by exiting.
 * - A runnable whose `start` rejects stops the Manager with reason "failed".
 */
import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { errorFields, type Logger, silentLogger } from "../observability/logger.ts";
import { createRegistry } from "../observability/metrics.ts";
import { type HealthServer, type ReadinessCheck, startHealthServer } from "../observability/server.ts";
import { type Clock, systemClock } from "./clock.ts";
import { Controller, type ControllerOptions } from "./controller.ts";
import { Informer, type InformerOptions, type KubeObject, type ResourceRef, resourcePath } from "./informer.ts";
import { shareConnections } from "./kube-connections.ts";
import {
  type ElectionOutcome,
  type ElectionTimings,
  KubeLeaseStore,
  LeaderElector,
  type LeaseStore,
} from "./leader-election.ts";

/** Anything the Manager runs: resolves after `signal` aborts and its work has stopped. */
export interface Runnable {
  readonly name: string;
  /** true: runs only while this replica leads. */
  readonly needsLeaderElection: boolean;
  start(signal: AbortSignal): Promise<void>;
}

export interface LeaderElectionOptions extends ElectionTimings {
  /** Namespace of the Lease (the operator's own). */
  readonly namespace: string;
  /** Lease name, e.g. `openbao-backup-operator`. */
  readonly name: string;
  /** Unique per replica; default `<hostname>_<random>`. */
  readonly identity?: string;
  /** Release the Lease on graceful stop; default true (false makes a stop look like a crash). */
  readonly releaseOnCancel?: boolean;
  /** Another Lease backend, for tests of the election itself. */
  readonly store?: LeaseStore;
}

export interface ManagerOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger?: Logger;
  /** Default: a new registry with Node process metrics. */
  readonly registry?: Registry;
  readonly clock?: Clock;
  /** The probe/metrics listener; `false` for none. Default port 8080 on 0.0.0.0. */
  readonly health?: { readonly host?: string; readonly port: number } | false;
  /** `false` (default) runs leader-only work at once: for a single replica or tests. */
  readonly leaderElection?: LeaderElectionOptions | false;
  /** Upper bound of a graceful stop; default 30 s. */
  readonly gracefulShutdownTimeoutMs?: number;
  /** Passed to every informer (backoff, page size…). */
  readonly informerDefaults?: Partial<Omit<InformerOptions, "kubeConfig" | "resource">>;
}

export type StopReason = "stopped" | "leadership-lost" | "failed";

type ManagerState = "new" | "running" | "stopping" | "stopped";

export class Manager {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: Clock;
  /** Resolves with the reason once the Manager has completely stopped. */
  readonly done: Promise<StopReason>;
  readonly #options: ManagerOptions;
  readonly #informers = new Map<string, Informer<KubeObject>>();
  readonly #runnables: Runnable[] = [];
  readonly #elector: LeaderElector | undefined;
  readonly #stopAll = new AbortController();
  #leaderStop: AbortController | undefined;
  #leaderRunning: Promise<void>[] = [];
  #otherRunning: Promise<void>[] = [];
  #election: Promise<ElectionOutcome> | undefined;
  #server: HealthServer | undefined;
  #state: ManagerState = "new";
  #stopping: Promise<void> | undefined;
  #resolveDone: (reason: StopReason) => void = () => undefined;

  constructor(options: ManagerOptions) {
    this.#options = options;
    // One keep-alive connection pool for every API client and watch of this process.
    this.kubeConfig = shareConnections(options.kubeConfig);
    this.logger = options.logger ?? silentLogger();
    this.registry = options.registry ?? createRegistry();
    this.clock = options.clock ?? systemClock;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    const election = options.leaderElection;
    if (election) {
      const identity = election.identity ?? `${hostname()}_${Math.random().toString(36).slice(2, 10)}`;
      this.#elector = new LeaderElector({
        store: election.store ?? new KubeLeaseStore(options.kubeConfig, election.namespace, election.name),
        identity,
        ...(election.leaseDurationMs === undefined ? {} : { leaseDurationMs: election.leaseDurationMs }),
        ...(election.renewDeadlineMs === undefined ? {} : { renewDeadlineMs: election.renewDeadlineMs }),
        ...(election.retryPeriodMs === undefined ? {} : { retryPeriodMs: election.retryPeriodMs }),
        ...(election.releaseOnCancel === undefined ? {} : { releaseOnCancel: election.releaseOnCancel }),
        clock: this.clock,
        logger: this.logger.child({ component: "leader-election" }),
        registry: this.registry,
      });
    }
  }

  /** This replica's identity in the election (undefined without leader election). */
  get identity(): string | undefined {
    return this.#elector?.identity;
  }

  /** True while leader-only work may run: holding the Lease, or no election configured. */
  isLeader(): boolean {
    if (this.#state !== "running") return false;
    return this.#elector === undefined ? true : this.#elector.isLeader();
  }

  /** The holder of the Lease as last observed (undefined without leader election or before the first read). */
  leaderIdentity(): string | undefined {
    return this.#elector?.leader();
  }

  /** Base URL of the health server once started, e.g. `http://127.0.0.1:43123`. */
  get healthUrl(): string | undefined {
    return this.#server?.url;
  }

  /**
   * The shared informer of `resource` (created on first use; started by `start`). A
   * `transform` applies to the cache, so only the first caller's counts for a resource.
   */
  informer<T extends KubeObject>(
    resource: ResourceRef,
    options: { readonly transform?: (object: KubeObject) => KubeObject } = {},
  ): Informer<T> {
    const id = [resourcePath(resource), resource.labelSelector ?? "", resource.fieldSelector ?? ""].join("|");
    let informer = this.#informers.get(id);
    if (informer === undefined) {
      informer = new Informer<KubeObject>({
        ...this.#options.informerDefaults,
        ...options,
        kubeConfig: this.kubeConfig,
        resource,
        logger: this.logger,
        registry: this.registry,
        clock: this.clock,
      });
      this.#informers.set(id, informer);
      if (this.#state === "running") informer.start();
    }
    return informer as unknown as Informer<T>;
  }

  /** A leader-only controller; call `.watch(...)` on it before `start()`. */
  controller(options: Omit<ControllerOptions, "logger" | "registry" | "clock">): Controller {
    const controller = new Controller({
      ...options,
      logger: this.logger,
      registry: this.registry,
      clock: this.clock,
    });
    this.add({ name: `controller/${options.name}`, needsLeaderElection: true, start: (s) => controller.start(s) });
    return controller;
  }

  add(runnable: Runnable): void {
    if (this.#state !== "new") throw new Error(`manager: cannot add ${runnable.name} after start()`);
    this.#runnables.push(runnable);
  }

  /** Every informer has completed its first list. */
  ready(): boolean {
    return [...this.#informers.values()].every((informer) => informer.hasSynced());
  }

  /**
   * Starts the server, the informers, the runnables that need no leadership and the election.
   * Resolves once all of that is under way (not when this replica leads: see `isLeader`).
   */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("manager: start() called twice");
    this.#state = "running";
    const health = this.#options.health ?? { port: 8080 };
    try {
      if (health !== false) {
        this.#server = await startHealthServer({
          ...(health.host === undefined ? {} : { host: health.host }),
          port: health.port,
          registry: this.registry,
          readiness: () => this.#readinessChecks(),
          logger: this.logger,
        });
      }
    } catch (err) {
      this.#state = "stopped";
      this.#resolveDone("failed");
      throw err;
    }
    for (const informer of this.#informers.values()) informer.start();
    this.#otherRunning = this.#runnables
      .filter((runnable) => !runnable.needsLeaderElection)
      .map((runnable) => this.#run(runnable, this.#stopAll.signal));

    if (this.#elector === undefined) {
      this.#startLeaderWork(this.#stopAll.signal);
      return;
    }
    this.#election = this.#elector.run(this.#stopAll.signal, {
      onStartedLeading: (signal) => this.#startLeaderWork(signal),
      onStoppedLeading: () => this.#stopLeaderWork(),
    });
    this.#election.then(
      (outcome) => {
        if (outcome === "lost") void this.#stop("leadership-lost");
      },
      (err: unknown) => {
        this.logger.error(errorFields(err), "leader election crashed");
        void this.#stop("failed");
      },
    );
    this.logger.info({ identity: this.#elector.identity }, "campaigning for leadership");
  }

  /** Graceful stop; see the module doc. Idempotent. */
  stop(): Promise<void> {
    return this.#stop("stopped");
  }

  #readinessChecks(): ReadinessCheck[] {
    const checks: ReadinessCheck[] = [
      { name: "manager", check: () => (this.#state === "running" ? true : `manager is ${this.#state}`) },
    ];
    for (const informer of this.#informers.values()) {
      checks.push({ name: `informer ${informer.name}`, check: () => informer.hasSynced() || "not synced" });
    }
    return checks;
  }

  #startLeaderWork(signal: AbortSignal): void {
    const stop = new AbortController();
    signal.addEventListener("abort", () => stop.abort(), { once: true });
    this.#leaderStop = stop;
    this.#leaderRunning = this.#runnables
      .filter((runnable) => runnable.needsLeaderElection)
      .map((runnable) => this.#run(runnable, stop.signal));
  }

  /** Aborts leader-only work and waits for it (bounded by the graceful timeout); false if it did not stop. */
  async #stopLeaderWork(): Promise<boolean> {
    this.#leaderStop?.abort();
    const finished = await this.#within(Promise.all(this.#leaderRunning).then(() => true));
    if (!finished) this.logger.error("leader-only work did not stop within the graceful shutdown timeout");
    return finished;
  }

  #run(runnable: Runnable, signal: AbortSignal): Promise<void> {
    const log = this.logger.child({ runnable: runnable.name });
    return runnable.start(signal).then(
      () => {
        if (!signal.aborted) log.warn("runnable returned before it was asked to stop");
      },
      (err: unknown) => {
        log.error(errorFields(err), "runnable failed");
        void this.#stop("failed");
      },
    );
  }

  /** Resolves `promise`'s value, or false after the graceful shutdown timeout. */
  #within(promise: Promise<boolean>): Promise<boolean> {
    const timeoutMs = this.#options.gracefulShutdownTimeoutMs ?? 30_000;
    return new Promise((resolve) => {
      const timer = this.clock.setTimer(() => resolve(false), timeoutMs);
      void promise.then((value) => {
        timer.cancel();
        resolve(value);
      });
    });
  }

  #stop(reason: StopReason): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (this.#state === "new" || this.#state === "stopped") {
      this.#state = "stopped";
      this.#resolveDone(reason);
      this.#stopping = Promise.resolve();
      return this.#stopping;
    }
    this.#state = "stopping";
    this.logger.info({ reason }, "stopping");
    this.#stopping = (async () => {
      // 1. Leader-only work, then the Lease (the elector sequences both on abort).
      this.#stopAll.abort();
      if (this.#election !== undefined) {
        await this.#election.catch(() => undefined);
      } else {
        await this.#stopLeaderWork();
      }
      // 2. The rest: runnables that need no leadership, then the caches.
      await this.#within(Promise.all(this.#otherRunning).then(() => true));
      await Promise.all([...this.#informers.values()].map((informer) => informer.stop()));
      // 3. The probes last, so /healthz answers until the very end.
      await this.#server?.close();
      this.#state = "stopped";
      this.logger.info({ reason }, "stopped");
      this.#resolveDone(reason);
    })();
    return this.#stopping;
  }
}

/**
 * Stops the Manager gracefully on the first SIGTERM/SIGINT; a second one exits at once.
 * Returns a function that removes the handlers.
 */
export function stopOnSignals(
  manager: Manager,
  signals: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"],
): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (received) {
      manager.logger.warn({ signal }, "second signal; exiting now");
      process.exit(1);
    }
    received = true;
    manager.logger.info({ signal }, "signal received; shutting down");
    void manager.stop();
  };
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}

/**
 * For the `operator` and `monitor` commands: starts the Manager, stops it on SIGTERM/SIGINT,
 * and resolves with the process exit code — 0 after a requested stop, 1 after losing the
 * Lease or a failure (Kubernetes then restarts the container as a fresh candidate). The
 * process then ends even if something is still pending (`exitWhenStopped`).
 */
export async function runUntilStopped(manager: Manager): Promise<number> {
  const removeHandlers = stopOnSignals(manager);
  let code = 1;
  try {
    await manager.start();
    const reason = await manager.done;
    code = reason === "stopped" ? 0 : 1;
  } catch (err) {
    manager.logger.error(errorFields(err), "manager failed to start");
    await manager.stop();
  } finally {
    removeHandlers();
  }
  exitWhenStopped(manager.logger, code);
  return code;
}

/** How long a stopped Manager's process may take to end by itself before it is ended. */
export const exitGraceMs = 1000;

/**
 * A stopped Manager's process must end: a replica that lost its Lease must neither linger nor
 * keep writing. A request to an API server that stalls outlives the stop — a Lease renewal
 * that timed out is still waiting for its answer, a reconcile past the graceful timeout too —
 * and keeps the event loop alive: in CI a replica stayed up after "stopped" until the kubelet
 * killed it. The process exits by itself when nothing is pending; otherwise this ends it.
 */
function exitWhenStopped(logger: Logger, code: number): void {
  const timer = setTimeout(() => {
    logger.warn({ exitCode: code }, "requests still pending after the manager stopped; exiting without them");
    process.exit(code);
  }, exitGraceMs);
  timer.unref();
}
