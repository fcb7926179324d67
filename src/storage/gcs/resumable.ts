/**
 * GCS uploads without the library's per-chunk costs, keeping the library for the session:
 * the mechanism S3 and Azure share (part-upload.ts: each chunk copied once into pooled part
 * buffers, backpressure, the first failure reported, cleanup after the parts settle) with
 * GCS's resumable protocol as its requests.
 *
 * Measured (BENCHMARKS.md, finding 15): the library's resumable upload keeps the chunks it is
 * given until their whole chunk request is sent and writes them to the socket one by one — on
 * fake-gcs-server 8.8 CPU s/GiB at 256 MiB, the garbage collector alone 0.8 and the socket
 * writes 0.7, the main thread otherwise idle.
 *
 * - The session is opened by the library (`File.createResumableUpload`): the object's metadata
 *   and content type, a CMEK `kmsKeyName` (the File carries it), its credentials and retries,
 *   and the store's agents (its interceptor) are what they were.
 * - Each part is one `PUT` of a pooled buffer to the session URI (put-request.ts: the store's
 *   keep-alive agents, TLS writes in 1 MiB slices), `Content-Range: bytes a-b/*`, one at a
 *   time (a session takes its bytes in order); the last one names the object's size and
 *   finalizes it (`a-b/size`, or `*\/size` for an empty object). Parts but the last are whole
 *   multiples of 256 KiB (parts.ts rounds partSize so).
 * - The store answers an intermediate part with 308 and the bytes it has persisted (`Range:
 *   bytes=0-n`); bytes it did not persist are sent again from the same buffer. A failed
 *   request (a dropped connection, 408, 429, 5xx) is retried as the library retries (3 times,
 *   1 s doubling to at most 8 s), after asking the session how far it got (`bytes *\/*`).
 *   Anything else (403, 404, 410 for an expired session) fails the upload; so does an object
 *   the store finalized before its last part, which is deleted first (it holds part of the
 *   stream). Which answer leads where is `nextStep`, pure and unit-tested.
 * - No `Expect: 100-continue` (not known to be answered by Google's front ends): a refusal
 *   before the body shows as a dropped connection, and the session's status then says why.
 * - Validation as before: none by the library (its CRC32C cost ≈ 4 CPU s/GiB in JavaScript);
 *   HTTPS protects the bytes on the wire, the backup checks the stored size, and the
 *   snapshot's SHA-256 in its manifest is checked by restore, `verify` and drills.
 * A failure cancels the session (DELETE) once the part in flight has settled, then rejects.
 */
import type { IncomingMessage } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { File } from "@google-cloud/storage";
import { type PartSession, uploadInParts } from "../part-upload.ts";
import { type RequestTarget, readSome, sendWithContinue } from "../put-request.ts";
import type { Agents } from "../tls.ts";

export interface ResumableParams {
  /** The object (with its `kmsKeyName`, if any). */
  readonly file: File;
  /** What the session is opened with: the object resource's `contentType` and `metadata`. */
  readonly metadata: { readonly contentType?: string; readonly metadata: Record<string, string> };
  readonly agents: Agents;
  readonly partSize: number;
  /** Headers for the session's requests: the library's credentials, or none for an emulator. */
  readonly authHeaders: (url: string) => Promise<Record<string, string>>;
  /** Cancels the session (best effort). */
  readonly cancel: (uri: string) => Promise<void>;
  /** Deletes the object: for one the store finalized before its last part. */
  readonly discardObject: () => Promise<void>;
}

/** Retries of one request, as the library's `retryOptions.maxRetries`. */
export const maxRetries = 3;

const retryableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;

/** An HTTP answer GCS gave, shaped as gaxios errors are (gcsErrorFacts reads it). */
export class GcsHttpError extends Error {
  readonly status: number;
  readonly response: { readonly status: number; readonly data: unknown };
  constructor(message: string, status: number, data: unknown) {
    super(message);
    this.name = "GcsHttpError";
    this.status = status;
    this.response = { status, data };
  }
}

/** Uploads `chunks` as one object through a resumable session, one part at a time. */
export function resumableUpload(chunks: AsyncIterable<Buffer>, params: ResumableParams): Promise<void> {
  return uploadInParts(
    chunks,
    { partSize: params.partSize, concurrency: 1 },
    {
      // An object of at most one part: a session and its one, final request.
      single: async (body) => {
        const session = await Session.open(params);
        try {
          await session.sendPart(1, body, new AbortController().signal, true);
        } catch (err) {
          await session.abort();
          throw err;
        }
      },
      start: () => Session.open(params),
    },
  );
}

/** The last byte a 308 says the store has persisted, as a count of bytes (0 without a Range). */
export function persistedBytes(res: Pick<IncomingMessage, "headers">): number {
  const range = res.headers.range;
  const match = typeof range === "string" ? /^bytes=0-(\d+)$/.exec(range.trim()) : null;
  return match?.[1] === undefined ? 0 : Number(match[1]) + 1;
}

/** `Content-Range` of the bytes [start, end) of an object of `total` bytes (undefined: not known yet). */
export function contentRange(start: number, end: number, total: number | undefined): string {
  const size = total === undefined ? "*" : String(total);
  return end > start ? `bytes ${start}-${end - 1}/${size}` : `bytes */${size}`;
}

/** A part of the object: bytes [start, end), and whether it is the last. */
export interface PartSpan {
  readonly start: number;
  readonly end: number;
  readonly last: boolean;
}

/** What the session said: the bytes it holds (308), that the object is final (200/201), or nothing usable. */
export type SessionAnswer =
  | { readonly kind: "holds"; readonly bytes: number }
  | { readonly kind: "finalized" }
  | { readonly kind: "unknown" };

export type NextStep =
  | { readonly kind: "done" }
  | { readonly kind: "send"; readonly from: number }
  | { readonly kind: "fail"; readonly reason: string };

/**
 * What to do after the session's `answer` about `part`, the bytes from `sent` on having been
 * sent last (`to`: the answer to that send, or to a status question after it failed). Pure.
 * - all of a part but the last held: the part is done; the last is done only once finalized;
 * - fewer bytes held than the part's start: bytes the session had confirmed are gone: fail;
 * - otherwise send again from what it holds — after a send only if the answer shows progress,
 *   so a store that keeps nothing is never asked forever;
 * - finalized before the last part: fail (the caller deletes the early object);
 * - no usable answer (the status question failed too): send again from `sent`.
 */
export function nextStep(part: PartSpan, sent: number, answer: SessionAnswer, to: "send" | "status"): NextStep {
  switch (answer.kind) {
    case "finalized":
      return part.last
        ? { kind: "done" }
        : { kind: "fail", reason: `the store finalized the object at byte ${part.end}, before its last part` };
    case "unknown":
      return { kind: "send", from: sent };
    case "holds": {
      if (answer.bytes >= part.end && !part.last) return { kind: "done" };
      if (answer.bytes < part.start) {
        return {
          kind: "fail",
          reason: `the session holds ${answer.bytes} bytes, fewer than the ${part.start} it had confirmed`,
        };
      }
      if (to === "send" && answer.bytes <= sent) {
        return {
          kind: "fail",
          reason: `the session holds ${answer.bytes} bytes after bytes ${sent}–${part.end} were sent to it`,
        };
      }
      return { kind: "send", from: Math.min(answer.bytes, part.end) };
    }
  }
}

/** Whether a failed request is worth another try: no answer at all, 408, 429 or 5xx. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof GcsHttpError) return retryableStatus(err.status);
  // No answer at all: a dropped or refused connection, a timeout.
  return true;
}

/** The JSON API's error (`{error: {code, message, errors}}`) when the body is one, else the text. */
function errorData(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function messageOf(data: unknown, status: number): string {
  const error = (data as { error?: { message?: unknown } } | undefined)?.error;
  if (typeof error?.message === "string" && error.message !== "") return error.message;
  if (typeof data === "string" && data.trim() !== "") return data.trim().slice(0, 300);
  return `the store answered HTTP ${status}`;
}

/** One resumable session: its URI and how many bytes the store has persisted. */
class Session implements PartSession<void> {
  readonly #params: ResumableParams;
  readonly #uri: string;
  readonly #target: RequestTarget;
  readonly #path: string;
  /** Bytes the store has confirmed: every part so far (parts go one at a time). */
  #persisted = 0;

  private constructor(params: ResumableParams, uri: string) {
    this.#params = params;
    this.#uri = uri;
    const url = new URL(uri);
    this.#target = {
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port === "" ? undefined : Number(url.port),
    };
    this.#path = `${url.pathname}${url.search}`;
  }

  static async open(params: ResumableParams): Promise<Session> {
    const [uri] = await params.file.createResumableUpload({ metadata: params.metadata });
    return new Session(params, uri);
  }

  /** Sends `body` as the bytes after those persisted, resending whatever the store did not keep. */
  async sendPart(_partNumber: number, body: Buffer, stopped: AbortSignal, last: boolean): Promise<void> {
    const part: PartSpan = { start: this.#persisted, end: this.#persisted + body.length, last };
    const total = last ? part.end : undefined;
    let sent = part.start;
    for (let retry = 0; ; ) {
      let answer: SessionAnswer;
      let to: "send" | "status" = "send";
      try {
        answer = await this.#answerOf(
          await this.#put(body.subarray(sent - part.start), contentRange(sent, part.end, total)),
        );
      } catch (err) {
        if (stopped.aborted || !isRetryable(err) || retry >= maxRetries) throw err;
        await sleep(Math.min(8_000, 1_000 * 2 ** retry));
        retry++;
        // Where did the store get to? (It may have kept part, or all, of what was sent.)
        to = "status";
        answer = await this.#put(Buffer.alloc(0), `bytes */${total === undefined ? "*" : String(total)}`)
          .then((res) => this.#answerOf(res))
          .catch((question: unknown): SessionAnswer => {
            // The store's own refusal (403, 404, 410 for an expired session) is the reason the
            // part failed — a refusal before the body reads as a dropped connection: report it.
            if (!isRetryable(question)) throw question;
            return { kind: "unknown" };
          });
      }
      const next = nextStep(part, sent, answer, to);
      if (next.kind === "done") {
        this.#persisted = part.end;
        return;
      }
      if (next.kind === "fail") {
        // An object finalized early holds part of the stream: it must not stay under the key.
        if (answer.kind === "finalized") await this.#params.discardObject();
        throw new Error(`GCS resumable upload: ${next.reason}`);
      }
      sent = next.from;
    }
  }

  /** 308 (the bytes it holds) or 200/201 (finalized); any other answer is an error. */
  async #answerOf(res: IncomingMessage): Promise<SessionAnswer> {
    const status = res.statusCode ?? 0;
    if (status === 308) {
      res.resume();
      return { kind: "holds", bytes: persistedBytes(res) };
    }
    const text = await readSome(res, 64 * 1024).catch(() => "");
    if (status === 200 || status === 201) return { kind: "finalized" };
    const data = errorData(text);
    throw new GcsHttpError(messageOf(data, status), status, data);
  }

  /** Nothing to commit: the last part finalized the object. */
  async complete(): Promise<void> {}

  async abort(): Promise<void> {
    await this.#params.cancel(this.#uri);
  }

  async #put(body: Buffer, range: string): Promise<IncomingMessage> {
    const headers = {
      ...(await this.#params.authHeaders(this.#uri)),
      "content-length": String(body.length),
      "content-range": range,
    };
    return sendWithContinue(this.#params.agents, this.#target, "PUT", this.#path, headers, body, undefined, {
      expectContinue: false,
    });
  }
}
