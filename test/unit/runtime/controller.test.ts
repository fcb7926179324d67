/**
 * The controller's contract with a reconciler, on a fake clock: requeue-after is an exact
 * timer, a throw is retried with growing backoff, success resets it, a TerminalError is
 * recorded and not retried, and one key never runs on two workers at once. Event sources
 * (informers against a real API server) are tested in test/operator/runtime.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createRegistry } from "../../../src/observability/metrics.ts";
import {
  Controller,
  enqueueByLabel,
  enqueueOwner,
  type ReconcileResult,
  type Reconciler,
  TerminalError,
} from "../../../src/runtime/controller.ts";
import { FakeClock, settle } from "./fake-clock.ts";

type Script = (key: string, call: number) => ReconcileResult | undefined | Error | Promise<ReconcileResult | undefined>;

function scripted(clock: FakeClock, script: Script): Reconciler & { calls: { key: string; at: number }[] } {
  const calls: { key: string; at: number }[] = [];
  return {
    calls,
    async reconcile(key) {
      calls.push({ key, at: clock.now() });
      const result = await script(key, calls.filter((c) => c.key === key).length);
      if (result instanceof Error) throw result;
      return result;
    },
  };
}

async function run(controller: Controller): Promise<{ stop: () => Promise<void> }> {
  const abort = new AbortController();
  const running = controller.start(abort.signal);
  await settle();
  return {
    stop: async () => {
      abort.abort();
      await running;
    },
  };
}

describe("controller", () => {
  test("requeueAfterMs schedules exactly one later reconcile at that time", async () => {
    const clock = new FakeClock();
    const reconciler = scripted(clock, () => ({ requeueAfterMs: 60_000 }));
    const controller = new Controller({ name: "t", reconciler, clock });
    const running = await run(controller);
    const t0 = clock.now();
    controller.enqueue("ns/a");
    await settle();
    await clock.advance(59_999);
    assert.equal(reconciler.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(
      reconciler.calls.map((c) => c.at - t0),
      [0, 60_000],
    );
    await running.stop();
  });

  test("a throw is retried with growing backoff; success resets it", async () => {
    const clock = new FakeClock();
    const reconciler = scripted(clock, (_key, call) => (call <= 4 ? new Error(`transient ${call}`) : undefined));
    const registry = createRegistry({ defaultMetrics: false });
    const controller = new Controller({ name: "t", reconciler, clock, registry, backoff: { baseMs: 100 } });
    const running = await run(controller);
    const t0 = clock.now();
    controller.enqueue("ns/a");
    await clock.advance(10_000);
    const at = reconciler.calls.map((c) => c.at - t0);
    assert.deepEqual(at, [0, 100, 300, 700, 1_500], "delays 100, 200, 400, 800");
    assert.equal(controller.queue.retries("ns/a"), 0, "forgotten after the success");
    const metrics = await registry.getSingleMetricAsString("controller_runtime_reconcile_total");
    assert.match(metrics, /controller_runtime_reconcile_total\{controller="t",result="error"\} 4/);
    assert.match(metrics, /controller_runtime_reconcile_total\{controller="t",result="success"\} 1/);
    // The next failure starts from the base delay again.
    reconciler.calls.length = 0;
    const failing = new Controller({
      name: "u",
      reconciler: scripted(clock, () => new Error("x")),
      clock,
      backoff: { baseMs: 100 },
    });
    const second = await run(failing);
    failing.enqueue("ns/b");
    await clock.advance(0);
    assert.equal(failing.queue.delayedUntil("ns/b"), clock.now() + 100);
    await second.stop();
    await running.stop();
  });

  test("a TerminalError is recorded once and not retried until the key is queued again", async () => {
    const clock = new FakeClock();
    const terminal: string[] = [];
    const reconciler = scripted(clock, () => new TerminalError("spec.backup.schedule is invalid"));
    const controller = new Controller({
      name: "t",
      reconciler,
      clock,
      onTerminalError: (key, err) => terminal.push(`${key}: ${err.message}`),
    });
    const running = await run(controller);
    controller.enqueue("ns/a");
    await clock.advance(3_600_000);
    assert.equal(reconciler.calls.length, 1);
    assert.deepEqual(terminal, ["ns/a: spec.backup.schedule is invalid"]);
    assert.equal(controller.queue.delayedLen(), 0);
    controller.enqueue("ns/a"); // the next change of the object
    await clock.advance(0);
    assert.equal(reconciler.calls.length, 2);
    await running.stop();
  });

  test("several workers run different keys concurrently, never one key twice", async () => {
    const clock = new FakeClock();
    let active = 0;
    let maxActive = 0;
    const activeKeys = new Set<string>();
    let overlap = false;
    const reconciler: Reconciler = {
      async reconcile(key) {
        if (activeKeys.has(key)) overlap = true;
        activeKeys.add(key);
        active++;
        maxActive = Math.max(maxActive, active);
        await settle(2);
        active--;
        activeKeys.delete(key);
      },
    };
    const controller = new Controller({ name: "t", reconciler, clock, workers: 3 });
    const running = await run(controller);
    for (let i = 0; i < 60; i++) controller.enqueue(`ns/k${i % 5}`);
    await settle(20);
    for (let i = 0; i < 60; i++) {
      controller.enqueue(`ns/k${i % 5}`);
      await settle(1);
    }
    await settle(30);
    assert.equal(overlap, false);
    assert.equal(maxActive, 3);
    await running.stop();
  });

  test("stop: the reconcile signal aborts, in-flight reconciles finish, queued keys are dropped", async () => {
    const clock = new FakeClock();
    let sawAbort = false;
    let finished = 0;
    const reconciler: Reconciler = {
      async reconcile(_key, signal) {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
        sawAbort = signal.aborted;
        finished++;
      },
    };
    const controller = new Controller({ name: "t", reconciler, clock });
    const running = await run(controller);
    controller.enqueue("ns/a");
    controller.enqueue("ns/b");
    await settle();
    await running.stop();
    assert.equal(sawAbort, true);
    assert.equal(finished, 1, "ns/b was never started");
    assert.equal(controller.queue.len(), 0);
  });

  test("mapping functions: owner references and labels name the owner's key", () => {
    const job = {
      metadata: {
        name: "backup-c1-20260101-000000",
        namespace: "ns",
        labels: { "openbao.org/cluster": "c1" },
        ownerReferences: [
          { apiVersion: "openbao.org/v1alpha1", kind: "OpenBaoCluster", name: "c1", uid: "u1", controller: true },
          { apiVersion: "v1", kind: "ConfigMap", name: "other", uid: "u2" },
          { apiVersion: "other.io/v1", kind: "OpenBaoCluster", name: "foreign", uid: "u3" },
        ],
      },
    };
    assert.deepEqual(enqueueOwner({ kind: "OpenBaoCluster", group: "openbao.org" })(job), ["ns/c1"]);
    assert.deepEqual(enqueueOwner({ kind: "OpenBaoCluster" })(job), ["ns/c1", "ns/foreign"]);
    assert.deepEqual(enqueueOwner({ kind: "OpenBaoCluster", controllerOnly: true })(job), ["ns/c1"]);
    assert.equal(enqueueByLabel("openbao.org/cluster")(job), "ns/c1");
    assert.equal(enqueueByLabel("missing")(job), undefined);
  });
});
