/**
 * Observability without a cluster: secret-ish fields never reach a log line, one registry
 * per manager with the runtime metrics registered once, and the probe server's answers.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { createLogger, errorFields, redactPaths } from "../../../src/observability/logger.ts";
import { createRegistry, runtimeMetrics } from "../../../src/observability/metrics.ts";
import { startHealthServer } from "../../../src/observability/server.ts";
import { systemClock } from "../../../src/runtime/clock.ts";

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString("utf8"));
      callback();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe("logger", () => {
  test("JSON lines with a level word, ISO time and the controller's name", () => {
    const out = capture();
    const root = createLogger({ level: "info", destination: out.stream, base: { component: "operator" } });
    root.child({ controller: "backup" }).info({ key: "ns/c1" }, "reconciled");
    const [line] = out.lines();
    assert.equal(line?.level, "info");
    assert.equal(line?.controller, "backup");
    assert.equal(line?.component, "operator");
    assert.equal(line?.key, "ns/c1");
    assert.match(String(line?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test("secret-ish fields are redacted at any depth up to three levels below the record", () => {
    const out = capture();
    const logger = createLogger({ level: "info", destination: out.stream });
    logger.info(
      {
        token: "s.top",
        secretAccessKey: "AKIA-secret",
        config: { password: "pw", nested: { accountKey: "k", deeper: { connectionString: "cs" } } },
        headers: { authorization: "Bearer x", "x-vault-token": "hvs.x" },
        harmless: { name: "visible" },
      },
      "with secrets",
    );
    const text = JSON.stringify(out.lines()[0]);
    for (const secret of ["s.top", "AKIA-secret", '"pw"', '"k"', '"cs"', "Bearer x", "hvs.x"]) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    assert.ok(text.includes("visible"));
    assert.ok(redactPaths(["token"], 2).join(",") === "token,*.token,*.*.token");
  });

  test("errorFields keeps message, code and HTTP status, not the stack", () => {
    const err = Object.assign(new Error("GET /api: HTTP 403 Forbidden"), { statusCode: 403, reason: "Forbidden" });
    assert.deepEqual(errorFields(err), {
      error: "GET /api: HTTP 403 Forbidden",
      errorType: "Error",
      statusCode: 403,
      reason: "Forbidden",
    });
  });
});

describe("metrics registry", () => {
  test("runtime metrics are registered once per registry and registries are independent", async () => {
    const a = createRegistry({ defaultMetrics: false });
    const b = createRegistry({ defaultMetrics: false });
    assert.equal(runtimeMetrics(a), runtimeMetrics(a));
    assert.notEqual(runtimeMetrics(a), runtimeMetrics(b));
    runtimeMetrics(a).reconcileTotal.inc({ controller: "x", result: "success" });
    assert.match(await a.metrics(), /controller_runtime_reconcile_total\{controller="x",result="success"\} 1/);
    assert.doesNotMatch(await b.metrics(), /controller="x"/);
    runtimeMetrics(a).trackQueue("q", { len: () => 3, delayedLen: () => 2, processingLen: () => 1 });
    const text = await a.metrics();
    assert.match(text, /workqueue_depth\{name="q"\} 3/);
    assert.match(text, /workqueue_delayed\{name="q"\} 2/);
    assert.match(text, /workqueue_processing\{name="q"\} 1/);
    assert.match(await createRegistry().metrics(), /process_cpu_user_seconds_total/);
  });
});

describe("health server", () => {
  test("/healthz 200, /readyz follows its checks, /metrics serves the registry, other paths 404", async () => {
    const registry = createRegistry({ defaultMetrics: false });
    runtimeMetrics(registry).leaderStatus.set({ name: "ns/lease" }, 1);
    let synced = false;
    const server = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      registry,
      readiness: () => [{ name: "informer jobs", check: () => synced || "not synced" }],
    });
    try {
      const get = async (path: string, method = "GET") => {
        const res = await fetch(`${server.url}${path}`, { method });
        return { status: res.status, body: await res.text() };
      };
      assert.deepEqual(await get("/healthz"), { status: 200, body: "ok\n" });
      assert.deepEqual(await get("/readyz"), { status: 503, body: "informer jobs: not synced\n" });
      synced = true;
      assert.deepEqual(await get("/readyz"), { status: 200, body: "ok\n" });
      const metrics = await get("/metrics");
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /leader_election_master_status\{name="ns\/lease"\} 1/);
      assert.equal((await get("/other")).status, 404);
      assert.equal((await get("/healthz", "POST")).status, 405);
    } finally {
      await server.close();
    }
  });
});

describe("system clock", () => {
  test("a timer never fires early, and a cancelled one never fires", async () => {
    const started = Date.now();
    const firedAt = await new Promise<number>((resolve) => systemClock.setTimer(() => resolve(Date.now()), 25));
    assert.ok(firedAt - started >= 25, `${firedAt - started}`);
    let fired = false;
    systemClock
      .setTimer(() => {
        fired = true;
      }, 5)
      .cancel();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(fired, false);
  });
});
