/**
 * The two snapshot calls: read a Raft snapshot as a stream, and apply one from a stream.
 * A stream that ends early is an error here, never a clean end of file (SPEC §5 trap 3).
 */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
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
    stallTimeoutMs: options.stallTimeoutMs ?? defaultStallTimeoutMs,
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
  return res.body;
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
