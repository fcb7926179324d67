/**
 * One PUT (or POST) of a buffer on the store's own keep-alive agents — S3's parts
 * (s3/multipart.ts) and GCS's resumable chunks (gcs/resumable.ts) — by default announced with
 * `Expect: 100-continue`: the body leaves only once the store has said it wants it.
 *
 * Why: a store that refuses a PUT (a bucket policy's 403, a missing bucket's 404) answers
 * before reading the body and closes the connection. A client still writing the body then
 * gets EPIPE / ECONNRESET instead of the answer, retries into the same race, and a refusal is
 * reported as "storage unreachable" — seen in CI with MinIO and a deny-unencrypted policy.
 * With 100-continue the refusal arrives before any body byte is sent. The SDK sets the header
 * (client.ts: on every request with a body) but does not wait for the interim answer when the
 * agents are the caller's own (ours are: they carry the store's CA), so the wait is done
 * here, for the SDK's own requests (ContinueAwareHandler) and the lean UploadPart alike.
 * A store or proxy that never answers the Expect gets the body after `continueWaitMs`.
 */
import type { ClientRequest, IncomingMessage } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { type Agents, tlsWriteSliceBytes } from "./tls.ts";

export interface RequestTarget {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | undefined;
}

/** Connection and idle limits, as the client's NodeHttpHandler (client.ts) has them. */
export const connectionTimeoutMs = 5_000;
export const requestTimeoutMs = 120_000;
/** How long to wait for `100 Continue` before sending the body anyway (RFC 9110 §10.1.1). */
const continueWaitMs = 1_000;

/**
 * Sends `body` to `path` (with its query string) once the store asks for it, and resolves with
 * the response, its body unread. When the store answers before asking, no body byte is sent
 * and the connection is closed once the answer has been read (it cannot carry another request).
 */
export function sendWithContinue(
  agents: Agents,
  target: RequestTarget,
  method: "PUT" | "POST",
  path: string,
  headers: Readonly<Record<string, string>>,
  body: Buffer,
  signal?: AbortSignal,
  options: { readonly expectContinue?: boolean } = {},
): Promise<IncomingMessage> {
  const secure = target.protocol === "https:";
  // Without the Expect (a store not known to answer it: GCS), the body follows the headers.
  const expectContinue = options.expectContinue ?? true;
  return new Promise((resolve, reject) => {
    const req: ClientRequest = (secure ? httpsRequest : httpRequest)({
      method,
      hostname: target.hostname,
      ...(target.port === undefined ? {} : { port: target.port }),
      path,
      headers: expectContinue ? { ...headers, expect: "100-continue" } : headers,
      // The store's agents: its CA, verification setting and keep-alive sockets (tls.ts).
      agent: secure ? agents.https : agents.http,
    });
    let bodySent = false;
    const sendBody = (): void => {
      if (bodySent) return;
      bodySent = true;
      clearTimeout(wait);
      if (secure) writeSliced(req, body);
      else req.end(body);
    };
    const wait = setTimeout(sendBody, expectContinue ? continueWaitMs : 0);
    req.once("continue", sendBody);
    req.once("response", (res) => {
      if (!bodySent) {
        // Answered without the body (a refusal): never send it; the request can never end,
        // so its socket is closed rather than left half-used in the agent's pool.
        bodySent = true;
        clearTimeout(wait);
        res.once("end", () => req.destroy());
        res.once("error", () => req.destroy());
      }
      resolve(res);
    });
    req.on("error", (err) => {
      clearTimeout(wait);
      reject(err);
    });
    if (signal !== undefined) {
      if (signal.aborted) req.destroy(abortError(signal));
      else signal.addEventListener("abort", () => req.destroy(abortError(signal)), { once: true });
    }
    limitTime(req, target.hostname, secure);
    // The headers go now, alone: the store answers them before the body exists on the wire.
    req.flushHeaders();
  });
}

/** Reads at most `limit` bytes of an answer (a store's error); the rest is discarded. */
export async function readSome(res: IncomingMessage, limit: number): Promise<string> {
  let text = "";
  for await (const chunk of res) {
    if (text.length < limit) text += (chunk as Buffer).toString("utf8", 0, Math.min((chunk as Buffer).length, limit));
  }
  return text.slice(0, limit);
}

/** RFC 3986 escaping, as SigV4 canonicalises query keys and values. */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error("the request was aborted", { cause: signal.reason }), { name: "AbortError" });
}

/**
 * Writes `body` in slices (views, no copies), each once the last has left: TLS encrypts all
 * of a write at once and queues the ciphertext, so one 10 MiB write would hold a second copy
 * of the part until the store has read it (measured: +50 MiB peak RSS at 10 MiB × 3).
 * Over plain HTTP the body is written whole: the kernel takes it from the buffer as it can.
 */
function writeSliced(req: ClientRequest, body: Buffer): void {
  let offset = 0;
  const next = (): void => {
    while (offset < body.length) {
      const end = Math.min(body.length, offset + tlsWriteSliceBytes);
      const more = req.write(body.subarray(offset, end));
      offset = end;
      if (!more) {
        req.once("drain", next);
        return;
      }
    }
    req.end();
  };
  next();
}

/**
 * The client's connection and idle limits on one request. Apart from `sendWithContinue` on purpose:
 * a listener on a kept-alive socket outlives its request, and a closure created there would
 * keep that request's body buffer reachable for as long as the socket lives.
 */
function limitTime(req: ClientRequest, hostname: string, secure: boolean): void {
  req.on("socket", (socket) => {
    if (!socket.connecting) return;
    const timer = setTimeout(() => {
      req.destroy(
        Object.assign(new Error(`connection to ${hostname} timed out`), { name: "TimeoutError", code: "ETIMEDOUT" }),
      );
    }, connectionTimeoutMs);
    const clear = (): void => clearTimeout(timer);
    socket.once(secure ? "secureConnect" : "connect", clear);
    req.once("close", clear);
  });
  req.setTimeout(requestTimeoutMs, () => {
    req.destroy(Object.assign(new Error("the store sent nothing for two minutes"), { name: "TimeoutError" }));
  });
}
