/**
 * The BackupManager's act layer: observe (caches) → `planBackup` (pure) → perform, in this
 * order: a displaced Job's deletion (a restore took its lock over, src/lock/: deleted before
 * the status write forgets it, so a crash in between never leaves it running untracked), the
 * status write (optimistic: the object's resourceVersion is the precondition, a conflict
 * re-reads and re-plans), events and metrics, the ServiceAccount and the Job, and last the
 * trigger annotation (removed only if it still holds the value that was honoured).
 * Nothing here decides; every branch is in plan.ts. The status write and its conflict re-read
 * are src/kube/status.ts, shared with the RestoreManager.
 */
import { Annotation, clusterNames, Label, LabelValue } from "../api/constants.ts";
import { isRestoreActive, toTimestamp } from "../api/predicates.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../api/types.ts";
import { buildExecutorJob } from "../jobs/executor-job.ts";
import { jobCreateGraceMs } from "../jobs/missing.ts";
import { labelValue } from "../jobs/names.ts";
import { type CachedJob, type CachedPod, observeJob, ownedBy } from "../jobs/result.ts";
import { JobSightings } from "../jobs/sightings.ts";
import { byControllerUid, byJob, type IndexedCache } from "../kube/cache-indexes.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import { recordClusterEvents } from "../kube/events.ts";
import type { ManagerDeps } from "../kube/manager-deps.ts";
import {
  type Cache,
  type CachedServiceAccount,
  createClusterJob,
  ensureServiceAccount,
  missingSecrets,
  ownerReference,
  removeAnnotationIfUnchanged,
} from "../kube/objects.ts";
import { getObject, replaceStatus, retryOnConflict } from "../kube/status.ts";
import { observedStatefulSet } from "../readiness/observe.ts";
import { crashPoint } from "../runtime/crash-point.ts";
import { backupJobEnv } from "./job-env.ts";
import type { BackupMetrics } from "./metrics.ts";
import { type BackupPlan, type JobRequest, planBackup } from "./plan.ts";
import { UnconfirmedResults } from "./unconfirmed.ts";

export interface BackupControllerDeps extends ManagerDeps {
  /** Indexed by `byControllerUid`. */
  readonly jobs: IndexedCache<CachedJob>;
  /** Indexed by `byJob`. */
  readonly pods: IndexedCache<CachedPod>;
  readonly restores: Cache<OpenBaoRestore>;
  /** ServiceAccounts the operator created: one found here as wanted needs no request. */
  readonly serviceAccounts?: Cache<CachedServiceAccount>;
  readonly metrics: BackupMetrics;
}

const maxConflictRetries = 3;

export function backupServiceAccountName(cluster: string): string {
  // 253 is the ServiceAccount name limit; "-backup" keeps every valid cluster name valid.
  return `${cluster.slice(0, 246)}-backup`;
}

/**
 * The cluster's backup ServiceAccount, created (or its annotations updated) if the cache does
 * not show it as wanted: the identity of backup, confirm and drill Jobs alike. Returns its name.
 */
export async function ensureBackupServiceAccount(
  deps: Pick<BackupControllerDeps, "core" | "serviceAccounts">,
  cluster: OpenBaoCluster,
  annotations: Readonly<Record<string, string>>,
): Promise<string> {
  const name = backupServiceAccountName(cluster.metadata.name ?? "");
  await ensureServiceAccount(
    deps.core,
    {
      namespace: cluster.metadata.namespace ?? "",
      name,
      owner: ownerReference(clusterNames.kind, cluster),
      annotations,
      labels: { [Label.ManagedBy]: LabelValue.ManagedBy, [Label.Component]: LabelValue.ComponentBackup },
    },
    deps.serviceAccounts,
  );
  return name;
}

export class BackupController {
  readonly #d: BackupControllerDeps;
  readonly #unconfirmed = new UnconfirmedResults();
  /** The Jobs in flight this process created or saw: one that vanished is never created again. */
  readonly #sightings = new JobSightings();

  constructor(deps: BackupControllerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number } | undefined> {
    const [namespace = "", name = ""] = key.split("/");
    const cluster = this.#d.clusters.get(namespace, name);
    if (!cluster) {
      this.#d.metrics.forget(namespace, name);
      this.#unconfirmed.settled(key);
      this.#sightings.forget(key);
      return undefined;
    }
    const written = await retryOnConflict(
      cluster,
      maxConflictRetries,
      // Someone else wrote the cluster (the lifecycle operator, a user): re-read, re-plan.
      () => getObject<OpenBaoCluster>(this.#d.custom, clusterNames, namespace, name),
      (current) => this.#planAndWrite(key, current),
    );
    if (!written) return undefined;
    await this.#perform(key, written.cluster, written.plan);
    const { requeueAfterMs } = written.plan;
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /** Plans from `cluster` and makes the plan's writes that precede everything else. */
  async #planAndWrite(key: string, cluster: OpenBaoCluster): Promise<{ cluster: OpenBaoCluster; plan: BackupPlan }> {
    const applied = this.#unconfirmed.confirmed(key, cluster.status?.backup?.lastRecordedJob ?? undefined);
    if (applied) this.#d.metrics.recorded(cluster, applied);
    const plan = await this.#plan(key, cluster);
    try {
      if (plan.deleteJob) await this.#deleteJob(cluster.metadata.namespace ?? "", plan.deleteJob);
      if (plan.recorded) crashPoint("backup.before-result-recorded");
      if (plan.status)
        await replaceStatus(this.#d.custom, clusterNames, cluster, { ...cluster.status, ...plan.status });
      if (plan.status && plan.createJob) crashPoint("backup.after-lock");
    } catch (err) {
      const recordedJob = plan.status?.backup.lastRecordedJob;
      if (plan.recorded && recordedJob && !isConflict(err)) {
        // No answer: the write may have applied. Counted once the cluster shows it (unconfirmed.ts).
        this.#unconfirmed.lost(key, recordedJob, plan.recorded);
      }
      throw err;
    }
    if (plan.recorded) this.#unconfirmed.settled(key);
    const after: OpenBaoCluster = plan.status ? { ...cluster, status: { ...cluster.status, ...plan.status } } : cluster;
    return { cluster: after, plan };
  }

  async #plan(key: string, cluster: OpenBaoCluster): Promise<BackupPlan> {
    const namespace = cluster.metadata.namespace ?? "";
    const uid = cluster.metadata.uid;
    const jobs = (uid === undefined ? [] : this.#d.jobs.byIndex(byControllerUid, uid))
      .filter(
        (j) =>
          j.metadata?.namespace === namespace &&
          ownedBy(j, uid) &&
          j.metadata?.labels?.[Label.BackupType] !== undefined,
      )
      .map((j) => observeJob(j, this.#d.pods.byIndex(byJob, `${namespace}/${j.metadata?.name ?? ""}`)));
    const activeRestores = this.#d.restores
      .list(namespace)
      .filter((r) => r.spec.cluster === cluster.metadata.name && isRestoreActive(r.status?.phase))
      .map((r) => r.metadata.name ?? "");
    const inFlight = cluster.status?.backup?.currentJob;
    const sightings = this.#sightings.track(
      key,
      [inFlight?.name, inFlight?.confirm?.job].filter((n) => n !== undefined),
      jobs.map((j) => j.name),
    );
    const observation = {
      cluster,
      jobs,
      sightings,
      jobCreateGraceMs: jobCreateGraceMs(this.#d.jobTtlSeconds),
      activeRestores,
      missingSecrets: [] as string[],
      now: this.#d.now(),
      defaultImage: this.#d.image,
      statefulSet: observedStatefulSet(this.#d.statefulSets, cluster),
    };
    const plan = planBackup(observation);
    // Secrets are only looked up when a new Job is about to start (preflight), not on every pass.
    const starting =
      plan.createJob !== undefined && plan.status?.backup.currentJob?.name !== cluster.status?.backup?.currentJob?.name;
    if (!starting || !plan.createJob) return plan;
    const missing = await this.#missingSecrets(namespace, plan.createJob);
    return missing.length === 0 ? plan : planBackup({ ...observation, missingSecrets: missing });
  }

  async #missingSecrets(namespace: string, job: JobRequest): Promise<string[]> {
    const names: string[] = job.spec.tlsSecretName === undefined ? [] : [job.spec.tlsSecretName];
    if (job.spec.auth.method === "token") names.push(job.spec.auth.secretName);
    if (job.spec.target.credentialsSecretRef) names.push(job.spec.target.credentialsSecretRef.name);
    return missingSecrets(this.#d.core, namespace, names);
  }

  async #deleteJob(namespace: string, name: string): Promise<void> {
    try {
      // Background: the Job goes at once, its Pods get SIGTERM; a restore waits for them (src/lock/work.ts).
      await this.#d.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: "Background" });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async #perform(key: string, cluster: OpenBaoCluster, plan: BackupPlan): Promise<void> {
    if (plan.recorded) this.#d.metrics.recorded(cluster, plan.recorded);
    this.#d.metrics.observe(cluster, plan.blocked);
    // Events go out beside the Job, in their order, not before it: at a busy window every
    // request ahead of the Job delays it (BENCHMARKS.md, operator scale), and an Event that
    // cannot be written never holds a backup back.
    const recording = recordClusterEvents(this.#d.events, this.#d.log, cluster, plan.events);
    try {
      if (plan.createJob) {
        await this.#createJob(cluster, plan.createJob);
        this.#sightings.created(key, plan.createJob.name);
        crashPoint("backup.after-job-created");
      }
    } finally {
      await recording;
    }
    if (plan.clearTrigger) await this.#clearTrigger(cluster);
  }

  async #createJob(cluster: OpenBaoCluster, request: JobRequest): Promise<void> {
    const namespace = cluster.metadata.namespace ?? "";
    const clusterName = cluster.metadata.name ?? "";
    const owner = ownerReference(clusterNames.kind, cluster);
    const serviceAccountName = await ensureBackupServiceAccount(
      this.#d,
      cluster,
      request.spec.serviceAccountAnnotations,
    );
    const labels = {
      [Label.ManagedBy]: LabelValue.ManagedBy,
      [Label.Name]: LabelValue.Name,
      [Label.Component]: LabelValue.ComponentBackup,
      [Label.Cluster]: labelValue(clusterName),
      [Label.BackupType]: request.type,
    };
    const annotations: Record<string, string> = { [Annotation.ClusterName]: clusterName };
    if (request.window) annotations[Annotation.ScheduledTime] = toTimestamp(request.window);
    if (request.targetVersion) annotations[Annotation.TargetVersion] = request.targetVersion;
    if (request.attempt !== undefined) annotations[Annotation.Attempt] = String(request.attempt);
    // Read back by jobs/result.ts: a trigger still set after a crash is then known to be answered.
    if (request.trigger !== undefined) annotations[Annotation.Trigger] = request.trigger;
    if (request.keyId !== undefined) annotations[Annotation.KeyId] = request.keyId;
    if (request.confirms !== undefined) annotations[Annotation.Confirms] = request.confirms;
    const spec = request.spec;
    const job = buildExecutorJob({
      mode: request.confirms === undefined ? "backup" : "confirm",
      name: request.name,
      namespace,
      owner,
      image: spec.image,
      serviceAccountName,
      labels,
      annotations,
      podLabels: spec.podLabels,
      podAnnotations: spec.podAnnotations,
      activeDeadlineSeconds: spec.activeDeadlineSeconds,
      resources: spec.resources,
      ttlSecondsAfterFinished: this.#d.jobTtlSeconds,
      jwtAudience: this.#d.jwtAudience,
      cluster: { name: clusterName, replicas: cluster.spec?.replicas ?? 1, addresses: spec.openbaoAddresses },
      auth: spec.auth,
      tlsSecretName: spec.tlsSecretName,
      target: spec.target,
      additionalTargets: spec.additionalTargets,
      successPolicy: spec.successPolicy,
      sizeHint: request.sizeHint,
      extraEnv: backupJobEnv(request, spec),
    });
    await createClusterJob(this.#d.batch, this.#d.events, cluster, job);
  }

  /** Removes the trigger only if it still holds the value this pass honoured. */
  async #clearTrigger(cluster: OpenBaoCluster): Promise<void> {
    const value = cluster.metadata.annotations?.[Annotation.TriggerBackup];
    if (value === undefined) return;
    await removeAnnotationIfUnchanged(
      this.#d.custom,
      clusterNames,
      cluster,
      Annotation.TriggerBackup,
      value,
      this.#d.log,
    );
  }
}
