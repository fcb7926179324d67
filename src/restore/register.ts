/**
 * Wires the RestoreManager into an operator's Manager: one controller keyed by OpenBaoRestore
 * (`namespace/name`), woken by
 * - the restore itself (creation, deletion, status);
 * - its cluster: any change (the lock released by a backup or an upgrade, the phase) re-checks
 *   every unfinished restore of that cluster at once, and a lock held by a restore that no
 *   longer exists wakes that name so the lock is recovered;
 * - its Job (owner reference) and the Job's Pods (the termination message lands on the Pod);
 * - the cluster's backup Jobs and Pods: a restore holding the lock starts only once none of them
 *   runs (src/lock/displaced.ts), so their end wakes the cluster's unfinished restores.
 *
 * Shares the operator's informers (the Manager returns one informer per resource), API
 * clients and registry; everything but the informers and the image has a default.
 */
import { BatchV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { Annotation, defaultJwtAudience, group, Label, LabelValue, restoreNames } from "../api/constants.ts";
import { isRestoreTerminal } from "../api/predicates.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../api/types.ts";
import { labelValue } from "../jobs/names.ts";
import type { CachedJob, CachedPod } from "../jobs/result.ts";
import { type EventRecorder, eventRecorder } from "../kube/events.ts";
import { restoreHoldingLock } from "../lock/holder.ts";
import type { Logger } from "../observability/logger.ts";
import type { TrimmedStatefulSet } from "../readiness/statefulset.ts";
import { type Controller, enqueueOwner } from "../runtime/controller.ts";
import type { Informer, KubeObject } from "../runtime/informer.ts";
import type { Manager } from "../runtime/manager.ts";
import { RestoreController } from "./controller.ts";
import { restoreMetrics } from "./metrics.ts";

export interface RestoreRegistration {
  readonly clusters: Informer<OpenBaoCluster & KubeObject>;
  readonly restores: Informer<OpenBaoRestore & KubeObject>;
  readonly jobs: Informer<CachedJob & KubeObject>;
  readonly pods: Informer<CachedPod & KubeObject>;
  readonly statefulSets?: Informer<TrimmedStatefulSet> | undefined;
  /** The executor image for restores whose spec (and cluster) names none. */
  readonly image: string;
  /** Audience of the projected token for OpenBao's JWT auth; default `openbao-internal`. */
  readonly jwtAudience?: string | undefined;
  readonly jobTtlSeconds?: number | undefined;
  readonly now?: (() => Date) | undefined;
  readonly workers?: number | undefined;
  readonly custom?: CustomObjectsApi;
  readonly batch?: BatchV1Api;
  readonly core?: CoreV1Api;
  readonly events?: EventRecorder;
  readonly logger?: Logger;
}

export function registerRestoreController(manager: Manager, deps: RestoreRegistration): Controller {
  const kc = manager.kubeConfig;
  const core = deps.core ?? kc.makeApiClient(CoreV1Api);
  const restore = new RestoreController({
    clusters: deps.clusters,
    restores: deps.restores,
    jobs: deps.jobs,
    pods: deps.pods,
    statefulSets: deps.statefulSets,
    custom: deps.custom ?? kc.makeApiClient(CustomObjectsApi),
    batch: deps.batch ?? kc.makeApiClient(BatchV1Api),
    core,
    events: deps.events ?? eventRecorder(core, manager.identity ?? "openbao-backup"),
    metrics: restoreMetrics(manager.registry),
    log: (deps.logger ?? manager.logger).child({ controller: "restore" }),
    now: deps.now ?? (() => new Date()),
    image: deps.image,
    jwtAudience: deps.jwtAudience ?? defaultJwtAudience,
    jobTtlSeconds: deps.jobTtlSeconds,
  });
  const jobOwner = enqueueOwner({ kind: restoreNames.kind, group, controllerOnly: true });
  const { restores, jobs } = deps;
  /** Unfinished (or deleting) restores of the cluster whose name or label value is `cluster`. */
  const restoresOf = (namespace: string, matches: (cluster: string) => boolean): string[] =>
    restores
      .list(namespace)
      .filter(
        (r) =>
          matches(r.spec.cluster) &&
          (!isRestoreTerminal(r.status?.phase) || r.metadata.deletionTimestamp !== undefined),
      )
      .map((r) => `${namespace}/${r.metadata.name ?? ""}`);
  /** A backup Job or Pod (by its labels) wakes the restores of its cluster. */
  const backupWorkOwner = (object: { metadata?: { namespace?: string; labels?: Record<string, string> } }) => {
    const labels = object.metadata?.labels;
    const cluster = labels?.[Label.Cluster];
    if (labels?.[Label.Component] !== LabelValue.ComponentBackup || cluster === undefined) return [];
    return restoresOf(object.metadata?.namespace ?? "", (name) => labelValue(name) === cluster);
  };
  return manager
    .controller({
      name: "restore",
      reconciler: { reconcile: (key) => restore.reconcile(key) },
      workers: deps.workers ?? 2,
    })
    .watch(restores)
    .watch(deps.clusters, (cluster) => {
      const namespace = cluster.metadata?.namespace ?? "";
      const name = cluster.metadata?.name;
      const keys = restoresOf(namespace, (c) => c === name);
      const holder = restoreHoldingLock(cluster.status?.operationLock);
      if (holder !== undefined) keys.push(`${namespace}/${holder}`);
      return keys;
    })
    .watch(jobs, (job) => [...keys(jobOwner(job)), ...backupWorkOwner(job)])
    .watch(deps.pods, (pod) => {
      const namespace = pod.metadata?.namespace ?? "";
      const named = pod.metadata?.annotations?.[Annotation.RestoreName];
      if (named) return `${namespace}/${named}`;
      const jobName = pod.metadata?.labels?.["job-name"];
      const job = jobName ? jobs.get(namespace, jobName) : undefined;
      return [...keys(job ? jobOwner(job) : undefined), ...backupWorkOwner(pod)];
    });
}

function keys(mapped: Iterable<string> | string | undefined): string[] {
  if (mapped === undefined) return [];
  return typeof mapped === "string" ? [mapped] : [...mapped];
}
