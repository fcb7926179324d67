/**
 * The backup work of a cluster that still runs, read from the operator's caches for the
 * restore planner (displaced.ts says what to do with it). A Pod is found by its labels, not
 * through its Job: after a Background deletion the Job is gone while its Pod still stops.
 */
import { Label, LabelValue } from "../api/constants.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import { labelValue } from "../jobs/names.ts";
import { type CachedJob, type CachedPod, executorDone, observeJob, ownedBy } from "../jobs/result.ts";
import type { BackupWork } from "./displaced.ts";

export function observeBackupWork(
  cluster: OpenBaoCluster,
  jobs: readonly CachedJob[],
  pods: readonly CachedPod[],
): BackupWork {
  const namespace = cluster.metadata.namespace ?? "";
  const clusterLabel = labelValue(cluster.metadata.name ?? "");
  const backupPods = pods.filter(
    (p) =>
      p.metadata?.namespace === namespace &&
      p.metadata?.labels?.[Label.Component] === LabelValue.ComponentBackup &&
      p.metadata?.labels?.[Label.Cluster] === clusterLabel,
  );
  const runningJobs = jobs
    .filter(
      (j) =>
        j.metadata?.namespace === namespace &&
        ownedBy(j, cluster.metadata.uid) &&
        j.metadata?.labels?.[Label.BackupType] !== undefined,
    )
    .map((j) => {
      const name = j.metadata?.name ?? "";
      return observeJob(
        j,
        backupPods.filter((p) => p.metadata?.labels?.["job-name"] === name),
      );
    })
    .filter((j) => j.phase === "Running")
    .map((j) => j.name);
  return {
    inFlight: cluster.status?.backup?.currentJob?.name ?? undefined,
    runningJobs,
    activePods: backupPods.filter((p) => !executorDone(p)).length,
  };
}
