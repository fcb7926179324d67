/**
 * Issue 16, end to end: a real Prometheus scrapes the real operator and the real freshness
 * monitor (`bao-backup monitor`) and evaluates the chart's own rules (rendered by the real
 * helm), while one cluster is blocked, failing, recovered, stale, and finally loses its
 * operator. At each stage the test asserts which alerts fire — and which must not — for that
 * cluster. docs/metrics-and-alerts.md ("End-to-end: what fires when") records the table.
 *
 * Thresholds are the chart's rules with test values: `intervals: 1` and `for: 0s`, with an
 * every-minute schedule, so "N intervals" is minutes, not days. What is played: the
 * lifecycle operator (the test writes `status.phase`, to block and unblock), and kubelet + Job
 * controller (the job runner). The dashboard's queries are evaluated against the same
 * Prometheus once it holds every series.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { renderRules } from "../chart/rules.ts";
import { projectRoot } from "../servers/catalog.ts";
import { printJobRunnerOnFailure } from "../servers/job-runner.ts";
import { type ManagedProcess, superviseServers, waitFor } from "../servers/process.ts";
import { type ActiveAlert, type PrometheusServer, startPrometheus } from "../servers/prometheus.ts";
import { startCliProcess } from "./cli-process.ts";
import { namespace, type OperatorProcess, type Stack, s3Target, startStack } from "./stack.ts";

superviseServers();
printJobRunnerOnFailure();

const cluster = "bao";
const group = "openbao.org";
const version = "v1alpha1";

/** The chart's rules, every threshold one schedule interval (1 min), nothing held back by `for`. */
const testValues: Readonly<Record<string, string | number>> = {
  "metrics.prometheusRule.operatorDown.selector": 'job="openbao-backup"',
  "metrics.prometheusRule.monitorDown.selector": 'job="openbao-backup-monitor"',
  "metrics.prometheusRule.backupMissed.intervals": 1,
  "metrics.prometheusRule.backupMissed.for": "0s",
  "metrics.prometheusRule.neverSucceeded.intervals": 1,
  "metrics.prometheusRule.neverSucceeded.for": "0s",
  "metrics.prometheusRule.blocked.intervals": 1,
  "metrics.prometheusRule.blocked.for": "0s",
  "metrics.prometheusRule.stale.intervals": 1,
  "metrics.prometheusRule.stale.for": "0s",
  "metrics.prometheusRule.freshnessUnknown.for": "30s",
  "metrics.prometheusRule.operatorDown.for": "0s",
  "metrics.prometheusRule.monitorDown.for": "0s",
  "metrics.prometheusRule.misconfigured.for": "0s",
};

/**
 * The stages, in order: what the test does, what must fire and what must not. The table in
 * docs/metrics-and-alerts.md ("End-to-end: what fires when") is checked against this list.
 */
const stages = [
  {
    name: "blocked",
    does: "a lifecycle operator reports the cluster Initializing (not initialized) for two windows",
    fire: ["OpenBaoBackupBlocked{reason=ClusterNotRunning}", "OpenBaoBackupNeverSucceeded", "OpenBaoBackupStale"],
    quiet: ["OpenBaoBackupFailing", "OpenBaoBackupOperatorDown", "OpenBaoBackupMonitorDown"],
  },
  {
    name: "failing",
    does: "Running again, but the backup token is wrong: the first Job fails",
    fire: ["OpenBaoBackupFailing", "OpenBaoBackupNeverSucceeded", "OpenBaoBackupStale"],
    quiet: ["OpenBaoBackupBlocked{reason=ClusterNotRunning}", "OpenBaoBackupOperatorDown"],
  },
  {
    name: "recovered",
    does: "a restore of `latest` failed (nothing stored yet); then the token is fixed and a backup succeeds",
    fire: ["OpenBaoRestoreFailed"],
    quiet: [
      "OpenBaoBackupFailing",
      "OpenBaoBackupNeverSucceeded",
      "OpenBaoBackupStale",
      "OpenBaoBackupMissed",
      "OpenBaoBackupBlocked{reason=ClusterNotRunning}",
      "OpenBaoBackupFreshnessUnknown",
    ],
  },
  {
    name: "stale",
    does: "the token is wrong again; scheduled Jobs fail for over an interval",
    fire: ["OpenBaoBackupStale", "OpenBaoBackupMissed", "OpenBaoBackupFailing"],
    quiet: ["OpenBaoBackupNeverSucceeded", "OpenBaoBackupOperatorDown"],
  },
  {
    name: "operator killed",
    does: "the operator process is killed (SIGKILL); the monitor keeps running",
    fire: ["OpenBaoBackupOperatorDown", "OpenBaoBackupStale"],
    quiet: ["OpenBaoBackupMonitorDown", "OpenBaoBackupFreshnessUnknown"],
  },
] as const satisfies readonly { name: string; does: string; fire: readonly string[]; quiet: readonly string[] }[];
type StageName = (typeof stages)[number]["name"];

/** The cluster's alerts (by name) and the operator-wide ones, firing only. */
function firing(alerts: readonly ActiveAlert[]): Set<string> {
  return new Set(
    alerts
      .filter((a) => a.state === "firing")
      .filter(
        (a) => a.labels.cluster === undefined || (a.labels.cluster === cluster && a.labels.namespace === namespace),
      )
      .map((a) => (a.labels.reason ? `${a.name}{reason=${a.labels.reason}}` : a.name)),
  );
}

describe(
  "alerts fire from a real Prometheus: blocked, failing, recovered, stale, operator gone",
  {
    timeout: 1_200_000,
  },
  () => {
    let stack: Stack;
    let operator: OperatorProcess;
    let monitor: ManagedProcess;
    let prometheus: PrometheusServer;
    const observed: { stage: string; firing: string[] }[] = [];

    before(async () => {
      stack = await startStack([cluster]);
      operator = await stack.startOperator();
      const started = await startCliProcess({
        command: "monitor",
        kubeConfigPath: stack.kube.kubeConfigPath,
        namespace,
        args: ["--interval", "10"],
      });
      monitor = started.process;
      const monitorHost = new URL(started.healthUrl).host;
      prometheus = await startPrometheus({
        jobs: [
          { job: "openbao-backup", targets: [new URL(operator.healthUrl).host] },
          { job: "openbao-backup-monitor", targets: [monitorHost] },
        ],
        rules: await renderRules(testValues),
      });
      await prometheus.waitForTargets();
    });
    after(async () => {
      if (observed.length > 0) {
        process.stdout.write(
          `# stage → firing alerts of ${namespace}/${cluster}\n${observed.map((o) => `#   ${o.stage}: ${o.firing.join(", ") || "none"}`).join("\n")}\n`,
        );
      }
      await prometheus?.stop();
      await monitor?.stop();
      await stack?.stop();
    });

    /** Waits until the stage's alerts fire and none of its quiet ones does; records what fired. */
    async function stage(name: StageName, timeoutMs = 240_000) {
      const def = stages.find((x) => x.name === name);
      assert.ok(def);
      const expected: readonly string[] = def.fire;
      const quiet: readonly string[] = def.quiet;
      let last = new Set<string>();
      try {
        await waitFor(
          async () => {
            last = firing(await prometheus.alerts());
            return expected.every((a) => last.has(a)) && quiet.every((a) => !last.has(a));
          },
          { what: `stage "${name}"`, timeoutMs, intervalMs: 1000, processes: [prometheus.process, monitor] },
        );
      } catch (err) {
        throw new Error(
          `stage "${name}": firing ${[...last].join(", ") || "none"}; wanted ${expected.join(", ")} and not ${quiet.join(", ")}`,
          {
            cause: err,
          },
        );
      }
      observed.push({ stage: name, firing: [...last].sort() });
    }

    const trigger = (value: string) =>
      stack.patchCluster(cluster, { metadata: { annotations: { "openbao.org/trigger-backup": value } } });
    const badToken = { tokenSecretRef: { name: "bad-token" } };
    const goodAuth = { tokenSecretRef: { name: "bao-token" } };

    test("every stage raises exactly the alerts a person needs", async () => {
      await stack.core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: "bad-token" }, stringData: { token: "s.not-a-token" } },
      });
      // Blocked from the start: a lifecycle operator says the cluster is still initializing.
      await stack.createCluster(cluster, { schedule: "* * * * *", ...goodAuth, target: s3Target(stack.target) });
      await stack.setStatus(cluster, { phase: "Initializing", initialized: false });

      // Blocked for two windows: never a success, nothing in the bucket, preflight refusing.
      await stage("blocked");

      // Unblocked, but every Job fails: the first failure fires at once.
      await stack.patchCluster(cluster, { spec: { backup: badToken } });
      await stack.setStatus(cluster, { phase: "Running", initialized: true, currentVersion: "2.4.0" });
      await trigger("fail-1");
      await stage("failing");

      // A restore of `latest` while no backup is stored fails: the first failed restore alerts.
      await stack.custom.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural: "openbaorestores",
        body: {
          apiVersion: `${group}/${version}`,
          kind: "OpenBaoRestore",
          metadata: { name: "missing-key", namespace },
          spec: { cluster, source: { key: "latest" }, tokenSecretRef: { name: "bao-token" } },
        },
      });

      await waitFor(
        async () => {
          const r = (await stack.custom.getNamespacedCustomObject({
            group,
            version,
            namespace,
            plural: "openbaorestores",
            name: "missing-key",
          })) as { status?: { phase?: string } };
          return r.status?.phase === "Failed";
        },
        { what: "the restore of a missing backup to fail", timeoutMs: 60_000 },
      );

      // Recovered: a good backup lands in the bucket; the monitor sees it.
      await stack.patchCluster(cluster, { spec: { backup: goodAuth } });
      await trigger("recover-1");
      await stage("recovered");
      const newest = await prometheus.query(
        `openbao_backup_storage_newest_verified_timestamp_seconds{namespace="${namespace}",cluster="${cluster}"}`,
      );
      assert.ok((newest[0]?.value ?? 0) > Date.now() / 1000 - 300, "the monitor reports the new backup");

      // The dashboard's queries return data from this Prometheus (every series exists by now).
      await checkDashboard(prometheus);

      // Stale: backups fail again (the schedule keeps running every minute) for over an interval.
      await stack.patchCluster(cluster, { spec: { backup: badToken } });
      await stage("stale");

      // What the monitor reports once every good backup is behind it: the scheduled window can
      // land a second good backup right after the triggered one, so `newest` above may predate it.
      const beforeKill = await prometheus.query(
        `openbao_backup_storage_newest_verified_timestamp_seconds{namespace="${namespace}",cluster="${cluster}"}`,
      );
      assert.ok((beforeKill[0]?.value ?? 0) >= (newest[0]?.value ?? 0), "the newest good backup never goes back");

      // The operator is gone: its alerts cannot fire, so OperatorDown does, and the bucket
      // freshness (from the monitor) still reports and keeps OpenBaoBackupStale firing.
      operator.process.kill("SIGKILL");
      await operator.process.exited;
      await stage("operator killed");
      const still = await prometheus.query(
        `openbao_backup_storage_newest_verified_timestamp_seconds{namespace="${namespace}",cluster="${cluster}"}`,
      );
      assert.equal(still.length, 1, "the bucket-freshness series is still scraped");
      assert.equal(still[0]?.value, beforeKill[0]?.value, "and still names the last good backup");
    });
  },
);

/** Every panel query of the shipped dashboard, with its variables filled in, returns data. */
async function checkDashboard(prometheus: PrometheusServer): Promise<void> {
  const path = join(projectRoot, "deploy", "chart", "dashboards", "openbao-backup.json");
  assert.ok(existsSync(path), `${path} is shipped`);
  const exprs: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) for (const v of value) walk(v);
    else if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        if (k === "expr" && typeof v === "string") exprs.push(v);
        else walk(v);
      }
    }
  };
  const dashboard = JSON.parse(readFileSync(path, "utf8")) as { panels?: unknown };
  walk(dashboard.panels);
  assert.ok(exprs.length > 0, "the dashboard has queries");
  const empty: string[] = [];
  for (const expr of exprs) {
    const query = expr
      .replaceAll(/\$\{?namespace(:\w+)?\}?/g, namespace)
      .replaceAll(/\$\{?cluster(:\w+)?\}?/g, cluster)
      .replaceAll(/\$\{?__rate_interval\}?/g, "1m")
      .replaceAll(/\$\{?__range\}?/g, "5m")
      .replaceAll(/\$\{?__interval\}?/g, "15s");
    const samples = await prometheus.query(query);
    if (samples.length === 0) empty.push(expr);
  }
  assert.deepEqual(empty, [], "every panel query returns data");
}

test("docs/metrics-and-alerts.md lists exactly these stages and alerts", () => {
  const text = readFileSync(join(projectRoot, "docs", "metrics-and-alerts.md"), "utf8");
  const section = text.split(/^## End-to-end: what fires when$/m)[1]?.split(/^## /m)[0] ?? "";
  const rows = section
    .split("\n")
    .filter((line) => line.startsWith("| ") && !line.startsWith("| stage") && !/^\|[-| ]+\|$/.test(line))
    .map((line) => line.split(" | ").map((cell) => cell.replace(/^\| |\s*\|$/g, "")));
  const names = (cell: string | undefined) => [...(cell ?? "").matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  assert.deepEqual(
    rows.map((r) => ({ name: r[0], fire: names(r[2]), quiet: names(r[3]) })),
    stages.map((st) => ({ name: st.name, fire: [...st.fire], quiet: [...st.quiet] })),
  );
});
