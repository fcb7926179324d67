/**
 * Results whose status write went out but whose answer never came back (a connection reset,
 * the API server stopping mid-request). Such a write may have applied: the next pass then
 * finds the result already recorded and plans nothing to record, so a counter that moved only
 * on a write's success would miss that Job for good. This keeps the outcome until the cluster
 * is seen again and settles it once:
 *
 * - the cluster shows the Job as `lastRecordedJob` → the write applied: count it now;
 * - a later write that records a result succeeds → that write counts (it is this Job again
 *   when the lost write did not apply, or a later one after it did and was confirmed): drop it.
 *
 * A conflict (409) is a definite "not applied" and never lands here: the caller re-plans.
 */
import type { RecordedOutcome } from "./plan.ts";

interface Unconfirmed {
  readonly job: string;
  readonly outcome: RecordedOutcome;
}

export class UnconfirmedResults {
  readonly #byCluster = new Map<string, Unconfirmed>();

  /** The write recording `job`'s `outcome` for cluster `key` failed without an answer. */
  lost(key: string, job: string, outcome: RecordedOutcome): void {
    this.#byCluster.set(key, { job, outcome });
  }

  /**
   * The cluster as observed now: the outcome to count if it shows the lost write applied
   * (returned once, then forgotten); undefined otherwise.
   */
  confirmed(key: string, lastRecordedJob: string | undefined): RecordedOutcome | undefined {
    const entry = this.#byCluster.get(key);
    if (entry === undefined || entry.job !== lastRecordedJob) return undefined;
    this.#byCluster.delete(key);
    return entry.outcome;
  }

  /** A write that records a result succeeded (and is counted by the caller), or the cluster is gone. */
  settled(key: string): void {
    this.#byCluster.delete(key);
  }

  get size(): number {
    return this.#byCluster.size;
  }
}
