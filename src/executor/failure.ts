/**
 * Maps any error the executor meets to its exit category (SPEC §4) and a short stable
 * reason code for `status.backup.lastFailureReason`. Messages are redacted again here, as
 * the last line of defence before they reach the termination message and stdout.
 */
import { type ExitCode, exitCodes } from "../cli/exit-codes.ts";
import { OpenBaoError, redact } from "../openbao/errors.ts";
import { KeyPartError, ManifestError, RetentionPolicyError, SnapshotArchiveError } from "../snapshot/errors.ts";
import { StorageError, TargetConfigError } from "../storage/errors.ts";
import { DurationError } from "../util/duration.ts";
import { ConfigError } from "./config.ts";
import { SecretNotFoundError } from "./required-secrets.ts";
import type { Failure } from "./result.ts";
import { UsageError } from "./settings.ts";

/** A verification step failed after the bytes moved (size, checksum, manifest). */
export class VerificationError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VerificationError";
    this.reason = reason;
  }
}

export interface Classified {
  readonly exitCode: ExitCode;
  readonly reason: string;
  readonly message: string;
}

/**
 * In restore mode a corrupt archive is a stored object failing verification (6); in backup
 * mode it is what OpenBao sent (4).
 */
export function classify(
  err: unknown,
  secrets: readonly string[] = [],
  mode: "backup" | "restore" = "backup",
): Classified {
  const message = redact(err instanceof Error ? err.message : String(err), secrets);
  const as = (exitCode: ExitCode, reason: string): Classified => ({ exitCode, reason, message });
  if (err instanceof SecretNotFoundError) return as(exitCodes.config, "SecretNotFound");
  if (err instanceof ConfigError || err instanceof UsageError) return as(exitCodes.config, "InvalidConfig");
  if (err instanceof TargetConfigError || err instanceof KeyPartError) return as(exitCodes.config, "InvalidConfig");
  if (err instanceof DurationError || err instanceof RetentionPolicyError) return as(exitCodes.config, "InvalidConfig");
  if (err instanceof VerificationError) return as(exitCodes.verification, err.reason);
  if (err instanceof ManifestError) return as(exitCodes.verification, "ManifestInvalid");
  if (err instanceof SnapshotArchiveError)
    return as(mode === "restore" ? exitCodes.verification : exitCodes.snapshot, err.code);
  if (err instanceof OpenBaoError) {
    switch (err.code) {
      case "AuthFailed":
      case "PermissionDenied":
        return as(exitCodes.auth, err.code);
      case "NoLeader":
        return as(exitCodes.leaderDiscovery, err.code);
      case "Unreachable":
        // Unreachable during discovery is a NoLeader; here it happened mid-run.
        return as(exitCodes.snapshot, "OpenBaoUnreachable");
      default:
        return as(exitCodes.snapshot, err.code);
    }
  }
  if (err instanceof StorageError) return as(exitCodes.storage, `Storage${err.code}`);
  // SIGTERM (the Job's deadline, a deleted Pod) aborts whatever was in flight.
  if (err instanceof Error && (err.name === "AbortError" || /terminated by signal/.test(err.message))) {
    return as(exitCodes.snapshot, "Terminated");
  }
  return as(exitCodes.snapshot, "Unexpected");
}

/** The result line of a failed run: classified, redacted, timed from `started`. */
export function failureResult(
  mode: "backup" | "restore",
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
