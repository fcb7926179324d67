/**
 * A loopback TCP pass-through for fault injection in front of a real server: it can slow
 * the client→server direction to a byte rate (so a test can act while a stream is in
 * flight) and cut every connection at once (a server that vanishes mid-transfer). Bytes are
 * forwarded unchanged, TLS included; it never answers anything itself.
 */

import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #upstreamPort: number;
  /** Client→server bytes per second per connection; 0 means unlimited. */
  bytesPerSecond = 0;
  /** Client→server bytes forwarded so far. */
  forwarded = 0;
  /** While true, new connections are refused (closed at once). */
  refusing = false;

  constructor(upstreamPort: number) {
    this.#upstreamPort = upstreamPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  #accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(this.#upstreamPort, "127.0.0.1");
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    upstream.pipe(client);
    void this.#pump(client, upstream);
  }

  /** Forwards client data, pacing it when a rate is set. */
  async #pump(client: Socket, upstream: Socket): Promise<void> {
    try {
      for await (const chunk of client as AsyncIterable<Buffer>) {
        let offset = 0;
        while (offset < chunk.length) {
          const rate = this.bytesPerSecond;
          const slice =
            rate > 0 ? chunk.subarray(offset, offset + Math.max(1024, Math.floor(rate / 20))) : chunk.subarray(offset);
          offset += slice.length;
          this.forwarded += slice.length;
          if (!upstream.write(slice)) await new Promise((resolve) => upstream.once("drain", resolve));
          if (rate > 0) await sleep((slice.length / rate) * 1000);
        }
      }
      upstream.end();
    } catch {
      upstream.destroy();
    }
  }

  /** Destroys every open connection, as if the server had died. */
  cutAll(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  async stop(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
