/**
 * ObjectStore on Google Cloud Storage (`@google-cloud/storage`) and fake-gcs-server.
 *
 * Uploads are resumable sessions opened by the library, their chunks of `partSize` (rounded to
 * 256 KiB) sent from pooled buffers by resumable.ts: one at a time (a resumable session is
 * sequential by nature, so `concurrency` does not apply), and the object exists only once the
 * last chunk finalizes the session. A failed upload is never finalized; its session is
 * cancelled when the store can still be reached. No CRC32C of the upload (the library's
 * validation computes one of every byte in JavaScript, ≈ 4 CPU s/GiB, a third of a GCS
 * backup's CPU, measured with `npm run bench`; Node has no native CRC32C): as with Azure
 * (blocks.ts), Google's endpoints are HTTPS, whose record MACs protect every byte on the wire;
 * the backup checks the stored size (HEAD), and the snapshot's SHA-256 in its manifest is
 * checked by restore, `verify` and drills.
 *
 * Metadata, listing, deletes and downloads use the JSON API directly through gaxios (the
 * transport the library itself uses for uploads and auth), with the library's auth headers:
 * the library sends those calls through teeny-request, whose connection pool takes no custom
 * agent, so a `caCert` or `insecureSkipVerify` would be ignored there (SPEC §5 trap 10).
 *
 * `target.encryption.kmsKeyName` (CMEK) goes on the request that opens each resumable
 * session; `head` reads the `kmsKeyName` GCS reports (fake-gcs-server ignores and omits it).
 *
 * Credentials: `credentials.json` from the Secret, else Application Default Credentials
 * (Workload Identity on GKE). They are sent to Google endpoints; a custom endpoint outside
 * googleapis.com is an emulator and gets no Authorization header (fake-gcs-server ignores it,
 * and ADC would otherwise be required to exist on a laptop running one).
 */

import type { Readable } from "node:stream";
import { IdempotencyStrategy, Storage } from "@google-cloud/storage";
import { type GaxiosResponse, request } from "gaxios";
import { gcsCmekType, nameRequestedKey } from "../encryption.ts";
import {
  type ErrorFacts,
  errorMapper,
  field,
  messageOf,
  numberField,
  stringField,
  systemErrno,
  TargetConfigError,
} from "../errors.ts";
import type {
  AbortIncompleteResult,
  DeleteManyResult,
  ObjectHead,
  ObjectInfo,
  ObjectStore,
  StoredLock,
  StoreOptions,
  UploadOptions,
  UploadResult,
} from "../object-store.ts";
import { type PartLimits, partLimits } from "../parts.ts";
import { deleteEach, guardDownload } from "../streams.ts";
import { type GcsTarget, type StorageCredentials, secretValues } from "../target.ts";
import { type Agents, createAgents, tlsSettings } from "../tls.ts";
import { uploadObject } from "../upload.ts";
import { resumableUpload } from "./resumable.ts";

type InterceptorResult = ReturnType<Storage["interceptors"][number]["request"]>;

const defaultEndpoint = "https://storage.googleapis.com";
const pageSize = 1000;

/** Whether requests to `endpoint` carry credentials (see the module comment). */
export function gcsSendsCredentials(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return true;
  const host = new URL(endpoint).hostname;
  return host === "googleapis.com" || host.endsWith(".googleapis.com");
}

interface ServiceAccountJson {
  type: string;
  project_id?: string;
  [key: string]: unknown;
}

/** Parses `credentials.json` without ever quoting it (a parser message would show key material). */
export function parseGcsCredentials(raw: string | undefined): ServiceAccountJson | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new TargetConfigError(
      "credentials.credentials.json",
      "is not valid JSON; store the service account key file exactly as downloaded",
    );
  }
  if (typeof parsed !== "object" || parsed === null || typeof (parsed as { type?: unknown }).type !== "string") {
    throw new TargetConfigError(
      "credentials.credentials.json",
      'is not a Google credentials file (no "type" field); use a service account key or an external account file',
    );
  }
  return parsed as ServiceAccountJson;
}

export function gcsErrorFacts(err: unknown): ErrorFacts {
  const response = field(err, "response");
  const data = field(response, "data");
  const apiError = field(data, "error");
  // JSON API errors: {error: {code, message, errors: [{reason}]}}; OAuth: {error: "invalid_grant"}.
  const reasons = field(err, "errors") ?? field(apiError, "errors");
  const reason = Array.isArray(reasons) ? stringField(reasons[0], "reason") : undefined;
  const oauth = typeof apiError === "string" ? apiError : undefined;
  const message = messageOf(err);
  const noAdc = message?.startsWith("Could not load the default credentials")
    ? "NoApplicationDefaultCredentials"
    : undefined;
  const code = field(err, "code");
  return {
    status:
      numberField(err, "status") ?? numberField(response, "status") ?? (typeof code === "number" ? code : undefined),
    code: noAdc ?? oauth ?? reason,
    errno: systemErrno(err),
    detail: message,
  };
}

interface JsonObject {
  name?: string;
  size?: string;
  updated?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  /** Present for objects encrypted with a customer-managed key: `…/cryptoKeys/<key>/cryptoKeyVersions/<n>`. */
  kmsKeyName?: string;
  /** Object retention (mode `Unlocked` or `Locked`). */
  retention?: { mode?: string; retainUntilTime?: string };
  /** When the bucket's retention policy releases the object. */
  retentionExpirationTime?: string;
  temporaryHold?: boolean;
  eventBasedHold?: boolean;
}

/** An object's JSON API resource as an `ObjectHead`. */
export function gcsHead(key: string, data: JsonObject): ObjectHead {
  return {
    key,
    size: Number(data.size ?? 0),
    lastModified: new Date(data.updated ?? 0),
    metadata: data.metadata ?? {},
    contentType: data.contentType,
    encryption:
      data.kmsKeyName === undefined || data.kmsKeyName === ""
        ? { type: undefined, key: undefined }
        : { type: gcsCmekType, key: data.kmsKeyName },
    lock: gcsLock(data),
  };
}

/**
 * Object retention (`retention`) or the bucket's retention policy (`retentionExpirationTime`),
 * whichever ends later, and a temporary or event-based hold as a legal hold.
 */
export function gcsLock(data: JsonObject): StoredLock {
  const times = [data.retention?.retainUntilTime, data.retentionExpirationTime]
    .filter((t): t is string => typeof t === "string" && t !== "")
    .map((t) => new Date(t))
    .filter((d) => !Number.isNaN(d.getTime()));
  const retainUntil = times.length === 0 ? undefined : new Date(Math.max(...times.map((d) => d.getTime())));
  return {
    mode: data.retention?.mode ?? (data.retentionExpirationTime ? "BucketRetentionPolicy" : undefined),
    retainUntil,
    legalHold: data.temporaryHold === true || data.eventBasedHold === true,
  };
}

export class GcsObjectStore implements ObjectStore {
  readonly provider = "gcs";
  readonly location: string;
  readonly #target: GcsTarget;
  readonly #limits: PartLimits;
  readonly #storage: Storage;
  readonly #api: string;
  readonly #sendAuth: boolean;
  readonly #agents: Agents;
  readonly #error: ReturnType<typeof errorMapper>;

  constructor(target: GcsTarget, credentials: StorageCredentials, options: StoreOptions = {}) {
    this.#target = target;
    this.#limits = options.partLimits ?? partLimits.gcs;
    this.location = `gcs://${target.bucket}`;
    this.#error = errorMapper("gcs", this.location, secretValues(credentials), gcsErrorFacts);
    this.#agents = createAgents(tlsSettings(target, credentials), target.concurrency + 4);
    this.#api = target.endpoint ?? defaultEndpoint;
    this.#sendAuth = gcsSendsCredentials(target.endpoint);
    const json = parseGcsCredentials(credentials.credentialsJson);
    const projectId = target.gcs.project ?? json?.project_id;
    this.#storage = new Storage({
      ...(projectId === undefined ? {} : { projectId }),
      ...(json === undefined ? {} : { credentials: json }),
      ...(target.endpoint === undefined
        ? {}
        : { apiEndpoint: target.endpoint, useAuthWithCustomEndpoint: this.#sendAuth }),
      retryOptions: {
        autoRetry: true,
        maxRetries: 3,
        retryDelayMultiplier: 2,
        maxRetryDelay: 8,
        totalTimeout: 300,
        // Chunks of one session and deletes of unique keys are safe to retry.
        idempotencyStrategy: IdempotencyStrategy.RetryAlways,
      },
    });
    const agent = this.#agents.for(this.#api);
    // Reaches the resumable upload's requests (gaxios), which honour `agent`. The library calls
    // interceptors with `{}` there, so its declared `uri`-carrying type does not describe it.
    this.#storage.interceptors.push({ request: (opts) => ({ ...opts, agent }) as unknown as InterceptorResult });
  }

  #objectPath(key: string): string {
    return `/storage/v1/b/${encodeURIComponent(this.#target.bucket)}/o/${encodeURIComponent(key)}`;
  }

  async #call<T>(
    method: "GET" | "DELETE",
    path: string,
    options: { params?: Record<string, string>; stream?: boolean; signal?: AbortSignal } = {},
  ): Promise<GaxiosResponse<T>> {
    const url = `${this.#api}${path}`;
    const headers = this.#sendAuth ? await this.#storage.authClient.getRequestHeaders(url) : {};
    return request<T>({
      url,
      method,
      headers,
      agent: this.#agents.for(url),
      timeout: 60_000,
      responseType: options.stream ? "stream" : "json",
      ...(options.params === undefined ? {} : { params: options.params }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      retry: true,
      retryConfig: {
        retry: 3,
        noResponseRetries: 2,
        retryDelay: 200,
        httpMethodsToRetry: ["GET", "DELETE"],
        statusCodesToRetry: [
          [429, 429],
          [500, 599],
        ],
      },
    });
  }

  upload(key: string, source: AsyncIterable<Uint8Array>, options: UploadOptions = {}): Promise<UploadResult> {
    // `kmsKeyName` goes on the request that opens the resumable session (a query parameter):
    // GCS encrypts the object with that key (CMEK) instead of the bucket's default.
    const kmsKeyName = this.#target.encryption?.kmsKeyName;
    const file = this.#storage.bucket(this.#target.bucket).file(key, kmsKeyName === undefined ? {} : { kmsKeyName });
    return uploadObject({
      provider: "gcs",
      key,
      source,
      options,
      configuredPartSize: this.#target.partSize,
      limits: this.#limits,
      sendChunks: (chunks, plan, metadata) =>
        resumableUpload(chunks, {
          file,
          metadata: {
            ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
            metadata,
          },
          agents: this.#agents,
          partSize: plan.partSize,
          authHeaders: (url) => this.#authHeaders(url),
          cancel: (uri) => this.#cancelSession(uri),
          discardObject: () => this.delete(key),
        }),
      discard: () => this.delete(key),
      toError: (err) => nameRequestedKey(this.#error("upload", key, err), this.#target),
    });
  }

  /** The library's credentials for a request to `url`; none for an emulator. */
  async #authHeaders(url: string): Promise<Record<string, string>> {
    return this.#sendAuth ? { ...(await this.#storage.authClient.getRequestHeaders(url)) } : {};
  }

  /** Best effort: a cancelled session can never be finalized (GCS answers 499). */
  async #cancelSession(uri: string): Promise<void> {
    try {
      const headers = await this.#authHeaders(uri);
      await request({ url: uri, method: "DELETE", headers, agent: this.#agents.for(uri), timeout: 10_000 });
    } catch {
      // 499 is the success answer; an unreachable store cannot finalize the session either.
    }
  }

  async head(key: string): Promise<ObjectHead | null> {
    try {
      const res = await this.#call<JsonObject>("GET", this.#objectPath(key), {
        params: {
          fields:
            "name,size,updated,contentType,metadata,kmsKeyName,retention,retentionExpirationTime,temporaryHold,eventBasedHold",
        },
      });
      return gcsHead(key, res.data);
    } catch (err) {
      const error = this.#error("head", key, err);
      if (error.code === "NotFound") return null;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      let res: GaxiosResponse<{ items?: JsonObject[]; nextPageToken?: string }>;
      try {
        res = await this.#call("GET", `/storage/v1/b/${encodeURIComponent(this.#target.bucket)}/o`, {
          params: {
            prefix,
            maxResults: String(pageSize),
            fields: "items(name,size,updated),nextPageToken",
            ...(pageToken === undefined ? {} : { pageToken }),
          },
        });
      } catch (err) {
        throw this.#error("list", prefix, err);
      }
      for (const item of res.data.items ?? []) {
        if (item.name === undefined) continue;
        yield { key: item.name, size: Number(item.size ?? 0), lastModified: new Date(item.updated ?? 0) };
      }
      pageToken = res.data.nextPageToken || undefined;
    } while (pageToken !== undefined);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#call("DELETE", this.#objectPath(key));
    } catch (err) {
      const error = this.#error("delete", key, err);
      if (error.code !== "NotFound") throw error;
    }
  }

  deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    return deleteEach(
      keys,
      this.#target.concurrency,
      (key) => this.delete(key),
      (err, key) => this.#error("delete", key, err),
    );
  }

  async download(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      const res = await this.#call<Readable>("GET", this.#objectPath(key), {
        params: { alt: "media" },
        stream: true,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      return guardDownload(res.data, (err) => this.#error("download", key, err), options.signal);
    } catch (err) {
      throw this.#error("download", key, err);
    }
  }

  /** GCS resumable upload sessions cannot be listed and expire after a week by themselves. */
  async abortIncompleteUploads(): Promise<AbortIncompleteResult> {
    return { aborted: 0, failed: 0 };
  }

  async close(): Promise<void> {
    this.#agents.destroy();
  }
}
