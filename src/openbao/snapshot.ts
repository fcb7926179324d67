/**
 * The two snapshot calls: read a Raft snapshot as a stream, and apply one from a stream.
 * A stream that ends early is an error here, never a clean end of file (SPEC §5 trap 3).
 */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { OpenBaoError } from "./errors.ts";
import { errorForStatus, type OpenBaoHttp, readCapped } from "./http.ts";
import type { ResponseBody } from "./stream-get.ts";

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
 * code SnapshotFailed) if the connection drops before the server finished the body, or if
 * the body stalls while we are ready to read it.
 */
export async function openSnapshot(
  http: OpenBaoHttp,
  leader: string,
  token: string,
  signal?: AbortSignal,
  options: { stallTimeoutMs?: number } = {},
): Promise<Readable> {
  const res = await http.streamGet(leader, {
    path: snapshotPath,
    token,
    signal,
    timeoutMs: 60_000,
    bodyError: (problem, cause) =>
      cause instanceof OpenBaoError
        ? cause
        : new OpenBaoError("SnapshotFailed", `the snapshot stream from ${leader} ${problem}`, {
            cause,
            address: leader,
          }),
  });
  const status = res.status;
  if (status !== 200) {
    const text = await readCapped(res.body, 64 * 1024, leader).catch(() => "");
    res.body.destroy();
    if (status === 400 || status === 401) {
      throw new OpenBaoError("AuthFailed", `${leader} refused the token for ${snapshotPath} (${status})`, {
        status,
        address: leader,
      });
    }
    throw errorForStatus(status, text, leader, snapshotPath, "SnapshotFailed");
  }
  guardAgainstStalls(res.body, leader, options.stallTimeoutMs ?? defaultStallTimeoutMs);
  return res.body;
}

/**
 * Fails the body if it sends nothing for `stallTimeoutMs` while we are ready to read it.
 * Looked at a few times per timeout instead of a timer re-armed for every chunk: an HTTPS
 * body arrives in 16 KiB TLS records, 65,000 per GiB, and re-arming for each cost ≈ 0.1 CPU
 * s/GiB (BENCHMARKS.md). Quiet time counts only while the body flows: the connection is
 * paused when storage is the slow side, and waiting on storage is never a stall.
 */
function guardAgainstStalls(body: ResponseBody, leader: string, stallTimeoutMs: number): void {
  let seen = body.bytesReceived;
  let quietSince = performance.now();
  const watch = setInterval(
    () => {
      const now = performance.now();
      const read = body.bytesReceived;
      if (read !== seen || body.waitingOnReader) {
        seen = read;
        quietSince = now;
      } else if (now - quietSince >= stallTimeoutMs) {
        clearInterval(watch);
        body.destroy(
          new OpenBaoError(
            "SnapshotFailed",
            `the snapshot stream from ${leader} stalled: no data for ${Math.round(stallTimeoutMs / 1000)} s`,
            { address: leader },
          ),
        );
      }
    },
    Math.max(10, Math.min(stallTimeoutMs / 4, 5_000)),
  );
  body.once("close", () => clearInterval(watch));
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
