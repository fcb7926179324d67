/**
 * S3 uploads without lib-storage's per-byte costs, keeping the SDK for everything else: the
 * S3 requests of part-upload.ts, which fills the parts (one copy of each chunk into pooled
 * buffers), bounds the parts in flight, and aborts after a failure (why and measured there,
 * BENCHMARKS.md finding 8: 9–10 CPU s/GiB with lib-storage's `Upload`, 4–5 here).
 * - each `UploadPart` is one `PUT` on the store's own keep-alive agents (tls.ts: the same CA
 *   and verification settings), the buffer written as it is (no copy) once the store has
 *   answered `100 Continue` (../put-request.ts), signed by the client's
 *   own SigV4 signer (`client.config.signer()`: its credentials provider, refreshed as the
 *   SDK refreshes it) for the host, path, region and service the SDK itself resolved and
 *   signed for the upload's `CreateMultipartUpload` (read off that request, so path-style,
 *   virtual-hosted, custom endpoints and AWS regions are whatever the SDK makes of them);
 * - every part carries `x-amz-checksum-crc32` (zlib's native CRC32, taken as the part is
 *   filled), signed as a header, which the store checks against the bytes it received, and
 *   CompleteMultipartUpload lists them (object-lock.test.ts: AWS refuses uploads into an Object
 *   Lock bucket without a checksum). The payload itself is `UNSIGNED-PAYLOAD`, over HTTPS and
 *   plain HTTP alike: that is how the SDK sends any streamed body (`@smithy/signature-v4`
 *   hashes only string and buffer bodies), and signing it would be a SHA-256 pass over every
 *   byte (0.6 CPU s/GiB, the third beside the snapshot's own and state.bin's). What proves the bytes end to end is the
 *   snapshot's SHA-256 in the manifest, which restore and `verify` check; on a plain-HTTP link
 *   only TLS would stop someone on the path from changing a part and its CRC32 together;
 * - a failed part is retried with the client's own retry strategy (`config.retryStrategy()`:
 *   its attempts, backoff and retry quota), classified as the SDK classifies errors.
 * The requests that create, complete and abort the upload, and a single `PutObject` for an
 * object of at most one part, go through the SDK unchanged: they are per upload, not per byte.
 * A failure aborts the multipart upload once the parts in flight have settled, then rejects.
 */
import type { IncomingMessage } from "node:http";
import { crc32 } from "node:zlib";
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandInput,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { type PartSession, uploadInParts } from "../part-upload.ts";
import { escapeUri, readSome, sendWithContinue } from "../put-request.ts";
import type { Agents } from "../tls.ts";

/** What the SDK decided for this upload's requests: where they go and what they are signed for. */
interface ResolvedTarget {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | undefined;
  /** The object's path as the SDK encoded it (e.g. `/bucket/a/b.snap` or `/a/b.snap`). */
  readonly path: string;
  /** The `host` header the SDK signed. */
  readonly host: string;
  readonly signingRegion: string;
  readonly signingService: string;
}

/** A SigV4 signer as the S3 client builds it (`config.signer()`). */
interface RequestSigner {
  sign(
    request: SignableRequest,
    options: { signingDate?: Date; signingRegion?: string; signingService?: string },
  ): Promise<SignableRequest>;
}

interface SignableRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number | undefined;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

/** The client's configuration members this path uses (public members of S3Client.config). */
interface ClientConfig {
  signer: (authScheme?: unknown) => Promise<RequestSigner>;
  retryStrategy: () => Promise<RetryStrategy>;
  systemClockOffset?: number;
}

interface RetryToken {
  getRetryCount(): number;
}

/** The SDK's RetryStrategyV2 (StandardRetryStrategy by default, `maxAttempts` from the client). */
interface RetryStrategy {
  acquireInitialRetryToken(scope: string): Promise<RetryToken>;
  refreshRetryTokenForRetry(
    token: RetryToken,
    errorInfo: { error: unknown; errorType: RetryErrorType },
  ): Promise<RetryToken>;
  recordSuccess(token: RetryToken): void;
}

type RetryErrorType = "THROTTLING" | "TRANSIENT" | "SERVER_ERROR" | "CLIENT_ERROR";

// The SDK's own classification (@smithy/core retry: service-error-classification), for the
// errors one part request can end with.
const throttlingNames = new Set([
  "BandwidthLimitExceeded",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
]);
const transientNames = new Set(["TimeoutError", "RequestTimeout", "RequestTimeoutException"]);
const transientCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
const transientStatus = new Set([500, 502, 503, 504]);

function retryErrorType(err: unknown): RetryErrorType {
  const e = err as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status === 429 || throttlingNames.has(String(e.name))) return "THROTTLING";
  if (
    transientNames.has(String(e.name)) ||
    transientCodes.has(String(e.code)) ||
    (status !== undefined && transientStatus.has(status))
  ) {
    return "TRANSIENT";
  }
  if (status !== undefined && status >= 500) return "SERVER_ERROR";
  return "CLIENT_ERROR";
}

/** `Credential=<key id>/<date>/<region>/<service>/aws4_request` of a SigV4 Authorization header. */
const credentialScope = /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/;

/** `<Code>` and `<Message>` of an S3 XML error body. */
function errorFields(xml: string): { code: string | undefined; message: string | undefined } {
  const pick = (tag: string): string | undefined => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
  return { code: pick("Code"), message: pick("Message") };
}

export interface LeanUploadParams {
  readonly client: S3Client;
  readonly agents: Agents;
  readonly partSize: number;
  readonly concurrency: number;
  /** Every member of PutObject / CreateMultipartUpload but Body (bucket, key, type, metadata, SSE, lock, checksum). */
  readonly params: Omit<PutObjectCommandInput, "Body"> & CreateMultipartUploadCommandInput;
}

/**
 * Uploads `chunks` as one object: a single PutObject when they fit one part, else a multipart
 * upload of parts of exactly `partSize` (the last one smaller), at most `concurrency` in flight.
 */
export function leanUpload(chunks: AsyncIterable<Buffer>, upload: LeanUploadParams): Promise<void> {
  const { client, partSize, concurrency } = upload;
  return uploadInParts(
    chunks,
    { partSize, concurrency, crc32: true },
    {
      single: async (body) => {
        await client.send(new PutObjectCommand({ ...upload.params, Body: body }));
      },
      start: () => Multipart.start(upload),
    },
  );
}

/** The checksum every S3 upload carries: named on PutObject and CreateMultipartUpload (store.ts). */
export const uploadChecksumAlgorithm = "CRC32";

/** What one part is sent with: its checksum header's value, and what Complete lists. */
interface PartChecksum {
  /** CRC32 of the part, base64 (big-endian), as S3 expects it in the header and in Complete. */
  readonly checksum: string;
  readonly completed: Pick<CompletedPart, "ChecksumCRC32">;
}

/** How a part's CRC32 (zlib's value) is sent and listed. */
export function partChecksum(value: number): PartChecksum {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(value >>> 0);
  const checksum = crc.toString("base64");
  return { checksum, completed: { ChecksumCRC32: checksum } };
}

/** One multipart upload in progress: its id, and where and how its parts are sent. */
class Multipart implements PartSession<CompletedPart> {
  readonly #upload: LeanUploadParams;
  readonly #uploadId: string;
  readonly #target: ResolvedTarget;
  readonly #signer: RequestSigner;
  readonly #retry: RetryStrategy;
  readonly #clockOffset: () => number;

  private constructor(
    upload: LeanUploadParams,
    uploadId: string,
    target: ResolvedTarget,
    signer: RequestSigner,
    retry: RetryStrategy,
  ) {
    this.#upload = upload;
    this.#uploadId = uploadId;
    this.#target = target;
    this.#signer = signer;
    this.#retry = retry;
    const config = upload.client.config as unknown as ClientConfig;
    this.#clockOffset = () => config.systemClockOffset ?? 0;
  }

  /** CreateMultipartUpload through the SDK, noting where and for what it signed the request. */
  static async start(upload: LeanUploadParams): Promise<Multipart> {
    const { client, params } = upload;
    const command = new CreateMultipartUploadCommand(params);
    let seen: SignableRequest | undefined;
    // Last before the wire: the request as resolved (endpoint, addressing) and signed.
    command.middlewareStack.add(
      (next) => async (args) => {
        seen = args.request as SignableRequest;
        return next(args);
      },
      { step: "deserialize", priority: "low", name: "openbaoBackupResolvedTarget" },
    );
    const out = await client.send(command);
    const uploadId = out.UploadId;
    if (uploadId === undefined) throw new Error("CreateMultipartUpload returned no UploadId");
    const config = client.config as unknown as ClientConfig;
    const multipart = await (async () => {
      if (typeof config.signer !== "function" || typeof config.retryStrategy !== "function") {
        // A client without them (an SDK change): fail loudly, never upload unsigned or unretried.
        throw new Error(
          "the S3 client exposes no SigV4 signer or retry strategy (config.signer, config.retryStrategy)",
        );
      }
      const scope = credentialScope.exec(seen?.headers.authorization ?? seen?.headers.Authorization ?? "");
      if (seen === undefined || scope?.[1] === undefined || scope[2] === undefined) {
        throw new Error("CreateMultipartUpload was not sent with a SigV4 signature");
      }
      const target: ResolvedTarget = {
        protocol: seen.protocol,
        hostname: seen.hostname,
        port: seen.port,
        path: seen.path,
        host: seen.headers.host ?? seen.headers.Host ?? seen.hostname,
        signingRegion: scope[1],
        signingService: scope[2],
      };
      return new Multipart(upload, uploadId, target, await config.signer(), await config.retryStrategy());
    })().catch(async (err: unknown) => {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId }))
        .catch(() => {});
      throw err;
    });
    return multipart;
  }

  async complete(parts: readonly CompletedPart[]): Promise<void> {
    const { Bucket, Key } = this.#upload.params;
    await this.#upload.client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId: this.#uploadId,
        MultipartUpload: { Parts: [...parts] },
      }),
    );
  }

  async abort(): Promise<void> {
    const { Bucket, Key } = this.#upload.params;
    // A store unreachable now keeps the upload open: the next run's abortIncompleteUploads
    // removes it (object-store.ts); the caller reports the failure that got us here.
    await this.#upload.client
      .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: this.#uploadId }))
      .catch(() => {});
  }

  /** One UploadPart, retried as the client retries; resolves with what Complete lists. */
  async sendPart(
    partNumber: number,
    body: Buffer,
    stopped: AbortSignal,
    _last: boolean,
    crc: number | undefined,
  ): Promise<CompletedPart> {
    // Taken as the part was filled (part-upload.ts), while its bytes were in the cache.
    const digests = partChecksum(crc ?? crc32(body));
    let token = await this.#retry.acquireInitialRetryToken("s3:UploadPart");
    for (;;) {
      try {
        const etag = await this.#attempt(partNumber, body, digests);
        this.#retry.recordSuccess(token);
        return { PartNumber: partNumber, ETag: etag, ...digests.completed };
      } catch (err) {
        if (stopped.aborted) throw err;
        try {
          token = await this.#retry.refreshRetryTokenForRetry(token, { error: err, errorType: retryErrorType(err) });
        } catch {
          throw err;
        }
      }
    }
  }

  async #attempt(partNumber: number, body: Buffer, digests: PartChecksum): Promise<string> {
    const t = this.#target;
    const query = { partNumber: String(partNumber), uploadId: this.#uploadId };
    const signed = await this.#signer.sign(
      {
        method: "PUT",
        protocol: t.protocol,
        hostname: t.hostname,
        port: t.port,
        path: t.path,
        query,
        headers: {
          host: t.host,
          "content-length": String(body.length),
          "x-amz-checksum-crc32": digests.checksum,
          "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
      },
      {
        signingDate: new Date(Date.now() + this.#clockOffset()),
        signingRegion: t.signingRegion,
        signingService: t.signingService,
      },
    );
    const path = `${t.path}?partNumber=${partNumber}&uploadId=${escapeUri(this.#uploadId)}`;
    const res = await sendWithContinue(this.#upload.agents, t, "PUT", path, signed.headers, body);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      res.resume();
      const etag = res.headers.etag;
      if (typeof etag !== "string" || etag === "") throw new Error(`part ${partNumber}: the store returned no ETag`);
      return etag;
    }
    const { code, message } = errorFields(await readSome(res, 64 * 1024).catch(() => ""));
    throw new S3ServiceException({
      name: code ?? (status === 404 ? "NotFound" : "Unknown"),
      $fault: status >= 500 ? "server" : "client",
      $metadata: { httpStatusCode: status, requestId: headerOf(res, "x-amz-request-id") },
      message: message ?? `UploadPart answered HTTP ${status}`,
    });
  }
}

function headerOf(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
