/**
 * `openbao_backup_*`: no series an alert reads is missing for a cluster with `spec.backup`
 * (issue 16). The plan is the real planner with a fixed clock; the metrics read what it wrote.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry } from "prom-client";
import { BlockedReason } from "../../../src/api/constants.ts";
import type { OpenBaoCluster } from "../../../src/api/types.ts";
import { backupMetrics } from "../../../src/backup/metrics.ts";
import { type BackupPlan, planBackup } from "../../../src/backup/plan.ts";
import { parseSchedule, scheduleIntervalSeconds } from "../../../src/backup/schedule.ts";

const now = new Date("2026-11-21T10:00:30Z");

function cluster(phase: "Running" | "Initializing" = "Running", schedule = "0 * * * *"): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "ns", uid: "uid-1" },
    spec: {
      replicas: 1,
      version: "2.4.0",
      backup: { schedule, jwtAuthRole: "backup", target: { bucket: "b" } },
    },
    status: { phase, initialized: true, currentVersion: "2.4.0" },
  };
}

function plan(c: OpenBaoCluster, at = now): { cluster: OpenBaoCluster; plan: BackupPlan } {
  const p = planBackup({ cluster: c, jobs: [], activeRestores: [], missingSecrets: [], now: at, defaultImage: "img" });
  return { cluster: p.status ? { ...c, status: { ...c.status, ...p.status } } : c, plan: p };
}

const labels = 'namespace="ns",cluster="bao"';
const line = (text: string, series: string): string | undefined =>
  text.split("\n").find((l) => l.startsWith(`${series} `));
const value = (text: string, series: string): number | undefined => {
  const found = line(text, series);
  return found === undefined ? undefined : Number(found.split(" ").pop());
};

describe("backup metrics", () => {
  test("a new cluster: every counter at 0 for every type, last success 0, expected since the schedule was seen", async () => {
    const registry = new Registry();
    const m = backupMetrics(registry, () => now);
    const { cluster: c, plan: p } = plan(cluster());
    m.observe(c, p.blocked);
    const text = await registry.metrics();
    for (const type of ["scheduled", "manual", "pre-upgrade"]) {
      assert.equal(value(text, `openbao_backup_success_total{${labels},type="${type}"}`), 0, type);
      assert.equal(value(text, `openbao_backup_failure_total{${labels},type="${type}"}`), 0, type);
    }
    assert.equal(value(text, `openbao_backup_retention_deleted_total{${labels}}`), 0);
    assert.equal(value(text, `openbao_backup_retention_failures_total{${labels}}`), 0);
    assert.equal(value(text, `openbao_backup_last_success_timestamp_seconds{${labels}}`), 0);
    assert.equal(value(text, `openbao_backup_last_attempt_timestamp_seconds{${labels}}`), 0);
    assert.equal(value(text, `openbao_backup_consecutive_failures{${labels}}`), 0);
    assert.equal(value(text, `openbao_backup_schedule_observed_timestamp_seconds{${labels}}`), now.getTime() / 1000);
    assert.equal(value(text, `openbao_backup_schedule_interval_seconds{${labels}}`), 3600);
    for (const reason of Object.values(BlockedReason)) {
      assert.equal(value(text, `openbao_backup_blocked{${labels},reason="${reason}"}`), 0, reason);
    }
    assert.equal(
      value(
        text,
        `openbao_backup_condition{${labels},condition="BackupHealthy",status="Unknown",reason="NoBackupYet"}`,
      ),
      1,
    );
    assert.equal(
      value(text, `openbao_backup_condition{${labels},condition="BackingUp",status="False",reason="NoBackupRunning"}`),
      1,
    );
  });

  test("blocked: the reason is 1, the condition says BackingUp=False/BackupBlocked; unblocked: the old series go", async () => {
    const registry = new Registry();
    const m = backupMetrics(registry, () => now);
    // Seen at 09:59:30, a window at 10:00 is due at 10:00:30 while the cluster is not Running.
    let c = plan(cluster("Initializing"), new Date("2026-11-21T09:59:30Z")).cluster;
    const blocked = plan(c);
    c = blocked.cluster;
    assert.deepEqual(blocked.plan.blocked, [BlockedReason.ClusterNotRunning]);
    m.observe(c, blocked.plan.blocked);
    let text = await registry.metrics();
    assert.equal(value(text, `openbao_backup_blocked{${labels},reason="ClusterNotRunning"}`), 1);
    assert.equal(value(text, `openbao_backup_blocked{${labels},reason="SecretNotFound"}`), 0);
    const blockedSeries = `openbao_backup_condition{${labels},condition="BackingUp",status="False",reason="BackupBlocked"}`;
    assert.equal(value(text, blockedSeries), 1);

    const running: OpenBaoCluster = { ...c, status: { ...c.status, phase: "Running" } };
    const started = plan(running);
    assert.deepEqual(started.plan.blocked, []);
    assert.ok(started.plan.createJob, "the due window starts once the cluster runs");
    m.observe(started.cluster, started.plan.blocked);
    text = await registry.metrics();
    assert.equal(value(text, `openbao_backup_blocked{${labels},reason="ClusterNotRunning"}`), 0);
    assert.equal(line(text, blockedSeries), undefined, "the BackupBlocked series is gone, not left at 1");
    assert.equal(
      value(text, `openbao_backup_condition{${labels},condition="BackingUp",status="True",reason="BackupJobRunning"}`),
      1,
    );
    assert.equal(value(text, `openbao_backup_in_progress{${labels}}`), 1);
    assert.equal(value(text, `openbao_backup_last_attempt_timestamp_seconds{${labels}}`), now.getTime() / 1000);
  });

  test("a success whose retention failed counts once; retention that could not list counts too", async () => {
    const registry = new Registry();
    const m = backupMetrics(registry, () => now);
    const c = plan(cluster()).cluster;
    m.observe(c);
    const outcome = {
      type: "scheduled" as const,
      ok: true,
      size: 10,
      durationMs: 2000,
      retentionDeleted: 3,
      finishedAt: now,
    };
    m.recorded(c, { ...outcome, retentionFailed: true });
    m.recorded(c, { ...outcome, retentionFailed: false });
    m.recorded(c, { ...outcome, ok: false, retentionDeleted: undefined, retentionFailed: false });
    const text = await registry.metrics();
    assert.equal(value(text, `openbao_backup_retention_failures_total{${labels}}`), 1);
    assert.equal(value(text, `openbao_backup_retention_deleted_total{${labels}}`), 6);
    assert.equal(value(text, `openbao_backup_success_total{${labels},type="scheduled"}`), 2);
    assert.equal(value(text, `openbao_backup_failure_total{${labels},type="scheduled"}`), 1);
    assert.equal(value(text, `openbao_backup_last_duration_seconds{${labels}}`), 2);
  });

  test("the planner reports a failed retention of a successful Job (objects left, or no listing)", () => {
    const seen = plan(cluster("Running", "* * * * *"), new Date("2026-11-21T09:59:30Z")).cluster;
    const start = plan(seen, new Date("2026-11-21T10:00:05Z"));
    const jobName = start.plan.createJob?.name ?? "";
    assert.ok(jobName);
    const base = {
      ok: true,
      key: "k.snap",
      size: 1,
      sha256: "a".repeat(64),
      durationMs: 1,
      raftIndex: 1,
      reason: undefined,
      message: undefined,
      retentionDeleted: 0,
    };
    for (const [result, expected] of [
      [{ ...base, retentionFailed: 2 }, true],
      [{ ...base, retentionFailed: 0, retentionError: true }, true],
      [{ ...base, retentionFailed: 0 }, false],
    ] as const) {
      const p = planBackup({
        cluster: start.cluster,
        jobs: [
          {
            name: jobName,
            phase: "Succeeded",
            finishedAt: new Date("2026-11-21T10:00:20Z"),
            jobFailureReason: undefined,
            result,
            podTerminated: true,
          },
        ],
        activeRestores: [],
        missingSecrets: [],
        now: new Date("2026-11-21T10:00:30Z"),
        defaultImage: "img",
      });
      assert.equal(p.recorded?.retentionFailed, expected, JSON.stringify(result));
    }
  });

  test("spec.backup removed, or the cluster deleted: no series of it is left", async () => {
    const registry = new Registry();
    const m = backupMetrics(registry, () => now);
    const c = plan(cluster()).cluster;
    m.observe(c);
    m.recorded(c, {
      type: "manual",
      ok: true,
      size: 1,
      durationMs: 1,
      retentionDeleted: 1,
      retentionFailed: false,
      finishedAt: now,
    });
    assert.match(await registry.metrics(), /cluster="bao"/);
    const { backup: _, ...spec } = c.spec ?? { replicas: 1, version: "2.4.0" };
    m.observe({ ...c, spec });
    assert.doesNotMatch(await registry.metrics(), /cluster="bao"/);
    m.observe(c);
    m.forget("ns", "bao");
    assert.doesNotMatch(await registry.metrics(), /cluster="bao"/);
  });

  test("a suspended or invalid schedule has no interval, so interval-based alerts stay quiet", async () => {
    const registry = new Registry();
    const m = backupMetrics(registry, () => now);
    const c = plan(cluster()).cluster;
    const backup = c.spec?.backup;
    assert.ok(backup);
    m.observe({ ...c, spec: { replicas: 1, version: "2.4.0", backup: { ...backup, suspend: true } } });
    assert.equal(line(await registry.metrics(), `openbao_backup_schedule_interval_seconds{${labels}}`), undefined);
    m.observe({ ...c, spec: { replicas: 1, version: "2.4.0", backup: { ...backup, timeZone: "Mars/Olympus" } } });
    assert.equal(line(await registry.metrics(), `openbao_backup_schedule_interval_seconds{${labels}}`), undefined);
    m.observe(c);
    assert.equal(value(await registry.metrics(), `openbao_backup_schedule_interval_seconds{${labels}}`), 3600);
  });
});

describe("scheduleIntervalSeconds: the longest gap among the next windows", () => {
  const at = new Date("2026-11-18T12:00:00Z"); // a Wednesday
  const cases: [string, string, number][] = [
    ["*/5 * * * *", "UTC", 300],
    ["0 3 * * *", "Europe/Berlin", 86_400],
    ["0 3 * * 1-5", "UTC", 3 * 86_400],
    ["@weekly", "UTC", 7 * 86_400],
    ["@monthly", "UTC", 31 * 86_400],
  ];
  for (const [expression, zone, expected] of cases) {
    test(`${expression} (${zone}) → ${expected} s`, () => {
      assert.equal(scheduleIntervalSeconds(parseSchedule(expression, zone), at), expected);
    });
  }
});
