/**
 * Generated test data: a deterministic, incompressible byte stream of any size, produced in
 * fresh 64 KiB buffers the way a socket delivers them (so an SDK that keeps references pays
 * for them, as it would in production), with its SHA-256 computed as it is produced.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Readable } from "node:stream";

const chunkSize = 64 * 1024;
const pool = randomBytes(4 * 1024 * 1024 + chunkSize);

export interface Generated {
  readonly source: AsyncIterable<Uint8Array>;
  /** Hex SHA-256 of everything produced so far (the whole stream once it ended). */
  sha256(): string;
  produced(): number;
}

export interface GenerateOptions {
  /** Throw this error once this many bytes were produced. */
  readonly failAfter?: { readonly bytes: number; readonly error: Error };
  /** Called once when this many bytes were produced. */
  readonly onProgress?: { readonly bytes: number; readonly run: () => void };
}

export function generate(size: number, options: GenerateOptions = {}): Generated {
  const hash = createHash("sha256");
  let produced = 0;
  let digest: string | undefined;
  let progressed = false;
  async function* source(): AsyncGenerator<Uint8Array> {
    let index = 0;
    while (produced < size) {
      if (options.failAfter && produced >= options.failAfter.bytes) throw options.failAfter.error;
      if (options.onProgress && !progressed && produced >= options.onProgress.bytes) {
        progressed = true;
        options.onProgress.run();
      }
      const n = Math.min(chunkSize, size - produced);
      const offset = (index * 7919 * 64) % (pool.length - chunkSize);
      const chunk = Buffer.from(pool.subarray(offset, offset + n));
      hash.update(chunk);
      produced += n;
      index++;
      yield chunk;
    }
    if (options.failAfter && produced >= options.failAfter.bytes) throw options.failAfter.error;
  }
  return {
    source: source(),
    sha256: () => {
      digest ??= hash.digest("hex");
      return digest;
    },
    produced: () => produced,
  };
}

export async function sha256Of(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes };
}
