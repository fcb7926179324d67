/**
 * The Kubernetes writes both managers (backup and restore) make the same way: owner
 * references, the executor's ServiceAccount, the Secret existence check of preflight, and a
 * Job created at most once under its deterministic name. One mechanism, parameterised.
 */
import {
  type BatchV1Api,
  type CoreV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1OwnerReference,
} from "@kubernetes/client-node";
import { apiVersion, group, version } from "../api/constants.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import type { Logger } from "../observability/logger.ts";
import { isAlreadyExists, isForbidden, isNotFound } from "./errors.ts";
import { clusterInvolved, type EventRecorder } from "./events.ts";

/** Read access the informer caches provide. */
export interface Cache<T> {
  get(namespace: string | undefined, name: string): T | undefined;
  list(namespace?: string): T[];
}

/** A controlling owner reference to one of our custom resources. */
export function ownerReference(kind: string, object: { metadata: { name?: string; uid?: string } }): V1OwnerReference {
  return {
    apiVersion,
    kind,
    name: object.metadata.name ?? "",
    uid: object.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * The names among `names` that no Secret in `namespace` has (existence only; the data is not
 * kept). The reads run in parallel: they are independent, and a new backup waits for them.
 */
export async function missingSecrets(core: CoreV1Api, namespace: string, names: readonly string[]): Promise<string[]> {
  const unique = [...new Set(names)];
  const found = await Promise.all(
    unique.map(async (name) => {
      try {
        await core.readNamespacedSecret({ name, namespace });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        // Not allowed to read Secrets here (the chart grants it only where asked: least
        // privilege). The check is an early courtesy, not the guard: the Job's Secret volumes
        // are optional and the executor fails at once with SecretNotFound, naming the Secret.
        if (isForbidden(err)) return true;
        throw err;
      }
    }),
  );
  return unique.filter((_, i) => !found[i]);
}

/** The fields of a cached ServiceAccount `ensureServiceAccount` compares. */
export interface CachedServiceAccount {
  metadata?: { annotations?: { [key: string]: string } };
}

/**
 * Creates the executor's ServiceAccount, or brings its annotations (workload-identity
 * webhooks read them) up to date. It never gets an API token: the Job uses projected
 * tokens for OpenBao and cloud audiences only. With `cache` (an informer of the
 * ServiceAccounts the operator created, by label), one found there with the wanted
 * annotations costs no request, and one not found there is created at once (one that exists
 * without the label, e.g. pre-created by the chart, then answers 409 and is read and
 * patched like any other). Without `cache` it is read first.
 */
export async function ensureServiceAccount(
  core: CoreV1Api,
  sa: {
    readonly namespace: string;
    readonly name: string;
    readonly owner: V1OwnerReference;
    readonly annotations: Readonly<Record<string, string>>;
    readonly labels: Readonly<Record<string, string>>;
  },
  cache?: Cache<CachedServiceAccount>,
): Promise<void> {
  const { namespace, name, annotations } = sa;
  const hasAll = (current: Readonly<Record<string, string>>): boolean =>
    Object.entries(annotations).every(([k, v]) => current[k] === v);
  const create = async (): Promise<"created" | "exists"> => {
    try {
      await core.createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name,
            namespace,
            annotations: { ...annotations },
            labels: { ...sa.labels },
            ownerReferences: [sa.owner],
          },
          automountServiceAccountToken: false,
        },
      });
      return "created";
    } catch (err) {
      if (isAlreadyExists(err)) return "exists";
      throw err;
    }
  };
  if (cache !== undefined) {
    const cached = cache.get(namespace, name);
    if (cached !== undefined && hasAll(cached.metadata?.annotations ?? {})) return;
    // Not among the ones it created: most likely missing, so create first; one that exists
    // without the label (pre-created, e.g. by the chart) is read and patched below.
    if (cached === undefined && (await create()) === "created") return;
  }
  try {
    const existing = await core.readNamespacedServiceAccount({ name, namespace });
    if (hasAll(existing.metadata?.annotations ?? {})) return;
    await core.patchNamespacedServiceAccount(
      { name, namespace, body: { metadata: { annotations } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await create();
  }
}

/**
 * Creates a Job under its deterministic name. "exists" means ours is already there (a
 * repeated create after a crash); "foreign" means a Job of that name is not owned by
 * `ownerUid` and must be ignored, never adopted.
 */
export async function createJobOnce(
  batch: BatchV1Api,
  job: V1Job,
  ownerUid: string | undefined,
): Promise<"created" | "exists" | "foreign"> {
  const namespace = job.metadata?.namespace ?? "";
  const name = job.metadata?.name ?? "";
  try {
    await batch.createNamespacedJob({ namespace, body: job });
    return "created";
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    const existing = await batch.readNamespacedJob({ name, namespace });
    const owned = (existing.metadata?.ownerReferences ?? []).some((o) => o.uid === ownerUid && o.controller === true);
    return owned ? "exists" : "foreign";
  }
}

/**
 * Removes an annotation of a custom object only if it still holds `value` (a JSON-patch test):
 * how a trigger (`openbao.org/trigger-backup`, `openbao.org/trigger-drill`) is cleared after
 * being honoured. A 409/422 means it changed since — a new request, left for the next pass.
 */
export async function removeAnnotationIfUnchanged(
  custom: CustomObjectsApi,
  names: { readonly plural: string },
  object: { metadata: { namespace?: string; name?: string } },
  annotation: string,
  value: string,
  log: Logger,
): Promise<void> {
  const path = `/metadata/annotations/${annotation.replace(/~/g, "~0").replace(/\//g, "~1")}`;
  try {
    await custom.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace: object.metadata.namespace ?? "",
        plural: names.plural,
        name: object.metadata.name ?? "",
        body: [
          { op: "test", path, value },
          { op: "remove", path },
        ],
      },
      setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
    );
  } catch (err) {
    log.info({ err: String(err), annotation }, "annotation changed before it could be cleared; keeping it");
  }
}

/**
 * A cluster's Job, created once under its name (`createJobOnce`); a Job of that name that the
 * cluster does not own is left alone and reported as a `JobNameConflict` Warning.
 */
export async function createClusterJob(
  batch: BatchV1Api,
  events: EventRecorder,
  cluster: OpenBaoCluster,
  job: V1Job,
): Promise<void> {
  if ((await createJobOnce(batch, job, cluster.metadata.uid)) !== "foreign") return;
  await events.record(
    clusterInvolved(cluster),
    "Warning",
    "JobNameConflict",
    `Job ${job.metadata?.name ?? ""} exists and is not owned by this cluster; it is ignored`,
  );
}
