/**
 * A gzip decompressor driven synchronously, into one reused output buffer.
 *
 * Node's zlib streams run every write on the thread pool and hand out each output chunk in a
 * fresh buffer. For the inspector, which only hashes and parses what comes out, that is the
 * dear way: in isolation (1 GiB of the bench's archive, BENCHMARKS.md finding 16) the stream
 * plus a SHA-256 of its output cost 2.4–2.6 CPU s/GiB, 1.6 of them on the main thread;
 * inflating synchronously into a 256 KiB buffer that stays in the cache and hashing it there
 * cost 1.07, all on the main thread — less main-thread time than the stream's callbacks and
 * cold buffers alone. The input needs no copy either: it is consumed before `write` returns.
 *
 * Node has no public synchronous *streaming* zlib call (`gunzipSync` is one-shot), so this
 * drives the zlib stream's native handle the way Node's own `processChunkSync` does
 * (`_handle.writeSync` and `_writeState`, stable since Node 10; the image and `engines` pin
 * Node 24). Checked by the constructor: on a Node without them every inspection fails
 * with a message that says so, rather than quietly checking less.
 *
 * The same zlib as the stream, so the same checks and the same errors: a damaged stream
 * throws zlib's error (`code` Z_DATA_ERROR …), a stream cut short throws Z_BUF_ERROR from
 * `end`, concatenated gzip members are decompressed one after another, and input after the
 * last member is not consumed (`bytesWritten` stops short of what was written).
 */
import { constants, createGunzip, type Gunzip } from "node:zlib";

/** The native zlib handle's synchronous write, as `node:zlib` itself calls it. */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inputOffset: number,
    inputLength: number,
    output: Uint8Array,
    outputOffset: number,
    outputLength: number,
  ): void;
}

/** What `node:zlib` keeps on a stream and this module uses. */
interface ZlibInternals {
  readonly _handle: ZlibHandle | null;
  /** After each write: [output bytes still free, input bytes not consumed]. */
  readonly _writeState: Uint32Array;
}

function internalsOf(engine: Gunzip): ZlibInternals | null {
  const candidate = engine as unknown as Partial<ZlibInternals>;
  return typeof candidate._handle?.writeSync === "function" && candidate._writeState instanceof Uint32Array
    ? (candidate as ZlibInternals)
    : null;
}

const defaultOutputBytes = 256 * 1024;

export class SyncGunzip {
  readonly #engine: Gunzip;
  readonly #handle: ZlibHandle;
  readonly #state: Uint32Array;
  readonly #output: Buffer;
  readonly #onOutput: (bytes: Buffer) => void;
  #consumed = 0;
  #ended = false;

  /**
   * `onOutput` gets each piece of decompressed data as a view of the reused buffer: valid
   * only until it returns (copy what must be kept). What it throws comes out of `write`/`end`.
   */
  constructor(onOutput: (bytes: Buffer) => void, outputBytes = defaultOutputBytes) {
    const engine = createGunzip();
    // zlib reports a damaged stream by destroying the engine, which also emits "error" on the
    // next tick; the error is read synchronously from `errored` instead.
    engine.on("error", () => {});
    const internals = internalsOf(engine);
    if (internals === null || internals._handle === null) {
      engine.close();
      throw new Error(
        `node:zlib in Node ${process.version} has no synchronous handle write; ` +
          "snapshots cannot be inspected with this Node version (use Node 24, as the image does)",
      );
    }
    this.#engine = engine;
    this.#handle = internals._handle;
    this.#state = internals._writeState;
    this.#output = Buffer.allocUnsafeSlow(outputBytes);
    this.#onOutput = onOutput;
  }

  /** Compressed bytes consumed so far. */
  get bytesWritten(): number {
    return this.#consumed;
  }

  /** True once the last gzip member has ended and more input was offered after it. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Decompresses all of `chunk` (up to the end of the gzip data); throws zlib's error. */
  write(chunk: Uint8Array): void {
    if (!this.#ended) this.#run(constants.Z_NO_FLUSH, chunk);
  }

  /** The end of the input: throws Z_BUF_ERROR ("unexpected end of file") if the gzip data is incomplete. */
  end(): void {
    if (!this.#ended) this.#run(constants.Z_FINISH, new Uint8Array(0));
    this.close();
  }

  /** Frees zlib's memory; safe to call more than once. */
  close(): void {
    this.#engine.close();
  }

  #run(flush: number, input: Uint8Array): void {
    const output = this.#output;
    let offset = 0;
    let length = input.length;
    for (;;) {
      this.#handle.writeSync(flush, input, offset, length, output, 0, output.length);
      const failure = this.#engine.errored;
      if (failure) throw failure;
      const freeOutput = this.#state[0] ?? 0;
      const unconsumed = this.#state[1] ?? 0;
      this.#consumed += length - unconsumed;
      offset += length - unconsumed;
      length = unconsumed;
      const produced = output.length - freeOutput;
      if (produced > 0) this.#onOutput(output.subarray(0, produced));
      // A full output buffer: zlib may hold more. Otherwise zlib took what it wanted: input it
      // left with room to spare follows the end of the gzip data.
      if (freeOutput === 0) continue;
      if (unconsumed > 0) this.#ended = true;
      return;
    }
  }
}
