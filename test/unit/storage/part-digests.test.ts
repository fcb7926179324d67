/**
 * Which checksum an S3 upload carries, and each part's digests (src/storage/s3/multipart.ts):
 * one SHA-256 per part over plain HTTP (signature and checksum), CRC32 and an unsigned payload
 * over HTTPS. What reaches MinIO is tested on the wire in test/storage/s3-multipart.test.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { checksumAlgorithmFor, partDigests } from "../../../src/storage/s3/multipart.ts";

const body = Buffer.from("the bytes of one part");
const sha = createHash("sha256").update(body).digest();
const crc = Buffer.alloc(4);
crc.writeUInt32BE(crc32(body) >>> 0);

describe("S3 part checksums", () => {
  test("SHA-256 for a plain http:// endpoint, CRC32 for https:// and for AWS's own (no endpoint)", () => {
    assert.equal(checksumAlgorithmFor("http://minio.storage:9000"), "SHA256");
    assert.equal(checksumAlgorithmFor("HTTP://MINIO:9000"), "SHA256");
    assert.equal(checksumAlgorithmFor("https://minio.storage:9000"), "CRC32");
    assert.equal(checksumAlgorithmFor(undefined), "CRC32");
  });

  test("plain HTTP, SHA256: the signed payload hash and the checksum are one digest", () => {
    const d = partDigests(body, "SHA256", false);
    assert.equal(d.header, "x-amz-checksum-sha256");
    assert.equal(d.checksum, sha.toString("base64"));
    assert.equal(d.payloadHash, sha.toString("hex"));
    assert.deepEqual(d.completed, { ChecksumSHA256: sha.toString("base64") });
  });

  test("HTTPS, CRC32: an unsigned payload and the part's CRC32", () => {
    const d = partDigests(body, "CRC32", true);
    assert.equal(d.header, "x-amz-checksum-crc32");
    assert.equal(d.checksum, crc.toString("base64"));
    assert.equal(d.payloadHash, "UNSIGNED-PAYLOAD");
    assert.deepEqual(d.completed, { ChecksumCRC32: crc.toString("base64") });
  });

  test("the other pairings stay correct: CRC32 over HTTP is still signed, SHA256 over HTTPS unsigned", () => {
    assert.equal(partDigests(body, "CRC32", false).payloadHash, sha.toString("hex"));
    assert.equal(partDigests(body, "SHA256", true).payloadHash, "UNSIGNED-PAYLOAD");
  });

  test("an algorithm it does not compute is refused, never sent without a checksum", () => {
    assert.throws(() => partDigests(body, undefined, true), /undefined is not CRC32 or SHA256/);
    assert.throws(() => partDigests(body, "CRC64NVME", false), /CRC64NVME is not CRC32 or SHA256/);
  });
});
