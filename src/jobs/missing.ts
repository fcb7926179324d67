/**
 * What a planner does about a Job it recorded as in flight (a backup's `currentJob`, its
 * confirm Job, a restore's Job, a drill's `currentJob`) that the cache does not show: one
 * decision for every manager, a pure function of what this process knows about the Job and
 * the clock.
 *
 * The status write that names a Job precedes its create, so a Job can be missing because
 * (a) the create has not happened (the operator stopped in between, or the create failed),
 * (b) it happened and the cache has not caught up yet (seconds), or (c) the Job ran and is
 * gone: its TTL collected it, or a person deleted it, while nobody recorded it. Only (a) may
 * be answered by creating it (again): doing that in case (c) runs the backup, restore or drill
 * a second time under the same name, and the first run's outcome — a failure, say — is never
 * recorded (a Job deleted by a 60 s TTL while the leader changed was re-created, and its
 * failure silently replaced by a second attempt). So:
 * - a Job this process saw in its cache, or created itself, is never created again: seen and
 *   gone is lost now; created and not seen yet waits out the grace for the cache, then is lost;
 * - a Job this process knows nothing of (it started after the status write) is created within
 *   the grace, which is kept below half the Job TTL: a Job the TTL collected finished at least
 *   a TTL after it was created, so it is always past the grace — lost, never re-run.
 * "Lost" is each planner's own path: a backup looks in storage before recording JobLost.
 */

/** What this process knows of a Job it did not find in the cache. */
export type JobSighting =
  /** This process created it (or was told it already exists): it may not be cached yet. */
  | "created"
  /** This process saw it in its cache: if it is not there now, it was deleted. */
  | "observed";

export type MissingJob =
  /** Create it under its recorded name (an AlreadyExists is fine), and look again in `recheckMs`. */
  | { readonly action: "create"; readonly recheckMs: number }
  /** Created by this process, not cached yet: look again in `recheckMs`. */
  | { readonly action: "wait"; readonly recheckMs: number }
  /** Gone (seen, then vanished), or past the grace, or not creatable: the planner's lost path. */
  | { readonly action: "lost" };

/** The longest wait for a Job that was decided but is not visible (cache lag is seconds). */
export const maxJobCreateGraceMs = 120_000;

/**
 * The grace for a Job decided but not visible: `maxJobCreateGraceMs`, or less than half the
 * Job TTL when that is shorter, so a Job the TTL controller collected is always past it.
 */
export function jobCreateGraceMs(ttlSeconds: number | undefined): number {
  if (ttlSeconds === undefined) return maxJobCreateGraceMs;
  return Math.min(maxJobCreateGraceMs, Math.floor((ttlSeconds * 1000) / 2));
}

export interface MissingJobInput {
  /** When the Job was decided (the status write that names it). */
  readonly decidedAt: Date | undefined;
  readonly now: Date;
  readonly sighting: JobSighting | undefined;
  readonly graceMs: number;
  /** Whether the Job can be created at all (its spec resolves, its lock can be held). */
  readonly creatable: boolean;
}

export function decideMissingJob(input: MissingJobInput): MissingJob {
  if (input.sighting === "observed") return { action: "lost" };
  const age = input.now.getTime() - (input.decidedAt?.getTime() ?? 0);
  const recheckMs = input.graceMs - age;
  if (recheckMs <= 0) return { action: "lost" };
  if (input.sighting === "created") return { action: "wait", recheckMs };
  return input.creatable ? { action: "create", recheckMs } : { action: "lost" };
}
