/**
 * The RestoreManager's act layer: observe (caches, a live read where a cache miss would
 * mislead) → `planRestore` (pure) → perform, in this order:
 *
 *   1. add the finalizer (merge patch carrying the resourceVersion: optimistic);
 *   2. take the lock: PUT the cluster's /status with its resourceVersion;
 *   3. write the restore's /status (PUT with resourceVersion), then its events and metrics;
 *   4. release the lock (PUT the cluster's /status with its resourceVersion);
 *   5. delete the backup Jobs the restore displaced (after the lock write, so the backup can
 *      neither re-create nor restart them: src/lock/lock.ts), then delete or create the
 *      restore's own Job (AlreadyExists is checked for ownership);
 *   6. remove the finalizer (optimistic, after the lock is released).
 *
 * A conflict (409) at any write re-reads the restore and the cluster from the API server and
 * plans again; a step already done is then seen as done (the planner recognises its own lock,
 * a terminal status, a finalizer in place). Nothing here decides; every branch is in plan.ts.
 *
 * A lock whose OpenBaoRestore no longer exists at all (its finalizer removed by hand) is
 * released when that name is reconciled: cluster events map a lock holder to its key
 * (src/lock/orphans.ts).
 */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import {
  Annotation,
  apiVersion,
  clusterNames,
  EventReason,
  group,
  Label,
  LabelValue,
  restoreFinalizer,
  restoreLockHolder,
  restoreNames,
  version,
} from "../api/constants.ts";
import { isRestoreTerminal } from "../api/predicates.ts";
import type { OpenBaoCluster, OpenBaoRestore, OpenBaoRestoreStatus, OperationLock } from "../api/types.ts";

import { buildExecutorJob } from "../jobs/executor-job.ts";
import { jobCreateGraceMs } from "../jobs/missing.ts";
import { labelValue, restoreJobName } from "../jobs/names.ts";
import { type CachedJob, type CachedPod, executorDone, observeJob, ownedBy } from "../jobs/result.ts";
import { JobSightings } from "../jobs/sightings.ts";
import { isNotFound } from "../kube/errors.ts";
import type { InvolvedObject } from "../kube/events.ts";
import type { ManagerDeps } from "../kube/manager-deps.ts";
import { type Cache, createJobOnce, ensureServiceAccount, missingSecrets, ownerReference } from "../kube/objects.ts";
import { getObject, replaceStatus, retryOnConflict } from "../kube/status.ts";
import { heldBy } from "../lock/holder.ts";
import { orphanedRestoreLock } from "../lock/orphans.ts";
import { observeBackupWork } from "../lock/work.ts";
import { observedStatefulSet } from "../readiness/observe.ts";
import type { RestoreMetrics } from "./metrics.ts";
import { type PlannedEvent, planRestore, type RestoreJobRequest, type RestorePlan } from "./plan.ts";

export interface RestoreControllerDeps extends ManagerDeps {
  readonly restores: Cache<OpenBaoRestore>;
  readonly jobs: Cache<CachedJob>;
  readonly pods: Cache<CachedPod>;
  readonly metrics: RestoreMetrics;
}

const maxConflictRetries = 5;

export class RestoreController {
  readonly #d: RestoreControllerDeps;
  /** The restore Jobs this process created or saw: one that vanished is never created again (a restore runs once). */
  readonly #sightings = new JobSightings();

  constructor(deps: RestoreControllerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number } | undefined> {
    const slash = key.indexOf("/");
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const restore = this.#d.restores.get(namespace, name);
    if (!restore) {
      this.#sightings.forget(key);
      await this.#releaseOrphanLock(namespace, name);
      return undefined;
    }
    const first = { restore, cluster: await this.#cluster(restore, false) };
    const done = await retryOnConflict(
      first,
      maxConflictRetries,
      // Someone else wrote the restore or the cluster in between: re-read both, plan again.
      async () => {
        const fresh = await getObject<OpenBaoRestore>(this.#d.custom, restoreNames, namespace, name);
        return fresh && { restore: fresh, cluster: await this.#cluster(fresh, true) };
      },
      async (current) => {
        let plan = this.#plan(key, current.restore, current.cluster, undefined);
        if (plan.secretsToCheck.length > 0) {
          plan = this.#plan(
            key,
            current.restore,
            current.cluster,
            await this.#missingSecrets(namespace, plan.secretsToCheck),
          );
        }
        await this.#perform(key, current.restore, current.cluster, plan);
        return plan;
      },
    );
    if (!done) return undefined;
    this.#observeMetrics(namespace, restore.spec.cluster);
    return done.requeueAfterMs === undefined ? undefined : { requeueAfterMs: done.requeueAfterMs };
  }

  #plan(
    key: string,
    restore: OpenBaoRestore,
    cluster: OpenBaoCluster | undefined,
    missing: readonly string[] | undefined,
  ): RestorePlan {
    const namespace = restore.metadata.namespace ?? "";
    const uid = restore.metadata.uid;
    const jobName = uid ? restoreJobName({ metadata: { name: restore.metadata.name ?? "", uid } }) : "";
    const cached = jobName ? this.#d.jobs.get(namespace, jobName) : undefined;
    const pods = jobName
      ? this.#d.pods.list(namespace).filter((p) => p.metadata?.labels?.["job-name"] === jobName)
      : [];
    const job = cached && ownedBy(cached, uid) ? observeJob(cached, pods) : undefined;
    const sightings = this.#sightings.track(key, jobName ? [jobName] : [], job ? [jobName] : []);
    const peers = this.#d.restores
      .list(namespace)
      .filter((r) => r.spec.cluster === restore.spec.cluster && r.metadata.name !== restore.metadata.name)
      .map((r) => ({
        name: r.metadata.name ?? "",
        createdAt: r.metadata.creationTimestamp ? new Date(r.metadata.creationTimestamp) : undefined,
        phase: r.status?.phase,
        deleting: r.metadata.deletionTimestamp !== undefined,
      }));
    return planRestore({
      restore,
      cluster,
      job,
      activeJobPods: pods.filter((p) => !executorDone(p)).length,
      peers,
      missingSecrets: missing,
      now: this.#d.now(),
      defaultImage: this.#d.image,
      statefulSet: cluster ? observedStatefulSet(this.#d.statefulSets, cluster) : undefined,
      backupWork: cluster
        ? observeBackupWork(cluster, this.#d.jobs.list(namespace), this.#d.pods.list(namespace))
        : { runningJobs: [], activePods: 0 },
      jobSighting: sightings.get(jobName),
      jobCreateGraceMs: jobCreateGraceMs(this.#d.jobTtlSeconds),
    });
  }

  async #perform(
    key: string,
    restore: OpenBaoRestore,
    cluster: OpenBaoCluster | undefined,
    plan: RestorePlan,
  ): Promise<void> {
    let current = restore;
    let target = cluster;
    const namespace = restore.metadata.namespace ?? "";
    if (plan.addFinalizer) {
      current = await this.#patchFinalizers(current, [...(current.metadata.finalizers ?? []), restoreFinalizer]);
    }
    if (plan.lock?.kind === "acquire" && target) target = await this.#writeLock(target, plan.lock.lock);
    let reported = false;
    if (plan.status) {
      current = await this.#writeStatus(current, plan.status);
      await this.#report(current, target, plan);
      reported = true;
    }
    if (plan.lock?.kind === "release" && target)
      target = await this.#releaseLock(target, restoreLockHolder(restore.metadata.name ?? ""));
    for (const displaced of plan.deleteBackupJobs) await this.#deleteJob(namespace, displaced);
    if (plan.deleteJob) await this.#deleteJob(namespace, plan.deleteJob);
    if (plan.createJob && target) {
      await this.#createJob(current, target, plan.createJob);
      this.#sightings.created(key, plan.createJob.name);
    }
    if (plan.removeFinalizer) {
      await this.#patchFinalizers(
        current,
        (current.metadata.finalizers ?? []).filter((f) => f !== restoreFinalizer),
      );
    }
    if (!reported) await this.#report(current, target, plan);
  }

  /** Events and metrics of a plan whose writes succeeded (exactly once per transition). */
  async #report(restore: OpenBaoRestore, cluster: OpenBaoCluster | undefined, plan: RestorePlan): Promise<void> {
    const namespace = restore.metadata.namespace ?? "";
    const clusterName = restore.spec.cluster;
    if (plan.started) this.#d.metrics.started(namespace, clusterName);
    if (plan.finished) this.#d.metrics.finished(namespace, clusterName, plan.finished);
    for (const event of plan.events) await this.#event(restore, cluster, event);
  }

  async #event(restore: OpenBaoRestore, cluster: OpenBaoCluster | undefined, event: PlannedEvent): Promise<void> {
    const namespace = restore.metadata.namespace ?? "";
    let involved: InvolvedObject;
    if (event.on === "cluster") {
      if (!cluster) return;
      involved = {
        apiVersion,
        kind: clusterNames.kind,
        name: restore.spec.cluster,
        namespace,
        uid: cluster.metadata.uid,
      };
    } else {
      involved = {
        apiVersion,
        kind: restoreNames.kind,
        name: restore.metadata.name ?? "",
        namespace,
        uid: restore.metadata.uid,
      };
    }
    const fields = { restore: restore.metadata.name, cluster: restore.spec.cluster, namespace, reason: event.reason };
    if (event.type === "Warning") this.#d.log.warn(fields, event.message);
    else this.#d.log.info(fields, event.message);
    await this.#d.events.record(involved, event.type, event.reason, event.message).catch((err: unknown) => {
      this.#d.log.warn({ err: String(err) }, "could not record an event");
    });
  }

  #observeMetrics(namespace: string, cluster: string): void {
    const restores = this.#d.restores.list(namespace).filter((r) => r.spec.cluster === cluster);
    this.#d.metrics.observe(namespace, cluster, restores);
  }

  /** The target cluster: the cache, confirmed by a live read when the cache has none (or on `fresh`). */
  async #cluster(restore: OpenBaoRestore, fresh: boolean): Promise<OpenBaoCluster | undefined> {
    const namespace = restore.metadata.namespace ?? "";
    const cached = fresh ? undefined : this.#d.clusters.get(namespace, restore.spec.cluster);
    if (cached) return cached;
    if (!fresh && isRestoreTerminal(restore.status?.phase) && restore.metadata.deletionTimestamp === undefined) {
      // A finished restore only needs the cluster to release a lock it holds; the cache has it then.
      return undefined;
    }
    return getObject<OpenBaoCluster>(this.#d.custom, clusterNames, namespace, restore.spec.cluster);
  }

  #missingSecrets(namespace: string, names: readonly string[]): Promise<string[]> {
    return missingSecrets(this.#d.core, namespace, names);
  }

  async #patchFinalizers(restore: OpenBaoRestore, finalizers: string[]): Promise<OpenBaoRestore> {
    return (await this.#d.custom.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace: restore.metadata.namespace ?? "",
        plural: restoreNames.plural,
        name: restore.metadata.name ?? "",
        body: { metadata: { resourceVersion: restore.metadata.resourceVersion, finalizers } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as OpenBaoRestore;
  }

  #writeStatus(restore: OpenBaoRestore, status: OpenBaoRestoreStatus): Promise<OpenBaoRestore> {
    return replaceStatus(this.#d.custom, restoreNames, restore, status);
  }

  /** The lock is part of the cluster's /status: written with the resourceVersion we planned from. */
  #writeLock(cluster: OpenBaoCluster, lock: OperationLock | null): Promise<OpenBaoCluster> {
    return replaceStatus(this.#d.custom, clusterNames, cluster, { ...cluster.status, operationLock: lock });
  }

  async #releaseLock(cluster: OpenBaoCluster, holder: string): Promise<OpenBaoCluster> {
    if (!heldBy(cluster.status?.operationLock, holder)) return cluster;
    return this.#writeLock(cluster, null);
  }

  /** The restore `name` is gone for good: free any cluster lock still naming it. */
  async #releaseOrphanLock(namespace: string, name: string): Promise<void> {
    const held = this.#d.clusters.list(namespace).filter((c) => orphanedRestoreLock(c.status?.operationLock, name));
    if (held.length === 0) return;
    if (await getObject(this.#d.custom, restoreNames, namespace, name)) return; // the cache lags; its own reconcile follows
    for (const cached of held) {
      try {
        await this.#writeLock(cached, null);
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err; // a conflict retries the whole key with backoff
      }
      const message = `released the operation lock held by OpenBaoRestore ${name}, which no longer exists`;
      this.#d.log.warn({ cluster: cached.metadata.name, namespace }, message);
      await this.#d.events
        .record(
          {
            apiVersion,
            kind: clusterNames.kind,
            name: cached.metadata.name ?? "",
            namespace,
            uid: cached.metadata.uid,
          },
          "Warning",
          EventReason.LockRecovered,
          message,
        )
        .catch(() => undefined);
    }
  }

  async #deleteJob(namespace: string, name: string): Promise<void> {
    try {
      // Background: the Job goes at once; its Pods are stopped by the garbage collector, and
      // the planner waits for them before it releases the lock (or, for displaced backup
      // Jobs, before it starts the restore).
      await this.#d.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: "Background" });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async #createJob(restore: OpenBaoRestore, cluster: OpenBaoCluster, request: RestoreJobRequest): Promise<void> {
    const namespace = restore.metadata.namespace ?? "";
    const restoreName = restore.metadata.name ?? "";
    const owner = ownerReference(restoreNames.kind, restore);
    await this.#ensureServiceAccount(namespace, cluster, request);
    const labels = {
      [Label.ManagedBy]: LabelValue.ManagedBy,
      [Label.Name]: LabelValue.Name,
      [Label.Component]: LabelValue.ComponentRestore,
      [Label.Cluster]: labelValue(request.clusterName),
      [Label.Restore]: labelValue(restoreName),
    };
    const annotations = { [Annotation.RestoreName]: restoreName, [Annotation.ClusterName]: request.clusterName };
    const job = buildExecutorJob({
      mode: "restore",
      name: request.name,
      namespace,
      owner,
      image: request.image,
      serviceAccountName: request.serviceAccountName,
      labels,
      annotations,
      podLabels: request.podLabels,
      // The full restore name on the Pod too, so a Pod event finds its restore even when the label is shortened.
      podAnnotations: { ...request.podAnnotations, [Annotation.RestoreName]: restoreName },
      activeDeadlineSeconds: request.activeDeadlineSeconds,
      resources: request.resources,
      ttlSecondsAfterFinished: this.#d.jobTtlSeconds,
      jwtAudience: this.#d.jwtAudience,
      cluster: { name: request.clusterName, replicas: request.replicas, addresses: request.openbaoAddresses },
      auth: request.auth,
      tlsSecretName: request.tlsSecretName,
      target: request.target,
      extraEnv: { BACKUP_KEY: request.key, BACKUP_FORCE: String(request.force) },
    });
    if ((await createJobOnce(this.#d.batch, job, restore.metadata.uid)) === "foreign") {
      // Not ours: never adopted. The restore fails as JobLost once the grace has passed.
      await this.#event(restore, cluster, {
        on: "restore",
        type: "Warning",
        reason: EventReason.JobNameConflict,
        message: `Job ${request.name} exists and is not owned by this OpenBaoRestore; it is ignored`,
      });
    }
  }

  #ensureServiceAccount(namespace: string, cluster: OpenBaoCluster, request: RestoreJobRequest): Promise<void> {
    return ensureServiceAccount(this.#d.core, {
      namespace,
      name: request.serviceAccountName,
      owner: ownerReference(clusterNames.kind, cluster),
      annotations: request.serviceAccountAnnotations,
      labels: { [Label.ManagedBy]: LabelValue.ManagedBy, [Label.Component]: LabelValue.ComponentRestore },
    });
  }
}
