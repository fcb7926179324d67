/**
 * The counting, hashing pass-through of the single pass over a snapshot's bytes (SPEC §4):
 *
 *   pipeline(openbaoSnapshot, tap, inspector, upload, { signal })
 *
 * Chunks pass through unchanged and unbuffered (the tap adds no queue of its own beyond the
 * stream's high-water mark), so it costs one hash update per chunk and never changes
 * backpressure. `bytes` is live (usable for progress lines); the digest exists only once the
 * stream has ended, because a hash of part of a stream must never be mistaken for the whole.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

export class HashingTap extends Transform {
  #bytes = 0;
  readonly #hash: Hash = createHash("sha256");
  #digest: Buffer | null = null;

  /** Bytes that have passed through so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True once every byte has passed and the digest is final. */
  get finished(): boolean {
    return this.#digest !== null;
  }

  /** SHA-256 of everything that passed, hex (default) or base64. Throws until the stream has ended. */
  sha256(encoding: "hex" | "base64" = "hex"): string {
    if (this.#digest === null) {
      throw new Error("HashingTap.sha256(): the stream has not ended, so there is no digest of the whole yet");
    }
    return this.#digest.toString(encoding);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = this.#hash.digest();
    callback();
  }
}

/** A new tap; use one per stream. */
export function createTap(): HashingTap {
  return new HashingTap();
}
