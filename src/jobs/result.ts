/**
 * The result of an executor Job, for backups and restores alike: a Job and its Pods become an
 * `ObservedJob` — still running, finished with a result, or finished with none — and
 * `resultWaitMs` says when a finished Job's report is not in yet. (A Job that is gone is the
 * planners' call: only they know when it was meant to exist.)
 *
 * Only Jobs this operator created count: an owner reference with the owner's UID (a Job of
 * the same name from anyone else is never trusted, SPEC §3). The result is the termination
 * message of the container named `executorContainerName`, parsed field by field — never of
 * whichever container the Pod lists first: a mesh sidecar is often first (issue 15, defect 5).
 *
 * Sidecars. A native sidecar (an init container with `restartPolicy: Always`) stops with the
 * Pod, and the Job completes as it would without it. A classic sidecar (a second container,
 * e.g. an injected istio-proxy or linkerd-proxy) keeps the Pod running after the executor has
 * finished, so the Job never completes on its own. The executor's terminated state is then
 * the result: a Pod that is not terminal and not being deleted, whose executor has
 * terminated, finishes the Job as the executor's exit code says (0 → Succeeded, else Failed),
 * at the executor's `finishedAt`. The operator records it and leaves the Job alone: the Job
 * stays active until its `activeDeadlineSeconds`, when Kubernetes stops the Pod and marks the
 * Job failed (DeadlineExceeded); that late verdict is never recorded, because the result was
 * (backup: `currentJob` cleared; restore: terminal). The Job is not deleted, so its logs stay
 * for the TTL. A Pod being deleted is not read early: that is how the deadline stops a Job,
 * and the Job's own verdict (DeadlineExceeded) must win over the executor's SIGTERM report.
 */
import type { V1ContainerStateTerminated, V1Job, V1Pod } from "@kubernetes/client-node";
import { Annotation, FailureReason, Label } from "../api/constants.ts";
import { parseResultLine, type ReportedResult } from "../executor/result.ts";
import type { Wire } from "../runtime/informer.ts";
import { throwawayContainerName } from "./drill-pod.ts";
import { executorContainerName } from "./executor-job.ts";

/** Jobs and Pods as the informer caches hold them: plain JSON (times are strings). */
export type CachedJob = Wire<V1Job>;
export type CachedPod = Wire<V1Pod>;

/** A Job this operator created (owner reference with its owner's UID). */
export interface ObservedJob {
  readonly name: string;
  readonly phase: "Running" | "Succeeded" | "Failed";
  readonly finishedAt: Date | undefined;
  /** The Job's own failure reason (e.g. DeadlineExceeded) when it failed. */
  readonly jobFailureReason: string | undefined;
  /** The executor's termination message, parsed; undefined when absent or unreadable. */
  readonly result: ReportedResult | undefined;
  /** Whether a Pod of the Job has been seen with a terminated executor: where the result is. */
  readonly podTerminated: boolean;
  /** The trigger value a manual Job answers (its `openbao.org/trigger` annotation). */
  readonly trigger?: string | undefined;
  /**
   * What Kubernetes says about a failure the executor could not report itself: the Job's
   * deadline, or the kernel killing the executor at its memory limit (`explainFailure`).
   */
  readonly explained?: JobFailureExplained | undefined;
}

export interface JobFailureExplained {
  readonly reason: string;
  readonly message: string;
  /** The executor's own report is a consequence of this (it only saw its peer vanish): this is recorded first. */
  readonly outranksReport?: true;
}

type Terminated = Wire<V1ContainerStateTerminated>;

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

/** The executor container's terminated state in `pod`, found by name; undefined while it runs. */
export function executorTerminated(pod: CachedPod): Terminated | undefined {
  return pod.status?.containerStatuses?.find((c) => c.name === executorContainerName)?.state?.terminated;
}

function podTerminal(pod: CachedPod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/**
 * Whether `pod` no longer runs the executor: the Pod is terminal, or its executor has
 * terminated while a sidecar keeps the Pod alive. Nothing of the Job acts on OpenBao then.
 */
export function executorDone(pod: CachedPod): boolean {
  return podTerminal(pod) || executorTerminated(pod) !== undefined;
}

/** The executor finished on its own and a sidecar keeps the Pod running (see the opening comment). */
function keptAliveBySidecar(pod: CachedPod): boolean {
  return !podTerminal(pod) && pod.metadata?.deletionTimestamp == null && executorTerminated(pod) !== undefined;
}

function lastFinished(states: readonly Terminated[]): Terminated | undefined {
  return [...states]
    .sort((a, b) => (toDate(a.finishedAt)?.getTime() ?? 0) - (toDate(b.finishedAt)?.getTime() ?? 0))
    .at(-1);
}

/** The terminated executor's message of the Job's (last) Pod, if any. */
export function terminationMessage(pods: readonly CachedPod[]): string | undefined {
  return lastFinished(pods.map(executorTerminated).filter((t) => t !== undefined))?.message;
}

/**
 * A failure in words a person acts on, from what the Job and its Pod say when the executor
 * could not report it: the deadline (the executor only saw SIGTERM) or the OOM killer (the
 * executor saw nothing at all; a sidecar killed at its own limit is not the executor's). The
 * cache keeps just enough spec for the numbers (kube/cache-shape.ts).
 */
export function explainFailure(job: CachedJob, pods: readonly CachedPod[]): JobFailureExplained | undefined {
  const failed = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
  if (failed?.reason === FailureReason.DeadlineExceeded) {
    const limit = job.spec?.activeDeadlineSeconds;
    return {
      reason: FailureReason.DeadlineExceeded,
      message:
        `the Job ran longer than its deadline${limit === undefined ? "" : ` of ${limit}s`} and Kubernetes stopped it; ` +
        (job.metadata?.labels?.[Label.Drill] !== undefined
          ? "raise spec.backup.drill.activeDeadlineSeconds if the backup needs longer to restore, or look for a throwaway OpenBao that never started (its image, its requests) or a hung storage endpoint"
          : "raise spec.backup.activeDeadlineSeconds if the snapshot needs longer, or look for a hung OpenBao or storage endpoint"),
    };
  }
  for (const pod of pods) {
    // A drill's throwaway OpenBao (a native sidecar: restarted after an OOM kill, so the kill
    // is in its lastState) takes the restore down with it; the executor only saw it vanish.
    const throwaway = pod.status?.initContainerStatuses?.find((c) => c.name === throwawayContainerName);
    if (
      throwaway?.lastState?.terminated?.reason === "OOMKilled" ||
      throwaway?.state?.terminated?.reason === "OOMKilled"
    ) {
      return {
        reason: FailureReason.OOMKilled,
        message:
          "the drill's throwaway OpenBao was killed at its memory limit (OOMKilled) while the backup was restored into it; raise spec.backup.drill.openbaoResources.limits.memory (or remove the limit)",
        outranksReport: true,
      };
    }
  }
  for (const pod of pods) {
    if (executorTerminated(pod)?.reason !== "OOMKilled") continue;
    const limit = pod.spec?.containers?.find((c) => c.name === executorContainerName)?.resources?.limits?.memory;
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
  let phase: ObservedJob["phase"] = complete ? "Succeeded" : failed ? "Failed" : "Running";
  let finishedAt =
    toDate(job.status?.completionTime) ?? toDate(failed?.lastTransitionTime) ?? toDate(complete?.lastTransitionTime);
  if (phase === "Running") {
    // A classic sidecar keeps the Pod (and the Job) running: the executor's exit decides.
    const executor = lastFinished(
      pods
        .filter(keptAliveBySidecar)
        .map(executorTerminated)
        .filter((t) => t !== undefined),
    );
    if (executor) {
      phase = executor.exitCode === 0 ? "Succeeded" : "Failed";
      finishedAt = toDate(executor.finishedAt);
    }
  }
  return {
    name: job.metadata?.name ?? "",
    phase,
    finishedAt,
    jobFailureReason: failed?.reason,
    result: phase === "Running" ? undefined : parseResultLine(terminationMessage(pods)),
    podTerminated: pods.some((p) => executorTerminated(p) !== undefined),
    // The trigger value a manual Job answers, so a trigger left behind by a crash between the
    // Job's creation and the trigger's removal is recognised as answered, not run again.
    trigger: job.metadata?.annotations?.[Annotation.Trigger],
    explained: phase === "Failed" ? explainFailure(job, pods) : undefined,
  };
}

/**
 * The reason and message to record for a finished Job that did not succeed, for backups and
 * restores alike. The Job's deadline outranks the executor's own report: the executor only
 * saw a SIGTERM ("Terminated"), the deadline is why. Otherwise the executor's report, then
 * what Kubernetes explains (OOMKilled), then a plain "no readable result".
 */
export function failureOf(job: ObservedJob): { reason: string; message: string } {
  const result = job.result;
  if (job.explained && (job.explained.reason === FailureReason.DeadlineExceeded || job.explained.outranksReport)) {
    const reported = result?.ok === false && result.message ? `; the executor reported: ${result.message}` : "";
    return { reason: job.explained.reason, message: `${job.explained.message}${reported}` };
  }
  if (result?.ok === false && result.reason) {
    return { reason: result.reason, message: result.message || `Job ${job.name} failed (${result.reason})` };
  }
  if (job.explained) return job.explained;
  if (job.phase === "Succeeded") {
    return { reason: FailureReason.JobFailed, message: `Job ${job.name} succeeded but left no readable result` };
  }
  const reason = job.jobFailureReason ?? FailureReason.JobFailed;
  return { reason, message: `Job ${job.name} failed (${reason}) without a readable result` };
}

/**
 * How long the result of a finished Job may lag behind the Job. Jobs and Pods arrive through
 * separate watches, so the Job's `Complete` can be seen before the Pod's terminated state that
 * carries the termination message; recording at that moment would call a good backup (or
 * restore) "succeeded but left no readable result". A Pod that is gone for good (deleted,
 * garbage-collected) leaves nothing to wait for, and the Job is recorded after this grace.
 */
export const resultGraceMs = 30_000;

/** How long to wait before recording finished `job`: 0 when its result can be recorded now. */
export function resultWaitMs(job: ObservedJob, now: Date): number {
  if (job.phase === "Running" || job.podTerminated || job.result !== undefined || !job.finishedAt) return 0;
  // A Job stopped by its deadline is judged by the Job controller, which also deletes its Pod:
  // there is no report to wait for, and waiting lets a short TTL collect the Job first (JobLost).
  if (job.explained?.reason === FailureReason.DeadlineExceeded) return 0;
  return Math.max(0, job.finishedAt.getTime() + resultGraceMs - now.getTime());
}
