/**
 * The job runner (TESTING.md "Without a kubelet"): kube-apiserver + etcd run no Pods, so
 * for the Jobs this product creates the test harness plays the Job controller and the
 * kubelet. It watches Jobs (label selector), and for each new one:
 *
 * 1. claims it by writing `status.startTime` (optimistic concurrency: a Job another runner
 *    started, or one already finished, is never run again), then creates a Pod the way the
 *    Job controller does: `generateName: <job>-`, the template's labels plus `job-name`,
 *    `batch.kubernetes.io/job-name`, `controller-uid`, `batch.kubernetes.io/controller-uid`,
 *    a controlling owner reference to the Job, the template's spec, bound to node
 *    `job-runner` (`spec.nodeName`) so deletion is graceful like on a real node;
 * 2. resolves the first container's env and volumes (job-runner-pod.ts): Secrets, ConfigMaps,
 *    projected service-account tokens from the real TokenRequest API bound to the Pod, and
 *    maps mount paths to scratch directories through the env values that name them;
 * 3. runs the real executor (`node src/cli/main.ts <args>`) with exactly that env plus PATH
 *    and HOME, output to a log file (a ManagedProcess, so `superviseServers` shows
 *    it), enforcing `activeDeadlineSeconds` from `status.startTime`;
 * 4. writes the Pod status like a kubelet (Running, then Succeeded/Failed with the container's
 *    terminated state and its termination message — the last 4096 bytes of the file, as the
 *    kubelet reads it) and the Job status like the Job controller (counts, `completionTime`,
 *    `SuccessCriteriaMet`+`Complete` or `FailureTarget`+`Failed`, as the 1.36 API server's
 *    status validation requires).
 *
 * Also played, because nothing else runs here: the garbage collector for the Runner's own
 * Pods when their Job is deleted, and the TTL-after-finished controller (on by default:
 * `honourTtl`). A Pod deleted by someone else mid-run is stopped like a kubelet would (SIGTERM,
 * grace period, SIGKILL) and counted as a failed Pod. Missing Secrets/ServiceAccounts keep the
 * Pod Pending and are retried until the deadline, as in a cluster.
 *
 * Not emulated: `restartPolicy: OnFailure` restarts in place (a new Pod is made instead),
 * `podFailurePolicy`, `successPolicy`, indexed Jobs, parallelism > 1, init and sidecar
 * containers (only the first container runs), resource limits, read-only root filesystem.
 */
import { readFileSync, rmSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename, join } from "node:path";
import { afterEach } from "node:test";
import {
  BatchV1Api,
  CoreV1Api,
  type KubeConfig,
  makeInformer,
  type V1Container,
  type V1Job,
  type V1JobCondition,
  type V1JobStatus,
  type V1Pod,
  type V1PodCondition,
  type V1PodStatus,
} from "@kubernetes/client-node";
import { projectRoot } from "./catalog.ts";
import { PodStartRetryable, type PreparedContainer, prepareContainer } from "./job-runner-pod.ts";
import { type ManagedProcess, scratchDir, startProcess } from "./process.ts";

export const executorCli: string = join(projectRoot, "src", "cli", "main.ts");
export const defaultJobLabelSelector = "app.kubernetes.io/managed-by=openbao-backup";
/** The node name the runner's Pods are bound to. */
export const runnerNodeName = "job-runner";
const runnerIp = "127.0.0.1";
/** The kubelet keeps the last 4096 bytes of a termination message file. */
export const maxTerminationMessageBytes = 4096;

export interface ProcessCommand {
  readonly cmd: string;
  readonly args: readonly string[];
}

/** What a Job's container "did", for `mode: { completeWith }` (no process is run). */
export interface CompletionResult {
  readonly exitCode: number;
  readonly terminationMessage?: string;
  /** How long the container "runs" before it terminates; 0 by default. */
  readonly delayMs?: number;
}

export type CompletionSource = CompletionResult | ((job: V1Job) => CompletionResult | Promise<CompletionResult>);
export type JobRunnerMode = "execute" | { readonly completeWith: CompletionSource };

export interface JobRunnerOptions {
  readonly kubeConfig: KubeConfig;
  /** Only Jobs in this namespace; all namespaces when undefined. */
  readonly namespace?: string | undefined;
  /** Only Jobs with these labels; `app.kubernetes.io/managed-by=openbao-backup` by default. */
  readonly labelSelector?: string;
  /**
   * How a container is run. Receives the container with `command`/`args` already expanded
   * and path-mapped. Default: `process.execPath src/cli/main.ts <args>` (a `command` whose
   * first element is `bao-backup` is accepted, its other elements go before the args).
   */
  readonly command?: (container: V1Container, job: V1Job) => ProcessCommand;
  /** "execute" (default) runs the executor; `{ completeWith }` only writes the given result. */
  readonly mode?: JobRunnerMode;
  /** Delete finished Jobs (and their Pods) after `ttlSecondsAfterFinished`, as the TTL controller does. Default true. */
  readonly honourTtl?: boolean;
  /** Delay before the second Pod of a Job with `backoffLimit` > 0, doubling after; 10 s by default, as in Kubernetes. */
  readonly retryBackoffMs?: number;
  /**
   * Write the Pod's terminated status (with the termination message) this long after the Job's
   * final status instead of before it: what a watcher sees when its Pod watch lags its Job
   * watch. 0 (the kubelet-then-Job-controller order) by default.
   */
  readonly podReportDelayMs?: number;
}

/**
 * How a Job ended for the runner: "Complete" / "Failed" (the Job's terminal condition was
 * written), "JobDeleted" (the Job disappeared mid-run), "Vanished" (the fault hook removed
 * it), "Stopped" (the runner stopped first), "RunnerError" (the runner itself failed: see notes).
 */
export type RunOutcome = "Complete" | "Failed" | "JobDeleted" | "Vanished" | "Stopped" | "RunnerError";

export interface RunRecord {
  readonly namespace: string;
  readonly jobName: string;
  readonly jobUid: string;
  /** The last Pod made for the Job. */
  readonly podName: string | undefined;
  /** Pods made for the Job. */
  readonly attempts: number;
  /** Undefined while the Job is running. */
  readonly outcome: RunOutcome | undefined;
  /** The reason of the terminal Job condition: CompletionsReached, BackoffLimitExceeded, DeadlineExceeded. */
  readonly reason: string | undefined;
  /** Exit code the last container reported (128+n for signal n); null when it never ran. */
  readonly exitCode: number | null;
  /** The termination message as written to the Pod status. */
  readonly terminationMessage: string;
  /** Log of the last container's stdout and stderr. */
  readonly logPath: string | undefined;
  /** Epoch milliseconds: Job seen, container started, container exited, Job status final. */
  readonly seenAt: number;
  readonly startedAt: number | undefined;
  readonly exitedAt: number | undefined;
  readonly finishedAt: number | undefined;
  /** Container run time. */
  readonly durationMs: number | undefined;
  /** Runner time around the container: (started − seen) + (finished − exited). */
  readonly overheadMs: number | undefined;
  /** What the runner did and any errors it met, for failure messages. */
  readonly notes: readonly string[];
}

export interface JobRunner {
  /** Every Job the runner started, in order. */
  readonly runs: readonly RunRecord[];
  /** Scratch directory: Pod volumes and `logs/`. */
  readonly dir: string;
  /**
   * Resolves with the most recent finished run of that Job; rejects on timeout (60 s by
   * default) or when the run ended in "RunnerError", with the runner's notes.
   */
  waitForRun(
    jobName: string,
    options?: { readonly namespace?: string; readonly timeoutMs?: number },
  ): Promise<RunRecord>;
  /** Stop starting new Jobs (running ones continue); they are started on `resume`. */
  pause(): void;
  resume(): void;
  /**
   * Fault: the next run, `afterMs` after its container started, has its Job and Pod deleted
   * and its process killed (SIGKILL), as if the node and the Job vanished. Resolves with the run.
   */
  vanishNext(options?: { readonly afterMs?: number }): Promise<RunRecord>;
  /** Fault: the same, now, for a running Job. */
  vanish(jobName: string, namespace?: string): Promise<RunRecord>;
  /** The runner's notes and every run, as text. */
  describe(): string;
  /** Stops watching and kills running containers without writing any status (like a node dying). */
  stop(): Promise<void>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type MutableRecord = Mutable<Omit<RunRecord, "notes">> & { notes: string[] };

type CancelReason =
  | { readonly kind: "deadline" }
  | { readonly kind: "pod-deleted"; readonly graceSeconds: number }
  | { readonly kind: "job-deleted" }
  | { readonly kind: "vanish" }
  | { readonly kind: "stop" };

/** A one-shot cancellation: the first reason wins. */
class Cancel {
  reason: CancelReason | undefined;
  readonly promise: Promise<CancelReason>;
  readonly #resolve: (reason: CancelReason) => void;

  constructor() {
    const { promise, resolve } = Promise.withResolvers<CancelReason>();
    this.promise = promise;
    this.#resolve = resolve;
  }

  /** The reason, read fresh (not narrowed by earlier checks). */
  current(): CancelReason | undefined {
    return this.reason;
  }

  trigger(reason: CancelReason): void {
    if (this.reason) return;
    this.reason = reason;
    this.#resolve(reason);
  }
}

class JobGone extends Error {
  constructor(what: string) {
    super(`${what} is gone`);
    this.name = "JobGone";
  }
}

interface VanishRequest {
  readonly afterMs: number;
  readonly resolve: (record: RunRecord) => void;
}

interface RunState {
  readonly record: MutableRecord;
  job: V1Job;
  pod: V1Pod | undefined;
  readonly jobCancel: Cancel;
  attemptCancel: Cancel;
  vanish: VanishRequest | undefined;
  readonly podNames: string[];
}

interface AttemptResult {
  readonly podCreated: boolean;
  /** undefined: the container never ran. */
  readonly exitCode: number | undefined;
}

function statusCode(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "number" ? code : undefined;
  }
  return undefined;
}

/** An API error as "HTTP 422: <the API server's message>". */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  if (code !== undefined && typeof err === "object" && err !== null && "body" in err) {
    const body = (err as { body: unknown }).body;
    let message = typeof body === "string" ? body : JSON.stringify(body);
    try {
      const parsed = JSON.parse(message) as { message?: unknown };
      if (typeof parsed.message === "string") message = parsed.message;
    } catch {
      // not JSON: keep the text
    }
    return `HTTP ${code}: ${message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function isTrue(conditions: readonly V1JobCondition[] | undefined, type: string): boolean {
  return (conditions ?? []).some((c) => c.type === type && c.status === "True");
}

function isFinished(job: V1Job): boolean {
  const conditions = job.status?.conditions;
  return isTrue(conditions, "Complete") || isTrue(conditions, "Failed");
}

/** "run" now, "skip" forever (finished, started elsewhere, being deleted), or "later" (suspended). */
function eligibility(job: V1Job): "run" | "skip" | "later" {
  if (job.metadata?.deletionTimestamp) return "skip";
  if (isFinished(job)) return "skip";
  if (job.status?.startTime) return "skip";
  if (job.spec?.suspend) return "later";
  return "run";
}

/** The default `command`: the executor's CLI under the Node running the tests. */
export function defaultCommand(container: V1Container): ProcessCommand {
  const command = container.command ?? [];
  const first = command[0];
  if (first !== undefined && basename(first) !== "bao-backup") {
    throw new Error(`the job runner only runs bao-backup; container command is ${JSON.stringify(command)}`);
  }
  return { cmd: process.execPath, args: [executorCli, ...command.slice(1), ...(container.args ?? [])] };
}

function signalExitCode(signal: NodeJS.Signals | null): number {
  const number = signal ? osConstants.signals[signal] : undefined;
  return 128 + (number ?? 9);
}

/** The last `max` bytes of a file, as the kubelet reads a termination message. */
function readTail(path: string, max: number): string {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    return "";
  }
  return (data.length > max ? data.subarray(data.length - max) : data).toString("utf8");
}

/** FallbackToLogsOnError: the last 80 lines of the log, at most 2048 bytes. */
function logFallback(logPath: string | undefined): string {
  if (!logPath) return "";
  const lines = readTail(logPath, 1 << 20)
    .split("\n")
    .slice(-81)
    .join("\n");
  const bytes = Buffer.from(lines);
  return (bytes.length > 2048 ? bytes.subarray(bytes.length - 2048) : bytes).toString("utf8");
}

function podConditions(
  phase: "Pending" | "Running" | "Terminated",
  now: Date,
  containerName: string,
): V1PodCondition[] {
  const terminated = phase === "Terminated";
  const running = phase === "Running";
  const notReady = terminated
    ? { reason: "PodCompleted" }
    : { reason: "ContainersNotReady", message: `containers with unready status: [${containerName}]` };
  return [
    { type: "PodReadyToStartContainers", status: terminated ? "False" : "True", lastTransitionTime: now },
    { type: "Initialized", status: "True", lastTransitionTime: now, ...(terminated ? { reason: "PodCompleted" } : {}) },
    { type: "Ready", status: running ? "True" : "False", lastTransitionTime: now, ...(running ? {} : notReady) },
    {
      type: "ContainersReady",
      status: running ? "True" : "False",
      lastTransitionTime: now,
      ...(running ? {} : notReady),
    },
    { type: "PodScheduled", status: "True", lastTransitionTime: now },
  ];
}

function jobCondition(type: string, reason: string, message: string, now: Date): V1JobCondition {
  return { type, status: "True", reason, message, lastProbeTime: now, lastTransitionTime: now };
}

const liveRunners = new Set<{ describe(): string }>();

/**
 * Registers an `afterEach` in the calling test file that prints every job runner's notes
 * and runs when a test fails (the containers' own logs are printed by
 * `superviseServers`, as they run as ManagedProcesses).
 */
export function printJobRunnerOnFailure(): void {
  afterEach((t) => {
    if ((t as { passed?: boolean }).passed !== false) return;
    for (const runner of liveRunners) process.stderr.write(`\n--- job runner ---\n${runner.describe()}\n`);
  });
}

export async function startJobRunner(options: JobRunnerOptions): Promise<JobRunner> {
  const kc = options.kubeConfig;
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = options.namespace;
  const labelSelector = options.labelSelector ?? defaultJobLabelSelector;
  const mode = options.mode ?? "execute";
  const honourTtl = options.honourTtl ?? true;
  const retryBackoffMs = options.retryBackoffMs ?? 10_000;
  const podReportDelayMs = options.podReportDelayMs ?? 0;
  const commandFor = options.command ?? ((container: V1Container) => defaultCommand(container));
  const dir = scratchDir("job-runner");
  const logDir = join(dir, "logs");

  const runs: MutableRecord[] = [];
  const notes: string[] = [];
  const handled = new Set<string>();
  const active = new Map<string, RunState>(); // by Job uid
  const tasks = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  const vanishQueue: VanishRequest[] = [];
  let paused = false;
  let stopped = false;

  const note = (record: MutableRecord | undefined, text: string): void => {
    const line = `${new Date().toISOString()} ${record ? `${record.namespace}/${record.jobName}: ` : ""}${text}`;
    (record ? record.notes : notes).push(line);
  };
  /** A timer cleared by `stop`; `unref` ones do not keep the process alive (TTLs of a day). */
  const later = (ms: number, fn: () => void, unref = false): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    if (unref) timer.unref();
    timers.add(timer);
  };
  /** Waits `ms`; false when `cancel` fired first. */
  const delay = async (ms: number, cancel: Cancel): Promise<boolean> => {
    if (cancel.reason) return false;
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), ms);
    });
    const result = await Promise.race([slept, cancel.promise.then(() => false as const)]);
    clearTimeout(timer);
    return result;
  };
  const cancelJob = (state: RunState, reason: CancelReason): void => {
    state.jobCancel.trigger(reason);
    state.attemptCancel.trigger(reason);
  };
  const notifyWaiters = (): void => {
    for (const waiter of [...waiters]) waiter();
  };

  // ---- API writes -------------------------------------------------------------------------

  const jobRef = (state: RunState): { name: string; namespace: string } => ({
    name: state.record.jobName,
    namespace: state.record.namespace,
  });

  const readJob = async (state: RunState): Promise<V1Job> => {
    try {
      const job = await batch.readNamespacedJob(jobRef(state));
      if (job.metadata?.uid !== state.record.jobUid) throw new JobGone(`Job ${state.record.jobName}`);
      return job;
    } catch (err) {
      if (statusCode(err) === 404) throw new JobGone(`Job ${state.record.jobName}`);
      throw err;
    }
  };

  /** Read-modify-write of the Job status; `mutate` returning undefined declines. */
  const writeJobStatus = async (
    state: RunState,
    mutate: (status: V1JobStatus) => V1JobStatus | undefined,
  ): Promise<boolean> => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = state.job;
      const next = mutate(current.status ?? {});
      if (next === undefined) return false;
      try {
        state.job = await batch.replaceNamespacedJobStatus({ ...jobRef(state), body: { ...current, status: next } });
        return true;
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) throw new JobGone(`Job ${state.record.jobName}`);
        if (code !== 409) throw new Error(`Job status update rejected: ${describeError(err)}`);
        state.job = await readJob(state);
      }
    }
    throw new Error("Job status update: too many conflicts");
  };

  /** Read-modify-write of the Pod status; false when the Pod is gone. */
  const writePodStatus = async (state: RunState, mutate: (pod: V1Pod) => V1PodStatus): Promise<boolean> => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = state.pod;
      const name = current?.metadata?.name;
      if (!current || !name) return false;
      try {
        state.pod = await core.replaceNamespacedPodStatus({
          name,
          namespace: state.record.namespace,
          body: { ...current, status: mutate(current) },
        });
        return true;
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) return false;
        if (code !== 409) throw new Error(`Pod status update rejected: ${describeError(err)}`);
        try {
          const fresh = await core.readNamespacedPod({ name, namespace: state.record.namespace });
          if (fresh.metadata?.uid !== current.metadata?.uid) return false;
          state.pod = fresh;
        } catch (readErr) {
          if (statusCode(readErr) === 404) return false;
          throw readErr;
        }
      }
    }
    throw new Error("Pod status update: too many conflicts");
  };

  const deletePod = async (state: RunState, name: string | undefined): Promise<void> => {
    if (!name) return;
    try {
      await core.deleteNamespacedPod({ name, namespace: state.record.namespace, gracePeriodSeconds: 0 });
    } catch (err) {
      if (statusCode(err) !== 404) note(state.record, `deleting Pod ${name} failed: ${describeError(err)}`);
    }
  };

  const deleteJob = async (state: RunState): Promise<void> => {
    try {
      await batch.deleteNamespacedJob({ ...jobRef(state), propagationPolicy: "Background" });
    } catch (err) {
      if (statusCode(err) !== 404) note(state.record, `deleting Job failed: ${describeError(err)}`);
    }
  };

  // ---- one Pod ----------------------------------------------------------------------------

  const podBody = (job: V1Job): V1Pod => {
    const name = job.metadata?.name ?? "";
    const uid = job.metadata?.uid ?? "";
    const template = job.spec?.template;
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: `${name}-`,
        labels: {
          ...template?.metadata?.labels,
          "batch.kubernetes.io/controller-uid": uid,
          "batch.kubernetes.io/job-name": name,
          "controller-uid": uid,
          "job-name": name,
        },
        annotations: { ...template?.metadata?.annotations },
        ownerReferences: [
          { apiVersion: "batch/v1", kind: "Job", name, uid, controller: true, blockOwnerDeletion: true },
        ],
      },
      spec: { ...(template?.spec ?? { containers: [] }), nodeName: runnerNodeName },
    };
  };

  const pendingStatus = (pod: V1Pod, container: V1Container, reason: string, message: string): V1PodStatus => {
    const now = new Date();
    return {
      ...pod.status,
      phase: "Pending",
      hostIP: runnerIp,
      hostIPs: [{ ip: runnerIp }],
      startTime: pod.status?.startTime ?? now,
      conditions: podConditions("Pending", now, container.name),
      containerStatuses: [
        {
          name: container.name,
          image: container.image ?? "",
          imageID: "",
          ready: false,
          started: false,
          restartCount: 0,
          state: { waiting: { reason, message } },
        },
      ],
    };
  };

  const runningStatus = (pod: V1Pod, container: V1Container, containerId: string, startedAt: Date): V1PodStatus => ({
    ...pod.status,
    phase: "Running",
    hostIP: runnerIp,
    hostIPs: [{ ip: runnerIp }],
    podIP: runnerIp,
    podIPs: [{ ip: runnerIp }],
    startTime: pod.status?.startTime ?? startedAt,
    conditions: podConditions("Running", startedAt, container.name),
    containerStatuses: [
      {
        name: container.name,
        image: container.image ?? "",
        imageID: "",
        containerID: containerId,
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt } },
      },
    ],
  });

  const terminatedStatus = (
    pod: V1Pod,
    container: V1Container,
    result: {
      exitCode: number;
      reason: string;
      message: string;
      containerId: string;
      startedAt: Date;
      finishedAt: Date;
    },
  ): V1PodStatus => ({
    ...pod.status,
    phase: result.exitCode === 0 ? "Succeeded" : "Failed",
    hostIP: runnerIp,
    hostIPs: [{ ip: runnerIp }],
    podIP: runnerIp,
    podIPs: [{ ip: runnerIp }],
    startTime: pod.status?.startTime ?? result.startedAt,
    conditions: podConditions("Terminated", result.finishedAt, container.name),
    containerStatuses: [
      {
        name: container.name,
        image: container.image ?? "",
        imageID: "",
        containerID: result.containerId,
        ready: false,
        started: false,
        restartCount: 0,
        state: {
          terminated: {
            exitCode: result.exitCode,
            reason: result.reason,
            ...(result.message ? { message: result.message } : {}),
            startedAt: result.startedAt,
            finishedAt: result.finishedAt,
            containerID: result.containerId,
          },
        },
      },
    ],
  });

  /** Kills a container like the kubelet: SIGTERM, then SIGKILL after the grace period. */
  const kill = async (proc: ManagedProcess, exited: Promise<unknown>, graceSeconds: number): Promise<void> => {
    proc.kill(graceSeconds <= 0 ? "SIGKILL" : "SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceSeconds * 1000);
    await exited;
    clearTimeout(timer);
  };

  const runAttempt = async (state: RunState, attempt: number): Promise<AttemptResult> => {
    const record = state.record;
    const cancel = new Cancel();
    state.attemptCancel = cancel;
    if (state.jobCancel.reason) cancel.trigger(state.jobCancel.reason);
    state.pod = undefined;
    const job = state.job;
    const container = job.spec?.template.spec?.containers[0];
    if (!container) throw new Error("the Job's pod template has no container");

    // 1. The Pod, as the Job controller makes it (retried like FailedCreate).
    for (let wait = 1000; state.pod === undefined; wait = Math.min(wait * 2, 10_000)) {
      try {
        state.pod = await core.createNamespacedPod({ namespace: record.namespace, body: podBody(job) });
      } catch (err) {
        note(record, `FailedCreate (attempt ${attempt}): ${describeError(err)}`);
        if (!(await delay(wait, cancel))) return { podCreated: false, exitCode: undefined };
      }
    }
    const podName = state.pod.metadata?.name ?? "";
    record.podName = podName;
    record.attempts = attempt;
    state.podNames.push(podName);
    note(record, `created Pod ${podName}`);

    // 2. The kubelet's part before the container starts: env, volumes, command.
    const podDir = join(dir, podName);
    let prepared: PreparedContainer | undefined;
    let command: ProcessCommand | undefined;
    let startError: string | undefined;
    let completion: CompletionResult | undefined;
    if (mode === "execute") {
      let lastWaiting = "";
      for (let wait = 1000; prepared === undefined && startError === undefined; wait = Math.min(wait * 2, 10_000)) {
        try {
          prepared = await prepareContainer({ core, kubeConfig: kc, pod: state.pod, container, dir: podDir });
        } catch (err) {
          if (!(err instanceof PodStartRetryable)) {
            startError = describeError(err);
            break;
          }
          const waiting = `${err.reason}: ${err.message}`;
          if (waiting !== lastWaiting) {
            note(record, waiting);
            const pod = state.pod;
            await writePodStatus(state, () => pendingStatus(pod, container, err.reason, err.message));
            if (lastWaiting === "") await writeJobStatus(state, (s) => ({ ...s, active: 1, ready: 0 }));
            lastWaiting = waiting;
          }
          if (!(await delay(wait, cancel))) break;
        }
      }
      if (prepared) {
        try {
          command = commandFor({ ...container, command: prepared.command?.slice(), args: prepared.args?.slice() }, job);
        } catch (err) {
          startError = describeError(err);
        }
      }
    } else {
      try {
        const source = mode.completeWith;
        completion = typeof source === "function" ? await source(job) : source;
      } catch (err) {
        startError = describeError(err);
      }
    }

    const cleanVolumes = (): void => rmSync(join(podDir, "volumes"), { recursive: true, force: true });
    if (cancel.reason) {
      // Stopped before the container started (deadline, deletion…): nothing ran.
      cleanVolumes();
      return { podCreated: true, exitCode: undefined };
    }
    const startedAt = new Date();
    if (startError !== undefined || (mode === "execute" && (!prepared || !command))) {
      const message = startError ?? "container could not be prepared";
      note(record, `StartError: ${message}`);
      const pod = state.pod;
      await writePodStatus(state, () =>
        terminatedStatus(pod, container, {
          exitCode: 128,
          reason: "StartError",
          message,
          containerId: `${runnerNodeName}://${podName}`,
          startedAt,
          finishedAt: new Date(),
        }),
      );
      record.exitCode = 128;
      record.terminationMessage = message;
      cleanVolumes();
      return { podCreated: true, exitCode: 128 };
    }

    // 3. The container.
    let proc: ManagedProcess | undefined;
    let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    let containerId = `${runnerNodeName}://${podName}`;
    if (prepared && command) {
      const env: Record<string, string> = {
        ...prepared.env,
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: prepared.env.HOME ?? podDir,
      };
      const started = startProcess({
        name: podName,
        command: command.cmd,
        args: command.args,
        env,
        cwd: podDir,
        logDir,
      });
      proc = started;
      exited = new Promise((resolve) => {
        started.child.once("exit", (code, signal) => resolve({ code, signal }));
        started.child.once("error", (err) => {
          note(record, `spawn failed: ${err.message}`);
          resolve({ code: 128, signal: null });
        });
      });
      containerId = `${runnerNodeName}://${started.child.pid ?? podName}`;
      record.logPath = started.logPath;
    } else {
      const result = completion ?? { exitCode: 0 };
      exited = new Promise((resolve) => {
        later(result.delayMs ?? 0, () => resolve({ code: result.exitCode, signal: null }));
      });
    }
    record.startedAt = startedAt.getTime();
    const pod = state.pod;
    await writePodStatus(state, () => runningStatus(pod, container, containerId, startedAt));
    await writeJobStatus(state, (s) => ({ ...s, active: 1, ready: 1 }));

    const vanish = vanishQueue.shift();
    if (vanish) {
      state.vanish = vanish;
      later(vanish.afterMs, () => cancelJob(state, { kind: "vanish" }));
    }

    const first = await Promise.race([exited.then(() => undefined), cancel.promise]);
    if (first !== undefined) {
      const grace =
        first.kind === "pod-deleted"
          ? first.graceSeconds
          : first.kind === "vanish" || first.kind === "stop"
            ? 0
            : (state.pod?.spec?.terminationGracePeriodSeconds ?? 30);
      note(record, `stopping the container (${first.kind}, grace ${grace}s)`);
      if (proc) await kill(proc, exited, grace);
    }
    // A "completed" container stopped early reports SIGTERM, like a real one.
    const { code, signal } = proc || first === undefined ? await exited : { code: 143, signal: null };
    const finishedAt = new Date();
    record.exitedAt = finishedAt.getTime();
    record.durationMs = record.exitedAt - record.startedAt;
    const exitCode = code ?? signalExitCode(signal);
    record.exitCode = exitCode;
    cleanVolumes();

    // 4. The kubelet's report, unless the node "died" or the Pod is gone for good.
    let message = "";
    if (prepared) {
      message = readTail(prepared.terminationMessageFile, maxTerminationMessageBytes);
      if (message === "" && exitCode !== 0 && container.terminationMessagePolicy === "FallbackToLogsOnError") {
        message = logFallback(record.logPath);
      }
    } else {
      message = completion?.terminationMessage ?? "";
      const bytes = Buffer.from(message);
      if (bytes.length > maxTerminationMessageBytes) {
        message = bytes.subarray(bytes.length - maxTerminationMessageBytes).toString("utf8");
      }
    }
    record.terminationMessage = message;
    note(record, `container exited ${exitCode}${signal ? ` (${signal})` : ""} after ${record.durationMs} ms`);
    const kind = cancel.current()?.kind;
    if (kind !== "stop" && kind !== "vanish") {
      const current = state.pod;
      const report = () =>
        writePodStatus(state, () =>
          terminatedStatus(current, container, {
            exitCode,
            reason: exitCode === 0 ? "Completed" : "Error",
            message,
            containerId,
            startedAt,
            finishedAt,
          }),
        );
      if (podReportDelayMs > 0) {
        note(record, `Pod report delayed ${podReportDelayMs} ms (after the Job's status)`);
        later(podReportDelayMs, () => {
          void report().catch((err: unknown) => note(record, `delayed Pod report failed: ${describeError(err)}`));
        });
      } else await report();
      // The kubelet finishes a graceful deletion once the container is gone.
      if (kind === "pod-deleted") await deletePod(state, podName);
    }
    return { podCreated: true, exitCode };
  };

  // ---- one Job ----------------------------------------------------------------------------

  const finishJob = async (
    state: RunState,
    type: "Complete" | "Failed",
    reason: string,
    message: string,
    counts: { succeeded: number; failed: number },
  ): Promise<void> => {
    await writeJobStatus(state, (s) => {
      const now = new Date();
      const conditions = [...(s.conditions ?? [])];
      if (type === "Complete") {
        conditions.push(
          jobCondition("SuccessCriteriaMet", reason, message, now),
          jobCondition("Complete", reason, message, now),
        );
      } else {
        conditions.push(
          jobCondition("FailureTarget", reason, message, now),
          jobCondition("Failed", reason, message, now),
        );
      }
      return {
        ...s,
        active: 0,
        ready: 0,
        terminating: 0,
        uncountedTerminatedPods: {},
        succeeded: counts.succeeded,
        failed: counts.failed,
        conditions,
        ...(type === "Complete" ? { completionTime: now } : {}),
      };
    });
    state.record.outcome = type;
    state.record.reason = reason;
    note(state.record, `Job ${type} (${reason})`);
    const ttl = state.job.spec?.ttlSecondsAfterFinished;
    if (honourTtl && ttl !== undefined) {
      later(
        ttl * 1000,
        () => {
          void (async () => {
            await deleteJob(state);
            for (const name of state.podNames) await deletePod(state, name);
          })();
        },
        true,
      );
    }
  };

  const runJob = async (state: RunState): Promise<void> => {
    const record = state.record;
    let deadlineTimer: NodeJS.Timeout | undefined;
    try {
      const startTime = state.job.status?.startTime ?? new Date();
      const deadlineSeconds = state.job.spec?.activeDeadlineSeconds;
      if (deadlineSeconds !== undefined) {
        const remaining = startTime.getTime() + deadlineSeconds * 1000 - Date.now();
        deadlineTimer = setTimeout(() => cancelJob(state, { kind: "deadline" }), Math.max(0, remaining));
      }
      const backoffLimit = state.job.spec?.backoffLimit ?? 6;
      let failed = state.job.status?.failed ?? 0;
      for (let attempt = 1; ; attempt++) {
        const result = await runAttempt(state, attempt);
        const reason = state.jobCancel.reason;
        if (reason?.kind === "stop") {
          record.outcome = "Stopped";
          return;
        }
        if (reason?.kind === "vanish") {
          await deletePod(state, record.podName);
          await deleteJob(state);
          record.outcome = "Vanished";
          note(record, "vanished: Job and Pod deleted");
          return;
        }
        if (reason?.kind === "job-deleted") throw new JobGone(`Job ${record.jobName}`);
        if (reason?.kind === "deadline") {
          // The Job controller deletes the active Pod and fails the Job.
          await deletePod(state, record.podName);
          if (result.podCreated) failed++;
          await finishJob(state, "Failed", "DeadlineExceeded", "Job was active longer than specified deadline", {
            succeeded: state.job.status?.succeeded ?? 0,
            failed,
          });
          return;
        }
        if (result.exitCode === 0) {
          await finishJob(state, "Complete", "CompletionsReached", "Reached expected number of succeeded pods", {
            succeeded: (state.job.status?.succeeded ?? 0) + 1,
            failed,
          });
          return;
        }
        failed++;
        if (failed > backoffLimit) {
          await finishJob(state, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", {
            succeeded: state.job.status?.succeeded ?? 0,
            failed,
          });
          return;
        }
        await writeJobStatus(state, (s) => ({ ...s, active: 0, ready: 0, failed }));
        const wait = Math.min(retryBackoffMs * 2 ** (failed - 1), 360_000);
        note(record, `Pod failed (${failed}/${backoffLimit + 1}); next Pod in ${wait} ms`);
        await delay(wait, state.jobCancel);
      }
    } catch (err) {
      if (err instanceof JobGone || state.jobCancel.reason?.kind === "job-deleted") {
        // The garbage collector's part: the Job's Pods go with it.
        cancelJob(state, { kind: "job-deleted" });
        for (const name of state.podNames) await deletePod(state, name);
        record.outcome = "JobDeleted";
        note(record, "the Job was deleted mid-run");
      } else if (stopped) {
        record.outcome = "Stopped";
      } else {
        record.outcome = "RunnerError";
        note(record, `runner error: ${describeError(err)}`);
      }
    } finally {
      clearTimeout(deadlineTimer);
      record.finishedAt = Date.now();
      if (record.startedAt !== undefined && record.exitedAt !== undefined) {
        record.overheadMs = record.startedAt - record.seenAt + (record.finishedAt - record.exitedAt);
      }
      active.delete(record.jobUid);
      state.vanish?.resolve(record);
      notifyWaiters();
    }
  };

  /** Claims the Job by setting `status.startTime`; false when someone else has. */
  const claim = async (state: RunState): Promise<boolean> => {
    state.job = await readJob(state);
    if (eligibility(state.job) !== "run") return false;
    return writeJobStatus(state, (s) =>
      s.startTime || isFinished(state.job)
        ? undefined
        : { ...s, startTime: new Date(), ready: 0, terminating: 0, uncountedTerminatedPods: {} },
    );
  };

  const consider = (job: V1Job): void => {
    const uid = job.metadata?.uid;
    const name = job.metadata?.name;
    const ns = job.metadata?.namespace;
    if (stopped || !uid || !name || !ns || handled.has(uid)) return;
    const verdict = eligibility(job);
    if (verdict === "skip") handled.add(uid);
    if (verdict !== "run" || paused) return;
    handled.add(uid);
    const record: MutableRecord = {
      namespace: ns,
      jobName: name,
      jobUid: uid,
      podName: undefined,
      attempts: 0,
      outcome: undefined,
      reason: undefined,
      exitCode: null,
      terminationMessage: "",
      logPath: undefined,
      seenAt: Date.now(),
      startedAt: undefined,
      exitedAt: undefined,
      finishedAt: undefined,
      durationMs: undefined,
      overheadMs: undefined,
      notes: [],
    };
    const state: RunState = {
      record,
      job,
      pod: undefined,
      jobCancel: new Cancel(),
      attemptCancel: new Cancel(),
      vanish: undefined,
      podNames: [],
    };
    const task = (async () => {
      try {
        if (!(await claim(state))) {
          note(undefined, `${ns}/${name}: not claimed (started or finished elsewhere)`);
          return;
        }
      } catch (err) {
        if (!(err instanceof JobGone)) note(undefined, `${ns}/${name}: claim failed: ${describeError(err)}`);
        return;
      }
      runs.push(record);
      active.set(uid, state);
      note(record, "claimed");
      await runJob(state);
    })();
    tasks.add(task);
    void task.finally(() => tasks.delete(task));
  };

  // ---- watches ----------------------------------------------------------------------------

  const jobPath = namespace ? `/apis/batch/v1/namespaces/${namespace}/jobs` : "/apis/batch/v1/jobs";
  const jobs = makeInformer<V1Job>(
    kc,
    jobPath,
    () =>
      namespace
        ? batch.listNamespacedJob({ namespace, labelSelector })
        : batch.listJobForAllNamespaces({ labelSelector }),
    labelSelector,
  );
  const podSelector = "batch.kubernetes.io/controller-uid";
  const pods = makeInformer<V1Pod>(
    kc,
    namespace ? `/api/v1/namespaces/${namespace}/pods` : "/api/v1/pods",
    () =>
      namespace
        ? core.listNamespacedPod({ namespace, labelSelector: podSelector })
        : core.listPodForAllNamespaces({ labelSelector: podSelector }),
    podSelector,
  );

  const onJobChange = (job: V1Job): void => {
    const uid = job.metadata?.uid;
    const state = uid ? active.get(uid) : undefined;
    if (state && job.metadata?.deletionTimestamp) cancelJob(state, { kind: "job-deleted" });
    consider(job);
  };
  jobs.on("add", onJobChange);
  jobs.on("update", onJobChange);
  jobs.on("delete", (job) => {
    const uid = job.metadata?.uid;
    const state = uid ? active.get(uid) : undefined;
    if (state) cancelJob(state, { kind: "job-deleted" });
  });

  const onPodChange = (pod: V1Pod, deleted: boolean): void => {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    for (const state of active.values()) {
      if (state.pod?.metadata?.uid !== uid) continue;
      if (deleted || pod.metadata?.deletionTimestamp) {
        state.attemptCancel.trigger({
          kind: "pod-deleted",
          graceSeconds: deleted ? 0 : (pod.metadata?.deletionGracePeriodSeconds ?? 30),
        });
      }
    }
  };
  pods.on("update", (pod) => onPodChange(pod, false));
  pods.on("delete", (pod) => onPodChange(pod, true));

  for (const [what, informer] of [
    ["Job", jobs],
    ["Pod", pods],
  ] as const) {
    informer.on("error", (err: unknown) => {
      if (stopped) return;
      note(undefined, `${what} watch failed (${describeError(err)}); restarting in 1 s`);
      later(1000, () => {
        if (!stopped)
          informer.start().catch((e: unknown) => note(undefined, `${what} watch restart: ${describeError(e)}`));
      });
    });
  }
  await pods.start();
  await jobs.start();

  const describe = (): string => {
    const lines = [...notes];
    for (const r of runs) {
      lines.push(
        `run ${r.namespace}/${r.jobName}: outcome=${r.outcome ?? "running"} reason=${r.reason ?? "-"} exit=${r.exitCode} ` +
          `pod=${r.podName ?? "-"} log=${r.logPath ?? "-"} message=${JSON.stringify(r.terminationMessage.slice(0, 300))}`,
        ...r.notes.map((n) => `  ${n}`),
      );
    }
    return lines.join("\n");
  };

  const runner: JobRunner = {
    runs,
    dir,
    waitForRun(jobName, waitOptions = {}) {
      const timeoutMs = waitOptions.timeoutMs ?? 60_000;
      return new Promise((resolve, reject) => {
        const find = (): RunRecord | undefined =>
          runs
            .filter(
              (r) =>
                r.jobName === jobName &&
                (waitOptions.namespace === undefined || r.namespace === waitOptions.namespace) &&
                r.outcome !== undefined &&
                r.finishedAt !== undefined,
            )
            .at(-1);
        let timer: NodeJS.Timeout | undefined;
        const check = (): void => {
          const found = find();
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          if (found.outcome === "RunnerError") reject(new Error(`job runner failed on ${jobName}:\n${describe()}`));
          else resolve(found);
        };
        timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a run of Job ${jobName}:\n${describe()}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    pause() {
      paused = true;
    },
    resume() {
      if (stopped) return;
      paused = false;
      for (const job of jobs.list()) consider(job);
    },
    vanishNext(vanishOptions = {}) {
      return new Promise((resolve) => vanishQueue.push({ afterMs: vanishOptions.afterMs ?? 0, resolve }));
    },
    vanish(jobName, ns) {
      const state = [...active.values()].find(
        (s) => s.record.jobName === jobName && (ns === undefined || s.record.namespace === ns),
      );
      if (!state) return Promise.reject(new Error(`no running Job ${jobName}`));
      return new Promise((resolve) => {
        state.vanish = { afterMs: 0, resolve };
        cancelJob(state, { kind: "vanish" });
      });
    },
    describe,
    async stop() {
      if (stopped) return;
      stopped = true;
      paused = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const state of active.values()) cancelJob(state, { kind: "stop" });
      await Promise.allSettled([...tasks]);
      await jobs.stop();
      await pods.stop();
      liveRunners.delete(runner);
    },
  };
  liveRunners.add(runner);
  return runner;
}
