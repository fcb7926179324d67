/**
 * The one object-storage interface the executor, the retention planner and the CLI use
 * (STYLE practice 4). Implementations: s3/, gcs/, azure/; `openObjectStore` picks one.
 *
 * Invariants every implementation keeps (one contract suite, test/storage/contract.ts, runs
 * unchanged against MinIO, fake-gcs-server and Azurite):
 * - `upload` streams: parts of exactly `partSize` (the last one smaller) go to the store, at
 *   most `concurrency` at once (GCS: one, a resumable session is sequential), and memory stays
 *   near `partSize × (concurrency + 2)` whatever the size (figures in test/storage/memory.test.ts).
 * - `upload` is all or nothing: when it rejects, nothing is left under the key and no
 *   multipart upload stays open (S3 upload aborted, Azure blocks never committed, GCS
 *   resumable session never finalized). It rejects with the source's own error when the
 *   source fails, with `StorageError` otherwise (`Aborted` when `signal` fired).
 * - `head` returns null for a missing object, and the object's server-side encryption and lock
 *   as the store reports them; `list` pages through everything under a prefix;
 *   `delete`/`deleteMany` treat a missing key as deleted, and on a versioned S3 bucket remove
 *   every version of the key (else say in `versionsKept` why not). Nothing here checks locks
 *   before deleting: locks.ts `deleteUnlocked` does, for every provider alike.
 * - `target.encryption`, when set, goes with every upload (encryption.ts); reading needs nothing.
 * - Every failure is a `StorageError` (errors.ts) whose message carries no secret.
 *
 * Keys are complete object keys (pathPrefix included by the caller). A key is written by one
 * upload at a time; backups use unique keys.
 */
import type { Readable } from "node:stream";
import type { StorageError } from "./errors.ts";
import type { PartLimits } from "./parts.ts";
import type { Provider } from "./target.ts";

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
}

/**
 * What a store reports about an object's server-side encryption, in one shape for every
 * provider (both fields undefined when it reports nothing):
 * - S3: `type` is `x-amz-server-side-encryption` (`AES256`, `aws:kms`, …), `key` the SSE-KMS
 *   key id as the store writes it (AWS: the key ARN; MinIO: `arn:aws:kms:<key name>`).
 * - GCS: `type` is `cmek` when the object has a `kmsKeyName`, `key` that name (with the
 *   `/cryptoKeyVersions/<n>` GCS appends).
 * - Azure: `type` is `encryption-scope` when the blob reports one, `key` the scope's name.
 * `encryption.ts` compares it with what a target asks for.
 */
export interface StoredEncryption {
  readonly type: string | undefined;
  readonly key: string | undefined;
}

/**
 * What holds an object against deletion, as the store reports it (locks.ts reads it), in one
 * shape for every provider:
 * - S3 Object Lock: `mode` GOVERNANCE / COMPLIANCE with `retainUntil` (per object, or the
 *   bucket's default retention applied at upload), `legalHold` ON.
 * - GCS: object retention (`retention.retainUntilTime`, mode Unlocked / Locked) or a bucket
 *   retention policy (`retentionExpirationTime`); `legalHold` for a temporary or event-based hold.
 * - Azure: a blob immutability policy (`immutabilityPolicyExpiresOn`, mode Unlocked / Locked),
 *   `legalHold` for a legal hold.
 * Stores report what the caller may read: AWS omits the S3 fields without
 * s3:GetObjectRetention / s3:GetObjectLegalHold, and the object then looks unlocked here.
 */
export interface StoredLock {
  readonly mode: string | undefined;
  readonly retainUntil: Date | undefined;
  readonly legalHold: boolean;
}

export const noLock: StoredLock = { mode: undefined, retainUntil: undefined, legalHold: false };

export interface ObjectHead extends ObjectInfo {
  /** User metadata, keys lower-case. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
  readonly encryption: StoredEncryption;
  readonly lock: StoredLock;
}

/**
 * A lock to put on an object as it is written (S3 Object Lock only, see target.ts
 * `objectLock`): retained in `mode` until `retainUntil`, and under a legal hold when asked.
 */
export interface WriteLock {
  readonly mode: "GOVERNANCE" | "COMPLIANCE";
  readonly retainUntil: Date;
  readonly legalHold: boolean;
}

export interface UploadOptions {
  /** Exact size when known in advance: lets the store choose a part size that fits its part limit. */
  readonly contentLength?: number;
  /**
   * Expected size in bytes, not a promise (a snapshot's size is unknown until it ends): the
   * part size is raised so this fits the provider's part limit. A stream that still outgrows
   * `partSize × maxParts` is refused with `TooLarge` before that, nothing stored. Ignored when
   * `contentLength` is given.
   */
  readonly sizeHint?: number;
  readonly contentType?: string;
  /** User metadata: keys `[a-z][a-z0-9_]*` (valid for S3, GCS and Azure alike), values printable ASCII. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Retention / legal hold for this object; refused by stores that cannot apply it. */
  readonly lock?: WriteLock;
  readonly signal?: AbortSignal;
}

/** How a store is built, beyond its target and credentials (the stores' constructors). */
export interface StoreOptions {
  /**
   * The provider's part limits (parts.ts `partLimits`), lowered by tests so that a small
   * object crosses them through the real upload path. Never set in production.
   */
  readonly partLimits?: PartLimits;
}

export interface UploadResult {
  readonly key: string;
  /** Bytes read from the source and stored. */
  readonly size: number;
  /** The part size used (the configured one, or raised to fit the provider's part limit). */
  readonly partSize: number;
}

export interface DeleteManyResult {
  /** Keys that are gone now (including keys that did not exist). */
  readonly deleted: string[];
  readonly failed: { key: string; error: StorageError }[];
  /**
   * Of `deleted`: keys a versioned bucket only hid behind a delete marker, because their
   * versions could not be removed (`reason` says why and what to do). On S3 the store removes
   * every version of a key it deletes, so nothing of a deleted backup stays billed.
   */
  readonly versionsKept: { key: string; reason: string }[];
}

/** An upload started and never completed (S3 multipart): invisible to `list`, but billed. */
export interface IncompleteUpload {
  readonly key: string;
  readonly initiated: Date;
}

export interface AbortIncompleteResult {
  readonly aborted: number;
  readonly failed: number;
}

export interface ObjectStore {
  readonly provider: Provider;
  /** `s3://bucket`, `gcs://bucket`, `azure://account/container`: for logs and messages. */
  readonly location: string;
  upload(key: string, source: AsyncIterable<Uint8Array>, options?: UploadOptions): Promise<UploadResult>;
  head(key: string): Promise<ObjectHead | null>;
  /** Every object whose key starts with `prefix`, in key order, all pages. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
  deleteMany(keys: readonly string[]): Promise<DeleteManyResult>;
  /** The object's bytes; rejects with `NotFound` before any byte when the object is missing. */
  download(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /**
   * Aborts the incomplete uploads under `prefix` that `select` picks. A failed run aborts its
   * own upload, but not when the store is unreachable at that moment; the next run cleans up.
   * Stores whose unfinished uploads expire by themselves and cannot be listed return zeros.
   */
  abortIncompleteUploads(prefix: string, select: (upload: IncompleteUpload) => boolean): Promise<AbortIncompleteResult>;
  /** Releases connections; the store is unusable afterwards. */
  close(): Promise<void>;
}
