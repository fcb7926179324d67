/**
 * The HTTP/1.1 response framing the snapshot download needs (RFC 9112), as pure functions over
 * bytes: the status line and headers, then the body by Content-Length, chunked coding or
 * connection close. No sockets here; `stream-get.ts` feeds it what arrives.
 *
 * Why not node:http for this one response: its parser hands every TLS record (16 KiB, 65,000
 * per GiB) through llhttp and IncomingMessage's stream machinery, which costs ≈ 0.5 CPU s/GiB
 * on top of TLS itself (BENCHMARKS.md finding 13). Here a body byte is never copied: what
 * leaves the decoder are views of the socket's own buffers, and the per-record work is an
 * integer comparison unless a chunk boundary falls inside the record.
 */

/** How the body's end is known. `close`: the server closes the connection after it (HTTP/1.0 style). */
export type BodyFraming =
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

export interface ResponseHead {
  readonly status: number;
  /** Lowercased names; repeated headers joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  readonly framing: BodyFraming;
}

/** A response that is not well-formed HTTP/1.1; the message says what was wrong, never the bytes. */
export class FramingError extends Error {
  override readonly name = "FramingError";
}

/** Status line and headers together may not exceed this (node:http's default is 16 KiB). */
export const maxHeadBytes = 64 * 1024;
/** Chunk extensions and trailers, together, may not exceed this. */
const maxChunkMetaBytes = 64 * 1024;
/** 12 hex digits: 256 TiB per chunk, well inside a double's exact integers. */
const maxChunkSizeDigits = 12;

const CR = 0x0d;
const LF = 0x0a;
const headEnd = Buffer.from("\r\n\r\n");

/**
 * Collects bytes until a final (non-1xx) response head is complete. 1xx interim responses
 * (100 Continue, 103 Early Hints) are skipped, as node:http does for a request that did not
 * ask for them.
 */
export class ResponseHeadParser {
  #pending: Buffer = Buffer.alloc(0);

  /**
   * Feeds the next bytes. Returns the head and the bytes after it (the start of the body)
   * once a final head is complete, otherwise undefined (feed more).
   */
  feed(bytes: Buffer): { head: ResponseHead; rest: Buffer } | undefined {
    let buf = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes]);
    for (;;) {
      const end = buf.indexOf(headEnd);
      if (end < 0) {
        if (buf.length > maxHeadBytes) throw new FramingError(`the response headers exceed ${maxHeadBytes} bytes`);
        this.#pending = buf;
        return undefined;
      }
      if (end > maxHeadBytes) throw new FramingError(`the response headers exceed ${maxHeadBytes} bytes`);
      const head = parseHead(buf.subarray(0, end).toString("latin1"));
      buf = buf.subarray(end + headEnd.length);
      if (head.status >= 100 && head.status < 200) continue;
      this.#pending = Buffer.alloc(0);
      return { head, rest: buf };
    }
  }
}

function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
  if (!statusLine) throw new FramingError("the response does not start with an HTTP/1.x status line");
  const status = Number(statusLine[1]);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    // A name is a token: no spaces before the colon (RFC 9112 §5.1), no obs-fold continuation lines.
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) {
      throw new FramingError("the response has a malformed header line");
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const seen = headers.get(name);
    headers.set(name, seen === undefined ? value : `${seen}, ${value}`);
  }
  return { status, headers, framing: framingOf(status, headers) };
}

/** RFC 9112 §6.3, for a client that sent a GET: which of the three ways the body ends. */
function framingOf(status: number, headers: ReadonlyMap<string, string>): BodyFraming {
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { kind: "length", length: 0 };
  }
  const transferEncoding = headers.get("transfer-encoding");
  if (transferEncoding !== undefined) {
    const codings = transferEncoding
      .split(",")
      .map((c) => c.trim().toLowerCase())
      .filter((c) => c !== "");
    if (codings.length === 1 && codings[0] === "chunked") return { kind: "chunked" };
    // Anything else (gzip, chunked) would need decoding we do not do; no server we talk to sends it.
    throw new FramingError(`the response uses transfer-encoding "${transferEncoding}"; only "chunked" is supported`);
  }
  const contentLength = headers.get("content-length");
  if (contentLength !== undefined) {
    // Repeated identical values ("5, 5") are allowed by RFC 9110 §8.6; differing ones are not.
    const values = new Set(contentLength.split(",").map((v) => v.trim()));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) {
      throw new FramingError("the response has an invalid content-length");
    }
    return { kind: "length", length: Number(only) };
  }
  return { kind: "close" };
}

type ChunkState = "size" | "extension" | "sizeLF" | "data" | "dataCR" | "dataLF" | "trailer" | "trailerLF" | "done";

/**
 * Turns the bytes after the head into body bytes, as views of its input (no copies). `feed`
 * returns true once the body is complete; bytes after that are ignored (the connection is
 * not reused). `complete` tells a clean end from a cut one when the connection closes.
 */
export class BodyDecoder {
  readonly #framing: BodyFraming;
  #remaining: number;
  #state: ChunkState = "size";
  #sizeDigits = 0;
  #metaBytes = 0;
  /** In `trailer`: whether the current trailer line has any bytes (an empty line ends the trailers). */
  #lineHasBytes = false;
  #complete: boolean;

  constructor(framing: BodyFraming) {
    this.#framing = framing;
    this.#remaining = framing.kind === "length" ? framing.length : 0;
    this.#complete = framing.kind === "length" && framing.length === 0;
  }

  /** True once the whole body has been seen (for `close` framing: only after `endOfInput`). */
  get complete(): boolean {
    return this.#complete;
  }

  /** Decodes `bytes`, calling `emit` with each run of body bytes. Returns `complete`. */
  feed(bytes: Buffer, emit: (body: Buffer) => void): boolean {
    if (this.#complete || bytes.length === 0) return this.#complete;
    switch (this.#framing.kind) {
      case "close":
        emit(bytes);
        return false;
      case "length": {
        const take = Math.min(this.#remaining, bytes.length);
        emit(take === bytes.length ? bytes : bytes.subarray(0, take));
        this.#remaining -= take;
        this.#complete = this.#remaining === 0;
        return this.#complete;
      }
      case "chunked":
        this.#feedChunked(bytes, emit);
        return this.#complete;
    }
  }

  /** The connection ended cleanly: the end of a `close`-framed body; for the others, nothing. */
  endOfInput(): boolean {
    if (this.#framing.kind === "close") this.#complete = true;
    return this.#complete;
  }

  #feedChunked(bytes: Buffer, emit: (body: Buffer) => void): void {
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      if (this.#state === "data") {
        const take = Math.min(this.#remaining, n - i);
        emit(i === 0 && take === n ? bytes : bytes.subarray(i, i + take));
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = "dataCR";
        continue;
      }
      const byte = bytes[i++] as number;
      switch (this.#state) {
        case "size": {
          const digit = hexValue(byte);
          if (digit >= 0) {
            if (++this.#sizeDigits > maxChunkSizeDigits) throw new FramingError("a chunk size is too large");
            this.#remaining = this.#remaining * 16 + digit;
          } else if (this.#sizeDigits === 0) {
            throw new FramingError("a chunk does not start with its size");
          } else if (byte === CR) {
            this.#state = "sizeLF";
          } else if (byte === LF) {
            throw new FramingError("a chunk size line does not end with CRLF");
          } else if (byte === 0x3b /* ; */ || byte === 0x20 || byte === 0x09) {
            this.#state = "extension";
            this.#countMeta();
          } else {
            throw new FramingError("a chunk size is not hexadecimal");
          }
          break;
        }
        case "extension":
          // Chunk extensions carry nothing we use; skipped up to the line's end, within a budget.
          if (byte === CR) this.#state = "sizeLF";
          else if (byte === LF) throw new FramingError("a chunk size line does not end with CRLF");
          else this.#countMeta();
          break;
        case "sizeLF":
          if (byte !== LF) throw new FramingError("a chunk size line does not end with CRLF");
          this.#sizeDigits = 0;
          if (this.#remaining === 0) {
            this.#state = "trailer";
            this.#lineHasBytes = false;
          } else {
            this.#state = "data";
          }
          break;
        case "dataCR":
          if (byte !== CR) throw new FramingError("a chunk is longer than its size says");
          this.#state = "dataLF";
          break;
        case "dataLF":
          if (byte !== LF) throw new FramingError("a chunk is longer than its size says");
          this.#state = "size";
          break;
        case "trailer":
          // Trailer fields are skipped; an empty line ends the message.
          if (byte === CR) this.#state = "trailerLF";
          else if (byte === LF) throw new FramingError("a trailer line does not end with CRLF");
          else {
            this.#lineHasBytes = true;
            this.#countMeta();
          }
          break;
        case "trailerLF":
          if (byte !== LF) throw new FramingError("a trailer line does not end with CRLF");
          if (!this.#lineHasBytes) {
            this.#state = "done";
            this.#complete = true;
            return;
          }
          this.#state = "trailer";
          this.#lineHasBytes = false;
          break;
        case "done":
          return;
      }
    }
  }

  #countMeta(): void {
    if (++this.#metaBytes > maxChunkMetaBytes) {
      throw new FramingError(`chunk extensions and trailers exceed ${maxChunkMetaBytes} bytes`);
    }
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -1;
}
