/**
 * Secondary indexes of the operator's Job and Pod caches. A reconcile needs the Jobs of one
 * cluster and the Pods of one Job; scanning every cached Job and Pod for that made each
 * reconcile O(all Jobs + all Pods), and a burst of N clusters O(N²) (with 1,000 clusters on
 * one cron minute it was the operator's largest CPU cost after TLS).
 */
import type { KubeObject } from "../runtime/informer.ts";
import type { Cache } from "./objects.ts";

/** Objects by the UID of their controlling owner (a Job by its OpenBaoCluster or OpenBaoRestore). */
export const byControllerUid = "controller-uid";

export function controllerUids(object: KubeObject): string[] {
  return (object.metadata?.ownerReferences ?? []).filter((o) => o.controller === true).map((o) => o.uid);
}

/** Pods by `namespace/job-name` (the label the Job controller puts on its Pods). */
export const byJob = "job";

export function jobOfPod(object: KubeObject): string[] {
  const job = object.metadata?.labels?.["job-name"];
  return job ? [`${object.metadata?.namespace ?? ""}/${job}`] : [];
}

/** A cache with the indexes above. */
export interface IndexedCache<T> extends Cache<T> {
  byIndex(name: string, value: string): T[];
}
