/**
 * A loopback HTTP proxy in front of a real storage server that injects the faults an object
 * store really shows: latency before each answer, a bandwidth limit on request bodies, and
 * S3 throttling (503 SlowDown) for the requests a test picks. Everything it does not refuse
 * is forwarded unchanged — Host header included, so SigV4 signatures made for the proxy's
 * address still verify at the real server.
 */

import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Transform, type TransformCallback } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

export interface SeenRequest {
  readonly method: string;
  /** Path and query, e.g. `/backups/openbao/bao/...snap?partNumber=1&uploadId=...`. */
  readonly url: string;
}

/** Hop-by-hop headers (and `expect`, which SigV4 never signs) are not forwarded. */
const dropped = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "expect"]);

export class FaultProxy {
  readonly #server: Server;
  readonly #upstreamPort: number;
  /** Delay before each request is forwarded (or refused). */
  latencyMs = 0;
  /** Request-body bytes per second per request; 0 means unlimited. */
  bytesPerSecond = 0;
  /** Answers 503 SlowDown (without forwarding) when this returns true. */
  throttle: ((req: SeenRequest) => boolean) | undefined;
  readonly seen: SeenRequest[] = [];
  throttled = 0;

  constructor(upstreamPort: number) {
    this.#upstreamPort = upstreamPort;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const seen = { method: req.method ?? "GET", url: req.url ?? "/" };
    this.seen.push(seen);
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    if (this.throttle?.(seen)) {
      this.throttled++;
      // Read the body first: answering mid-upload would look like a dropped connection.
      req.resume();
      req.once("end", () => {
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>${seen.url.split("?")[0]}</Resource><RequestId>fault-proxy</RequestId></Error>`;
        res.writeHead(503, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !dropped.has(name)) headers[name] = value;
    }
    const upstream = request({
      host: "127.0.0.1",
      port: this.#upstreamPort,
      method: seen.method,
      path: seen.url,
      headers,
      // No pooled sockets: nothing outlives stop().
      agent: false,
    });
    upstream.on("response", (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !dropped.has(name)) out[name] = value;
      }
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(this.#pace()).pipe(upstream);
  }

  /** A pass-through that holds each chunk long enough to keep to `bytesPerSecond`. */
  #pace(): Transform {
    const proxy = this;
    return new Transform({
      transform(chunk: Buffer, _encoding, done: TransformCallback) {
        const rate = proxy.bytesPerSecond;
        if (rate <= 0) {
          done(null, chunk);
          return;
        }
        sleep((chunk.length / rate) * 1000).then(() => done(null, chunk), done);
      },
    });
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
