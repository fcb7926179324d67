/**
 * One GET on its own connection, its body a stream of views of what the socket receives.
 * Used for the snapshot download only: its gigabytes are where node:http's per-record cost
 * shows (http1-framing.ts says why and how much); every other call goes through node:http.
 *
 * The connection is the one node:https would open: same CA, SNI and verification settings
 * (`TlsConnectOptions`, from the same `OpenBaoHttp`), `Connection: close`, never reused.
 */
import { isIP, connect as netConnect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { BodyDecoder, FramingError, ResponseHeadParser } from "./http1-framing.ts";

/** The TLS settings of a connection, as node:https's agent gets them. */
export interface TlsConnectOptions {
  readonly ca?: string;
  readonly servername?: string;
  readonly rejectUnauthorized: boolean;
}

export interface StreamGetOptions {
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: TlsConnectOptions;
  readonly signal?: AbortSignal | undefined;
  /** Time allowed from connecting until the response head has arrived. */
  readonly headersTimeoutMs: number;
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
 * Sends `GET url` and resolves once the response head has arrived (any status). Rejects with
 * the socket's error, a `FramingError` for a response that is not HTTP/1.1, or an error with
 * code ETIMEDOUT / name AbortError.
 */
export function streamGet(url: URL, options: StreamGetOptions): Promise<StreamedResponse> {
  const requestHead = renderRequest(url, options.headers);
  return new Promise((resolve, reject) => {
    const socket = connectTo(url, options.tls);
    const head = new ResponseHeadParser();
    const abort = (): void => {
      const err = new Error("The operation was aborted");
      err.name = "AbortError";
      socket.destroy(err);
    };
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener("abort", abort, { once: true });
    socket.once("close", () => options.signal?.removeEventListener("abort", abort));

    socket.setTimeout(options.headersTimeoutMs, () =>
      socket.destroy(
        Object.assign(new Error(`no answer within ${options.headersTimeoutMs} ms`), { code: "ETIMEDOUT" }),
      ),
    );
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
        resolve({ status: got.head.status, headers: got.head.headers, body });
      },
      error: (err: Error): void => reject(err),
      close: (): void => reject(new Error("the connection closed before a response arrived")),
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

function connectTo(url: URL, tls: TlsConnectOptions): Socket {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (url.protocol === "http:") return netConnect({ host, port: Number(url.port || 80) });
  // node:https sends the host as SNI unless it is an IP address, and checks the certificate
  // against the SNI name or else the host; `servername` overrides both, as it does there.
  const servername = tls.servername ?? (isIP(host) === 0 ? host : undefined);
  return tlsConnect({
    host,
    port: Number(url.port || 443),
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(servername === undefined ? {} : { servername }),
  });
}

function renderRequest(url: URL, headers: Readonly<Record<string, string>>): string {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    // CR or LF in a value would end the header early and let the rest be read as a new one.
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) {
      throw new TypeError(`the ${name} header contains characters an HTTP header cannot carry`);
    }
    lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close", "", "");
  return lines.join("\r\n");
}
