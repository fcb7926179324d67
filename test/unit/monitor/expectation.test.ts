/**
 * Since when a cluster's backups are expected, decided without a live operator: from the
 * operator's `observedSchedule` when it is for the current schedule, from the cluster's
 * creation when no operator ever wrote it, and from the monitor's own first sight when the
 * schedule changed behind a silent operator (never judged from before it existed).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import type { OpenBaoCluster } from "../../../src/api/types.ts";
import { expectationOf } from "../../../src/monitor/expectation.ts";
import { monitorMetrics } from "../../../src/monitor/metrics.ts";

const now = new Date("2026-12-05T12:00:00Z");
const firstSeen = new Date("2026-12-05T11:00:00Z");

function cluster(backup: Record<string, unknown> | undefined, status?: Record<string, unknown>): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "ns", creationTimestamp: "2026-12-01T00:00:00Z" },
    spec: { replicas: 1, version: "2.4.0", ...(backup ? { backup } : {}) },
    ...(status ? { status } : {}),
  } as unknown as OpenBaoCluster;
}

const hourly = { schedule: "0 * * * *", jwtAuthRole: "r", target: { bucket: "b" } };
const observed = (schedule: string, at: string) => ({
  backup: { observedSchedule: { schedule, timeZone: "UTC", suspend: false, observedTime: at } },
});

test("no spec.backup: nothing expected", () => {
  assert.equal(expectationOf(cluster(undefined), now, firstSeen), undefined);
});

test("the operator's observedSchedule for the current schedule", () => {
  const e = expectationOf(cluster(hourly, observed("0 * * * *", "2026-12-03T00:00:00Z")), now, firstSeen);
  assert.equal(e?.intervalSeconds, 3600);
  assert.equal(e?.expectedSince.toISOString(), "2026-12-03T00:00:00.000Z");
});

test("no operator ever wrote status: since the cluster exists", () => {
  assert.equal(expectationOf(cluster(hourly), now, firstSeen)?.expectedSince.toISOString(), "2026-12-01T00:00:00.000Z");
});

test("the schedule changed behind a silent operator: since the monitor first saw it", () => {
  const e = expectationOf(cluster(hourly, observed("0 3 * * *", "2026-12-02T00:00:00Z")), now, firstSeen);
  assert.equal(e?.expectedSince.toISOString(), firstSeen.toISOString());
});

test("suspended or invalid schedule: no interval, so no freshness alert can fire", () => {
  assert.equal(expectationOf(cluster({ ...hourly, suspend: true }), now, firstSeen)?.intervalSeconds, undefined);
  assert.equal(expectationOf(cluster({ ...hourly, schedule: "not cron" }), now, firstSeen)?.intervalSeconds, undefined);
});

test("metrics: storage series exist at 0 from the first sight; a failed probe keeps the last reading", async () => {
  const registry = new Registry();
  const m = monitorMetrics(registry);
  const text = async () => registry.metrics();
  assert.match(await text(), /^openbao_backup_monitor_last_pass_timestamp_seconds 0$/m);
  m.expect({ namespace: "ns", cluster: "bao", intervalSeconds: 3600, expectedSinceSeconds: 100 });
  const labels = 'namespace="ns",cluster="bao"';
  assert.match(
    await text(),
    new RegExp(`^openbao_backup_storage_newest_verified_timestamp_seconds\\{${labels}\\} 0$`, "m"),
  );
  assert.match(await text(), new RegExp(`^openbao_backup_storage_probe_success\\{${labels}\\} 0$`, "m"));
  m.probed("ns", "bao", 5000, now);
  m.probeFailed("ns", "bao");
  assert.match(
    await text(),
    new RegExp(`^openbao_backup_storage_newest_verified_timestamp_seconds\\{${labels}\\} 5000$`, "m"),
  );
  assert.match(await text(), new RegExp(`^openbao_backup_storage_probe_success\\{${labels}\\} 0$`, "m"));
  m.passed([], now);
  assert.doesNotMatch(await text(), /cluster="bao"/, "a cluster gone: its series go too");
  assert.match(await text(), /^openbao_backup_monitor_clusters 0$/m);
});
