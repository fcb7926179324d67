/**
 * Reads the StatefulSet an OpenBaoCluster describes from the operator's cache, for both
 * controllers (backup and restore): one lookup, one shape.
 */
import type { OpenBaoCluster } from "../api/types.ts";
import type { Cache } from "../kube/objects.ts";
import { statefulSetNameOf } from "./decide.ts";
import { type ObservedStatefulSet, observeStatefulSet, type TrimmedStatefulSet } from "./statefulset.ts";

export function observedStatefulSet(
  cache: Cache<TrimmedStatefulSet> | undefined,
  cluster: Pick<OpenBaoCluster, "metadata" | "spec">,
): ObservedStatefulSet | undefined {
  const object = cache?.get(cluster.metadata.namespace, statefulSetNameOf(cluster));
  return object === undefined ? undefined : observeStatefulSet(object);
}
