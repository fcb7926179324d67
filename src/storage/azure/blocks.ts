/**
 * Azure block blob uploads on part-upload.ts (the mechanism S3 uses too: pooled part buffers
 * filled by one copy of each chunk, at most `concurrency` blocks in flight, the first failure
 * reported), instead of the SDK's `uploadStream`, whose BufferScheduler and stream stages
 * cost the backup about twice the bare SDK's CPU per GiB (BENCHMARKS.md, "GCS and Azure").
 *
 * Every request still goes through the SDK's pipeline (store.ts): its Shared Key, token or SAS
 * authentication, its retries, and the store's agents. Each block is one Put Block of a view of
 * a part buffer, never copied (`blockBody`). The blob appears only with the Put Block List
 * after the last block, so a failed upload leaves no blob: the staged blocks are never
 * committed, and Azure discards them after a week (there is nothing to abort).
 *
 * No per-block content hash (`transactionalContentMD5` / `transactionalContentCrc64`), as
 * with `uploadStream` before: MD5 costs ≈ 1.4 CPU s/GiB; the SDK's CRC64 is WebAssembly that
 * copies its input into its own heap (≈ 1.0 s/GiB, and not exported by @azure/storage-blob),
 * and its structured-message mode (`contentChecksumAlgorithm: "StorageCrc64"`) also copies
 * every 4 MiB segment and computes the CRC64 twice. Either would be a quarter to a third of
 * the backup's whole budget (issue 19: 4 CPU s/GiB). Azure's endpoints are HTTPS, whose record
 * MACs protect every block on the wire, and the backup's SHA-256 (its manifest) is checked on
 * restore.
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import type { BlobHTTPHeaders, BlockBlobClient } from "@azure/storage-blob";
import { type PartSession, uploadInParts } from "../part-upload.ts";
import { tlsWriteSliceBytes } from "../tls.ts";

/**
 * The body of one Put Block, `body` itself or views of it, never a copy. Over plain HTTP the
 * buffer: the SDK's HTTP client writes a Buffer whole (`req.end(body)`), and the kernel takes it
 * from there as it can. Over HTTPS a factory of a stream of 1 MiB views, written each once the
 * last has left (the SDK pipes it, and calls the factory again for a retry, as it does for
 * `uploadStream`'s own blocks): TLS encrypts all of a write at once and queues the ciphertext,
 * so one 10 MiB write would hold a second copy of every block in flight until the store has
 * read it (BENCHMARKS.md finding 10; Azurite over HTTPS, 1 GiB in 10 MiB × 3: peak RSS
 * 220–225 MiB whole, 186–197 sliced).
 */
function blockBody(body: Buffer, secure: boolean): Buffer | (() => Readable) {
  if (!secure || body.length <= tlsWriteSliceBytes) return body;
  return () =>
    Readable.from(
      (function* () {
        for (let offset = 0; offset < body.length; offset += tlsWriteSliceBytes) {
          yield body.subarray(offset, Math.min(body.length, offset + tlsWriteSliceBytes));
        }
      })(),
    );
}

export interface BlockUploadParams {
  readonly blob: BlockBlobClient;
  readonly partSize: number;
  readonly concurrency: number;
  readonly metadata: Record<string, string>;
  readonly blobHTTPHeaders?: BlobHTTPHeaders | undefined;
  /** Sent as x-ms-encryption-scope on every Put Block and on Put Block List. */
  readonly encryptionScope?: string | undefined;
}

/**
 * Uploads `chunks` as one block blob: blocks of exactly `partSize` (the last one smaller), at
 * most `concurrency` staged at once, then the block list.
 */
export function uploadBlocks(chunks: AsyncIterable<Buffer>, params: BlockUploadParams): Promise<void> {
  const blocks = new Blocks(params);
  return uploadInParts(
    chunks,
    { partSize: params.partSize, concurrency: params.concurrency },
    { single: (body) => blocks.single(body), start: async () => blocks },
  );
}

/** The blocks of one blob; a block's id is what Put Block List lists. */
class Blocks implements PartSession<string> {
  readonly #params: BlockUploadParams;
  /**
   * Block ids are base64 of `<upload's UUID><part number, 12 digits>`: 48 characters, like the
   * SDK's own (`uploadStream`), because Azure refuses a block whose id length differs from that
   * of the blob's other blocks, uncommitted ones of an earlier attempt included; unique per
   * upload, so an earlier attempt's blocks are never mistaken for this one's.
   */
  readonly #prefix = randomUUID();

  constructor(params: BlockUploadParams) {
    this.#params = params;
  }

  #scope(): { encryptionScope?: string } {
    const scope = this.#params.encryptionScope;
    return scope === undefined ? {} : { encryptionScope: scope };
  }

  /**
   * A blob of at most one block: that block and the list (none for 0 bytes), not Put Blob, so
   * that every blob is created by a Put Block List (test/storage/encryption.test.ts checks the
   * scope on it); one request more per small object, not per byte.
   */
  async single(body: Buffer): Promise<void> {
    const ids = body.length === 0 ? [] : [await this.sendPart(1, body)];
    await this.complete(ids);
  }

  async sendPart(partNumber: number, body: Buffer, stopped?: AbortSignal): Promise<string> {
    const id = Buffer.from(`${this.#prefix}${String(partNumber).padStart(12, "0")}`).toString("base64");
    // `stopped` cancels the SDK's retries (and the request in flight) once the upload has
    // failed: an uncommitted block is harmless, a wait for it is not.
    const { blob } = this.#params;
    await blob.stageBlock(id, blockBody(body, blob.url.startsWith("https:")), body.length, {
      ...this.#scope(),
      ...(stopped === undefined ? {} : { abortSignal: stopped }),
    });
    return id;
  }

  async complete(ids: readonly string[]): Promise<void> {
    const { blob, metadata, blobHTTPHeaders } = this.#params;
    await blob.commitBlockList([...ids], {
      metadata,
      ...(blobHTTPHeaders === undefined ? {} : { blobHTTPHeaders }),
      ...this.#scope(),
    });
  }

  /** Nothing to abort: uncommitted blocks are no blob, and Azure discards them after a week. */
  async abort(): Promise<void> {}
}
