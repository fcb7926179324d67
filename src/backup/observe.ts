/**
 * Turns Kubernetes objects into the planner's observations. Only Jobs this operator created
 * for this cluster count: an owner reference with the cluster's UID (a Job of the same name
 * from anyone else is never trusted, SPEC §3). A Job's result comes from its Pod's
 * termination message, parsed field by field.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { Annotation, FailureReason } from "../api/constants.ts";
import { parseResultLine } from "../executor/result.ts";
import type { Wire } from "../runtime/informer.ts";

/** Jobs and Pods as the informer caches hold them: plain JSON (times are strings). */
export type CachedJob = Wire<V1Job>;
export type CachedPod = Wire<V1Pod>;

import type { JobFailureExplained, ObservedJob } from "./plan.ts";

export function ownedBy(
  job: { metadata?: { ownerReferences?: { uid?: string; controller?: boolean }[] } },
  uid: string | undefined,
): boolean {
  return uid !== undefined && (job.metadata?.ownerReferences ?? []).some((o) => o.uid === uid && o.controller === true);
}

function toDate(value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The terminated container's message of the Job's (last) Pod, if any. */
export function terminationMessage(pods: readonly CachedPod[]): string | undefined {
  const finished = pods
    .map((p) => p.status?.containerStatuses?.[0]?.state?.terminated)
    .filter((t) => t !== undefined)
    .sort((a, b) => (toDate(a.finishedAt)?.getTime() ?? 0) - (toDate(b.finishedAt)?.getTime() ?? 0));
  return finished.at(-1)?.message;
}

/**
 * A failure in words a person acts on, from what the Job and its Pod say when the executor
 * could not report it: the deadline (the executor only saw SIGTERM) or the OOM killer (the
 * executor saw nothing at all). The cache keeps just enough spec for the numbers
 * (kube/cache-shape.ts).
 */
export function explainFailure(job: CachedJob, pods: readonly CachedPod[]): JobFailureExplained | undefined {
  const failed = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
  if (failed?.reason === FailureReason.DeadlineExceeded) {
    const limit = job.spec?.activeDeadlineSeconds;
    return {
      reason: FailureReason.DeadlineExceeded,
      message:
        `the Job ran longer than its deadline${limit === undefined ? "" : ` of ${limit}s`} and Kubernetes stopped it; ` +
        "raise spec.backup.activeDeadlineSeconds if the snapshot needs longer, or look for a hung OpenBao or storage endpoint",
    };
  }
  for (const pod of pods) {
    const terminated = pod.status?.containerStatuses?.find((c) => c.state?.terminated?.reason === "OOMKilled");
    if (!terminated) continue;
    const limit = pod.spec?.containers?.find((c) => c.name === terminated.name)?.resources?.limits?.memory;
    return {
      reason: FailureReason.OOMKilled,
      message:
        `the executor was killed at its memory limit${limit === undefined ? "" : ` (${limit})`} (OOMKilled); ` +
        "raise spec.backup.resources.limits.memory, or lower target.partSize or target.concurrency",
    };
  }
  return undefined;
}

export function observeJob(job: CachedJob, pods: readonly CachedPod[]): ObservedJob {
  const conditions = job.status?.conditions ?? [];
  const complete = conditions.find((c) => c.type === "Complete" && c.status === "True");
  const failed = conditions.find((c) => c.type === "Failed" && c.status === "True");
  const phase = complete ? "Succeeded" : failed ? "Failed" : "Running";
  return {
    name: job.metadata?.name ?? "",
    phase,
    finishedAt:
      toDate(job.status?.completionTime) ?? toDate(failed?.lastTransitionTime) ?? toDate(complete?.lastTransitionTime),
    jobFailureReason: failed?.reason,
    result: phase === "Running" ? undefined : parseResultLine(terminationMessage(pods)),
    podTerminated: pods.some((p) => p.status?.containerStatuses?.[0]?.state?.terminated !== undefined),
    // The trigger value a manual Job answers, so a trigger left behind by a crash between the
    // Job's creation and the trigger's removal is recognised as answered, not run again.
    trigger: job.metadata?.annotations?.[Annotation.Trigger],
    explained: phase === "Failed" ? explainFailure(job, pods) : undefined,
  };
}
