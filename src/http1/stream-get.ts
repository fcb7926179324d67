/**
 * One GET on its own connection, its body a stream of views of what the socket receives.
 * Used for the two downloads whose gigabytes pass through the executor: the snapshot from
 * OpenBao (openbao/http.ts) and an S3 object on restore (storage/s3/continue-handler.ts); that
 * is where node:http's per-record cost shows (framing.ts says why and how much). Every other
 * call goes through node:http.
 *
 * The connection is the one node:https would open for the same caller: the same CA, SNI and
 * verification settings (`TlsConnectOptions`), `Connection: close`, never reused.
 */
import { isIP, connect as netConnect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { BodyDecoder, FramingError, ResponseHeadParser } from "./framing.ts";

/** The TLS settings of a connection, as node:https's agent gets them. */
export interface TlsConnectOptions {
  readonly ca?: string | string[];
  readonly servername?: string;
  readonly rejectUnauthorized: boolean;
}

/** Where the GET goes: `path` with its query string, already encoded. */
export interface GetTarget {
  readonly protocol: "http:" | "https:";
  /** A name or an IP address (IPv6 with or without brackets). */
  readonly hostname: string;
  /** Default: the scheme's. */
  readonly port?: number | undefined;
  readonly path: string;
}

/** The target of an http(s) URL (its path and query as the URL encoded them). */
export function targetOf(url: URL): GetTarget {
  return {
    protocol: url.protocol === "https:" ? "https:" : "http:",
    hostname: url.hostname,
    port: url.port === "" ? undefined : Number(url.port),
    path: `${url.pathname}${url.search}`,
  };
}

export interface StreamGetOptions {
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: TlsConnectOptions;
  readonly signal?: AbortSignal | undefined;
  /** Time allowed for the TCP connection; default `headersTimeoutMs`. */
  readonly connectTimeoutMs?: number | undefined;
  /** Time allowed from connecting until the response head has arrived. */
  readonly headersTimeoutMs: number;
  /**
   * Fail the body if it sends nothing for this long while the reader is ready for more. Time
   * spent waiting for the reader (backpressure) never counts. Default: no limit.
   */
  readonly stallTimeoutMs?: number | undefined;
  /** Turns a problem with the body ("ended before it was complete") into the error the stream emits. */
  readonly bodyError: (problem: string, cause?: unknown) => Error;
}

export interface StreamedResponse {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: ResponseBody;
}

/** Bytes the body holds for a slow reader before the socket is paused (as the old pipe's 1 MiB). */
const bodyHighWaterMark = 1024 * 1024;

/**
 * Sends `GET target.path` and resolves once the response head has arrived (any status).
 * Rejects with the socket's error, a `FramingError` for a response that is not HTTP/1.1, or an
 * error with code ETIMEDOUT or ECONNRESET (closed before a response: "socket hang up" in
 * node:http, which the SDKs retry) or name AbortError.
 */
export function streamGet(target: GetTarget, options: StreamGetOptions): Promise<StreamedResponse> {
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = target.port ?? (target.protocol === "https:" ? 443 : 80);
  const defaultPort = port === (target.protocol === "https:" ? 443 : 80);
  const hostHeader = `${isIP(host) === 6 ? `[${host}]` : host}${defaultPort ? "" : `:${port}`}`;
  const requestHead = renderRequest(target.path, hostHeader, options.headers);
  return new Promise((resolve, reject) => {
    const socket = connectTo(target.protocol, host, port, options.tls);
    const head = new ResponseHeadParser();
    const abort = (): void => {
      const err = new Error("The operation was aborted");
      err.name = "AbortError";
      socket.destroy(err);
    };
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener("abort", abort, { once: true });
    socket.once("close", () => options.signal?.removeEventListener("abort", abort));

    let waitingFor = "a connection";
    let limitMs = options.connectTimeoutMs ?? options.headersTimeoutMs;
    socket.setTimeout(limitMs, () =>
      socket.destroy(Object.assign(new Error(`no answer within ${limitMs} ms (${waitingFor})`), { code: "ETIMEDOUT" })),
    );
    socket.once("connect", () => {
      waitingFor = "the response head";
      limitMs = options.headersTimeoutMs;
      socket.setTimeout(limitMs);
    });
    const beforeHead = {
      data: (bytes: Buffer): void => {
        let got: ReturnType<ResponseHeadParser["feed"]>;
        try {
          got = head.feed(bytes);
        } catch (err) {
          socket.destroy(err as Error);
          return;
        }
        if (got === undefined) return;
        socket.setTimeout(0);
        socket.off("data", beforeHead.data);
        socket.off("error", beforeHead.error);
        socket.off("close", beforeHead.close);
        const body = new ResponseBody(socket, new BodyDecoder(got.head.framing), got.rest, options.bodyError);
        if (options.stallTimeoutMs !== undefined) guardAgainstStalls(body, options.stallTimeoutMs, options.bodyError);
        resolve({ status: got.head.status, headers: got.head.headers, body });
      },
      error: (err: Error): void => reject(err),
      close: (): void =>
        reject(Object.assign(new Error("the connection closed before a response arrived"), { code: "ECONNRESET" })),
    };
    socket.on("data", beforeHead.data);
    socket.on("error", beforeHead.error);
    socket.on("close", beforeHead.close);
    socket.write(requestHead, "latin1");
  });
}

/**
 * A response body. It ends only when the framing says the body is complete; a connection that
 * closes or fails before that makes it emit `bodyError(...)`, never a clean end (SPEC §5 trap 3).
 * Nothing happens until it is first read: the connection stays paused, and a failure before
 * then is raised at that first read rather than emitted to nobody.
 */
export class ResponseBody extends Readable {
  readonly #socket: Socket;
  readonly #decoder: BodyDecoder;
  readonly #bodyError: (problem: string, cause?: unknown) => Error;
  /** Bytes that came with the head, until the first read. */
  #first: Buffer | undefined;
  #reading = false;
  #failure: Error | undefined;
  readonly #emit = (bytes: Buffer): void => {
    if (!this.push(bytes)) this.#socket.pause();
  };

  constructor(
    socket: Socket,
    decoder: BodyDecoder,
    first: Buffer,
    bodyError: (problem: string, cause?: unknown) => Error,
  ) {
    super({ highWaterMark: bodyHighWaterMark });
    this.#socket = socket;
    this.#decoder = decoder;
    this.#first = first;
    this.#bodyError = bodyError;
    socket.pause();
    socket.on("data", (bytes: Buffer) => this.#receive(bytes));
    socket.on("end", () => {
      if (this.#decoder.endOfInput()) this.push(null);
    });
    socket.on("error", (err: Error) => this.#fail(this.#bodyError(`failed: ${err.message}`, err)));
    socket.on("close", () => {
      if (!this.#decoder.complete) this.#fail(this.#bodyError("ended before it was complete"));
    });
  }

  /** Bytes the connection has received (TLS records included): moves while the body flows. */
  get bytesReceived(): number {
    return this.#socket.bytesRead;
  }

  /** True while the connection is paused because the reader has not taken what it holds. */
  get waitingOnReader(): boolean {
    return this.#socket.isPaused();
  }

  override _read(): void {
    if (!this.#reading) {
      this.#reading = true;
      const first = this.#first;
      this.#first = undefined;
      if (first !== undefined) this.#receive(first);
      if (this.#failure !== undefined) this.destroy(this.#failure);
      if (this.destroyed || this.#decoder.complete) return;
    }
    this.#socket.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(err);
  }

  #receive(bytes: Buffer): void {
    if (this.#decoder.complete || this.destroyed) return;
    let complete: boolean;
    try {
      complete = this.#decoder.feed(bytes, this.#emit);
    } catch (err) {
      const problem = err instanceof FramingError ? err.message : String(err);
      this.#fail(this.#bodyError(`is not well-formed HTTP: ${problem}`, err));
      return;
    }
    if (complete) {
      this.push(null);
      // The connection carried this one response (`Connection: close`); nothing else will come.
      this.#socket.destroy();
    }
  }

  #fail(err: Error): void {
    if (this.#reading) this.destroy(err);
    else this.#failure ??= err;
  }
}

/**
 * Looked at a few times per timeout instead of a timer re-armed for every chunk: an HTTPS
 * body arrives in 16 KiB TLS records, 65,000 per GiB, and re-arming for each cost ≈ 0.1 CPU
 * s/GiB (BENCHMARKS.md). Quiet time counts only while the body flows: the connection is
 * paused while the reader is the slow side, and waiting on the reader is never a stall.
 */
function guardAgainstStalls(
  body: ResponseBody,
  stallTimeoutMs: number,
  bodyError: (problem: string, cause?: unknown) => Error,
): void {
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
        body.destroy(bodyError(`stalled: no data for ${Math.round(stallTimeoutMs / 1000)} s`));
      }
    },
    Math.max(10, Math.min(stallTimeoutMs / 4, 5_000)),
  );
  body.once("close", () => clearInterval(watch));
}

function connectTo(protocol: "http:" | "https:", host: string, port: number, tls: TlsConnectOptions): Socket {
  if (protocol === "http:") return netConnect({ host, port });
  // node:https sends the host as SNI unless it is an IP address, and checks the certificate
  // against the SNI name or else the host; `servername` overrides both, as it does there.
  const servername = tls.servername ?? (isIP(host) === 0 ? host : undefined);
  return tlsConnect({
    host,
    port,
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(servername === undefined ? {} : { servername }),
  });
}

/** The request head; `Host` unless the caller's headers carry it (a signed request does). */
function renderRequest(path: string, host: string, headers: Readonly<Record<string, string>>): string {
  const lines = [`GET ${path} HTTP/1.1`];
  if (!Object.keys(headers).some((name) => name.toLowerCase() === "host")) lines.push(`Host: ${host}`);
  for (const [name, value] of Object.entries(headers)) {
    // CR or LF in a value would end the header early and let the rest be read as a new one.
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || !/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) {
      throw new TypeError(
        `the ${name.replace(/[^\x21-\x7e]/g, "?")} header contains characters an HTTP header cannot carry`,
      );
    }
    if (name.toLowerCase() !== "connection") lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close", "", "");
  return lines.join("\r\n");
}
