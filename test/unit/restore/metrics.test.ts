/**
 * `openbao_restore_*`: counters move on reported transitions, gauges are recomputed from the
 * restores themselves (so a restarted operator reports the truth). SPEC §5 trap 9.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import type { OpenBaoRestore } from "../../../src/api/types.ts";
import { restoreMetrics } from "../../../src/restore/metrics.ts";

const r = (name: string, status: OpenBaoRestore["status"]): OpenBaoRestore => ({
  apiVersion: "openbao.org/v1alpha1",
  kind: "OpenBaoRestore",
  metadata: { name, namespace: "ns" },
  spec: { cluster: "bao", source: { target: { bucket: "b" }, key: "k.snap" }, jwtAuthRole: "restore" },
  status,
});

test("every declared metric is updated", async () => {
  const registry = new Registry();
  const m = restoreMetrics(registry);
  m.started("ns", "bao");
  m.finished("ns", "bao", { ok: true, reason: "RestoreSucceeded", durationMs: 12_000, size: 100 });
  m.finished("ns", "bao", { ok: false, reason: "ObjectMissing", durationMs: 1000, size: undefined });
  m.observe("ns", "bao", [
    r("a", {
      phase: "Completed",
      startTime: "2026-11-21T10:00:00Z",
      completionTime: "2026-11-21T10:00:30Z",
      snapshotSize: 100,
    }),
    r("b", {
      phase: "Completed",
      startTime: "2026-11-21T09:00:00Z",
      completionTime: "2026-11-21T09:00:10Z",
      snapshotSize: 7,
    }),
    r("c", { phase: "Running", startTime: "2026-11-21T10:01:00Z" }),
  ]);
  const text = await registry.metrics();
  const labels = '{namespace="ns",cluster="bao"}';
  assert.match(text, new RegExp(`^openbao_restore_total${labels} 1$`, "m"));
  assert.match(text, new RegExp(`^openbao_restore_success_total${labels} 1$`, "m"));
  assert.match(text, /^openbao_restore_failure_total\{namespace="ns",cluster="bao",reason="ObjectMissing"\} 1$/m);
  assert.match(text, new RegExp(`^openbao_restore_duration_seconds_count${labels} 2$`, "m"));
  assert.match(text, new RegExp(`^openbao_restore_in_progress${labels} 1$`, "m"));
  assert.match(
    text,
    new RegExp(
      `^openbao_restore_last_success_timestamp_seconds${labels} ${Date.parse("2026-11-21T10:00:30Z") / 1000}$`,
      "m",
    ),
  );
  assert.match(text, new RegExp(`^openbao_restore_last_size_bytes${labels} 100$`, "m"));
  assert.match(text, new RegExp(`^openbao_restore_last_duration_seconds${labels} 30$`, "m"));
  m.observe("ns", "bao", []);
  assert.match(await registry.metrics(), new RegExp(`^openbao_restore_in_progress${labels} 0$`, "m"));
});

test("the last failure is a gauge recomputed from the Failed restores, so the first one alerts", async () => {
  const registry = new Registry();
  const m = restoreMetrics(registry);
  const labels = '{namespace="ns",cluster="bao"}';
  m.observe("ns", "bao", [r("a", { phase: "Running", startTime: "2026-11-21T10:00:00Z" })]);
  let text = await registry.metrics();
  assert.match(text, new RegExp(`^openbao_restore_total${labels} 0$`, "m"), "counters start at 0");
  assert.match(text, new RegExp(`^openbao_restore_success_total${labels} 0$`, "m"));
  assert.doesNotMatch(text, /^openbao_restore_last_failure_timestamp_seconds\{/m, "no failure yet: no series");
  m.observe("ns", "bao", [
    r("a", { phase: "Failed", startTime: "2026-11-21T10:00:00Z", completionTime: "2026-11-21T10:00:05Z" }),
    r("b", { phase: "Failed", completionTime: "2026-11-21T09:00:00Z" }),
  ]);
  text = await registry.metrics();
  assert.match(
    text,
    new RegExp(
      `^openbao_restore_last_failure_timestamp_seconds${labels} ${Date.parse("2026-11-21T10:00:05Z") / 1000}$`,
      "m",
    ),
  );
  m.observe("ns", "bao", []);
  assert.doesNotMatch(await registry.metrics(), /^openbao_restore_last_failure_timestamp_seconds\{/m);
});
