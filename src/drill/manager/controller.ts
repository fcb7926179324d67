/**
 * The drill manager's act layer: observe (caches) → `planDrill` (pure, plan.ts) → perform, in
 * this order: the status write (optimistic, re-planned on conflict — the backup manager and a
 * lifecycle operator write the same object), events and metrics, the ServiceAccount and the
 * drill Job, and last the trigger annotation. Nothing here decides.
 *
 * A drill Job runs under the cluster's backup ServiceAccount: it reads the same storage with
 * the same identity, and logs in to the *restored* data the way backups log in to the live
 * cluster. It never takes the operation lock (plan.ts says why).
 */
import { Annotation, clusterNames, Label, LabelValue } from "../../api/constants.ts";
import { toTimestamp } from "../../api/predicates.ts";
import type { OpenBaoCluster } from "../../api/types.ts";
import { ensureBackupServiceAccount } from "../../backup/controller.ts";
import { buildExecutorJob } from "../../jobs/executor-job.ts";
import { jobCreateGraceMs } from "../../jobs/missing.ts";
import { labelValue } from "../../jobs/names.ts";
import { type CachedJob, type CachedPod, observeJob, ownedBy } from "../../jobs/result.ts";
import { JobSightings } from "../../jobs/sightings.ts";
import { byControllerUid, byJob, type IndexedCache } from "../../kube/cache-indexes.ts";
import { recordClusterEvents } from "../../kube/events.ts";
import type { ManagerDeps } from "../../kube/manager-deps.ts";
import {
  type Cache,
  type CachedServiceAccount,
  createClusterJob,
  ownerReference,
  removeAnnotationIfUnchanged,
} from "../../kube/objects.ts";
import { getObject, replaceStatus, retryOnConflict } from "../../kube/status.ts";
import type { DrillMetrics } from "./metrics.ts";
import { type DrillJobRequest, type DrillPlan, planDrill } from "./plan.ts";

export interface DrillControllerDeps extends ManagerDeps {
  /** Indexed by `byControllerUid`. */
  readonly jobs: IndexedCache<CachedJob>;
  /** Indexed by `byJob`. */
  readonly pods: IndexedCache<CachedPod>;
  readonly serviceAccounts?: Cache<CachedServiceAccount>;
  readonly metrics: DrillMetrics;
  /** Repository of the throwaway OpenBao's default image (operator `--drill-image-repository`). */
  readonly drillImageRepository: string;
}

const maxConflictRetries = 3;

export class DrillController {
  readonly #d: DrillControllerDeps;
  /** The drill Jobs in flight this process created or saw: one that vanished is never created again. */
  readonly #sightings = new JobSightings();

  constructor(deps: DrillControllerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number } | undefined> {
    const [namespace = "", name = ""] = key.split("/");
    const cluster = this.#d.clusters.get(namespace, name);
    if (!cluster) {
      this.#d.metrics.forget(namespace, name);
      this.#sightings.forget(key);
      return undefined;
    }
    const written = await retryOnConflict(
      cluster,
      maxConflictRetries,
      () => getObject<OpenBaoCluster>(this.#d.custom, clusterNames, namespace, name),
      async (current) => {
        const plan = this.#plan(key, current);
        if (plan.status) {
          await replaceStatus(this.#d.custom, clusterNames, current, {
            ...current.status,
            backup: plan.status.backup,
            conditions: plan.status.conditions,
          });
        }
        const after: OpenBaoCluster = plan.status
          ? {
              ...current,
              status: { ...current.status, backup: plan.status.backup, conditions: plan.status.conditions },
            }
          : current;
        return { cluster: after, plan };
      },
    );
    if (!written) return undefined;
    await this.#perform(key, written.cluster, written.plan);
    const { requeueAfterMs } = written.plan;
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  #plan(key: string, cluster: OpenBaoCluster): DrillPlan {
    const namespace = cluster.metadata.namespace ?? "";
    const uid = cluster.metadata.uid;
    const jobs = (uid === undefined ? [] : this.#d.jobs.byIndex(byControllerUid, uid))
      .filter(
        (j) =>
          j.metadata?.namespace === namespace && ownedBy(j, uid) && j.metadata?.labels?.[Label.Drill] !== undefined,
      )
      .map((j) => observeJob(j, this.#d.pods.byIndex(byJob, `${namespace}/${j.metadata?.name ?? ""}`)));
    const inFlight = cluster.status?.backup?.drill?.currentJob?.name;
    return planDrill({
      cluster,
      jobs,
      sightings: this.#sightings.track(
        key,
        inFlight === undefined ? [] : [inFlight],
        jobs.map((j) => j.name),
      ),
      jobCreateGraceMs: jobCreateGraceMs(this.#d.jobTtlSeconds),
      now: this.#d.now(),
      defaultImage: this.#d.image,
      drillImageRepository: this.#d.drillImageRepository,
    });
  }

  async #perform(key: string, cluster: OpenBaoCluster, plan: DrillPlan): Promise<void> {
    if (plan.recorded) this.#d.metrics.recorded(cluster, plan.recorded);
    this.#d.metrics.observe(cluster);
    await recordClusterEvents(this.#d.events, this.#d.log, cluster, plan.events);
    if (plan.createJob) {
      await this.#createJob(cluster, plan.createJob);
      this.#sightings.created(key, plan.createJob.name);
    }
    if (plan.clearTrigger) await this.#clearTrigger(cluster);
  }

  async #createJob(cluster: OpenBaoCluster, request: DrillJobRequest): Promise<void> {
    const namespace = cluster.metadata.namespace ?? "";
    const clusterName = cluster.metadata.name ?? "";
    const owner = ownerReference(clusterNames.kind, cluster);
    const spec = request.spec;
    // The backup identity: a drill reads the same storage and logs in to the restored data as backups do.
    const serviceAccountName = await ensureBackupServiceAccount(this.#d, cluster, spec.serviceAccountAnnotations);
    const labels = {
      [Label.ManagedBy]: LabelValue.ManagedBy,
      [Label.Name]: LabelValue.Name,
      [Label.Component]: LabelValue.ComponentDrill,
      [Label.Cluster]: labelValue(clusterName),
      [Label.Drill]: request.type,
    };
    const annotations: Record<string, string> = { [Annotation.ClusterName]: clusterName };
    if (request.window) annotations[Annotation.ScheduledTime] = toTimestamp(request.window);
    if (request.trigger !== undefined) annotations[Annotation.Trigger] = request.trigger;
    const job = buildExecutorJob({
      mode: "drill",
      name: request.name,
      namespace,
      owner,
      image: spec.image,
      serviceAccountName,
      labels,
      annotations,
      podLabels: spec.podLabels,
      podAnnotations: spec.podAnnotations,
      activeDeadlineSeconds: request.activeDeadlineSeconds,
      resources: spec.resources,
      ttlSecondsAfterFinished: this.#d.jobTtlSeconds,
      jwtAudience: this.#d.jwtAudience,
      // The drill never contacts the live cluster: no member addresses, no CA of its TLS.
      cluster: { name: clusterName, replicas: cluster.spec?.replicas ?? 1, addresses: undefined },
      auth: spec.auth,
      tlsSecretName: undefined,
      target: spec.target,
      drill: request.drill,
      extraEnv: {},
    });
    await createClusterJob(this.#d.batch, this.#d.events, cluster, job);
  }

  /** Removes the drill trigger only if it still holds the value this pass saw. */
  async #clearTrigger(cluster: OpenBaoCluster): Promise<void> {
    const value = cluster.metadata.annotations?.[Annotation.TriggerDrill];
    if (value === undefined) return;
    await removeAnnotationIfUnchanged(
      this.#d.custom,
      clusterNames,
      cluster,
      Annotation.TriggerDrill,
      value,
      this.#d.log,
    );
  }
}
