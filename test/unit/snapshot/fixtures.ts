/**
 * Synthetic OpenBao Raft snapshot archives for unit tests, laid out the way OpenBao writes them
 * (physical/raft/snapshot/archive.go): gzip(tar(meta.json, state.bin, SHA256SUMS
 * [, SHA256SUMS.sealed])), meta.json as Go's json.Encoder writes it (trailing newline),
 * SHA256SUMS as `%x  %s\n` lines. Tar members are written by tar-stream, an implementation
 * independent of the inspector's reader; the hand-made headers below exist only for the
 * extensions tar-stream cannot be asked to write (PAX size, base-256 size).
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";

export interface Member {
  name: string;
  content: Buffer;
  type?: "file" | "directory";
}

export function sha256(content: Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/** raft.SnapshotMeta as Go's json.Encoder writes it. */
export function goMeta(fields: { index: number; term: number; size: number }): Buffer {
  const meta = {
    Version: 1,
    ID: `2-${fields.index}-1735787045123`,
    Index: fields.index,
    Term: fields.term,
    Peers: "ka8xMjcuMC4wLjE6ODIwMQ==",
    Configuration: {
      Servers: [
        { Suffrage: 0, ID: "bao-0", Address: "bao-0.bao-internal:8201" },
        { Suffrage: 0, ID: "bao-1", Address: "bao-1.bao-internal:8201" },
        { Suffrage: 1, ID: "bao-2", Address: "bao-2.bao-internal:8201" },
      ],
    },
    ConfigurationIndex: 1,
    Size: fields.size,
  };
  return Buffer.from(`${JSON.stringify(meta)}\n`);
}

export function sumsFor(members: readonly Member[]): Buffer {
  return Buffer.from(members.map((m) => `${sha256(m.content)}  ${m.name}\n`).join(""));
}

export interface SnapshotParts {
  meta: Member;
  state: Member;
  sums: Member;
  sealed?: Member;
}

/** The members of a valid snapshot (state.bin random unless given). */
export function snapshotParts(
  options: { index?: number; term?: number; state?: Buffer; sealed?: boolean } = {},
): SnapshotParts {
  const stateContent = options.state ?? randomBytes(3000);
  const meta: Member = {
    name: "meta.json",
    content: goMeta({ index: options.index ?? 1234, term: options.term ?? 7, size: stateContent.length }),
  };
  const state: Member = { name: "state.bin", content: stateContent };
  // Go writes the list from a map, so the order varies; put state.bin first to exercise that.
  const sums: Member = { name: "SHA256SUMS", content: sumsFor([state, meta]) };
  const parts: SnapshotParts = { meta, state, sums };
  if (options.sealed) parts.sealed = { name: "SHA256SUMS.sealed", content: randomBytes(120) };
  return parts;
}

export function membersOf(parts: SnapshotParts): Member[] {
  return [parts.meta, parts.state, parts.sums, ...(parts.sealed ? [parts.sealed] : [])];
}

/** A tar archive written by tar-stream, ending with its end-of-archive marker. */
export async function tarOf(members: readonly Member[]): Promise<Buffer> {
  const archive = pack();
  const collected: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of archive) {
      if (!Buffer.isBuffer(chunk)) throw new TypeError("tar-stream yielded a non-Buffer chunk");
      collected.push(chunk);
    }
  })();
  for (const member of members) {
    await new Promise<void>((resolve, reject) => {
      const header = { name: member.name, mode: 0o600, mtime: new Date(1735787045000), type: member.type ?? "file" };
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (member.type === "directory") archive.entry(header, done);
      else archive.entry(header, member.content, done);
    });
  }
  archive.finalize();
  await done;
  return Buffer.concat(collected);
}

export async function snapshotArchive(parts: SnapshotParts = snapshotParts()): Promise<Buffer> {
  return gzipSync(await tarOf(membersOf(parts)));
}

/** Feeds a buffer as a stream of `chunkSize`-byte chunks (the last may be shorter). */
export function chunked(buffer: Buffer, chunkSize: number): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < buffer.length; offset += chunkSize) {
        yield buffer.subarray(offset, offset + chunkSize);
      }
    })(),
    { objectMode: false },
  );
}

/* Hand-made tar blocks, for header forms tar-stream does not write. */

function field(block: Buffer, offset: number, length: number, text: string): void {
  block.write(text.slice(0, length), offset, length, "latin1");
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, "0")}\0`;
}

function withChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  field(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

/** A USTAR header; `sizeBase256` writes the size field in GNU base-256 form. */
export function ustarHeader(options: { name: string; size: number; typeflag?: string; sizeBase256?: boolean }): Buffer {
  const block = Buffer.alloc(512);
  field(block, 0, 100, options.name);
  field(block, 100, 8, octal(0o600, 8));
  field(block, 108, 8, octal(0, 8));
  field(block, 116, 8, octal(0, 8));
  if (options.sizeBase256) {
    block[124] = 0x80;
    block.writeUIntBE(options.size, 124 + 12 - 6, 6);
  } else {
    field(block, 124, 12, octal(options.size, 12));
  }
  field(block, 136, 12, octal(1735787045, 12));
  field(block, 156, 1, options.typeflag ?? "0");
  field(block, 257, 8, "ustar\u000000");
  return withChecksum(block);
}

export function paxRecords(records: Record<string, string>): Buffer {
  let out = "";
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    out += `${length}${body}`;
  }
  return Buffer.from(out);
}

function padded(content: Buffer): Buffer {
  return Buffer.concat([content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
}

/** One tar member from hand-made blocks: optional PAX header, header, padded body. */
export function handMadeMember(
  member: Member,
  options: { pax?: Record<string, string>; headerSize?: number; headerName?: string; sizeBase256?: boolean } = {},
): Buffer {
  const blocks: Buffer[] = [];
  if (options.pax) {
    const records = paxRecords(options.pax);
    blocks.push(ustarHeader({ name: "PaxHeaders/x", size: records.length, typeflag: "x" }), padded(records));
  }
  blocks.push(
    ustarHeader({
      name: options.headerName ?? member.name,
      size: options.headerSize ?? member.content.length,
      sizeBase256: options.sizeBase256 ?? false,
    }),
    padded(member.content),
  );
  return Buffer.concat(blocks);
}

export const endOfArchive = Buffer.alloc(1024);
