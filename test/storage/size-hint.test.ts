/**
 * Issue 18 item 4, "any size", against a real MinIO: the S3 store built with its part limit
 * lowered from 10,000 to 2 parts (StoreOptions.partLimits, the real upload path), so that a
 * 12 MiB object crosses it with 5 MiB parts as a 97.7 GiB snapshot crosses 10,000 parts of
 * 10 MiB. Without a size hint the upload is refused before its end, nothing left behind;
 * with the hint the part size is raised (6 MiB, seen on the wire) and the object is stored
 * whole; a stream that outgrows its hint is refused, the message naming the hint. What is
 * left on the server is checked with the official SDK (openUploads). The arithmetic alone is
 * in test/unit/storage/parts.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { isStorageError } from "../../src/storage/errors.ts";
import type { UploadOptions } from "../../src/storage/object-store.ts";
import { partLimits } from "../../src/storage/parts.ts";
import { S3ObjectStore } from "../../src/storage/s3/store.ts";
import { parseTarget, type S3Target } from "../../src/storage/target.ts";
import { superviseServers } from "../servers/process.ts";
import { type StorageServer, startStorageServer } from "../servers/storage.ts";
import { generate, sha256Of } from "./data.ts";
import { startWireProxy, type WireProxy } from "./wire-proxy.ts";

superviseServers();

const MiB = 1024 * 1024;
const bucket = "size-hint";

describe("s3: a size hint raises the part size before the part limit (MinIO, limit lowered to 2 parts)", () => {
  let server: StorageServer;
  let proxy: WireProxy;
  let store: S3ObjectStore;

  before(async () => {
    server = await startStorageServer("s3");
    await server.createBucket(bucket);
    proxy = await startWireProxy(server.endpoint);
    const target = parseTarget(server.target(bucket, { endpoint: proxy.url, partSize: 5 * MiB, concurrency: 2 }));
    store = new S3ObjectStore(target as S3Target, server.credentials, {
      partLimits: { ...partLimits.s3, maxParts: 2 },
    });
  });
  after(async () => {
    await store?.close();
    await proxy?.stop();
    await server?.stop();
  });

  /** Part uploads on the wire since the last reset: their body sizes. */
  const partsOnTheWire = (): number[] =>
    proxy.records
      .filter((r) => server.isPartRequest(r.method, r.url) && r.status !== undefined)
      .map((r) => r.bodyBytes);

  async function assertNothingLeft(key: string): Promise<void> {
    assert.equal(await store.head(key), null, `an object was left under ${key}`);
    assert.deepEqual(await server.openUploads(bucket, key), [], "a multipart upload was left open");
  }

  async function refused(key: string, size: number, options: UploadOptions, message: RegExp): Promise<void> {
    const data = generate(size);
    proxy.reset();
    await assert.rejects(store.upload(key, data.source, options), (err) => {
      assert.ok(isStorageError(err), String(err));
      assert.equal(err.code, "TooLarge", err.message);
      assert.match(err.message, message);
      return true;
    });
    // Refused early: the source was not read to its end, and less than the object went out.
    assert.ok(data.produced() < size, `the source gave all ${data.produced()} bytes`);
    const sent = partsOnTheWire().reduce((a, b) => a + b, 0);
    assert.ok(sent < size, `${sent} bytes of parts were sent`);
    await assertNothingLeft(key);
  }

  test("without a hint, 12 MiB is refused with TooLarge once it passes 2 parts of 5 MiB", async () => {
    await refused(
      "no-hint/12MiB.snap",
      12 * MiB,
      {},
      /^s3 upload no-hint\/12MiB\.snap: the stream passed 10 MiB \(2 parts of 5 MiB, .*raise target\.partSize/,
    );
  });

  test("with sizeHint 12 MiB, parts of 6 MiB carry it: stored whole, HEAD says 12 MiB", async () => {
    const key = "hint/12MiB.snap";
    const data = generate(12 * MiB);
    proxy.reset();
    const result = await store.upload(key, data.source, { sizeHint: 12 * MiB, contentType: "application/gzip" });
    assert.deepEqual(result, { key, size: 12 * MiB, partSize: 6 * MiB });
    assert.deepEqual(partsOnTheWire(), [6 * MiB, 6 * MiB], "part sizes on the wire");
    const head = await store.head(key);
    assert.equal(head?.size, 12 * MiB);
    const down = await sha256Of(await store.download(key));
    assert.equal(down.sha256, data.sha256(), "downloaded bytes differ from uploaded bytes");
    assert.deepEqual(await server.openUploads(bucket, key), []);
  });

  test("a stream that outgrows its hint is still refused early, the message naming the hint", async () => {
    // 11 MiB → parts of 6 MiB (⌈5.5⌉), so at most 12 MiB: 13 MiB does not fit.
    await refused(
      "outgrown/13MiB.snap",
      13 * MiB,
      { sizeHint: 11 * MiB },
      /passed 12 MiB \(2 parts of 6 MiB, .*expected 11 MiB \(size hint\).*raise target\.partSize/,
    );
  });
});
