/**
 * The snapshot download's own HTTP/1.1 reader against real loopback servers: node:https (the
 * TLS settings node:https would use, chunked bodies in small pieces with trailers) and raw
 * TCP servers for what a well-behaved server never sends (cut bodies, broken framing, silence).
 * OpenBao itself is the peer in the executor and end-to-end tiers.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { OpenBaoError } from "../../../src/openbao/errors.ts";
import { OpenBaoHttp } from "../../../src/openbao/http.ts";
import { openSnapshot } from "../../../src/openbao/snapshot.ts";
import { scratchDir } from "../../servers/process.ts";
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from "../../servers/tls.ts";

const drain = async (stream: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const isSnapshotFailed =
  (reason: RegExp) =>
  (err: unknown): boolean =>
    err instanceof OpenBaoError && err.code === "SnapshotFailed" && reason.test(err.message);

/** A body of `size` pseudo-random bytes, deterministic so a test can compare what arrived. */
function body(size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = 0x2545f491;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe("snapshot download over HTTPS", () => {
  let ca: CertificateAuthority;
  let server: HttpsServer;
  let address = "";
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;

  before(async () => {
    ca = createCertificateAuthority(scratchDir("stream-get-ca"));
    const cert = issueCertificate(ca, "bao", ["bao.openbao.svc"]);
    server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => handler(req, res));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    address = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  });

  test("a chunked body in uneven pieces with trailers arrives whole and unchanged", async () => {
    const expected = body(3 * 1024 * 1024 + 17);
    const seen: Array<{ method?: string; url?: string; token?: string | string[]; host?: string }> = [];
    handler = (req, res) => {
      seen.push({ method: req.method, url: req.url, token: req.headers["x-vault-token"], host: req.headers.host });
      res.writeHead(200, { "content-type": "application/gzip", trailer: "x-checksum" });
      let offset = 0;
      let size = 1;
      const next = (): void => {
        while (offset < expected.length) {
          // 1 B … 96 KiB writes: chunk boundaries inside, across and between TLS records.
          size = (size * 7 + 13) % (96 * 1024);
          const piece = expected.subarray(offset, offset + size + 1);
          offset += piece.length;
          if (!res.write(piece)) return void res.once("drain", next);
        }
        res.addTrailers({ "x-checksum": "ignored" });
        res.end();
      };
      next();
    };
    const http = new OpenBaoHttp({ caPem: ca.certPem });
    try {
      const got = await drain(await openSnapshot(http, address, "s.token"));
      assert.equal(got.length, expected.length);
      assert.ok(got.equals(expected));
      assert.deepEqual(seen, [
        {
          method: "GET",
          url: "/v1/sys/storage/raft/snapshot",
          token: "s.token",
          host: address.replace("https://", ""),
        },
      ]);
    } finally {
      http.close();
    }
  });

  test("TLS is verified: another CA is refused with the hint to check ca.crt; skip-verify is explicit", async () => {
    handler = (_req, res) => res.end("x");
    const other = createCertificateAuthority(scratchDir("stream-get-other-ca"), "another CA");
    const http = new OpenBaoHttp({ caPem: other.certPem });
    await assert.rejects(openSnapshot(http, address, "t"), (err: unknown) => {
      assert.ok(err instanceof OpenBaoError);
      assert.equal(err.code, "Unreachable");
      assert.match(err.message, /check that the CA in the TLS Secret \(ca\.crt\) signed OpenBao's certificate/);
      return true;
    });
    http.close();
    const insecure = new OpenBaoHttp({ insecureSkipVerify: true });
    assert.equal((await drain(await openSnapshot(insecure, address, "t"))).toString(), "x");
    insecure.close();
  });

  test("serverName is the name checked against the certificate (and sent as SNI)", async () => {
    handler = (_req, res) => res.end("named");
    const named = new OpenBaoHttp({ caPem: ca.certPem, serverName: "bao.openbao.svc" });
    assert.equal((await drain(await openSnapshot(named, address, "t"))).toString(), "named");
    named.close();
    const wrong = new OpenBaoHttp({ caPem: ca.certPem, serverName: "other.openbao.svc" });
    await assert.rejects(
      openSnapshot(wrong, address, "t"),
      (err: unknown) => err instanceof OpenBaoError && err.code === "Unreachable" && /ALTNAME/.test(err.message),
    );
    wrong.close();
  });

  test("error statuses are typed as for every other call: 400/401 AuthFailed, 403 PermissionDenied, 500 with OpenBao's words", async () => {
    const http = new OpenBaoHttp({ caPem: ca.certPem });
    const cases: Array<[number, string, RegExp]> = [
      [401, "AuthFailed", /refused the token/],
      [403, "PermissionDenied", /denied .*\(403\): permission denied; check the policy/],
      [500, "SnapshotFailed", /answered sys\/storage\/raft\/snapshot with 500: raft is not ready/],
    ];
    for (const [status, code, message] of cases) {
      handler = (_req, res) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify({ errors: [status === 403 ? "permission denied" : "raft is not ready"] }));
      };
      await assert.rejects(openSnapshot(http, address, "t"), (err: unknown) => {
        assert.ok(err instanceof OpenBaoError, String(err));
        assert.equal(err.code, code);
        assert.match(err.message, message);
        return true;
      });
    }
    http.close();
  });

  test("a token that would break the request's header is refused before anything is sent, without echoing it", async () => {
    let requests = 0;
    handler = (_req, res) => {
      requests++;
      res.end();
    };
    const http = new OpenBaoHttp({ caPem: ca.certPem });
    await assert.rejects(openSnapshot(http, address, "s.secret\r\nX-Injected: 1"), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /X-Vault-Token header contains characters/);
      assert.doesNotMatch(err.message, /secret|Injected/);
      return true;
    });
    http.close();
    assert.equal(requests, 0);
  });
});

describe("snapshot download from a server that misbehaves (raw TCP)", () => {
  let server: NetServer;
  let address = "";
  let behaviour: (socket: Socket) => void = () => undefined;
  const sockets = new Set<Socket>();

  before(async () => {
    server = createNetServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
      socket.once("data", () => behaviour(socket));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, "close");
  });

  const http = new OpenBaoHttp({});
  after(() => http.close());

  test("a chunked body cut inside a chunk fails, never ends cleanly", async () => {
    behaviour = (socket) => socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789");
    const stream = await openSnapshot(http, address, "t");
    await assert.rejects(drain(stream), isSnapshotFailed(/ended before it was complete/));
  });

  test("a chunked body cut after a whole chunk, before the last one, fails too", async () => {
    behaviour = (socket) => socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n");
    await assert.rejects(
      drain(await openSnapshot(http, address, "t")),
      isSnapshotFailed(/ended before it was complete/),
    );
  });

  test("a content-length body cut short fails; one that is whole ends even if the server keeps the connection", async () => {
    behaviour = (socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
    await assert.rejects(
      drain(await openSnapshot(http, address, "t")),
      isSnapshotFailed(/ended before it was complete/),
    );
    behaviour = (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n01234");
    assert.equal((await drain(await openSnapshot(http, address, "t"))).toString(), "01234");
  });

  test("a connection reset mid-body fails with the reason", async () => {
    behaviour = (socket) =>
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123", () => socket.resetAndDestroy());
    await assert.rejects(
      drain(await openSnapshot(http, address, "t")),
      isSnapshotFailed(/ECONNRESET|before it was complete/),
    );
  });

  test("broken chunk framing fails the stream naming the problem", async () => {
    behaviour = (socket) => socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdef\r\n");
    await assert.rejects(
      drain(await openSnapshot(http, address, "t")),
      isSnapshotFailed(/not well-formed HTTP: .*longer than its size/),
    );
  });

  test("a connection closed before any answer is Unreachable (ECONNRESET, as node:http's socket hang up)", async () => {
    behaviour = (socket) => socket.end();
    await assert.rejects(
      openSnapshot(http, address, "t"),
      (err: unknown) =>
        err instanceof OpenBaoError &&
        err.code === "Unreachable" &&
        /\(ECONNRESET\): the connection closed before a response arrived/.test(err.message),
    );
  });

  test("an answer that is not HTTP/1.1 is a BadResponse", async () => {
    behaviour = (socket) => socket.end("SSH-2.0-OpenSSH_9.6\r\n\r\n");
    await assert.rejects(
      openSnapshot(http, address, "t"),
      (err: unknown) => err instanceof OpenBaoError && err.code === "BadResponse" && /status line/.test(err.message),
    );
  });

  test("no answer at all within the headers timeout is Unreachable", { timeout: 10_000 }, async () => {
    behaviour = () => undefined;
    const stream = http.streamGet(address, {
      path: "sys/storage/raft/snapshot",
      token: "t",
      timeoutMs: 200,
      stallTimeoutMs: 1000,
      bodyError: (problem) => new Error(problem),
    });
    await assert.rejects(
      stream,
      (err: unknown) =>
        err instanceof OpenBaoError && err.code === "Unreachable" && /no answer within 200 ms/.test(err.message),
    );
  });

  test("cancelling mid-body stops the download and closes the connection", async () => {
    behaviour = (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123");
    const controller = new AbortController();
    const stream = await openSnapshot(http, address, "t", controller.signal);
    const closed = new Promise<void>((resolve) => {
      const [socket] = sockets;
      socket?.once("close", () => resolve());
    });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(drain(stream), isSnapshotFailed(/aborted/));
    await closed;
  });

  test("a reader that stops early closes the connection", async () => {
    behaviour = (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123");
    const stream = await openSnapshot(http, address, "t");
    const [socket] = sockets;
    assert.ok(socket);
    const closed = once(socket, "close");
    stream.destroy();
    await closed;
  });
});

describe("snapshot download over plain HTTP from node:http", () => {
  test("a close-delimited HTTP/1.0 body ends at the close", async () => {
    const server = createHttpServer((_req, res) => {
      // node:http answers an HTTP/1.1 request with chunked coding; a raw HTTP/1.0 style answer:
      res.socket?.end("HTTP/1.0 200 OK\r\n\r\nall of it");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const http = new OpenBaoHttp({});
    try {
      const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      assert.equal((await drain(await openSnapshot(http, address, "t"))).toString(), "all of it");
    } finally {
      http.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
