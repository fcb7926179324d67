/**
 * Small stream and batch helpers the providers share.
 */
import { PassThrough, type Readable } from "node:stream";
import type { StorageError } from "./errors.ts";
import type { DeleteManyResult } from "./object-store.ts";

/**
 * Hands out a download body whose errors are StorageErrors (a dropped connection mid-stream
 * becomes `Unreachable`, never a raw socket error), and which stops the SDK stream when the
 * consumer destroys it or `signal` fires.
 */
export function guardDownload(
  body: NodeJS.ReadableStream | Readable,
  toError: (err: unknown) => StorageError,
  signal?: AbortSignal,
): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  const source = body as Readable;
  const fail = (err: unknown): void => {
    out.destroy(toError(err));
  };
  source.on("error", fail);
  out.on("close", () => {
    if (!source.destroyed) source.destroy();
  });
  if (signal) {
    const onAbort = (): void =>
      fail(Object.assign(new Error("download aborted"), { name: "AbortError", cause: signal.reason }));
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener("abort", onAbort, { once: true });
      out.on("close", () => signal.removeEventListener("abort", onAbort));
    }
  }
  source.pipe(out);
  return out;
}

/**
 * Deletes keys one request each, at most `concurrency` at a time: GCS's JSON API has no batch
 * delete for plain keys, and Azure's blob batch is a multipart protocol of its own that a few
 * retention deletes per run do not need. `deleteOne` treats a missing object as deleted.
 * Versions a versioned GCS bucket or Azure account keeps are left to their lifecycle rules
 * (docs/providers): nothing reports them here.
 */
export async function deleteEach(
  keys: readonly string[],
  concurrency: number,
  deleteOne: (key: string) => Promise<void>,
  toError: (err: unknown, key: string) => StorageError,
): Promise<DeleteManyResult> {
  const result: DeleteManyResult = { deleted: [], failed: [], versionsKept: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < keys.length; i = next++) {
      const key = keys[i] as string;
      try {
        await deleteOne(key);
        result.deleted.push(key);
      } catch (err) {
        result.failed.push({ key, error: toError(err, key) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
  return result;
}
