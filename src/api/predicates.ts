/**
 * Small pure helpers beside the API types: conditions, restore phases, the defaults of
 * `spec.backup`, schedule observation, preflight facts about a cluster. No I/O and no clock:
 * `now` is always a parameter. The operation lock has a module of its own: src/lock/.
 */
import type { BackupTypeValue, BlockedReasonValue, ConditionType } from "./constants.ts";
import { Annotation, BlockedReason, defaults } from "./constants.ts";
import type {
  AzureTargetSpec,
  BackupSpec,
  Condition,
  ConditionStatus,
  ExecutorResourcesSpec,
  GcsTargetSpec,
  ObservedSchedule,
  OpenBaoCluster,
  OpenBaoClusterSpec,
  RestorePhase,
  S3TargetSpec,
  TargetSpec,
  TerminalRestorePhase,
  Timestamp,
} from "./types.ts";

/** RFC 3339 in UTC to the second, as Kubernetes writes times (`2025-03-04T05:06:07Z`). */
export function toTimestamp(time: Date): Timestamp {
  return `${time.toISOString().slice(0, 19)}Z`;
}

/** Parses a status time; undefined for absent or unparsable values (never throws on foreign data). */
export function fromTimestamp(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

// ── conditions ──────────────────────────────────────────────────────────────────────────────

export function getCondition(conditions: readonly Condition[] | undefined, type: ConditionType | string) {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: ConditionType | string): boolean {
  return getCondition(conditions, type)?.status === "True";
}

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

/**
 * Sets one condition, leaving the others (including the lifecycle operator's) untouched.
 * `lastTransitionTime` moves to `now` only when the status changes. Returns the same array
 * object when nothing changed at all, so `result === conditions` means "skip the patch".
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: Date,
): readonly Condition[] {
  const list = conditions ?? [];
  const existing = list.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime:
      existing !== undefined && existing.status === input.status ? existing.lastTransitionTime : toTimestamp(now),
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
  };
  if (
    existing !== undefined &&
    existing.status === next.status &&
    existing.reason === next.reason &&
    existing.message === next.message &&
    existing.observedGeneration === next.observedGeneration
  ) {
    return list;
  }
  return existing === undefined ? [...list, next] : list.map((c) => (c === existing ? next : c));
}

/** Removes one condition; the same array object when it was not there. */
export function removeCondition(
  conditions: readonly Condition[] | undefined,
  type: ConditionType,
): readonly Condition[] {
  const list = conditions ?? [];
  return list.some((c) => c.type === type) ? list.filter((c) => c.type !== type) : list;
}

// ── OpenBaoRestore phases ───────────────────────────────────────────────────────────────────

const restoreOrder: Readonly<Record<RestorePhase, number>> = {
  Pending: 0,
  Validating: 1,
  Running: 2,
  Completed: 3,
  Failed: 3,
};

export function isRestoreTerminal(phase: RestorePhase | undefined): phase is TerminalRestorePhase {
  return phase === "Completed" || phase === "Failed";
}

/** An unfinished restore: it holds or is about to take the cluster's lock. */
export function isRestoreActive(phase: RestorePhase | undefined): boolean {
  return !isRestoreTerminal(phase);
}

/**
 * Whether a restore may move from `from` to `to`: only forward (Pending → Validating →
 * Running → Completed | Failed, skipping allowed, Failed from anywhere), never out of a
 * terminal phase (SPEC §2; the CRD enforces the latter too).
 */
export function canTransitionRestore(from: RestorePhase | undefined, to: RestorePhase): boolean {
  if (from === undefined) return true;
  if (isRestoreTerminal(from)) return from === to;
  return restoreOrder[to] >= restoreOrder[from];
}

// ── spec.backup defaults ────────────────────────────────────────────────────────────────────

export type ResolvedAuth =
  | { method: "jwt"; role: string; path: string }
  | { method: "token"; secretName: string; secretKey: string };

/** `spec.backup` with every SPEC §2 default applied. */
export interface ResolvedBackupSpec {
  schedule: string;
  timeZone: string;
  suspend: boolean;
  image: string;
  auth: ResolvedAuth;
  /** Explicit member URLs, or undefined for the default per-replica addresses. */
  openbaoAddresses: string[] | undefined;
  /** Undefined when every member is `http://` and no `tlsSecretRef` is set: nothing to mount. */
  tlsSecretName: string | undefined;
  target: ResolvedTarget;
  /** `spec.backup.additionalTargets`, resolved like `target`; empty when none. */
  additionalTargets: ResolvedAdditionalTarget[];
  /** Undefined unless additional targets are set (the executor's default then is All). */
  successPolicy: "All" | "AtLeastOne" | "Primary" | undefined;
  retention: { maxCount: number | undefined; maxAge: string | undefined } | undefined;
  activeDeadlineSeconds: number;
  resources: ExecutorResourcesSpec | undefined;
  serviceAccountAnnotations: Record<string, string>;
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  /** `spec.backup.drill.canaryPath`: each backup writes a fresh canary there (BACKUP_CANARY_PATH). */
  canaryPath: string | undefined;
}

/** A target with its provider, part size and concurrency (and S3's region) filled in. */
export type ResolvedTarget = ((S3TargetSpec & { provider: "s3"; region: string }) | GcsTargetSpec | AzureTargetSpec) & {
  partSize: number;
  concurrency: number;
};

export type ResolvedAdditionalTarget = ResolvedTarget & { name: string };

export function resolveTarget(target: TargetSpec): ResolvedTarget {
  const sizing = {
    partSize: target.partSize ?? defaults.partSize,
    concurrency: target.concurrency ?? defaults.concurrency,
  };
  switch (target.provider) {
    case "gcs":
      return { ...target, ...sizing };
    case "azure":
      return { ...target, ...sizing };
    default:
      return { ...target, ...sizing, provider: "s3", region: target.region ?? defaults.region };
  }
}

export interface ResolveOptions {
  /** The OpenBaoCluster's name (for `<cluster>-tls-ca`). */
  clusterName: string;
  /** The operator's own image, the default executor image. */
  defaultImage: string;
  /**
   * Member addresses derived from the cluster's StatefulSet (src/readiness), used when
   * `openbaoAddresses` is not set; absent, the executor derives `https://<cluster>-<i>…`.
   */
  memberAddresses?: readonly string[] | undefined;
}

/**
 * The CA Secret a Job mounts: `tlsSecretRef`, else `<cluster>-tls-ca` — unless every member
 * is an `http://` URL, which has no TLS to verify: then nothing is mounted or checked.
 */
export function resolveTlsSecretName(
  tlsSecretRef: { name: string } | undefined,
  clusterName: string,
  addresses: readonly string[] | undefined,
): string | undefined {
  if (tlsSecretRef !== undefined) return tlsSecretRef.name;
  const plainHttp = addresses !== undefined && addresses.length > 0 && addresses.every((a) => a.startsWith("http://"));
  return plainHttp ? undefined : `${clusterName}${defaults.tlsSecretSuffix}`;
}

/** The auth a spec asks for, with defaults; undefined when it names none (refused by the CRD). */
export function resolveAuth(spec: {
  jwtAuthRole?: string | undefined;
  jwtAuthPath?: string | undefined;
  tokenSecretRef?: { name: string; key?: string | undefined } | undefined;
}): ResolvedAuth | undefined {
  if (spec.jwtAuthRole !== undefined) {
    return { method: "jwt", role: spec.jwtAuthRole, path: spec.jwtAuthPath ?? defaults.jwtAuthPath };
  }
  if (spec.tokenSecretRef !== undefined) {
    return {
      method: "token",
      secretName: spec.tokenSecretRef.name,
      secretKey: spec.tokenSecretRef.key ?? defaults.tokenSecretKey,
    };
  }
  return undefined;
}

/**
 * Applies the SPEC §2 defaults: timeZone UTC, suspend false, image the operator's (or the
 * seeds' `executorImage`), jwtAuthPath jwt, tokenSecretRef.key token, tlsSecretRef
 * `<cluster>-tls-ca`, target provider s3, region us-east-1 (S3 only), partSize 10 MiB,
 * concurrency 3, activeDeadlineSeconds 3600 (the same values `parseTarget` applies in the
 * executor: they come from storage/target.ts). Returns undefined when no auth is configured,
 * which the CRD refuses but an object stored before the CRD was installed could still have.
 */
export function resolveBackupSpec(spec: BackupSpec, options: ResolveOptions): ResolvedBackupSpec | undefined {
  const auth = resolveAuth(spec);
  if (auth === undefined) return undefined;
  const addresses =
    spec.openbaoAddresses !== undefined && spec.openbaoAddresses.length > 0
      ? [...spec.openbaoAddresses]
      : options.memberAddresses !== undefined && options.memberAddresses.length > 0
        ? [...options.memberAddresses]
        : undefined;
  return {
    schedule: spec.schedule,
    timeZone: spec.timeZone ?? defaults.timeZone,
    suspend: spec.suspend ?? false,
    image: spec.image ?? spec.executorImage ?? options.defaultImage,
    auth,
    openbaoAddresses: addresses,
    tlsSecretName: resolveTlsSecretName(spec.tlsSecretRef, options.clusterName, addresses),
    target: resolveTarget(spec.target),
    additionalTargets: (spec.additionalTargets ?? []).map((t) => ({ ...resolveTarget(t), name: t.name })),
    successPolicy:
      spec.additionalTargets !== undefined && spec.additionalTargets.length > 0 ? spec.successPolicy : undefined,
    retention:
      spec.retention === undefined ? undefined : { maxCount: spec.retention.maxCount, maxAge: spec.retention.maxAge },
    activeDeadlineSeconds: spec.activeDeadlineSeconds ?? defaults.activeDeadlineSeconds,
    resources: spec.resources,
    serviceAccountAnnotations: { ...spec.serviceAccount?.annotations },
    podLabels: { ...spec.podLabels },
    podAnnotations: { ...spec.podAnnotations },
    canaryPath: spec.drill?.canaryPath,
  };
}

// ── schedule observation ────────────────────────────────────────────────────────────────────

/**
 * The `status.backup.observedSchedule` to keep. A schedule, time zone or suspend flag that
 * differs from what was observed (or a first sight) restarts the observation at `now`:
 * windows before it are never "missed", so a new cluster, a changed schedule and a lifted
 * suspend all wait for their next window (SPEC §3). `changed` says the status needs writing.
 */
export function observeSchedule(
  spec: Pick<BackupSpec, "schedule" | "timeZone" | "suspend">,
  previous: ObservedSchedule | undefined,
  now: Date,
): { observed: ObservedSchedule; changed: boolean } {
  const current = {
    schedule: spec.schedule,
    timeZone: spec.timeZone ?? defaults.timeZone,
    suspend: spec.suspend ?? false,
  };
  if (
    previous !== undefined &&
    previous.schedule === current.schedule &&
    previous.timeZone === current.timeZone &&
    previous.suspend === current.suspend &&
    fromTimestamp(previous.observedTime) !== undefined
  ) {
    return { observed: previous, changed: false };
  }
  return { observed: { ...current, observedTime: toTimestamp(now) }, changed: true };
}

// ── cluster facts for preflight ─────────────────────────────────────────────────────────────

/** The manual trigger's value when one is pending (any non-empty value, SPEC §2). */
export function pendingTrigger(cluster: Pick<OpenBaoCluster, "metadata">): string | undefined {
  const value = cluster.metadata.annotations?.[Annotation.TriggerBackup];
  return value !== undefined && value !== "" ? value : undefined;
}

/** Whether an upgrade runs: `status.upgrade` is non-null. */
export function isUpgrading(cluster: Pick<OpenBaoCluster, "status">): boolean {
  const upgrade = cluster.status?.upgrade;
  return upgrade !== undefined && upgrade !== null;
}

/**
 * What in the cluster's own state forbids starting a backup Job now, in the order a person
 * should fix them (SPEC §3 preflight). The lock, restores, running Jobs and Secrets need more
 * than the cluster object and are checked by the planner.
 *
 * A pre-upgrade snapshot is the one exception to "no upgrade": it exists to run while an
 * upgrade is pending, and the lifecycle operator may already have set `status.upgrade` or
 * phase `Upgrading` while it waits for `PreUpgradeSnapshotReady`. Blocking it there would
 * deadlock the upgrade, so for it `Upgrading` counts as running and `status.upgrade` is ignored.
 */
export function clusterBlockers(cluster: Pick<OpenBaoCluster, "status">, type: BackupTypeValue): BlockedReasonValue[] {
  const blockers: BlockedReasonValue[] = [];
  const status = cluster.status;
  const preUpgrade = type === "pre-upgrade";
  const running = status?.phase === "Running" || (preUpgrade && status?.phase === "Upgrading");
  if (!running) blockers.push(BlockedReason.ClusterNotRunning);
  if (status?.initialized !== true) blockers.push(BlockedReason.ClusterNotInitialized);
  if (!preUpgrade && isUpgrading(cluster)) blockers.push(BlockedReason.UpgradeInProgress);
  return blockers;
}

/**
 * Whether pre-upgrade snapshots are switched on. The seeds name the switch two ways:
 * `spec.upgrade.preUpgradeSnapshot` (the backups guide) and `spec.backup.preUpgradeSnapshot`
 * (the BackupManager's configuration table); either turns it on, as `executorImage` is accepted
 * beside `image`. Admission refuses the two set to different values; an object stored before
 * that rule existed errs on the side of taking the snapshot (true wins).
 */
export function preUpgradeSnapshotEnabled(spec: Pick<OpenBaoClusterSpec, "upgrade" | "backup"> | undefined): boolean {
  return spec?.upgrade?.preUpgradeSnapshot === true || spec?.backup?.preUpgradeSnapshot === true;
}

/**
 * SPEC §3: a pre-upgrade snapshot is wanted when it is switched on (`preUpgradeSnapshotEnabled`),
 * backups are configured, and `spec.version` differs from the version running now (a cluster
 * with no `status.currentVersion` yet has nothing to protect).
 */
export function wantsPreUpgradeSnapshot(cluster: Pick<OpenBaoCluster, "spec" | "status">): boolean {
  const spec = cluster.spec;
  const current = cluster.status?.currentVersion;
  return (
    preUpgradeSnapshotEnabled(spec) &&
    spec?.backup !== undefined &&
    spec.version !== undefined &&
    current !== undefined &&
    current !== "" &&
    spec.version !== current
  );
}
