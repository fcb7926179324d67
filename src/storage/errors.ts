/**
 * Errors of the storage layer. Every failure of an object store reaches callers as a
 * `StorageError` with a stable `code` (what went wrong, whatever the provider), or as a
 * `TargetConfigError` naming the `target` field and the fix. A failing *source* stream is the
 * one exception: `upload` rejects with the source's own error, so the executor can tell an
 * OpenBao failure (exit 4) from a storage failure (exit 5).
 *
 * Messages are built here from the provider's status and error code, never copied whole from
 * an SDK, and pass through `redact` with the credentials' secret values: no secret reaches a
 * log line, an event or a status field through an error.
 *
 * `StorageError` is the base of the storage layer; `TargetConfigError` belongs to the
 * configuration layer (util/coded-error.ts).
 */
import { CodedError, ConfigLayerError } from "../util/coded-error.ts";
import { redact } from "../util/redact.ts";
import type { Provider } from "./target.ts";

export type StorageErrorCode =
  /** The bucket/container or the object does not exist. */
  | "NotFound"
  /** Credentials missing, rejected or not allowed to do this (HTTP 401/403, no ambient identity). */
  | "AuthDenied"
  /** No answer: connection refused, DNS, timeout, TLS handshake or an untrusted certificate. */
  | "Unreachable"
  /** The store asks us to slow down (HTTP 429, 503 SlowDown, ServerBusy). */
  | "Throttled"
  /** The upload would exceed the provider's part limit or part size. */
  | "TooLarge"
  /** The source delivered a different number of bytes than the declared contentLength. */
  | "SizeMismatch"
  /**
   * The store cannot use the server-side encryption key (or scope) asked for: unknown,
   * disabled, or not usable by this identity (S3 `KMS.*` / MinIO `kms:*` codes, Azure
   * encryption-scope codes).
   */
  | "EncryptionKeyUnusable"
  /**
   * A lock was asked for (target.objectLock) on a bucket that cannot lock objects: S3 answers
   * `InvalidRequest` "Bucket is missing Object Lock Configuration".
   */
  | "ObjectLockUnavailable"
  /** The caller's AbortSignal fired. */
  | "Aborted"
  /** Anything else the store answered. */
  | "Other";

export type StorageOperation = "upload" | "head" | "list" | "delete" | "download" | "connect";

export interface StorageErrorOptions {
  cause?: unknown;
  provider?: Provider | undefined;
  operation?: StorageOperation | undefined;
  /** The object key (or list prefix) the operation was about. */
  key?: string | undefined;
  /** HTTP status, when the store answered. */
  status?: number | undefined;
}

export class StorageError extends CodedError<StorageErrorCode> {
  readonly layer = "storage";
  readonly provider: Provider | undefined;
  readonly operation: StorageOperation | undefined;
  readonly key: string | undefined;
  readonly status: number | undefined;

  constructor(code: StorageErrorCode, message: string, options: StorageErrorOptions = {}) {
    super(code, message, options);
    this.provider = options.provider;
    this.operation = options.operation;
    this.key = options.key;
    this.status = options.status;
  }
}

/** A `target` (or credentials Secret) that cannot work; `field` is the one to fix. */
export class TargetConfigError extends ConfigLayerError<"InvalidTarget"> {
  /** e.g. `target.partSize`, `credentials.accountKey`. */
  readonly field: string;

  constructor(field: string, message: string) {
    super("InvalidTarget", `${field}: ${message}`);
    this.field = field;
  }
}

export function isStorageError(err: unknown): err is StorageError {
  return err instanceof StorageError;
}

/** Replaces every occurrence of every secret (4+ characters) with `[redacted]`. */
export { redact };

/**
 * What a provider adapter extracts from an SDK error; `classify` turns it into a code the
 * same way for every provider.
 */
export interface ErrorFacts {
  /** HTTP status of the store's answer. */
  status?: number | undefined;
  /** The store's or SDK's error code/name: `NoSuchKey`, `AuthenticationFailed`, `CredentialsProviderError`… */
  code?: string | undefined;
  /** The system error code of a failed connection: `ECONNREFUSED`, `ETIMEDOUT`, `CERT_HAS_EXPIRED`… */
  errno?: string | undefined;
  /** A short description from the SDK (redacted before use). */
  detail?: string | undefined;
}

const notFoundCodes = new Set(["NoSuchKey", "NoSuchBucket", "NotFound", "BlobNotFound", "ContainerNotFound"]);

const authCodes = new Set([
  // S3 and S3-compatible
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "InvalidClientTokenId",
  "AuthorizationHeaderMalformed",
  "CredentialsProviderError",
  "InvalidIdentityToken",
  "WebIdentityRejected",
  "IDPRejectedClaim",
  // Azure
  "AuthenticationFailed",
  "AuthorizationFailure",
  "AuthorizationPermissionMismatch",
  "InvalidAuthenticationInfo",
  "CredentialUnavailableError",
  "AuthenticationError",
  "AggregateAuthenticationError",
  // Google auth (token endpoint answers and missing ADC)
  "invalid_grant",
  "invalid_client",
  "unauthorized_client",
  "NoApplicationDefaultCredentials",
]);

const throttleCodes = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "ServerBusy",
  "rateLimitExceeded",
  "userRateLimitExceeded",
]);

const networkErrnos = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "EPIPE",
  "TimeoutError",
  "RequestTimeout",
  "REQUEST_SEND_ERROR",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);

/** Certificate problems: the store was reached but not trusted. */
const tlsErrnos = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "EPROTO",
  "ERR_SSL_WRONG_VERSION_NUMBER",
]);

export function isTlsErrno(errno: string | undefined): boolean {
  return errno !== undefined && tlsErrnos.has(errno);
}

/** AWS S3 answers KMS failures as `KMS.NotFoundException`, `KMS.DisabledException`…; MinIO as `kms:KeyNotFound`…; Azure as `EncryptionScope…`. */
const encryptionKeyCode = /^(KMS\.|kms:)|EncryptionScope/;

/** AWS: "Bucket is missing Object Lock Configuration"; MinIO: "Bucket is missing ObjectLockConfiguration". */
const objectLockMissing = /missing\s*Object\s*Lock\s*Configuration/i;

export function classify(facts: ErrorFacts): StorageErrorCode {
  const { status, code, errno } = facts;
  if (errno !== undefined && (networkErrnos.has(errno) || tlsErrnos.has(errno))) return "Unreachable";
  if (code !== undefined) {
    if (encryptionKeyCode.test(code)) return "EncryptionKeyUnusable";
    if (code === "InvalidRequest" && objectLockMissing.test(facts.detail ?? "")) return "ObjectLockUnavailable";
    if (notFoundCodes.has(code)) return "NotFound";
    if (authCodes.has(code)) return "AuthDenied";
    if (throttleCodes.has(code)) return "Throttled";
    if (networkErrnos.has(code) || tlsErrnos.has(code)) return "Unreachable";
  }
  if (status === 404) return "NotFound";
  if (status === 401 || status === 403) return "AuthDenied";
  if (status === 429) return "Throttled";
  return "Other";
}

const summaries: Record<StorageErrorCode, string> = {
  NotFound: "not found",
  AuthDenied: "access denied: check the credentials Secret, or the workload identity when none is given",
  Unreachable: "storage endpoint unreachable: check target.endpoint, the network path and DNS",
  Throttled: "the store is throttling requests; retry later or lower target.concurrency",
  TooLarge: "too large",
  SizeMismatch: "size mismatch",
  EncryptionKeyUnusable:
    "the store cannot use the encryption key asked for: check target.encryption (the key or scope exists and is enabled, and this identity may use it)",
  ObjectLockUnavailable:
    "the bucket cannot lock objects: target.objectLock needs a bucket created with Object Lock enabled; create one (or enable it on the bucket), or remove target.objectLock",
  Aborted: "aborted",
  Other: "failed",
};

export interface ErrorContext {
  provider: Provider;
  operation: StorageOperation;
  /** `bucket` (or `account/container`) the store writes to. */
  location: string;
  key?: string | undefined;
  secrets: readonly string[];
}

/** Builds the StorageError for a provider failure from the extracted facts. */
export function storageErrorFrom(err: unknown, facts: ErrorFacts, ctx: ErrorContext): StorageError {
  if (err instanceof StorageError) return err;
  // An AbortSignal the caller passed fired (the SDKs throw an AbortError for it).
  const code = stringField(err, "name") === "AbortError" ? "Aborted" : classify(facts);
  let summary = summaries[code];
  if (isTlsErrno(facts.errno ?? facts.code)) {
    summary =
      "TLS verification of the storage endpoint failed: put its CA certificate in the credentials Secret (caCert), " +
      "or set target.insecureSkipVerify for a test endpoint";
  }
  const what = [facts.status === undefined ? undefined : `HTTP ${facts.status}`, facts.code, facts.errno]
    .filter((part, i, all) => part !== undefined && all.indexOf(part) === i)
    .join(" ");
  // First line only: Azure appends request ids and times on further lines.
  const detail = facts.detail ? redact(facts.detail, ctx.secrets).split("\n")[0]?.trim().slice(0, 300) : "";
  const target = ctx.key === undefined ? ctx.location : `${ctx.location}/${ctx.key}`;
  const parenthesis = [what, detail].filter((part) => part !== "" && part !== undefined).join(": ");
  const message = `${ctx.provider} ${ctx.operation} ${target}: ${summary}${parenthesis ? ` (${parenthesis})` : ""}`;
  return new StorageError(code, message, {
    cause: err,
    provider: ctx.provider,
    operation: ctx.operation,
    key: ctx.key,
    status: facts.status,
  });
}

/** A store's error mapper: provider, location and secrets fixed, facts extracted by the provider adapter. */
export function errorMapper(
  provider: Provider,
  location: string,
  secrets: readonly string[],
  facts: (err: unknown) => ErrorFacts,
): (operation: StorageOperation, key: string | undefined, err: unknown) => StorageError {
  return (operation, key, err) => storageErrorFrom(err, facts(err), { provider, operation, location, key, secrets });
}

/** Reads common fields off an unknown thrown value without trusting its shape. */
export function field(err: unknown, name: string): unknown {
  return typeof err === "object" && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

export function stringField(err: unknown, name: string): string | undefined {
  const value = field(err, name);
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function numberField(err: unknown, name: string): number | undefined {
  const value = field(err, name);
  return typeof value === "number" ? value : undefined;
}

/** The system error code of the error or of any error in its `cause` chain (depth ≤ 5). */
export function systemErrno(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== undefined; depth++) {
    const code = stringField(current, "code");
    if (code !== undefined && (networkErrnos.has(code) || tlsErrnos.has(code))) return code;
    const name = stringField(current, "name");
    if (name !== undefined && networkErrnos.has(name)) return name;
    current = field(current, "cause");
  }
  return undefined;
}

export function messageOf(err: unknown): string | undefined {
  return err instanceof Error ? err.message : typeof err === "string" ? err : undefined;
}
