/**
 * Backups changed the way someone who knows the format would change them, for restore and
 * restore-drill tests (test/executor/drill.test.ts, failures.test.ts, test/node/drill.test.ts):
 * the archive rebuilt with its checksums recomputed (or deliberately not), values changed where
 * only decryption can tell, and a manifest rewritten to match whatever was stored.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { extract } from "tar-stream";
import { parseManifest, serializeManifest } from "../../src/snapshot/manifest.ts";
import { type Member, sumsFor, tarOf } from "../unit/snapshot/fixtures.ts";

export async function archiveMembers(archive: Buffer): Promise<Member[]> {
  const members: Member[] = [];
  const reader = extract();
  const done = (async () => {
    for await (const entry of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      members.push({ name: entry.header.name, content: Buffer.concat(chunks) });
    }
  })();
  reader.end(gunzipSync(archive));
  await done;
  return members;
}

/**
 * The archive rebuilt with `change` applied to state.bin and SHA256SUMS recomputed to match,
 * as someone would who knows the format: every check that does not need the cluster's keys
 * passes. SHA256SUMS.sealed is kept as it was (only the source's seal can open or redo it).
 * With `sums: "kept"`, SHA256SUMS stays as it was too, so state.bin no longer matches it.
 */
export async function repacked(
  archive: Buffer,
  change: (state: Buffer) => Buffer,
  options: { sums: "recomputed" | "kept" } = { sums: "recomputed" },
): Promise<Buffer> {
  const members = await archiveMembers(archive);
  const meta = members.find((m) => m.name === "meta.json");
  const state = members.find((m) => m.name === "state.bin");
  const sums = members.find((m) => m.name === "SHA256SUMS");
  assert.ok(meta && state && sums, `a Raft snapshot: ${members.map((m) => m.name).join(", ")}`);
  state.content = change(state.content);
  if (options.sums === "recomputed") sums.content = sumsFor([meta, state]);
  return gzipSync(await tarOf(members));
}

/** The store a tampered backup is written to (an executor-tier target). */
interface Store {
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, body: Buffer): Promise<void>;
}

/**
 * Stores `bytes` under `key` with the manifest of the backup `from`, its key, size and SHA-256
 * rewritten to match them: a tampered backup that passes every manifest check.
 */
export async function storeWithMatchingManifest(store: Store, from: string, key: string, bytes: Buffer): Promise<void> {
  const manifest = parseManifest(String(await store.get(`${from}.json`)));
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await store.put(key, bytes);
  await store.put(`${key}.json`, Buffer.from(serializeManifest({ ...manifest, key, size: bytes.length, sha256 })));
}

function varint(bytes: Buffer, offset: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  let next = offset;
  for (;;) {
    const byte = bytes[next++] ?? 0;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return { value, next };
  }
}

/**
 * OpenBao's FSM state (state.bin) is a sequence of length-delimited StorageEntry messages
 * (field 1 key, field 2 value). Flips the last byte — the AES-GCM tag — of every KV v2 version
 * value: lengths and structure unchanged, so only decryption can tell.
 */
export function flipKvVersionValues(state: Buffer): Buffer {
  const out = Buffer.from(state);
  let flipped = 0;
  for (let offset = 0; offset < out.length; ) {
    const message = varint(out, offset);
    const end = message.next + message.value;
    let key = "";
    for (let field = message.next; field < end; ) {
      const tag = out[field] ?? 0;
      const length = varint(out, field + 1);
      const start = length.next;
      if (tag === 0x0a) key = out.subarray(start, start + length.value).toString("latin1");
      if (tag === 0x12 && /^logical\/[^/]+\/[^/]+\/versions\//.test(key) && length.value > 0) {
        out[start + length.value - 1] = (out[start + length.value - 1] ?? 0) ^ 0xff;
        flipped++;
      }
      field = start + length.value;
    }
    offset = end;
  }
  assert.ok(flipped > 0, "the snapshot holds KV versions to change");
  return out;
}
