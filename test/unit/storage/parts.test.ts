/**
 * Part planning (src/storage/parts.ts), the arithmetic alone: the configured part size, raised
 * when a known size (`contentLength`) or an expected one (`sizeHint`, the operator's last
 * backup size × 2) would need more parts than the provider allows; the refusal of a part size
 * no provider accepts; and the error for a stream that outgrows its plan. The same paths
 * through the shared upload, with a plain sink: uploadObject below; against a real MinIO:
 * test/storage/size-hint.test.ts.
 */
import assert from "node:assert/strict";
import type { Readable } from "node:stream";
import { describe, test } from "node:test";
import { StorageError } from "../../../src/storage/errors.ts";
import {
  type PartLimits,
  type PartPlan,
  partLimits,
  planParts,
  tooManyPartsError,
} from "../../../src/storage/parts.ts";
import { uploadObject } from "../../../src/storage/upload.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function tooLarge(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof StorageError, String(err));
    assert.equal(err.code, "TooLarge");
    assert.match(err.message, pattern);
    return true;
  };
}

describe("planParts with a known size (contentLength)", () => {
  test("uses the configured size when the size is unknown or fits", () => {
    assert.deepEqual(planParts("s3", 10 * MiB), { partSize: 10 * MiB, maxBytes: 10 * MiB * 10_000 });
    assert.equal(planParts("s3", 10 * MiB, { contentLength: 10 * MiB * 10_000 }).partSize, 10 * MiB);
    assert.equal(planParts("azure", 10 * MiB, { contentLength: 10 * MiB * 50_000 }).partSize, 10 * MiB);
  });

  test("raises the part size (to a whole MiB) when a known size needs more than 10,000 S3 parts", () => {
    const size = 10 * MiB * 10_000 + 1;
    const plan = planParts("s3", 10 * MiB, { contentLength: size });
    assert.equal(plan.partSize, 11 * MiB);
    assert.ok(Math.ceil(size / plan.partSize) <= 10_000);
    assert.equal(planParts("s3", 5 * MiB, { contentLength: 200 * GiB }).partSize, 21 * MiB);
  });

  test("Azure allows 50,000 blocks before raising", () => {
    assert.equal(planParts("azure", 5 * MiB, { contentLength: 200 * GiB }).partSize, 5 * MiB);
    assert.equal(planParts("azure", 5 * MiB, { contentLength: 300 * GiB }).partSize, 7 * MiB);
  });

  test("GCS chunks are rounded up to 256 KiB and never limited in count", () => {
    const plan = planParts("gcs", 5 * MiB + 1);
    assert.equal(plan.partSize, 5 * MiB + 256 * KiB);
    assert.equal(plan.maxBytes, Number.POSITIVE_INFINITY);
    assert.equal(planParts("gcs", 10 * MiB, { contentLength: 4 * 1024 * GiB }).partSize, 10 * MiB);
  });

  test("refuses an object larger than the provider can store, naming its size", () => {
    const limits = partLimits.s3;
    assert.throws(
      () => planParts("s3", 10 * MiB, { contentLength: limits.maxParts * limits.maxPartSize + 1 }),
      tooLarge(/^s3 upload of 48\.8 TiB needs parts of 5\.0 GiB, more than the 5 GiB s3 accepts/),
    );
  });
});

describe("planParts with an expected size (sizeHint)", () => {
  test("a hint that fits 10,000 parts of the configured size changes nothing", () => {
    // 97.7 GiB: the most 10 MiB parts hold, the S3 limit at the default part size.
    const atLimit = 10 * MiB * 10_000;
    for (const sizeHint of [1, 60 * GiB, atLimit]) {
      assert.deepEqual(planParts("s3", 10 * MiB, { sizeHint }), {
        partSize: 10 * MiB,
        maxBytes: atLimit,
        sizeHint,
      });
    }
  });

  test("a hint past the limit raises the part size to the smallest whole MiB that fits it", () => {
    const plan = planParts("s3", 10 * MiB, { sizeHint: 10 * MiB * 10_000 + 1 });
    assert.equal(plan.partSize, 11 * MiB);
    assert.equal(plan.maxBytes, 11 * MiB * 10_000);
    // The operator's hint for a 60 GiB last backup: 120 GiB → ⌈12.29 MiB⌉ = 13 MiB parts, up to 127 GiB.
    const hinted = planParts("s3", 10 * MiB, { sizeHint: 2 * 60 * GiB });
    assert.equal(hinted.partSize, 13 * MiB);
    assert.ok(hinted.maxBytes >= 2 * 60 * GiB);
    assert.ok((hinted.partSize - MiB) * 10_000 < 2 * 60 * GiB, "one MiB less would not fit");
  });

  test("rounds exactly as for a known size", () => {
    for (const provider of ["s3", "azure", "gcs"] as const) {
      for (const size of [1, 5 * MiB, 97 * GiB, 10 * MiB * 10_000 + 1, 200 * GiB, 300 * GiB, 2 * 1024 * GiB]) {
        for (const configured of [5 * MiB, 10 * MiB, 10 * MiB + 1]) {
          const known = planParts(provider, configured, { contentLength: size });
          const hinted = planParts(provider, configured, { sizeHint: size });
          assert.equal(hinted.partSize, known.partSize, `${provider}, ${size} bytes, parts of ${configured}`);
          assert.equal(hinted.maxBytes, known.maxBytes);
        }
      }
    }
  });

  test("Azure raises only past 50,000 blocks", () => {
    assert.equal(planParts("azure", 5 * MiB, { sizeHint: 5 * MiB * 50_000 }).partSize, 5 * MiB);
    assert.equal(planParts("azure", 5 * MiB, { sizeHint: 200 * GiB }).partSize, 5 * MiB);
    // 300 GiB / 50,000 = 6.14 MiB → 7 MiB.
    const plan = planParts("azure", 5 * MiB, { sizeHint: 300 * GiB });
    assert.equal(plan.partSize, 7 * MiB);
    assert.equal(plan.maxBytes, 7 * MiB * 50_000);
  });

  test("GCS has no part limit: a hint never raises its chunk, which stays a multiple of 256 KiB", () => {
    const plan = planParts("gcs", 5 * MiB + 1, { sizeHint: 4 * 1024 * GiB });
    assert.equal(plan.partSize, 5 * MiB + 256 * KiB);
    assert.equal(plan.maxBytes, Number.POSITIVE_INFINITY);
  });

  test("a raised size is a whole MiB, then a multiple of the provider's granularity", () => {
    // Lowered limits (as a test store gets them) make GCS raise: 21 MiB / 4 = 5.25 MiB → 6 MiB.
    const gcs: PartLimits = { ...partLimits.gcs, maxParts: 4 };
    assert.deepEqual(planParts("gcs", 5 * MiB, { sizeHint: 21 * MiB }, gcs), {
      partSize: 6 * MiB,
      maxBytes: 24 * MiB,
      sizeHint: 21 * MiB,
    });
    // A granularity coarser than a MiB rounds again: 6 MiB → 8 MiB, a multiple of 4 MiB.
    const coarse: PartLimits = { maxParts: 4, maxPartSize: GiB, granularity: 4 * MiB };
    assert.equal(planParts("gcs", 4 * MiB, { sizeHint: 21 * MiB }, coarse).partSize, 8 * MiB);
    // The lowered S3 limit of test/storage/size-hint.test.ts: 12 MiB in 2 parts of 6 MiB.
    const s3: PartLimits = { ...partLimits.s3, maxParts: 2 };
    assert.deepEqual(planParts("s3", 5 * MiB, { sizeHint: 12 * MiB }, s3), {
      partSize: 6 * MiB,
      maxBytes: 12 * MiB,
      sizeHint: 12 * MiB,
    });
    assert.deepEqual(planParts("s3", 5 * MiB, {}, s3), { partSize: 5 * MiB, maxBytes: 10 * MiB });
  });

  test("a known size wins over a hint", () => {
    assert.deepEqual(planParts("s3", 10 * MiB, { contentLength: MiB, sizeHint: 1024 * GiB }), {
      partSize: 10 * MiB,
      maxBytes: 10 * MiB * 10_000,
    });
  });

  test("a hint that would need parts larger than the provider accepts is TooLarge, naming the size", () => {
    const s3 = partLimits.s3;
    // Exactly 10,000 parts of 5 GiB still fit.
    assert.equal(planParts("s3", 10 * MiB, { sizeHint: s3.maxParts * s3.maxPartSize }).partSize, 5 * GiB);
    assert.throws(
      () => planParts("s3", 10 * MiB, { sizeHint: s3.maxParts * s3.maxPartSize + 1 }),
      tooLarge(
        /^s3 upload expected to be 48\.8 TiB \(size hint\) needs parts of 5\.0 GiB, more than the 5 GiB s3 accepts \(10,000 parts at most\)$/,
      ),
    );
    const azure = partLimits.azure;
    assert.throws(
      () => planParts("azure", 10 * MiB, { sizeHint: azure.maxParts * azure.maxPartSize + 1 }),
      tooLarge(/^azure upload expected to be 190\.7 TiB \(size hint\) needs parts of 3\.9 GiB, more than the 3\.9 GiB/),
    );
  });

  test("a hint that is not a positive whole number of bytes is a programming error", () => {
    for (const sizeHint of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(() => planParts("s3", 10 * MiB, { sizeHint }), TypeError, String(sizeHint));
    }
  });
});

describe("tooManyPartsError", () => {
  test("names the limit it reached, and tells to raise target.partSize", () => {
    const err = tooManyPartsError("s3", planParts("s3", 10 * MiB), "k.snap");
    assert.equal(err.code, "TooLarge");
    assert.equal(
      err.message,
      "s3 upload k.snap: the stream passed 97.7 GiB (10,000 parts of 10 MiB, the most one s3 object can have) " +
        "before it ended; raise target.partSize so that partSize × 10,000 exceeds the largest snapshot",
    );
  });

  test("after a hint, says the snapshot outgrew the size the part size was planned for", () => {
    const plan = planParts("s3", 10 * MiB, { sizeHint: 120 * GiB });
    const err = tooManyPartsError("s3", plan, "k.snap");
    assert.equal(
      err.message,
      "s3 upload k.snap: the stream passed 127.0 GiB (10,000 parts of 13 MiB, the most one s3 object can have) " +
        "before it ended; the part size was planned for the expected 120 GiB (size hint), and the snapshot outgrew it; " +
        "raise target.partSize so that partSize × 10,000 exceeds the largest snapshot",
    );
  });

  test("counts the parts of the plan, lowered limits included", () => {
    const plan: PartPlan = planParts("azure", 5 * MiB, {}, { ...partLimits.azure, maxParts: 3 });
    assert.match(tooManyPartsError("azure", plan, "k").message, /\(3 parts of 5 MiB,.*partSize × 3 exceeds/);
  });
});

describe("uploadObject plans with the hint and the store's limits", () => {
  async function* chunks(count: number, size: number): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < count; i++) yield new Uint8Array(size).fill(i);
  }

  /** The shared upload with a sink for an SDK: records the plan it was given and the bytes it read. */
  function upload(bytes: number, sizeHint: number | undefined, limits: PartLimits) {
    const seen = { plan: undefined as PartPlan | undefined, bytes: 0, ended: false, pulled: 0 };
    async function* source(): AsyncGenerator<Uint8Array> {
      for await (const chunk of chunks(bytes / MiB, MiB)) {
        seen.pulled += chunk.byteLength;
        yield chunk;
      }
    }
    const result = uploadObject({
      provider: "s3",
      key: "k.snap",
      source: source(),
      options: sizeHint === undefined ? {} : { sizeHint },
      configuredPartSize: 5 * MiB,
      limits,
      send: async (body: Readable, plan) => {
        seen.plan = plan;
        for await (const chunk of body) seen.bytes += (chunk as Buffer).length;
        seen.ended = true;
      },
      discard: async () => {},
      toError: (err) => new StorageError("Other", String(err), { cause: err }),
    });
    return { result, seen };
  }

  const lowered: PartLimits = { ...partLimits.s3, maxParts: 2 };

  test("without a hint, 12 MiB is refused at 10 MiB (2 parts of 5 MiB), before the end", async () => {
    const { result, seen } = upload(12 * MiB, undefined, lowered);
    await assert.rejects(result, tooLarge(/passed 10 MiB \(2 parts of 5 MiB.*raise target\.partSize/));
    assert.equal(seen.ended, false);
    assert.ok(seen.bytes <= 10 * MiB, `the SDK read ${seen.bytes} bytes`);
    assert.ok(seen.pulled < 12 * MiB, `the source gave ${seen.pulled} bytes`);
  });

  test("with the hint, the part size is raised to 6 MiB and 12 MiB goes through", async () => {
    const { result, seen } = upload(12 * MiB, 12 * MiB, lowered);
    assert.deepEqual(await result, { key: "k.snap", size: 12 * MiB, partSize: 6 * MiB });
    assert.deepEqual(seen.plan, { partSize: 6 * MiB, maxBytes: 12 * MiB, sizeHint: 12 * MiB });
    assert.equal(seen.bytes, 12 * MiB);
  });

  test("a stream that outgrows its hint is refused past partSize × maxParts, the message naming the hint", async () => {
    const { result, seen } = upload(14 * MiB, 11 * MiB, lowered);
    await assert.rejects(result, tooLarge(/passed 12 MiB \(2 parts of 6 MiB.*expected 11 MiB \(size hint\)/));
    assert.equal(seen.ended, false);
    assert.ok(seen.pulled < 14 * MiB);
  });
});
