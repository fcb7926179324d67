/**
 * storage/gcs/resumable.ts, the pure parts: what the session's answers mean for the next
 * request (GCS's resumable protocol: 308 with the bytes held, 200/201 once final), and the
 * headers' formats. The requests themselves run against fake-gcs-server
 * (test/storage/gcs-resumable.test.ts, and the storage contract).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  contentRange,
  GcsHttpError,
  isRetryable,
  nextStep,
  type PartSpan,
  persistedBytes,
} from "../../../src/storage/gcs/resumable.ts";

const MiB = 1024 * 1024;
const middle: PartSpan = { start: 10 * MiB, end: 15 * MiB, last: false };
const final: PartSpan = { start: 15 * MiB, end: 17 * MiB, last: true };

describe("gcs resumable: the next step after the session's answer", () => {
  test("a part but the last is done once the session holds all of it", () => {
    assert.deepEqual(nextStep(middle, middle.start, { kind: "holds", bytes: middle.end }, "send"), { kind: "done" });
    assert.deepEqual(nextStep(middle, middle.start, { kind: "holds", bytes: middle.end }, "status"), {
      kind: "done",
    });
  });

  test("bytes the session did not keep are sent again from where it got to", () => {
    assert.deepEqual(nextStep(middle, middle.start, { kind: "holds", bytes: 12 * MiB }, "send"), {
      kind: "send",
      from: 12 * MiB,
    });
    // After a failed send, the status question may show the session kept nothing of the part.
    assert.deepEqual(nextStep(middle, 12 * MiB, { kind: "holds", bytes: middle.start }, "status"), {
      kind: "send",
      from: middle.start,
    });
  });

  test("a send the session kept nothing of fails instead of being repeated forever", () => {
    const next = nextStep(middle, 12 * MiB, { kind: "holds", bytes: 12 * MiB }, "send");
    assert.equal(next.kind, "fail");
  });

  test("the session holding fewer bytes than it had confirmed fails: those bytes are gone", () => {
    const next = nextStep(middle, middle.start, { kind: "holds", bytes: 3 * MiB }, "status");
    assert.deepEqual(next, {
      kind: "fail",
      reason: `the session holds ${3 * MiB} bytes, fewer than the ${10 * MiB} it had confirmed`,
    });
  });

  test("the last part is done only once finalized; holding all of it without that means: finalize", () => {
    assert.deepEqual(nextStep(final, final.start, { kind: "finalized" }, "send"), { kind: "done" });
    assert.deepEqual(nextStep(final, final.start, { kind: "holds", bytes: final.end }, "send"), {
      kind: "send",
      from: final.end,
    });
    // The empty finalizing request answered with 308 again: no progress, no loop.
    assert.equal(nextStep(final, final.end, { kind: "holds", bytes: final.end }, "send").kind, "fail");
  });

  test("an object finalized before its last part is a failure (its caller deletes it)", () => {
    assert.deepEqual(nextStep(middle, middle.start, { kind: "finalized" }, "status"), {
      kind: "fail",
      reason: `the store finalized the object at byte ${15 * MiB}, before its last part`,
    });
  });

  test("no usable answer to the status question: the same bytes again", () => {
    assert.deepEqual(nextStep(middle, 12 * MiB, { kind: "unknown" }, "status"), { kind: "send", from: 12 * MiB });
  });
});

describe("gcs resumable: which failures are tried again", () => {
  test("no answer, 408, 429 and 5xx are; the store's refusals (403, 404, 410 expired session) are not", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    assert.equal(isRetryable(reset), true);
    for (const status of [408, 429, 500, 503]) assert.equal(isRetryable(new GcsHttpError("x", status, {})), true);
    for (const status of [400, 403, 404, 410]) assert.equal(isRetryable(new GcsHttpError("x", status, {})), false);
  });
});

describe("gcs resumable: headers", () => {
  test("Content-Range: open-ended, final, and the empty final of an empty object", () => {
    assert.equal(contentRange(0, 5 * MiB, undefined), `bytes 0-${5 * MiB - 1}/*`);
    assert.equal(contentRange(5 * MiB, 7 * MiB, 7 * MiB), `bytes ${5 * MiB}-${7 * MiB - 1}/${7 * MiB}`);
    assert.equal(contentRange(0, 0, 0), "bytes */0");
    assert.equal(contentRange(7 * MiB, 7 * MiB, 7 * MiB), `bytes */${7 * MiB}`);
  });

  test("Range of a 308: the bytes held; none without the header", () => {
    assert.equal(persistedBytes({ headers: { range: "bytes=0-5242879" } }), 5 * MiB);
    assert.equal(persistedBytes({ headers: {} }), 0);
    assert.equal(persistedBytes({ headers: { range: "bytes=7-9" } }), 0, "not a prefix: holds nothing usable");
  });
});
