/**
 * The snapshot stream's guards against a broken member: a body that stalls fails with a clear
 * reason instead of holding the Job until its deadline, while a reader that is slow on its own
 * side (storage backpressure) is never mistaken for a stall. A loopback HTTP server plays the
 * member; only the stream handling is under test.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { OpenBaoError } from "../../../src/openbao/errors.ts";
import { OpenBaoHttp } from "../../../src/openbao/http.ts";
import { openSnapshot } from "../../../src/openbao/snapshot.ts";

const size = 8 * 1024 * 1024;

describe("openSnapshot stall guard", () => {
  let server: Server;
  let address = "";
  let behaviour: (res: ServerResponse) => void = () => undefined;
  const http = new OpenBaoHttp({});

  before(async () => {
    server = createServer((_req, res) => behaviour(res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    http.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const drain = async (stream: Readable): Promise<number> => {
    let bytes = 0;
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return bytes;
  };

  test("a body that goes silent fails with SnapshotFailed naming the stall", { timeout: 10_000 }, async () => {
    behaviour = (res) => {
      res.writeHead(200, { "content-length": String(size) });
      res.write(Buffer.alloc(1024));
    };
    const stream = await openSnapshot(http, address, "t", undefined, { stallTimeoutMs: 300 });
    await assert.rejects(drain(stream), (err: unknown) => {
      assert.ok(err instanceof OpenBaoError);
      assert.equal(err.code, "SnapshotFailed");
      assert.match(err.message, /stalled: no data for/);
      return true;
    });
  });

  test("a reader that waits longer than the stall timeout is not a stall", async () => {
    behaviour = (res) => {
      res.writeHead(200, { "content-length": String(size) });
      res.end(Buffer.alloc(size));
    };
    const stream = await openSnapshot(http, address, "t", undefined, { stallTimeoutMs: 300 });
    // Storage is the slow side: nothing is read for 1 s, so the response is paused.
    await sleep(1000);
    assert.equal(await drain(stream), size);
  });

  test("a body that trickles (a chunk every 100 ms, for longer than the stall timeout) is not a stall", async () => {
    const chunks = 12;
    behaviour = (res) => {
      res.writeHead(200, { "content-length": String(chunks * 1024) });
      let sent = 0;
      const tick = setInterval(() => {
        res.write(Buffer.alloc(1024));
        if (++sent === chunks) {
          clearInterval(tick);
          res.end();
        }
      }, 100);
    };
    const stream = await openSnapshot(http, address, "t", undefined, { stallTimeoutMs: 300 });
    assert.equal(await drain(stream), chunks * 1024);
  });

  test("a body cut short is still a SnapshotFailed, never a clean end", async () => {
    behaviour = (res) => {
      res.writeHead(200, { "content-length": String(size) });
      res.write(Buffer.alloc(1024), () => res.destroy());
    };
    const stream = await openSnapshot(http, address, "t", undefined, { stallTimeoutMs: 5000 });
    await assert.rejects(drain(stream), (err: unknown) => err instanceof OpenBaoError && err.code === "SnapshotFailed");
  });
});
