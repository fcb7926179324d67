/**
 * ObjectStore on S3 and S3-compatible stores (`@aws-sdk/client-s3`).
 *
 * Uploads go through multipart.ts: parts of `partSize`, `concurrency` in flight, signed and
 * retried by this client, with `target.encryption` (SSE-S3 / SSE-KMS) and the object's lock
 * (`UploadOptions.lock`) on the request that creates the object. Every upload request carries a
 * checksum (`x-amz-checksum-*` on PutObject and each UploadPart, the parts' checksums on
 * CompleteMultipartUpload): AWS refuses uploads into a bucket with Object Lock — a default
 * retention is enough — without Content-MD5 or an `x-amz-checksum-*` header, and the client's
 * `requestChecksumCalculation: "WHEN_REQUIRED"` would send neither. The checksum is CRC32
 * (zlib, native) on every endpoint, the cheapest the store checks (multipart.ts).
 *
 * Deleting on a versioned bucket only adds a delete marker: the versions stay, billed and
 * invisible. `deleteMany` therefore removes every version of each key it deleted (needs
 * s3:ListBucketVersions and s3:DeleteObjectVersion), and reports the keys whose versions it
 * could not remove, with the reason and the lifecycle rule that would.
 * An abort is a source failure (upload.ts): the parts in flight settle, the multipart upload is
 * aborted, and only then does the upload reject.
 */

import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  type PutObjectCommandInput,
  paginateListObjectsV2,
  type S3Client,
} from "@aws-sdk/client-s3";
import { nameRequestedKey } from "../encryption.ts";
import {
  type ErrorFacts,
  errorMapper,
  messageOf,
  numberField,
  type StorageError,
  stringField,
  systemErrno,
} from "../errors.ts";
import type {
  AbortIncompleteResult,
  DeleteManyResult,
  IncompleteUpload,
  ObjectHead,
  ObjectInfo,
  ObjectStore,
  StoreOptions,
  UploadOptions,
  UploadResult,
  WriteLock,
} from "../object-store.ts";
import { type PartLimits, partLimits } from "../parts.ts";
import { guardDownload } from "../streams.ts";
import type { S3Target, StorageCredentials } from "../target.ts";
import { secretValues } from "../target.ts";
import { type Agents, createAgents, tlsSettings } from "../tls.ts";
import { uploadObject } from "../upload.ts";
import { createS3Client, type S3ClientOptions } from "./client.ts";
import { leanUpload, uploadChecksumAlgorithm } from "./multipart.ts";

/** Keys per ListObjectsV2 page and per DeleteObjects request (the S3 maximum). */
const pageSize = 1000;

export function s3ErrorFacts(err: unknown): ErrorFacts {
  const metadata = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  const name = stringField(err, "name");
  return {
    status: metadata?.httpStatusCode ?? numberField(err, "statusCode"),
    // "Error"/"Unknown" carry no information; S3 service exceptions are named by their code.
    code: name === "Error" || name === "Unknown" ? stringField(err, "Code") : name,
    errno: systemErrno(err),
    detail: messageOf(err),
  };
}

/**
 * The request parameters of `target.encryption`, passed to PutObject and
 * CreateMultipartUpload, the two requests that create an object; S3 refuses the headers on
 * UploadPart (multipart.ts sends none) and CompleteMultipartUpload (the SDK's command has no
 * such members).
 */
export function sseParams(
  encryption: S3Target["encryption"],
): Pick<PutObjectCommandInput, "ServerSideEncryption" | "SSEKMSKeyId"> {
  if (encryption === undefined) return {};
  if (encryption.type === "AES256") return { ServerSideEncryption: "AES256" };
  return {
    ServerSideEncryption: "aws:kms",
    ...(encryption.kmsKeyId === undefined ? {} : { SSEKMSKeyId: encryption.kmsKeyId }),
  };
}

/** The Object Lock request parameters of one upload (PutObject / CreateMultipartUpload only). */
export function lockParams(
  lock: WriteLock | undefined,
): Pick<PutObjectCommandInput, "ObjectLockMode" | "ObjectLockRetainUntilDate" | "ObjectLockLegalHoldStatus"> {
  if (lock === undefined) return {};
  return {
    ObjectLockMode: lock.mode,
    ObjectLockRetainUntilDate: lock.retainUntil,
    ...(lock.legalHold ? { ObjectLockLegalHoldStatus: "ON" } : {}),
  };
}

/** The lifecycle rule that removes what a delete leaves behind when this identity cannot. */
const versionsAdvice =
  "allow s3:ListBucketVersions and s3:DeleteObjectVersion, or add a lifecycle rule with NoncurrentVersionExpiration and ExpiredObjectDeleteMarker";

export class S3ObjectStore implements ObjectStore {
  readonly provider = "s3";
  readonly location: string;
  readonly #target: S3Target;
  readonly #client: S3Client;
  readonly #agents: Agents;
  readonly #error: ReturnType<typeof errorMapper>;
  readonly #limits: PartLimits;

  constructor(target: S3Target, credentials: StorageCredentials, options: S3ClientOptions & StoreOptions = {}) {
    this.#target = target;
    this.#limits = options.partLimits ?? partLimits.s3;
    this.location = `s3://${target.bucket}`;
    this.#error = errorMapper("s3", this.location, secretValues(credentials), s3ErrorFacts);
    this.#agents = createAgents(tlsSettings(target, credentials), target.concurrency + 4);
    this.#client = createS3Client(target, credentials, this.#agents, options);
  }

  upload(key: string, source: AsyncIterable<Uint8Array>, options: UploadOptions = {}): Promise<UploadResult> {
    return uploadObject({
      provider: "s3",
      key,
      source,
      options,
      configuredPartSize: this.#target.partSize,
      limits: this.#limits,
      sendChunks: (chunks, plan, metadata) =>
        leanUpload(chunks, {
          client: this.#client,
          agents: this.#agents,
          partSize: plan.partSize,
          concurrency: this.#target.concurrency,
          params: {
            Bucket: this.#target.bucket,
            Key: key,
            ...(options.contentLength === undefined ? {} : { ContentLength: options.contentLength }),
            ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
            Metadata: metadata,
            // PutObject computes the checksum itself; CreateMultipartUpload names it, and
            // every part carries its own (multipart.ts).
            ChecksumAlgorithm: uploadChecksumAlgorithm,
            ...sseParams(this.#target.encryption),
            ...lockParams(options.lock),
          },
        }),
      discard: () => this.delete(key),
      toError: (err) => nameRequestedKey(this.#error("upload", key, err), this.#target),
    });
  }

  async head(key: string): Promise<ObjectHead | null> {
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.#target.bucket, Key: key }));
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified ?? new Date(0),
        metadata: out.Metadata ?? {},
        contentType: out.ContentType,
        encryption: { type: out.ServerSideEncryption, key: out.SSEKMSKeyId },
        lock: {
          mode: out.ObjectLockMode,
          retainUntil: out.ObjectLockRetainUntilDate,
          legalHold: out.ObjectLockLegalHoldStatus === "ON",
        },
      };
    } catch (err) {
      const error = this.#error("head", key, err);
      if (error.code === "NotFound") return null;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const pages = paginateListObjectsV2(
      { client: this.#client, pageSize },
      { Bucket: this.#target.bucket, Prefix: prefix },
    );
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          yield { key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) };
        }
      }
    } catch (err) {
      throw this.#error("list", prefix, err);
    }
  }

  /** Like `deleteMany` for one key; versions that cannot be removed stay (the key is gone from view). */
  async delete(key: string): Promise<void> {
    const { failed } = await this.deleteMany([key]);
    if (failed[0] !== undefined) throw failed[0].error;
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    const result: DeleteManyResult = { deleted: [], failed: [], versionsKept: [] };
    for (let start = 0; start < keys.length; start += pageSize) {
      const batch = keys.slice(start, start + pageSize);
      const marked: string[] = [];
      try {
        const out = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#target.bucket,
            // Not quiet: each `Deleted` entry says whether a delete marker was all it did.
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: false },
          }),
        );
        const failed = new Map<string, StorageError>();
        for (const e of out.Errors ?? []) {
          if (e.Key === undefined || e.Code === "NoSuchKey") continue;
          const error = this.#error("delete", e.Key, { name: e.Code, message: e.Message });
          failed.set(e.Key, error);
        }
        for (const d of out.Deleted ?? []) if (d.Key !== undefined && d.DeleteMarker) marked.push(d.Key);
        for (const key of batch) {
          const error = failed.get(key);
          if (error) result.failed.push({ key, error });
          else result.deleted.push(key);
        }
      } catch (err) {
        for (const key of batch) result.failed.push({ key, error: this.#error("delete", key, err) });
      }
      for (const key of marked) {
        try {
          await this.#removeVersions(key);
        } catch (err) {
          const error = this.#error("delete", key, err);
          result.versionsKept.push({ key, reason: `${error.code}: ${versionsAdvice}` });
        }
      }
    }
    return result;
  }

  /**
   * Removes every version and delete marker of exactly `key` (a versioned bucket keeps them
   * after a plain delete). Throws when they cannot be listed or one cannot be removed: a
   * version under Object Lock (locks.ts keeps retention away from those), or no permission.
   */
  async #removeVersions(key: string): Promise<void> {
    const versions: { Key: string; VersionId: string }[] = [];
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    for (;;) {
      const page = await this.#client.send(
        new ListObjectVersionsCommand({
          Bucket: this.#target.bucket,
          Prefix: key,
          KeyMarker: keyMarker,
          VersionIdMarker: versionIdMarker,
        }),
      );
      // The prefix also matches longer keys (a snapshot's manifest `<key>.json`): exact only.
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        if (v.Key === key && v.VersionId !== undefined) versions.push({ Key: key, VersionId: v.VersionId });
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      versionIdMarker = page.NextVersionIdMarker;
    }
    if (versions.length === 0) return;
    const out = await this.#client.send(
      new DeleteObjectsCommand({ Bucket: this.#target.bucket, Delete: { Objects: versions, Quiet: true } }),
    );
    const first = out.Errors?.[0];
    if (first !== undefined) {
      throw Object.assign(new Error(first.Message ?? "version not deleted"), { name: first.Code ?? "Error" });
    }
  }

  async abortIncompleteUploads(
    prefix: string,
    select: (upload: IncompleteUpload) => boolean,
  ): Promise<AbortIncompleteResult> {
    const chosen: { key: string; uploadId: string }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      for (;;) {
        const page = await this.#client.send(
          new ListMultipartUploadsCommand({
            // No `Prefix`: MinIO matches it only against whole keys, so it would hide every
            // upload under a cluster's prefix. Open uploads are few; filter here instead.
            Bucket: this.#target.bucket,
            MaxUploads: pageSize,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const u of page.Uploads ?? []) {
          if (u.Key === undefined || u.UploadId === undefined || !u.Key.startsWith(prefix)) continue;
          if (select({ key: u.Key, initiated: u.Initiated ?? new Date(0) })) {
            chosen.push({ key: u.Key, uploadId: u.UploadId });
          }
        }
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
    } catch (err) {
      throw this.#error("list", prefix, err);
    }
    let aborted = 0;
    for (const { key, uploadId } of chosen) {
      try {
        await this.#client.send(
          new AbortMultipartUploadCommand({ Bucket: this.#target.bucket, Key: key, UploadId: uploadId }),
        );
        aborted++;
      } catch {
        // Counted; the next run tries again.
      }
    }
    return { aborted, failed: chosen.length - aborted };
  }

  async download(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#target.bucket, Key: key }),
        options.signal ? { abortSignal: options.signal } : {},
      );
      const body = out.Body;
      if (!(body instanceof Readable)) throw new TypeError("GetObject returned no stream body");
      return guardDownload(body, (err) => this.#error("download", key, err), options.signal);
    } catch (err) {
      throw this.#error("download", key, err);
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
    this.#agents.destroy();
  }
}
