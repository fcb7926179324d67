/**
 * The two snapshot calls: read a Raft snapshot as a stream, and apply one from a stream.
 * A stream that ends early is an error here, never a clean end of file (SPEC §5 trap 3).
 */
import type { IncomingMessage } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import { OpenBaoError } from "./errors.ts";
import { errorForStatus, type OpenBaoHttp, readCapped } from "./http.ts";

const snapshotPath = "sys/storage/raft/snapshot";

/**
 * How long the snapshot body may send nothing while we are ready to read it. OpenBao streams
 * a snapshot without pauses once headers are out; a member that goes silent (hung process,
 * a partition that never resets the connection) would otherwise hold the Job until its
 * activeDeadlineSeconds. Time spent waiting on storage (backpressure) never counts.
 */
export const defaultStallTimeoutMs = 120_000;

/**
 * Opens `GET sys/storage/raft/snapshot` on the leader. The returned stream errors (with
 * code SnapshotFailed) if the connection drops before the server finished the body.
 */
export async function openSnapshot(
  http: OpenBaoHttp,
  leader: string,
  token: string,
  signal?: AbortSignal,
  options: { stallTimeoutMs?: number } = {},
): Promise<Readable> {
  const res = await http.request(leader, { method: "GET", path: snapshotPath, token, signal, timeoutMs: 60_000 });
  const status = res.statusCode ?? 0;
  if (status !== 200) {
    const text = await readCapped(res, 64 * 1024, leader).catch(() => "");
    if (status === 400 || status === 401) {
      throw new OpenBaoError("AuthFailed", `${leader} refused the token for ${snapshotPath} (${status})`, {
        status,
        address: leader,
      });
    }
    throw errorForStatus(status, text, leader, snapshotPath, "SnapshotFailed");
  }
  return guardCompleteness(res, leader, options.stallTimeoutMs ?? defaultStallTimeoutMs);
}

/**
 * Wraps a response so that a premature close, or a body that stalls while we wait for it,
 * surfaces as an error on the stream.
 */
function guardCompleteness(res: IncomingMessage, leader: string, stallTimeoutMs: number): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const stalled = (): void => {
    res.destroy(
      new OpenBaoError(
        "SnapshotFailed",
        `the snapshot stream from ${leader} stalled: no data for ${Math.round(stallTimeoutMs / 1000)} s`,
        { address: leader },
      ),
    );
  };
  // Looked at a few times per timeout instead of a timer re-armed for every chunk: an HTTPS
  // body arrives in 16 KiB TLS records, 65,000 per GiB, and re-arming for each cost ≈ 0.1 CPU
  // s/GiB (BENCHMARKS.md). Quiet time counts only while the response flows: `pipe` pauses it
  // when storage is the slow side, and waiting on storage is never a stall.
  const socket = res.socket;
  let seen = socket.bytesRead;
  let quietSince = performance.now();
  const watch = setInterval(
    () => {
      const now = performance.now();
      const read = socket.bytesRead;
      if (read !== seen || res.isPaused()) {
        seen = read;
        quietSince = now;
      } else if (now - quietSince >= stallTimeoutMs) {
        clearInterval(watch);
        stalled();
      }
    },
    Math.max(10, Math.min(stallTimeoutMs / 4, 5_000)),
  );
  res.on("error", (err) =>
    out.destroy(
      err instanceof OpenBaoError
        ? err
        : new OpenBaoError("SnapshotFailed", `the snapshot stream from ${leader} failed: ${err.message}`, {
            cause: err,
            address: leader,
          }),
    ),
  );
  res.on("close", () => {
    clearInterval(watch);
    if (!res.complete) {
      out.destroy(
        new OpenBaoError("SnapshotFailed", `the snapshot stream from ${leader} ended before it was complete`, {
          address: leader,
        }),
      );
    }
  });
  out.on("close", () => {
    clearInterval(watch);
    if (!res.complete) res.destroy();
  });
  res.pipe(out);
  return out;
}

/**
 * Streams a snapshot into `POST sys/storage/raft/snapshot` (or `snapshot-force`). Resolves
 * once OpenBao accepted and applied it. If `body` errors before its end, the request is
 * destroyed mid-body, so OpenBao never sees a complete snapshot and applies nothing.
 */
export async function restoreSnapshot(
  http: OpenBaoHttp,
  leader: string,
  token: string,
  body: Readable,
  options: { force: boolean; signal?: AbortSignal },
): Promise<void> {
  const path = options.force ? `${snapshotPath}-force` : snapshotPath;
  let bodyError: unknown;
  body.once("error", (err) => {
    bodyError = err;
  });
  let res: IncomingMessage;
  try {
    res = await http.request(leader, { method: "POST", path, token, body, signal: options.signal, timeoutMs: 0 });
  } catch (err) {
    throw bodyError ?? err;
  }
  const text = await readCapped(res, 64 * 1024, leader).catch(() => "");
  if (bodyError) throw bodyError;
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    if (status === 400 || status === 401) {
      const detail = text.includes("permission denied") ? "permission denied" : text.slice(0, 300);
      throw new OpenBaoError("RestoreFailed", `${leader} refused the snapshot on ${path} (${status}): ${detail}`, {
        status,
        address: leader,
      });
    }
    throw errorForStatus(status, text, leader, path, "RestoreFailed");
  }
}
