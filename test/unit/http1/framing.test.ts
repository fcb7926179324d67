/**
 * The snapshot download's HTTP/1.1 framing, as pure functions over bytes: every way a
 * response can be split across socket reads gives the same head and body, a body cut short is
 * never complete, and malformed framing is refused rather than guessed at.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BodyDecoder, type BodyFraming, FramingError, ResponseHeadParser } from "../../../src/http1/framing.ts";

const chunked: BodyFraming = { kind: "chunked" };

/** Feeds `bytes` to a new decoder in the given pieces; returns the body and whether it completed. */
function decode(framing: BodyFraming, pieces: Buffer[]): { body: Buffer; complete: boolean } {
  const decoder = new BodyDecoder(framing);
  const out: Buffer[] = [];
  for (const piece of pieces) decoder.feed(piece, (b) => out.push(Buffer.from(b)));
  return { body: Buffer.concat(out), complete: decoder.complete };
}

/** Every split of `bytes` into two pieces, and into single bytes. */
function splits(bytes: Buffer): Buffer[][] {
  const all: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
  for (let i = 1; i < bytes.length; i++) all.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return all;
}

function head(text: string): ReturnType<ResponseHeadParser["feed"]> {
  return new ResponseHeadParser().feed(Buffer.from(text, "latin1"));
}

describe("ResponseHeadParser", () => {
  test("parses the status, headers (lowercased, repeated ones joined) and where the body starts", () => {
    const response = Buffer.from(
      "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
    );
    for (const pieces of splits(response)) {
      const parser = new ResponseHeadParser();
      let got: ReturnType<ResponseHeadParser["feed"]>;
      const rest: Buffer[] = [];
      for (const piece of pieces) {
        if (got === undefined) got = parser.feed(piece);
        else rest.push(piece);
        if (got !== undefined && rest.length === 0) rest.push(got.rest);
      }
      assert.ok(got);
      assert.equal(got.head.status, 200);
      assert.equal(got.head.headers.get("content-type"), "application/gzip");
      assert.equal(got.head.headers.get("x-a"), "1, 2");
      assert.deepEqual(got.head.framing, chunked);
      assert.equal(Buffer.concat(rest).toString(), "5\r\nhello");
    }
  });

  test("skips 1xx interim responses", () => {
    const got = head(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    );
    assert.equal(got?.head.status, 204);
    assert.deepEqual(got?.head.framing, { kind: "length", length: 0 });
  });

  test("the three framings: chunked over content-length, content-length, connection close", () => {
    assert.deepEqual(
      head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n")?.head.framing,
      chunked,
    );
    assert.deepEqual(head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n")?.head.framing, { kind: "length", length: 7 });
    assert.deepEqual(head("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n")?.head.framing, {
      kind: "length",
      length: 7,
    });
    assert.deepEqual(head("HTTP/1.0 200 OK\r\n\r\n")?.head.framing, { kind: "close" });
    assert.deepEqual(head("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n")?.head.framing, {
      kind: "length",
      length: 0,
    });
  });

  test("refuses what it cannot frame safely", () => {
    const refused: Array<[string, RegExp]> = [
      ["HTTP/2 200\r\n\r\n", /status line/],
      ["SSH-2.0-OpenSSH\r\n\r\n", /status line/],
      ["HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", /content-length/],
      ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /content-length/],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", /transfer-encoding/],
      ["HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", /header line/],
      ["HTTP/1.1 200 OK\r\n folded\r\n\r\n", /header line/],
    ];
    for (const [text, reason] of refused) {
      assert.throws(
        () => head(text),
        (err: unknown) => err instanceof FramingError && reason.test(err.message),
        text,
      );
    }
  });

  test("refuses a head larger than 64 KiB instead of buffering it", () => {
    const parser = new ResponseHeadParser();
    assert.equal(parser.feed(Buffer.from("HTTP/1.1 200 OK\r\n")), undefined);
    assert.throws(() => {
      for (let i = 0; i < 100; i++) parser.feed(Buffer.from(`X-Filler-${i}: ${"a".repeat(1000)}\r\n`));
    }, /exceed 65536 bytes/);
  });
});

describe("BodyDecoder", () => {
  const encoded = Buffer.from("5\r\nhello\r\nA;name=value\r\n, world!!!\r\n1\r\n\n\r\n0\r\nTrailer: x\r\n\r\n");
  const plain = "hello, world!!!\n";

  test("chunked: every split gives the same body, complete at the last chunk and trailers", () => {
    for (const pieces of splits(encoded)) {
      assert.deepEqual(decode(chunked, pieces), { body: Buffer.from(plain), complete: true });
    }
  });

  test("chunked: upper- and lower-case hex sizes, extensions after whitespace", () => {
    const data = Buffer.alloc(0x1af, 7);
    const wire = Buffer.concat([Buffer.from("1aF ;x\r\n"), data, Buffer.from("\r\n0\r\n\r\n")]);
    assert.deepEqual(decode(chunked, [wire]), { body: data, complete: true });
  });

  test("chunked: body bytes are views of the input, never copies", () => {
    const wire = Buffer.from("4\r\nabcd\r\n0\r\n\r\n");
    const views: Buffer[] = [];
    new BodyDecoder(chunked).feed(wire, (b) => views.push(b));
    assert.equal(views.length, 1);
    assert.equal(views[0]?.buffer, wire.buffer);
    assert.equal(views[0]?.byteOffset, wire.byteOffset + 3);
  });

  test("chunked: cut anywhere before the last chunk's end, it is not complete", () => {
    for (let cut = 0; cut < encoded.length - 1; cut++) {
      assert.equal(decode(chunked, [encoded.subarray(0, cut)]).complete, false, `cut at ${cut}`);
    }
  });

  test("chunked: bytes after the end are ignored", () => {
    assert.deepEqual(decode(chunked, [Buffer.from("1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n")]), {
      body: Buffer.from("a"),
      complete: true,
    });
  });

  test("chunked: malformed framing is an error, not a guess", () => {
    const refused: Array<[string, RegExp]> = [
      ["x\r\n", /does not start with its size/],
      ["5g\r\n", /not hexadecimal/],
      ["5\nhello", /CRLF/],
      ["5\r\nhello!\r\n", /longer than its size/],
      ["5\r\nhello\r0", /longer than its size/],
      ["1000000000000\r\n", /too large/],
      ["0\r\nTrailer: x\n", /CRLF/],
      [`1;${"e".repeat(70_000)}\r\n`, /exceed 65536 bytes/],
    ];
    for (const [text, reason] of refused) {
      assert.throws(
        () => new BodyDecoder(chunked).feed(Buffer.from(text), () => undefined),
        (err: unknown) => err instanceof FramingError && reason.test(err.message),
        text,
      );
    }
  });

  test("content-length: complete at exactly the length, extra bytes ignored, short is not complete", () => {
    for (const pieces of splits(Buffer.from("hello world"))) {
      assert.deepEqual(decode({ kind: "length", length: 5 }, pieces), { body: Buffer.from("hello"), complete: true });
    }
    assert.equal(decode({ kind: "length", length: 5 }, [Buffer.from("hell")]).complete, false);
    assert.equal(new BodyDecoder({ kind: "length", length: 0 }).complete, true);
  });

  test("connection close: complete only once the input ended", () => {
    const decoder = new BodyDecoder({ kind: "close" });
    const out: Buffer[] = [];
    assert.equal(
      decoder.feed(Buffer.from("abc"), (b) => out.push(b)),
      false,
    );
    assert.equal(decoder.complete, false);
    assert.equal(decoder.endOfInput(), true);
    assert.equal(Buffer.concat(out).toString(), "abc");
  });
});
