/**
 * Crash points for the fault-injection tests (RELIABILITY.md): the operator started with
 * `BAO_BACKUP_CRASH_AT=<point>[,<point>…]` SIGKILLs itself the first time it reaches one of
 * those points, so a test can stop it between two specific API writes — something a signal
 * sent from outside can only hit by luck. Unset (always, in a real deployment) this is a Set
 * lookup and nothing else.
 */
export const crashPoints = [
  /** The status write that takes the operation lock has succeeded; no Job exists yet. */
  "backup.after-lock",
  /** The Job has been created; the trigger annotation has not been cleared. */
  "backup.after-job-created",
  /** A finished Job has been observed; its result has not been written to status. */
  "backup.before-result-recorded",
] as const;

export type CrashPoint = (typeof crashPoints)[number];

const armed: ReadonlySet<string> = new Set(
  (process.env.BAO_BACKUP_CRASH_AT ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== ""),
);

export function crashPoint(point: CrashPoint): void {
  if (armed.has(point)) process.kill(process.pid, "SIGKILL");
}
