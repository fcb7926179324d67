/**
 * The part of an upload every provider shares: the guard between the caller's source and the
 * SDK. It counts bytes, enforces the declared size and the provider's part limit before the
 * limit is hit, turns an AbortSignal into a source failure, and decides which error the caller
 * sees:
 *   1. the source's own error, when the source failed (an OpenBao problem, not a storage one);
 *   2. the guard's StorageError (Aborted, TooLarge), when the guard stopped the stream;
 *   3. otherwise the provider's error, classified by the provider adapter.
 *
 * Aborting works by failing the source, never by cutting the SDK short: every SDK then takes
 * its own failure path (S3 aborts the multipart upload, Azure never commits the block
 * list, GCS never finalizes the session) and the upload promise settles only after that
 * cleanup, so "rejected" always means "nothing left behind".
 */
import { Readable } from "node:stream";
import { StorageError } from "./errors.ts";
import type { UploadOptions, UploadResult } from "./object-store.ts";
import { formatBytes, type PartLimits, type PartPlan, planParts, tooManyPartsError } from "./parts.ts";
import type { Provider } from "./target.ts";

const metadataKey = /^[a-z][a-z0-9_]{0,62}$/;
const metadataValue = /^[\x20-\x7e]{0,1024}$/;

/** Rejects metadata that one of the providers would refuse or silently change. */
export function checkMetadata(metadata: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (!metadataKey.test(key)) {
      throw new TypeError(
        `metadata key ${JSON.stringify(key)} must match [a-z][a-z0-9_]* (valid on S3, GCS and Azure)`,
      );
    }
    if (typeof value !== "string" || !metadataValue.test(value)) {
      throw new TypeError(`metadata value of ${JSON.stringify(key)} must be printable ASCII, at most 1024 characters`);
    }
    out[key] = value;
  }
  return out;
}

export interface StreamUploadParams {
  readonly provider: Provider;
  readonly key: string;
  readonly source: AsyncIterable<Uint8Array>;
  readonly options: UploadOptions;
  readonly plan: PartPlan;
  /** Runs the SDK upload of `body`; resolves once the object is committed. */
  readonly send: (body: Readable) => Promise<void>;
  /**
   * Used instead of `send` when given: takes the guarded chunks as they come, without a
   * Readable in between (the part uploads of S3 and Azure, part-upload.ts: a stream stage
   * costs CPU per chunk, and a TLS source delivers tens of thousands of chunks per GiB). The
   * same rules as `send`: settle only after the provider's cleanup, and stop pulling on failure.
   */
  readonly sendChunks?: ((chunks: AsyncIterable<Buffer>) => Promise<void>) | undefined;
  /** Deletes the object: used only if an SDK committed without reading the whole source. */
  readonly discard: () => Promise<void>;
  /** Classifies an SDK failure. */
  readonly toError: (err: unknown) => StorageError;
}

function abortedError(provider: Provider, key: string, reason: unknown): StorageError {
  return new StorageError("Aborted", `${provider} upload ${key}: aborted, nothing was stored`, {
    cause: reason,
    provider,
    operation: "upload",
    key,
  });
}

function sizeMismatch(provider: Provider, key: string, expected: number, got: string): StorageError {
  return new StorageError(
    "SizeMismatch",
    `${provider} upload ${key}: the source delivered ${got} bytes, not the declared contentLength ` +
      `${expected} (${formatBytes(expected)}); nothing was stored`,
    { provider, operation: "upload", key },
  );
}

/**
 * The source's next steps, each resolving with "aborted" as soon as `signal` fires, even while
 * the source is silent (a stalled OpenBao). One abort listener for the whole stream, which
 * wakes only the step in progress: racing every step against one long-lived abort promise
 * (Promise.race) would keep every chunk reachable from that promise until it settles, i.e. the
 * whole upload in memory; a listener added and removed per step costs CPU per chunk, and a
 * TLS source delivers ≈ 65,000 chunks per GiB.
 */
function abortableSteps(
  iterator: AsyncIterator<Uint8Array>,
  signal: AbortSignal | undefined,
): { next(): Promise<IteratorResult<Uint8Array> | "aborted">; dispose(): void } {
  if (signal === undefined) return { next: () => iterator.next(), dispose: () => {} };
  let wake: ((aborted: "aborted") => void) | undefined;
  const onAbort = (): void => wake?.("aborted");
  signal.addEventListener("abort", onAbort, { once: true });
  return {
    next() {
      const next = iterator.next();
      if (signal.aborted) return Promise.resolve("aborted");
      return new Promise((resolve, reject) => {
        wake = resolve;
        next.then(
          (step) => {
            wake = undefined;
            resolve(step);
          },
          (err: unknown) => {
            wake = undefined;
            reject(err);
          },
        );
      });
    },
    dispose: () => signal.removeEventListener("abort", onAbort),
  };
}

/** Streams `source` through the guard into `send`; resolves with the bytes stored. */
export async function streamUpload(params: StreamUploadParams): Promise<number> {
  const { provider, key, plan, options } = params;
  const { signal, contentLength } = options;
  let bytes = 0;
  let finished = false;
  let sourceFailed = false;
  let sourceError: unknown;
  let guardError: StorageError | undefined;

  const stop = (error: StorageError): never => {
    guardError = error;
    throw error;
  };

  async function* guard(): AsyncGenerator<Buffer> {
    if (signal?.aborted) stop(abortedError(provider, key, signal.reason));
    const iterator = params.source[Symbol.asyncIterator]();
    const steps = abortableSteps(iterator, signal);
    let sourceDone = false;
    try {
      for (;;) {
        let step: IteratorResult<Uint8Array> | "aborted";
        try {
          step = await steps.next();
        } catch (err) {
          sourceDone = true;
          sourceFailed = true;
          sourceError = err;
          throw err;
        }
        // The signal may fire while the source runs (before the step's listener exists).
        if (step === "aborted" || signal?.aborted) stop(abortedError(provider, key, signal?.reason));
        else if (step.done) {
          sourceDone = true;
          break;
        } else {
          const chunk = step.value;
          bytes += chunk.byteLength;
          if (contentLength !== undefined && bytes > contentLength) {
            stop(sizeMismatch(provider, key, contentLength, `more than ${contentLength}`));
          }
          if (bytes > plan.maxBytes) stop(tooManyPartsError(provider, plan, key));
          yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        }
      }
      if (contentLength !== undefined && bytes !== contentLength) {
        stop(sizeMismatch(provider, key, contentLength, String(bytes)));
      }
      if (signal?.aborted) stop(abortedError(provider, key, signal.reason));
      finished = true;
    } finally {
      steps.dispose();
      // Stopped early (abort, limit, SDK failure): release the source, e.g. close its connection.
      if (!sourceDone) void Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }

  const chunks = guard();
  const body = params.sendChunks === undefined ? Readable.from(chunks, { objectMode: false }) : undefined;
  try {
    if (body === undefined) await params.sendChunks?.(chunks);
    else await params.send(body);
  } catch (err) {
    if (sourceFailed) throw sourceError;
    if (guardError) throw guardError;
    if (signal?.aborted) throw abortedError(provider, key, signal.reason);
    throw params.toError(err);
  } finally {
    // Not awaited, as destroy() is not: a consumer that stopped mid-step must not hang the upload.
    if (body === undefined) void chunks.return(undefined).catch(() => {});
    else body.destroy();
  }
  if (!finished) {
    // Defensive: an SDK that committed without reading to the end must not leave a truncated
    // object (SPEC §5 trap 3). None of the three does; this keeps it that way.
    await params.discard();
    throw (
      (sourceFailed ? sourceError : guardError) ??
      new StorageError("Other", `${provider} upload ${key}: the store finished before the source ended`, {
        provider,
        operation: "upload",
        key,
      })
    );
  }
  return bytes;
}

export type UploadObjectParams = Omit<StreamUploadParams, "plan" | "send" | "sendChunks"> & {
  /** `target.partSize`; raised for this upload when a known or expected size needs it (parts.ts). */
  readonly configuredPartSize: number;
  /** The provider's part limits: `partLimits[provider]` unless a test lowered them (StoreOptions). */
  readonly limits: PartLimits;
} & (
    | {
        /** Runs the SDK upload of `body` with the planned part size and the checked metadata. */
        readonly send: (body: Readable, plan: PartPlan, metadata: Record<string, string>) => Promise<void>;
        readonly sendChunks?: undefined;
      }
    | {
        readonly send?: undefined;
        /** Instead of `send`: the guarded chunks themselves (see StreamUploadParams.sendChunks). */
        readonly sendChunks: (
          chunks: AsyncIterable<Buffer>,
          plan: PartPlan,
          metadata: Record<string, string>,
        ) => Promise<void>;
      }
  );

/** `ObjectStore.upload` for every provider: plan parts, check metadata, stream through the guard. */
export async function uploadObject(params: UploadObjectParams): Promise<UploadResult> {
  const { contentLength, sizeHint } = params.options;
  const plan = planParts(params.provider, params.configuredPartSize, { contentLength, sizeHint }, params.limits);
  const metadata = checkMetadata(params.options.metadata);
  const { send, sendChunks } = params;
  const size = await streamUpload({
    ...params,
    plan,
    ...(send === undefined
      ? {
          // A Readable is an iterable of Buffers too; `sendChunks` is what streamUpload calls.
          send: (body: Readable) => sendChunks(body, plan, metadata),
          sendChunks: (chunks: AsyncIterable<Buffer>) => sendChunks(chunks, plan, metadata),
        }
      : { send: (body: Readable) => send(body, plan, metadata), sendChunks: undefined }),
  });
  return { key: params.key, size, partSize: plan.partSize };
}
