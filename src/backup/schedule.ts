/**
 * Cron windows for `spec.backup.schedule` in `spec.backup.timeZone` (SPEC §2–§3), pure: the
 * clock is always a parameter.
 *
 * Semantics, decided once here:
 * - A *window* is an instant at which the schedule fires. Windows are computed by croner in
 *   the schedule's time zone with standard cron rules: day-of-month and day-of-week are ORed
 *   when both are restricted, `7` is Sunday.
 * - DST: a fixed-time schedule (no `*` or step in the minute and hour fields, e.g.
 *   `30 2 * * *`) whose time falls into a spring-forward gap runs at the first instant after
 *   the gap, and runs once when the time occurs twice in autumn; an interval schedule
 *   (every 30 minutes) skips wall-clock times that do not exist and fires on both passes of a
 *   repeated hour — Vixie cron's rule. Either way each window is a distinct instant, so
 *   "at most once per window" holds through DST.
 * - `dueWindow`: a window is due when it is at or before `now`, strictly after the last
 *   attempted window, and strictly after the moment the current schedule was first observed.
 *   Only the latest such window runs: windows missed while the operator was down collapse
 *   into one catch-up run (the count is reported for an Event). A new cluster, a changed
 *   schedule or a lifted suspend resets the observation time, so none of them backs up at
 *   once: the first run is the next window.
 */
import { Cron } from "croner";
import { cronSchedulePattern, jsRegExp, timeZonePattern } from "../api/patterns.ts";
import { ConfigLayerError } from "../util/coded-error.ts";

const cronShape = jsRegExp(cronSchedulePattern);
const zoneShape = jsRegExp(timeZonePattern);

/** How far ahead a schedule must fire at least once (`0 0 29 2 *` fires every 4 years, `0 0 31 2 *` never). */
const horizonYears = 8;
/** Counting missed windows stops here ("more than 1000"): a `* * * * *` schedule after a month offline. */
export const maxCountedWindows = 1000;

/** Whose schedule: backups' or restore drills' (`spec.backup.drill`); error messages name its fields. */
export type ScheduleOwner = "spec.backup" | "spec.backup.drill";
export type ScheduleField = `${ScheduleOwner}.schedule` | `${ScheduleOwner}.timeZone`;

/** A schedule or time zone that cannot be used. The message names the field and the fix. */
export class ScheduleError extends ConfigLayerError<"InvalidSchedule"> {
  readonly field: ScheduleField;
  readonly value: string;

  readonly problem: string;

  constructor(field: ScheduleField, value: string, problem: string) {
    super("InvalidSchedule", `${field}: ${JSON.stringify(value)} ${problem}`);
    this.field = field;
    this.value = value;
    this.problem = problem;
  }

  /** The same problem, named for `owner`'s fields (a cached error may have been made for the other owner). */
  for(owner: ScheduleOwner): ScheduleError {
    const field: ScheduleField = this.field.endsWith(".timeZone") ? `${owner}.timeZone` : `${owner}.schedule`;
    return field === this.field ? this : new ScheduleError(field, this.value, this.problem);
  }
}

/** A parsed schedule. Holds no timer: croner is used as a calculator only. */
export interface Schedule {
  readonly expression: string;
  readonly timeZone: string;
  /** @internal */
  readonly cron: Cron;
}

function zoneExists(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses `spec.backup.schedule` in `spec.backup.timeZone` (default UTC). Applies the same
 * shape rules as the CRD (five fields or a nickname, no seconds, no `?`/`L`/`W`/`#`), then what
 * admission cannot check: the zone exists in the tz database, steps and ranges fit their
 * field, and the schedule fires at all. Throws `ScheduleError`.
 */
export function parseSchedule(expression: string, timeZone = "UTC", owner: ScheduleOwner = "spec.backup"): Schedule {
  // Every reconcile of every cluster parses its schedule; with 1,000 clusters the zone lookup
  // and croner's pattern parsing were the operator's largest CPU cost in a burst. A parsed
  // Schedule is immutable in use (its paused Cron is only asked nextRun/previousRuns with an
  // explicit reference time), so one per (zone, expression) serves every caller.
  const key = `${timeZone}\n${expression}`;
  let entry = parsedSchedules.get(key);
  if (entry === undefined) {
    try {
      entry = parseScheduleUncached(expression, timeZone);
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      entry = err;
    }
    if (parsedSchedules.size >= maxParsedSchedules) parsedSchedules.clear();
    parsedSchedules.set(key, entry);
  }
  if (entry instanceof ScheduleError) throw entry.for(owner);
  return entry;
}

const parsedSchedules = new Map<string, Schedule | ScheduleError>();
const maxParsedSchedules = 4096;

function parseScheduleUncached(expression: string, timeZone: string): Schedule {
  if (!cronShape.test(expression)) {
    throw new ScheduleError(
      "spec.backup.schedule",
      expression,
      'must be five cron fields (minute hour day-of-month month day-of-week, e.g. "0 3 * * *") or one of @hourly, @daily, @weekly, @monthly, @yearly',
    );
  }
  if (!zoneShape.test(timeZone) || timeZone === "Local" || !zoneExists(timeZone)) {
    throw new ScheduleError(
      "spec.backup.timeZone",
      timeZone,
      'is not a time zone of the IANA tz database; use a name such as "UTC", "Europe/Berlin" or "America/New_York"',
    );
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, {
      timezone: timeZone,
      paused: true,
      mode: "5-part",
      // Vixie cron's DST rule: lists and ranges of fixed times are fixed-time jobs too.
      fixedTimeRule: "no-wildcard",
      domAndDow: false,
    });
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^CronPattern: /, "") : String(err);
    throw new ScheduleError("spec.backup.schedule", expression, `is not a valid cron schedule: ${detail}`);
  }
  const probe = new Date(Date.UTC(2000, 0, 1));
  const first = cron.nextRun(probe);
  if (first === null || first.getTime() > probe.getTime() + horizonYears * 366 * 24 * 3600 * 1000) {
    throw new ScheduleError(
      "spec.backup.schedule",
      expression,
      "never fires (no such date, e.g. 31 February); choose a day that exists",
    );
  }
  return { expression, timeZone, cron };
}

/** The latest window at or before `now`, or null when the schedule never fired before. */
export function lastWindowAtOrBefore(schedule: Schedule, now: Date): Date | null {
  // croner's previousRuns excludes a run exactly at the reference instant; windows are whole
  // seconds, so looking from 1 ms later includes it and nothing else.
  const [previous] = schedule.cron.previousRuns(1, new Date(now.getTime() + 1));
  return previous ?? null;
}

/** The first window strictly after `t`, or null when there is none. */
export function nextWindowAfter(schedule: Schedule, t: Date): Date | null {
  return schedule.cron.nextRun(t);
}

/**
 * How many windows lie in (`after`, `atOrBefore`], counting up to `cap`. Used for the number of
 * windows a catch-up run collapses and for staleness.
 */
export function countWindows(schedule: Schedule, after: Date, atOrBefore: Date, cap = maxCountedWindows): number {
  let count = 0;
  let cursor = after;
  while (count < cap) {
    const next = schedule.cron.nextRun(cursor);
    if (next === null || next.getTime() > atOrBefore.getTime()) break;
    count += 1;
    cursor = next;
  }
  return count;
}

export interface DueWindowInput {
  schedule: Schedule;
  now: Date;
  /** `status.backup.lastAttemptScheduledTime`: the window last attempted, if any. */
  lastAttemptScheduledTime?: Date | undefined;
  /**
   * Since when the current schedule applies (`status.backup.observedSchedule.observedTime`, see
   * `observeSchedule`): the cluster's first sight of it, its last change, or when suspend was
   * lifted. Windows at or before this instant are never due.
   */
  scheduleObservedAt: Date;
}

export type ScheduleDecision =
  | {
      due: true;
      /** The window to run now (the Job is named after it). */
      window: Date;
      /** Earlier windows collapsed into this run (0 normally; up to `maxCountedWindows`). */
      skippedWindows: number;
      /** The window after this one: `status.backup.nextScheduledBackup` and the next timer. */
      next: Date | null;
    }
  | {
      due: false;
      /** The next window: `status.backup.nextScheduledBackup` and the next timer. */
      next: Date | null;
    };

/**
 * Whether a scheduled backup is due now, and for which window (see the module comment).
 * Pure and idempotent: the same input gives the same window however often it is asked, so
 * a Job named after the window (`backupJobName`) is created at most once per window.
 */
export function dueWindow(input: DueWindowInput): ScheduleDecision {
  const { schedule, now, lastAttemptScheduledTime, scheduleObservedAt } = input;
  const next = nextWindowAfter(schedule, now);
  const latest = lastWindowAtOrBefore(schedule, now);
  if (latest === null) return { due: false, next };

  let floor = scheduleObservedAt.getTime();
  if (lastAttemptScheduledTime !== undefined) floor = Math.max(floor, lastAttemptScheduledTime.getTime());
  if (latest.getTime() <= floor) return { due: false, next };

  const skippedWindows = countWindows(schedule, new Date(floor), latest) - 1;
  return { due: true, window: latest, skippedWindows: Math.max(0, skippedWindows), next };
}

/**
 * SPEC §3 `BackupHealthy`: the last good backup is stale when at least two windows have
 * passed since it (`since` is the last successful backup, or when the schedule was first
 * observed if there never was one). Counting windows, not a fixed interval, keeps this right
 * for irregular schedules such as weekdays only.
 */
export function isBackupStale(schedule: Schedule, since: Date, now: Date): boolean {
  return countWindows(schedule, since, now, 2) >= 2;
}

/** How many upcoming windows the schedule interval is measured over (its longest gap). */
export const intervalWindows = 8;

/**
 * The longest gap between consecutive windows among the next `intervalWindows` windows after
 * `now`, in seconds; undefined when the schedule has fewer than two more windows. Irregular
 * schedules (weekdays only) get their longest gap, so "N intervals" is never shorter than N
 * real gaps: alerts built on it can be late, never early.
 */
export function scheduleIntervalSeconds(schedule: Schedule, now: Date): number | undefined {
  let previous = nextWindowAfter(schedule, now);
  let longest: number | undefined;
  for (let i = 1; previous !== null && i < intervalWindows; i++) {
    const next = nextWindowAfter(schedule, previous);
    if (next === null) break;
    const gap = (next.getTime() - previous.getTime()) / 1000;
    if (longest === undefined || gap > longest) longest = gap;
    previous = next;
  }
  return longest;
}

/**
 * The schedule interval of a `spec.backup` (see `scheduleIntervalSeconds`); undefined while it
 * is suspended or its schedule is invalid, so nothing built on it can fire then.
 */
export function backupIntervalSeconds(
  spec: { readonly schedule: string; readonly timeZone?: string | undefined; readonly suspend?: boolean | undefined },
  now: Date,
): number | undefined {
  if (spec.suspend === true) return undefined;
  try {
    return scheduleIntervalSeconds(parseSchedule(spec.schedule, spec.timeZone ?? "UTC"), now);
  } catch (err) {
    if (err instanceof ScheduleError) return undefined;
    throw err;
  }
}
