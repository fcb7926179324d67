/**
 * Uploads in parts without per-byte costs beyond one copy of each chunk: the mechanism S3
 * (s3/multipart.ts) and Azure (azure/blocks.ts) share; each provider brings only its requests
 * (`PartStore`).
 *
 * Measured (BENCHMARKS.md, finding 8): with lib-storage's `Upload` an S3 backup cost 9–10 CPU
 * s/GiB, 29% of the main thread in the garbage collector: its chunker builds every part with
 * `Buffer.concat`, a fresh part-sized buffer per part, so 1 GiB of ArrayBuffers per GiB, and
 * V8 starts a mark-compact for every ≈ 64 MiB of them. Azure's `uploadStream` pays the same
 * kind of cost (its BufferScheduler and a stream stage per chunk: 7.5–8.6 CPU s/GiB on
 * Azurite against the bare SDK's 2.8–3.9). Here:
 * - parts are filled by one copy of each chunk into `concurrency + 1` part buffers allocated
 *   once per upload and reused, so memory is those buffers whatever the size, and nothing
 *   part-sized is left for the garbage collector;
 * - at most `concurrency` parts are in flight; the next part waits for a free slot, and the
 *   source is not read meanwhile (backpressure);
 * - an object of at most one part is one request (`single`), anything larger a part upload:
 *   parts of exactly `partSize`, the last one smaller;
 * - the first failure (a part, the source, the commit) is the one reported; no part starts and
 *   no part is retried after it (`sendPart`'s signal), and the upload is discarded (`abort`)
 *   only once the parts in flight have settled, since an abort before them could leave a part
 *   behind (S3: a part completed after AbortMultipartUpload).
 */
import { crc32 } from "node:zlib";

export interface PartUploadOptions {
  /** Bytes per part; every part but the last is exactly this long. */
  readonly partSize: number;
  /** Parts in flight at most. */
  readonly concurrency: number;
  /**
   * Take each part's CRC32 (zlib's) as its bytes are copied in, while they are still in the
   * cache, and hand it to `sendPart`: S3's parts carry one. Over a filled 10 MiB part the same
   * CRC32 reads every byte back from memory, 0.5–0.6 CPU s/GiB more (BENCHMARKS.md finding 17).
   */
  readonly crc32?: boolean;
}

/** One provider's requests for one object (s3/multipart.ts, azure/blocks.ts). */
export interface PartStore<Part> {
  /** Stores the whole object, which fits one part (0 bytes included). */
  single(body: Buffer): Promise<void>;
  /** Opens a part upload (S3: CreateMultipartUpload; Azure: nothing to open). */
  start(): Promise<PartSession<Part>>;
}

/** A part upload in progress, as its provider sends, commits and discards it. */
export interface PartSession<Part> {
  /**
   * Sends part `partNumber` (1, 2, …) with the provider's retries, and resolves with what
   * `complete` lists for it. `body` is a view of a pooled buffer that is refilled once this
   * settles: nothing may write it, or read it afterwards. `stopped` fires when the upload has
   * failed: a retry then would be wasted (and, on S3, could land after the abort). `last` is
   * true for the final part only (GCS's last chunk names the object's size). `crc32` is the
   * CRC32 of `body` when the options asked for it (`PartUploadOptions.crc32`), else undefined.
   */
  sendPart(
    partNumber: number,
    body: Buffer,
    stopped: AbortSignal,
    last: boolean,
    crc32: number | undefined,
  ): Promise<Part>;
  /** Commits the object from its parts, in part-number order. */
  complete(parts: readonly Part[]): Promise<void>;
  /** Discards the upload; called once every part in flight has settled. Never rejects. */
  abort(): Promise<void>;
}

/**
 * Uploads `chunks` as one object: `store.single` when they fit one part, else a part upload of
 * parts of exactly `partSize` (the last one smaller), at most `concurrency` in flight.
 * Resolves once the object is committed; rejects only after the provider's cleanup.
 */
export async function uploadInParts<Part>(
  chunks: AsyncIterable<Buffer>,
  options: PartUploadOptions,
  store: PartStore<Part>,
): Promise<void> {
  const { partSize, concurrency } = options;
  const withCrc32 = options.crc32 === true;
  const free: Buffer[] = [];
  let allocated = 0;
  // One part being filled while `concurrency` are in flight: never more buffers than that.
  const take = (): Buffer => {
    const reused = free.pop();
    if (reused !== undefined) return reused;
    allocated++;
    if (allocated > concurrency + 1) throw new Error("part upload: more part buffers than concurrency + 1");
    // Outside V8's buffer pool, not zero-filled: every byte sent is written first.
    return Buffer.allocUnsafeSlow(partSize);
  };

  const iterator = chunks[Symbol.asyncIterator]();
  let current = take();
  let filled = 0;
  let crc = 0;
  let parts: Parts<Part> | undefined;
  try {
    for (;;) {
      const step = await iterator.next();
      if (step.done) break;
      const chunk = step.value;
      let offset = 0;
      while (offset < chunk.length) {
        if (filled === partSize) {
          // A full part, and more bytes follow: it is not the last one.
          parts ??= new Parts(await store.start(), concurrency);
          await parts.send(current, filled, false, withCrc32 ? crc : undefined, (buffer) => free.push(buffer));
          current = take();
          filled = 0;
          crc = 0;
        }
        const end = Math.min(chunk.length, offset + partSize - filled);
        const copied = chunk.copy(current, filled, offset, end);
        if (withCrc32) crc = crc32(current.subarray(filled, filled + copied), crc);
        filled += copied;
        offset = end;
      }
      if (parts?.failed) break;
    }
    if (parts === undefined) {
      await store.single(current.subarray(0, filled));
      return;
    }
    // After a failed part, `complete` rejects with that part's error.
    if (!parts.failed) await parts.send(current, filled, true, withCrc32 ? crc : undefined, () => {});
    await parts.complete();
  } finally {
    // Any failure (a part, the source, the commit): the parts in flight settle first, since
    // an abort before them could leave a part behind, then the upload is discarded.
    if (parts !== undefined && !parts.completed) await parts.abort();
  }
}

/** The parts of one upload: those in flight, those done, and the first failure. */
class Parts<Part> {
  readonly #session: PartSession<Part>;
  readonly #concurrency: number;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #done: { partNumber: number; part: Part }[] = [];
  /** Fires with the first failure: no part starts or retries after it. */
  readonly #stop = new AbortController();
  #next = 1;
  #error: { error: unknown } | undefined;
  completed = false;

  constructor(session: PartSession<Part>, concurrency: number) {
    this.#session = session;
    this.#concurrency = concurrency;
  }

  get failed(): boolean {
    return this.#error !== undefined;
  }

  #fail(error: unknown): void {
    this.#error ??= { error };
    this.#stop.abort();
  }

  /**
   * Starts part `#next` from `buffer[0, length)` once fewer than `concurrency` are in flight
   * (`last` for the final one, `crc` its CRC32 if taken); `release` gets the buffer back when
   * its request has settled.
   */
  async send(
    buffer: Buffer,
    length: number,
    last: boolean,
    crc: number | undefined,
    release: (buffer: Buffer) => void,
  ): Promise<void> {
    while (this.#inFlight.size >= this.#concurrency) await Promise.race(this.#inFlight);
    if (this.#error !== undefined) {
      release(buffer);
      return;
    }
    const partNumber = this.#next++;
    const part = this.#session.sendPart(partNumber, buffer.subarray(0, length), this.#stop.signal, last, crc).then(
      (done) => {
        this.#done.push({ partNumber, part: done });
      },
      (err: unknown) => this.#fail(err),
    );
    const settled = part.finally(() => {
      this.#inFlight.delete(settled);
      release(buffer);
    });
    this.#inFlight.add(settled);
  }

  async complete(): Promise<void> {
    await Promise.all(this.#inFlight);
    if (this.#error !== undefined) throw this.#error.error;
    const parts = this.#done.sort((a, b) => a.partNumber - b.partNumber).map((d) => d.part);
    await this.#session.complete(parts);
    this.completed = true;
  }

  /** Waits for the parts in flight, then discards the upload. */
  async abort(): Promise<void> {
    this.#fail(new Error("upload stopped"));
    await Promise.all(this.#inFlight);
    await this.#session.abort();
  }
}
