/**
 * Maps any error the executor meets to its exit category (SPEC §4) and a short stable
 * reason code for `status.backup.lastFailureReason`. Messages are redacted again here, as
 * the last line of defence before they reach the termination message and stdout.
 */
import { type ExitCode, exitCodes } from "../cli/exit-codes.ts";
import type { KubeLayerError } from "../kube/config.ts";
import { type OpenBaoError, redact } from "../openbao/errors.ts";
import type { SnapshotArchiveErrorCode, SnapshotLayerError } from "../snapshot/errors.ts";
import type { StorageError } from "../storage/errors.ts";
import { CodedError, type ConfigLayerError, isCoded } from "../util/coded-error.ts";
import type { Failure } from "./result.ts";

/** Why a verification step failed; recorded as the failure reason (`lastFailureReason`). */
export type VerificationReason =
  | "ObjectMissing"
  | "SizeMismatch"
  | "ChecksumMismatch"
  | "ManifestMissing"
  | "ManifestInvalid"
  | "NoVerifiedBackup"
  | "RestoreNotServed"
  /** `confirm` found no verified backup with the Job's key id. */
  | "BackupNotFound"
  /** The store reports another server-side encryption than `target.encryption` asks for. */
  | "EncryptionMismatch"
  /** The store reports another lock than `target.objectLock` asks for (or none). */
  | "ObjectLockMismatch"
  /** A stored archive that failed inspection on restore. */
  | SnapshotArchiveErrorCode
  // A restore drill (src/drill/) whose backup does not restore as its manifest says:
  /** The throwaway OpenBao refused the snapshot although its bytes match the manifest. */
  | "SnapshotRefused"
  /** The restored seal configuration is not the manifest's `sealType`, or the key material cannot fit it. */
  | "SealTypeMismatch"
  /** The archive's or the restored Raft index does not fit the manifest's `raftIndex`. */
  | "RaftIndexMismatch"
  /** The restored data carries another cluster id than the manifest's `clusterId`. */
  | "ClusterMismatch"
  /** The key material given (unseal keys, the throwaway's auto-unseal) does not open the restored data. */
  | "UnsealRefused"
  /** Unsealed, the restored data does not come up or cannot be read (it does not decrypt). */
  | "RestoredDataUnreadable"
  /** The canary the drill must read is not in the restored data (or was never recorded). */
  | "CanaryMissing"
  /** The restored canary is not the one the backup wrote just before its snapshot. */
  | "CanaryMismatch";

/**
 * A verification step failed after the bytes moved (size, checksum, manifest). The base of
 * the verification layer; its `code` is its `reason`.
 */
export class VerificationError extends CodedError<VerificationReason> {
  readonly layer = "verification";
  /** The same as `code`. */
  readonly reason: VerificationReason;
  constructor(reason: VerificationReason, message: string, options?: { cause?: unknown }) {
    super(reason, message, options);
    this.reason = reason;
  }
}

/**
 * Every coded error, as the union of the layers' bases: narrowing by `layer` narrows `code`
 * to that layer's codes, so a misspelt `case` does not compile.
 */
export type LayeredError =
  | ConfigLayerError
  | OpenBaoError
  | StorageError
  | SnapshotLayerError
  | VerificationError
  | KubeLayerError;

/** Each layer extends `CodedError` once, with its own `layer`, so every coded error is one of them. */
export function layered(err: unknown): LayeredError | undefined {
  return isCoded(err) ? (err as LayeredError) : undefined;
}

export interface Classified {
  readonly exitCode: ExitCode;
  readonly reason: string;
  readonly message: string;
}

/**
 * By layer, then by code. In restore and drill mode a corrupt archive is a stored object failing
 * verification (6); in backup mode it is what OpenBao sent (4). What no case claims (a
 * Kubernetes error, an invalid schedule, which the executor never meets, an uncoded error)
 * is `Terminated` when a signal stopped it, else `Unexpected`.
 */
export function classify(err: unknown, secrets: readonly string[] = [], mode: Failure["mode"] = "backup"): Classified {
  const message = redact(err instanceof Error ? err.message : String(err), secrets);
  const as = (exitCode: ExitCode, reason: string): Classified => ({ exitCode, reason, message });
  const coded = layered(err);
  switch (coded?.layer) {
    case "config":
      switch (coded.code) {
        case "SecretNotFound":
          return as(exitCodes.config, coded.code);
        case "InvalidSchedule":
          break;
        default:
          return as(exitCodes.config, "InvalidConfig");
      }
      break;
    case "verification":
      return as(exitCodes.verification, coded.code);
    case "snapshot":
      switch (coded.code) {
        case "ManifestInvalid":
          return as(exitCodes.verification, coded.code);
        case "SnapshotCorrupt":
        case "SnapshotTruncated":
          // A drill streams a stored object like a restore does.
          return as(mode === "restore" || mode === "drill" ? exitCodes.verification : exitCodes.snapshot, coded.code);
      }
      break;
    case "openbao":
      switch (coded.code) {
        case "AuthFailed":
        case "PermissionDenied":
          return as(exitCodes.auth, coded.code);
        case "NoLeader":
          return as(exitCodes.leaderDiscovery, coded.code);
        case "Unreachable":
          // Unreachable during discovery is a NoLeader; here it happened mid-run.
          return as(exitCodes.snapshot, "OpenBaoUnreachable");
        default:
          return as(exitCodes.snapshot, coded.code);
      }
    case "storage":
      return as(exitCodes.storage, `Storage${coded.code}`);
    case "kube":
    case undefined:
      break;
  }
  // SIGTERM (the Job's deadline, a deleted Pod) aborts whatever was in flight.
  if (err instanceof Error && (err.name === "AbortError" || /terminated by signal/.test(err.message))) {
    return as(exitCodes.snapshot, "Terminated");
  }
  return as(exitCodes.snapshot, "Unexpected");
}

/** The result line of a failed run: classified, redacted, timed from `started`. */
export function failureResult(
  mode: Failure["mode"],
  err: unknown,
  context: { secrets: readonly string[]; key: string | undefined; started: Date; now: Date },
): Failure {
  const failure = classify(err, context.secrets, mode);
  return {
    mode,
    ok: false,
    exitCode: failure.exitCode,
    reason: failure.reason,
    message: failure.message,
    key: context.key,
    durationMs: context.now.getTime() - context.started.getTime(),
    startedAt: context.started.toISOString(),
  };
}

/**
 * A transfer aborted because the executor was told to stop is reported as what it was: the
 * stop. Without this, SIGTERM during an upload (the Job's deadline, a deleted Pod) read as
 * `StorageAborted` (exit 5) and sent people to check their storage. Only the abort the signal
 * itself causes is relabelled; a failure that happened first keeps its own reason.
 */
export function stoppedBySignal(result: Failure): Failure {
  if (result.reason !== "StorageAborted") return result;
  return {
    ...result,
    exitCode: exitCodes.snapshot,
    reason: "Terminated",
    message: `stopped by a signal (the Job's activeDeadlineSeconds, a deleted Pod or a node drain) while transferring; ${result.message}`,
  };
}
