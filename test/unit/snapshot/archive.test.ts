import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { createSnapshotInspector, inspectSnapshot } from "../../../src/snapshot/archive.ts";
import { SnapshotArchiveError, type SnapshotArchiveProblem } from "../../../src/snapshot/errors.ts";
import { createTap } from "../../../src/snapshot/tap.ts";
import {
  chunked,
  endOfArchive,
  goMeta,
  handMadeMember,
  type Member,
  membersOf,
  sha256,
  snapshotArchive,
  snapshotParts,
  sumsFor,
  tarOf,
  ustarHeader,
} from "./fixtures.ts";

async function rejectsWith(
  promise: Promise<unknown>,
  code: "SnapshotCorrupt" | "SnapshotTruncated",
  problem: SnapshotArchiveProblem | readonly SnapshotArchiveProblem[],
  message?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SnapshotArchiveError, `expected a SnapshotArchiveError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    const allowed: readonly SnapshotArchiveProblem[] = typeof problem === "string" ? [problem] : problem;
    assert.ok(
      allowed.includes(error.problem),
      `problem ${error.problem} not in ${allowed.join(", ")}: ${error.message}`,
    );
    if (message) assert.match(error.message, message);
    return true;
  });
}

/** Deterministic bytes, so that tests damaging compressed data always damage it the same way. */
function pattern(length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash("sha256").update("seed").digest();
  for (let offset = 0; offset < length; offset += block.length) {
    block.copy(out, offset);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

function gz(tar: Buffer): Buffer {
  return gzipSync(tar);
}

describe("snapshot archive inspector: valid snapshots", () => {
  test("reports index, term, configuration, files and sizes from a valid snapshot", async () => {
    const parts = snapshotParts({ index: 98765, term: 12 });
    const tar = await tarOf(membersOf(parts));
    const archive = gz(tar);
    const info = await inspectSnapshot(chunked(archive, 4096));
    assert.equal(info.index, 98765);
    assert.equal(info.term, 12);
    assert.equal(info.raftSnapshotVersion, 1);
    assert.equal(info.raftSnapshotId, "2-98765-1735787045123");
    assert.equal(info.configurationIndex, 1);
    assert.deepEqual(info.servers, [
      { id: "bao-0", address: "bao-0.bao-internal:8201", suffrage: 0 },
      { id: "bao-1", address: "bao-1.bao-internal:8201", suffrage: 0 },
      { id: "bao-2", address: "bao-2.bao-internal:8201", suffrage: 1 },
    ]);
    assert.equal(info.stateSize, parts.state.content.length);
    assert.equal(info.sealed, false);
    assert.deepEqual(
      info.files,
      membersOf(parts).map((m) => ({ name: m.name, size: m.content.length, sha256: sha256(m.content) })),
    );
    assert.equal(info.compressedBytes, archive.length);
    assert.equal(info.uncompressedBytes, tar.length);
  });

  for (const chunkSize of [1, 7, 511, 512, 513, 4096, 1 << 20]) {
    test(`gives the same answer whatever the chunking (${chunkSize}-byte chunks)`, async () => {
      const parts = snapshotParts({ state: pattern(2000) });
      const info = await inspectSnapshot(chunked(await snapshotArchive(parts), chunkSize));
      assert.equal(info.index, 1234);
      assert.equal(info.stateSize, 2000);
    });
  }

  test("accepts SHA256SUMS.sealed (as written through sys/storage/raft/snapshot) and records it", async () => {
    const info = await inspectSnapshot(chunked(await snapshotArchive(snapshotParts({ sealed: true })), 1000));
    assert.equal(info.sealed, true);
    assert.deepEqual(
      info.files.map((f) => f.name),
      ["meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"],
    );
  });

  test("accepts SHA256SUMS lines in either order and upper-case hex (Go writes from a map; Go's reader scans %x)", async () => {
    const parts = snapshotParts();
    const lines = [parts.meta, parts.state].map((m) => `${sha256(m.content).toUpperCase()}  ${m.name}\n`);
    parts.sums = { name: "SHA256SUMS", content: Buffer.from(lines.join("")) };
    const info = await inspectSnapshot(chunked(await snapshotArchive(parts), 333));
    assert.equal(info.term, 7);
  });

  test("accepts an empty state.bin", async () => {
    const info = await inspectSnapshot(chunked(await snapshotArchive(snapshotParts({ state: Buffer.alloc(0) })), 64));
    assert.equal(info.stateSize, 0);
  });

  test("accepts zero padding after the end-of-archive marker (tar record padding)", async () => {
    const tar = await tarOf(membersOf(snapshotParts()));
    const recordPadded = Buffer.concat([tar, Buffer.alloc(10240 - (tar.length % 10240))]);
    const info = await inspectSnapshot(chunked(gz(recordPadded), 999));
    assert.equal(info.uncompressedBytes, recordPadded.length);
  });

  test("accepts a multi-member gzip stream, as Go's reader does", async () => {
    const tar = await tarOf(membersOf(snapshotParts()));
    const half = 700;
    const archive = Buffer.concat([gz(tar.subarray(0, half)), gz(tar.subarray(half))]);
    const info = await inspectSnapshot(chunked(archive, 500));
    assert.equal(info.index, 1234);
  });

  test("honours PAX path and size records (Go writes PAX for state.bin over 8 GiB)", async () => {
    const parts = snapshotParts({ state: pattern(1500) });
    const tar = Buffer.concat([
      handMadeMember(parts.meta),
      // The USTAR size field says 0 and the name is a placeholder; the PAX records are authoritative.
      handMadeMember(parts.state, {
        pax: { path: "state.bin", size: String(parts.state.content.length) },
        headerSize: 0,
        headerName: "GlobalHead.0.0",
      }),
      handMadeMember(parts.sums),
      endOfArchive,
    ]);
    const info = await inspectSnapshot(chunked(gz(tar), 300));
    assert.equal(info.stateSize, 1500);
  });

  test("reads GNU base-256 size fields", async () => {
    const parts = snapshotParts({ state: pattern(1500) });
    const tar = Buffer.concat([
      handMadeMember(parts.meta),
      handMadeMember(parts.state, { sizeBase256: true }),
      handMadeMember(parts.sums),
      endOfArchive,
    ]);
    const info = await inspectSnapshot(chunked(gz(tar), 300));
    assert.equal(info.stateSize, 1500);
  });

  test("reads GNU long names", async () => {
    const parts = snapshotParts();
    const longName = Buffer.from("state.bin\0");
    const tar = Buffer.concat([
      handMadeMember(parts.meta),
      ustarHeader({ name: "././@LongLink", size: longName.length, typeflag: "L" }),
      Buffer.concat([longName, Buffer.alloc(512 - longName.length)]),
      handMadeMember(parts.state, { headerName: "placeholder" }),
      handMadeMember(parts.sums),
      endOfArchive,
    ]);
    const info = await inspectSnapshot(chunked(gz(tar), 300));
    assert.equal(info.stateSize, parts.state.content.length);
  });
});

describe("snapshot archive inspector: checksums (SHA256SUMS)", () => {
  const cases: { name: string; sums: (parts: ReturnType<typeof snapshotParts>) => string; message: RegExp }[] = [
    {
      name: "state.bin does not match its checksum",
      sums: (p) => `${sha256(p.meta.content)}  meta.json\n${sha256(Buffer.from("other"))}  state.bin\n`,
      message: /SHA-256 of "state\.bin"/,
    },
    {
      name: "meta.json does not match its checksum",
      sums: (p) => `${sha256(Buffer.from("other"))}  meta.json\n${sha256(p.state.content)}  state.bin\n`,
      message: /SHA-256 of "meta\.json"/,
    },
    {
      name: "state.bin is not listed",
      sums: (p) => `${sha256(p.meta.content)}  meta.json\n`,
      message: /no checksum for "state\.bin"/,
    },
    {
      name: "a file that is not checked is listed",
      sums: (p) => `${sumsFor([p.meta, p.state]).toString()}${sha256(Buffer.from("x"))}  other.bin\n`,
      message: /lists "other\.bin"/,
    },
    {
      name: "a file is listed twice",
      sums: (p) => `${sumsFor([p.meta, p.state, p.state]).toString()}`,
      message: /twice/,
    },
    {
      name: "a line is malformed (short hash)",
      sums: (p) => `${sha256(p.meta.content).slice(1)}  meta.json\n${sha256(p.state.content)}  state.bin\n`,
      message: /line 1/,
    },
    {
      name: "an empty line in the middle (Go's scanner rejects it too)",
      sums: (p) => `${sha256(p.meta.content)}  meta.json\n\n${sha256(p.state.content)}  state.bin\n`,
      message: /line 2/,
    },
    { name: "SHA256SUMS is empty", sums: () => "", message: /no checksum for "meta\.json"/ },
  ];
  for (const c of cases) {
    test(`rejects: ${c.name}`, async () => {
      const parts = snapshotParts();
      parts.sums = { name: "SHA256SUMS", content: Buffer.from(c.sums(parts)) };
      await rejectsWith(
        inspectSnapshot(chunked(await snapshotArchive(parts), 512)),
        "SnapshotCorrupt",
        "checksums",
        c.message,
      );
    });
  }
});

describe("snapshot archive inspector: hashState false (restore: state.bin's SHA-256 is left to the manifest and OpenBao)", () => {
  test("a valid snapshot passes; state.bin's digest is reported as not computed, the others are", async () => {
    const parts = snapshotParts();
    const info = await inspectSnapshot(chunked(await snapshotArchive(parts), 4096), { hashState: false });
    const byName = new Map(info.files.map((f) => [f.name, f.sha256]));
    assert.equal(byName.get("state.bin"), null);
    assert.equal(byName.get("meta.json"), sha256(parts.meta.content));
    assert.equal(byName.get("SHA256SUMS"), sha256(parts.sums.content));
  });

  test("state.bin not matching SHA256SUMS passes only with hashState false, and fails by default", async () => {
    const parts = snapshotParts();
    parts.sums = {
      name: "SHA256SUMS",
      content: Buffer.from(`${sha256(parts.meta.content)}  meta.json\n${sha256(Buffer.from("other"))}  state.bin\n`),
    };
    const archive = await snapshotArchive(parts);
    await inspectSnapshot(chunked(archive, 512), { hashState: false });
    await rejectsWith(
      inspectSnapshot(chunked(archive, 512)),
      "SnapshotCorrupt",
      "checksums",
      /SHA-256 of "state\.bin"/,
    );
  });

  const stillChecked: { name: string; sums: (parts: ReturnType<typeof snapshotParts>) => string; message: RegExp }[] = [
    {
      name: "state.bin is not listed",
      sums: (p) => `${sha256(p.meta.content)}  meta.json\n`,
      message: /no checksum for "state\.bin"/,
    },
    {
      name: "meta.json does not match its checksum",
      sums: (p) => `${sha256(Buffer.from("other"))}  meta.json\n${sha256(p.state.content)}  state.bin\n`,
      message: /SHA-256 of "meta\.json"/,
    },
    {
      name: "a line is malformed",
      sums: (p) => `${sha256(p.meta.content)}  meta.json\nnot a line\n`,
      message: /line 2/,
    },
  ];
  for (const c of stillChecked) {
    test(`still rejects: ${c.name}`, async () => {
      const parts = snapshotParts();
      parts.sums = { name: "SHA256SUMS", content: Buffer.from(c.sums(parts)) };
      await rejectsWith(
        inspectSnapshot(chunked(await snapshotArchive(parts), 512), { hashState: false }),
        "SnapshotCorrupt",
        "checksums",
        c.message,
      );
    });
  }

  test("still rejects a damaged byte of state.bin through the gzip CRC-32, and a cut stream", async () => {
    const parts = snapshotParts({ state: pattern(64 * 1024) });
    const tar = await tarOf(membersOf(parts));
    const archive = gzipSync(tar);
    // Stored blocks keep state.bin's bytes as they are, so one can be flipped in place.
    const stored = gzipSync(tar, { level: 0 });
    const at = stored.indexOf(parts.state.content.subarray(0, 64)) + 1000;
    assert.ok(at > 1000, "state.bin found in the stored gzip stream");
    stored[at] = (stored[at] ?? 0) ^ 0x01;
    await rejectsWith(inspectSnapshot(chunked(stored, 4096), { hashState: false }), "SnapshotCorrupt", "gzip");
    await rejectsWith(
      inspectSnapshot(chunked(archive.subarray(0, archive.length - 100), 4096), { hashState: false }),
      "SnapshotTruncated",
      ["gzip", "tar"],
    );
  });
});

describe("snapshot archive inspector: members", () => {
  for (const missing of ["meta.json", "state.bin", "SHA256SUMS"]) {
    test(`rejects an archive without ${missing}`, async () => {
      const members = membersOf(snapshotParts()).filter((m) => m.name !== missing);
      const error = rejectsWith(
        inspectSnapshot(chunked(gz(await tarOf(members)), 512)),
        "SnapshotCorrupt",
        "missing-file",
        new RegExp(missing.replace(".", "\\.")),
      );
      await error;
    });
  }

  test("rejects an unexpected member, as OpenBao's reader does", async () => {
    const members: Member[] = [...membersOf(snapshotParts()), { name: "extra.txt", content: Buffer.from("hi") }];
    await rejectsWith(
      inspectSnapshot(chunked(gz(await tarOf(members)), 512)),
      "SnapshotCorrupt",
      "unexpected-file",
      /"extra\.txt"/,
    );
  });

  test("rejects a member named ./meta.json (names must match exactly)", async () => {
    const parts = snapshotParts();
    const members = membersOf(parts).map((m) => (m.name === "meta.json" ? { ...m, name: "./meta.json" } : m));
    await rejectsWith(inspectSnapshot(chunked(gz(await tarOf(members)), 512)), "SnapshotCorrupt", "unexpected-file");
  });

  test("rejects a duplicated member", async () => {
    const parts = snapshotParts();
    const members = [parts.meta, parts.state, parts.state, parts.sums];
    await rejectsWith(
      inspectSnapshot(chunked(gz(await tarOf(members)), 512)),
      "SnapshotCorrupt",
      "duplicate-file",
      /"state\.bin" appears twice/,
    );
  });

  test("rejects a directory where a file belongs", async () => {
    const parts = snapshotParts();
    const members: Member[] = [{ name: "meta.json", content: Buffer.alloc(0), type: "directory" }, parts.state];
    await rejectsWith(
      inspectSnapshot(chunked(gz(await tarOf(members)), 512)),
      "SnapshotCorrupt",
      "tar",
      /not a regular file/,
    );
  });

  test("rejects a meta.json too large to be one", async () => {
    const parts = snapshotParts();
    parts.meta = { name: "meta.json", content: Buffer.alloc(2 * 1024 * 1024, 0x20) };
    await rejectsWith(inspectSnapshot(chunked(await snapshotArchive(parts), 65536)), "SnapshotCorrupt", "too-large");
  });
});

describe("snapshot archive inspector: meta.json", () => {
  const cases: { name: string; meta: (stateSize: number) => Buffer; message: RegExp }[] = [
    { name: "not JSON", meta: () => Buffer.from("{not json"), message: /not valid JSON/ },
    { name: "not an object", meta: () => Buffer.from("[1,2]\n"), message: /not a JSON object/ },
    {
      name: "no Index",
      meta: (size) => Buffer.from(JSON.stringify({ Version: 1, Term: 3, Size: size })),
      message: /Index/,
    },
    {
      name: "a negative Term",
      meta: (size) => Buffer.from(JSON.stringify({ Version: 1, Index: 5, Term: -1, Size: size })),
      message: /Term/,
    },
    {
      name: "a Size that is not state.bin's",
      meta: (size) => goMeta({ index: 5, term: 1, size: size + 1 }),
      message: /says state\.bin is \d+ bytes but it is \d+/,
    },
  ];
  for (const c of cases) {
    test(`rejects meta.json with ${c.name} (checksums intact)`, async () => {
      const parts = snapshotParts();
      parts.meta = { name: "meta.json", content: c.meta(parts.state.content.length) };
      parts.sums = { name: "SHA256SUMS", content: sumsFor([parts.meta, parts.state]) };
      await rejectsWith(
        inspectSnapshot(chunked(await snapshotArchive(parts), 512)),
        "SnapshotCorrupt",
        "meta",
        c.message,
      );
    });
  }
});

describe("snapshot archive inspector: damaged, truncated and foreign streams", () => {
  test("rejects an empty stream as truncated", async () => {
    await rejectsWith(inspectSnapshot(chunked(Buffer.alloc(0), 1)), "SnapshotTruncated", "empty");
  });

  for (const cut of [
    { name: "after the gzip header", at: () => 10 },
    { name: "half-way", at: (n: number) => Math.floor(n / 2) },
    { name: "before the gzip trailer", at: (n: number) => n - 8 },
    { name: "one byte short", at: (n: number) => n - 1 },
  ]) {
    test(`rejects a gzip stream cut ${cut.name} as truncated`, async () => {
      const archive = await snapshotArchive(snapshotParts({ state: pattern(20000) }));
      await rejectsWith(
        inspectSnapshot(chunked(archive.subarray(0, cut.at(archive.length)), 1000)),
        "SnapshotTruncated",
        "gzip",
      );
    });
  }

  test("rejects a wrong gzip CRC", async () => {
    const archive = Buffer.from(await snapshotArchive(snapshotParts({ state: pattern(5000) })));
    archive.writeUInt32LE(archive.readUInt32LE(archive.length - 8) ^ 1, archive.length - 8);
    await rejectsWith(inspectSnapshot(chunked(archive, 1000)), "SnapshotCorrupt", "gzip", /damaged/);
  });

  test("rejects a wrong gzip length", async () => {
    const archive = Buffer.from(await snapshotArchive(snapshotParts({ state: pattern(5000) })));
    archive.writeUInt32LE(archive.readUInt32LE(archive.length - 4) + 1, archive.length - 4);
    await rejectsWith(inspectSnapshot(chunked(archive, 1000)), "SnapshotCorrupt", "gzip");
  });

  for (const foreign of [
    { name: "random bytes", bytes: () => pattern(4096) },
    { name: "an HTML error page", bytes: () => Buffer.from("<html><body>502 Bad Gateway</body></html>\n") },
    { name: "a JSON error", bytes: () => Buffer.from('{"errors":["permission denied"]}\n') },
  ]) {
    test(`rejects ${foreign.name} as not gzip`, async () => {
      await rejectsWith(inspectSnapshot(chunked(foreign.bytes(), 512)), "SnapshotCorrupt", "gzip", /not gzip/);
    });
  }

  test("rejects an uncompressed tar as not gzip", async () => {
    const tar = await tarOf(membersOf(snapshotParts()));
    await rejectsWith(inspectSnapshot(chunked(tar, 512)), "SnapshotCorrupt", "gzip", /not gzip/);
  });

  test("rejects gzip data that is not a tar archive", async () => {
    const text = Buffer.from("this is not a tar archive, just text\n".repeat(100));
    await rejectsWith(inspectSnapshot(chunked(gz(text), 512)), "SnapshotCorrupt", "tar", /not a tar archive/);
  });

  test("rejects zero bytes after the gzip stream (OpenBao's gzip reader fails on them too)", async () => {
    const archive = Buffer.concat([await snapshotArchive(), Buffer.alloc(100)]);
    await rejectsWith(inspectSnapshot(chunked(archive, 64)), "SnapshotCorrupt", "trailing-data", /100 bytes/);
  });

  test("rejects garbage after the gzip stream", async () => {
    const archive = Buffer.concat([await snapshotArchive(), Buffer.from("garbage after the end")]);
    // zlib may read the garbage as the header of a second gzip member ("gzip") before the
    // byte counts show it trails the stream ("trailing-data"): timing decides which is seen
    // first, and both reject the snapshot as corrupt.
    await rejectsWith(inspectSnapshot(chunked(archive, 64)), "SnapshotCorrupt", ["trailing-data", "gzip"]);
  });

  test("rejects a second gzip member carrying data after the tar end", async () => {
    const archive = Buffer.concat([await snapshotArchive(), gz(Buffer.from("appended"))]);
    await rejectsWith(inspectSnapshot(chunked(archive, 64)), "SnapshotCorrupt", "tar", /follows the tar end/);
  });

  test("rejects a tar without its end-of-archive marker as truncated", async () => {
    const tar = await tarOf(membersOf(snapshotParts()));
    await rejectsWith(
      inspectSnapshot(chunked(gz(tar.subarray(0, tar.length - 1024)), 512)),
      "SnapshotTruncated",
      "tar",
      /end-of-archive marker/,
    );
  });

  test("rejects a tar cut inside state.bin (cleanly gzipped) as truncated, naming the file", async () => {
    const parts = snapshotParts({ state: pattern(5000) });
    const tar = await tarOf(membersOf(parts));
    const cut = gz(tar.subarray(0, 512 + 1024 + 512 + 2000));
    await assert.rejects(inspectSnapshot(chunked(cut, 512)), (error: unknown) => {
      assert.ok(error instanceof SnapshotArchiveError);
      assert.equal(error.code, "SnapshotTruncated");
      assert.equal(error.file, "state.bin");
      return true;
    });
  });

  test("rejects a tar cut inside a header as truncated", async () => {
    const tar = await tarOf(membersOf(snapshotParts()));
    await rejectsWith(inspectSnapshot(chunked(gz(tar.subarray(0, 100)), 512)), "SnapshotTruncated", "tar", /header/);
  });

  test("rejects a damaged tar header (checksum)", async () => {
    const parts = snapshotParts();
    const tar = Buffer.from(await tarOf(membersOf(parts)));
    const secondHeader = 512 + Math.ceil(parts.meta.content.length / 512) * 512;
    tar[secondHeader + 3] = (tar[secondHeader + 3] ?? 0) ^ 0x01;
    await rejectsWith(inspectSnapshot(chunked(gz(tar), 512)), "SnapshotCorrupt", "tar", /header checksum/);
  });

  test("rejects a header after a single zero block", async () => {
    const parts = snapshotParts();
    const tar = Buffer.concat([
      handMadeMember(parts.meta),
      Buffer.alloc(512),
      handMadeMember(parts.state),
      endOfArchive,
    ]);
    await rejectsWith(inspectSnapshot(chunked(gz(tar), 512)), "SnapshotCorrupt", "tar", /zero block/);
  });

  test("rejects non-zero data after the end-of-archive marker", async () => {
    const tar = await tarOf(membersOf(snapshotParts()));
    await rejectsWith(
      inspectSnapshot(chunked(gz(Buffer.concat([tar, Buffer.from("junk")])), 512)),
      "SnapshotCorrupt",
      "tar",
      /follows the tar end/,
    );
  });
});

/** A sink that records what it received and whether it saw a clean end. */
function recordingSink(options: { delayMs?: number; highWaterMark?: number; onFinal?: () => string } = {}) {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  const sink = new Writable({
    highWaterMark: options.highWaterMark ?? 16384,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      if (options.delayMs) setTimeout(callback, options.delayMs);
      else callback();
    },
    final(callback) {
      events.push(options.onFinal ? `final:${options.onFinal()}` : "final");
      callback();
    },
  });
  return { sink, chunks, events };
}

describe("snapshot archive inspector: in the backup pipeline", () => {
  test("passes every byte through unchanged and ends downstream only after the verdict", async () => {
    const archive = await snapshotArchive(snapshotParts({ state: pattern(3 << 20) }));
    const tap = createTap();
    const inspector = createSnapshotInspector();
    const { sink, chunks, events } = recordingSink({ onFinal: () => (inspector.info ? "verified" : "unverified") });
    await pipeline(chunked(archive, 65536), tap, inspector, sink);
    assert.ok(Buffer.concat(chunks).equals(archive));
    assert.equal(tap.sha256(), sha256(archive));
    assert.equal((await inspector.result).compressedBytes, archive.length);
    assert.deepEqual(events, ["final:verified"], "the upload sees the end only after the archive is verified");
  });

  const failures: { name: string; archive: () => Promise<Buffer>; code: string }[] = [
    {
      name: "trap 3: a snapshot stream cut short reaches the upload as an error, never as a clean end of file",
      archive: async () => (await snapshotArchive(snapshotParts({ state: pattern(1 << 20) }))).subarray(0, 300_000),
      code: "SnapshotTruncated",
    },
    {
      name: "trap 3: a checksum failure found at the very end still reaches the upload as an error",
      archive: async () => {
        const parts = snapshotParts({ state: pattern(1 << 20) });
        parts.sums = { name: "SHA256SUMS", content: sumsFor([parts.meta, { name: "state.bin", content: pattern(1) }]) };
        return snapshotArchive(parts);
      },
      code: "SnapshotCorrupt",
    },
  ];
  for (const f of failures) {
    test(f.name, async () => {
      const inspector = createSnapshotInspector();
      const { sink, events } = recordingSink();
      await assert.rejects(pipeline(chunked(await f.archive(), 16384), createTap(), inspector, sink), {
        code: f.code,
      });
      await assert.rejects(inspector.result, { code: f.code });
      assert.deepEqual(events, [], "the sink must never see a clean end");
    });
  }

  test("trap 3: an upstream failure mid-stream (dropped connection) fails the pipeline and the result", async () => {
    const archive = await snapshotArchive(snapshotParts({ state: pattern(1 << 20) }));
    const dropped = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    const source = Readable.from(
      (function* () {
        yield archive.subarray(0, 100_000);
        throw dropped;
      })(),
    );
    const inspector = createSnapshotInspector();
    const { sink, events } = recordingSink();
    await assert.rejects(pipeline(source, inspector, sink), { code: "ECONNRESET" });
    await assert.rejects(inspector.result, { code: "ECONNRESET" });
    assert.deepEqual(events, []);
  });

  test("does not deadlock against a slow, small-buffered consumer", async () => {
    const archive = await snapshotArchive(snapshotParts({ state: pattern(2 << 20) }));
    const inspector = createSnapshotInspector();
    const { sink, chunks } = recordingSink({ delayMs: 1, highWaterMark: 1 });
    await pipeline(chunked(archive, 32768), inspector, sink, { signal: AbortSignal.timeout(20_000) });
    assert.ok(Buffer.concat(chunks).equals(archive));
    assert.equal((await inspector.result).stateSize, 2 << 20);
  });

  test("a result nobody awaits never becomes an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const inspector = createSnapshotInspector();
      inspector.on("error", () => {});
      inspector.destroy(new Error("aborted by caller"));
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  test("closed before the end without an error, the result rejects as truncated", async () => {
    const inspector = createSnapshotInspector();
    inspector.write((await snapshotArchive()).subarray(0, 100));
    inspector.destroy();
    await rejectsWith(inspector.result, "SnapshotTruncated", "tar", /closed before/);
  });
});

/** Feeds a buffer in chunks whose sizes cycle through `sizes`. */
function unevenly(buffer: Buffer, sizes: readonly number[]): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0, i = 0; offset < buffer.length; i++) {
        const size = sizes[i % sizes.length] ?? 1;
        yield buffer.subarray(offset, offset + size);
        offset += size;
      }
    })(),
    { objectMode: false },
  );
}

describe("snapshot archive inspector: synchronous decompression into a reused buffer", () => {
  // Output buffers from one byte (every byte of state.bin comes out separately) to larger
  // than the archive (everything at once), so a view of the reused buffer kept past its
  // turn would change the hash of state.bin and fail the SHA256SUMS check.
  for (const outputBytes of [1, 4096, 64 << 20]) {
    test(`damage in the gzip trailer fails before the end is passed on (output ${outputBytes})`, async () => {
      const archive = Buffer.from(await snapshotArchive(snapshotParts({ state: pattern(1 << 20) })));
      const crcAt = archive.length - 8;
      archive[crcAt] = (archive[crcAt] ?? 0) ^ 0xff;
      const inspector = createSnapshotInspector({ outputBytes });
      const { sink, events } = recordingSink();
      await assert.rejects(pipeline(chunked(archive, 16384), inspector, sink), { code: "SnapshotCorrupt" });
      await rejectsWith(inspector.result, "SnapshotCorrupt", "gzip");
      assert.deepEqual(events, [], "the sink must never see a clean end");
    });

    test(`a stream cut short fails as truncated (output ${outputBytes})`, async () => {
      const archive = await snapshotArchive(snapshotParts({ state: pattern(1 << 20) }));
      const inspector = createSnapshotInspector({ outputBytes });
      const { sink, events } = recordingSink();
      await assert.rejects(pipeline(chunked(archive.subarray(0, archive.length - 10), 16384), inspector, sink), {
        code: "SnapshotTruncated",
      });
      assert.deepEqual(events, []);
    });

    test(`uneven chunks verify and pass through unchanged (output ${outputBytes})`, async () => {
      const state = pattern(outputBytes === 1 ? 256 << 10 : 3 << 20);
      const archive = await snapshotArchive(snapshotParts({ state }));
      const inspector = createSnapshotInspector({ outputBytes });
      const { sink, chunks } = recordingSink();
      await pipeline(unevenly(archive, [1, 7, 4095, 4097, 100, 3 * 4096 + 5, 20_000, 3]), inspector, sink);
      assert.ok(Buffer.concat(chunks).equals(archive));
      const info = await inspector.result;
      assert.equal(info.stateSize, state.length);
      assert.equal(info.compressedBytes, archive.length);
      assert.equal(info.files.find((f) => f.name === "state.bin")?.sha256, sha256(state));
    });
  }

  test("trailing zeros are trailing data", async () => {
    const archive = Buffer.concat([await snapshotArchive(), Buffer.alloc(100)]);
    await rejectsWith(inspectSnapshot(chunked(archive, 64)), "SnapshotCorrupt", "trailing-data", /100 bytes/);
  });

  test("a damaged chunk is never passed on: the sink stops before it", async () => {
    const archive = Buffer.from(await snapshotArchive(snapshotParts({ state: pattern(1 << 20) })));
    // A stored deflate block header, broken: zlib fails on the chunk that carries it.
    archive[10] = 0xff;
    const inspector = createSnapshotInspector();
    const { sink, chunks } = recordingSink();
    await assert.rejects(pipeline(chunked(archive, 4096), inspector, sink), { code: "SnapshotCorrupt" });
    assert.equal(Buffer.concat(chunks).length, 0, "the first chunk is damaged: nothing goes downstream");
  });
});
