/**
 * The retention planner (SPEC §4, §5 traps 1 and 2): given the complete, paginated listing of
 * a cluster's prefix, decide which objects to delete. Pure: the clock is `ctx.now`, nothing is
 * read or deleted here.
 *
 * Invariants, each covered by a test:
 * - only scheduled snapshots of this cluster in the standard key format are candidates;
 *   pre-upgrade snapshots, other clusters' objects and anything unrecognised are never deleted;
 * - age comes from the timestamp in the key (the run's start), never from `lastModified`;
 * - the newest candidate and the key just written are never deleted, whatever the policy;
 * - `maxCount` keeps the N newest; `maxAge` deletes what is strictly older than the age;
 *   with both, an object is deleted when either says so; with neither, nothing is deleted;
 * - a deleted snapshot's manifest is deleted with it; a kept snapshot's manifest is kept;
 *   a manifest whose snapshot is not in the listing is left alone;
 * - every listed object appears exactly once in `keep`, `delete` or `ignored`.
 *
 * Order of deletion: `delete` lists, oldest first, each snapshot's manifest immediately before
 * the snapshot. Performing them in that order means a failure part-way never leaves an orphan
 * manifest (which retention would then never clean up); a snapshot left without its manifest
 * is still a candidate and is deleted by the next run.
 */
import { RetentionPolicyError } from "./errors.ts";
import { type ClusterLocation, createKeyParser, type ParsedKey, snapshotKeyOfManifest } from "./key.ts";

export interface ListedObject {
  key: string;
  size?: number;
  /** Ignored by design: age comes from the key (SPEC §5 trap 2). Accepted so listings pass straight in. */
  lastModified?: Date;
}

export interface RetentionPolicy {
  /** Keep at most this many scheduled snapshots (integer ≥ 1). */
  maxCount?: number;
  /** Delete scheduled snapshots older than this many milliseconds (> 0). */
  maxAgeMs?: number;
}

export interface RetentionContext extends ClusterLocation {
  /**
   * The key this run has just written and verified. Never deleted; counted as present even
   * if an eventually consistent listing does not show it yet. A key outside the standard
   * format (a custom `BACKUP_KEY`) protects nothing and is simply not a candidate.
   */
  justWritten: string;
  now: Date;
}

export type KeepReason = "newest" | "just-written" | "within-policy" | "manifest-of-kept";
export type DeleteReason = "max-count" | "max-age";
export type IgnoreReason = "pre-upgrade" | "orphan-manifest" | "foreign";

export interface KeepDecision {
  key: string;
  object: "snapshot" | "manifest";
  reason: KeepReason;
}

export interface DeleteDecision {
  key: string;
  object: "snapshot" | "manifest";
  /** For a manifest, the reason its snapshot is deleted. */
  reason: DeleteReason;
  /** The snapshot this object belongs to (the key itself for a snapshot). */
  snapshot: string;
}

export interface IgnoreDecision {
  key: string;
  reason: IgnoreReason;
}

export interface RetentionPlan {
  /** Newest first. */
  keep: KeepDecision[];
  /** Oldest first; each manifest just before its snapshot. Perform in this order. */
  delete: DeleteDecision[];
  /** In listing order. */
  ignored: IgnoreDecision[];
  /** The newest scheduled snapshot (never deleted), or null when there is none. */
  newest: string | null;
}

interface Candidate {
  key: string;
  parsed: ParsedKey;
  listed: boolean;
}

/** Throws `RetentionPolicyError` for values the planner cannot apply safely. */
export function validateRetentionPolicy(policy: RetentionPolicy): void {
  const { maxCount, maxAgeMs } = policy;
  if (maxCount !== undefined && (!Number.isSafeInteger(maxCount) || maxCount < 1)) {
    throw new RetentionPolicyError("maxCount", `must be a whole number of at least 1, got ${maxCount}`);
  }
  if (maxAgeMs !== undefined && (!Number.isFinite(maxAgeMs) || maxAgeMs <= 0)) {
    throw new RetentionPolicyError("maxAge", `must be a duration greater than zero, got ${maxAgeMs} ms`);
  }
}

export function planRetention(
  objects: readonly ListedObject[],
  policy: RetentionPolicy,
  ctx: RetentionContext,
): RetentionPlan {
  validateRetentionPolicy(policy);
  const now = ctx.now.getTime();
  if (!Number.isFinite(now)) throw new RangeError("planRetention: ctx.now is not a valid date");
  const parse = createKeyParser(ctx);

  // Classify each distinct listed key (pages can overlap; a key is decided once).
  const position = new Map<string, number>();
  const candidates = new Map<string, Candidate>();
  const manifests: { key: string; snapshot: string; kind: ParsedKey["kind"] }[] = [];
  const ignored: IgnoreDecision[] = [];
  for (const { key } of objects) {
    if (position.has(key)) continue;
    position.set(key, position.size);
    const parsed = parse(key);
    if (parsed?.kind === "scheduled") {
      candidates.set(key, { key, parsed, listed: true });
      continue;
    }
    if (parsed?.kind === "pre-upgrade") {
      ignored.push({ key, reason: "pre-upgrade" });
      continue;
    }
    const snapshot = snapshotKeyOfManifest(key);
    const owner = snapshot === null ? null : parse(snapshot);
    if (snapshot !== null && owner !== null) {
      manifests.push({ key, snapshot, kind: owner.kind });
      continue;
    }
    ignored.push({ key, reason: "foreign" });
  }

  const justWritten = parse(ctx.justWritten);
  if (justWritten?.kind === "scheduled" && !candidates.has(ctx.justWritten)) {
    candidates.set(ctx.justWritten, { key: ctx.justWritten, parsed: justWritten, listed: false });
  }

  // Newest first; same second → higher key first, so the order is total and deterministic.
  const ordered = [...candidates.values()].sort(
    (a, b) => b.parsed.time.getTime() - a.parsed.time.getTime() || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0),
  );

  const fate = new Map<string, { keep: KeepReason } | { delete: DeleteReason }>();
  ordered.forEach((candidate, position) => {
    fate.set(candidate.key, decide(candidate, position, policy, ctx.justWritten, now));
  });

  const manifestOf = new Map<string, string>();
  for (const manifest of manifests) {
    const owner = fate.get(manifest.snapshot);
    if (manifest.kind === "pre-upgrade") {
      ignored.push({ key: manifest.key, reason: "pre-upgrade" });
    } else if (owner === undefined) {
      ignored.push({ key: manifest.key, reason: "orphan-manifest" });
    } else {
      manifestOf.set(manifest.snapshot, manifest.key);
    }
  }

  const keep: KeepDecision[] = [];
  const deletions: DeleteDecision[] = [];
  for (const candidate of ordered) {
    const decision = fate.get(candidate.key);
    const manifest = manifestOf.get(candidate.key);
    if (decision === undefined) continue;
    if ("keep" in decision) {
      if (candidate.listed) keep.push({ key: candidate.key, object: "snapshot", reason: decision.keep });
      if (manifest !== undefined) keep.push({ key: manifest, object: "manifest", reason: "manifest-of-kept" });
    } else {
      // Collected newest first, reversed below; push the snapshot first so the manifest precedes it.
      deletions.push({ key: candidate.key, object: "snapshot", reason: decision.delete, snapshot: candidate.key });
      if (manifest !== undefined) {
        deletions.push({ key: manifest, object: "manifest", reason: decision.delete, snapshot: candidate.key });
      }
    }
  }
  deletions.reverse();
  ignored.sort((a, b) => (position.get(a.key) ?? 0) - (position.get(b.key) ?? 0));

  return { keep, delete: deletions, ignored, newest: ordered[0]?.key ?? null };
}

function decide(
  candidate: Candidate,
  position: number,
  policy: RetentionPolicy,
  justWritten: string,
  now: number,
): { keep: KeepReason } | { delete: DeleteReason } {
  if (position === 0) return { keep: "newest" };
  if (candidate.key === justWritten) return { keep: "just-written" };
  if (policy.maxCount !== undefined && position >= policy.maxCount) return { delete: "max-count" };
  if (policy.maxAgeMs !== undefined && now - candidate.parsed.time.getTime() > policy.maxAgeMs) {
    return { delete: "max-age" };
  }
  return { keep: "within-policy" };
}
