/**
 * The retention planner (SPEC §4, §5 traps 1 and 2): given the complete, paginated listing of
 * a cluster's prefix, decide which objects to delete. Pure: the clock is `ctx.now`, nothing is
 * read or deleted here.
 *
 * A scheduled snapshot is *verified* when its manifest `<key>.json` is in the listing (it is
 * written only after the snapshot was verified) or it is `ctx.justWritten` (this run has just
 * verified it). A snapshot without a manifest is *unverified*: the leftover of a run that failed
 * after its upload, a snapshot whose manifest was deleted before its own delete failed, or a
 * run in progress that has not written its manifest yet.
 *
 * Invariants, each covered by a test:
 * - only scheduled snapshots of this cluster in the standard key format are candidates;
 *   pre-upgrade snapshots, other clusters' objects and anything unrecognised are never deleted;
 * - age comes from the timestamp in the key (the run's start), never from `lastModified`;
 * - only verified snapshots count: `maxCount` keeps the N newest verified ones, and `newest`
 *   is the newest verified one; an unverified snapshot never takes a slot;
 * - the newest verified snapshot and the key just written are never deleted, whatever the
 *   policy, and neither is an unverified snapshot newer than the newest verified one (or any
 *   unverified snapshot when none is verified): it may be a run writing its manifest now;
 * - `maxAge` deletes what is strictly older than the age; with both, an object is deleted when
 *   either says so; with neither, nothing is deleted. For an unverified snapshot older than
 *   the newest verified one, `maxCount` deletes it when it is older than every verified
 *   snapshot kept, and `maxAge` when it is strictly older than the age;
 * - an unverified snapshot that is kept is reported in `unverified`, never in `keep`;
 * - a deleted snapshot's manifest is deleted with it; a kept snapshot's manifest is kept;
 *   a manifest whose snapshot is not in the listing is left alone;
 * - every listed object appears exactly once in `keep`, `unverified`, `delete` or `ignored`.
 *
 * Order of deletion: `delete` lists, oldest first, each snapshot's manifest immediately before
 * the snapshot. Performing them in that order means a failure part-way never leaves an orphan
 * manifest (which retention would then never clean up); a snapshot left without its manifest
 * is unverified from then on, and the next run deletes it by the rule that deleted it here (it
 * is older than the newest verified snapshot, and older than the age or than every verified
 * snapshot kept).
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
/**
 * Why a snapshot without a manifest is kept: it is newer than the newest verified snapshot
 * (perhaps a run writing its manifest right now), there is no verified snapshot to compare it
 * with, or the policy does not delete it yet.
 */
export type UnverifiedReason = "newer-than-verified" | "no-verified" | "within-policy";

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
  /** Present on a snapshot without a manifest (never verified, or its manifest already gone). */
  unverified?: true;
}

export interface IgnoreDecision {
  key: string;
  reason: IgnoreReason;
}

export interface UnverifiedDecision {
  key: string;
  reason: UnverifiedReason;
}

export interface RetentionPlan {
  /** Verified snapshots and their manifests, newest first. */
  keep: KeepDecision[];
  /** Oldest first; each manifest just before its snapshot. Perform in this order. */
  delete: DeleteDecision[];
  /** In listing order. */
  ignored: IgnoreDecision[];
  /**
   * Snapshots without a manifest that are kept, newest first: they never count toward
   * `maxCount`; a person should look at them (`bao-backup verify`).
   */
  unverified: UnverifiedDecision[];
  /** The newest verified scheduled snapshot (never deleted), or null when there is none. */
  newest: string | null;
}

interface Candidate {
  key: string;
  parsed: ParsedKey;
  listed: boolean;
  verified: boolean;
}

type Fate = { keep: KeepReason } | { delete: DeleteReason } | { unverified: UnverifiedReason };

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
      candidates.set(key, { key, parsed, listed: true, verified: false });
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
    candidates.set(ctx.justWritten, { key: ctx.justWritten, parsed: justWritten, listed: false, verified: true });
  }
  const hasManifest = new Set(manifests.map((m) => m.snapshot));
  for (const candidate of candidates.values()) {
    candidate.verified = candidate.key === ctx.justWritten || hasManifest.has(candidate.key);
  }

  // Newest first; same second → higher key first, so the order is total and deterministic.
  const ordered = [...candidates.values()].sort(
    (a, b) => b.parsed.time.getTime() - a.parsed.time.getTime() || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0),
  );

  // Verified snapshots first: only they hold a slot, and they bound what an unverified one may lose.
  const rank = new Map(ordered.map((c, i) => [c.key, i]));
  const verified = ordered.filter((c) => c.verified);
  const fate = new Map<string, Fate>();
  let oldestKeptVerified = -1;
  verified.forEach((candidate, slot) => {
    const decision = decide(candidate, slot, policy, ctx.justWritten, now);
    fate.set(candidate.key, decision);
    if ("keep" in decision) oldestKeptVerified = rank.get(candidate.key) ?? -1;
  });
  const newestVerified = verified[0] === undefined ? undefined : rank.get(verified[0].key);
  ordered.forEach((candidate, index) => {
    if (!candidate.verified) {
      fate.set(candidate.key, decideUnverified(candidate, index, newestVerified, oldestKeptVerified, policy, now));
    }
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
  const unverified: UnverifiedDecision[] = [];
  const deletions: DeleteDecision[] = [];
  for (const candidate of ordered) {
    const decision = fate.get(candidate.key);
    const manifest = manifestOf.get(candidate.key);
    if (decision === undefined) continue;
    if ("unverified" in decision) {
      unverified.push({ key: candidate.key, reason: decision.unverified });
    } else if ("keep" in decision) {
      if (candidate.listed) keep.push({ key: candidate.key, object: "snapshot", reason: decision.keep });
      if (manifest !== undefined) keep.push({ key: manifest, object: "manifest", reason: "manifest-of-kept" });
    } else {
      // Collected newest first, reversed below; push the snapshot first so the manifest precedes it.
      deletions.push({
        key: candidate.key,
        object: "snapshot",
        reason: decision.delete,
        snapshot: candidate.key,
        ...(candidate.verified ? {} : { unverified: true as const }),
      });
      if (manifest !== undefined) {
        deletions.push({ key: manifest, object: "manifest", reason: decision.delete, snapshot: candidate.key });
      }
    }
  }
  deletions.reverse();
  ignored.sort((a, b) => (position.get(a.key) ?? 0) - (position.get(b.key) ?? 0));

  return { keep, delete: deletions, ignored, unverified, newest: verified[0]?.key ?? null };
}

/** A verified snapshot, by its slot among the verified ones (0 = newest verified). */
function decide(candidate: Candidate, slot: number, policy: RetentionPolicy, justWritten: string, now: number): Fate {
  if (slot === 0) return { keep: "newest" };
  if (candidate.key === justWritten) return { keep: "just-written" };
  if (policy.maxCount !== undefined && slot >= policy.maxCount) return { delete: "max-count" };
  if (policy.maxAgeMs !== undefined && now - candidate.parsed.time.getTime() > policy.maxAgeMs) {
    return { delete: "max-age" };
  }
  return { keep: "within-policy" };
}

/**
 * A snapshot without a manifest, by its position among all candidates (newest first). It takes
 * no slot; it is deleted only when it is older than the newest verified snapshot and either
 * older than every verified snapshot kept (`maxCount`) or strictly older than `maxAge`.
 */
function decideUnverified(
  candidate: Candidate,
  position: number,
  newestVerified: number | undefined,
  oldestKeptVerified: number,
  policy: RetentionPolicy,
  now: number,
): Fate {
  if (newestVerified === undefined) return { unverified: "no-verified" };
  if (position < newestVerified) return { unverified: "newer-than-verified" };
  if (policy.maxCount !== undefined && position > oldestKeptVerified) return { delete: "max-count" };
  if (policy.maxAgeMs !== undefined && now - candidate.parsed.time.getTime() > policy.maxAgeMs) {
    return { delete: "max-age" };
  }
  return { unverified: "within-policy" };
}

/**
 * The plan's deletions as the groups that go together (storage/locks.ts `deleteUnlocked`):
 * each snapshot with its manifest (manifest first, the plan's order), so a lock on either
 * keeps both.
 */
export function deletionGroups(plan: Pick<RetentionPlan, "delete">): string[][] {
  const groups = new Map<string, string[]>();
  for (const d of plan.delete) {
    const group = groups.get(d.snapshot);
    if (group) group.push(d.key);
    else groups.set(d.snapshot, [d.key]);
  }
  return [...groups.values()];
}
