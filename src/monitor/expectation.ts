/**
 * Since when, and how often, a cluster's backups are expected — decided from the spec, the
 * status the operator last wrote and a clock, so the monitor needs no live operator.
 */
import { fromTimestamp } from "../api/predicates.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import { backupIntervalSeconds } from "../backup/schedule.ts";

export interface Expectation {
  /** Undefined while the schedule is suspended or invalid: nothing is expected then. */
  readonly intervalSeconds: number | undefined;
  readonly expectedSince: Date;
}

/**
 * `firstSeen` is when this process first saw the current schedule; it is used only when the
 * operator's `observedSchedule` is for another schedule (changed while the operator was not
 * reconciling), so a new schedule is never judged from before it existed.
 */
export function expectationOf(cluster: OpenBaoCluster, now: Date, firstSeen: Date): Expectation | undefined {
  const spec = cluster.spec?.backup;
  if (!spec) return undefined;
  const intervalSeconds = backupIntervalSeconds(spec, now);
  const observed = cluster.status?.backup?.observedSchedule;
  const timeZone = spec.timeZone ?? "UTC";
  let expectedSince: Date;
  if (observed === undefined) {
    // The operator never wrote it (never ran, or not yet): the cluster has wanted backups since it exists.
    expectedSince = fromTimestamp(cluster.metadata.creationTimestamp) ?? firstSeen;
  } else if (observed.schedule === spec.schedule && observed.timeZone === timeZone) {
    expectedSince = fromTimestamp(observed.observedTime) ?? firstSeen;
  } else {
    expectedSince = firstSeen;
  }
  return { intervalSeconds, expectedSince };
}
