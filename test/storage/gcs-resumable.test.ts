/**
 * GCS uploads through resumable sessions whose chunks this product sends (gcs/resumable.ts),
 * against a real fake-gcs-server behind the wire proxy: the chunks on the wire, a dropped chunk
 * resumed from where the session got to, and a session that keeps failing given up after the
 * library's retries, cancelled.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isStorageError } from "../../src/storage/errors.ts";
import { superviseServers } from "../servers/process.ts";
import { contractContext } from "./contract.ts";
import { generate, sha256Of } from "./data.ts";

superviseServers();

const MiB = 1024 * 1024;

describe("gcs: resumable chunks", () => {
  const ctx = contractContext("gcs");
  const open = () => ctx.open({ partSize: 5 * MiB, concurrency: 3, viaProxy: true });
  const chunkRequests = () => ctx.proxy.records.filter((r) => ctx.server.isPartRequest(r.method, r.url));

  test("chunks go one at a time, each but the last open-ended, the last naming the size", async () => {
    ctx.proxy.reset();
    const data = generate(12 * MiB + 7);
    await open().upload("wire/object", data.source);
    const chunks = chunkRequests();
    assert.deepEqual(
      chunks.map((r) => [r.bodyBytes, r.headers["content-range"]]),
      [
        [5 * MiB, `bytes 0-${5 * MiB - 1}/*`],
        [5 * MiB, `bytes ${5 * MiB}-${10 * MiB - 1}/*`],
        [2 * MiB + 7, `bytes ${10 * MiB}-${12 * MiB + 6}/${12 * MiB + 7}`],
      ],
    );
    assert.equal(
      ctx.proxy.maxConcurrent((r) => ctx.server.isPartRequest(r.method, r.url)),
      1,
    );
    assert.ok(
      chunks.every((r) => r.headers.expect === undefined),
      "no Expect: 100-continue",
    );
    assert.equal((await sha256Of(await open().download("wire/object"))).sha256, data.sha256());
  });

  test("a dropped chunk: the session is asked how far it got; an object finalized early is deleted", async () => {
    // GCS answers a status question (`bytes */*`) with the bytes it holds and the upload goes on
    // from there (nextStep, unit-tested). fake-gcs-server instead finalizes the object with
    // what it has: exactly the early, partial object the product must never leave behind.
    ctx.proxy.reset();
    let seen = 0;
    ctx.proxy.failWhen = (req) => ctx.server.isPartRequest(req.method ?? "", req.url ?? "") && ++seen === 2;
    try {
      await assert.rejects(open().upload("retry/object", generate(12 * MiB).source), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.match(err.message, /finalized the object at byte 10485760, before its last part/);
        return true;
      });
    } finally {
      ctx.proxy.failWhen = undefined;
    }
    assert.deepEqual(
      chunkRequests().map((r) => r.headers["content-range"]),
      [
        `bytes 0-${5 * MiB - 1}/*`,
        `bytes ${5 * MiB}-${10 * MiB - 1}/*`, // dropped by the proxy
        "bytes */*", // how far did the session get?
      ],
    );
    assert.equal(await open().head("retry/object"), null, "the early object was deleted");
  });

  test("a session that keeps failing is given up after the retries, cancelled, and leaves no object", async () => {
    ctx.proxy.reset();
    ctx.proxy.failWhen = (req) => ctx.server.isPartRequest(req.method ?? "", req.url ?? "");
    try {
      await assert.rejects(open().upload("failing/object", generate(8 * MiB).source), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.operation, "upload");
        return true;
      });
    } finally {
      ctx.proxy.failWhen = undefined;
    }
    // The first chunk and 3 retries, each retry after a status question (also dropped).
    assert.equal(chunkRequests().length, 1 + 3 * 2);
    assert.ok(
      ctx.proxy.records.some((r) => r.method === "DELETE" && /[?&]upload_id=/.test(r.url)),
      "the session was cancelled",
    );
    assert.equal(await open().head("failing/object"), null);
  });
});
