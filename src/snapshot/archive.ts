/**
 * Streaming inspection of an OpenBao Raft snapshot as it flows past (SPEC §4, §5 trap 3).
 *
 * The format, as OpenBao writes it (`physical/raft/snapshot/archive.go` and `snapshot.go`,
 * the same layout as hashicorp/raft-snapshot): one gzip stream holding a tar archive of
 *   meta.json          the raft.SnapshotMeta (Version, ID, Index, Term, Peers, Configuration,
 *                      ConfigurationIndex, Size) as Go's json.Encoder wrote it;
 *   state.bin          the FSM data, exactly meta.Size bytes;
 *   SHA256SUMS         `<hex sha256>  <name>` lines for meta.json and state.bin, in any order
 *                      (Go writes them from a map);
 *   SHA256SUMS.sealed  optional: the same list encrypted with the cluster's seal, present in
 *                      snapshots taken through `sys/storage/raft/snapshot`. It can only be
 *                      opened with the seal, so it is recorded, not checked.
 * OpenBao's own reader rejects any other member, so this inspector does too.
 *
 * Checks, all in one pass and without holding more than a bounded amount in memory: gzip
 * integrity (CRC and length of every member, nothing after the last one), tar structure
 * (header checksums, complete members, the end-of-archive marker, nothing but zero padding
 * after it), the member list, every member's SHA-256 against SHA256SUMS, and meta.json
 * (Index/Term present, Size equal to state.bin's length).
 *
 * Wiring. The inspector is a pass-through stage, not a sink to tee into:
 *
 *   await pipeline(openbaoResponse, tap, inspector, upload, { signal });
 *   const info = await inspector.result;
 *
 * Every chunk goes on downstream unchanged, once it has been decompressed and checked, which
 * happens synchronously (gunzip.ts): the inspector holds nothing back and waits for nothing,
 * so it cannot deadlock against the upload the way a tee waiting on two consumers can. The
 * end of the stream is passed on only after every check has passed: a truncated,
 * corrupt or foreign stream turns into a pipeline error (a `SnapshotArchiveError`) instead of
 * a clean end of file, so the uploader aborts rather than completing an unverified object.
 * The upload must therefore complete only on a clean end, never on an error or destroy.
 * For restore the same stage sits between the object and OpenBao's request body: a bad object
 * aborts the request body before it is complete, and OpenBao applies nothing. To check a
 * stream with nowhere to send it (`verify`), use `inspectSnapshot(source)`.
 */
import { createHash, type Hash } from "node:crypto";
import { type Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SnapshotArchiveError, type SnapshotArchiveProblem } from "./errors.ts";
import { SyncGunzip } from "./gunzip.ts";

export const snapshotFileNames = {
  meta: "meta.json",
  state: "state.bin",
  sums: "SHA256SUMS",
  sealedSums: "SHA256SUMS.sealed",
} as const;

/** A server of the Raft configuration recorded in meta.json. */
export interface RaftServer {
  id: string;
  address: string;
  /** hashicorp/raft ServerSuffrage: 0 voter, 1 non-voter, 2 staging. */
  suffrage: number;
}

export interface SnapshotFileInfo {
  name: string;
  size: number;
  /** Null only for state.bin when the inspector was asked not to hash it (`hashState: false`). */
  sha256: string | null;
}

export interface SnapshotInfo {
  /** Raft index and term the snapshot was taken at. */
  index: number;
  term: number;
  /** raft.SnapshotMeta.Version (the meta format, 1 for current snapshots), when present. */
  raftSnapshotVersion: number | null;
  /** raft.SnapshotMeta.ID, when present. */
  raftSnapshotId: string | null;
  configurationIndex: number | null;
  servers: RaftServer[];
  /** Bytes of state.bin. */
  stateSize: number;
  /** Whether the archive carries SHA256SUMS.sealed (checked by OpenBao on restore, not here). */
  sealed: boolean;
  /** Members in archive order. */
  files: SnapshotFileInfo[];
  /** Bytes of the stream as it flowed past (the object's size). */
  compressedBytes: number;
  /** Bytes of the tar archive inside the gzip stream. */
  uncompressedBytes: number;
}

export interface SnapshotInspectorOptions {
  /**
   * The decompressor's output buffer (default 256 KiB), reused for every piece it produces:
   * small enough to stay in the cache while the tar reader hashes it (gunzip.ts).
   */
  outputBytes?: number;
  /**
   * Whether state.bin's SHA-256 is computed and checked against SHA256SUMS (default true).
   * Everything else is checked either way, including that SHA256SUMS lists state.bin. Restore
   * turns it off: the object's own SHA-256 is being matched against the manifest of a backup
   * that made this very check on these bytes, the gzip CRC-32 still covers every decompressed
   * byte, and OpenBao checks SHA256SUMS itself before it applies anything. A third SHA-256 pass
   * over the same bytes would catch only an archive whose manifest was rewritten to match it,
   * which OpenBao then refuses. Backups, drills and `verify` keep it.
   */
  hashState?: boolean;
}

/** An error zlib raised for the gzip data (it carries zlib's code, e.g. Z_DATA_ERROR). */
function isZlibError(error: unknown): error is Error {
  return error instanceof Error && /^Z_[A-Z_]+$/.test(String((error as NodeJS.ErrnoException).code));
}

// Bounds on what is read into memory. OpenBao itself reads meta.json and SHA256SUMS with an
// 8 KiB cap; these are looser so the inspector never rejects what OpenBao would accept.
const maxMetaBytes = 1024 * 1024;
const maxSumsBytes = 64 * 1024;
const maxExtendedHeaderBytes = 1024 * 1024;
const blockSize = 512;
const gzipMagic = [0x1f, 0x8b] as const;

function corrupt(problem: SnapshotArchiveProblem, message: string, file?: string, cause?: unknown) {
  return new SnapshotArchiveError("SnapshotCorrupt", problem, message, { file, cause });
}

function truncated(problem: SnapshotArchiveProblem, message: string, file?: string, cause?: unknown) {
  return new SnapshotArchiveError("SnapshotTruncated", problem, message, { file, cause });
}

/* ------------------------------------------------------------------------------------------ */
/* tar                                                                                          */
/* ------------------------------------------------------------------------------------------ */

interface MemberState {
  name: string;
  size: number;
  /** Null for state.bin when it is not hashed (`hashState: false`). */
  hash: Hash | null;
  /** Collected bytes for members that are parsed (meta.json, SHA256SUMS); null when only hashed. */
  chunks: Buffer[] | null;
}

interface Member {
  name: string;
  size: number;
  sha256: string | null;
  content: Buffer | null;
}

/** What the body of the current tar entry is for. */
type Body =
  | { kind: "member"; member: MemberState }
  | { kind: "pax"; chunks: Buffer[] }
  | { kind: "gnu-long-name"; chunks: Buffer[] }
  | { kind: "discard" };

/**
 * A minimal, strict, synchronous reader for the tar that Go's archive/tar writes (USTAR, with
 * PAX or GNU extensions for long names and sizes over 8 GiB). Synchronous so that a
 * decompressed chunk is fully accounted for before the next one arrives: no inner streams,
 * no inner backpressure, nothing that could stall.
 */
class SnapshotTarReader {
  #mode: "header" | "body" | "padding" | "end" = "header";
  readonly #header = Buffer.alloc(blockSize);
  #headerFill = 0;
  #zeroBlockSeen = false;
  #body: Body = { kind: "discard" };
  #remaining = 0;
  #padding = 0;
  #paxPath: string | null = null;
  #paxSize: number | null = null;
  #longName: string | null = null;
  #bytes = 0;
  readonly members: Member[] = [];
  readonly #names = new Set<string>();
  #current: { name: string; size: number } | null = null;
  readonly #hashState: boolean;

  constructor(hashState: boolean) {
    this.#hashState = hashState;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get ended(): boolean {
    return this.#mode === "end";
  }

  write(chunk: Buffer): void {
    this.#bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      switch (this.#mode) {
        case "header": {
          const take = Math.min(blockSize - this.#headerFill, chunk.length - offset);
          chunk.copy(this.#header, this.#headerFill, offset, offset + take);
          this.#headerFill += take;
          offset += take;
          if (this.#headerFill === blockSize) {
            this.#headerFill = 0;
            this.#onHeaderBlock();
          }
          break;
        }
        case "body": {
          const take = Math.min(this.#remaining, chunk.length - offset);
          this.#onBody(chunk.subarray(offset, offset + take));
          this.#remaining -= take;
          offset += take;
          if (this.#remaining === 0) this.#endBody();
          break;
        }
        case "padding": {
          const take = Math.min(this.#padding, chunk.length - offset);
          this.#padding -= take;
          offset += take;
          if (this.#padding === 0) this.#mode = "header";
          break;
        }
        case "end": {
          // Writers may pad the archive to a record size with zeros; anything else is not ours.
          for (let i = offset; i < chunk.length; i++) {
            if (chunk[i] !== 0) throw corrupt("tar", "data follows the tar end-of-archive marker");
          }
          offset = chunk.length;
          break;
        }
      }
    }
  }

  /** Call at the end of the decompressed stream; throws if the archive is incomplete. */
  finish(): Member[] {
    switch (this.#mode) {
      case "end":
        return this.members;
      case "body":
      case "padding":
        throw truncated(
          "tar",
          `the archive ends inside ${this.#current ? JSON.stringify(this.#current.name) : "an entry"}` +
            (this.#mode === "body" ? ` (${this.#remaining} of its bytes are missing)` : ""),
          this.#current?.name,
        );
      case "header":
        throw truncated(
          "tar",
          this.#headerFill > 0
            ? "the archive ends inside a tar header"
            : "the archive has no end-of-archive marker (the stream was cut short)",
        );
    }
  }

  #onHeaderBlock(): void {
    const block = this.#header;
    if (block.every((byte) => byte === 0)) {
      if (this.#zeroBlockSeen) {
        this.#mode = "end";
      } else {
        this.#zeroBlockSeen = true;
      }
      return;
    }
    if (this.#zeroBlockSeen) throw corrupt("tar", "a tar header follows a zero block (damaged archive)");
    this.#verifyHeaderChecksum(block);

    const typeflag = String.fromCharCode(block[156] ?? 0);
    let name = cString(block, 0, 100);
    if (block.toString("latin1", 257, 263) === "ustar\0") {
      const prefix = cString(block, 345, 155);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    let size = parseNumeric(block, 124, 12, "size");

    switch (typeflag) {
      case "x":
        this.#startBody({ kind: "pax", chunks: [] }, size, maxExtendedHeaderBytes, "a PAX header");
        return;
      case "L":
        this.#startBody({ kind: "gnu-long-name", chunks: [] }, size, maxExtendedHeaderBytes, "a GNU long name");
        return;
      case "K":
        this.#startBody({ kind: "discard" }, size, maxExtendedHeaderBytes, "a GNU long link name");
        return;
    }

    if (this.#longName !== null) name = this.#longName;
    if (this.#paxPath !== null) name = this.#paxPath;
    if (this.#paxSize !== null) size = this.#paxSize;
    this.#longName = null;
    this.#paxPath = null;
    this.#paxSize = null;

    const known = Object.values(snapshotFileNames) as string[];
    if (!known.includes(name)) {
      throw corrupt(
        "unexpected-file",
        `unexpected ${typeflag === "g" ? "PAX global header" : `entry ${JSON.stringify(name)}`} in the archive ` +
          `(a Raft snapshot holds only ${known.join(", ")})`,
        name,
      );
    }
    if (typeflag !== "0" && typeflag !== "\0" && typeflag !== "7") {
      throw corrupt(
        "tar",
        `${JSON.stringify(name)} is not a regular file (tar type ${JSON.stringify(typeflag)})`,
        name,
      );
    }
    if (this.#names.has(name)) throw corrupt("duplicate-file", `${JSON.stringify(name)} appears twice`, name);
    this.#names.add(name);

    const buffered = name === snapshotFileNames.meta || name === snapshotFileNames.sums;
    const limit = name === snapshotFileNames.meta ? maxMetaBytes : maxSumsBytes;
    if (buffered && size > limit) {
      throw corrupt("too-large", `${JSON.stringify(name)} is ${size} bytes, more than the ${limit} expected`, name);
    }
    const hashed = this.#hashState || name !== snapshotFileNames.state;
    const member: MemberState = {
      name,
      size,
      hash: hashed ? createHash("sha256") : null,
      chunks: buffered ? [] : null,
    };
    this.#current = { name, size };
    this.#startBody({ kind: "member", member }, size, Number.POSITIVE_INFINITY, name);
  }

  #startBody(body: Body, size: number, limit: number, what: string): void {
    if (size > limit) throw corrupt("too-large", `${what} of ${size} bytes exceeds ${limit}`);
    this.#body = body;
    this.#remaining = size;
    this.#padding = (blockSize - (size % blockSize)) % blockSize;
    if (size === 0) {
      this.#endBody();
    } else {
      this.#mode = "body";
    }
  }

  #onBody(bytes: Buffer): void {
    const body = this.#body;
    switch (body.kind) {
      case "member":
        body.member.hash?.update(bytes);
        body.member.chunks?.push(Buffer.from(bytes));
        return;
      case "pax":
      case "gnu-long-name":
        body.chunks.push(Buffer.from(bytes));
        return;
      case "discard":
        return;
    }
  }

  #endBody(): void {
    const body = this.#body;
    switch (body.kind) {
      case "member": {
        const { member } = body;
        this.members.push({
          name: member.name,
          size: member.size,
          sha256: member.hash?.digest("hex") ?? null,
          content: member.chunks ? Buffer.concat(member.chunks) : null,
        });
        this.#current = null;
        break;
      }
      case "pax":
        this.#applyPax(Buffer.concat(body.chunks));
        break;
      case "gnu-long-name":
        this.#longName = cString(Buffer.concat(body.chunks), 0, Number.POSITIVE_INFINITY);
        break;
      case "discard":
        break;
    }
    this.#body = { kind: "discard" };
    this.#mode = this.#padding > 0 ? "padding" : "header";
  }

  /** PAX records: `<length> <key>=<value>\n`, the length counting the whole record in bytes. */
  #applyPax(records: Buffer): void {
    let offset = 0;
    while (offset < records.length) {
      const space = records.indexOf(0x20, offset);
      const lengthText = space < 0 ? "" : records.toString("latin1", offset, space);
      const length = /^[1-9]\d{0,8}$/.test(lengthText) ? Number(lengthText) : Number.NaN;
      const end = offset + length;
      if (!Number.isFinite(length) || end > records.length || records[end - 1] !== 0x0a) {
        throw corrupt("tar", "malformed PAX extended header");
      }
      const record = records.toString("utf8", space + 1, end - 1);
      const equals = record.indexOf("=");
      if (equals < 1) throw corrupt("tar", "malformed PAX extended header record");
      const key = record.slice(0, equals);
      const value = record.slice(equals + 1);
      if (key === "path") this.#paxPath = value;
      if (key === "size") {
        if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
          throw corrupt("tar", `invalid PAX size ${JSON.stringify(value)}`);
        }
        this.#paxSize = Number(value);
      }
      offset = end;
    }
  }

  #verifyHeaderChecksum(block: Buffer): void {
    let recorded: number;
    try {
      recorded = parseNumeric(block, 148, 8, "checksum");
    } catch {
      recorded = Number.NaN;
    }
    let unsigned = 0;
    let signed = 0;
    for (let i = 0; i < blockSize; i++) {
      const byte = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
      unsigned += byte;
      signed += byte > 127 ? byte - 256 : byte;
    }
    if (recorded !== unsigned && recorded !== signed) {
      throw corrupt(
        "tar",
        this.members.length === 0 && this.#names.size === 0
          ? "not a tar archive inside the gzip stream (bad header checksum)"
          : "a tar header is damaged (bad header checksum)",
      );
    }
  }
}

function cString(bytes: Buffer, start: number, length: number): string {
  const end = Math.min(bytes.length, start + length);
  const nul = bytes.indexOf(0, start);
  return bytes.toString("utf8", start, nul >= 0 && nul < end ? nul : end);
}

/** A tar numeric field: octal text (NUL/space padded), or GNU base-256 when the high bit is set. */
function parseNumeric(block: Buffer, start: number, length: number, field: string): number {
  const first = block[start] ?? 0;
  if (first & 0x80) {
    if (first === 0xff) throw corrupt("tar", `negative tar ${field}`);
    let value = BigInt(first & 0x7f);
    for (let i = start + 1; i < start + length; i++) value = (value << 8n) | BigInt(block[i] ?? 0);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt("tar", `tar ${field} out of range`);
    return Number(value);
  }
  const text = block.toString("latin1", start, start + length).replace(/^[ ]+/, "");
  const digits = /^[0-7]*/.exec(text)?.[0] ?? "";
  if (!/^[\0 ]*$/.test(text.slice(digits.length))) throw corrupt("tar", `invalid tar ${field} field`);
  return digits === "" ? 0 : Number.parseInt(digits, 8);
}

/* ------------------------------------------------------------------------------------------ */
/* verification of the members                                                                */
/* ------------------------------------------------------------------------------------------ */

const sumsLine = /^([0-9a-fA-F]{64})[ \t]+(\S+)[ \t]*$/;

function verifyMembers(members: readonly Member[], compressedBytes: number, uncompressedBytes: number): SnapshotInfo {
  const byName = new Map(members.map((m) => [m.name, m]));
  const required = [snapshotFileNames.meta, snapshotFileNames.state, snapshotFileNames.sums];
  const missing = required.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    throw corrupt("missing-file", `the archive lacks ${missing.join(", ")}`, missing[0]);
  }
  const meta = byName.get(snapshotFileNames.meta);
  const state = byName.get(snapshotFileNames.state);
  const sums = byName.get(snapshotFileNames.sums);
  if (!meta?.content || !state || !sums?.content) throw corrupt("missing-file", "the archive is incomplete");

  verifySums(sums.content, [meta, state]);
  const parsed = parseMeta(meta.content);
  if (parsed.size !== null && parsed.size !== state.size) {
    throw corrupt(
      "meta",
      `meta.json says state.bin is ${parsed.size} bytes but it is ${state.size}`,
      snapshotFileNames.meta,
    );
  }

  return {
    index: parsed.index,
    term: parsed.term,
    raftSnapshotVersion: parsed.version,
    raftSnapshotId: parsed.id,
    configurationIndex: parsed.configurationIndex,
    servers: parsed.servers,
    stateSize: state.size,
    sealed: byName.has(snapshotFileNames.sealedSums),
    files: members.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    compressedBytes,
    uncompressedBytes,
  };
}

/** Mirrors OpenBao's check: every listed name is a checked member, and every checked member is listed and matches. */
function verifySums(content: Buffer, checked: readonly Member[]): void {
  const file = snapshotFileNames.sums;
  const lines = content.toString("utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  const listed = new Map<string, string>();
  for (const [i, raw] of lines.entries()) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const match = sumsLine.exec(line);
    if (!match) throw corrupt("checksums", `SHA256SUMS line ${i + 1} is not "<sha256>  <file>"`, file);
    const [, digest = "", name = ""] = match;
    if (!checked.some((m) => m.name === name)) {
      throw corrupt("checksums", `SHA256SUMS lists ${JSON.stringify(name)}, which is not a checked member`, file);
    }
    if (listed.has(name)) throw corrupt("checksums", `SHA256SUMS lists ${JSON.stringify(name)} twice`, file);
    listed.set(name, digest.toLowerCase());
  }
  for (const member of checked) {
    const expected = listed.get(member.name);
    if (expected === undefined) {
      throw corrupt("checksums", `SHA256SUMS has no checksum for ${JSON.stringify(member.name)}`, member.name);
    }
    // Not hashed (`hashState: false`): listed is all that can be checked here.
    if (member.sha256 !== null && expected !== member.sha256) {
      throw corrupt(
        "checksums",
        `SHA-256 of ${JSON.stringify(member.name)} is ${member.sha256}, SHA256SUMS says ${expected}`,
        member.name,
      );
    }
  }
}

interface ParsedMeta {
  index: number;
  term: number;
  version: number | null;
  id: string | null;
  size: number | null;
  configurationIndex: number | null;
  servers: RaftServer[];
}

function parseMeta(content: Buffer): ParsedMeta {
  const file = snapshotFileNames.meta;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(content));
  } catch (cause) {
    throw corrupt("meta", "meta.json is not valid JSON", file, cause);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw corrupt("meta", "meta.json is not a JSON object", file);
  }
  const record = value as Record<string, unknown>;
  const count = (field: string, required: boolean): number | null => {
    const v = record[field];
    if (v === undefined && !required) return null;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw corrupt("meta", `meta.json ${field} must be a non-negative integer, got ${JSON.stringify(v)}`, file);
    }
    return v;
  };
  const index = count("Index", true) ?? 0;
  const term = count("Term", true) ?? 0;
  const id = record.ID;
  if (id !== undefined && typeof id !== "string") throw corrupt("meta", "meta.json ID must be a string", file);

  const servers: RaftServer[] = [];
  const configuration = record.Configuration;
  if (configuration !== undefined && configuration !== null) {
    const list = (configuration as Record<string, unknown>).Servers;
    if (list !== undefined && list !== null) {
      if (!Array.isArray(list)) throw corrupt("meta", "meta.json Configuration.Servers must be a list", file);
      for (const entry of list) {
        const s = (typeof entry === "object" && entry !== null ? entry : {}) as Record<string, unknown>;
        if (typeof s.ID !== "string" || typeof s.Address !== "string" || typeof s.Suffrage !== "number") {
          throw corrupt("meta", "meta.json Configuration.Servers has a malformed entry", file);
        }
        servers.push({ id: s.ID, address: s.Address, suffrage: s.Suffrage });
      }
    }
  }

  return {
    index,
    term,
    version: count("Version", false),
    id: typeof id === "string" ? id : null,
    size: count("Size", false),
    configurationIndex: count("ConfigurationIndex", false),
    servers,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* the stream stage                                                                             */
/* ------------------------------------------------------------------------------------------ */

/**
 * A pass-through Transform that inspects the snapshot flowing through it. `result` settles
 * when the stream ends (with the snapshot's facts) or fails (with the error that also
 * destroys the stream: a `SnapshotArchiveError`, or whatever destroyed it from outside).
 * `result` never causes an unhandled rejection if nobody awaits it.
 */
export class SnapshotInspector extends Transform {
  readonly result: Promise<SnapshotInfo>;
  #info: SnapshotInfo | null = null;
  #resolve: (info: SnapshotInfo) => void = () => {};
  #reject: (error: Error) => void = () => {};
  #settled = false;
  readonly #tar: SnapshotTarReader;
  readonly #gunzip: SyncGunzip;
  #bytesIn = 0;
  readonly #head: number[] = [];
  #failure: Error | null = null;

  constructor(options: SnapshotInspectorOptions = {}) {
    // The readable side hands out the chunks it was given, one per read, never joined: a
    // reader that iterates it (the tee, `for await`) calls `read()`, which in byte mode
    // concatenates every queued chunk into a fresh buffer — a copy of the stream and an
    // allocation per read. Eight chunks queued at most (TLS records: 128 KiB).
    super({ readableObjectMode: true, readableHighWaterMark: 8 });
    this.result = new Promise<SnapshotInfo>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.result.catch(() => {});
    this.#tar = new SnapshotTarReader(options.hashState ?? true);
    // The tar reader copies whatever it keeps of a chunk, so the decompressor's reused buffer is safe.
    this.#gunzip = new SyncGunzip((bytes) => this.#tar.write(bytes), options.outputBytes);
  }

  /** The snapshot's facts once every check has passed (set before the end is passed downstream), else null. */
  get info(): SnapshotInfo | null {
    return this.#info;
  }

  /** Each chunk is decompressed and checked before it is passed on, unchanged. */
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    for (let i = 0; this.#head.length < 2 && i < chunk.length; i++) this.#head.push(chunk[i] ?? 0);
    this.#bytesIn += chunk.length;
    try {
      this.#gunzip.write(chunk);
    } catch (error) {
      callback(this.#fail(error));
      return;
    }
    this.push(chunk);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    try {
      this.#gunzip.end();
      if (this.#gunzip.bytesWritten < this.#bytesIn) {
        throw corrupt(
          "trailing-data",
          `${this.#bytesIn - this.#gunzip.bytesWritten} bytes follow the end of the gzip stream`,
        );
      }
      const members = this.#tar.finish();
      this.#settle(verifyMembers(members, this.#bytesIn, this.#tar.bytes));
      callback();
    } catch (error) {
      callback(this.#fail(error));
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#settled) {
      const reason = error ?? truncated("tar", "the stream was closed before the snapshot was complete");
      this.#failure ??= reason;
      this.#settle(reason);
    }
    this.#gunzip.close();
    callback(error);
  }

  /** Records the first failure (zlib's errors as archive errors) and returns it for the callback. */
  #fail(error: unknown): Error {
    if (this.#failure) return this.#failure;
    const failure =
      error instanceof SnapshotArchiveError
        ? error
        : isZlibError(error)
          ? this.#gzipError(error)
          : error instanceof Error
            ? error
            : new Error(String(error));
    this.#failure = failure;
    this.#settle(failure);
    this.#gunzip.close();
    return failure;
  }

  #settle(outcome: SnapshotInfo | Error): void {
    if (this.#settled) return;
    this.#settled = true;
    if (outcome instanceof Error) {
      this.#reject(outcome);
    } else {
      this.#info = outcome;
      this.#resolve(outcome);
    }
  }

  #gzipError(error: Error): SnapshotArchiveError {
    const code = (error as NodeJS.ErrnoException).code;
    if (this.#bytesIn === 0) return truncated("empty", "the stream is empty");
    if (this.#head[0] !== gzipMagic[0] || (this.#head.length > 1 && this.#head[1] !== gzipMagic[1])) {
      return corrupt("gzip", "the stream is not gzip data, so not an OpenBao Raft snapshot", undefined, error);
    }
    if (this.#tar.ended && code === "Z_DATA_ERROR") {
      return corrupt("trailing-data", "bytes that are not gzip follow the end of the gzip stream", undefined, error);
    }
    if (code === "Z_BUF_ERROR") {
      return truncated("gzip", "the gzip stream ends before it is complete", undefined, error);
    }
    return corrupt("gzip", `the gzip stream is damaged (${error.message})`, undefined, error);
  }
}

/** A new inspector; use one per stream. */
export function createSnapshotInspector(options?: SnapshotInspectorOptions): SnapshotInspector {
  return new SnapshotInspector(options);
}

/**
 * Reads a whole stream through an inspector, discarding the bytes, and returns what it found:
 * for `verify` and `inspect`, where the bytes have nowhere to go. Rejects with the stream's
 * own error or a `SnapshotArchiveError`.
 */
export async function inspectSnapshot(
  source: Readable | AsyncIterable<Uint8Array>,
  options?: SnapshotInspectorOptions,
): Promise<SnapshotInfo> {
  const inspector = createSnapshotInspector(options);
  const discard = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  await pipeline(source, inspector, discard);
  return inspector.result;
}
