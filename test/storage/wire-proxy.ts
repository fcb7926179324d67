/**
 * A loopback HTTP pass-through in front of a real storage server, to observe what reaches
 * the wire: every request is forwarded unchanged (Host header included, so SigV4 signatures
 * still match) to the real server, and its method, path, body size and timing are recorded.
 * It answers nothing itself, except when a test asks it to drop requests (`failWhen`) to
 * simulate a store that fails mid-upload, or to change a byte of a request's body on its way
 * (`alterWhen`), or to cut an answer's body after some bytes (`cutResponseWhen`), as a faulty or
 * hostile link would.
 *
 * `Expect: 100-continue` is forwarded: the server's `100 Continue` is relayed, and a body the
 * client sends without it still reaches the server (`bodyBytes` counts what the client sent).
 * `Location` headers that point at the server (GCS resumable sessions) are rewritten to
 * point back at the proxy.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

export interface WireRecord {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  /** Request body bytes forwarded. */
  bodyBytes: number;
  /** Whether the server answered `100 Continue` to the request's `Expect` (false without one). */
  continued: boolean;
  /** Whether the request carried an Authorization header. */
  readonly authorization: boolean;
  /** The request's headers as sent (names lower-case). */
  readonly headers: IncomingHttpHeaders;
  readonly startedAt: number;
  endedAt: number | undefined;
  status: number | undefined;
}

export interface ResponseAmendment {
  readonly headers?: Readonly<Record<string, string>>;
  /** Merged into the JSON object the server answered with. */
  readonly json?: Readonly<Record<string, unknown>>;
}

export interface WireProxyOptions {
  /** Upstream origin, e.g. http://127.0.0.1:9000. */
  readonly upstream: string;
}

export class WireProxy {
  readonly records: WireRecord[] = [];
  readonly #server: Server;
  readonly #upstream: URL;
  #url = "";
  /** Requests for which this returns true are cut off (connection destroyed) instead of forwarded. */
  failWhen: ((req: IncomingMessage) => boolean) | undefined;
  /** Requests for which this returns true reach the server with their body's first byte inverted. */
  alterWhen: ((req: IncomingMessage) => boolean) | undefined;
  /** For requests where this returns a number, the connection is cut after that many bytes of the answer's body. */
  cutResponseWhen: ((req: IncomingMessage) => number | undefined) | undefined;
  /**
   * Adds to the server's answer what a real service would have said and an emulator does not
   * (e.g. the encryption it applied): extra response headers, and fields merged into a JSON
   * body. Everything else of the answer is the real server's.
   */
  amendResponse: ((req: IncomingMessage) => ResponseAmendment | undefined) | undefined;

  constructor(options: WireProxyOptions) {
    this.#upstream = new URL(options.upstream);
    this.#server = createServer((req, res) => this.#forward(req, res));
    // Without this listener Node would answer `100 Continue` itself, before the server decides.
    this.#server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => this.#forward(req, res));
    this.#server.keepAliveTimeout = 30_000;
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  reset(): void {
    this.records.length = 0;
  }

  /** Records whose request matches `filter`. */
  matching(filter: (r: WireRecord) => boolean): WireRecord[] {
    return this.records.filter(filter);
  }

  /** The most requests matching `filter` that were in flight at the same time. */
  maxConcurrent(filter: (r: WireRecord) => boolean): number {
    const events: [number, number][] = [];
    for (const r of this.records.filter(filter)) {
      events.push([r.startedAt, 1], [r.endedAt ?? Number.POSITIVE_INFINITY, -1]);
    }
    // Ends sort before starts at the same instant: back-to-back requests do not overlap.
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let current = 0;
    let peak = 0;
    for (const [, delta] of events) {
      current += delta;
      peak = Math.max(peak, current);
    }
    return peak;
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    const record: WireRecord = {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      bodyBytes: 0,
      continued: false,
      authorization: req.headers.authorization !== undefined,
      headers: { ...req.headers },
      startedAt: performance.now(),
      endedAt: undefined,
      status: undefined,
    };
    this.records.push(record);
    const finish = (): void => {
      if (record.endedAt === undefined) record.endedAt = performance.now();
    };
    if (this.failWhen?.(req)) {
      req.socket.destroy();
      finish();
      return;
    }
    const headers = { ...req.headers };
    const amendment = this.amendResponse?.(req);
    // A JSON body to amend must arrive uncompressed.
    if (amendment?.json !== undefined) delete headers["accept-encoding"];
    const upstreamReq = request(
      {
        protocol: this.#upstream.protocol,
        hostname: this.#upstream.hostname,
        port: this.#upstream.port,
        method: req.method,
        path: req.url,
        headers,
      },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode;
        const outHeaders = { ...upstreamRes.headers };
        const location = outHeaders.location;
        if (typeof location === "string" && location.startsWith(this.#upstream.origin)) {
          outHeaders.location = this.#url + location.slice(this.#upstream.origin.length);
        }
        Object.assign(outHeaders, amendment?.headers);
        upstreamRes.on("error", () => res.destroy());
        const cutAfter = this.cutResponseWhen?.(req);
        if (cutAfter !== undefined) {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, outHeaders);
          let sent = 0;
          upstreamRes.on("data", (chunk: Buffer) => {
            if (sent >= cutAfter) return;
            const piece = chunk.subarray(0, cutAfter - sent);
            sent += piece.length;
            res.write(piece, () => {
              if (sent >= cutAfter) {
                res.socket?.destroy();
                upstreamRes.destroy();
                finish();
              }
            });
          });
          return;
        }
        if (amendment?.json === undefined) {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, outHeaders);
          upstreamRes.pipe(res);
          upstreamRes.on("end", finish);
          return;
        }
        const chunks: Buffer[] = [];
        upstreamRes.on("data", (c: Buffer) => chunks.push(c));
        upstreamRes.on("end", () => {
          const body = Buffer.from(
            JSON.stringify({ ...(JSON.parse(Buffer.concat(chunks).toString()) as object), ...amendment.json }),
          );
          delete outHeaders["transfer-encoding"];
          outHeaders["content-length"] = String(body.length);
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, outHeaders);
          res.end(body);
          finish();
        });
      },
    );
    upstreamReq.on("error", () => {
      finish();
      res.destroy();
    });
    if (req.headers.expect?.toLowerCase() === "100-continue") {
      upstreamReq.on("continue", () => {
        record.continued = true;
        res.writeContinue();
      });
      // The headers go alone, as the client sent them: the server answers before any body.
      upstreamReq.flushHeaders();
      // Answered without the body (a refusal): the client will not send it, so the request
      // to the server can never end; it is closed once the answer has been relayed.
      res.on("finish", () => {
        if (!req.complete) upstreamReq.destroy();
      });
    }
    req.on("data", (chunk: Buffer) => {
      record.bodyBytes += chunk.length;
    });
    req.on("aborted", () => upstreamReq.destroy());
    res.on("close", finish);
    if (!this.alterWhen?.(req)) {
      req.pipe(upstreamReq);
      return;
    }
    let altered = false;
    req.on("data", (chunk: Buffer) => {
      const out = altered || chunk.length === 0 ? chunk : Buffer.from(chunk);
      if (!altered && out.length > 0) {
        out[0] = (out[0] ?? 0) ^ 0xff;
        altered = true;
      }
      if (!upstreamReq.write(out)) {
        req.pause();
        upstreamReq.once("drain", () => req.resume());
      }
    });
    req.on("end", () => upstreamReq.end());
  }
}

export async function startWireProxy(upstream: string): Promise<WireProxy> {
  return new WireProxy({ upstream }).start();
}
