/**
 * The pre-upgrade snapshot: the rollback point of one upgrade. Decisions only (pure functions
 * over status, spec and a clock); plan.ts applies them.
 *
 * An *episode* is one pending upgrade, from `status.currentVersion` to `spec.version`, from
 * the pass that first saw it until the pass that sees no upgrade pending (it completed, or
 * `spec.version` went back). A rollback point belongs to exactly one episode (issue 15,
 * defect 1): a new episode — even to the same version, days after a revert — starts with no
 * attempts and no snapshot, and its Jobs are named after the episode, so an old Job of a
 * previous episode (kept by the Job TTL) is never adopted. The record of the last episode stays
 * in `status.backup.preUpgrade` (with `endedAt`) so its key is still there to roll back to.
 *
 * Attempts are spaced (defect 2): after a failed attempt the next waits `retryBackoffMs`,
 * shown in `nextAttemptTime`, so a storage blip of a few minutes does not use all three.
 *
 * The lock protocol for lifecycle operators (defect 3, docs/lifecycle-operators.md) is decided
 * in src/lock/lock.ts: the snapshot runs under the Backup lock, which the operator takes and
 * releases, or under the lifecycle operator's Upgrade lock when it already holds it (shared:
 * neither replaced nor released); a restore holding the lock blocks it, as it blocks every backup.
 */
import { limits } from "../api/constants.ts";
import { fromTimestamp, toTimestamp } from "../api/predicates.ts";
import type { OpenBaoCluster, PreUpgradeStatus } from "../api/types.ts";

/** Wait before attempt n+1 after attempt n failed: 2 min, then 8 min (three attempts span ≥ 10 min). */
export function retryBackoffMs(attemptsUsed: number): number {
  return 2 * 60_000 * 4 ** Math.max(0, attemptsUsed - 1);
}

/**
 * The episode's state for this pass: `before` when it is the same pending upgrade, else a
 * fresh one started `now`. Only call while an upgrade is pending (`wantsPreUpgradeSnapshot`).
 */
export function currentEpisode(
  cluster: Pick<OpenBaoCluster, "spec" | "status"> & { metadata?: { generation?: number } },
  before: PreUpgradeStatus | undefined,
  now: Date,
): PreUpgradeStatus {
  const targetVersion = cluster.spec?.version ?? "";
  const fromVersion = cluster.status?.currentVersion ?? "";
  const same =
    before !== undefined &&
    before.endedAt === undefined &&
    before.targetVersion === targetVersion &&
    (before.fromVersion === undefined || before.fromVersion === fromVersion);
  if (same) return before;
  const generation = cluster.metadata?.generation;
  return {
    targetVersion,
    fromVersion,
    startedAt: toTimestamp(now),
    ...(generation === undefined ? {} : { startedGeneration: generation }),
    phase: "Pending",
    attempts: 0,
  };
}

/**
 * No upgrade is pending: the episode is over. A finished record is kept, marked ended; a Job
 * still running keeps it open until its result is recorded.
 */
export function endEpisode(before: PreUpgradeStatus | undefined, now: Date): PreUpgradeStatus | undefined {
  if (before === undefined || before.endedAt !== undefined || before.phase === "Running") return before;
  const { nextAttemptTime: _dropped, ...rest } = before;
  return { ...rest, endedAt: toTimestamp(now) };
}

/** The string a pre-upgrade Job name is derived from: the episode, so no two episodes share a name. */
export function jobNameSeed(pu: PreUpgradeStatus): string {
  // Records written before episodes existed have no startedAt: their in-flight Job keeps its name.
  // Two episodes may start within one second (a fast revert and retry): the generation of the
  // spec change that started each keeps them apart.
  return pu.startedAt === undefined
    ? pu.targetVersion
    : `${pu.fromVersion ?? ""}>${pu.targetVersion}@${pu.startedAt}#${pu.startedGeneration ?? ""}`;
}

export type AttemptDecision = { readonly attempt: true } | { readonly attempt: false; readonly retryInMs?: number };

/** Whether an attempt may start now. */
export function attemptNow(pu: PreUpgradeStatus, now: Date): AttemptDecision {
  if (pu.phase === "Succeeded" || pu.phase === "Running" || pu.phase === "Failed") return { attempt: false };
  if (pu.attempts >= limits.preUpgradeMaxAttempts) return { attempt: false };
  const next = fromTimestamp(pu.nextAttemptTime);
  if (next !== undefined && next.getTime() > now.getTime()) {
    return { attempt: false, retryInMs: next.getTime() - now.getTime() };
  }
  return { attempt: true };
}

/** The record after an attempt failed: Failed when none is left, else Pending until `nextAttemptTime`. */
export function afterFailedAttempt(pu: PreUpgradeStatus, finishedAt: Date): PreUpgradeStatus {
  if (pu.attempts >= limits.preUpgradeMaxAttempts) {
    const { nextAttemptTime: _dropped, ...rest } = pu;
    return { ...rest, phase: "Failed" };
  }
  return {
    ...pu,
    phase: "Pending",
    nextAttemptTime: toTimestamp(new Date(finishedAt.getTime() + retryBackoffMs(pu.attempts))),
  };
}

/** The record when attempt `attempt` starts as `jobName`. */
export function attemptStarted(pu: PreUpgradeStatus, attempt: number, jobName: string): PreUpgradeStatus {
  const { nextAttemptTime: _dropped, ...rest } = pu;
  return { ...rest, phase: "Running", attempts: attempt, jobName };
}
