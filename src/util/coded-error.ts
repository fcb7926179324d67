/**
 * One shape for every error this project throws on purpose, so that exit codes and failure
 * reasons (SPEC §4) are decided in one place, by `layer` and then by `code`, instead of by
 * chains of `instanceof` that silently miss a class nobody remembered to list:
 *
 * - `layer` says which part of the system failed (configuration, OpenBao, storage, the
 *   snapshot bytes, a verification step, Kubernetes); each layer has one base class, beside
 *   the layer's code (the configuration layer spans modules, so its base is here);
 * - `code` is a stable, typed name of what went wrong within that layer (`InvalidTarget`,
 *   `AuthFailed`, `SnapshotTruncated`), never parsed out of a message;
 * - the fields a caller needs are typed properties of the class (`field`, `status`, …);
 * - `{ cause }` is kept, so the underlying error (an errno, an SDK error) stays inspectable.
 *
 * `name` is the concrete class's name. Messages name the fix and never contain a secret.
 */

/** The parts of the system an error can come from. */
export type Layer = "config" | "openbao" | "storage" | "snapshot" | "verification" | "kube";

export abstract class CodedError<Code extends string> extends Error {
  abstract readonly layer: Layer;
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** Any of this project's coded errors (of any layer). */
export function isCoded(err: unknown): err is CodedError<string> {
  return err instanceof CodedError;
}

/** The codes of the configuration layer: input that cannot be used as given. Exit 1. */
export type ConfigErrorCode =
  /** An executor setting (environment variable or flag). */
  | "InvalidConfig"
  /** A command line that cannot be parsed, or a request the command refuses. */
  | "InvalidUsage"
  /** A storage `target` or its credentials. */
  | "InvalidTarget"
  /** A part of an object key (`pathPrefix`, namespace, cluster). */
  | "InvalidKeyPart"
  | "InvalidDuration"
  | "InvalidRetentionPolicy"
  /** `spec.backup.schedule` or `spec.backup.timeZone`. */
  | "InvalidSchedule"
  /** A Secret the Job's volumes should hold is missing or lacks its key. */
  | "SecretNotFound";

/**
 * The configuration layer: what a person wrote (a spec, a setting, a flag) or provided (a
 * Secret) cannot be used. The message names the field to fix.
 */
export abstract class ConfigLayerError<Code extends ConfigErrorCode = ConfigErrorCode> extends CodedError<Code> {
  readonly layer = "config";
}
