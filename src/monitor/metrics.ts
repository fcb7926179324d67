/**
 * What the freshness monitor exports. Every series a rule reads exists for every cluster with
 * `spec.backup` from the monitor's first pass on (issue 16: nothing may lie by absence):
 *
 * - `openbao_backup_storage_newest_verified_timestamp_seconds`: when the newest verified backup
 *   in the bucket was taken; 0 while the bucket holds none. Kept at its last reading while a
 *   probe fails, so a failing probe ages it rather than hiding it.
 * - `openbao_backup_storage_probe_success`: 1 when the last probe read the bucket, else 0.
 * - `openbao_backup_schedule_interval_seconds` and `openbao_backup_schedule_observed_timestamp_seconds`
 *   mean exactly what the operator exports under the same names, computed from the same spec
 *   and status, so the bucket-freshness alert keeps its thresholds with the operator gone.
 * - `openbao_backup_monitor_clusters` and `openbao_backup_monitor_last_pass_timestamp_seconds`
 *   (no labels) exist from start-up: their absence or age is the monitor itself failing.
 */
import { Gauge, type Registry } from "prom-client";

const labelNames = ["namespace", "cluster"] as const;

export interface ClusterReading {
  readonly namespace: string;
  readonly cluster: string;
  /** Seconds; undefined while the schedule is suspended or invalid. */
  readonly intervalSeconds: number | undefined;
  /** Since when backups are expected (Unix seconds). */
  readonly expectedSinceSeconds: number;
}

export interface MonitorMetrics {
  /** Sets the schedule series of a cluster; initialises its storage series if new. */
  expect(reading: ClusterReading): void;
  /** A probe that read the bucket: the newest verified backup's time (Unix seconds; 0 none). */
  probed(namespace: string, cluster: string, newestVerifiedSeconds: number, at: Date): void;
  /** A probe that failed: only `probe_success` changes. */
  probeFailed(namespace: string, cluster: string): void;
  /** A completed pass over `clusters`; series of clusters not among them are removed. */
  passed(clusters: readonly { namespace: string; cluster: string }[], at: Date): void;
}

export function monitorMetrics(registry: Registry): MonitorMetrics {
  const registers = [registry];
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers });
  const newest = gauge(
    "openbao_backup_storage_newest_verified_timestamp_seconds",
    "When the newest verified backup in the bucket was taken (its manifest's created); 0 while none is stored.",
  );
  const success = gauge(
    "openbao_backup_storage_probe_success",
    "1 when the monitor's last reading of the cluster's bucket succeeded, else 0.",
  );
  const lastProbe = gauge(
    "openbao_backup_storage_last_probe_timestamp_seconds",
    "When the monitor last read the cluster's bucket successfully; 0 while it never has.",
  );
  const interval = gauge(
    "openbao_backup_schedule_interval_seconds",
    "Longest gap between the next cron windows; absent while the schedule is suspended or invalid.",
  );
  const observed = gauge(
    "openbao_backup_schedule_observed_timestamp_seconds",
    "Unix time since when backups are expected (the operator's observedSchedule, else the cluster's creation).",
  );
  const clusters = new Gauge({
    name: "openbao_backup_monitor_clusters",
    help: "Clusters with spec.backup the freshness monitor watched in its last pass.",
    registers,
  });
  const lastPass = new Gauge({
    name: "openbao_backup_monitor_last_pass_timestamp_seconds",
    help: "When the freshness monitor last completed a pass over every cluster; 0 before the first.",
    registers,
  });
  clusters.set(0);
  lastPass.set(0);

  const known = new Set<string>();
  const key = (namespace: string, cluster: string) => `${namespace}/${cluster}`;
  return {
    expect({ namespace, cluster, intervalSeconds, expectedSinceSeconds }) {
      const labels = { namespace, cluster };
      if (!known.has(key(namespace, cluster))) {
        known.add(key(namespace, cluster));
        newest.set(labels, 0);
        success.set(labels, 0);
        lastProbe.set(labels, 0);
      }
      if (intervalSeconds === undefined) interval.remove(labels);
      else interval.set(labels, intervalSeconds);
      observed.set(labels, expectedSinceSeconds);
    },
    probed(namespace, cluster, newestVerifiedSeconds, at) {
      const labels = { namespace, cluster };
      newest.set(labels, newestVerifiedSeconds);
      success.set(labels, 1);
      lastProbe.set(labels, at.getTime() / 1000);
    },
    probeFailed(namespace, cluster) {
      success.set({ namespace, cluster }, 0);
    },
    passed(current, at) {
      const keep = new Set(current.map((c) => key(c.namespace, c.cluster)));
      for (const k of known) {
        if (keep.has(k)) continue;
        const [namespace = "", cluster = ""] = k.split("/");
        for (const g of [newest, success, lastProbe, interval, observed]) g.remove({ namespace, cluster });
        known.delete(k);
      }
      clusters.set(current.length);
      lastPass.set(at.getTime() / 1000);
    },
  };
}
