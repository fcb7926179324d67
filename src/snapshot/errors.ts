/**
 * Errors of the snapshot layer (key naming, manifests, retention policy, archive inspection).
 * Each has a stable `code` for callers to branch on and typed extra fields; messages name the
 * offending field or file and never contain a secret. Mapping to exit codes (SPEC §4) belongs
 * to the executor: configuration errors (`InvalidKeyPart`, `InvalidRetentionPolicy`) are
 * category 1, archive errors (`SnapshotCorrupt`, `SnapshotTruncated`) category 4, a bad
 * manifest on restore category 6.
 *
 * Key parts and retention policies are configuration, so their errors belong to the
 * configuration layer (`ConfigLayerError`); manifests and archives to the snapshot layer
 * (`SnapshotLayerError`). See util/coded-error.ts.
 */
import { CodedError, ConfigLayerError } from "../util/coded-error.ts";

export type SnapshotErrorCode = "ManifestInvalid" | SnapshotArchiveErrorCode;

/** The snapshot layer: stored or streamed snapshot data that is not what it should be. */
export abstract class SnapshotLayerError<Code extends SnapshotErrorCode = SnapshotErrorCode> extends CodedError<Code> {
  readonly layer = "snapshot";
}

/** A part of an object key (`pathPrefix`, `namespace`, `cluster`, …) that cannot be used. */
export class KeyPartError extends ConfigLayerError<"InvalidKeyPart"> {
  /** The configuration field at fault, e.g. `pathPrefix`. */
  readonly field: string;

  constructor(field: string, message: string) {
    super("InvalidKeyPart", `${field}: ${message}`);
    this.field = field;
  }
}

/** A manifest (`<key>.json`) that does not parse or does not describe what it should. */
export class ManifestError extends SnapshotLayerError<"ManifestInvalid"> {
  /** The manifest field at fault, when one is. */
  readonly field: string | undefined;

  constructor(message: string, options: { field?: string; cause?: unknown } = {}) {
    super(
      "ManifestInvalid",
      options.field ? `manifest field "${options.field}": ${message}` : `manifest: ${message}`,
      options,
    );
    this.field = options.field;
  }
}

/** A retention policy that cannot be applied (the planner refuses rather than guesses). */
export class RetentionPolicyError extends ConfigLayerError<"InvalidRetentionPolicy"> {
  readonly field: string;

  constructor(field: string, message: string) {
    super("InvalidRetentionPolicy", `retention.${field}: ${message}`);
    this.field = field;
  }
}

export type SnapshotArchiveErrorCode = "SnapshotCorrupt" | "SnapshotTruncated";

/**
 * Which check failed:
 * - `empty`: no bytes at all;
 * - `gzip`: not gzip, or the compressed stream is damaged or cut short;
 * - `trailing-data`: bytes after the end of the gzip stream;
 * - `tar`: a damaged, truncated or unterminated tar structure, or data after its end;
 * - `unexpected-file` / `duplicate-file` / `missing-file`: the archive's file list is wrong;
 * - `too-large`: a file that is read into memory exceeds its bound;
 * - `meta`: meta.json does not decode or does not match state.bin;
 * - `checksums`: SHA256SUMS is malformed, incomplete, or a file's SHA-256 does not match it.
 */
export type SnapshotArchiveProblem =
  | "empty"
  | "gzip"
  | "trailing-data"
  | "tar"
  | "unexpected-file"
  | "duplicate-file"
  | "missing-file"
  | "too-large"
  | "meta"
  | "checksums";

/** The snapshot stream is not a complete, intact OpenBao Raft snapshot archive. */
export class SnapshotArchiveError extends SnapshotLayerError<SnapshotArchiveErrorCode> {
  readonly problem: SnapshotArchiveProblem;
  /** The archive member concerned, when one is. */
  readonly file: string | undefined;

  constructor(
    code: SnapshotArchiveErrorCode,
    problem: SnapshotArchiveProblem,
    message: string,
    options: { file?: string; cause?: unknown } = {},
  ) {
    super(code, `${code === "SnapshotTruncated" ? "truncated" : "corrupt"} snapshot: ${message}`, options);
    this.problem = problem;
    this.file = options.file;
  }
}
