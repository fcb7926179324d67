/**
 * The chart's alert rules (deploy/chart/templates/prometheusrule.yaml) with the real tools:
 * - the real `promtool check rules` accepts them as rendered with the defaults and as shipped
 *   (deploy/prometheus/openbao-backup-rules.yaml), and the shipped file is exactly what
 *   `node test/chart/rules.ts --write` renders (never out of step);
 * - the real `promtool test rules` runs unit tests generated here for EVERY alert of the
 *   rendered group: each fires on at least one input (labels and annotations checked) and
 *   stays quiet on another, and two operator Pods (a leader change) neither split nor double
 *   an alert. They run against the shipped rules and against the chart's default
 *   PrometheusRule (its own scrape selectors, read from the rendered expressions);
 * - every metric a rule (or the Grafana dashboard, deploy/chart/dashboards/openbao-backup.json,
 *   when present) reads is one the code exports, and the per-cluster series the rules group by
 *   (namespace, cluster) carry those labels.
 *
 * promtool time: series start at 0s, one sample per `interval` (1m); `time()` is the eval time.
 * Timestamps are absolute seconds in that clock: "3h before the eval time 6h" is 10800.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { dump } from "js-yaml";
import type { Registry } from "prom-client";
import { BlockedReason } from "../../src/api/constants.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../../src/api/types.ts";
import { backupMetrics } from "../../src/backup/metrics.ts";
import { drillMetrics } from "../../src/drill/manager/metrics.ts";
import { monitorMetrics } from "../../src/monitor/metrics.ts";
import { createRegistry, operatorLeaderGauge, runtimeMetrics } from "../../src/observability/metrics.ts";
import { restoreMetrics } from "../../src/restore/metrics.ts";
import { projectRoot, serverBinary } from "../servers/catalog.ts";
import { removeHelmHome } from "./helm.ts";
import { type RuleFile, renderRules, ruleFileText, shippedRulesFile, shippedRuleValues } from "./rules.ts";

const run = promisify(execFile);

// ── promtool ────────────────────────────────────────────────────────────────────────────────

interface ToolResult {
  readonly code: number;
  readonly output: string;
}

async function promtool(args: readonly string[]): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await run(serverBinary("prometheus", "promtool"), [...args], {
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== "number") throw err;
    return { code: e.code, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

let scratch = "";
let fileCount = 0;
function scratchFile(name: string, text: string): string {
  fileCount += 1;
  const path = join(scratch, `${fileCount}-${name}`);
  writeFileSync(path, text);
  return path;
}

// ── promtool unit tests, generated ──────────────────────────────────────────────────────────

interface InputSeries {
  readonly series: string;
  readonly values: string;
}

interface ExpectedAlert {
  readonly exp_labels: Readonly<Record<string, string>>;
  readonly exp_annotations: Readonly<Record<string, string>>;
}

interface AlertRuleTest {
  readonly eval_time: string;
  readonly alertname: string;
  readonly exp_alerts: readonly ExpectedAlert[];
}

interface UnitTest {
  readonly name: string;
  readonly interval: string;
  readonly input_series: readonly InputSeries[];
  readonly alert_rule_test: readonly AlertRuleTest[];
}

type Labels = Readonly<Record<string, string>>;

/** `name{k="v",…}` in PromQL's series notation. */
function seriesName(name: string, labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${name}{${pairs.join(",")}}`;
}

/**
 * promtool's expanding notation from runs of [value, samples] (one sample a minute):
 * `values([0, 30], [1, 31])` is 0 at 0m…29m and 1 at 30m…60m; "_" is a missing sample.
 */
function values(...runs: readonly (readonly [number | "_", number])[]): string {
  return runs
    .map(([v, n]) => {
      if (v === "_") return `_x${n}`;
      return n === 1 ? `${v}` : `${v}x${n - 1}`;
    })
    .join(" ");
}

const minute = 60;
const hour = 3600;
const day = 1440;
/** The usual eval time, in minutes (6h), and `time()` then, in seconds. */
const end = 360;
const T = end * minute;
/** A gauge that holds `v` from 0 to the eval time (and an hour past it). */
const steady = (v: number): string => values([v, end + 61]);

/** What the scrape selectors of OpenBaoBackupOperatorDown/MonitorDown match, read from the render. */
interface Selectors {
  readonly operator: Labels;
  readonly monitor: Labels;
}

/** The equality matchers of `metric{…}` in `expr`; any other matcher fails (absent() would drop it). */
function selectorOf(expr: string, metric: string): Labels {
  const found = new RegExp(`${metric}\\{([^}]*)\\}`).exec(expr);
  if (!found) throw new Error(`no ${metric}{…} selector in ${expr}`);
  const out: Record<string, string> = {};
  for (const part of (found[1] ?? "").split(",").filter((p) => p.trim() !== "")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(part);
    if (!m?.[1]) throw new Error(`selector of ${metric} is not a list of equality matchers: ${found[1]}`);
    out[m[1]] = JSON.parse(`"${m[2] ?? ""}"`) as string;
  }
  return out;
}

function selectorsOf(rules: RuleFile): Selectors {
  const expr = (alert: string): string => {
    const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
    if (!rule) throw new Error(`${alert} is not rendered`);
    return rule.expr;
  };
  return {
    operator: selectorOf(expr("OpenBaoBackupOperatorDown"), "openbao_backup_operator_leader"),
    monitor: selectorOf(expr("OpenBaoBackupMonitorDown"), "openbao_backup_monitor_last_pass_timestamp_seconds"),
  };
}

const releaseNamespace = "openbao-backup-system";
const runbook = (alert: string): string =>
  `https://github.com/openbao/openbao-backup/blob/main/docs/troubleshooting.md#${alert.toLowerCase()}`;

interface Cluster {
  readonly namespace: string;
  readonly cluster: string;
}
const bao: Cluster = { namespace: "vault-prod", cluster: "bao" };
const other: Cluster = { namespace: "vault-dr", cluster: "bao-dr" };
const third: Cluster = { namespace: "vault-dev", cluster: "bao-dev" };
const cl = (c: Cluster): string => `${c.namespace}/${c.cluster}`;

/** The expected alerts, labels and annotations spelt out. */
const expect = {
  failing: (c: Cluster, failures: number): ExpectedAlert => ({
    exp_labels: { ...c, severity: "warning" },
    exp_annotations: {
      summary: `OpenBao cluster ${cl(c)}: ${failures} consecutive backup failure(s)`,
      description: `Backup Jobs of ${cl(c)} fail. status.backup.lastFailureReason names the failure; the executor exit code maps to it (1 configuration, 2 auth, 3 leader discovery, 4 snapshot, 5 storage, 6 verification).`,
      runbook_url: runbook("OpenBaoBackupFailing"),
    },
  }),
  missed: (c: Cluster, age: string): ExpectedAlert => ({
    exp_labels: { ...c, severity: "critical" },
    exp_annotations: {
      summary: `OpenBao cluster ${cl(c)} has had no successful backup for 2 schedule intervals`,
      description: `The newest good Raft snapshot of ${cl(c)} is ${age} old. Check \`kubectl -n ${c.namespace} get openbaocluster ${c.cluster} -o yaml\` (status.backup, BackingUp/BackupHealthy conditions) and the latest backup Job.`,
      runbook_url: runbook("OpenBaoBackupMissed"),
    },
  }),
  neverSucceeded: (c: Cluster, age: string): ExpectedAlert => ({
    exp_labels: { ...c, severity: "critical" },
    exp_annotations: {
      summary: `OpenBao cluster ${cl(c)} has never had a successful backup`,
      description: `The schedule of ${cl(c)} has been in force for ${age} (2+ intervals) and no backup has succeeded. Look at the BackingUp/BackupHealthy conditions and the backup Jobs.`,
      runbook_url: runbook("OpenBaoBackupNeverSucceeded"),
    },
  }),
  blocked: (c: Cluster, reason: string): ExpectedAlert => ({
    exp_labels: { ...c, reason, severity: "warning" },
    exp_annotations: {
      summary: `Backups of OpenBao cluster ${cl(c)} are blocked: ${reason}`,
      description: `Preflight has refused every due backup of ${cl(c)} for at least 1 schedule interval(s) (${reason}). The BackingUp condition and the BackupBlocked Event say why.`,
      runbook_url: runbook("OpenBaoBackupBlocked"),
    },
  }),
  misconfigured: (c: Cluster, reason: string): ExpectedAlert => ({
    exp_labels: { ...c, reason, severity: "warning" },
    exp_annotations: {
      summary: `OpenBao cluster ${cl(c)}: spec.backup cannot be used (${reason})`,
      description: `No backup (reason DrillInvalid: no restore drill) of ${cl(c)} will run until spec.backup is fixed; the BackupHealthy (DrillInvalid: RestoreVerified) condition's message says what is wrong.`,
      runbook_url: runbook("OpenBaoBackupMisconfigured"),
    },
  }),
  retentionFailing: (c: Cluster): ExpectedAlert => ({
    exp_labels: { ...c, severity: "warning" },
    exp_annotations: {
      summary: `Retention of OpenBao cluster ${cl(c)} failed within 1d`,
      description: `Backups of ${cl(c)} succeed but old snapshots are not removed: the bucket grows. See the RetentionFailed Events and the backup Job's log.`,
      runbook_url: runbook("OpenBaoBackupRetentionFailing"),
    },
  }),
  destinationFailing: (c: Cluster, destination: string): ExpectedAlert => ({
    exp_labels: { ...c, destination, severity: "warning" },
    exp_annotations: {
      summary: `OpenBao cluster ${cl(c)}: destination ${destination} failed to store a backup within 1d`,
      description: `A backup Job of ${cl(c)} reported destination ${destination} without a verified copy. status.backup.destinations and the BackupDestinationFailed Events say why; the other destinations may hold the backup.`,
      runbook_url: runbook("OpenBaoBackupDestinationFailing"),
    },
  }),
  restoreFailed: (c: Cluster): ExpectedAlert => ({
    exp_labels: { ...c, severity: "critical" },
    exp_annotations: {
      summary: `An OpenBaoRestore of ${cl(c)} failed`,
      description: `See \`kubectl -n ${c.namespace} get openbaorestores\` (status.phase Failed, status.message) and the restore runbook.`,
      runbook_url: runbook("OpenBaoRestoreFailed"),
    },
  }),
  drillFailed: (c: Cluster): ExpectedAlert => ({
    exp_labels: { ...c, severity: "critical" },
    exp_annotations: {
      summary: `The last restore drill of OpenBao cluster ${cl(c)} failed: its backup did not restore`,
      description: `status.backup.lastDrill of ${cl(c)} names the drill Job, the backup, the reason and what did not restore (\`kubectl -n ${c.namespace} get openbaocluster ${c.cluster} -o yaml\`); RestoreVerified is False (DrillFailed) and a DrillFailed Event says the same.`,
      runbook_url: runbook("OpenBaoRestoreDrillFailed"),
    },
  }),
  drillStale: (c: Cluster, age: string): ExpectedAlert => ({
    exp_labels: { ...c, severity: "warning" },
    exp_annotations: {
      summary: `No restore drill of OpenBao cluster ${cl(c)} has passed for 2 drill schedule intervals`,
      description: `The last restore drill of ${cl(c)} that passed finished ${age} ago (an age of decades means none ever passed): nothing has proved lately that its backups restore. Look at the RestoreVerified condition, status.backup.drill and the DrillFailed / DrillInvalid Events.`,
      runbook_url: runbook("OpenBaoRestoreDrillStale"),
    },
  }),
  stale: (c: Cluster, value: string): ExpectedAlert => ({
    exp_labels: { ...c, severity: "critical" },
    exp_annotations: {
      summary: `The newest verified backup of OpenBao cluster ${cl(c)} in its bucket is older than 2 schedule intervals`,
      description: `Read from the bucket by the freshness monitor: the newest verified snapshot of ${cl(c)} is ${value} old (an age of decades means none is stored). Run \`bao-backup list ${c.cluster} --kubeconfig <file> --namespace ${c.namespace}\` and check the operator and the backup Jobs.`,
      runbook_url: runbook("OpenBaoBackupStale"),
    },
  }),
  freshnessUnknown: (c: Cluster): ExpectedAlert => ({
    exp_labels: { ...c, severity: "warning" },
    exp_annotations: {
      summary: `The freshness monitor cannot read the bucket of OpenBao cluster ${cl(c)}`,
      description:
        "The monitor's log (component monitor) names the reason: a credentials Secret it may not read (rbac.secretReadNamespaces), a missing Secret, or a storage error.",
      runbook_url: runbook("OpenBaoBackupFreshnessUnknown"),
    },
  }),
  /** `labels`: what the expression leaves (none: both forms go through `or vector(0)`). */
  operatorDown: (labels: Labels): ExpectedAlert => ({
    exp_labels: { ...labels, severity: "critical" },
    exp_annotations: {
      summary: "No openbao-backup operator replica is leading: backups are not scheduled and no backup alert can fire",
      description: `No scraped replica of the operator reports openbao_backup_operator_leader 1. Check the operator Deployment in ${releaseNamespace}, its Lease and its logs, and that Prometheus scrapes it.`,
      runbook_url: runbook("OpenBaoBackupOperatorDown"),
    },
  }),
  monitorDown: (labels: Labels): ExpectedAlert => ({
    exp_labels: { ...labels, severity: "warning" },
    exp_annotations: {
      summary: "The openbao-backup freshness monitor is down: backup freshness is not measured from the buckets",
      description: `No scraped monitor replica has completed a pass recently. Check the openbao-backup-monitor Deployment in ${releaseNamespace} and its log.`,
      runbook_url: runbook("OpenBaoBackupMonitorDown"),
    },
  }),
};

/** One unit test per case; `alertname` of every check must be an alert of the rendered group. */
function unitTests(sel: Selectors): UnitTest[] {
  /** An operator Pod's target labels: the scrape selector's plus its own instance and pod. */
  const operatorPod = (n: number): Labels => ({
    ...sel.operator,
    instance: `10.0.0.${10 + n}:8080`,
    pod: `openbao-backup-7c9d5f-${n}`,
  });
  const monitorPod: Labels = { ...sel.monitor, instance: "10.0.1.10:8080", pod: "openbao-backup-monitor-5b7c-0" };
  const podA = operatorPod(1);
  const podB = operatorPod(2);
  /**
   * A per-cluster series as Prometheus stores it with `honor_labels`: the cluster's own
   * `namespace` and `cluster` over the target's (the target's `namespace`, if any, is dropped).
   */
  const of = (pod: Labels, c: Cluster, name: string, v: string, extra: Labels = {}): InputSeries => {
    const { namespace: _targetNamespace, ...target } = pod;
    return { series: seriesName(name, { ...target, ...c, ...extra }), values: v };
  };
  const op = (c: Cluster, name: string, v: string, extra: Labels = {}): InputSeries => of(podA, c, name, v, extra);
  const mon = (c: Cluster, name: string, v: string): InputSeries => of(monitorPod, c, name, v);
  const leader = (pod: Labels, v: string): InputSeries => ({
    series: seriesName("openbao_backup_operator_leader", pod),
    values: v,
  });
  const lastPass = (v: string): InputSeries => ({
    series: seriesName("openbao_backup_monitor_last_pass_timestamp_seconds", monitorPod),
    values: v,
  });
  const at = (minutes: number): string => `${minutes}m`;
  const check = (alertname: string, minutes: number, exp: readonly ExpectedAlert[]): AlertRuleTest => ({
    eval_time: at(minutes),
    alertname,
    exp_alerts: exp,
  });
  const unit = (name: string, input: readonly InputSeries[], checks: readonly AlertRuleTest[]): UnitTest => ({
    name,
    interval: "1m",
    input_series: input,
    alert_rule_test: checks,
  });
  const interval = (c: Cluster, seconds: number): InputSeries =>
    op(c, "openbao_backup_schedule_interval_seconds", steady(seconds));
  const observed = (c: Cluster, since: number): InputSeries =>
    op(c, "openbao_backup_schedule_observed_timestamp_seconds", steady(since));
  const lastSuccess = (c: Cluster, at: number): InputSeries =>
    op(c, "openbao_backup_last_success_timestamp_seconds", steady(at));
  const lastAttempt = (c: Cluster, at: number): InputSeries =>
    op(c, "openbao_backup_last_attempt_timestamp_seconds", steady(at));
  const blocked = (c: Cluster, reason: string, v: string): InputSeries =>
    op(c, "openbao_backup_blocked", v, { reason });
  const monInterval = (c: Cluster, seconds: number): InputSeries =>
    mon(c, "openbao_backup_schedule_interval_seconds", steady(seconds));
  const monObserved = (c: Cluster, since: number): InputSeries =>
    mon(c, "openbao_backup_schedule_observed_timestamp_seconds", steady(since));
  const newest = (c: Cluster, at: number): InputSeries =>
    mon(c, "openbao_backup_storage_newest_verified_timestamp_seconds", steady(at));
  /** `openbao_backup_drill_last_outcome`: one series per outcome, 1 for `current`, as the operator exports it. */
  const drillOutcome = (c: Cluster, current: string): InputSeries[] =>
    ["verified", "loaded", "failed", "none"].map((outcome) =>
      op(c, "openbao_backup_drill_last_outcome", steady(outcome === current ? 1 : 0), { outcome }),
    );
  const drillInterval = (c: Cluster, seconds: number): InputSeries =>
    op(c, "openbao_backup_drill_schedule_interval_seconds", steady(seconds));
  const drillObserved = (c: Cluster, since: number): InputSeries =>
    op(c, "openbao_backup_drill_schedule_observed_timestamp_seconds", steady(since));
  const drillSuccess = (c: Cluster, at: number): InputSeries =>
    op(c, "openbao_backup_drill_last_success_timestamp_seconds", steady(at));

  const F = "OpenBaoBackupFailing";
  const M = "OpenBaoBackupMissed";
  const N = "OpenBaoBackupNeverSucceeded";
  const B = "OpenBaoBackupBlocked";
  const C = "OpenBaoBackupMisconfigured";
  const R = "OpenBaoBackupRetentionFailing";
  const RF = "OpenBaoRestoreFailed";
  const DF = "OpenBaoRestoreDrillFailed";
  const DS = "OpenBaoRestoreDrillStale";
  const D = "OpenBaoBackupDestinationFailing";
  const S = "OpenBaoBackupStale";
  const U = "OpenBaoBackupFreshnessUnknown";
  const O = "OpenBaoBackupOperatorDown";
  const MD = "OpenBaoBackupMonitorDown";

  return [
    // OpenBaoBackupFailing: threshold 1, for 0m.
    unit(
      "Failing: the first failed Job fires at once (0 → 1); the other cluster stays quiet",
      [
        op(bao, "openbao_backup_consecutive_failures", values([0, 30], [1, 31])),
        op(other, "openbao_backup_consecutive_failures", values([0, 61])),
      ],
      [check(F, 29, []), check(F, 30, [expect.failing(bao, 1)]), check(F, 60, [expect.failing(bao, 1)])],
    ),
    unit(
      "Failing: a success (back to 0) resolves it; three failures say 3",
      [op(bao, "openbao_backup_consecutive_failures", values([1, 10], [2, 10], [3, 10], [0, 31]))],
      [check(F, 25, [expect.failing(bao, 3)]), check(F, 40, [])],
    ),
    // OpenBaoBackupMissed: hourly, intervals 2 (7200s), for 5m.
    unit(
      "Missed: the last success 3h ago on an hourly schedule fires",
      [interval(bao, hour), observed(bao, hour), lastSuccess(bao, T - 3 * hour)],
      [
        // Older than 2 intervals after 5h (300m): pending at 301m, firing 5m later.
        check(M, end - 55, []),
        check(M, end - 54, [expect.missed(bao, "2h 6m 0s")]),
        check(M, end, [expect.missed(bao, "3h 0m 0s")]),
      ],
    ),
    unit(
      "Missed: a success 1h ago is fresh",
      [interval(bao, hour), observed(bao, hour), lastSuccess(bao, T - hour)],
      [check(M, end, [])],
    ),
    unit(
      "Missed: never succeeded (0) is NeverSucceeded's, not Missed's",
      [interval(bao, hour), observed(bao, hour), lastSuccess(bao, 0)],
      [check(M, end, [])],
    ),
    unit(
      "Missed: a suspended schedule (no interval series) stays quiet",
      [observed(bao, hour), lastSuccess(bao, T - 3 * hour)],
      [check(M, end, [])],
    ),
    // OpenBaoBackupNeverSucceeded: intervals 2, for 5m.
    unit(
      "NeverSucceeded: last success 0 and the schedule observed 5h ago fires",
      [interval(bao, hour), observed(bao, hour), lastSuccess(bao, 0)],
      [check(N, end, [expect.neverSucceeded(bao, "5h 0m 0s")])],
    ),
    unit(
      "NeverSucceeded: a schedule observed 1h ago is young: quiet",
      [interval(bao, hour), observed(bao, T - hour), lastSuccess(bao, 0)],
      [check(N, end, [])],
    ),
    unit(
      "NeverSucceeded: once a backup succeeded it is quiet",
      [interval(bao, hour), observed(bao, hour), lastSuccess(bao, T - 3 * hour)],
      [check(N, end, [])],
    ),
    // OpenBaoBackupBlocked: intervals 1 → no Job for (1+1) × 3600s, for 5m; one alert per reason.
    unit(
      "Blocked: ClusterNotRunning for 3h since the last attempt fires for that reason only",
      [
        interval(bao, hour),
        observed(bao, hour),
        lastAttempt(bao, T - 3 * hour),
        blocked(bao, BlockedReason.ClusterNotRunning, steady(1)),
        blocked(bao, BlockedReason.SecretNotFound, steady(0)),
      ],
      [check(B, end, [expect.blocked(bao, BlockedReason.ClusterNotRunning)])],
    ),
    unit(
      "Blocked: no Job ever (last attempt 0) and the schedule observed long ago fires",
      [
        interval(bao, hour),
        observed(bao, hour),
        lastAttempt(bao, 0),
        blocked(bao, BlockedReason.SecretNotFound, steady(1)),
      ],
      [check(B, end, [expect.blocked(bao, BlockedReason.SecretNotFound)])],
    ),
    unit(
      "Blocked: an attempt 1h ago (within intervals+1) is quiet",
      [
        interval(bao, hour),
        observed(bao, hour),
        lastAttempt(bao, T - hour),
        blocked(bao, BlockedReason.ClusterNotRunning, steady(1)),
      ],
      [check(B, end, [])],
    ),
    unit(
      "Blocked: no attempt yet but the schedule observed 1h ago is quiet",
      [
        interval(bao, hour),
        observed(bao, T - hour),
        lastAttempt(bao, 0),
        blocked(bao, BlockedReason.ClusterNotRunning, steady(1)),
      ],
      [check(B, end, [])],
    ),
    // OpenBaoBackupMisconfigured: for 15m.
    unit(
      "Misconfigured: BackupHealthy=False/InvalidSchedule for 15m fires",
      [
        op(bao, "openbao_backup_condition", values([1, 31]), {
          condition: "BackupHealthy",
          status: "False",
          reason: "InvalidSchedule",
        }),
        op(bao, "openbao_backup_condition", values([1, 31]), {
          condition: "BackingUp",
          status: "False",
          reason: "NoBackupRunning",
        }),
        op(other, "openbao_backup_condition", values([1, 31]), {
          condition: "BackupHealthy",
          status: "False",
          reason: "InvalidConfiguration",
        }),
      ],
      [
        check(C, 10, []),
        check(C, 30, [
          expect.misconfigured(bao, "InvalidSchedule"),
          expect.misconfigured(other, "InvalidConfiguration"),
        ]),
      ],
    ),
    unit(
      "Misconfigured: a drill spec that cannot be used (RestoreVerified=False/DrillInvalid) for 15m fires; DrillFailed does not",
      [
        op(bao, "openbao_backup_condition", values([1, 31]), {
          condition: "RestoreVerified",
          status: "False",
          reason: "DrillInvalid",
        }),
        op(other, "openbao_backup_condition", values([1, 31]), {
          condition: "RestoreVerified",
          status: "False",
          reason: "DrillFailed",
        }),
      ],
      [check(C, 10, []), check(C, 30, [expect.misconfigured(bao, "DrillInvalid")])],
    ),
    unit(
      "Misconfigured: BackupHealthy=True/BackupSucceeded or BackupFailed is quiet",
      [
        op(bao, "openbao_backup_condition", values([1, 31]), {
          condition: "BackupHealthy",
          status: "True",
          reason: "BackupSucceeded",
        }),
        op(other, "openbao_backup_condition", values([1, 31]), {
          condition: "BackupHealthy",
          status: "False",
          reason: "BackupFailed",
        }),
      ],
      [check(C, 30, [])],
    ),
    // OpenBaoBackupRetentionFailing: window 1d, no for.
    unit(
      "RetentionFailing: the counter's first increase (0 → 1) fires; a day later it resolves",
      [
        op(bao, "openbao_backup_retention_failures_total", values([0, 30], [1, day + 61])),
        op(other, "openbao_backup_retention_failures_total", values([0, day + 91])),
      ],
      [check(R, 29, []), check(R, 45, [expect.retentionFailing(bao)]), check(R, day + 60, [])],
    ),
    // OpenBaoBackupDestinationFailing: window 1d, no for, one alert per destination.
    unit(
      "DestinationFailing: one destination's first failure fires for it alone; a day later it resolves",
      [
        op(bao, "openbao_backup_destination_failures_total", values([0, 30], [1, day + 61]), {
          destination: "offsite",
        }),
        op(bao, "openbao_backup_destination_failures_total", values([0, day + 91]), { destination: "primary" }),
        op(other, "openbao_backup_destination_failures_total", values([0, day + 91]), { destination: "offsite" }),
      ],
      [check(D, 29, []), check(D, 45, [expect.destinationFailing(bao, "offsite")]), check(D, day + 60, [])],
    ),
    // OpenBaoRestoreFailed: window 1h, no for.
    unit(
      "RestoreFailed: a Failed restore 10m ago fires",
      [op(bao, "openbao_restore_last_failure_timestamp_seconds", steady(T - 10 * minute))],
      [check(RF, end, [expect.restoreFailed(bao)])],
    ),
    unit(
      "RestoreFailed: a Failed restore 2h ago, or none (absent), is quiet",
      [
        op(bao, "openbao_restore_last_failure_timestamp_seconds", steady(T - 2 * hour)),
        op(other, "openbao_restore_in_progress", steady(0)),
      ],
      [check(RF, end, [])],
    ),
    // OpenBaoRestoreDrillFailed: for 5m.
    unit(
      "DrillFailed: a failed drill fires after 5m; the other cluster's loaded drill stays quiet",
      [
        ...["verified", "loaded", "none"].map((outcome) =>
          op(bao, "openbao_backup_drill_last_outcome", values([outcome === "verified" ? 1 : 0, 30], [0, 31]), {
            outcome,
          }),
        ),
        op(bao, "openbao_backup_drill_last_outcome", values([0, 30], [1, 31]), { outcome: "failed" }),
        ...drillOutcome(other, "loaded"),
      ],
      [
        check(DF, 29, []),
        // Failed from 30m: pending until 35m.
        check(DF, 34, []),
        check(DF, 35, [expect.drillFailed(bao)]),
        check(DF, 60, [expect.drillFailed(bao)]),
      ],
    ),
    unit(
      "DrillFailed: a drill that passes after the failure resolves it",
      [
        ...["loaded", "none"].map((outcome) => op(bao, "openbao_backup_drill_last_outcome", steady(0), { outcome })),
        op(bao, "openbao_backup_drill_last_outcome", values([1, 30], [0, 31]), { outcome: "failed" }),
        op(bao, "openbao_backup_drill_last_outcome", values([0, 30], [1, 31]), { outcome: "verified" }),
      ],
      [check(DF, 20, [expect.drillFailed(bao)]), check(DF, 31, []), check(DF, 60, [])],
    ),
    unit(
      "DrillFailed: verified, loaded and no drill yet (none) are all quiet",
      [...drillOutcome(bao, "verified"), ...drillOutcome(other, "loaded"), ...drillOutcome(third, "none")],
      [check(DF, 30, []), check(DF, end, [])],
    ),
    // OpenBaoRestoreDrillStale: intervals 2, for 10m (built like OpenBaoBackupStale).
    unit(
      "DrillStale: the last drill that passed 3h ago on an hourly drill schedule fires",
      [drillInterval(bao, hour), drillObserved(bao, hour), drillSuccess(bao, T - 3 * hour)],
      [
        // Older than 2 intervals after 5h (300m): pending at 301m, firing 10m later.
        check(DS, end - 50, []),
        check(DS, end - 49, [expect.drillStale(bao, "2h 11m 0s")]),
        check(DS, end, [expect.drillStale(bao, "3h 0m 0s")]),
      ],
    ),
    unit(
      "DrillStale: no drill ever passed (0) fires once the drill schedule has been observed for 2 intervals",
      [drillInterval(bao, hour), drillObserved(bao, hour), drillSuccess(bao, 0), ...drillOutcome(bao, "failed")],
      // $value is time() - 0: "6h" here, the whole Unix time (decades) in production.
      [check(DS, end, [expect.drillStale(bao, "6h 0m 0s")])],
    ),
    unit(
      "DrillStale: a drill that passed 1h ago is fresh, loaded as much as verified",
      [
        drillInterval(bao, hour),
        drillObserved(bao, hour),
        drillSuccess(bao, T - hour),
        ...drillOutcome(bao, "verified"),
        drillInterval(other, hour),
        drillObserved(other, hour),
        drillSuccess(other, T - 30 * minute),
        ...drillOutcome(other, "loaded"),
      ],
      [check(DS, end, [])],
    ),
    unit(
      "DrillStale: none passed yet but the drill schedule observed 1h ago is quiet",
      [drillInterval(bao, hour), drillObserved(bao, T - hour), drillSuccess(bao, 0), ...drillOutcome(bao, "none")],
      [check(DS, end, [])],
    ),
    unit(
      "DrillStale: suspended drills (no interval series) are quiet",
      [drillObserved(bao, hour), drillSuccess(bao, 0), drillObserved(other, hour), drillSuccess(other, T - 5 * hour)],
      [check(DS, end, [])],
    ),
    // OpenBaoBackupStale (from the monitor): intervals 2, for 10m.
    unit(
      "Stale: the newest verified backup in the bucket 3h old on an hourly schedule fires",
      [monInterval(bao, hour), monObserved(bao, hour), newest(bao, T - 3 * hour)],
      [check(S, end, [expect.stale(bao, "3h 0m 0s")])],
    ),
    unit(
      "Stale: none stored (0) fires once the schedule has been observed for 2 intervals",
      [monInterval(bao, hour), monObserved(bao, hour), newest(bao, 0)],
      // $value is time() - 0: "6h" here, the whole Unix time (decades) in production.
      [check(S, end, [expect.stale(bao, "6h 0m 0s")])],
    ),
    unit(
      "Stale: a backup 1h old is fresh",
      [monInterval(bao, hour), monObserved(bao, hour), newest(bao, T - hour)],
      [check(S, end, [])],
    ),
    unit(
      "Stale: none stored but the schedule observed 1h ago is quiet",
      [monInterval(bao, hour), monObserved(bao, T - hour), newest(bao, 0)],
      [check(S, end, [])],
    ),
    unit(
      "Stale: a suspended schedule (no interval series) is quiet",
      [monObserved(bao, hour), newest(bao, 0)],
      [check(S, end, [])],
    ),
    // OpenBaoBackupFreshnessUnknown: for 30m.
    unit(
      "FreshnessUnknown: probe_success 0 for 30m fires; 1 or 0 for only 20m is quiet",
      [
        mon(bao, "openbao_backup_storage_probe_success", values([0, 61])),
        mon(other, "openbao_backup_storage_probe_success", values([1, 40], [0, 21])),
      ],
      [check(U, 20, []), check(U, 60, [expect.freshnessUnknown(bao)])],
    ),
    // OpenBaoBackupOperatorDown: for 5m.
    unit(
      "OperatorDown: no replica scraped (absent) fires",
      [op(bao, "openbao_backup_consecutive_failures", values([0, 31]))],
      [check(O, 4, []), check(O, 10, [expect.operatorDown({})])],
    ),
    unit(
      "OperatorDown: two replicas, none leading (sum 0) fires",
      [leader(podA, values([0, 31])), leader(podB, values([0, 31]))],
      [check(O, 10, [expect.operatorDown({})])],
    ),
    unit(
      "OperatorDown: one replica leading is quiet",
      [leader(podA, values([1, 31])), leader(podB, values([0, 31]))],
      [check(O, 10, [])],
    ),
    unit(
      "OperatorDown: a replica outside the selector does not count",
      [leader({ ...podA, job: "something-else" }, values([1, 31]))],
      [check(O, 10, [expect.operatorDown({})])],
    ),
    // OpenBaoBackupMonitorDown: maxPassAgeSeconds 1800, for 10m.
    unit(
      // time() starts at 0 in a unit test: no pass ever is "older than 1800 s" from 30m on, firing 10m later.
      "MonitorDown: no monitor scraped (absent) fires",
      [op(bao, "openbao_backup_consecutive_failures", values([0, 61]))],
      [check(MD, 9, []), check(MD, 35, []), check(MD, 45, [expect.monitorDown({})])],
    ),
    unit(
      "MonitorDown: the last pass 1h ago fires",
      [lastPass(steady(T - hour))],
      [check(MD, end, [expect.monitorDown({})])],
    ),
    unit(
      "MonitorDown: no pass ever completed (0) fires",
      [lastPass(steady(0))],
      [check(MD, end, [expect.monitorDown({})])],
    ),
    unit("MonitorDown: a pass 5m ago is quiet", [lastPass(steady(T - 5 * minute))], [check(MD, end, [])]),
    // Two operator Pods: A leads until 3h, B takes over (5m of overlap in the scrapes). Both
    // report the cluster's status; A's series end when its Pod goes.
    (() => {
      const handover = 180;
      const aliveA = (v: number): string => values([v, handover + 1]);
      const aliveB = (v: number): string => values(["_", handover - 5], [v, end - handover + 66]);
      const both = (name: string, a: string, b: string, extra: Labels = {}): InputSeries[] => [
        of(podA, bao, name, a, extra),
        of(podB, bao, name, b, extra),
      ];
      return unit(
        "two operator Pods and a leader change: one alert each, history kept, no double increase",
        [
          leader(podA, values([1, handover - 1], [0, 2])),
          leader(podB, values(["_", handover - 5], [0, 4], [1, end - handover + 62])),
          ...both("openbao_backup_consecutive_failures", aliveA(2), aliveB(2)),
          ...both("openbao_backup_schedule_interval_seconds", aliveA(hour), aliveB(hour)),
          ...both("openbao_backup_schedule_observed_timestamp_seconds", aliveA(hour), aliveB(hour)),
          ...both("openbao_backup_last_success_timestamp_seconds", aliveA(T - 3 * hour), aliveB(T - 3 * hour)),
          ...both("openbao_backup_last_attempt_timestamp_seconds", aliveA(T - 3 * hour), aliveB(T - 3 * hour)),
          ...both("openbao_backup_blocked", aliveA(1), aliveB(1), { reason: BlockedReason.ClusterNotRunning }),
          // A counted a retention failure at 1h; B (a new process) starts its counter at 0.
          of(podA, bao, "openbao_backup_retention_failures_total", values([0, 60], [1, handover - 59])),
          of(podB, bao, "openbao_backup_retention_failures_total", aliveB(0)),
        ],
        [
          check(F, handover - 2, [expect.failing(bao, 2)]),
          check(F, handover + 2, [expect.failing(bao, 2)]),
          check(F, end, [expect.failing(bao, 2)]),
          check(M, end, [expect.missed(bao, "3h 0m 0s")]),
          check(B, end, [expect.blocked(bao, BlockedReason.ClusterNotRunning)]),
          check(R, handover - 2, [expect.retentionFailing(bao)]),
          check(R, handover + 2, [expect.retentionFailing(bao)]),
          check(R, end, [expect.retentionFailing(bao)]),
          check(O, handover, []),
          check(O, handover + 3, []),
          check(O, end, []),
        ],
      );
    })(),
  ];
}

function unitTestFile(ruleFile: string, tests: readonly UnitTest[]): string {
  return dump(
    { rule_files: [ruleFile], evaluation_interval: "1m", tests },
    { lineWidth: -1, noRefs: true, quotingType: '"' },
  );
}

function alertsOf(rules: RuleFile): string[] {
  return rules.groups.flatMap((g) => g.rules).flatMap((r) => (r.alert === undefined ? [] : [r.alert]));
}

// ── metric names in PromQL ──────────────────────────────────────────────────────────────────

const promqlKeywords = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "offset",
  "atan2",
  "inf",
  "nan",
]);

/** The metric names a PromQL expression reads (Grafana `$variables` allowed in matchers and ranges). */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  const stringLit = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g;
  // Label matchers first: `{__name__="x"}` names a metric; the rest are labels.
  let rest = expr.replace(/\{(?:[^{}"'`]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)*\}/g, (braces) => {
    const named = /__name__\s*=\s*"([^"]*)"/.exec(braces);
    if (named?.[1]) names.add(named[1]);
    return " ";
  });
  rest = rest.replace(stringLit, " ");
  rest = rest.replace(/\[[^\]]*\]/g, " ");
  rest = rest.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ");
  for (const m of rest.matchAll(/(?<![\w.$:])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    // An identifier before "(" (spaces allowed: `sum (x)`) is a function or an aggregation.
    if (/^\s*\(/.test(rest.slice((m.index ?? 0) + word.length))) continue;
    if (promqlKeywords.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

/** Series Prometheus makes itself: a dashboard may read them. */
const prometheusSeries = new Set([
  "up",
  "scrape_duration_seconds",
  "scrape_samples_scraped",
  "scrape_samples_post_metric_relabeling",
  "scrape_series_added",
  "ALERTS",
  "ALERTS_FOR_STATE",
]);

/**
 * The names of `exported`'s metrics as PromQL sees them (histograms and summaries as their
 * series). prom-client's types say `type` is a numeric enum; at run time it is the exposition's
 * word ("histogram"), hence `unknown`.
 */
function promqlNames(exported: readonly { name: string; type: unknown }[]): Set<string> {
  const out = new Set<string>();
  for (const { name, type } of exported) {
    out.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(`${name}${s}`);
    if (type === "summary") for (const s of ["_sum", "_count"]) out.add(`${name}${s}`);
  }
  return out;
}

/** Names among `used` that nothing exports. */
function unexported(used: Iterable<string>, exported: ReadonlySet<string>): string[] {
  return [...new Set(used)].filter((n) => !exported.has(n) && !prometheusSeries.has(n)).sort();
}

/** Every `expr` string in a Grafana dashboard, and the metric of each `label_values(metric, label)` query. */
function dashboardExprs(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown, key: string | undefined): void => {
    if (typeof node === "string") {
      if (key === "expr") out.push(node);
      if (key === "query" || key === "definition") {
        // label_values(<selector>, <label>); the one-argument form names no metric.
        const lv = /label_values\s*\(\s*(.*\S)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)/.exec(node);
        if (lv?.[1]) out.push(lv[1]);
        const qr = /query_result\s*\((.*)\)\s*$/.exec(node);
        if (qr?.[1]) out.push(qr[1]);
      }
      return;
    }
    if (Array.isArray(node)) for (const item of node) walk(item, key);
    else if (typeof node === "object" && node !== null) {
      for (const [k, v] of Object.entries(node)) walk(v, k);
    }
  };
  walk(dashboard, undefined);
  return out;
}

/** One exposition sample: name and labels. */
interface Exposed {
  readonly name: string;
  readonly labels: Labels;
}

function exposition(text: string): Exposed[] {
  const out: Exposed[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!m?.[1]) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      if (l[1]) labels[l[1]] = l[2] ?? "";
    }
    out.push({ name: m[1], labels });
  }
  return out;
}

const fixedNow = new Date("2026-11-21T10:00:30Z");

/**
 * The operator's and the monitor's registries as their processes build them (Manager:
 * createRegistry() + runtime metrics), with one cluster observed so labelled series exist.
 */
async function exportedMetrics(): Promise<{ names: Set<string>; samples: Exposed[] }> {
  const operator = createRegistry();
  runtimeMetrics(operator);
  operatorLeaderGauge(operator, () => true);
  const backup = backupMetrics(operator, () => fixedNow);
  const restore = restoreMetrics(operator);
  const cluster: OpenBaoCluster = {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: bao.cluster, namespace: bao.namespace, uid: "uid-1" },
    spec: {
      replicas: 1,
      version: "2.4.0",
      backup: {
        schedule: "0 * * * *",
        jwtAuthRole: "backup",
        target: { bucket: "b" },
        additionalTargets: [{ name: "offsite", provider: "gcs", bucket: "copies" }],
        drill: { schedule: "0 5 * * 0", canaryPath: "secret/openbao-backup/canary" },
      },
    },
    status: {
      phase: "Running",
      initialized: true,
      backup: {
        lastBackupTime: "2026-11-21T09:00:05Z",
        lastAttemptTime: "2026-11-21T09:00:00Z",
        consecutiveFailures: 1,
        observedSchedule: {
          schedule: "0 * * * *",
          timeZone: "UTC",
          suspend: false,
          observedTime: "2026-11-20T00:00:00Z",
        },
        drill: {
          observedSchedule: {
            schedule: "0 5 * * 0",
            timeZone: "UTC",
            suspend: false,
            observedTime: "2026-11-01T00:00:00Z",
          },
          currentJob: null,
          lastSuccessTime: "2026-11-15T05:03:00Z",
          consecutiveFailures: 0,
        },
        lastDrill: {
          time: "2026-11-15T05:03:00Z",
          jobName: "bao-drill-29389000",
          outcome: "verified",
          message: "verified",
        },
      },
      conditions: [
        {
          type: "BackupHealthy",
          status: "False",
          reason: "InvalidSchedule",
          message: "bad",
          lastTransitionTime: "2026-11-21T09:00:00Z",
        },
      ],
    },
  };
  backup.observe(cluster, [BlockedReason.ClusterNotRunning]);
  const drill = drillMetrics(operator, () => fixedNow);
  drill.observe(cluster);
  drill.recorded(cluster, { outcome: "verified", reason: undefined, durationMs: 72_500 });
  const failed: OpenBaoRestore = {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoRestore",
    metadata: { name: "r1", namespace: bao.namespace },
    spec: { cluster: bao.cluster, source: { target: { bucket: "b" }, key: "k.snap" }, jwtAuthRole: "restore" },
    status: { phase: "Failed", startTime: "2026-11-21T09:50:00Z", completionTime: "2026-11-21T09:55:00Z" },
  };
  restore.observe(bao.namespace, bao.cluster, [failed]);
  restore.finished(bao.namespace, bao.cluster, {
    ok: false,
    reason: "ObjectMissing",
    durationMs: 1000,
    size: undefined,
  });

  const monitor = createRegistry();
  runtimeMetrics(monitor);
  const m = monitorMetrics(monitor);
  m.expect({ ...bao, intervalSeconds: 3600, expectedSinceSeconds: fixedNow.getTime() / 1000 - 86400 });
  m.probed(bao.namespace, bao.cluster, fixedNow.getTime() / 1000 - 600, fixedNow);
  m.passed([bao], fixedNow);

  const registries: Registry[] = [operator, monitor];
  const names = new Set<string>();
  const samples: Exposed[] = [];
  for (const r of registries) {
    for (const n of promqlNames(await r.getMetricsAsJSON())) names.add(n);
    samples.push(...exposition(await r.metrics()));
  }
  return { names, samples };
}

// ── the tests ───────────────────────────────────────────────────────────────────────────────

const dashboardFile = join(projectRoot, "deploy", "chart", "dashboards", "openbao-backup.json");

describe("alert rules (promtool)", () => {
  let shippedRules: RuleFile;
  let defaultRules: RuleFile;
  let shippedPath = "";
  let defaultPath = "";

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), "alerts-test-"));
    shippedRules = await renderRules(shippedRuleValues);
    defaultRules = await renderRules();
    shippedPath = scratchFile("shipped-rules.yaml", ruleFileText(shippedRules));
    defaultPath = scratchFile("default-rules.yaml", ruleFileText(defaultRules));
  });

  after(() => {
    removeHelmHome();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test("the shipped rule file is exactly what `node test/chart/rules.ts --write` renders", () => {
    assert.equal(
      readFileSync(shippedRulesFile, "utf8"),
      ruleFileText(shippedRules),
      "deploy/prometheus/openbao-backup-rules.yaml is out of step: run `node test/chart/rules.ts --write`",
    );
  });

  test("promtool check rules accepts the default render and the shipped file", async () => {
    for (const file of [defaultPath, shippedRulesFile]) {
      const result = await promtool(["check", "rules", file]);
      assert.equal(result.code, 0, `promtool check rules ${file}:\n${result.output}`);
      const rules = alertsOf(file === defaultPath ? defaultRules : shippedRules).length;
      assert.match(result.output, new RegExp(`SUCCESS: ${rules} rules found`), result.output);
    }
  });

  test("the generated unit tests cover every rendered alert, firing and quiet, and name no other", () => {
    for (const rules of [shippedRules, defaultRules]) {
      const alerts = alertsOf(rules);
      assert.deepEqual(
        [...alerts].sort(),
        [
          "OpenBaoBackupBlocked",
          "OpenBaoBackupDestinationFailing",
          "OpenBaoBackupFailing",
          "OpenBaoBackupFreshnessUnknown",
          "OpenBaoBackupMisconfigured",
          "OpenBaoBackupMissed",
          "OpenBaoBackupMonitorDown",
          "OpenBaoBackupNeverSucceeded",
          "OpenBaoBackupOperatorDown",
          "OpenBaoBackupRetentionFailing",
          "OpenBaoBackupStale",
          "OpenBaoRestoreDrillFailed",
          "OpenBaoRestoreDrillStale",
          "OpenBaoRestoreFailed",
        ],
        "the rendered alerts changed: give a new alert its firing and quiet unit tests here",
      );
      const checks = unitTests(selectorsOf(rules)).flatMap((u) => u.alert_rule_test);
      for (const c of checks) assert.ok(alerts.includes(c.alertname), `a unit test names ${c.alertname}`);
      for (const alert of alerts) {
        const mine = checks.filter((c) => c.alertname === alert);
        assert.ok(
          mine.some((c) => c.exp_alerts.length > 0),
          `${alert}: no case where it fires`,
        );
        assert.ok(
          mine.some((c) => c.exp_alerts.length === 0),
          `${alert}: no case where it stays quiet`,
        );
        for (const c of mine) {
          for (const a of c.exp_alerts) {
            assert.ok(a.exp_labels.severity, `${alert}: severity checked`);
            assert.ok(a.exp_annotations.summary && a.exp_annotations.runbook_url, `${alert}: annotations checked`);
          }
        }
      }
    }
  });

  for (const which of ["shipped", "default"] as const) {
    describe(`promtool test rules: ${which === "shipped" ? "the shipped file" : "the chart's default PrometheusRule"}`, () => {
      let ruleFile = "";
      let tests: UnitTest[] = [];
      before(() => {
        ruleFile = which === "shipped" ? shippedPath : defaultPath;
        tests = unitTests(selectorsOf(which === "shipped" ? shippedRules : defaultRules));
      });

      // One node:test per alert (and the aggregation case), each a real `promtool test rules`.
      const groups = [
        "Failing",
        "Missed",
        "NeverSucceeded",
        "Blocked",
        "Misconfigured",
        "RetentionFailing",
        "DestinationFailing",
        "RestoreFailed",
        "DrillFailed",
        "DrillStale",
        "Stale",
        "FreshnessUnknown",
        "OperatorDown",
        "MonitorDown",
        "two operator Pods",
      ];
      for (const prefix of groups) {
        test(prefix, async () => {
          const mine = tests.filter((t) => t.name.startsWith(prefix));
          assert.ok(mine.length > 0, `no unit tests for ${prefix}`);
          const text = unitTestFile(ruleFile, mine);
          const file = scratchFile(`${which}-${prefix.replaceAll(" ", "-")}.test.yaml`, text);
          const result = await promtool(["test", "rules", file]);
          assert.equal(result.code, 0, `promtool test rules failed:\n${result.output}\n--- tests:\n${text}`);
          assert.match(result.output, /SUCCESS/);
        });
      }

      test("every unit test is run by one of the groups above", () => {
        for (const t of tests) {
          assert.ok(
            groups.some((p) => t.name.startsWith(p)),
            `${t.name} belongs to no group`,
          );
        }
      });
    });
  }

  test("the unit tests catch a changed rule: threshold 2, 4 intervals, for 10m fail Failing, Missed, DrillStale, DrillFailed", async () => {
    const changed = await renderRules({
      ...shippedRuleValues,
      "metrics.prometheusRule.consecutiveFailures.threshold": 2,
      "metrics.prometheusRule.backupMissed.intervals": 4,
      "metrics.prometheusRule.drillStale.intervals": 4,
      "metrics.prometheusRule.drillFailed.for": "10m",
    });
    const file = scratchFile("changed-rules.yaml", ruleFileText(changed));
    for (const prefix of ["Failing:", "Missed:", "DrillStale:", "DrillFailed:"]) {
      const mine = unitTests(selectorsOf(changed)).filter((t) => t.name.startsWith(prefix));
      const result = await promtool(["test", "rules", scratchFile("changed.test.yaml", unitTestFile(file, mine))]);
      assert.notEqual(result.code, 0, `${prefix} tests pass against a changed rule:\n${result.output}`);
      assert.match(result.output, /FAILED/);
    }
  });

  test("promtool test rules fails a wrong expectation (the harness can fail)", async () => {
    const sel = selectorsOf(shippedRules);
    const firing = unitTests(sel).find((t) => t.name.startsWith("Failing: the first failed Job"));
    assert.ok(firing);
    const wrong: UnitTest[] = [
      { ...firing, alert_rule_test: [{ eval_time: "60m", alertname: "OpenBaoBackupFailing", exp_alerts: [] }] },
      {
        ...firing,
        name: "a wrong annotation",
        alert_rule_test: [
          {
            eval_time: "60m",
            alertname: "OpenBaoBackupFailing",
            exp_alerts: [
              {
                ...expect.failing(bao, 1),
                exp_annotations: { ...expect.failing(bao, 1).exp_annotations, summary: "something else" },
              },
            ],
          },
        ],
      },
    ];
    for (const t of wrong) {
      const result = await promtool(["test", "rules", scratchFile("wrong.test.yaml", unitTestFile(shippedPath, [t]))]);
      assert.notEqual(result.code, 0, `promtool accepted a wrong expectation (${t.name}):\n${result.output}`);
      assert.match(result.output, /FAILED/);
    }
  });
});

describe("metric names", () => {
  let exported: { names: Set<string>; samples: Exposed[] };
  let rules: RuleFile;

  before(async () => {
    exported = await exportedMetrics();
    rules = await renderRules(shippedRuleValues);
  });

  after(() => removeHelmHome());

  test("the extractor reads metric names, not functions, labels, keywords, strings or durations", () => {
    assert.deepEqual(
      metricNames(
        'sum by (namespace, cluster) (increase(a_total{job="x",le=~"1|2"}[1d] offset 5m)) > 0 and on (cluster) b ' +
          'or absent(c{job="y"}) unless label_replace(d, "dst", "$1", "src", "(.*)") / ignoring(pod) group_left e ' +
          '+ histogram_quantile(0.9, sum(rate(f_bucket[$__rate_interval])) by (le)) + {__name__="g"} + 1e3 + time()',
      ),
      ["a_total", "b", "c", "d", "e", "f_bucket", "g"],
    );
  });

  test("every metric the rules read is exported by the code", () => {
    const used = rules.groups.flatMap((g) => g.rules).flatMap((r) => metricNames(r.expr));
    assert.ok(used.length >= 12, `only ${used.length} names found`);
    assert.deepEqual(unexported(used, exported.names), []);
  });

  test("the checker flags a made-up name, and histogram series by their suffixes", () => {
    assert.deepEqual(unexported(metricNames("rate(openbao_backup_made_up_total[5m]) > 0"), exported.names), [
      "openbao_backup_made_up_total",
    ]);
    assert.deepEqual(
      unexported(
        metricNames("histogram_quantile(0.9, sum by (le) (rate(openbao_restore_duration_seconds_bucket[5m])))"),
        exported.names,
      ),
      [],
    );
    assert.deepEqual(unexported(["openbao_restore_duration_seconds_total"], exported.names), [
      "openbao_restore_duration_seconds_total",
    ]);
  });

  test("the per-cluster series the rules group by (namespace, cluster) carry both labels", () => {
    for (const rule of rules.groups.flatMap((g) => g.rules)) {
      if (!/by \(namespace, cluster/.test(rule.expr)) continue;
      for (const name of metricNames(rule.expr)) {
        const samples = exported.samples.filter((s) => s.name === name);
        assert.ok(samples.length > 0, `${rule.alert}: no ${name} sample for an observed cluster`);
        for (const s of samples) {
          assert.equal(s.labels.namespace, bao.namespace, `${rule.alert}: ${name} ${JSON.stringify(s.labels)}`);
          assert.equal(s.labels.cluster, bao.cluster, `${rule.alert}: ${name} ${JSON.stringify(s.labels)}`);
        }
      }
    }
  });

  test("every metric the Grafana dashboard reads is exported by the code (when the dashboard exists)", (t) => {
    if (!existsSync(dashboardFile)) {
      t.skip("deploy/chart/dashboards/openbao-backup.json does not exist yet");
      return;
    }
    const exprs = dashboardExprs(JSON.parse(readFileSync(dashboardFile, "utf8")) as unknown);
    assert.ok(exprs.length > 0, "the dashboard has no expr");
    const bad = exprs.flatMap((e) => unexported(metricNames(e), exported.names).map((n) => `${n} in ${e}`));
    assert.deepEqual(bad, []);
  });
});
