/**
 * `openbao_backup_drill_*` metrics. Gauges are set from `status.backup.drill`,
 * `status.backup.lastDrill` and the schedule on every reconcile (a restarted operator reports
 * the truth at once); counters move only when a drill's result is recorded, once per Job.
 *
 * Nothing lies by absence: for every cluster with `spec.backup.drill` each series an alert
 * reads exists from the first reconcile — the counters at 0, the last success at 0 until a
 * drill passed, `openbao_backup_drill_last_outcome` with one series per outcome (`none` until
 * a drill finished), and since when drills are expected. `RestoreVerified` itself is exported
 * with the other conditions as `openbao_backup_condition` (src/backup/metrics.ts).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { fromTimestamp } from "../../api/predicates.ts";
import type { OpenBaoCluster } from "../../api/types.ts";
import { backupIntervalSeconds, intervalWindows } from "../../backup/schedule.ts";
import type { RecordedDrill } from "./plan.ts";

const labelNames = ["namespace", "cluster"] as const;
/** The values of `outcome` on `openbao_backup_drill_last_outcome`. */
export const drillOutcomes = ["verified", "loaded", "failed", "none"] as const;

export interface DrillMetrics {
  observe(cluster: OpenBaoCluster): void;
  recorded(cluster: OpenBaoCluster, drill: RecordedDrill): void;
  forget(namespace: string, name: string): void;
}

export function drillMetrics(registry: Registry, now: () => Date = () => new Date()): DrillMetrics {
  const registers = [registry];
  const gauge = <L extends string = never>(name: string, help: string, extra: readonly L[] = []) =>
    new Gauge<(typeof labelNames)[number] | L>({ name, help, labelNames: [...labelNames, ...extra], registers });
  const lastSuccess = gauge(
    "openbao_backup_drill_last_success_timestamp_seconds",
    "Unix time the last restore drill that passed (loaded or verified) finished; 0 while none has.",
  );
  const lastOutcome = gauge(
    "openbao_backup_drill_last_outcome",
    "1 for the outcome of the last restore drill (verified, loaded, failed; none before the first), else 0.",
    ["outcome"],
  );
  const lastDuration = gauge("openbao_backup_drill_last_duration_seconds", "Duration of the last restore drill.");
  const inProgress = gauge("openbao_backup_drill_in_progress", "1 while a restore drill Job of the cluster runs.");
  const failures = gauge(
    "openbao_backup_drill_consecutive_failures",
    "Failed restore drills since the last one that passed.",
  );
  const observedSince = gauge(
    "openbao_backup_drill_schedule_observed_timestamp_seconds",
    "Unix time the operator first saw the current drill schedule: since when drills are expected.",
  );
  const interval = gauge(
    "openbao_backup_drill_schedule_interval_seconds",
    `Longest gap between the next ${intervalWindows} drill windows; absent while drills are suspended or the schedule is invalid.`,
  );
  const total = new Counter<(typeof labelNames)[number] | "outcome">({
    name: "openbao_backup_drill_total",
    help: "Restore drills recorded, by outcome (verified, loaded, failed).",
    labelNames: [...labelNames, "outcome"],
    registers,
  });
  const gauges = [lastSuccess, lastDuration, inProgress, failures, observedSince, interval];

  const forget = (namespace: string, name: string): void => {
    const labels = { namespace, cluster: name };
    for (const g of gauges) g.remove(labels);
    for (const outcome of drillOutcomes) {
      lastOutcome.remove({ ...labels, outcome });
      if (outcome !== "none") total.remove({ ...labels, outcome });
    }
  };

  return {
    observe(cluster) {
      const namespace = cluster.metadata.namespace ?? "";
      const name = cluster.metadata.name ?? "";
      const spec = cluster.spec?.backup;
      const drill = spec?.drill;
      if (!spec || !drill) {
        forget(namespace, name);
        return;
      }
      const labels = { namespace, cluster: name };
      for (const outcome of drillOutcomes) if (outcome !== "none") total.inc({ ...labels, outcome }, 0);
      const state = cluster.status?.backup?.drill;
      const last = cluster.status?.backup?.lastDrill;
      lastSuccess.set(labels, seconds(state?.lastSuccessTime) ?? 0);
      const current = last?.outcome ?? "none";
      for (const outcome of drillOutcomes) lastOutcome.set({ ...labels, outcome }, outcome === current ? 1 : 0);
      inProgress.set(labels, state?.currentJob ? 1 : 0);
      failures.set(labels, state?.consecutiveFailures ?? 0);
      const observed = seconds(state?.observedSchedule?.observedTime);
      if (observed !== undefined) observedSince.set(labels, observed);
      else observedSince.remove(labels);
      const gap = backupIntervalSeconds({ ...drill, timeZone: drill.timeZone ?? spec.timeZone }, now());
      if (gap !== undefined) interval.set(labels, gap);
      else interval.remove(labels);
    },
    recorded(cluster, drill) {
      const labels = { namespace: cluster.metadata.namespace ?? "", cluster: cluster.metadata.name ?? "" };
      total.inc({ ...labels, outcome: drill.outcome });
      if (drill.durationMs !== undefined) lastDuration.set(labels, drill.durationMs / 1000);
    },
    forget,
  };
}

function seconds(timestamp: string | undefined): number | undefined {
  const at = fromTimestamp(timestamp);
  return at === undefined ? undefined : at.getTime() / 1000;
}
