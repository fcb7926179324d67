/**
 * Server-side encryption: what a target asks its store for (`target.encryption`, parsed in
 * target.ts) and whether an object the store holds got it (`ObjectHead.encryption`). The
 * stores send the request with every upload (S3 `x-amz-server-side-encryption` and
 * `x-amz-server-side-encryption-aws-kms-key-id` on PutObject / CreateMultipartUpload, GCS
 * `kmsKeyName` on the upload, Azure `x-ms-encryption-scope` on every block and the block
 * list); a backup then compares what HEAD reports for the snapshot and its manifest
 * (src/executor/backup.ts), because a store may ignore a request it does not understand
 * (emulators do) and a bucket default may differ from what was asked.
 *
 * Reading needs nothing: SSE-S3, SSE-KMS, CMEK and encryption scopes decrypt on the server
 * for any caller allowed to read (and, for KMS, to decrypt with the key).
 *
 * What cannot be compared: an S3 KMS *alias* (`alias/<name>` or an alias ARN) — S3 reports
 * the key ARN the alias pointed to, and resolving an alias needs KMS permissions a backup
 * identity does not otherwise need. Then only the type (`aws:kms`) is checked.
 */
import { StorageError } from "./errors.ts";
import type { StoredEncryption } from "./object-store.ts";
import type { Provider, Target } from "./target.ts";

/** `ObjectHead.encryption.type` of a GCS object with a customer-managed key. */
export const gcsCmekType = "cmek";
/** `ObjectHead.encryption.type` of an Azure blob written with an encryption scope. */
export const azureScopeType = "encryption-scope";

/** MinIO reports a key of its KMS as `arn:aws:kms:<name>`. */
const minioKeyArnPrefix = "arn:aws:kms:";

/** What the target asks for, in words; undefined when it asks for nothing (the bucket's default). */
export function describeRequestedEncryption(target: Target): string | undefined {
  const requested = target.encryption;
  if (requested === undefined) return undefined;
  switch (target.provider) {
    case "s3": {
      const s3 = target.encryption;
      if (s3 === undefined || s3.type === "AES256") return "SSE-S3 (AES256)";
      return `SSE-KMS (aws:kms) with ${s3.kmsKeyId === undefined ? "the store's default key" : `key ${s3.kmsKeyId}`}`;
    }
    case "gcs":
      return `Cloud KMS key ${target.encryption?.kmsKeyName}`;
    case "azure":
      return `encryption scope ${target.encryption?.encryptionScope}`;
  }
}

/** What the store reports, in words. */
export function describeStoredEncryption(provider: Provider, stored: StoredEncryption): string {
  switch (provider) {
    case "s3":
      if (stored.type === undefined) return "no server-side encryption";
      if (stored.type === "AES256") return "SSE-S3 (AES256)";
      return `${stored.type === "aws:kms" ? "SSE-KMS (aws:kms)" : stored.type} with ${stored.key === undefined ? "no key reported" : `key ${stored.key}`}`;
    case "gcs":
      return stored.key === undefined ? "no Cloud KMS key (Google-managed encryption)" : `Cloud KMS key ${stored.key}`;
    case "azure":
      return stored.key === undefined
        ? "no encryption scope (the account's default encryption)"
        : `encryption scope ${stored.key}`;
  }
}

/** An S3 KMS alias, which S3 never reports back (it reports the key ARN). */
export function isKmsAlias(keyId: string): boolean {
  return keyId.startsWith("alias/") || /^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(keyId);
}

/**
 * Whether the key S3 reports is the key that was named: the same string, MinIO's
 * `arn:aws:kms:<name>`, or (AWS) the key ARN of a key named by its id. An alias matches any
 * key (see the module comment).
 */
export function s3KeyMatches(requested: string, reported: string | undefined): boolean {
  if (isKmsAlias(requested)) return true;
  if (reported === undefined) return false;
  if (reported === requested) return true;
  if (reported === `${minioKeyArnPrefix}${requested}`) return true;
  return !requested.startsWith("arn:") && reported.startsWith("arn:") && reported.endsWith(`:key/${requested}`);
}

/**
 * Why `stored` is not what `target` asks for, or undefined when it is — and when the target
 * asks for nothing: then the bucket's default applies and nothing is compared (emulators
 * report no encryption at all).
 */
export function encryptionMismatch(target: Target, stored: StoredEncryption): string | undefined {
  const requested = describeRequestedEncryption(target);
  if (requested === undefined) return undefined;
  const problem = `${requested} was asked for; the store reports ${describeStoredEncryption(target.provider, stored)}`;
  switch (target.provider) {
    case "s3": {
      const s3 = target.encryption;
      if (s3 === undefined) return undefined;
      if (stored.type !== s3.type) return problem;
      if (s3.type === "aws:kms" && s3.kmsKeyId !== undefined && !s3KeyMatches(s3.kmsKeyId, stored.key)) return problem;
      return undefined;
    }
    case "gcs": {
      const name = target.encryption?.kmsKeyName;
      if (name === undefined) return undefined;
      // GCS reports the key version it used: <name>/cryptoKeyVersions/<n>.
      const ok = stored.key === name || stored.key?.startsWith(`${name}/cryptoKeyVersions/`) === true;
      return ok ? undefined : problem;
    }
    case "azure": {
      const scope = target.encryption?.encryptionScope;
      if (scope === undefined) return undefined;
      return stored.key === scope ? undefined : problem;
    }
  }
}

/**
 * An upload's `EncryptionKeyUnusable` error, naming the key or scope the target asked for:
 * the store's own message does not always say which (MinIO: "key with given key ID does not
 * exist"). Other errors are returned as they are.
 */
export function nameRequestedKey(error: StorageError, target: Target): StorageError {
  const requested = describeRequestedEncryption(target);
  if (error.code !== "EncryptionKeyUnusable" || requested === undefined) return error;
  return new StorageError(error.code, `${error.message}; asked for ${requested}`, {
    cause: error.cause,
    provider: error.provider,
    operation: error.operation,
    key: error.key,
    status: error.status,
  });
}
