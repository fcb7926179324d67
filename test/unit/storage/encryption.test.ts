/**
 * The encryption check of a backup (src/storage/encryption.ts): what each provider reports
 * for an object, compared with what the target asks for; and how each store turns its
 * answer into `ObjectHead.encryption` and the target into request parameters. Against the
 * servers: test/storage/encryption.test.ts (wire and HEAD), test/executor/encryption.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  describeRequestedEncryption,
  encryptionMismatch,
  isKmsAlias,
  nameRequestedKey,
  s3KeyMatches,
} from "../../../src/storage/encryption.ts";
import { StorageError } from "../../../src/storage/errors.ts";
import { gcsHead } from "../../../src/storage/gcs/store.ts";
import type { StoredEncryption } from "../../../src/storage/object-store.ts";
import { sseParams } from "../../../src/storage/s3/store.ts";
import { parseTarget, type Target, type TargetSpec } from "../../../src/storage/target.ts";

const none: StoredEncryption = { type: undefined, key: undefined };
const s3 = (encryption?: TargetSpec["encryption"]): Target => parseTarget({ bucket: "b", encryption });
const gcs = (kmsKeyName?: string): Target =>
  parseTarget({ provider: "gcs", bucket: "b", ...(kmsKeyName ? { encryption: { kmsKeyName } } : {}) });
const azure = (encryptionScope?: string): Target =>
  parseTarget({
    provider: "azure",
    bucket: "b",
    azure: { storageAccount: "a" },
    ...(encryptionScope ? { encryption: { encryptionScope } } : {}),
  });

const keyId = "1234abcd-12ab-34cd-56ef-1234567890ab";
const keyArn = `arn:aws:kms:eu-west-1:123456789012:key/${keyId}`;
const gcsKey = "projects/p-1/locations/europe-west1/keyRings/r/cryptoKeys/k";

describe("encryptionMismatch: what is stored against what was asked", () => {
  const cases: [string, Target, StoredEncryption, RegExp | undefined][] = [
    // Nothing asked: nothing compared, whatever the store did (bucket default, emulator).
    ["s3, nothing asked, stored plain", s3(), none, undefined],
    ["s3, nothing asked, bucket default KMS", s3(), { type: "aws:kms", key: keyArn }, undefined],
    ["gcs, nothing asked", gcs(), none, undefined],
    ["azure, nothing asked", azure(), none, undefined],
    // S3
    ["AES256 stored AES256", s3({ type: "AES256" }), { type: "AES256", key: undefined }, undefined],
    [
      "AES256 stored plain",
      s3({ type: "AES256" }),
      none,
      /^SSE-S3 \(AES256\) was asked for; the store reports no server-side encryption$/,
    ],
    [
      "AES256 stored KMS",
      s3({ type: "AES256" }),
      { type: "aws:kms", key: keyArn },
      /the store reports SSE-KMS \(aws:kms\) with key arn:aws:kms/,
    ],
    ["KMS default key, any key", s3({ type: "aws:kms" }), { type: "aws:kms", key: keyArn }, undefined],
    [
      "KMS default key, stored AES256",
      s3({ type: "aws:kms" }),
      { type: "AES256", key: undefined },
      /store's default key/,
    ],
    [
      "KMS key name, MinIO's arn:aws:kms:<name>",
      s3({ type: "aws:kms", kmsKeyId: "k1" }),
      { type: "aws:kms", key: "arn:aws:kms:k1" },
      undefined,
    ],
    [
      "KMS key id, AWS reports its ARN",
      s3({ type: "aws:kms", kmsKeyId: keyId }),
      { type: "aws:kms", key: keyArn },
      undefined,
    ],
    ["KMS key ARN, same ARN", s3({ type: "aws:kms", kmsKeyId: keyArn }), { type: "aws:kms", key: keyArn }, undefined],
    [
      "KMS alias: the key ARN cannot be compared",
      s3({ type: "aws:kms", kmsKeyId: "alias/openbao" }),
      { type: "aws:kms", key: keyArn },
      undefined,
    ],
    [
      "KMS alias, stored AES256",
      s3({ type: "aws:kms", kmsKeyId: "alias/openbao" }),
      { type: "AES256", key: undefined },
      /with key alias\/openbao was asked for; the store reports SSE-S3/,
    ],
    [
      "KMS another key",
      s3({ type: "aws:kms", kmsKeyId: "k1" }),
      { type: "aws:kms", key: "arn:aws:kms:k2" },
      /^SSE-KMS \(aws:kms\) with key k1 was asked for; the store reports SSE-KMS \(aws:kms\) with key arn:aws:kms:k2$/,
    ],
    [
      "KMS no key reported",
      s3({ type: "aws:kms", kmsKeyId: "k1" }),
      { type: "aws:kms", key: undefined },
      /no key reported/,
    ],
    [
      "KMS an id that only ends the same",
      s3({ type: "aws:kms", kmsKeyId: "ab" }),
      { type: "aws:kms", key: keyArn },
      /with key ab was asked/,
    ],
    [
      "KMS stored DSSE",
      s3({ type: "aws:kms" }),
      { type: "aws:kms:dsse", key: keyArn },
      /reports aws:kms:dsse with key/,
    ],
    // GCS
    [
      "GCS key with the version it used",
      gcs(gcsKey),
      { type: "cmek", key: `${gcsKey}/cryptoKeyVersions/7` },
      undefined,
    ],
    ["GCS key as named", gcs(gcsKey), { type: "cmek", key: gcsKey }, undefined],
    [
      "GCS no key (emulator, Google-managed)",
      gcs(gcsKey),
      none,
      /the store reports no Cloud KMS key \(Google-managed encryption\)/,
    ],
    [
      "GCS another key",
      gcs(gcsKey),
      { type: "cmek", key: `${gcsKey}2/cryptoKeyVersions/1` },
      /reports Cloud KMS key .*k2\/cryptoKeyVersions\/1/,
    ],
    // Azure
    ["Azure the scope", azure("scope-1"), { type: "encryption-scope", key: "scope-1" }, undefined],
    [
      "Azure no scope (emulator, account default)",
      azure("scope-1"),
      none,
      /^encryption scope scope-1 was asked for; the store reports no encryption scope/,
    ],
    [
      "Azure another scope",
      azure("scope-1"),
      { type: "encryption-scope", key: "scope-2" },
      /reports encryption scope scope-2/,
    ],
  ];
  for (const [name, target, stored, expected] of cases) {
    test(name, () => {
      const problem = encryptionMismatch(target, stored);
      if (expected === undefined) assert.equal(problem, undefined);
      else assert.match(problem ?? "(accepted)", expected);
    });
  }

  test("KMS aliases are recognised by name and by ARN; key ids and key ARNs are not aliases", () => {
    assert.ok(isKmsAlias("alias/openbao"));
    assert.ok(isKmsAlias("arn:aws:kms:eu-west-1:123456789012:alias/openbao"));
    assert.ok(!isKmsAlias(keyId));
    assert.ok(!isKmsAlias(keyArn));
    assert.ok(!isKmsAlias("arn:aws:kms:k1"));
    assert.ok(s3KeyMatches(keyId, keyArn));
    assert.ok(!s3KeyMatches(keyId, undefined));
    assert.ok(!s3KeyMatches("other", keyArn));
  });

  test("what was asked for, in words", () => {
    assert.equal(describeRequestedEncryption(s3()), undefined);
    assert.equal(describeRequestedEncryption(s3({ type: "AES256" })), "SSE-S3 (AES256)");
    assert.equal(describeRequestedEncryption(s3({ type: "aws:kms", kmsKeyId: "k" })), "SSE-KMS (aws:kms) with key k");
    assert.equal(describeRequestedEncryption(gcs(gcsKey)), `Cloud KMS key ${gcsKey}`);
    assert.equal(describeRequestedEncryption(azure("s-1")), "encryption scope s-1");
  });
});

describe("stores: requests and answers", () => {
  test("S3: SSE-S3, SSE-KMS with or without a key, or nothing", () => {
    const params = (spec?: TargetSpec["encryption"]) => {
      const t = s3(spec);
      assert.equal(t.provider, "s3");
      return t.provider === "s3" ? sseParams(t.encryption) : undefined;
    };
    assert.deepEqual(params(), {});
    assert.deepEqual(params({ type: "AES256" }), { ServerSideEncryption: "AES256" });
    assert.deepEqual(params({ type: "aws:kms" }), { ServerSideEncryption: "aws:kms" });
    assert.deepEqual(params({ type: "aws:kms", kmsKeyId: "k" }), { ServerSideEncryption: "aws:kms", SSEKMSKeyId: "k" });
  });

  test("GCS: an object resource's kmsKeyName is its stored encryption", () => {
    const head = gcsHead("k", {
      name: "k",
      size: "12",
      updated: "2026-01-02T03:04:05Z",
      kmsKeyName: `${gcsKey}/cryptoKeyVersions/1`,
    });
    assert.deepEqual(head.encryption, { type: "cmek", key: `${gcsKey}/cryptoKeyVersions/1` });
    assert.equal(head.size, 12);
    assert.deepEqual(gcsHead("k", { name: "k", size: "1" }).encryption, none);
  });

  test("an unusable key error names the key or scope that was asked for; other errors are kept", () => {
    const unusable = new StorageError("EncryptionKeyUnusable", "s3 upload s3://b/k: the store cannot use…", {
      provider: "s3",
      operation: "upload",
      key: "k",
      status: 404,
    });
    const named = nameRequestedKey(unusable, s3({ type: "aws:kms", kmsKeyId: "k9" }));
    assert.equal(named.code, "EncryptionKeyUnusable");
    assert.match(named.message, /; asked for SSE-KMS \(aws:kms\) with key k9$/);
    assert.equal(named.status, 404);
    assert.equal(nameRequestedKey(unusable, s3()), unusable, "nothing asked: unchanged");
    const denied = new StorageError("AuthDenied", "denied");
    assert.equal(nameRequestedKey(denied, s3({ type: "AES256" })), denied);
  });
});
