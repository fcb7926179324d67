/**
 * `openbao_backup_*` metrics. Gauges are set from `status.backup` on every reconcile (so a
 * restarted or newly elected operator reports the truth at once); counters move only when
 * a Job's result is recorded, which happens exactly once per Job (SPEC §5 trap 9: every
 * metric declared here is updated by the controller, and a test scrapes them).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { fromTimestamp } from "../api/predicates.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import type { RecordedOutcome } from "./plan.ts";

const labelNames = ["namespace", "cluster"] as const;

export interface BackupMetrics {
  observe(cluster: OpenBaoCluster): void;
  recorded(cluster: OpenBaoCluster, outcome: RecordedOutcome): void;
  forget(namespace: string, name: string): void;
}

export function backupMetrics(registry: Registry): BackupMetrics {
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers: [registry] });
  const counter = (name: string, help: string, extra: readonly string[] = []) =>
    new Counter({ name, help, labelNames: [...labelNames, ...extra], registers: [registry] });
  const lastSuccess = gauge(
    "openbao_backup_last_success_timestamp_seconds",
    "Unix time of the last successful backup.",
  );
  const lastSize = gauge("openbao_backup_last_size_bytes", "Size of the last successful snapshot.");
  const lastDuration = gauge("openbao_backup_last_duration_seconds", "Duration of the last successful backup Job.");
  const inProgress = gauge("openbao_backup_in_progress", "1 while a backup Job of the cluster runs.");
  const failures = gauge("openbao_backup_consecutive_failures", "Failed backup Jobs since the last success.");
  const nextWindow = gauge("openbao_backup_next_scheduled_timestamp_seconds", "Unix time of the next cron window.");
  const success = counter("openbao_backup_success_total", "Backup Jobs that succeeded.", ["type"]);
  const failure = counter("openbao_backup_failure_total", "Backup Jobs that failed.", ["type"]);
  const deleted = counter("openbao_backup_retention_deleted_total", "Snapshots deleted by retention.");
  const all = [lastSuccess, lastSize, lastDuration, inProgress, failures, nextWindow];

  return {
    observe(cluster) {
      const labels = { namespace: cluster.metadata.namespace ?? "", cluster: cluster.metadata.name ?? "" };
      const b = cluster.status?.backup;
      const last = fromTimestamp(b?.lastBackupTime);
      if (last) lastSuccess.set(labels, last.getTime() / 1000);
      if (b?.lastBackupSize !== undefined) lastSize.set(labels, b.lastBackupSize);
      inProgress.set(labels, b?.currentJob ? 1 : 0);
      failures.set(labels, b?.consecutiveFailures ?? 0);
      const next = fromTimestamp(b?.nextScheduledBackup);
      if (next) nextWindow.set(labels, next.getTime() / 1000);
      else nextWindow.remove(labels);
    },
    recorded(cluster, outcome) {
      const labels = { namespace: cluster.metadata.namespace ?? "", cluster: cluster.metadata.name ?? "" };
      (outcome.ok ? success : failure).inc({ ...labels, type: outcome.type });
      if (outcome.ok && outcome.durationMs !== undefined) lastDuration.set(labels, outcome.durationMs / 1000);
      if (outcome.ok && outcome.retentionDeleted) deleted.inc(labels, outcome.retentionDeleted);
    },
    forget(namespace, name) {
      for (const m of all) m.remove({ namespace, cluster: name });
    },
  };
}
