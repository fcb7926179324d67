/**
 * Prometheus metrics. `createRegistry()` makes the one registry a process serves on
 * `/metrics`; product metrics (`openbao_backup_*`, `openbao_restore_*`) are registered on it
 * by their owners, the runtime's own metrics by `runtimeMetrics(registry)`.
 *
 * Invariants:
 * - Registries are never global: tests and several managers in one process each get their
 *   own, so no metric is registered twice by accident.
 * - `runtimeMetrics(registry)` is idempotent per registry: every controller, queue, informer
 *   and elector sharing a registry shares one set of metric objects.
 * - Runtime metric names follow controller-runtime's (`controller_runtime_*`, `workqueue_*`,
 *   `leader_election_master_status`) so existing dashboards and alerts apply.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface RegistryOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC); default true. */
  readonly defaultMetrics?: boolean;
}

export function createRegistry(options: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Result label of `controller_runtime_reconcile_total`. */
export type ReconcileResult = "success" | "requeue_after" | "error" | "terminal_error";

interface QueueGauges {
  len(): number;
  delayedLen(): number;
  processingLen(): number;
}

export interface RuntimeMetrics {
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly terminalReconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly maxConcurrentReconciles: Gauge<"controller">;
  readonly workqueueAdds: Counter<"name">;
  readonly workqueueRetries: Counter<"name">;
  readonly leaderStatus: Gauge<"name">;
  readonly informerSynced: Gauge<"resource">;
  readonly informerLists: Counter<"resource">;
  readonly informerWatchRestarts: Counter<"resource" | "reason">;
  /** Reports `workqueue_depth`, `workqueue_delayed` and `workqueue_processing` for `queue` at each scrape. */
  trackQueue(name: string, queue: QueueGauges): void;
  untrackQueue(name: string): void;
}

const cache = new WeakMap<Registry, RuntimeMetrics>();

export function runtimeMetrics(registry: Registry): RuntimeMetrics {
  const cached = cache.get(registry);
  if (cached !== undefined) return cached;
  const registers = [registry];
  const queues = new Map<string, QueueGauges>();
  const queueGauge = (name: string, help: string, read: (q: QueueGauges) => number): Gauge<"name"> =>
    new Gauge({
      name,
      help,
      labelNames: ["name"] as const,
      registers,
      collect() {
        this.reset();
        for (const [queueName, queue] of queues) this.set({ name: queueName }, read(queue));
      },
    });
  queueGauge("workqueue_depth", "Keys ready to be processed, per work queue.", (q) => q.len());
  queueGauge("workqueue_delayed", "Keys waiting for a requeue or backoff timer, per work queue.", (q) =>
    q.delayedLen(),
  );
  queueGauge("workqueue_processing", "Keys being reconciled, per work queue.", (q) => q.processingLen());

  const metrics: RuntimeMetrics = {
    reconcileTotal: new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Reconciliations per controller and result (success, requeue_after, error, terminal_error).",
      labelNames: ["controller", "result"] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Reconciliations that threw and will be retried with backoff.",
      labelNames: ["controller"] as const,
      registers,
    }),
    terminalReconcileErrors: new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Reconciliations that failed with a TerminalError and are not retried.",
      labelNames: ["controller"] as const,
      registers,
    }),
    reconcileTime: new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Time spent in one reconciliation.",
      labelNames: ["controller"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    activeWorkers: new Gauge({
      name: "controller_runtime_active_workers",
      help: "Workers currently reconciling, per controller.",
      labelNames: ["controller"] as const,
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Workers per controller.",
      labelNames: ["controller"] as const,
      registers,
    }),
    workqueueAdds: new Counter({
      name: "workqueue_adds_total",
      help: "Keys added by event handlers, per work queue.",
      labelNames: ["name"] as const,
      registers,
    }),
    workqueueRetries: new Counter({
      name: "workqueue_retries_total",
      help: "Rate-limited requeues after a failed reconciliation, per work queue.",
      labelNames: ["name"] as const,
      registers,
    }),
    leaderStatus: new Gauge({
      name: "leader_election_master_status",
      help: "1 while this process holds the leader Lease, else 0.",
      labelNames: ["name"] as const,
      registers,
    }),
    informerSynced: new Gauge({
      name: "informer_synced",
      help: "1 once the informer's cache has completed its first list, per resource.",
      labelNames: ["resource"] as const,
      registers,
    }),
    informerLists: new Counter({
      name: "informer_lists_total",
      help: "Full lists (initial sync and every relist), per resource.",
      labelNames: ["resource"] as const,
      registers,
    }),
    informerWatchRestarts: new Counter({
      name: "informer_watch_restarts_total",
      help: "Watches that ended and were restarted, per resource and reason (closed, timeout, expired, error).",
      labelNames: ["resource", "reason"] as const,
      registers,
    }),
    trackQueue(name, queue) {
      queues.set(name, queue);
    },
    untrackQueue(name) {
      queues.delete(name);
    },
  };
  cache.set(registry, metrics);
  return metrics;
}

/**
 * `openbao_backup_operator_leader`: 1 while this replica runs the controllers (it holds the
 * leader Lease, or leader election is off), else 0. Unlike `leader_election_master_status` it
 * exists without leader election too, so an alert can tell "no replica leads" (a sum of 0)
 * from "no replica is scraped" (absent).
 */
export function operatorLeaderGauge(registry: Registry, isLeader: () => boolean): Gauge {
  return new Gauge({
    name: "openbao_backup_operator_leader",
    help: "1 while this replica runs the controllers (holds the leader Lease, or leader election is off), else 0.",
    registers: [registry],
    collect() {
      this.set(isLeader() ? 1 : 0);
    },
  });
}
