/**
 * A drill's decisions, as pure functions of what it was given and what it observed (no I/O,
 * no clock): which key material applies, which endpoint to restore through, when OpenBao has
 * applied the snapshot, whether what it restored fits the manifest, and the outcome's words.
 * Each refusal is a `VerificationError` (or a configuration error) whose message names the
 * backup, what was expected, what was found and what to do; none contains a secret.
 */
import { VerificationError } from "../executor/failure.ts";
import type { ManifestCanary, SnapshotManifest } from "../snapshot/manifest.ts";
import { type CanaryLocation, type CanaryRead, formatCanaryLocation } from "./canary.ts";
import { DrillConfigError } from "./config.ts";
import type { LeaderFacts, SealObservation } from "./throwaway.ts";

/** What a drill proved (docs/drills.md says what each does and does not prove). */
export interface DrillOutcome {
  readonly outcome: "loaded" | "verified";
  /** The backup drilled (with `latest`, the key it resolved to). */
  readonly key: string;
  /** The snapshot's Raft index: the manifest's, equal to the archive's meta.json. */
  readonly raftIndex: number;
  /** The restored seal configuration's type as OpenBao reported it (`shamir`, `transit`, …). */
  readonly sealType: string;
  readonly durationMs: number;
  /** Verified: the Raft index the unsealed throwaway had applied (above `raftIndex`). */
  readonly restoredIndex?: number;
  /** Verified with a canary: where it was read and the version the backup wrote. */
  readonly canary?: { readonly path: string; readonly version: number };
  /** Verified: secret engines and auth methods the restored data mounts (built-ins included). */
  readonly secretMounts?: number;
  readonly authMethods?: number;
  /** One sentence for people: what was proved, and what was not. */
  readonly message: string;
}

/** How the restored data can be opened. */
export type KeyMaterial =
  /** Nothing: the drill proves the snapshot loads ("loaded"). */
  | { readonly kind: "none" }
  /** The source cluster's Shamir unseal keys. */
  | { readonly kind: "unseal-keys" }
  /** The throwaway runs the source cluster's auto-unseal (`sealType`, e.g. transit). */
  | { readonly kind: "auto-unseal"; readonly sealType: string };

/**
 * Decides the key material from the throwaway's own seal type (before anything is restored),
 * the number of unseal keys given and the seal type the manifest records. Contradictions are
 * refused before a byte moves.
 */
export function keyMaterialPlan(
  throwawaySealType: string,
  unsealKeys: number,
  manifestSealType: string | null | undefined,
): KeyMaterial {
  const recorded = manifestSealType ?? undefined;
  if (throwawaySealType !== "shamir") {
    if (unsealKeys > 0) {
      throw new DrillConfigError(
        "DRILL_UNSEAL_KEYS_DIR",
        `unseal keys open a Shamir-sealed OpenBao, but the throwaway runs the ${throwawaySealType} seal (auto-unseal): give the unseal keys to a throwaway without a seal stanza, or give it the source cluster's auto-unseal — not both`,
      );
    }
    if (recorded !== undefined && recorded !== throwawaySealType) {
      throw new VerificationError(
        "SealTypeMismatch",
        `the backup's cluster is sealed by ${recorded} (its manifest), the throwaway by ${throwawaySealType}: its auto-unseal cannot open this backup; configure the throwaway with the source cluster's seal${recorded === "shamir" ? ", or start it without a seal stanza and give the unseal keys (DRILL_UNSEAL_KEYS_DIR)" : ""}; nothing was restored`,
      );
    }
    return { kind: "auto-unseal", sealType: throwawaySealType };
  }
  if (unsealKeys > 0) {
    if (recorded !== undefined && recorded !== "shamir") {
      throw new VerificationError(
        "SealTypeMismatch",
        `the backup's cluster is sealed by ${recorded} (its manifest): unseal keys cannot open it; start the throwaway with the source cluster's ${recorded} seal instead of giving DRILL_UNSEAL_KEYS_DIR (its recovery keys do not unseal); nothing was restored`,
      );
    }
    return { kind: "unseal-keys" };
  }
  return { kind: "none" };
}

/**
 * `snapshot-force` unless the throwaway shares the source cluster's auto-unseal: then the
 * plain endpoint opens the snapshot's sealed checksums (SHA256SUMS.sealed) with that seal and
 * refuses any archive whose content changed after OpenBao wrote it. A Shamir throwaway has
 * other keys than the source cluster, so only snapshot-force accepts the snapshot, and it
 * skips that check.
 */
export function restoreWithForce(plan: KeyMaterial): boolean {
  return plan.kind !== "auto-unseal";
}

/** What the throwaway shows after the snapshot was sent. */
export type AfterRestore =
  | { readonly state: "waiting"; readonly detail: string }
  /** Applied, then sealed itself: the restored keyring is not its own. */
  | { readonly state: "sealed"; readonly sealType: string; readonly threshold: number; readonly shares: number }
  /** Applied: the restored seal configuration is of another type than the throwaway's seal. */
  | { readonly state: "foreign-seal"; readonly restored: string; readonly configured: string }
  /** Applied, and open: its own seal opened the restored keyring (auto-unseal). */
  | { readonly state: "unsealed"; readonly sealType: string; readonly appliedIndex: number };

/**
 * Has OpenBao applied the snapshot? `before` is the throwaway's active node just before the
 * snapshot was sent. A throwaway that was unsealed and is sealed now has applied it (nothing
 * else seals it); an open one has when it became active again after the restore, past its
 * old index. With auto-unseal a sealed throwaway is not done yet: it may still be opening
 * the restored keyring, and stays sealed only if it cannot.
 */
export function afterRestore(
  before: LeaderFacts,
  seal: SealObservation,
  leader: LeaderFacts | undefined,
  autoUnseal: boolean,
): AfterRestore {
  if (seal.kind === "foreign-seal")
    return { state: "foreign-seal", restored: seal.restored, configured: seal.configured };
  const status = seal.status;
  if (status.sealed) {
    if (autoUnseal)
      return { state: "waiting", detail: `sealed: its ${status.type} seal has not opened the restored data` };
    return { state: "sealed", sealType: status.type, threshold: status.threshold, shares: status.shares };
  }
  if (leader === undefined) return { state: "waiting", detail: "unsealed, but sys/leader does not answer yet" };
  if (leader.isSelf && leader.activeTime !== undefined && leader.activeTime !== before.activeTime) {
    if (leader.appliedIndex > before.committedIndex) {
      return { state: "unsealed", sealType: status.type, appliedIndex: leader.appliedIndex };
    }
  }
  return {
    state: "waiting",
    detail: `still serving its own data (applied Raft index ${leader.appliedIndex}, ${leader.isSelf ? "active" : "not active"})`,
  };
}

/** The restored seal type an applied state shows. */
export function restoredSealType(applied: Exclude<AfterRestore, { state: "waiting" }>): string {
  return applied.state === "foreign-seal" ? applied.restored : applied.sealType;
}

/** The manifest's `sealType` (when it records one) is the seal configuration OpenBao restored. */
export function checkSealType(manifest: SnapshotManifest, restored: string, key: string): void {
  const recorded = manifest.sealType ?? undefined;
  if (recorded !== undefined && recorded !== restored) {
    throw new VerificationError(
      "SealTypeMismatch",
      `OpenBao loaded ${key}, but the seal configuration in it is ${restored} and its manifest says ${recorded}: the snapshot is not of the cluster its manifest describes, or the manifest was changed`,
    );
  }
}

/** The archive's meta.json index is the manifest's `raftIndex` (checked before OpenBao gets the end). */
export function checkArchiveIndex(archiveIndex: number, manifest: SnapshotManifest, key: string): void {
  if (archiveIndex !== manifest.raftIndex) {
    throw new VerificationError(
      "RaftIndexMismatch",
      `${key} holds a snapshot at Raft index ${archiveIndex}, its manifest says ${manifest.raftIndex}: the manifest does not describe this snapshot; nothing was restored`,
    );
  }
}

/**
 * The unsealed data fits the manifest: OpenBao restores a snapshot at an index above both the
 * snapshot's and its own last one (hashicorp/raft, `restoreUserSnapshot`), so the applied index
 * must be past `raftIndex`; and the cluster id is stored in the data, so it is the source's.
 */
export function checkRestored(
  manifest: SnapshotManifest,
  facts: { readonly appliedIndex: number; readonly clusterId: string | undefined },
  key: string,
): void {
  if (facts.appliedIndex <= manifest.raftIndex) {
    throw new VerificationError(
      "RaftIndexMismatch",
      `the throwaway serves ${key}'s data at Raft index ${facts.appliedIndex}, not above the snapshot's ${manifest.raftIndex}: OpenBao did not restore this snapshot as a whole`,
    );
  }
  const recorded = manifest.clusterId ?? undefined;
  if (recorded !== undefined && facts.clusterId !== undefined && facts.clusterId !== recorded) {
    throw new VerificationError(
      "ClusterMismatch",
      `the restored data of ${key} belongs to cluster ${facts.clusterId}, its manifest says ${recorded}: the snapshot is another cluster's`,
    );
  }
}

function sameLocation(canary: ManifestCanary, location: CanaryLocation): boolean {
  return canary.mount === location.mount && canary.path === location.path;
}

/**
 * The canary the drill will read: the one the manifest records, which must be the one asked
 * for when `required` is given. Decided before any byte moves.
 */
export function canaryToRead(
  manifest: SnapshotManifest,
  required: CanaryLocation | undefined,
  key: string,
): ManifestCanary | undefined {
  const recorded = manifest.canary;
  if (required === undefined) return recorded;
  if (recorded === undefined) {
    throw new VerificationError(
      "CanaryMissing",
      `${key}'s manifest records no canary, and DRILL_CANARY_PATH asks for ${formatCanaryLocation(required)}: the backup did not write one (is its canary enabled, and may its token write ${required.mount}/data/${required.path}?); nothing was restored`,
    );
  }
  if (!sameLocation(recorded, required)) {
    throw new VerificationError(
      "CanaryMissing",
      `${key}'s backup wrote its canary at ${formatCanaryLocation(recorded)}, DRILL_CANARY_PATH asks for ${formatCanaryLocation(required)}; nothing was restored`,
    );
  }
  return recorded;
}

/** The restored canary is exactly the one the backup wrote just before its snapshot. */
export function checkCanary(recorded: ManifestCanary, read: CanaryRead, key: string): void {
  const where = formatCanaryLocation(recorded);
  if (!read.found) {
    throw new VerificationError(
      "CanaryMissing",
      `the restored data of ${key} has no canary at ${where} (${read.detail}); the backup wrote version ${recorded.version} just before its snapshot, so the snapshot does not hold the data of the moment it was taken`,
    );
  }
  if (read.version !== recorded.version || read.sha256 !== recorded.sha256) {
    const what =
      read.version === recorded.version
        ? `holds version ${read.version} with another value than`
        : `is at version ${read.version}, not the version ${recorded.version} of`;
    throw new VerificationError(
      "CanaryMismatch",
      `the restored canary at ${where} ${what} the one the backup wrote just before taking ${key}: this snapshot is not the one its manifest describes, or its data was changed`,
    );
  }
}

function sealText(applied: Exclude<AfterRestore, { state: "waiting" }>): string {
  if (applied.state === "sealed" && applied.shares > 0) {
    return `${applied.sealType} seal, ${applied.threshold} of ${applied.shares} keys`;
  }
  return `${restoredSealType(applied)} seal`;
}

export function loadedMessage(
  key: string,
  manifest: SnapshotManifest,
  applied: Exclude<AfterRestore, { state: "waiting" }>,
): string {
  const seal = manifest.sealType ? `, as its manifest says` : ` (its manifest records no seal type)`;
  return `OpenBao loaded ${key} (Raft index ${manifest.raftIndex}) into the throwaway and reports the backup's seal configuration (${sealText(applied)})${seal}; without key material the data was not opened, so its secrets were not read`;
}

export function verifiedMessage(
  key: string,
  plan: KeyMaterial,
  facts: {
    readonly restoredIndex: number;
    readonly canary: ManifestCanary | undefined;
    readonly secretMounts: number;
    readonly authMethods: number;
  },
): string {
  const how = plan.kind === "auto-unseal" ? `its ${plan.sealType} auto-unseal` : "the unseal keys";
  const canary = facts.canary
    ? `the canary ${formatCanaryLocation(facts.canary)} reads back as version ${facts.canary.version} exactly as the backup wrote it`
    : "no canary was recorded, so this proves the data opens, not that it is this backup's";
  return `OpenBao loaded ${key}, opened it with ${how} and serves it at Raft index ${facts.restoredIndex}; ${canary}; ${facts.secretMounts} secret mounts and ${facts.authMethods} auth methods are served`;
}
