/**
 * `openbao_restore_*` metrics. Counters move only on transitions the planner reports
 * (`started`, `finished`), which happen exactly once per restore because each is an
 * optimistic status write. Gauges are recomputed from the OpenBaoRestore cache on every
 * reconcile of a cluster's restore, so a restarted or newly elected operator reports the
 * truth at once (SPEC §5 trap 9: every metric declared here is updated, and a test scrapes
 * them).
 *
 * The first failed restore must alert (issue 16). `openbao_restore_failure_total` is labelled
 * by an open set of reason codes, so its series for a reason first appears already at 1 and
 * `increase()` reads 0 there; the alert reads `openbao_restore_last_failure_timestamp_seconds`
 * instead, recomputed from the Failed OpenBaoRestores (leader changes included). The
 * reason-less counters start at 0 for every cluster with a restore.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { fromTimestamp } from "../api/predicates.ts";
import type { OpenBaoRestore } from "../api/types.ts";
import type { RestoreOutcome } from "./plan.ts";

const labelNames = ["namespace", "cluster"] as const;

export interface RestoreMetrics {
  /** A restore Job was started. */
  started(namespace: string, cluster: string): void;
  /** A restore reached Completed or Failed (or was deleted while running). */
  finished(namespace: string, cluster: string, outcome: RestoreOutcome): void;
  /** Recomputes the gauges of one cluster from all its OpenBaoRestores. */
  observe(namespace: string, cluster: string, restores: readonly OpenBaoRestore[]): void;
}

export function restoreMetrics(registry: Registry): RestoreMetrics {
  const total = new Counter({
    name: "openbao_restore_total",
    help: "Restore Jobs started (each OpenBaoRestore starts at most one).",
    labelNames,
    registers: [registry],
  });
  const success = new Counter({
    name: "openbao_restore_success_total",
    help: "OpenBaoRestores that reached Completed.",
    labelNames,
    registers: [registry],
  });
  const failure = new Counter({
    name: "openbao_restore_failure_total",
    help: "OpenBaoRestores that reached Failed (or were deleted while running), by reason code.",
    labelNames: [...labelNames, "reason"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "openbao_restore_duration_seconds",
    help: "Time from the start of a restore Job to its recorded result.",
    labelNames,
    buckets: [5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers: [registry] });
  const inProgress = gauge("openbao_restore_in_progress", "1 while a restore of the cluster is Running.");
  const lastSuccess = gauge(
    "openbao_restore_last_success_timestamp_seconds",
    "Unix time the last Completed restore of the cluster finished.",
  );
  const lastSize = gauge("openbao_restore_last_size_bytes", "Bytes restored by the last Completed restore.");
  const lastDuration = gauge(
    "openbao_restore_last_duration_seconds",
    "Duration of the last Completed restore of the cluster.",
  );
  const lastFailure = gauge(
    "openbao_restore_last_failure_timestamp_seconds",
    "Unix time the last Failed OpenBaoRestore of the cluster finished; absent while none exists.",
  );

  return {
    started(namespace, cluster) {
      total.inc({ namespace, cluster });
    },
    finished(namespace, cluster, outcome) {
      const labels = { namespace, cluster };
      if (outcome.ok) success.inc(labels);
      else failure.inc({ ...labels, reason: outcome.reason });
      if (outcome.durationMs !== undefined) duration.observe(labels, outcome.durationMs / 1000);
    },
    observe(namespace, cluster, restores) {
      const labels = { namespace, cluster };
      total.inc(labels, 0);
      success.inc(labels, 0);
      inProgress.set(labels, restores.some((r) => r.status?.phase === "Running") ? 1 : 0);
      let last: { at: Date; restore: OpenBaoRestore } | undefined;
      let failedAt: Date | undefined;
      for (const r of restores) {
        const at = fromTimestamp(r.status?.completionTime);
        if (r.status?.phase === "Failed" && at && (!failedAt || at > failedAt)) failedAt = at;
        if (r.status?.phase !== "Completed") continue;
        if (at && (!last || at > last.at)) last = { at, restore: r };
      }
      if (failedAt) lastFailure.set(labels, failedAt.getTime() / 1000);
      else lastFailure.remove(labels);
      if (!last) return;
      lastSuccess.set(labels, last.at.getTime() / 1000);
      const size = last.restore.status?.snapshotSize;
      if (size !== undefined) lastSize.set(labels, size);
      const start = fromTimestamp(last.restore.status?.startTime);
      if (start) lastDuration.set(labels, Math.max(0, last.at.getTime() - start.getTime()) / 1000);
    },
  };
}
