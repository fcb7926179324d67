/**
 * Each S3 part's checksum (src/storage/s3/multipart.ts): its CRC32, base64 of the big-endian
 * value, as the header carries it and CompleteMultipartUpload lists it. What reaches MinIO
 * (unsigned payload, the signed CRC32 header, over HTTP and HTTPS) is tested on the wire in
 * test/storage/s3-multipart.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { partChecksum, uploadChecksumAlgorithm } from "../../../src/storage/s3/multipart.ts";

describe("S3 part checksums", () => {
  test("CRC32 is the algorithm every upload names", () => {
    assert.equal(uploadChecksumAlgorithm, "CRC32");
  });

  test("a part's CRC32, base64 of the big-endian value, also what Complete lists", () => {
    const body = Buffer.from("the bytes of one part");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    const d = partChecksum(crc32(body));
    assert.equal(d.checksum, crc.toString("base64"));
    assert.deepEqual(d.completed, { ChecksumCRC32: crc.toString("base64") });
  });

  test("a CRC32 with its high bit set is not negative (the unsigned value is encoded)", () => {
    // Find a body whose CRC32 is ≥ 2^31, where a signed write would throw or encode wrongly.
    let body = Buffer.from("x");
    for (let i = 0; crc32(body) < 0x80000000; i++) body = Buffer.from(`x${i}`);
    assert.equal(Buffer.from(partChecksum(crc32(body)).checksum, "base64").readUInt32BE(), crc32(body));
  });

  test("the empty part", () => {
    assert.equal(partChecksum(crc32(Buffer.alloc(0))).checksum, "AAAAAA==");
  });
});
