/**
 * The freshness monitor: every `intervalMs` it lists the OpenBaoClusters with `spec.backup`
 * and reads each one's bucket (probe.ts), exporting what it finds (metrics.ts). It runs in its
 * own process (`bao-backup monitor`, the chart's `<release>-monitor` Deployment), with no
 * leader election and no controller: it keeps reporting while the operator is gone, not
 * leading or wedged — the case where every operator-exported alert goes quiet.
 */
import type { CustomObjectsApi } from "@kubernetes/client-node";
import { clusterNames, group, version } from "../api/constants.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import { errorFields, type Logger } from "../observability/logger.ts";
import { expectationOf } from "./expectation.ts";
import type { MonitorMetrics } from "./metrics.ts";
import { type ProbeDeps, probeCluster } from "./probe.ts";

export interface MonitorOptions {
  readonly custom: CustomObjectsApi;
  /** Watch only this namespace; all when undefined. */
  readonly namespace: string | undefined;
  readonly intervalMs: number;
  /** How many buckets are read at once. */
  readonly concurrency: number;
  readonly probe: ProbeDeps;
  readonly metrics: MonitorMetrics;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** Runs passes until `signal` aborts. A failed pass is logged and retried at the next interval. */
export async function runMonitor(options: MonitorOptions, signal: AbortSignal): Promise<void> {
  let firstSeen = new Map<string, Date>();
  while (!signal.aborted) {
    try {
      firstSeen = await pass(options, firstSeen);
    } catch (err) {
      options.logger.error(errorFields(err), "freshness pass failed: cannot list OpenBaoClusters");
    }
    await sleep(options.intervalMs, signal);
  }
}

/** One pass; returns when each current schedule was first seen (schedules gone are dropped). */
async function pass(options: MonitorOptions, previous: ReadonlyMap<string, Date>): Promise<Map<string, Date>> {
  const firstSeen = new Map<string, Date>();
  const clusters = (await listClusters(options)).filter((c) => c.spec?.backup !== undefined);
  const now = options.now();
  const queue = [...clusters];
  const worker = async (): Promise<void> => {
    for (let cluster = queue.shift(); cluster !== undefined; cluster = queue.shift()) {
      await probeOne(options, cluster, previous, firstSeen, now);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  const current = clusters.map((c) => ({ namespace: c.metadata.namespace ?? "", cluster: c.metadata.name ?? "" }));
  options.metrics.passed(current, options.now());
  return firstSeen;
}

async function probeOne(
  options: MonitorOptions,
  cluster: OpenBaoCluster,
  previous: ReadonlyMap<string, Date>,
  firstSeen: Map<string, Date>,
  now: Date,
): Promise<void> {
  const namespace = cluster.metadata.namespace ?? "";
  const name = cluster.metadata.name ?? "";
  const spec = cluster.spec?.backup;
  if (!spec) return;
  const seenKey = `${namespace}/${name}/${spec.timeZone ?? "UTC"} ${spec.schedule}`;
  const seen = previous.get(seenKey) ?? now;
  firstSeen.set(seenKey, seen);
  const expectation = expectationOf(cluster, now, seen);
  if (!expectation) return;
  options.metrics.expect({
    namespace,
    cluster: name,
    intervalSeconds: expectation.intervalSeconds,
    expectedSinceSeconds: expectation.expectedSince.getTime() / 1000,
  });
  let result: Awaited<ReturnType<typeof probeCluster>>;
  try {
    result = await probeCluster(cluster, options.probe);
  } catch (err) {
    // An API error reading the Secret other than 403/404: the next pass tries again.
    options.logger.warn({ namespace, cluster: name, ...errorFields(err) }, "freshness probe failed");
    options.metrics.probeFailed(namespace, name);
    return;
  }
  if (result.ok) {
    const newest = result.newestVerified ? result.newestVerified.getTime() / 1000 : 0;
    options.metrics.probed(namespace, name, newest, options.now());
    options.logger.debug(
      { namespace, cluster: name, newestVerified: result.newestVerified?.toISOString(), stored: result.stored },
      "bucket read",
    );
  } else {
    options.metrics.probeFailed(namespace, name);
    options.logger.warn(
      { namespace, cluster: name, reason: result.reason },
      `freshness probe failed: ${result.message}`,
    );
  }
}

async function listClusters(options: MonitorOptions): Promise<OpenBaoCluster[]> {
  const common = { group, version, plural: clusterNames.plural };
  const list = (
    options.namespace === undefined
      ? await options.custom.listClusterCustomObject(common)
      : await options.custom.listNamespacedCustomObject({ ...common, namespace: options.namespace })
  ) as { items?: OpenBaoCluster[] };
  return list.items ?? [];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
