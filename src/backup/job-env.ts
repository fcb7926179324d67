/**
 * The backup-specific settings of a backup (or confirm) Job, on top of what every executor Job
 * gets (src/jobs/executor-job.ts): the kind of snapshot, its key id, retention and the size hint.
 *
 * Retention settings go to every backup Job, pre-upgrade ones included: the executor applies
 * retention after scheduled and manual backups only (pre-upgrade snapshots are rollback points,
 * never pruned, and a confirm Job only reads), but `target.objectLock` locks each object until
 * creation + `retention.maxAge` + grace, and a pre-upgrade snapshot must be locked too.
 * With `spec.backup.drill.canaryPath` every backup writes a fresh canary just before its
 * snapshot (BACKUP_CANARY_PATH), which restore drills read back.
 */
import { BackupType } from "../api/constants.ts";
import type { ResolvedBackupSpec } from "../api/predicates.ts";
import type { JobRequest } from "./plan.ts";

export function backupJobEnv(
  request: Pick<JobRequest, "type" | "keyId" | "sizeHint">,
  spec: Pick<ResolvedBackupSpec, "retention" | "canaryPath">,
): Record<string, string> {
  return {
    BACKUP_TYPE: request.type === BackupType.PreUpgrade ? "pre-upgrade" : "scheduled",
    ...(request.keyId === undefined ? {} : { BACKUP_KEY_ID: request.keyId }),
    ...(spec.retention?.maxCount !== undefined ? { BACKUP_RETENTION_MAX_COUNT: String(spec.retention.maxCount) } : {}),
    ...(spec.retention?.maxAge !== undefined ? { BACKUP_RETENTION_MAX_AGE: spec.retention.maxAge } : {}),
    ...(request.sizeHint === undefined ? {} : { BACKUP_SIZE_HINT: String(request.sizeHint) }),
    // Drills read it back from the restored data: proof that this backup's data restores.
    ...(spec.canaryPath === undefined ? {} : { BACKUP_CANARY_PATH: spec.canaryPath }),
  };
}
