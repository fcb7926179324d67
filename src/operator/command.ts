/**
 * `bao-backup operator`: runs the control plane from a kubeconfig (`--kubeconfig`,
 * `KUBECONFIG`, `~/.kube/config`) or in-cluster. Exits non-zero when leadership is lost,
 * so Kubernetes restarts it as a fresh candidate.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { defaultJwtAudience, defaults, jwtAudienceEnv } from "../api/constants.ts";
import { exitCodes } from "../cli/exit-codes.ts";
import { defaultJobTtlSeconds } from "../jobs/executor-job.ts";
import { KubeConfigError, loadKubeConfig } from "../kube/config.ts";
import { createLogger } from "../observability/logger.ts";
import { runUntilStopped } from "../runtime/manager.ts";
import { buildOperator, defaultWorkers } from "./operator.ts";

const help = `Usage: bao-backup operator [options]

Runs the control plane: schedules, records and restores OpenBao Raft snapshots.

Options (environment variable in brackets):
  --kubeconfig PATH             kubeconfig to use [KUBECONFIG]; in-cluster config when absent
  --namespace NS                watch only this namespace [WATCH_NAMESPACE]; all when absent
  --image IMAGE                 executor image for Jobs that name none [OPERATOR_IMAGE] (required)
  --drill-image-repository REPO  throwaway OpenBao image of restore drills that name none, tagged with the
                                cluster's version [DRILL_IMAGE_REPOSITORY] (default ${defaults.drillImageRepository})
  --health-port PORT            /healthz, /readyz, /metrics [HEALTH_PORT] (default 8080)
  --workers N                   concurrent backup reconciles [OPERATOR_WORKERS] (default ${defaultWorkers})
  --job-ttl SECONDS             keep finished backup/restore Jobs this long [JOB_TTL_SECONDS] (default ${defaultJobTtlSeconds})
  --leader-election-namespace NS  namespace of the Lease [POD_NAMESPACE] (default: --namespace)
  --leader-election-name NAME   Lease name (default openbao-backup-operator)
  --no-leader-election          run without a Lease (a single replica only)
  --lease-duration SECONDS      how long a Lease holds without renewal (default 15)
  --renew-deadline SECONDS      the leader steps down if it cannot renew within this (default 10)
  --retry-period SECONDS        how often candidates try and the leader renews (default 2)
The projected-token audience for OpenBao's JWT auth comes from ${jwtAudienceEnv} (default ${defaultJwtAudience}).
`;

function parse(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--")) throw new Error(`unexpected argument "${arg}"`);
    const [name = "", inline] = arg.slice(2).split("=", 2);
    if (name === "no-leader-election" || name === "help") out.set(name, "true");
    else out.set(name, inline ?? argv[++i] ?? "");
  }
  return out;
}

export async function operatorCommand(argv: readonly string[]): Promise<number> {
  let flags: Map<string, string>;
  try {
    flags = parse(argv);
  } catch (err) {
    process.stderr.write(`bao-backup operator: ${(err as Error).message}\n${help}`);
    return exitCodes.config;
  }
  if (flags.has("help")) {
    process.stdout.write(help);
    return exitCodes.ok;
  }
  const image = flags.get("image") ?? process.env.OPERATOR_IMAGE;
  if (!image) {
    process.stderr.write(
      "bao-backup operator: --image (OPERATOR_IMAGE) is required: the executor image for backup Jobs\n",
    );
    return exitCodes.config;
  }
  const drillImageRepository =
    flags.get("drill-image-repository") ?? process.env.DRILL_IMAGE_REPOSITORY ?? defaults.drillImageRepository;
  if (drillImageRepository === "" || /[\s@]/.test(drillImageRepository) || /:[^/]*$/.test(drillImageRepository)) {
    process.stderr.write(
      `bao-backup operator: --drill-image-repository (DRILL_IMAGE_REPOSITORY) must be an image repository without tag or digest, e.g. ${defaults.drillImageRepository} (the cluster's version is the tag)\n`,
    );
    return exitCodes.config;
  }
  const port = Number(flags.get("health-port") ?? process.env.HEALTH_PORT ?? "8080");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write("bao-backup operator: --health-port must be a port number\n");
    return exitCodes.config;
  }
  const workers = Number(flags.get("workers") ?? process.env.OPERATOR_WORKERS ?? String(defaultWorkers));
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    process.stderr.write("bao-backup operator: --workers (OPERATOR_WORKERS) must be a whole number from 1 to 256\n");
    return exitCodes.config;
  }
  const jobTtl = Number(flags.get("job-ttl") ?? process.env.JOB_TTL_SECONDS ?? String(defaultJobTtlSeconds));
  // Below a minute the Job controller could collect a finished Job inside the 30 s the operator
  // waits for its Pod's report, and a good backup would be recorded as lost.
  if (!Number.isInteger(jobTtl) || jobTtl < 60) {
    process.stderr.write(
      "bao-backup operator: --job-ttl (JOB_TTL_SECONDS) must be a whole number of seconds ≥ 60 (keep it long enough for the operator to read results after an outage; default 86400)\n",
    );
    return exitCodes.config;
  }
  const path = flags.get("kubeconfig") ?? process.env.KUBECONFIG;
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig(path);
  } catch (err) {
    if (!(err instanceof KubeConfigError)) throw err;
    process.stderr.write(`bao-backup operator: ${err.message}; pass --kubeconfig or run in a cluster\n`);
    return exitCodes.config;
  }
  const namespace = flags.get("namespace") ?? process.env.WATCH_NAMESPACE ?? undefined;
  const leaseNamespace = flags.get("leader-election-namespace") ?? process.env.POD_NAMESPACE ?? namespace;
  if (!flags.has("no-leader-election") && !leaseNamespace) {
    process.stderr.write(
      "bao-backup operator: leader election needs a namespace for its Lease: set --leader-election-namespace (POD_NAMESPACE) or --no-leader-election\n",
    );
    return exitCodes.config;
  }
  const timings: Record<string, number> = {};
  for (const [flag, key] of [
    ["lease-duration", "leaseDurationMs"],
    ["renew-deadline", "renewDeadlineMs"],
    ["retry-period", "retryPeriodMs"],
  ] as const) {
    const raw = flags.get(flag);
    if (raw === undefined) continue;
    const seconds = Number(raw);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      process.stderr.write(`bao-backup operator: --${flag} must be a positive number of seconds\n`);
      return exitCodes.config;
    }
    timings[key] = seconds * 1000;
  }
  const logger = createLogger({ base: { component: "operator" } });
  const manager = buildOperator({
    kubeConfig,
    logger,
    namespace: namespace === "" ? undefined : namespace,
    image,
    drillImageRepository,
    jwtAudience: process.env[jwtAudienceEnv] || defaultJwtAudience,
    health: { port },
    workers,
    jobTtlSeconds: jobTtl,
    leaderElection:
      flags.has("no-leader-election") || !leaseNamespace
        ? false
        : {
            namespace: leaseNamespace,
            name: flags.get("leader-election-name") ?? "openbao-backup-operator",
            ...timings,
          },
  });
  return runUntilStopped(manager);
}
