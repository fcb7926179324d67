/**
 * Where a cluster's readiness for a backup or restore comes from (pure).
 *
 * An `OpenBaoCluster` is either managed by a lifecycle operator, which writes `status.phase`
 * and `status.initialized`, or it describes an OpenBao that someone installed another way —
 * most often the official Helm chart — and that nobody writes a status for. Waiting for a
 * field nobody writes would block every backup forever, so the source is decided from what
 * exists:
 *
 * 1. `status.phase` is set → `LifecycleOperator` (today's rules: Running + initialized).
 * 2. The StatefulSet (`spec.backup.statefulSetName`, default the cluster's name) is controlled
 *    by an OpenBaoCluster (its controller owner reference) → `LifecycleOperator`: the operator
 *    that created it will write the status; until then the cluster is not Running yet.
 * 3. The StatefulSet exists and no OpenBaoCluster controls it → `StatefulSet`.
 * 4. Nothing exists → `LifecycleOperator`, blocked, with a message naming both ways out.
 *
 * With source `StatefulSet`, Kubernetes says whether OpenBao Pods exist (replicas and Pods
 * created) and OpenBao itself says the rest when the Job asks it (leader, sealed): a sealed
 * or leaderless OpenBao is a failed backup (`NoLeader`, counted, with an event), never a
 * silent wait. The readiness probe (`readyPods`) is deliberately not a gate: the chart's probe
 * fails while a Pod is sealed, and gating on it would turn a sealed cluster into a quiet block.
 * Nor is the StatefulSet's revision: an `OnDelete` StatefulSet can sit with a pending revision
 * for weeks, and backups must not starve meanwhile.
 */
import { type BackupTypeValue, BlockedReason, type BlockedReasonValue, clusterNames } from "../api/constants.ts";
import { clusterBlockers } from "../api/predicates.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import type { ObservedStatefulSet } from "./statefulset.ts";

export type ReadinessSource = "LifecycleOperator" | "StatefulSet";

export type Readiness =
  | { readonly source: "LifecycleOperator"; readonly statefulSet: ObservedStatefulSet | undefined }
  | { readonly source: "StatefulSet"; readonly statefulSet: ObservedStatefulSet };

export interface ReadinessBlocker {
  readonly reason: BlockedReasonValue;
  readonly message: string;
}

/** The StatefulSet an OpenBaoCluster describes: `spec.backup.statefulSetName`, else its own name. */
export function statefulSetNameOf(cluster: Pick<OpenBaoCluster, "metadata" | "spec">): string {
  return cluster.spec?.backup?.statefulSetName ?? cluster.metadata.name ?? "";
}

export function readinessOf(
  cluster: Pick<OpenBaoCluster, "status">,
  statefulSet: ObservedStatefulSet | undefined,
): Readiness {
  if (cluster.status?.phase !== undefined) return { source: "LifecycleOperator", statefulSet };
  if (statefulSet === undefined || statefulSet.controller?.kind === clusterNames.kind) {
    return { source: "LifecycleOperator", statefulSet };
  }
  return { source: "StatefulSet", statefulSet };
}

/**
 * What forbids starting a Job now, from the cluster's readiness source, with a message that
 * says what was seen and what to do.
 */
export function readinessBlockers(
  cluster: Pick<OpenBaoCluster, "metadata" | "spec" | "status">,
  readiness: Readiness,
  type: BackupTypeValue,
): ReadinessBlocker[] {
  if (readiness.source === "StatefulSet") {
    const sts = readiness.statefulSet;
    if (sts.replicas === 0) {
      return [
        {
          reason: BlockedReason.ClusterNotRunning,
          message: `StatefulSet ${sts.name} is scaled to 0 replicas: no OpenBao runs to take a snapshot from`,
        },
      ];
    }
    if (sts.pods === 0) {
      return [
        {
          reason: BlockedReason.ClusterNotRunning,
          message: `StatefulSet ${sts.name} has no Pods yet (0 of ${sts.replicas} created)`,
        },
      ];
    }
    return [];
  }
  return clusterBlockers(cluster, type).map((reason) => ({
    reason,
    message: lifecycleMessage(cluster, readiness, reason),
  }));
}

function lifecycleMessage(
  cluster: Pick<OpenBaoCluster, "metadata" | "spec" | "status">,
  readiness: Readiness,
  reason: BlockedReasonValue,
): string {
  const phase = cluster.status?.phase;
  switch (reason) {
    case BlockedReason.ClusterNotRunning: {
      if (phase !== undefined) return `the cluster is ${phase}, not Running`;
      const name = statefulSetNameOf(cluster);
      const namespace = cluster.metadata.namespace ?? "";
      if (readiness.statefulSet !== undefined) {
        const owner = readiness.statefulSet.controller;
        return `the cluster is in no phase yet, not Running: StatefulSet ${name} is controlled by ${owner?.kind ?? ""} ${owner?.name ?? ""}, and its lifecycle operator has not reported the cluster Running`;
      }
      return `the cluster is in no phase yet, not Running: no lifecycle operator has written status.phase, and no StatefulSet ${name} exists in namespace ${namespace} (for an OpenBao installed without a lifecycle operator, e.g. by the official Helm chart, set spec.backup.statefulSetName to its StatefulSet)`;
    }
    case BlockedReason.ClusterNotInitialized:
      return "the cluster is not initialized";
    case BlockedReason.UpgradeInProgress:
      return "an upgrade is in progress";
    default:
      return reason;
  }
}

/**
 * Member API URLs of a StatefulSet: `<scheme>://<sts>-<i>.<serviceName>.<ns>.svc:<port>` for
 * each replica, the stable per-Pod names its headless Service gives. Without a serviceName
 * (not a valid StatefulSet for OpenBao Raft) the StatefulSet's own name is used.
 */
export function statefulSetAddresses(sts: ObservedStatefulSet, namespace: string): string[] {
  const service = sts.serviceName === "" ? sts.name : sts.serviceName;
  return Array.from(
    { length: sts.replicas },
    (_, i) => `${sts.scheme}://${sts.name}-${i}.${service}.${namespace}.svc:${sts.port}`,
  );
}
