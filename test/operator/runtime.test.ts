/**
 * The controller runtime against a real etcd + kube-apiserver: informers fill their caches
 * and enqueue keys for create/update/delete (and for owned objects, by owner reference);
 * events keep flowing after kube-apiserver is stopped and started again on the same port
 * and data; two managers on one Lease have exactly one leader, and a successor takes over
 * when the leader stops (released Lease) or vanishes (Lease left to expire); /healthz,
 * /readyz and /metrics answer, /readyz only once the caches have synced.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, afterEach, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1CustomResourceDefinition,
  type V1Job,
} from "@kubernetes/client-node";
import { clusterNames, group, version } from "../../src/api/constants.ts";
import { crds } from "../../src/api/schema.ts";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { createLogger, type Logger } from "../../src/observability/logger.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { enqueueOwner, type Reconciler } from "../../src/runtime/controller.ts";
import type { Wire } from "../../src/runtime/informer.ts";
import { Manager } from "../../src/runtime/manager.ts";
import { type KubeHandle, kubeGet, startKube } from "../servers/kube.ts";
import { type ManagedProcess, startProcess, superviseServers, waitFor } from "../servers/process.ts";

superviseServers();

const namespace = "runtime";
type ConfigMap = Wire<V1ConfigMap>;

/** Log lines of the managers, printed when a test fails. */
const logLines: string[] = [];
function testLogger(name: string): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logLines.push(line);
      if (logLines.length > 4_000) logLines.splice(0, logLines.length - 4_000);
      callback();
    },
  });
  return createLogger({ level: "debug", destination: sink, base: { manager: name } });
}
afterEach((t) => {
  if ((t as { passed?: boolean }).passed !== false) return;
  process.stderr.write(`\n--- manager logs (last 300 lines) ---\n${logLines.slice(-300).join("\n")}\n`);
});

/** Records every reconcile with what the cache held at that moment. */
class Recorder implements Reconciler {
  readonly calls: { key: string; at: number; value: string | undefined; present: boolean }[] = [];
  readonly #lookup: (key: string) => ConfigMap | undefined;

  constructor(lookup: (key: string) => ConfigMap | undefined) {
    this.#lookup = lookup;
  }

  async reconcile(key: string): Promise<void> {
    const object = this.#lookup(key);
    this.calls.push({ key, at: Date.now(), value: object?.data?.value, present: object !== undefined });
  }

  /** Waits for a reconcile of `key` (after call index `from`) that satisfies `match`. */
  async waitFor(
    key: string,
    match: (call: Recorder["calls"][number]) => boolean,
    from = 0,
    timeoutMs = 30_000,
  ): Promise<Recorder["calls"][number]> {
    return waitFor(async () => this.calls.slice(from).find((call) => call.key === key && match(call)), {
      what: `a reconcile of ${key}`,
      timeoutMs,
      intervalMs: 20,
    });
  }
}

async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

describe("controller runtime against kube-apiserver", { timeout: 600_000 }, () => {
  let kube: KubeHandle;
  /** The kube-apiserver currently serving (the fixture's, or ours after a restart). */
  let apiServer: ManagedProcess;
  const managers: Manager[] = [];
  let core: CoreV1Api;

  const configMap = (name: string, labels: Record<string, string>, value: string) => ({
    metadata: { name, namespace, labels },
    data: { value },
  });

  /** A JSON merge patch (the client's default content type is a JSON patch). */
  const patchConfigMap = async (name: string, body: object): Promise<void> => {
    await core.patchNamespacedConfigMap(
      { name, namespace, body },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  };

  before(async () => {
    kube = await startKube({ name: "runtime" });
    apiServer = kube.apiServer;
    await kube.installCrds(crds());
    await kube.createNamespace(namespace);
    core = kube.kubeConfig.makeApiClient(CoreV1Api);
  });

  after(async () => {
    await Promise.all(managers.map((manager) => manager.stop()));
    if (apiServer !== kube?.apiServer) await apiServer?.stop();
    await kube?.stop();
  });

  function manager(name: string, options: Partial<ConstructorParameters<typeof Manager>[0]> = {}): Manager {
    const created = new Manager({
      kubeConfig: kube.kubeConfig,
      logger: testLogger(name),
      registry: createRegistry(),
      health: { host: "127.0.0.1", port: 0 },
      leaderElection: false,
      gracefulShutdownTimeoutMs: 10_000,
      ...options,
    });
    managers.push(created);
    return created;
  }

  /** Stops the serving kube-apiserver and starts the same binary with the same flags (port, etcd, keys). */
  async function restartApiServer(downMs: number): Promise<{ downAt: number; readyAt: number }> {
    const command = apiServer.child.spawnfile;
    const args = apiServer.child.spawnargs.slice(1);
    const downAt = Date.now();
    await apiServer.stop();
    await sleep(downMs);
    apiServer = startProcess({ name: "runtime-apiserver-restarted", command, args });
    const restarted = apiServer;
    await waitFor(
      async () => {
        const ready = await kubeGet(kube.kubeConfig, "/readyz");
        return ready.status === 200;
      },
      { what: "kube-apiserver /readyz after the restart", timeoutMs: 120_000, intervalMs: 100, processes: [restarted] },
    );
    return { downAt, readyAt: Date.now() };
  }

  describe("informer + controller", () => {
    let main: Manager;
    let recorder: Recorder;
    let informer: ReturnType<Manager["informer"]>;
    /** Watches a selector nothing matches until its test: a watch without any traffic. */
    let quiet: ReturnType<Manager["informer"]>;
    let quietSince = 0;

    before(async () => {
      // One object exists before the informer starts: it arrives through the list, not the watch.
      await core.createNamespacedConfigMap({ namespace, body: configMap("pre", { app: "rt" }, "listed") });
      await core.createNamespacedConfigMap({ namespace, body: configMap("quiet-listed", { app: "quiet" }, "x") });
      main = manager("main");
      // Its cache drops managedFields and the data (a transform on insert, for list and watch).
      quiet = main.informer(
        { apiVersion: "v1", plural: "configmaps", namespace, labelSelector: "app=quiet" },
        {
          transform: (object) => {
            const trimmed = object as ConfigMap;
            delete trimmed.metadata?.managedFields;
            delete trimmed.data;
            return trimmed;
          },
        },
      );
      quiet.addIndex("app", (object) => [object.metadata?.labels?.app ?? ""]);
      quietSince = Date.now();
      const cms = main.informer<ConfigMap>({
        apiVersion: "v1",
        plural: "configmaps",
        namespace,
        labelSelector: "app=rt",
      });
      informer = cms;
      recorder = new Recorder((key) => cms.getByKey(key));
      main.controller({ name: "configmaps", reconciler: recorder, workers: 2 }).watch(cms);
      await main.start();
      await waitFor(async () => main.ready(), { what: "caches synced", timeoutMs: 30_000, intervalMs: 20 });
    });

    test("an object listed at start is reconciled once the cache has synced, as JSON (string timestamps)", async () => {
      await recorder.waitFor(`${namespace}/pre`, (call) => call.present && call.value === "listed");
      const cached = informer.get(namespace, "pre") as ConfigMap | undefined;
      assert.equal(typeof cached?.metadata?.creationTimestamp, "string");
      assert.equal(cached?.kind, "ConfigMap", "list items get their kind like watch events have it");
      assert.equal(cached?.apiVersion, "v1");
    });

    test("create, update and delete each enqueue the object's key; the reconciler reads the cache", async () => {
      const key = `${namespace}/a`;
      let from = recorder.calls.length;
      await core.createNamespacedConfigMap({ namespace, body: configMap("a", { app: "rt" }, "one") });
      await recorder.waitFor(key, (call) => call.present && call.value === "one", from);
      const watched = informer.get(namespace, "a") as ConfigMap | undefined;
      assert.equal(typeof watched?.metadata?.creationTimestamp, "string", "watch events stay JSON too");

      from = recorder.calls.length;
      await patchConfigMap("a", { data: { value: "two" } });
      await recorder.waitFor(key, (call) => call.value === "two", from);

      from = recorder.calls.length;
      await core.deleteNamespacedConfigMap({ name: "a", namespace });
      await recorder.waitFor(key, (call) => !call.present, from);
      assert.equal(informer.get(namespace, "a"), undefined);
      assert.deepEqual(
        informer
          .list(namespace)
          .map((o) => o.metadata?.name)
          .sort(),
        ["pre"],
      );
    });

    test("objects outside the label selector are neither cached nor reconciled; relabelling in or out is seen", async () => {
      const from = recorder.calls.length;
      await core.createNamespacedConfigMap({ namespace, body: configMap("other", { app: "else" }, "x") });
      await core.createNamespacedConfigMap({ namespace, body: configMap("marker", { app: "rt" }, "m") });
      await recorder.waitFor(`${namespace}/marker`, (call) => call.present, from);
      assert.ok(!recorder.calls.some((call) => call.key === `${namespace}/other`));
      assert.equal(informer.get(namespace, "other"), undefined);
      // Relabelled into the selection: an add; out of it: a delete.
      await patchConfigMap("other", { metadata: { labels: { app: "rt" } } });
      await recorder.waitFor(`${namespace}/other`, (call) => call.present, from);
      const before = recorder.calls.length;
      await patchConfigMap("other", { metadata: { labels: { app: "else" } } });
      await recorder.waitFor(`${namespace}/other`, (call) => !call.present, before);
    });

    test("a change to an owned Job enqueues its OpenBaoCluster owner", async () => {
      const owner = manager("owners");
      const clusters = owner.informer<OpenBaoCluster>({
        apiVersion: `${group}/${version}`,
        plural: clusterNames.plural,
        namespace,
      });
      const jobs = owner.informer<Wire<V1Job>>({ apiVersion: "batch/v1", plural: "jobs", namespace });
      const keys: string[] = [];
      const controller = owner.controller({
        name: "clusters",
        reconciler: {
          async reconcile(key) {
            keys.push(key);
          },
        },
      });
      controller.watch(clusters).watch(jobs, enqueueOwner({ kind: clusterNames.kind, group }));
      await owner.start();
      const custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
      const created = (await custom.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural: clusterNames.plural,
        body: {
          apiVersion: `${group}/${version}`,
          kind: clusterNames.kind,
          metadata: { name: "c1" },
          spec: { replicas: 1 },
        },
      })) as OpenBaoCluster;
      await waitFor(async () => keys.includes(`${namespace}/c1`), { what: "cluster reconciled", timeoutMs: 30_000 });
      const cached = clusters.get(namespace, "c1");
      assert.equal(cached?.metadata.uid, created.metadata.uid);

      const before = keys.length;
      const batch = kube.kubeConfig.makeApiClient(BatchV1Api);
      await batch.createNamespacedJob({
        namespace,
        body: {
          metadata: {
            name: "backup-c1-20260101-000000",
            ownerReferences: [
              {
                apiVersion: `${group}/${version}`,
                kind: clusterNames.kind,
                name: "c1",
                uid: created.metadata.uid ?? "",
                controller: true,
              },
            ],
          },
          spec: {
            backoffLimit: 0,
            template: { spec: { restartPolicy: "Never", containers: [{ name: "backup", image: "example/backup:1" }] } },
          },
        },
      });
      await waitFor(async () => keys.slice(before).includes(`${namespace}/c1`), {
        what: "the Job's owner reconciled",
        timeoutMs: 30_000,
      });
      assert.ok(!keys.includes(`${namespace}/backup-c1-20260101-000000`), "the Job's own key is never enqueued");
      assert.equal(typeof jobs.get(namespace, "backup-c1-20260101-000000")?.metadata?.creationTimestamp, "string");
      await owner.stop();
    });

    test("a quiet watch stays open past the client's 30 s inactivity timer; transformed, indexed cache", async () => {
      // @kubernetes/client-node's Watch aborts after 30 s without data by default; a watch
      // with nothing to report then ended and was opened again every 30 s.
      await sleep(Math.max(0, quietSince + 40_000 - Date.now()));
      assert.equal(quiet.stats.watches, 1, "one watch request since the start");
      assert.equal(quiet.stats.errors, 0);
      const listed = quiet.get(namespace, "quiet-listed") as ConfigMap | undefined;
      assert.ok(listed, "listed");
      assert.equal(listed.data, undefined, "the transform applied to a listed object");
      assert.equal(listed.metadata?.managedFields, undefined);
      await core.createNamespacedConfigMap({ namespace, body: configMap("quiet-watched", { app: "quiet" }, "y") });
      await waitFor(async () => quiet.get(namespace, "quiet-watched") !== undefined, {
        what: "the watch event cached",
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      const watched = quiet.get(namespace, "quiet-watched") as ConfigMap | undefined;
      assert.equal(watched?.data, undefined, "the transform applied to a watch event");
      assert.equal(watched?.metadata?.managedFields, undefined);
      // The secondary index follows list, watch and delete.
      const names = (): string[] =>
        quiet
          .byIndex("app", "quiet")
          .map((o) => o.metadata?.name ?? "")
          .sort();
      assert.deepEqual(names(), ["quiet-listed", "quiet-watched"]);
      assert.deepEqual(quiet.byIndex("app", "other"), []);
      await core.deleteNamespacedConfigMap({ namespace, name: "quiet-watched" });
      await waitFor(async () => names().length === 1, {
        what: "the delete indexed",
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      assert.deepEqual(names(), ["quiet-listed"]);
    });

    test("kube-apiserver stopped and started again: the cache is served meanwhile, and events flow afterwards", async () => {
      const statsBefore = { ...informer.stats };
      const { downAt, readyAt } = await restartApiServer(2_000);
      // While it was down the cache kept answering and the process stayed healthy and ready.
      assert.ok(informer.get(namespace, "pre"));
      const url = main.healthUrl ?? "";
      assert.equal((await getText(`${url}/healthz`)).status, 200);
      assert.equal((await getText(`${url}/readyz`)).status, 200);

      const from = recorder.calls.length;
      const createdAt = Date.now();
      await core.createNamespacedConfigMap({ namespace, body: configMap("after-restart", { app: "rt" }, "back") });
      const call = await recorder.waitFor(`${namespace}/after-restart`, (c) => c.present, from, 60_000);
      await patchConfigMap("pre", { data: { value: "changed" } });
      await recorder.waitFor(`${namespace}/pre`, (c) => c.value === "changed", from, 30_000);
      const stats = informer.stats;
      process.stdout.write(
        `# apiserver down→ready ${readyAt - downAt} ms; first event ${call.at - createdAt} ms after the create ` +
          `(${call.at - readyAt} ms after /readyz); informer: ${stats.watches - statsBefore.watches} watches, ` +
          `${stats.errors - statsBefore.errors} errors, ${stats.expired - statsBefore.expired} expired, ` +
          `${stats.lists - statsBefore.lists} relists\n`,
      );
      assert.ok(stats.errors > statsBefore.errors || stats.watches > statsBefore.watches + 1, "the watch was broken");
    });
  });

  describe("leader election", () => {
    const lease = {
      namespace,
      name: "runtime-leader",
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 1_000,
    };
    const coordination = (): CoordinationV1Api => kube.kubeConfig.makeApiClient(CoordinationV1Api);
    const holder = async (): Promise<string | undefined> =>
      (await coordination().readNamespacedLease({ name: lease.name, namespace })).spec?.holderIdentity;

    function candidate(identity: string, releaseOnCancel: boolean): { manager: Manager; recorder: Recorder } {
      const m = manager(identity, { leaderElection: { ...lease, identity, releaseOnCancel } });
      const cms = m.informer<ConfigMap>({ apiVersion: "v1", plural: "configmaps", namespace, labelSelector: "app=le" });
      const recorder = new Recorder((key) => cms.getByKey(key));
      m.controller({ name: "le", reconciler: recorder }).watch(cms);
      return { manager: m, recorder };
    }

    async function waitForLeader(m: Manager, timeoutMs: number): Promise<number> {
      const started = Date.now();
      await waitFor(async () => m.isLeader(), { what: `${m.identity} leads`, timeoutMs, intervalMs: 10 });
      return Date.now() - started;
    }

    test("exactly one of two managers leads; only it reconciles; successors take over on stop and on crash", async () => {
      await core.createNamespacedConfigMap({ namespace, body: configMap("le-1", { app: "le" }, "1") });
      const a = candidate("replica-a", true);
      await a.manager.start();
      await waitForLeader(a.manager, 15_000);
      const b = candidate("replica-b", false);
      await b.manager.start();
      await waitFor(async () => b.manager.ready(), { what: "b synced", timeoutMs: 30_000 });

      // Over three seconds (three renewals), a leads and b waits.
      for (let i = 0; i < 30; i++) {
        assert.equal(a.manager.isLeader(), true);
        assert.equal(b.manager.isLeader(), false);
        await sleep(100);
      }
      assert.equal(await holder(), "replica-a");
      await a.recorder.waitFor(`${namespace}/le-1`, (call) => call.present);
      let from = a.recorder.calls.length;
      await core.createNamespacedConfigMap({ namespace, body: configMap("le-2", { app: "le" }, "2") });
      await a.recorder.waitFor(`${namespace}/le-2`, (call) => call.present, from);
      await sleep(1_500);
      assert.deepEqual(b.recorder.calls, [], "the follower reconciles nothing");

      // Graceful stop of the leader: it releases the Lease, b takes over within a retry period.
      const stopStarted = Date.now();
      await a.manager.stop();
      const stopMs = Date.now() - stopStarted;
      const releasedAt = Date.now();
      await waitForLeader(b.manager, lease.leaseDurationMs);
      const gracefulTakeoverMs = Date.now() - releasedAt;
      assert.equal(await a.manager.done, "stopped");
      assert.equal(await holder(), "replica-b");
      // The new leader reconciles every existing object once it leads (cache replay).
      await b.recorder.waitFor(`${namespace}/le-1`, (call) => call.present);
      await b.recorder.waitFor(`${namespace}/le-2`, (call) => call.present);
      from = a.recorder.calls.length;

      // Crash of the leader (b stops without releasing): c takes over once the Lease expires.
      const c = candidate("replica-c", true);
      await c.manager.start();
      await waitFor(async () => c.manager.ready(), { what: "c synced", timeoutMs: 30_000 });
      await sleep(1_200);
      assert.equal(c.manager.isLeader(), false);
      const lastRenew = await coordination().readNamespacedLease({ name: lease.name, namespace });
      await b.manager.stop();
      const crashedAt = Date.now();
      assert.equal(await holder(), "replica-b", "not released");
      await waitForLeader(c.manager, lease.leaseDurationMs + 3 * lease.retryPeriodMs);
      const crashTakeoverMs = Date.now() - crashedAt;
      const renewTime = lastRenew.spec?.renewTime;
      const sinceRenewMs = Date.now() - new Date(String(renewTime)).getTime();
      assert.equal(await holder(), "replica-c");
      const transitions = (await coordination().readNamespacedLease({ name: lease.name, namespace })).spec
        ?.leaseTransitions;
      const beforeC = c.recorder.calls.length;
      await patchConfigMap("le-1", { data: { value: "c" } });
      await c.recorder.waitFor(`${namespace}/le-1`, (call) => call.value === "c", beforeC);
      assert.equal(a.recorder.calls.length, from, "the stopped leader reconciles nothing more");
      process.stdout.write(
        `# leader election (lease 3 s, renew deadline 2 s, retry 1 s): graceful stop ${stopMs} ms, takeover after ` +
          `release ${gracefulTakeoverMs} ms; takeover after a crash ${crashTakeoverMs} ms ` +
          `(${sinceRenewMs} ms after the last renewal); transitions ${transitions}\n`,
      );
      assert.ok(gracefulTakeoverMs < lease.leaseDurationMs, `graceful takeover ${gracefulTakeoverMs} ms`);
      assert.ok(sinceRenewMs >= lease.leaseDurationMs - 200, `crash takeover not before expiry: ${sinceRenewMs} ms`);
      assert.ok(
        crashTakeoverMs <= lease.leaseDurationMs + 1.2 * lease.retryPeriodMs + 1_000,
        `crash takeover ${crashTakeoverMs} ms`,
      );
      await c.manager.stop();
      assert.equal(await holder(), "", "released on graceful stop");
    });
  });

  describe("health and metrics endpoints", () => {
    const widgets: V1CustomResourceDefinition = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "widgets.runtime.openbao-backup.test" },
      spec: {
        group: "runtime.openbao-backup.test",
        scope: "Namespaced",
        names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: "object", x_kubernetes_preserve_unknown_fields: true } },
          },
        ],
      },
    };

    test("/healthz at once; /readyz 503 until every informer synced (here: after its CRD appears); /metrics", async () => {
      const m = manager("probes", {
        informerDefaults: { backoff: { baseMs: 200, maxMs: 1_000 } },
      });
      const widgetInformer = m.informer({ apiVersion: "runtime.openbao-backup.test/v1", plural: "widgets", namespace });
      const keys: string[] = [];
      m.controller({
        name: "widgets",
        reconciler: {
          async reconcile(key) {
            keys.push(key);
          },
        },
      }).watch(widgetInformer);
      await m.start();
      const url = m.healthUrl ?? "";
      assert.equal((await getText(`${url}/healthz`)).status, 200);
      await sleep(1_000);
      const notReady = await getText(`${url}/readyz`);
      assert.equal(notReady.status, 503);
      assert.match(notReady.body, /informer widgets\.runtime\.openbao-backup\.test\/v1 in runtime: not synced/);
      assert.ok(widgetInformer.stats.errors >= 1, "the 404s were retried");

      await kube.installCrds([widgets]);
      await waitFor(async () => (await getText(`${url}/readyz`)).status === 200, {
        what: "/readyz 200 after the CRD appeared",
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      const custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
      await custom.createNamespacedCustomObject({
        group: "runtime.openbao-backup.test",
        version: "v1",
        namespace,
        plural: "widgets",
        body: { apiVersion: "runtime.openbao-backup.test/v1", kind: "Widget", metadata: { name: "w" } },
      });
      await waitFor(async () => keys.includes(`${namespace}/w`), { what: "widget reconciled", timeoutMs: 30_000 });

      const metrics = await getText(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      for (const pattern of [
        /controller_runtime_reconcile_total\{controller="widgets",result="success"\} [1-9]/,
        /controller_runtime_reconcile_time_seconds_bucket\{le="0\.005",controller="widgets"\}/,
        /workqueue_depth\{name="widgets"\} 0/,
        /informer_synced\{resource="widgets\.runtime\.openbao-backup\.test\/v1 in runtime"\} 1/,
        /informer_watch_restarts_total|informer_lists_total\{resource="widgets/,
        /process_cpu_user_seconds_total/,
        /nodejs_eventloop_lag_seconds/,
      ]) {
        assert.match(metrics.body, pattern);
      }
      assert.equal((await getText(`${url}/nope`)).status, 404);
      await m.stop();
      assert.equal(await m.done, "stopped");
      await assert.rejects(getText(`${url}/healthz`), "the server is closed after stop");
    });
  });
});
