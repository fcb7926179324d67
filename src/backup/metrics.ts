/**
 * `openbao_backup_*` metrics. Gauges are set from `status.backup` and the conditions on every
 * reconcile (so a restarted or newly elected operator reports the truth at once); counters
 * move only when a Job's result is recorded, which happens exactly once per Job (SPEC §5
 * trap 9: every metric declared here is updated by the controller, and a test scrapes them).
 *
 * Nothing may lie by absence (issue 16): for every cluster with `spec.backup` each series an
 * alert reads exists from the first reconcile on —
 * - every counter, for every `type`, starts at 0, so the first failure is an increase;
 * - `openbao_backup_last_success_timestamp_seconds` is 0 until a backup succeeded, and
 *   `openbao_backup_schedule_observed_timestamp_seconds` says since when one is expected, so
 *   "never succeeded" is a comparison, not a missing series;
 * - `openbao_backup_blocked` has one series per blocked reason (0 or 1);
 * - with `spec.backup.additionalTargets`, every destination (`primary` and each name) has its
 *   `openbao_backup_destination_*` series, the counter at 0 and the last success at 0 until it
 *   holds a copy.
 * Series are removed when the cluster or its `spec.backup` goes away, or a destination is dropped.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { BackupType, BlockedReason, type BlockedReasonValue, Condition } from "../api/constants.ts";
import { fromTimestamp } from "../api/predicates.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import type { RecordedOutcome } from "./plan.ts";
import { backupIntervalSeconds, intervalWindows } from "./schedule.ts";

const labelNames = ["namespace", "cluster"] as const;

/** The conditions exported as `openbao_backup_condition`. */
export const exportedConditions = [
  Condition.BackupHealthy,
  Condition.BackingUp,
  Condition.PreUpgradeSnapshotReady,
  // Set by the drill manager (src/drill/manager/); exported here with the others, one series per cluster.
  Condition.RestoreVerified,
  // With spec.backup.additionalTargets only.
  Condition.DestinationsHealthy,
] as const;

export interface BackupMetrics {
  /**
   * Sets every gauge of `cluster` from its status; `blocked` is what preflight refused this
   * pass (empty when nothing is blocked).
   */
  observe(cluster: OpenBaoCluster, blocked?: readonly BlockedReasonValue[]): void;
  recorded(cluster: OpenBaoCluster, outcome: RecordedOutcome): void;
  forget(namespace: string, name: string): void;
}

export function backupMetrics(registry: Registry, now: () => Date = () => new Date()): BackupMetrics {
  const registers = [registry];
  const gauge = <L extends string = never>(name: string, help: string, extra: readonly L[] = []) =>
    new Gauge<(typeof labelNames)[number] | L>({ name, help, labelNames: [...labelNames, ...extra], registers });
  const counter = <L extends string = never>(name: string, help: string, extra: readonly L[] = []) =>
    new Counter<(typeof labelNames)[number] | L>({ name, help, labelNames: [...labelNames, ...extra], registers });
  const lastSuccess = gauge(
    "openbao_backup_last_success_timestamp_seconds",
    "Unix time of the last successful backup; 0 while none has succeeded.",
  );
  const lastSize = gauge("openbao_backup_last_size_bytes", "Size of the last successful snapshot.");
  const lastDuration = gauge("openbao_backup_last_duration_seconds", "Duration of the last successful backup Job.");
  const inProgress = gauge("openbao_backup_in_progress", "1 while a backup Job of the cluster runs.");
  const failures = gauge("openbao_backup_consecutive_failures", "Failed backup Jobs since the last success.");
  const nextWindow = gauge("openbao_backup_next_scheduled_timestamp_seconds", "Unix time of the next cron window.");
  const lastAttempt = gauge(
    "openbao_backup_last_attempt_timestamp_seconds",
    "Unix time the last backup Job was created; 0 while none was.",
  );
  const observedSince = gauge(
    "openbao_backup_schedule_observed_timestamp_seconds",
    "Unix time the operator first saw the current schedule: since when backups are expected.",
  );
  const interval = gauge(
    "openbao_backup_schedule_interval_seconds",
    `Longest gap between the next ${intervalWindows} cron windows; absent while the schedule is suspended or invalid.`,
  );
  const blockedGauge = gauge(
    "openbao_backup_blocked",
    "1 while preflight refuses to start a due backup for this reason, else 0 (one series per reason).",
    ["reason"],
  );
  const condition = gauge(
    "openbao_backup_condition",
    "1 for the current status and reason of each condition of the OpenBaoCluster the operator sets.",
    ["condition", "status", "reason"],
  );
  const success = counter("openbao_backup_success_total", "Backup Jobs that succeeded.", ["type"]);
  const failure = counter("openbao_backup_failure_total", "Backup Jobs that failed.", ["type"]);
  const deleted = counter("openbao_backup_retention_deleted_total", "Snapshots deleted by retention.");
  const retentionFailures = counter(
    "openbao_backup_retention_failures_total",
    "Successful backups whose retention failed: an object it could not delete, or no listing at all.",
  );
  const destinationLastSuccess = gauge(
    "openbao_backup_destination_last_success_timestamp_seconds",
    "With additional targets: Unix time of the last verified copy in this destination; 0 while it holds none.",
    ["destination"],
  );
  const destinationFailures = counter(
    "openbao_backup_destination_failures_total",
    "With additional targets: backup Jobs that reported this destination without a verified copy (whatever the success policy made of the Job).",
    ["destination"],
  );
  /** The destinations whose series exist, per cluster, to remove those no longer configured. */
  const destinationSeries = new Map<string, Set<string>>();
  const gauges = [lastSuccess, lastSize, lastDuration, inProgress, failures, nextWindow, lastAttempt, observedSince];
  const counters = [success, failure];
  /** The condition series last set per cluster, to remove one whose status or reason changed. */
  const conditionSeries = new Map<string, Map<string, { status: string; reason: string }>>();
  const types = Object.values(BackupType);

  const forget = (namespace: string, name: string): void => {
    const labels = { namespace, cluster: name };
    for (const m of [...gauges, interval, deleted, retentionFailures]) m.remove(labels);
    for (const reason of Object.values(BlockedReason)) blockedGauge.remove({ ...labels, reason });
    for (const type of types) for (const c of counters) c.remove({ ...labels, type });
    const key = `${namespace}/${name}`;
    for (const [type, set] of conditionSeries.get(key) ?? []) condition.remove({ ...labels, condition: type, ...set });
    conditionSeries.delete(key);
    setDestinations(labels, []);
  };

  /** Keeps the destination series of one cluster to exactly `names`. */
  const setDestinations = (labels: { namespace: string; cluster: string }, names: readonly string[]): void => {
    const key = `${labels.namespace}/${labels.cluster}`;
    for (const old of destinationSeries.get(key) ?? []) {
      if (names.includes(old)) continue;
      destinationLastSuccess.remove({ ...labels, destination: old });
      destinationFailures.remove({ ...labels, destination: old });
    }
    if (names.length === 0) destinationSeries.delete(key);
    else destinationSeries.set(key, new Set(names));
    for (const destination of names) destinationFailures.inc({ ...labels, destination }, 0);
  };

  return {
    observe(cluster, blocked = []) {
      const namespace = cluster.metadata.namespace ?? "";
      const name = cluster.metadata.name ?? "";
      const spec = cluster.spec?.backup;
      if (!spec) {
        forget(namespace, name);
        return;
      }
      const labels = { namespace, cluster: name };
      for (const type of types) for (const c of counters) c.inc({ ...labels, type }, 0);
      deleted.inc(labels, 0);
      retentionFailures.inc(labels, 0);

      const b = cluster.status?.backup;
      lastSuccess.set(labels, seconds(b?.lastBackupTime) ?? 0);
      if (b?.lastBackupSize !== undefined) lastSize.set(labels, b.lastBackupSize);
      inProgress.set(labels, b?.currentJob ? 1 : 0);
      failures.set(labels, b?.consecutiveFailures ?? 0);
      lastAttempt.set(labels, seconds(b?.lastAttemptTime) ?? 0);
      const next = seconds(b?.nextScheduledBackup);
      if (next !== undefined) nextWindow.set(labels, next);
      else nextWindow.remove(labels);
      const observed = seconds(b?.observedSchedule?.observedTime);
      if (observed !== undefined) observedSince.set(labels, observed);
      else observedSince.remove(labels);
      const gap = backupIntervalSeconds(spec, now());
      if (gap !== undefined) interval.set(labels, gap);
      else interval.remove(labels);
      for (const reason of Object.values(BlockedReason)) {
        blockedGauge.set({ ...labels, reason }, blocked.includes(reason) ? 1 : 0);
      }
      const additional = spec.additionalTargets ?? [];
      const names = additional.length === 0 ? [] : ["primary", ...additional.map((t) => t.name)];
      setDestinations(labels, names);
      for (const destination of names) {
        const recorded = b?.destinations?.find((d) => d.name === destination);
        destinationLastSuccess.set({ ...labels, destination }, seconds(recorded?.lastBackupTime) ?? 0);
      }

      const key = `${namespace}/${name}`;
      const before = conditionSeries.get(key) ?? new Map<string, { status: string; reason: string }>();
      const after = new Map<string, { status: string; reason: string }>();
      for (const type of exportedConditions) {
        const c = cluster.status?.conditions?.find((x) => x.type === type);
        if (c) after.set(type, { status: c.status, reason: c.reason });
      }
      for (const [type, set] of before) {
        const now = after.get(type);
        if (now?.status !== set.status || now.reason !== set.reason) {
          condition.remove({ ...labels, condition: type, ...set });
        }
      }
      for (const [type, set] of after) condition.set({ ...labels, condition: type, ...set }, 1);
      conditionSeries.set(key, after);
    },
    recorded(cluster, outcome) {
      const labels = { namespace: cluster.metadata.namespace ?? "", cluster: cluster.metadata.name ?? "" };
      (outcome.ok ? success : failure).inc({ ...labels, type: outcome.type });
      if (outcome.ok && outcome.durationMs !== undefined) lastDuration.set(labels, outcome.durationMs / 1000);
      if (outcome.ok && outcome.retentionDeleted) deleted.inc(labels, outcome.retentionDeleted);
      if (outcome.ok && outcome.retentionFailed) retentionFailures.inc(labels);
      for (const d of outcome.destinations ?? []) {
        if (!d.ok) destinationFailures.inc({ ...labels, destination: d.name });
      }
    },
    forget,
  };
}

function seconds(timestamp: string | undefined): number | undefined {
  const at = fromTimestamp(timestamp);
  return at === undefined ? undefined : at.getTime() / 1000;
}
