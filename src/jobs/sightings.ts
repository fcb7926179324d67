/**
 * The act layer's memory of the Jobs it is waiting for (src/jobs/missing.ts says why it
 * matters): per owner (a cluster or a restore, by cache key), which of the Jobs its status
 * names this process created or saw in its cache. Only the names a pass asks about are kept,
 * so the memory is bounded by the Jobs in flight. It starts empty in every process: a new
 * leader knows nothing, which is what the create grace is for.
 */
import type { JobSighting } from "./missing.ts";

export class JobSightings {
  readonly #byOwner = new Map<string, Map<string, JobSighting>>();

  /**
   * Before a pass plans: keeps only `inFlight` (the Job names the owner's status records),
   * marks those `visible` in the cache as observed, and returns what is known of each.
   */
  track(owner: string, inFlight: readonly string[], visible: readonly string[]): ReadonlyMap<string, JobSighting> {
    const before = this.#byOwner.get(owner);
    const now = new Map<string, JobSighting>();
    for (const name of inFlight) {
      const known = visible.includes(name) ? "observed" : before?.get(name);
      if (known !== undefined) now.set(name, known);
    }
    if (now.size === 0) this.#byOwner.delete(owner);
    else this.#byOwner.set(owner, now);
    return now;
  }

  /** After a create answered (created, or AlreadyExists): a Job this process will not create again. */
  created(owner: string, name: string): void {
    const known = this.#byOwner.get(owner) ?? new Map<string, JobSighting>();
    if (known.get(name) !== "observed") known.set(name, "created");
    this.#byOwner.set(owner, known);
  }

  /** The owner is gone. */
  forget(owner: string): void {
    this.#byOwner.delete(owner);
  }
}
