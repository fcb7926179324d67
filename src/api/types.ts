/**
 * The two custom resources as this product reads and writes them (SPEC §2). Values arrive
 * from the API server as plain JSON (the client does not deserialize custom objects), so
 * times are RFC 3339 strings, never `Date`s, and integers are numbers.
 *
 * The types encode what the CRD schema (schema.ts) enforces at admission, so code that holds
 * an `OpenBaoCluster` may rely on it: enumerations are string-literal unions, mutually
 * exclusive fields are unions with `never` on the other side (auth is JWT *or* a static token;
 * `gcs` and `azure` blocks and each `encryption` field belong to their provider), required
 * fields are required.
 *
 * OpenBaoCluster is shared with a lifecycle operator: only the fields this product reads or
 * writes are declared here. The schema preserves the others, so status writes must patch the
 * fields they own (`status.backup`, `status.operationLock`, single conditions), never replace
 * `status` wholesale.
 */
import type { V1ObjectMeta } from "@kubernetes/client-node";
import type { apiVersion, clusterNames, restoreNames } from "./constants.ts";

/** RFC 3339 date-time as the API server writes it, e.g. `2025-03-04T05:06:07Z`. */
export type Timestamp = string;

/** ObjectMeta of a custom object as JSON: timestamps are strings (V1ObjectMeta types them as Date). */
export interface ObjectMeta
  extends Omit<V1ObjectMeta, "creationTimestamp" | "deletionTimestamp" | "managedFields" | "ownerReferences"> {
  creationTimestamp?: Timestamp;
  deletionTimestamp?: Timestamp;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

// ── shared pieces ───────────────────────────────────────────────────────────────────────────

/** A Secret in the resource's own namespace; there is deliberately no namespace field. */
export interface SecretRef {
  name: string;
}

/** A Secret holding a static OpenBao token; `key` defaults to `token`. */
export interface TokenSecretRef {
  name: string;
  key?: string;
}

export type Provider = "s3" | "gcs" | "azure";

interface TargetSpecCommon {
  /** Custom endpoint (MinIO, fake-gcs-server, Azurite, private endpoints); http(s) URL. */
  endpoint?: string;
  /** Bucket-relative prefix; no leading `/`, no `..`, `.` or empty segments. */
  pathPrefix?: string;
  credentialsSecretRef?: SecretRef;
  /** Bytes per part, ≥ 5 MiB; default 10 MiB. */
  partSize?: number;
  /** Parts in flight, 1–16; default 3. */
  concurrency?: number;
  /** Skip TLS verification of the storage endpoint (never of OpenBao). */
  insecureSkipVerify?: boolean;
}

/**
 * S3 server-side encryption of the snapshot and its manifest: SSE-S3 (`AES256`) or SSE-KMS
 * (`aws:kms`, with the store's default key unless `kmsKeyId` names one).
 */
export type S3EncryptionSpec =
  | { type: "AES256"; kmsKeyId?: never; kmsKeyName?: never; encryptionScope?: never }
  | { type: "aws:kms"; kmsKeyId?: string; kmsKeyName?: never; encryptionScope?: never };

/** GCS customer-managed encryption (CMEK): the Cloud KMS key, `projects/…/cryptoKeys/<key>`. */
export interface GcsEncryptionSpec {
  kmsKeyName: string;
  type?: never;
  kmsKeyId?: never;
  encryptionScope?: never;
}

/** Azure Blob encryption scope of the storage account. */
export interface AzureEncryptionSpec {
  encryptionScope: string;
  type?: never;
  kmsKeyId?: never;
  kmsKeyName?: never;
}

/**
 * S3 Object Lock on what a backup writes: retained in `mode` until creation +
 * `retention.maxAge` + `grace` (default 24h); pre-upgrade snapshots also under a legal hold
 * with `preUpgradeLegalHold`.
 */
export interface ObjectLockSpec {
  mode: "GOVERNANCE" | "COMPLIANCE";
  grace?: string;
  preUpgradeLegalHold?: boolean;
}

export interface S3TargetSpec extends TargetSpecCommon {
  provider?: "s3";
  bucket: string;
  region?: string;
  usePathStyle?: boolean;
  roleArn?: string;
  encryption?: S3EncryptionSpec;
  objectLock?: ObjectLockSpec;
  gcs?: never;
  azure?: never;
}

export interface GcsTargetSpec extends TargetSpecCommon {
  provider: "gcs";
  bucket: string;
  region?: string;
  usePathStyle?: boolean;
  gcs?: { project?: string };
  encryption?: GcsEncryptionSpec;
  objectLock?: never;
  roleArn?: never;
  azure?: never;
}

export interface AzureTargetSpec extends TargetSpecCommon {
  provider: "azure";
  /** The container, unless `azure.container` is set. */
  bucket?: string;
  region?: string;
  usePathStyle?: boolean;
  azure: { storageAccount: string; container?: string };
  encryption?: AzureEncryptionSpec;
  objectLock?: never;
  roleArn?: never;
  gcs?: never;
}

/** `spec.backup.target` and `OpenBaoRestore.spec.source.target`; `provider` absent means s3. */
export type TargetSpec = S3TargetSpec | GcsTargetSpec | AzureTargetSpec;

/** One of `spec.backup.additionalTargets`: a target with a name (a DNS label, not `primary`). */
export type AdditionalTargetSpec = TargetSpec & { name: string };

/** OpenBao authentication: a JWT role (projected ServiceAccount token) or a static token Secret. */
export type AuthSpec =
  | { jwtAuthRole: string; jwtAuthPath?: string; tokenSecretRef?: never }
  | { tokenSecretRef: TokenSecretRef; jwtAuthRole?: never; jwtAuthPath?: never };

/** At least one of the two limits. */
export type RetentionSpec = { maxCount: number; maxAge?: string } | { maxCount?: number; maxAge: string };

export type ConditionStatus = "True" | "False" | "Unknown";

/**
 * A metav1.Condition. `type` is open (`ConditionType` lists ours): the lifecycle operator
 * keeps its own conditions in the same list.
 */
export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: Timestamp;
  observedGeneration?: number;
}

// ── OpenBaoCluster ──────────────────────────────────────────────────────────────────────────

interface BackupSpecFields {
  /** Five-field cron or `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly`. */
  schedule: string;
  /** IANA zone for the schedule; default `UTC`. */
  timeZone?: string;
  /** Stops scheduled runs; manual triggers still work. */
  suspend?: boolean;
  /** Executor image; default: the operator's own image. */
  image?: string;
  /** The seeds' name for `image`; accepted, never together with `image`. */
  executorImage?: string;
  /**
   * Member API URLs. Default: from the StatefulSet when readiness comes from it
   * (`<scheme>://<sts>-<i>.<serviceName>.<ns>.svc:<port>`), else
   * `https://<cluster>-<i>.<cluster>.<ns>.svc:8200` for i < replicas.
   */
  openbaoAddresses?: string[];
  /**
   * The StatefulSet running this OpenBao when no lifecycle operator manages it (e.g. the
   * official Helm chart's `<release>`); default: the cluster's own name (src/readiness).
   */
  statefulSetName?: string;
  /** Secret with `ca.crt` for OpenBao's TLS; default `<cluster>-tls-ca`; none for `http://` members. */
  tlsSecretRef?: SecretRef;
  target: TargetSpec;
  /**
   * More destinations written from the same snapshot stream (3-2-1 copies), each with its
   * own credentials, checks, manifest and retention; at most 4. `target` is named `primary`.
   */
  additionalTargets?: AdditionalTargetSpec[];
  /** With additional targets, what makes a backup a success; default `All`. */
  successPolicy?: "All" | "AtLeastOne" | "Primary";
  retention?: RetentionSpec;
  /** Hung-run deadline of a backup Job; default 3600. */
  activeDeadlineSeconds?: number;
  /**
   * The executor container's CPU and memory, over the computed defaults (memory: partSize ×
   * (concurrency + 2) + 256 MiB, request = limit; CPU request 100m). Used by restores too.
   */
  resources?: ExecutorResourcesSpec;
  /** Copied onto the generated backup ServiceAccount (workload-identity webhooks). */
  serviceAccount?: { annotations?: Record<string, string> };
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  /**
   * The seeds' second name of `spec.upgrade.preUpgradeSnapshot` (the BackupManager's table); read
   * through `preUpgradeSnapshotEnabled`. Admission refuses the two set to different values.
   */
  preUpgradeSnapshot?: boolean;
  /** Restore drills: each restores a stored backup into a throwaway OpenBao inside its own Pod. */
  drill?: DrillSpec;
}

/**
 * `spec.backup.drill`: when and how restore drills run (src/drill/manager/). A drill never
 * touches the live cluster: it reads storage and restores into an OpenBao of its own Pod.
 */
export interface DrillSpec {
  /** Cron schedule, like `spec.backup.schedule`. */
  schedule: string;
  /** IANA zone of the schedule; default `spec.backup.timeZone`, else UTC. */
  timeZone?: string;
  /** Stops scheduled drills; `openbao.org/trigger-drill` still runs one. */
  suspend?: boolean;
  /** The backup to drill; default `latest` (the newest verified backup). */
  key?: string;
  /** The throwaway OpenBao's image; default `<operator's drill image repository>:<cluster version>`. */
  image?: string;
  /** Opt-in: the source cluster's Shamir unseal keys, one per data key (outcome `verified`). */
  unsealKeysSecretRef?: SecretRef;
  /**
   * Opt-in: the source cluster's auto-unseal for the throwaway — a Secret whose `seal.hcl` holds
   * the `seal "…" { … }` stanza (its other files are mounted beside it for the stanza to name).
   */
  sealConfigSecretRef?: SecretRef;
  /** KV v2 `<mount>/<path>` every backup writes a fresh canary to, and every drill reads back. */
  canaryPath?: string;
  /** Deadline of one drill Job in seconds; default 3600. */
  activeDeadlineSeconds?: number;
  /** The throwaway OpenBao container's CPU and memory (default: requests 100m / 256Mi, no limits). */
  openbaoResources?: ExecutorResourcesSpec;
}

export interface ExecutorResourcesSpec {
  requests?: { cpu?: string; memory?: string };
  limits?: { cpu?: string; memory?: string };
}

export type BackupSpec = BackupSpecFields & AuthSpec;

export interface OpenBaoClusterSpec {
  replicas?: number;
  version?: string;
  backup?: BackupSpec;
  /** `preUpgradeSnapshot` is also accepted as `backup.preUpgradeSnapshot`: read `preUpgradeSnapshotEnabled`. */
  upgrade?: { preUpgradeSnapshot?: boolean };
}

/** Written by the lifecycle operator. */
export type ClusterPhase = "Initializing" | "Running" | "Upgrading" | "BackingUp" | "Failed";

export type PreUpgradePhase = "Pending" | "Running" | "Succeeded" | "Failed";

export interface PreUpgradeStatus {
  /** The `spec.version` this snapshot protects the upgrade to; attempts count per target version. */
  targetVersion: string;
  phase: PreUpgradePhase;
  /** Jobs created for this target version, 1–3. */
  attempts: number;
  jobName?: string;
  /** The object key once the snapshot succeeded. */
  key?: string;
  /** `status.currentVersion` when this upgrade was first seen: the version the snapshot protects. */
  fromVersion?: string;
  /** When this upgrade (episode) was first seen; a new episode starts fresh (src/backup/pre-upgrade.ts). */
  startedAt?: Timestamp;
  /** `metadata.generation` when this upgrade was first seen: tells apart episodes begun in one second. */
  startedGeneration?: number;
  /** After a failed attempt: not before this time. */
  nextAttemptTime?: Timestamp;
  /** When no upgrade was pending any more (completed or reverted): the record is history. */
  endedAt?: Timestamp;
}

/**
 * The schedule the operator last saw and since when, so that windows before a new or changed
 * schedule (or before suspend was lifted) are never "missed" (SPEC §3).
 */
export interface ObservedSchedule {
  schedule: string;
  timeZone: string;
  suspend: boolean;
  observedTime: Timestamp;
}

/** Where readiness for backups and restores comes from (src/readiness/decide.ts). */
export interface ReadinessStatus {
  source: "LifecycleOperator" | "StatefulSet";
  /** The StatefulSet read when `source` is `StatefulSet`. */
  statefulSet?: string;
}

export interface BackupStatus {
  /** How the operator knows whether the cluster can be backed up: shown so nobody has to guess. */
  readiness?: ReadinessStatus;
  nextScheduledBackup?: Timestamp;
  lastAttemptTime?: Timestamp;
  /** The cron window of the last scheduled attempt: at most one attempt per window. */
  lastAttemptScheduledTime?: Timestamp;
  lastBackupTime?: Timestamp;
  /** Object key of the last good snapshot. */
  lastBackupName?: string;
  lastBackupSize?: number;
  /** Go-style duration, e.g. `1m12.5s`. */
  lastBackupDuration?: string;
  lastBackupSHA256?: string;
  lastBackupRaftIndex?: number;
  consecutiveFailures?: number;
  /** Short code, e.g. `SnapshotFailed`, `DeadlineExceeded`. */
  lastFailureReason?: string;
  lastFailureMessage?: string;
  lastFailureTime?: Timestamp;
  lastRetentionDeleted?: number;
  observedSchedule?: ObservedSchedule;
  /**
   * The Job in flight: set with the lock, cleared with the result in one optimistic write,
   * so a Job's result is recorded exactly once whatever crashes in between.
   */
  currentJob?: CurrentJob | null;
  /** The last Job whose result was recorded. */
  lastRecordedJob?: string;
  preUpgrade?: PreUpgradeStatus;
  /** With `additionalTargets`: each destination's own record, `primary` first. */
  destinations?: DestinationStatus[];
  /** With `spec.backup.drill`: the drill schedule's state and the drill in flight. */
  drill?: DrillStatus;
  /** The last restore drill's outcome (kept as history when drills are turned off). */
  lastDrill?: LastDrill;
}

/** `status.backup.drill`: written by the drill manager only. */
export interface DrillStatus {
  nextScheduledDrill?: Timestamp;
  /** The cron window of the last scheduled drill: at most one drill per window. */
  lastAttemptScheduledTime?: Timestamp;
  observedSchedule?: ObservedSchedule;
  /** The drill Job in flight: set before it is created, cleared when its result is recorded. */
  currentJob?: CurrentDrillJob | null;
  lastRecordedJob?: string;
  /** When the last drill that passed (loaded or verified) finished. */
  lastSuccessTime?: Timestamp;
  consecutiveFailures?: number;
}

export interface CurrentDrillJob {
  name: string;
  type: "scheduled" | "manual";
  window?: Timestamp;
  createdAt: Timestamp;
}

/** `status.backup.lastDrill`. */
export interface LastDrill {
  /** When the drill finished. */
  time: Timestamp;
  jobName: string;
  outcome: "verified" | "loaded" | "failed";
  /** The backup drilled (with `latest`, the key it resolved to). */
  key?: string;
  raftIndex?: number;
  /** Go-style, e.g. `1m12.5s`. */
  duration?: string;
  /** The restored seal type (`shamir`, `transit`, …). */
  sealType?: string;
  /** Verified with a canary: the canary version read back. */
  canaryVersion?: number;
  secretMounts?: number;
  authMethods?: number;
  /** Failed: a short code, e.g. `SnapshotChecksumMismatch`. */
  reason?: string;
  /** What was proved and what was not, or why it failed (never a secret). */
  message: string;
}

/** One destination's record (`status.backup.destinations[]`). */
export interface DestinationStatus {
  name: string;
  /** `s3://bucket`, `gcs://bucket`, `azure://account/container`. */
  location?: string;
  lastBackupTime?: Timestamp;
  /** Its key of the last backup it holds verified. */
  lastBackupName?: string;
  consecutiveFailures?: number;
  lastFailureReason?: string;
  lastFailureMessage?: string;
  lastFailureTime?: Timestamp;
}

export interface CurrentJob {
  name: string;
  type: "scheduled" | "manual" | "pre-upgrade";
  /** The cron window (scheduled Jobs). */
  window?: Timestamp;
  createdAt: Timestamp;
  /** The 8 hex digits the Job's snapshot key ends in (`BACKUP_KEY_ID`): how storage is searched if its result is lost. */
  keyId?: string;
  /**
   * Set when the Job disappeared before its result was read: the confirm Job looking for its
   * backup in storage, and when the loss was seen. The Job is recorded once that answers.
   */
  confirm?: {
    job: string;
    startedAt: Timestamp;
    /** What is recorded if storage holds no backup: JobLost (the Job gone) or JobFailed (it left no readable result). */
    reason?: "JobLost" | "JobFailed";
  };
}

interface LockCommon {
  message?: string;
  acquiredAt: Timestamp;
  renewedAt?: Timestamp;
}

/** `status.operationLock`: one operation at a time; holder and operation always agree. */
export type OperationLock =
  | (LockCommon & { operation: "Backup"; holder: "openbaocluster/backup" })
  | (LockCommon & { operation: "Upgrade"; holder: "openbaocluster/upgrade" })
  | (LockCommon & { operation: "Restore"; holder: `openbaorestore/${string}` });

export interface OpenBaoClusterStatus {
  phase?: ClusterPhase;
  initialized?: boolean;
  currentVersion?: string;
  /** Non-null while an upgrade runs; its content belongs to the lifecycle operator. */
  upgrade?: Record<string, unknown> | null;
  backup?: BackupStatus;
  operationLock?: OperationLock | null;
  conditions?: Condition[];
}

export interface OpenBaoCluster {
  apiVersion: typeof apiVersion;
  kind: typeof clusterNames.kind;
  metadata: ObjectMeta;
  spec?: OpenBaoClusterSpec;
  status?: OpenBaoClusterStatus;
}

// ── OpenBaoRestore ──────────────────────────────────────────────────────────────────────────

interface RestoreSpecFields {
  /** Name of the OpenBaoCluster in the same namespace. */
  cluster: string;
  /**
   * `target` defaults to the cluster's `spec.backup.target`; `key` may be `latest` (the newest
   * verified backup of the cluster, resolved once by the Job and recorded in `status.snapshotKey`).
   */
  source: { target?: TargetSpec; key: string };
  image?: string;
  /** Use `snapshot-force` and skip cluster-state checks. */
  force?: boolean;
  /** Take the operation lock from its holder; requires `force`. */
  overrideOperationLock?: boolean;
}

/** Immutable after creation (CEL). */
export type OpenBaoRestoreSpec = RestoreSpecFields & AuthSpec;

export type RestorePhase = "Pending" | "Validating" | "Running" | "Completed" | "Failed";
export type TerminalRestorePhase = "Completed" | "Failed";

export interface OpenBaoRestoreStatus {
  phase?: RestorePhase;
  startTime?: Timestamp;
  completionTime?: Timestamp;
  snapshotKey?: string;
  snapshotSize?: number;
  message?: string;
  conditions?: Condition[];
}

export interface OpenBaoRestore {
  apiVersion: typeof apiVersion;
  kind: typeof restoreNames.kind;
  metadata: ObjectMeta;
  spec: OpenBaoRestoreSpec;
  status?: OpenBaoRestoreStatus;
}
