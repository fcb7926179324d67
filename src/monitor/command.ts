/**
 * `bao-backup monitor`: the freshness monitor (monitor.ts) as a process of its own. No leader
 * election: every replica reads the buckets and exports the same truth; rules aggregate with
 * `max by (namespace, cluster)`.
 */
import { parseArgs } from "node:util";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { exitCodes } from "../cli/exit-codes.ts";
import { UsageError } from "../executor/settings.ts";
import { KubeConfigError, loadKubeConfig } from "../kube/config.ts";
import { apiStatus, isForbidden } from "../kube/errors.ts";
import { createLogger } from "../observability/logger.ts";
import { Manager, runUntilStopped } from "../runtime/manager.ts";
import { loadObjectStore } from "../storage/load.ts";
import { monitorMetrics } from "./metrics.ts";
import { runMonitor } from "./monitor.ts";

const defaults = { intervalSeconds: 300, probeTimeoutSeconds: 120, concurrency: 4, port: 8080 } as const;

const help = `Usage: bao-backup monitor [options]

Measures backup freshness from the buckets themselves: for every OpenBaoCluster with
spec.backup, reads its target (list + manifests) and exports the time of the newest verified
backup on /metrics. Independent of the operator: it keeps reporting when no operator leads.

Options (environment variable in brackets):
  --kubeconfig PATH         kubeconfig to use [KUBECONFIG]; in-cluster config when absent
  --namespace NS            watch only this namespace [WATCH_NAMESPACE]; all when absent
  --interval SECONDS        time between passes [MONITOR_INTERVAL_SECONDS] (default ${defaults.intervalSeconds}, at least 10)
  --probe-timeout SECONDS   give up reading one bucket after this [MONITOR_PROBE_TIMEOUT_SECONDS] (default ${defaults.probeTimeoutSeconds})
  --concurrency N           buckets read at once [MONITOR_CONCURRENCY] (default ${defaults.concurrency})
  --health-port PORT        /healthz, /readyz, /metrics [HEALTH_PORT] (default ${defaults.port})
`;

/** A flag or variable out of range; the command reports it with its help and exits 1. */
export class FlagError extends UsageError {}

function wholeNumber(value: string | undefined, fallback: number, flag: string, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new FlagError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

export async function monitorCommand(argv: readonly string[]): Promise<number> {
  let settings: {
    kubeconfig: string | undefined;
    namespace: string | undefined;
    intervalSeconds: number;
    probeTimeoutSeconds: number;
    concurrency: number;
    port: number;
  };
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        kubeconfig: { type: "string" },
        namespace: { type: "string" },
        interval: { type: "string" },
        "probe-timeout": { type: "string" },
        concurrency: { type: "string" },
        "health-port": { type: "string" },
        help: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const env = process.env;
    settings = {
      kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
      namespace: (values.namespace ?? env.WATCH_NAMESPACE) || undefined,
      intervalSeconds: wholeNumber(
        values.interval ?? env.MONITOR_INTERVAL_SECONDS,
        defaults.intervalSeconds,
        "--interval (MONITOR_INTERVAL_SECONDS)",
        10,
        86_400,
      ),
      probeTimeoutSeconds: wholeNumber(
        values["probe-timeout"] ?? env.MONITOR_PROBE_TIMEOUT_SECONDS,
        defaults.probeTimeoutSeconds,
        "--probe-timeout (MONITOR_PROBE_TIMEOUT_SECONDS)",
        1,
        3600,
      ),
      concurrency: wholeNumber(
        values.concurrency ?? env.MONITOR_CONCURRENCY,
        defaults.concurrency,
        "--concurrency (MONITOR_CONCURRENCY)",
        1,
        64,
      ),
      port: wholeNumber(
        values["health-port"] ?? env.HEALTH_PORT,
        defaults.port,
        "--health-port (HEALTH_PORT)",
        0,
        65_535,
      ),
    };
  } catch (err) {
    process.stderr.write(`bao-backup monitor: ${(err as Error).message}\n${help}`);
    return exitCodes.config;
  }

  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig(settings.kubeconfig);
  } catch (err) {
    if (!(err instanceof KubeConfigError)) throw err;
    process.stderr.write(`bao-backup monitor: ${err.message}; pass --kubeconfig or run in a cluster\n`);
    return exitCodes.config;
  }

  const logger = createLogger({ base: { component: "monitor" } });
  const manager = new Manager({ kubeConfig, logger, health: { port: settings.port }, leaderElection: false });
  const metrics = monitorMetrics(manager.registry);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  manager.add({
    name: "freshness-monitor",
    needsLeaderElection: false,
    start: (signal) =>
      runMonitor(
        {
          custom,
          namespace: settings.namespace,
          intervalMs: settings.intervalSeconds * 1000,
          concurrency: settings.concurrency,
          metrics,
          logger,
          now: () => new Date(),
          probe: {
            timeoutMs: settings.probeTimeoutSeconds * 1000,
            isForbidden,
            openStore: (target, credentials) => loadObjectStore(target, credentials),
            readSecret: async (namespace, name) => {
              try {
                return (await core.readNamespacedSecret({ name, namespace })).data ?? {};
              } catch (err) {
                if (apiStatus(err) === 404) return undefined;
                throw err;
              }
            },
          },
        },
        signal,
      ),
  });
  return runUntilStopped(manager);
}
