/**
 * The Kubernetes writes both managers (backup and restore) make the same way: owner
 * references, the executor's ServiceAccount, the Secret existence check of preflight, and a
 * Job created at most once under its deterministic name. One mechanism, parameterised.
 */
import {
  type BatchV1Api,
  type CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1OwnerReference,
} from "@kubernetes/client-node";
import { apiVersion } from "../api/constants.ts";
import { isAlreadyExists, isNotFound } from "./errors.ts";

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

/** The names among `names` that no Secret in `namespace` has (existence only; the data is not kept). */
export async function missingSecrets(core: CoreV1Api, namespace: string, names: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const name of new Set(names)) {
    try {
      await core.readNamespacedSecret({ name, namespace });
    } catch (err) {
      if (isNotFound(err)) missing.push(name);
      else throw err;
    }
  }
  return missing;
}

/**
 * Creates the executor's ServiceAccount, or brings its annotations (workload-identity
 * webhooks read them) up to date. It never gets an API token: the Job uses projected
 * tokens for OpenBao and cloud audiences only.
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
): Promise<void> {
  const { namespace, name, annotations } = sa;
  try {
    const existing = await core.readNamespacedServiceAccount({ name, namespace });
    const current = existing.metadata?.annotations ?? {};
    if (Object.entries(annotations).every(([k, v]) => current[k] === v)) return;
    await core.patchNamespacedServiceAccount(
      { name, namespace, body: { metadata: { annotations } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await core
      .createNamespacedServiceAccount({
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
      })
      .catch((e: unknown) => {
        if (!isAlreadyExists(e)) throw e;
      });
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
