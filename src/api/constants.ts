/**
 * Every name the operator shares with the API server, other controllers and people: the API
 * group and kinds, condition types and reasons, event reasons, labels, annotations, lock
 * holders, the finalizer and defaults (SPEC §2–§3). Code elsewhere never spells these out.
 *
 * Each group is a frozen object plus a type of the same name holding its values, the
 * erasable-syntax stand-in for an enum: `Condition.BackupHealthy` is the value,
 * `ConditionType` the union of all values.
 */
import { defaultConcurrency, defaultPartSize, defaultRegion, minPartSize } from "../storage/target.ts";

// ── API ─────────────────────────────────────────────────────────────────────────────────────

export const group = "openbao.org";
export const version = "v1alpha1";
export const apiVersion = "openbao.org/v1alpha1";

export const clusterNames = {
  kind: "OpenBaoCluster",
  listKind: "OpenBaoClusterList",
  plural: "openbaoclusters",
  singular: "openbaocluster",
  shortNames: ["baocluster"],
} as const;

export const restoreNames = {
  kind: "OpenBaoRestore",
  listKind: "OpenBaoRestoreList",
  plural: "openbaorestores",
  singular: "openbaorestore",
  shortNames: ["baorestore"],
} as const;

/** `kubectl get openbao` lists both kinds. */
export const crdCategories = ["openbao"] as const;

// ── conditions ──────────────────────────────────────────────────────────────────────────────

export const Condition = {
  /** OpenBaoCluster: a backup or pre-upgrade Job of this cluster is running (True) or not. */
  BackingUp: "BackingUp",
  /** OpenBaoCluster: the last attempt succeeded and the last good backup is recent enough. */
  BackupHealthy: "BackupHealthy",
  /** OpenBaoCluster: the pre-upgrade snapshot for `spec.version` exists; a lifecycle controller may upgrade. */
  PreUpgradeSnapshotReady: "PreUpgradeSnapshotReady",
  /** OpenBaoRestore: the restore finished (True) or failed for good (False). */
  RestoreComplete: "RestoreComplete",
  /** OpenBaoRestore: the restore took the operation lock away from its holder (`overrideOperationLock`). */
  OperationLockOverride: "OperationLockOverride",
  /** OpenBaoCluster with `spec.backup.drill`: the last restore drill proved a backup restores (src/drill/manager/). */
  RestoreVerified: "RestoreVerified",
  /** OpenBaoCluster with `spec.backup.additionalTargets`: every destination holds the last backup. */
  DestinationsHealthy: "DestinationsHealthy",
} as const;
export type ConditionType = (typeof Condition)[keyof typeof Condition];

/** Reasons on conditions (CamelCase, stable: automation matches on them). */
export const Reason = {
  // BackingUp
  BackupJobRunning: "BackupJobRunning",
  PreUpgradeJobRunning: "PreUpgradeJobRunning",
  NoBackupRunning: "NoBackupRunning",
  /** A backup is due but preflight refused it; the blocked reasons are in the message and an Event. */
  BackupBlocked: "BackupBlocked",
  // BackupHealthy
  BackupSucceeded: "BackupSucceeded",
  BackupFailed: "BackupFailed",
  /** At least two schedule windows passed since the last good backup. */
  BackupStale: "BackupStale",
  /** No backup has completed yet and none is overdue. */
  NoBackupYet: "NoBackupYet",
  /** The schedule or time zone cannot be used (e.g. a zone missing from the tz database). */
  InvalidSchedule: "InvalidSchedule",
  /** spec.backup cannot be used (e.g. no authentication configured); a missing Secret is SecretNotFound instead. */
  InvalidConfiguration: "InvalidConfiguration",
  // PreUpgradeSnapshotReady
  PreUpgradeBackupPending: "PreUpgradeBackupPending",
  PreUpgradeBackupRunning: "PreUpgradeBackupRunning",
  PreUpgradeBackupSucceeded: "PreUpgradeBackupSucceeded",
  /** SPEC §3: three attempts failed; nothing retries until `spec.version` changes. */
  PreUpgradeBackupFailed: "PreUpgradeBackupFailed",
  PreUpgradeBackupNotRequired: "PreUpgradeBackupNotRequired",
  // RestoreComplete
  /** Checking the cluster, the spec and the Secrets before the lock is taken. */
  RestoreValidating: "RestoreValidating",
  /** Valid, waiting for the operation lock (or for an older restore of the cluster); the message names the holder. */
  RestoreWaitingForLock: "RestoreWaitingForLock",
  RestoreRunning: "RestoreRunning",
  RestoreSucceeded: "RestoreSucceeded",
  RestoreFailed: "RestoreFailed",
  RestoreValidationFailed: "RestoreValidationFailed",
  // OperationLockOverride
  OperationLockOverridden: "OperationLockOverridden",
  // RestoreVerified
  /** The last drill unsealed the restored backup and read its data (outcome `verified`). */
  DrillVerified: "DrillVerified",
  /** The last drill proved the backup loads, without key material to open it (outcome `loaded`). */
  DrillLoaded: "DrillLoaded",
  /** The last drill failed: the backup did not restore, or the drill could not run. */
  DrillFailed: "DrillFailed",
  /** At least two drill windows passed since the last drill that passed. */
  DrillStale: "DrillStale",
  /** spec.backup.drill cannot be used (schedule, time zone, no image to derive). */
  DrillInvalid: "DrillInvalid",
  /** No drill has finished yet and none is overdue. */
  NoDrillYet: "NoDrillYet",
  // DestinationsHealthy
  /** The last backup Job stored a verified copy in every destination. */
  AllDestinationsStored: "AllDestinationsStored",
  /** A destination holds no copy of the last backup (whatever the success policy made of the Job). */
  DestinationFailed: "DestinationFailed",
  /** No backup Job has reported its destinations yet. */
  NoDestinationReportYet: "NoDestinationReportYet",
} as const;
export type ReasonValue = (typeof Reason)[keyof typeof Reason];

/**
 * The reasons each condition carries, with the status it has then. Every `Reason` belongs to
 * exactly one condition (test/unit/api/constants.test.ts); docs/metrics-and-alerts.md lists
 * the same (test/docs/metrics-docs.test.ts).
 */
export const conditionReasons: Readonly<
  Record<ConditionType, readonly { readonly reason: ReasonValue; readonly status: "True" | "False" | "Unknown" }[]>
> = {
  BackingUp: [
    { reason: Reason.BackupJobRunning, status: "True" },
    { reason: Reason.PreUpgradeJobRunning, status: "True" },
    { reason: Reason.NoBackupRunning, status: "False" },
    { reason: Reason.BackupBlocked, status: "False" },
  ],
  BackupHealthy: [
    { reason: Reason.BackupSucceeded, status: "True" },
    { reason: Reason.BackupFailed, status: "False" },
    { reason: Reason.BackupStale, status: "False" },
    { reason: Reason.InvalidSchedule, status: "False" },
    { reason: Reason.InvalidConfiguration, status: "False" },
    { reason: Reason.NoBackupYet, status: "Unknown" },
  ],
  PreUpgradeSnapshotReady: [
    { reason: Reason.PreUpgradeBackupSucceeded, status: "True" },
    { reason: Reason.PreUpgradeBackupNotRequired, status: "True" },
    { reason: Reason.PreUpgradeBackupPending, status: "False" },
    { reason: Reason.PreUpgradeBackupRunning, status: "False" },
    { reason: Reason.PreUpgradeBackupFailed, status: "False" },
  ],
  RestoreComplete: [
    { reason: Reason.RestoreSucceeded, status: "True" },
    { reason: Reason.RestoreValidating, status: "False" },
    { reason: Reason.RestoreWaitingForLock, status: "False" },
    { reason: Reason.RestoreRunning, status: "False" },
    { reason: Reason.RestoreFailed, status: "False" },
    { reason: Reason.RestoreValidationFailed, status: "False" },
  ],
  OperationLockOverride: [{ reason: Reason.OperationLockOverridden, status: "True" }],
  RestoreVerified: [
    { reason: Reason.DrillVerified, status: "True" },
    { reason: Reason.DrillLoaded, status: "True" },
    { reason: Reason.DrillFailed, status: "False" },
    { reason: Reason.DrillStale, status: "False" },
    { reason: Reason.DrillInvalid, status: "False" },
    { reason: Reason.NoDrillYet, status: "Unknown" },
  ],
  DestinationsHealthy: [
    { reason: Reason.AllDestinationsStored, status: "True" },
    { reason: Reason.DestinationFailed, status: "False" },
    { reason: Reason.NoDestinationReportYet, status: "Unknown" },
  ],
};

/** Why preflight refused to start a Job (SPEC §3), for events, messages and `BackupBlocked`. */
export const BlockedReason = {
  ClusterNotRunning: "ClusterNotRunning",
  ClusterNotInitialized: "ClusterNotInitialized",
  UpgradeInProgress: "UpgradeInProgress",
  RestoreInProgress: "RestoreInProgress",
  OperationLockHeld: "OperationLockHeld",
  BackupInProgress: "BackupInProgress",
  AuthNotConfigured: "AuthNotConfigured",
  SecretNotFound: "SecretNotFound",
} as const;
export type BlockedReasonValue = (typeof BlockedReason)[keyof typeof BlockedReason];

/** Short failure codes the operator itself writes to `status.backup.lastFailureReason`. */
export const FailureReason = {
  /** The Job hit `activeDeadlineSeconds`. */
  DeadlineExceeded: "DeadlineExceeded",
  /** The Job failed without a readable termination message. */
  JobFailed: "JobFailed",
  /** The Job disappeared before it reported, and storage holds no backup of it (or could not be asked). */
  JobLost: "JobLost",
  /** The kernel killed the executor at its container memory limit. */
  OOMKilled: "OOMKilled",
  /** A restore took the operation lock over (`overrideOperationLock`) and the Job was stopped (src/lock/). */
  LockOverridden: "LockOverridden",
} as const;

// ── events ──────────────────────────────────────────────────────────────────────────────────

export const EventReason = {
  BackupJobCreated: "BackupJobCreated",
  BackupSucceeded: "BackupSucceeded",
  BackupFailed: "BackupFailed",
  BackupBlocked: "BackupBlocked",
  /** Several windows were missed (operator down); they collapse into one run. */
  BackupCatchUp: "BackupCatchUp",
  ManualBackupRequested: "ManualBackupRequested",
  ScheduleInvalid: "ScheduleInvalid",
  ScheduleChanged: "ScheduleChanged",
  RetentionFailed: "RetentionFailed",
  /** One of several destinations did not store a verified copy (whatever the success policy said). */
  BackupDestinationFailed: "BackupDestinationFailed",
  /** A backup asked to write a drill canary could not: it is stored, but no drill can verify its data. */
  BackupCanaryNotWritten: "BackupCanaryNotWritten",
  /** A Job with the deterministic name exists but is not ours (no owner reference with our UID). */
  JobNameConflict: "JobNameConflict",
  LockAcquired: "LockAcquired",
  LockReleased: "LockReleased",
  /** A lock whose Job disappeared, or whose owner stopped existing, was released. */
  LockRecovered: "LockRecovered",
  /** A backup Job disappeared before its result was read: a confirm Job looks for its backup in storage. */
  BackupResultMissing: "BackupResultMissing",
  PreUpgradeBackupCreated: "PreUpgradeBackupCreated",
  PreUpgradeBackupSucceeded: "PreUpgradeBackupSucceeded",
  PreUpgradeBackupFailed: "PreUpgradeBackupFailed",
  RestoreValidating: "RestoreValidating",
  RestoreJobCreated: "RestoreJobCreated",
  RestoreSucceeded: "RestoreSucceeded",
  RestoreFailed: "RestoreFailed",
  OperationLockOverridden: "OperationLockOverridden",
  DrillJobCreated: "DrillJobCreated",
  /** A drill passed; the message says what it proved (loaded or verified). */
  DrillSucceeded: "DrillSucceeded",
  DrillFailed: "DrillFailed",
  ManualDrillRequested: "ManualDrillRequested",
  /** spec.backup.drill cannot be used; the message names the field and the fix. */
  DrillInvalid: "DrillInvalid",
} as const;
export type EventReasonValue = (typeof EventReason)[keyof typeof EventReason];

// ── labels and annotations ──────────────────────────────────────────────────────────────────

export const Label = {
  /** `scheduled`, `manual` or `pre-upgrade` on every backup Job and its Pod. */
  BackupType: "openbao.org/backup-type",
  /** The OpenBaoCluster's name, shortened by `labelValue` when longer than a label value may be. */
  Cluster: "openbao.org/cluster",
  /** The OpenBaoRestore's name (shortened likewise) on restore Jobs. */
  Restore: "openbao.org/restore",
  /** `scheduled` or `manual` on every restore-drill Job and its Pod (never together with backup-type). */
  Drill: "openbao.org/drill",
  ManagedBy: "app.kubernetes.io/managed-by",
  Name: "app.kubernetes.io/name",
  Component: "app.kubernetes.io/component",
  Instance: "app.kubernetes.io/instance",
} as const;

export const BackupType = {
  Scheduled: "scheduled",
  Manual: "manual",
  PreUpgrade: "pre-upgrade",
} as const;
export type BackupTypeValue = (typeof BackupType)[keyof typeof BackupType];

/** Values of the standard `app.kubernetes.io/*` labels on what the operator creates. */
export const LabelValue = {
  ManagedBy: "openbao-backup",
  Name: "openbao-backup",
  ComponentBackup: "backup",
  ComponentRestore: "restore",
  ComponentDrill: "drill",
} as const;

/** Label-key prefixes users may not set through `spec.backup.podLabels`: the operator's and the Job controller's. */
export const reservedLabelPrefixes = ["openbao.org/", "batch.kubernetes.io/"] as const;

export const Annotation = {
  /** On an OpenBaoCluster: any non-empty value requests one manual backup (edge-triggered, SPEC §2). */
  TriggerBackup: "openbao.org/trigger-backup",
  /** On an OpenBaoCluster with `spec.backup.drill`: any non-empty value requests one restore drill now. */
  TriggerDrill: "openbao.org/trigger-drill",
  /** On a backup Job: the cron window it runs for (RFC 3339, UTC); absent on manual Jobs. */
  ScheduledTime: "openbao.org/scheduled-time",
  /** On a Job: the full OpenBaoCluster name, when the label had to be shortened or not. */
  ClusterName: "openbao.org/cluster-name",
  /** On a manual backup Job: the trigger annotation's value it answered. */
  Trigger: "openbao.org/trigger",
  /** On a pre-upgrade Job: the `spec.version` it protects an upgrade to. */
  TargetVersion: "openbao.org/target-version",
  /** On a pre-upgrade Job: its attempt number, from 1. */
  Attempt: "openbao.org/attempt",
  /** On a restore Job: the full OpenBaoRestore name. */
  RestoreName: "openbao.org/restore-name",
  /**
   * On a backup Job: the 8 hex digits its snapshot key ends in (`…-<key-id>.snap`), so a Job
   * and its backup are matched whatever time the key carries (the run's start, not the window).
   */
  KeyId: "openbao.org/key-id",
  /** On a confirm Job: the backup Job whose lost result it looks for in storage. */
  Confirms: "openbao.org/confirms",
} as const;

// ── the operation lock ──────────────────────────────────────────────────────────────────────
// Its names only; every decision about it (acquire, renew, override, release, recovery) is in src/lock/.

export const LockOperation = {
  Backup: "Backup",
  Upgrade: "Upgrade",
  Restore: "Restore",
} as const;
export type LockOperationValue = (typeof LockOperation)[keyof typeof LockOperation];

export const LockHolder = {
  /** Scheduled, manual and pre-upgrade backups (pre-upgrade snapshots reuse the backup machinery). */
  Backup: "openbaocluster/backup",
  Upgrade: "openbaocluster/upgrade",
} as const;

export const restoreLockHolderPrefix = "openbaorestore/";

/** The holder string of one OpenBaoRestore: `openbaorestore/<name>`. */
export function restoreLockHolder(restoreName: string): `openbaorestore/${string}` {
  return `${restoreLockHolderPrefix}${restoreName}`;
}

/**
 * On OpenBaoRestore: kept until the restore released the cluster's operation lock, so deleting
 * a running restore never leaves the lock held (SPEC §3).
 */
export const restoreFinalizer = "openbao.org/release-operation-lock";

// ── defaults ────────────────────────────────────────────────────────────────────────────────

/** Operator environment variable naming the audience of the projected JWT in backup Jobs. */
export const jwtAudienceEnv = "OPENBAO_JWT_AUDIENCE";
export const defaultJwtAudience = "openbao-internal";
/** The audience of the projected token for S3 web identity (IRSA). */
export const awsWebIdentityAudience = "sts.amazonaws.com";

/** `OpenBaoRestore.spec.source.key` meaning the newest verified backup of the cluster (resolved by the Job). */
export const latestSnapshotKey = "latest";

export const defaults = {
  timeZone: "UTC",
  jwtAuthPath: "jwt",
  tokenSecretKey: "token",
  /** `tlsSecretRef` defaults to `<cluster>` + this. */
  tlsSecretSuffix: "-tls-ca",
  /** Key of the CA certificate in the TLS Secret. */
  tlsCaKey: "ca.crt",
  provider: "s3",
  region: defaultRegion,
  partSize: defaultPartSize,
  concurrency: defaultConcurrency,
  activeDeadlineSeconds: 3600,
  /** OpenBao API port for the default member addresses. */
  openbaoPort: 8200,
  /** The throwaway OpenBao of a drill Pod: `<repository>:<cluster version>` unless spec.backup.drill.image is set. */
  drillImageRepository: "quay.io/openbao/openbao",
  /** What a drill restores unless spec.backup.drill.key names a backup: the newest verified one. */
  drillKey: "latest",
} as const;

export const limits = {
  minPartSize,
  /** S3's largest part; the schema also caps Azure at its 4000 MiB block. */
  maxPartSize: 5 * 1024 * 1024 * 1024,
  maxAzurePartSize: 4000 * 1024 * 1024,
  minConcurrency: 1,
  maxConcurrency: 16,
  minReplicas: 1,
  maxReplicas: 100,
  /** SPEC §3: a pre-upgrade snapshot is attempted at most this many times per target version. */
  preUpgradeMaxAttempts: 3,
  /** Kubernetes object names that must also be DNS labels (Jobs: their name becomes a label value). */
  maxJobNameLength: 63,
  maxLabelValueLength: 63,
  maxObjectNameLength: 253,
} as const;
