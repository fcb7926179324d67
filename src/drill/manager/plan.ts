/**
 * The drill manager's decisions, as one pure function of observed state and the clock:
 * `planDrill(observation) → plan`. The controller (controller.ts) writes the status, records
 * events and metrics, creates the Job and clears the trigger, in that order, and decides nothing.
 *
 * A restore drill never touches the live cluster — it reads storage and restores into a
 * throwaway OpenBao inside its own Pod (src/jobs/drill-pod.ts) — so, unlike a backup, it
 * neither takes nor waits for the operation lock, and runs whatever the cluster is doing
 * (upgrading, restoring, backing up, not Running). Its state lives in fields only this
 * manager writes: `status.backup.drill`, `status.backup.lastDrill` and the `RestoreVerified`
 * condition.
 *
 * Invariants (each covered by a scenario test with a fixed clock, test/unit/drill/manager.test.ts):
 * - at most one drill per cron window: the window and the Job's name (`currentJob`) are written
 *   before the Job is created, Job names derive from the window, and a window at or before
 *   `lastAttemptScheduledTime` is never due again;
 * - at most one drill Job at a time per cluster: nothing new starts while `currentJob` is set;
 * - a drill's result is recorded exactly once: recording clears `currentJob` in the same write;
 * - a drill Job that disappears is re-created within the create grace, else recorded as `JobLost`;
 * - a trigger (`openbao.org/trigger-drill`) is honoured once: the Job carries its value, so a
 *   trigger left behind by a crash is recognised as answered and cleared;
 * - never silent: a failed drill, a drill overdue by two windows, or a drill spec that cannot be
 *   used is `RestoreVerified=False` with a reason, a Warning Event and metrics (metrics.ts).
 */
import {
  Annotation,
  Condition as ConditionName,
  defaults,
  EventReason,
  FailureReason,
  Reason,
} from "../../api/constants.ts";
import {
  fromTimestamp,
  observeSchedule,
  type ResolvedBackupSpec,
  removeCondition,
  resolveBackupSpec,
  setCondition,
  toTimestamp,
} from "../../api/predicates.ts";
import type { BackupStatus, Condition, DrillSpec, DrillStatus, LastDrill, OpenBaoCluster } from "../../api/types.ts";
import {
  countWindows,
  dueWindow,
  nextWindowAfter,
  parseSchedule,
  type Schedule,
  ScheduleError,
} from "../../backup/schedule.ts";
import type { DrillPodInput } from "../../jobs/drill-pod.ts";
import { decideMissingJob, type JobSighting, maxJobCreateGraceMs } from "../../jobs/missing.ts";
import { drillJobName } from "../../jobs/names.ts";
import { failureOf, type ObservedJob, resultWaitMs } from "../../jobs/result.ts";
import { formatDuration } from "../../util/duration.ts";

export interface DrillObservation {
  readonly cluster: OpenBaoCluster;
  /** The cluster's drill Jobs (owned by it, labelled `openbao.org/drill`). */
  readonly jobs: readonly ObservedJob[];
  readonly now: Date;
  /** The operator's own image: runs the executor and the prepare container unless spec.backup.image says otherwise. */
  readonly defaultImage: string;
  /** Repository of the throwaway OpenBao's default image (`<repository>:<cluster version>`). */
  readonly drillImageRepository: string;
  /** What this process knows of the drill Job in flight it cannot see (src/jobs/missing.ts); nothing when absent. */
  readonly sightings?: ReadonlyMap<string, JobSighting>;
  /** How long a decided Job may be invisible before it is lost (`jobCreateGraceMs` of the Job TTL). */
  readonly jobCreateGraceMs?: number;
}

export interface DrillJobRequest {
  readonly name: string;
  readonly type: "scheduled" | "manual";
  readonly window: Date | undefined;
  readonly trigger: string | undefined;
  readonly spec: ResolvedBackupSpec;
  readonly drill: DrillPodInput;
  readonly activeDeadlineSeconds: number;
}

export interface PlannedDrillEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: (typeof EventReason)[keyof typeof EventReason];
  readonly message: string;
}

/** What was recorded this pass, for metrics. */
export interface RecordedDrill {
  readonly outcome: LastDrill["outcome"];
  readonly reason: string | undefined;
  readonly durationMs: number | undefined;
}

export interface DrillPlan {
  /** `status.backup` and the conditions to write (optimistically), or undefined when nothing changed. */
  readonly status: { readonly backup: BackupStatus; readonly conditions: Condition[] } | undefined;
  readonly createJob: DrillJobRequest | undefined;
  readonly clearTrigger: boolean;
  readonly events: PlannedDrillEvent[];
  readonly recorded: RecordedDrill | undefined;
  readonly requeueAfterMs: number | undefined;
}

/**
 * The backup a manual drill asks for: a trigger value ending in ` key=<object key>` (as
 * `bao-backup trigger --drill --key` writes it, after the request time so that each request is
 * a new value); any other value drills `spec.backup.drill.key`.
 */
export function requestedDrillKey(trigger: string | undefined): string | undefined {
  const match = trigger === undefined ? null : /(?:^|\s)key=(\S+)$/.exec(trigger);
  return match?.[1];
}

/** The manual drill trigger's value when one is pending (any non-empty value). */
export function pendingDrillTrigger(cluster: Pick<OpenBaoCluster, "metadata">): string | undefined {
  const value = cluster.metadata.annotations?.[Annotation.TriggerDrill];
  return value !== undefined && value !== "" ? value : undefined;
}

/**
 * The throwaway's image: `spec.backup.drill.image`, else the drill image repository at the
 * version the cluster runs (`status.currentVersion`, else `spec.version`, without a leading
 * "v": OpenBao's images are tagged `2.4.0`). A restore into an OpenBao older than the one that
 * wrote the snapshot proves nothing about the cluster's own restore.
 */
export function drillImage(
  cluster: Pick<OpenBaoCluster, "spec" | "status">,
  drill: Pick<DrillSpec, "image">,
  repository: string,
): string | undefined {
  if (drill.image !== undefined) return drill.image;
  const version = cluster.status?.currentVersion ?? cluster.spec?.version;
  return version === undefined || version === "" ? undefined : `${repository}:${version.replace(/^v/, "")}`;
}

interface Draft {
  readonly obs: DrillObservation;
  readonly now: Date;
  readonly backup: BackupStatus;
  state: DrillStatus;
  conditions: Condition[];
  readonly events: PlannedDrillEvent[];
  readonly requeue: number[];
  recorded: RecordedDrill | undefined;
  createJob: DrillJobRequest | undefined;
  clearTrigger: boolean;
  /** The drill in flight is not visible yet: create it (again) under its name. */
  recreate: boolean;
}

export function planDrill(obs: DrillObservation): DrillPlan {
  const { cluster, now } = obs;
  const before = { backup: cluster.status?.backup ?? {}, conditions: cluster.status?.conditions ?? [] };
  const backup = structuredClone(before.backup);
  const draft: Draft = {
    obs,
    now,
    backup,
    state: backup.drill ?? {},
    conditions: before.conditions,
    events: [],
    requeue: [],
    recorded: undefined,
    createJob: undefined,
    clearTrigger: false,
    recreate: false,
  };
  const name = cluster.metadata.name ?? "";
  const spec = cluster.spec?.backup;
  const drill = spec?.drill;
  const resolved = spec ? resolveBackupSpec(spec, { clusterName: name, defaultImage: obs.defaultImage }) : undefined;
  const trigger = pendingDrillTrigger(cluster);
  const request = settleInFlight(draft, trigger);

  if (!spec || !drill || !resolved) {
    // Drills turned off: the schedule state goes once no drill is in flight; lastDrill stays as history.
    if (!draft.state.currentJob) {
      delete backup.drill;
      draft.conditions = [...removeCondition(draft.conditions, ConditionName.RestoreVerified)];
      if (trigger !== undefined) draft.clearTrigger = true;
      return finish(draft, before);
    }
    backup.drill = draft.state;
    return finish(draft, before);
  }
  backup.drill = draft.state;

  const timeZone = drill.timeZone ?? spec.timeZone ?? defaults.timeZone;
  let schedule: Schedule;
  try {
    schedule = parseSchedule(drill.schedule, timeZone, "spec.backup.drill");
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    invalid(draft, err.message);
    return finish(draft, before);
  }
  const { observed } = observeSchedule({ ...drill, timeZone }, draft.state.observedSchedule, now);
  draft.state.observedSchedule = observed;
  const observedAt = fromTimestamp(observed.observedTime) ?? now;
  const next = nextWindowAfter(schedule, now);
  if (next && !observed.suspend) {
    draft.state.nextScheduledDrill = toTimestamp(next);
    draft.requeue.push(next.getTime() - now.getTime());
  } else {
    delete draft.state.nextScheduledDrill;
  }

  const image = drillImage(cluster, drill, obs.drillImageRepository);
  if (image === undefined) {
    invalid(
      draft,
      "spec.backup.drill.image is not set and the cluster's version is unknown (neither status.currentVersion nor spec.version): set spec.backup.drill.image to the OpenBao image the cluster runs, e.g. quay.io/openbao/openbao:2.4.0",
    );
    return finish(draft, before);
  }

  start(draft, {
    schedule,
    observedAt,
    suspended: observed.suspend,
    trigger: request,
    resolved,
    drill,
    image,
    lastBackupSize: backup.lastBackupSize,
  });
  health(draft, schedule, observedAt, observed.suspend);
  return finish(draft, before);
}

function finish(draft: Draft, before: { backup: BackupStatus; conditions: readonly Condition[] }): DrillPlan {
  const next = { backup: draft.backup, conditions: draft.conditions };
  const changed = JSON.stringify(next) !== JSON.stringify(before);
  const positive = draft.requeue.filter((ms) => ms > 0);
  return {
    status: changed ? next : undefined,
    createJob: draft.createJob,
    clearTrigger: draft.clearTrigger,
    events: draft.events,
    recorded: draft.recorded,
    requeueAfterMs: positive.length > 0 ? Math.min(...positive) : undefined,
  };
}

function setRestoreVerified(draft: Draft, status: "True" | "False" | "Unknown", reason: string, message: string): void {
  const generation = draft.obs.cluster.metadata.generation;
  draft.conditions = [
    ...setCondition(
      draft.conditions,
      {
        type: ConditionName.RestoreVerified,
        status,
        reason,
        message,
        ...(generation === undefined ? {} : { observedGeneration: generation }),
      },
      draft.now,
    ),
  ];
}

/** spec.backup.drill cannot be used: the condition says why, and an Event does when that is news. */
function invalid(draft: Draft, message: string): void {
  const current = draft.conditions.find((c) => c.type === ConditionName.RestoreVerified);
  if (current?.reason !== Reason.DrillInvalid || current.message !== message) {
    draft.events.push({ type: "Warning", reason: EventReason.DrillInvalid, message });
  }
  setRestoreVerified(draft, "False", Reason.DrillInvalid, message);
}

/**
 * Step 1, the drill in flight: record its result once, re-create it when the create did not
 * happen, or record it lost. Returns the trigger still waiting for a drill of its own.
 */
function settleInFlight(draft: Draft, trigger: string | undefined): string | undefined {
  const { obs, now } = draft;
  const current = draft.state.currentJob ?? undefined;
  const answeredBy = trigger === undefined ? undefined : obs.jobs.find((j) => j.trigger === trigger);
  if (answeredBy) draft.clearTrigger = true;
  const waiting = answeredBy ? undefined : trigger;
  if (!current) return waiting;
  const job = obs.jobs.find((j) => j.name === current.name);
  if (job === undefined) {
    const missing = decideMissingJob({
      decidedAt: fromTimestamp(current.createdAt),
      now,
      sighting: obs.sightings?.get(current.name),
      graceMs: obs.jobCreateGraceMs ?? maxJobCreateGraceMs,
      creatable: true,
    });
    if (missing.action !== "lost") {
      // Created a moment ago (the cache lags), or — when this process never created it — the
      // create failed: the controller creates it under the same name (an AlreadyExists is fine).
      draft.requeue.push(missing.recheckMs);
      draft.recreate = missing.action === "create";
      return waiting;
    }
    record(draft, current.name, {
      outcome: "failed",
      reason: FailureReason.JobLost,
      message: `drill Job ${current.name} disappeared before its result was read (deleted, or removed by its TTL while the operator was down); the next window drills again`,
    });
    return waiting;
  }
  if (job.phase === "Running") return waiting;
  const wait = resultWaitMs(job, now);
  if (wait > 0) {
    draft.requeue.push(wait);
    return waiting;
  }
  const result = job.result;
  if (job.phase === "Succeeded" && result?.ok === true && result.drill !== undefined) {
    const d = result.drill;
    record(draft, job.name, {
      outcome: d.outcome,
      ...(result.key === undefined ? {} : { key: result.key }),
      ...(result.raftIndex === undefined ? {} : { raftIndex: result.raftIndex }),
      ...(result.durationMs === undefined ? {} : { duration: formatDuration(result.durationMs) }),
      ...(d.sealType === undefined ? {} : { sealType: d.sealType }),
      ...(d.canaryVersion === undefined ? {} : { canaryVersion: d.canaryVersion }),
      ...(d.secretMounts === undefined ? {} : { secretMounts: d.secretMounts }),
      ...(d.authMethods === undefined ? {} : { authMethods: d.authMethods }),
      message: result.message ?? `the drill of ${result.key ?? "the backup"} passed (${d.outcome})`,
      finishedAt: job.finishedAt,
      durationMs: result.durationMs,
    });
    return waiting;
  }
  const failure =
    job.phase === "Succeeded" && result?.ok === true
      ? { reason: FailureReason.JobFailed, message: `drill Job ${job.name} succeeded but reported no drill outcome` }
      : failureOf(job);
  record(draft, job.name, {
    outcome: "failed",
    reason: failure.reason,
    message: failure.message,
    ...(result?.key === undefined ? {} : { key: result.key }),
    ...(result?.durationMs === undefined ? {} : { duration: formatDuration(result.durationMs) }),
    finishedAt: job.finishedAt,
    durationMs: result?.durationMs,
  });
  return waiting;
}

type Recording = Omit<LastDrill, "time" | "jobName"> & {
  finishedAt?: Date | undefined;
  durationMs?: number | undefined;
};

function record(draft: Draft, jobName: string, r: Recording): void {
  const { finishedAt, durationMs, ...fields } = r;
  const time = toTimestamp(finishedAt ?? draft.now);
  draft.backup.lastDrill = { time, jobName, ...fields };
  const state = draft.state;
  state.currentJob = null;
  state.lastRecordedJob = jobName;
  const what = r.key === undefined ? "" : ` of ${r.key}`;
  if (r.outcome === "failed") {
    state.consecutiveFailures = (state.consecutiveFailures ?? 0) + 1;
    draft.events.push({
      type: "Warning",
      reason: EventReason.DrillFailed,
      message: `restore drill${what} failed (${r.reason ?? FailureReason.JobFailed}): ${r.message}`,
    });
  } else {
    state.consecutiveFailures = 0;
    state.lastSuccessTime = time;
    draft.events.push({
      type: "Normal",
      reason: EventReason.DrillSucceeded,
      message: `restore drill${what}: ${r.outcome} — ${r.message}`,
    });
  }
  draft.recorded = { outcome: r.outcome, reason: r.reason, durationMs };
}

interface StartInput {
  readonly schedule: Schedule;
  readonly observedAt: Date;
  readonly suspended: boolean;
  readonly trigger: string | undefined;
  readonly resolved: ResolvedBackupSpec;
  readonly drill: DrillSpec;
  readonly image: string;
  /** `status.backup.lastBackupSize`: the throwaway's memory and disk requests follow it. */
  readonly lastBackupSize: number | undefined;
}

/** Step 2: a manual request, else the due window — unless a drill is already in flight. */
function start(draft: Draft, input: StartInput): void {
  const { now, obs, state } = draft;
  const current = state.currentJob;
  if (current) {
    // A request while a drill runs waits for it (one drill at a time); it stays pending.
    if (draft.recreate) {
      draft.createJob = jobRequest(current.name, current.type, fromTimestamp(current.window), undefined, input);
    }
    return;
  }
  const clusterName = obs.cluster.metadata.name ?? "";
  let type: DrillJobRequest["type"];
  let window: Date | undefined;
  if (input.trigger !== undefined) {
    type = "manual";
    window = undefined;
  } else {
    if (input.suspended) return;
    const due = dueWindow({
      schedule: input.schedule,
      now,
      lastAttemptScheduledTime: fromTimestamp(state.lastAttemptScheduledTime),
      scheduleObservedAt: input.observedAt,
    });
    if (!due.due) return;
    type = "scheduled";
    window = due.window;
  }
  const name = drillJobName(clusterName, window ?? now);
  if (obs.jobs.some((j) => j.name === name)) {
    // A Job of this name exists and is not in flight: this window (or second) already ran.
    if (window) state.lastAttemptScheduledTime = toTimestamp(window);
    else draft.requeue.push(1000);
    return;
  }
  if (window) state.lastAttemptScheduledTime = toTimestamp(window);
  state.currentJob = {
    name,
    type,
    ...(window ? { window: toTimestamp(window) } : {}),
    createdAt: toTimestamp(now),
  };
  draft.createJob = jobRequest(name, type, window, input.trigger, input);
  if (type === "manual") {
    draft.clearTrigger = true;
    draft.events.push({
      type: "Normal",
      reason: EventReason.ManualDrillRequested,
      message: `restore drill requested (${Annotation.TriggerDrill}=${input.trigger ?? ""})`,
    });
  }
  draft.events.push({
    type: "Normal",
    reason: EventReason.DrillJobCreated,
    message: `created drill Job ${name}: ${draft.createJob.drill.key} into a throwaway ${input.image}`,
  });
}

function jobRequest(
  name: string,
  type: DrillJobRequest["type"],
  window: Date | undefined,
  trigger: string | undefined,
  input: StartInput,
): DrillJobRequest {
  const drill = input.drill;
  return {
    name,
    type,
    window,
    trigger,
    spec: input.resolved,
    activeDeadlineSeconds: drill.activeDeadlineSeconds ?? defaults.activeDeadlineSeconds,
    drill: {
      openbaoImage: input.image,
      key: requestedDrillKey(trigger) ?? drill.key ?? defaults.drillKey,
      unsealKeysSecret: drill.unsealKeysSecretRef?.name,
      sealConfigSecret: drill.sealConfigSecretRef?.name,
      canaryPath: drill.canaryPath,
      openbaoResources: drill.openbaoResources,
      snapshotSize: input.lastBackupSize,
    },
  };
}

/** Step 3, `RestoreVerified` from the last drill and the schedule (see conditionReasons in constants.ts). */
function health(draft: Draft, schedule: Schedule, observedAt: Date, suspended: boolean): void {
  const last = draft.backup.lastDrill;
  const since = fromTimestamp(draft.state.lastSuccessTime) ?? observedAt;
  const stale = !suspended && countWindows(schedule, since, draft.now, 2) >= 2;
  if (last === undefined || fromTimestamp(last.time) === undefined) {
    if (stale) {
      setRestoreVerified(
        draft,
        "False",
        Reason.DrillStale,
        `no restore drill has finished since the drill schedule was set (${toTimestamp(observedAt)}) although two windows passed; look at the drill Jobs and the DrillFailed / DrillInvalid events`,
      );
    } else {
      setRestoreVerified(draft, "Unknown", Reason.NoDrillYet, "no restore drill has finished yet");
    }
    return;
  }
  if (last.outcome === "failed") {
    setRestoreVerified(
      draft,
      "False",
      Reason.DrillFailed,
      `the restore drill at ${last.time}${last.key ? ` of ${last.key}` : ""} failed (${last.reason ?? FailureReason.JobFailed}): ${last.message}`,
    );
    return;
  }
  if (stale) {
    setRestoreVerified(
      draft,
      "False",
      Reason.DrillStale,
      `no restore drill has passed since ${toTimestamp(since)} although two drill windows passed`,
    );
    return;
  }
  const reason = last.outcome === "verified" ? Reason.DrillVerified : Reason.DrillLoaded;
  setRestoreVerified(draft, "True", reason, `${last.key ?? "the backup"} at ${last.time}: ${last.message}`);
}
