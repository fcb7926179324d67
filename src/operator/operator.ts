/**
 * Assembles the operator: shared informers (clusters, restores, and the Jobs and Pods it
 * created, selected by its managed-by label), the BackupManager controller, leader
 * election, events, metrics and the health server. The API server holds all state; this
 * process holds only caches.
 */
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Job,
  type V1Pod,
  type V1ServiceAccount,
} from "@kubernetes/client-node";
import {
  apiVersion,
  clusterNames,
  defaultJwtAudience,
  defaults,
  Label,
  LabelValue,
  restoreNames,
} from "../api/constants.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../api/types.ts";
import { BackupController } from "../backup/controller.ts";
import { backupMetrics } from "../backup/metrics.ts";
import { DrillController } from "../drill/manager/controller.ts";
import { drillMetrics } from "../drill/manager/metrics.ts";
import { byControllerUid, byJob, controllerUids, jobOfPod } from "../kube/cache-indexes.ts";
import { trimJob, trimMetadata, trimPod } from "../kube/cache-shape.ts";
import { eventRecorder } from "../kube/events.ts";
import type { ManagerDeps } from "../kube/manager-deps.ts";
import type { Logger } from "../observability/logger.ts";
import { operatorLeaderGauge } from "../observability/metrics.ts";
import { statefulSetNameOf } from "../readiness/decide.ts";
import { type TrimmedStatefulSet, trimStatefulSet } from "../readiness/statefulset.ts";
import { registerRestoreController } from "../restore/register.ts";
import { enqueueOwner } from "../runtime/controller.ts";
import type { KubeObject, Wire } from "../runtime/informer.ts";
import { type LeaderElectionOptions, Manager } from "../runtime/manager.ts";

export interface OperatorOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Watch one namespace; all namespaces when undefined. */
  readonly namespace: string | undefined;
  /** The executor image (the operator's own image by default). */
  readonly image: string;
  /** Repository of restore drills' throwaway OpenBao (tagged with the cluster's version); default quay.io/openbao/openbao. */
  readonly drillImageRepository?: string;
  readonly jwtAudience?: string;
  readonly leaderElection: LeaderElectionOptions | false;
  readonly health: { readonly host?: string; readonly port: number } | false;
  readonly now?: () => Date;
  /** Concurrent reconciles of the backup controller (and at most this many of the restore one). */
  readonly workers?: number;
  /** How long finished backup and restore Jobs are kept (`ttlSecondsAfterFinished`). */
  readonly jobTtlSeconds?: number;
}

/**
 * Backup reconciles run at once by default. A reconcile that starts a backup waits on a few API
 * requests in a row (Secrets, the Job, the status), so with 1,000 clusters on one cron minute
 * the number of workers, not CPU, sets the pace; 16 keeps a small API server responsive.
 */
export const defaultWorkers = 16;

export function buildOperator(options: OperatorOptions): Manager {
  const manager = new Manager({
    kubeConfig: options.kubeConfig,
    logger: options.logger,
    health: options.health,
    leaderElection: options.leaderElection,
  });
  // Every replica exports it, so "no replica leads" is a sum of 0, and "no replica at all" an absent series.
  operatorLeaderGauge(manager.registry, () => manager.isLeader());
  const ns = options.namespace === undefined ? {} : { namespace: options.namespace };
  const managed = `${Label.ManagedBy}=${LabelValue.ManagedBy}`;
  // The caches keep what the controllers read (see kube/cache-shape.ts), not whole objects.
  const slim = { transform: trimMetadata };
  const clusters = manager.informer<OpenBaoCluster & KubeObject>(
    { apiVersion, plural: clusterNames.plural, ...ns },
    slim,
  );
  const restores = manager.informer<OpenBaoRestore & KubeObject>(
    { apiVersion, plural: restoreNames.plural, ...ns },
    slim,
  );
  const jobs = manager.informer<Wire<V1Job> & KubeObject>(
    { apiVersion: "batch/v1", plural: "jobs", labelSelector: managed, ...ns },
    { transform: trimJob },
  );
  const pods = manager.informer<Wire<V1Pod> & KubeObject>(
    { apiVersion: "v1", plural: "pods", labelSelector: managed, ...ns },
    { transform: trimPod },
  );
  // Every StatefulSet in the watched namespaces, trimmed to what readiness reads: an OpenBao
  // installed without a lifecycle operator (e.g. the official chart) carries no label of ours.
  const statefulSets = manager.informer<TrimmedStatefulSet>(
    { apiVersion: "apps/v1", plural: "statefulsets", ...ns },
    { transform: trimStatefulSet },
  );
  jobs.addIndex(byControllerUid, controllerUids);
  pods.addIndex(byJob, jobOfPod);
  // The executor ServiceAccounts it created: a backup finds its own here instead of reading it.
  const serviceAccounts = manager.informer<Wire<V1ServiceAccount> & KubeObject>(
    { apiVersion: "v1", plural: "serviceaccounts", labelSelector: managed, ...ns },
    slim,
  );

  const kc = options.kubeConfig;
  // What every manager acts through (kube/manager-deps.ts): one set of clients for all of them.
  const core = kc.makeApiClient(CoreV1Api);
  const shared = {
    clusters,
    statefulSets,
    custom: kc.makeApiClient(CustomObjectsApi),
    batch: kc.makeApiClient(BatchV1Api),
    core,
    events: eventRecorder(core, manager.identity ?? "openbao-backup"),
    now: options.now ?? (() => new Date()),
    image: options.image,
    jwtAudience: options.jwtAudience ?? defaultJwtAudience,
    jobTtlSeconds: options.jobTtlSeconds,
  } satisfies Omit<ManagerDeps, "log">;
  const backup = new BackupController({
    ...shared,
    jobs,
    pods,
    restores,
    serviceAccounts,
    metrics: backupMetrics(manager.registry, options.now),
    log: options.logger.child({ controller: "backup" }),
  });
  const jobOwner = enqueueOwner({ kind: clusterNames.kind, group: "openbao.org", controllerOnly: true });
  /** A Pod's termination message lands before its Job completes; its Job leads to the cluster. */
  const clusterOfPod = (pod: Wire<V1Pod> & KubeObject) => {
    const jobName = pod.metadata?.labels?.["job-name"];
    const job = jobName ? jobs.get(pod.metadata?.namespace, jobName) : undefined;
    return job ? jobOwner(job) : undefined;
  };
  manager
    .controller({
      name: "backup",
      reconciler: { reconcile: (key) => backup.reconcile(key) },
      workers: options.workers ?? defaultWorkers,
    })
    .watch(clusters)
    // Job and Pod changes go ahead in the queue: a finished Job's result is recorded at once,
    // not after every cluster whose schedule window opened in the same minute.
    .watch(jobs, jobOwner, { priority: true })
    // A Pod's termination message lands before its Job completes; its Job leads to the cluster.
    .watch(pods, clusterOfPod, { priority: true })
    // A restore that ends unblocks the cluster's backups.
    .watch(restores, (restore) => `${restore.metadata?.namespace ?? ""}/${restore.spec.cluster}`)
    // A StatefulSet's Pods coming or going changes the readiness of the clusters naming it.
    .watch(statefulSets, (sts) => {
      const namespace = sts.metadata?.namespace ?? "";
      return clusters
        .list(namespace)
        .filter((c) => c.spec?.backup !== undefined && statefulSetNameOf(c) === sts.metadata?.name)
        .map((c) => `${namespace}/${c.metadata.name ?? ""}`);
    });
  const drill = new DrillController({
    ...shared,
    jobs,
    pods,
    serviceAccounts,
    metrics: drillMetrics(manager.registry, options.now),
    log: options.logger.child({ controller: "drill" }),
    drillImageRepository: options.drillImageRepository ?? defaults.drillImageRepository,
  });
  // Drills never wait on backups or restores (they never touch the live cluster): the cluster,
  // its drill Jobs and their Pods are all that wakes them.
  manager
    .controller({ name: "drill", reconciler: { reconcile: (key) => drill.reconcile(key) }, workers: 2 })
    .watch(clusters)
    .watch(jobs, jobOwner, { priority: true })
    .watch(pods, clusterOfPod, { priority: true });
  registerRestoreController(manager, {
    clusters,
    restores,
    jobs,
    pods,
    statefulSets,
    image: options.image,
    jwtAudience: options.jwtAudience,
    jobTtlSeconds: options.jobTtlSeconds,
    now: options.now,
    workers: options.workers,
  });
  return manager;
}
