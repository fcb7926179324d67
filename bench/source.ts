/**
 * BENCHMARK LOAD GENERATOR — never evidence for any feature (TESTING.md): the test suite uses
 * real OpenBao. This is the "snapshot source" of BENCHMARKS.md: an HTTP(S) server that answers
 * the few OpenBao endpoints the executor calls and serves a valid Raft snapshot archive of any
 * size, generated on the fly (no disk), so 4 GiB costs no storage and no OpenBao.
 *
 * The archive is what OpenBao writes: gzip(tar(meta.json, state.bin, SHA256SUMS)), checked by
 * the executor's inspector like any snapshot. state.bin is pseudo-random (incompressible, like
 * OpenBao's barrier-encrypted values), so the gzip stream is as large as the data, as with a
 * real deflate of random bytes. To keep the source off the CPU while it serves:
 *   - a pool of 1 MiB random segments is made once from a seed (xorshift) and each segment is
 *     deflated once into byte-aligned stored blocks (Z_FULL_FLUSH, no final bit); state.bin is
 *     a seeded sequence of pool segments, so the deflate stream is a concatenation of
 *     pre-built buffers;
 *   - the SHA-256 of state.bin (for SHA256SUMS) and the gzip CRC-32 are computed once per size
 *     (`prepareArchive`), before anything is timed, and can be handed to another process.
 * Serving is then only socket writes. Endpoints (all under /v1):
 *   GET  sys/leader, sys/health, sys/seal-status, auth/token/lookup-self
 *   GET  sys/storage/raft/snapshot          the archive
 *   POST sys/storage/raft/snapshot[-force]  read and discarded (restore); then the "Raft index"
 *        moves by 3 and active_time changes, which is what the executor's restore waits for
 *   POST auth/token/revoke-self
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { constants, crc32, deflateRawSync } from "node:zlib";
import { goMeta, ustarHeader } from "../test/unit/snapshot/fixtures.ts";

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
const segmentSize = MiB;
const poolSegments = 32;
/** tar headers, meta.json, SHA256SUMS and padding: state.bin is the archive size minus this. */
const archiveOverhead = 4 * 1024;

/** What another process needs to regenerate the identical byte stream without rehashing. */
export interface ArchivePlan {
  /** Requested archive size (the stream is within a few KiB of it). */
  readonly size: number;
  readonly seed: number;
  readonly stateSize: number;
  readonly stateSha256: string;
  readonly crc32: number;
  /** Uncompressed tar length (gzip ISIZE is this mod 2^32). */
  readonly tarLength: number;
  /** Exact bytes of the gzip stream. */
  readonly streamLength: number;
}

interface Pool {
  readonly plain: Buffer[];
  readonly deflated: Buffer[];
}

const pools = new Map<number, Pool>();

function pool(seed: number): Pool {
  const cached = pools.get(seed);
  if (cached) return cached;
  const plain: Buffer[] = [];
  const deflated: Buffer[] = [];
  let x = seed >>> 0 || 0x9e3779b9;
  for (let s = 0; s < poolSegments; s++) {
    const buf = Buffer.allocUnsafe(segmentSize);
    const words = new Uint32Array(buf.buffer, buf.byteOffset, segmentSize / 4);
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    plain.push(buf);
    deflated.push(storedBlocks(buf));
  }
  const made = { plain, deflated };
  pools.set(seed, made);
  return made;
}

/** Builds the segment pool of `seed` now, so that generating the stream later costs no set-up. */
export function warmPool(seed: number): void {
  pool(seed);
}

/** Raw deflate of `data` as stored blocks ending byte-aligned and not final (concatenable). */
function storedBlocks(data: Buffer): Buffer {
  return deflateRawSync(data, { level: 0, finishFlush: constants.Z_FULL_FLUSH });
}

/** Which pool segment is the i-th MiB of state.bin (seeded, not periodic). */
function segmentAt(i: number, seed: number): number {
  let h = Math.imul(i ^ seed, 0x9e3779b1) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca77) >>> 0;
  h ^= h >>> 13;
  return (h >>> 0) % poolSegments;
}

function pad512(length: number): Buffer {
  return Buffer.alloc((512 - (length % 512)) % 512);
}

interface Pieces {
  readonly head: Buffer;
  readonly tail: (stateSha256: string) => Buffer;
}

function plainPieces(stateSize: number): Pieces {
  const meta = goMeta({ index: 1000, term: 3, size: stateSize });
  const head = Buffer.concat([
    ustarHeader({ name: "meta.json", size: meta.length }),
    meta,
    pad512(meta.length),
    ustarHeader({ name: "state.bin", size: stateSize }),
  ]);
  const metaSha = createHash("sha256").update(meta).digest("hex");
  return {
    head,
    tail: (stateSha256) => {
      const sums = Buffer.from(`${stateSha256}  state.bin\n${metaSha}  meta.json\n`);
      return Buffer.concat([
        pad512(stateSize),
        ustarHeader({ name: "SHA256SUMS", size: sums.length }),
        sums,
        pad512(sums.length),
        Buffer.alloc(1024),
      ]);
    },
  };
}

/** Plain state.bin, segment by segment (the last one possibly short). */
function* stateSegments(stateSize: number, seed: number): Generator<{ plain: Buffer; deflated: Buffer | undefined }> {
  const p = pool(seed);
  const full = Math.floor(stateSize / segmentSize);
  for (let i = 0; i < full; i++) {
    const s = segmentAt(i, seed);
    const plain = p.plain[s];
    if (plain === undefined) throw new RangeError(`no pool segment ${s}`);
    yield { plain, deflated: p.deflated[s] };
  }
  const rest = stateSize - full * segmentSize;
  if (rest > 0)
    yield { plain: (p.plain[segmentAt(full, seed)] ?? Buffer.alloc(0)).subarray(0, rest), deflated: undefined };
}

const gzipHeader = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);

function trailer(crc: number, tarLength: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeUInt32LE(crc >>> 0, 0);
  out.writeUInt32LE(tarLength % 2 ** 32, 4);
  return out;
}

/** Hashes state.bin and the whole tar once (≈ 1–2 GB/s with SHA-NI); cached per size and seed. */
export function prepareArchive(size: number, seed = 1): ArchivePlan {
  const stateSize = Math.max(1, size - archiveOverhead);
  const pieces = plainPieces(stateSize);
  const sha = createHash("sha256");
  let crc = crc32(pieces.head);
  let streamLength = gzipHeader.length + storedBlocks(pieces.head).length + 8;
  for (const seg of stateSegments(stateSize, seed)) {
    sha.update(seg.plain);
    crc = crc32(seg.plain, crc);
    streamLength += (seg.deflated ?? storedBlocks(seg.plain)).length;
  }
  const stateSha256 = sha.digest("hex");
  const tail = pieces.tail(stateSha256);
  crc = crc32(tail, crc);
  streamLength += deflateRawSync(tail, { finishFlush: constants.Z_FINISH }).length;
  return {
    size,
    seed,
    stateSize,
    stateSha256,
    crc32: crc,
    tarLength: pieces.head.length + stateSize + tail.length,
    streamLength,
  };
}

/** The archive's gzip stream as pre-built buffers (shared, never to be modified). */
export function* archiveChunks(plan: ArchivePlan): Generator<Buffer> {
  const pieces = plainPieces(plan.stateSize);
  yield gzipHeader;
  yield storedBlocks(pieces.head);
  for (const seg of stateSegments(plan.stateSize, plan.seed)) yield seg.deflated ?? storedBlocks(seg.plain);
  yield deflateRawSync(pieces.tail(plan.stateSha256), { finishFlush: constants.Z_FINISH });
  yield trailer(plan.crc32, plan.tarLength);
}

/** The archive as a Readable-compatible async iterable with writes of ~1 MiB. */
export async function* archiveStream(plan: ArchivePlan): AsyncGenerator<Buffer> {
  yield* archiveChunks(plan);
}

/** Writes the archive to `res`, honouring backpressure; resolves with the bytes written. */
export async function writeArchive(plan: ArchivePlan, res: NodeJS.WritableStream): Promise<number> {
  let bytes = 0;
  for (const chunk of archiveChunks(plan)) {
    bytes += chunk.length;
    if (!res.write(chunk)) await once(res, "drain");
  }
  return bytes;
}

/** One snapshot transfer seen by the source, in epoch milliseconds. */
export interface TransferEvent {
  readonly kind: "snapshot-get" | "snapshot-post";
  readonly startedAt: number;
  endedAt: number | undefined;
  bytes: number;
  complete: boolean;
}

export interface SnapshotSource {
  readonly address: string;
  readonly token: string;
  /** PEM of the CA to trust (TLS), undefined for plain HTTP. */
  readonly caPem: string | undefined;
  /** The archive served from now on. */
  serve(plan: ArchivePlan): void;
  readonly events: TransferEvent[];
  /** Called synchronously when a transfer starts (e.g. to sample the client's RSS). */
  onTransferStart: ((event: TransferEvent) => void) | undefined;
  stop(): Promise<void>;
}

export interface SourceOptions {
  /** Serve HTTPS with this key pair (OpenBao always runs TLS in production). */
  readonly tls?: { readonly certPem: string; readonly keyPem: string; readonly caPem: string };
  readonly token?: string;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export async function startSnapshotSource(options: SourceOptions = {}): Promise<SnapshotSource> {
  const token = options.token ?? "s.bench-static-token";
  let plan: ArchivePlan | undefined;
  let index = 1000;
  let activeTime = new Date().toISOString();
  let address = "";
  const events: TransferEvent[] = [];

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    const authorized = req.headers["x-vault-token"] === token;
    if (req.method === "GET" && path === "/v1/sys/leader") {
      json(res, 200, {
        ha_enabled: true,
        is_self: true,
        leader_address: address,
        leader_cluster_address: "",
        active_time: activeTime,
        raft_committed_index: index,
        raft_applied_index: index,
      });
      return;
    }
    if (req.method === "GET" && path === "/v1/sys/health") {
      json(res, 200, { initialized: true, sealed: false, standby: false, version: "2.4.0+bench-source" });
      return;
    }
    if (req.method === "GET" && path === "/v1/sys/seal-status") {
      json(res, 200, { sealed: false });
      return;
    }
    if (!authorized) {
      json(res, 403, { errors: ["permission denied"] });
      return;
    }
    if (req.method === "GET" && path === "/v1/auth/token/lookup-self") {
      json(res, 200, { data: { id: "bench", policies: ["root"] } });
      return;
    }
    if (req.method === "POST" && path === "/v1/auth/token/revoke-self") {
      res.writeHead(204).end();
      return;
    }
    if (req.method === "GET" && path === "/v1/sys/storage/raft/snapshot") {
      const current = plan;
      if (!current) {
        json(res, 500, { errors: ["no archive prepared"] });
        return;
      }
      const event: TransferEvent = {
        kind: "snapshot-get",
        startedAt: Date.now(),
        endedAt: undefined,
        bytes: 0,
        complete: false,
      };
      events.push(event);
      source.onTransferStart?.(event);
      res.writeHead(200, { "content-type": "application/gzip" });
      writeArchive(current, res).then(
        (bytes) => {
          event.bytes = bytes;
          res.end(() => {
            event.endedAt = Date.now();
            event.complete = true;
          });
        },
        () => res.destroy(),
      );
      return;
    }
    if (
      req.method === "POST" &&
      (path === "/v1/sys/storage/raft/snapshot" || path === "/v1/sys/storage/raft/snapshot-force")
    ) {
      const event: TransferEvent = {
        kind: "snapshot-post",
        startedAt: Date.now(),
        endedAt: undefined,
        bytes: 0,
        complete: false,
      };
      events.push(event);
      source.onTransferStart?.(event);
      req.on("data", (chunk: Buffer) => {
        event.bytes += chunk.length;
      });
      req.on("end", () => {
        event.endedAt = Date.now();
        event.complete = true;
        index += 3;
        activeTime = new Date().toISOString();
        res.writeHead(204).end();
      });
      req.on("error", () => res.destroy());
      return;
    }
    json(res, 404, { errors: [`${req.method} ${path}: not served by the bench source`] });
  };

  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler)
    : createHttpServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  address = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;

  const source: SnapshotSource = {
    address,
    token,
    caPem: options.tls?.caPem,
    serve(next) {
      plan = next;
      pool(next.seed);
    },
    events,
    onTransferStart: undefined,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return source;
}
