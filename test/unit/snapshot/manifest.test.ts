import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManifestError } from "../../../src/snapshot/errors.ts";
import {
  parseManifest,
  recordableClusterId,
  recordableSealType,
  type SnapshotManifest,
  serializeManifest,
  validateManifest,
} from "../../../src/snapshot/manifest.ts";

const manifest: SnapshotManifest = {
  formatVersion: 1,
  key: "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap",
  size: 123456,
  sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  raftIndex: 98765,
  raftTerm: 12,
  openbaoVersion: "2.4.1",
  created: "2025-03-04T05:06:07.890Z",
};

describe("manifest", () => {
  test("serializes with a fixed field order, two-space JSON and a final newline", () => {
    const text = serializeManifest(manifest);
    assert.ok(text.endsWith("}\n"));
    assert.deepEqual(Object.keys(JSON.parse(text)), [
      "formatVersion",
      "key",
      "size",
      "sha256",
      "raftIndex",
      "raftTerm",
      "openbaoVersion",
      "created",
    ]);
    assert.match(text, /^\{\n {2}"formatVersion": 1,\n/);
  });

  test("round-trips through text and bytes", () => {
    assert.deepEqual(parseManifest(serializeManifest(manifest)), manifest);
    assert.deepEqual(parseManifest(Buffer.from(serializeManifest(manifest))), manifest);
  });

  test("accepts an unknown OpenBao version as null", () => {
    const unknown = { ...manifest, openbaoVersion: null };
    assert.deepEqual(parseManifest(serializeManifest(unknown)), unknown);
  });

  test("ignores fields it does not know (a newer writer, same format version) and drops them", () => {
    const parsed = parseManifest(JSON.stringify({ ...manifest, durationMs: 1234, kind: "scheduled" }));
    assert.deepEqual(parsed, manifest);
  });

  test("reads a manifest written before clusterId and sealType existed: the fields stay absent", () => {
    const old = parseManifest(JSON.stringify(manifest));
    assert.equal("clusterId" in old, false);
    assert.equal("sealType" in old, false);
    assert.deepEqual(old, manifest);
  });

  test("records the source cluster's id and seal type (formatVersion stays 1), in a fixed place", () => {
    const current: SnapshotManifest = {
      ...manifest,
      clusterId: "243b98cf-1ba0-1d99-9a88-d6e8a844a6bc",
      sealType: "shamir",
    };
    const text = serializeManifest(current);
    assert.deepEqual(parseManifest(text), current);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.equal(parsed.formatVersion, 1);
    assert.deepEqual(Object.keys(parsed), [
      "formatVersion",
      "key",
      "size",
      "sha256",
      "raftIndex",
      "raftTerm",
      "openbaoVersion",
      "clusterId",
      "sealType",
      "created",
    ]);
    const unknown = { ...manifest, clusterId: null, sealType: null };
    assert.deepEqual(parseManifest(serializeManifest(unknown)), unknown);
    for (const sealType of ["awskms", "transit", "azurekeyvault", "gcpckms", "pkcs11", "static"]) {
      assert.equal(parseManifest(JSON.stringify({ ...manifest, sealType })).sealType, sealType);
    }
  });

  test("recordableClusterId / recordableSealType turn what a writer cannot record into null", () => {
    assert.equal(recordableClusterId("243b98cf-1ba0-1d99-9a88-d6e8a844a6bc"), "243b98cf-1ba0-1d99-9a88-d6e8a844a6bc");
    assert.equal(recordableClusterId(undefined), null);
    assert.equal(recordableClusterId("x\ny"), null);
    assert.equal(recordableClusterId("a".repeat(200)), null);
    assert.equal(recordableSealType("shamir"), "shamir");
    assert.equal(recordableSealType("Shamir Seal"), null);
    assert.equal(recordableSealType(undefined), null);
  });

  test("checks the key it belongs to when asked", () => {
    assert.deepEqual(parseManifest(serializeManifest(manifest), { expectedKey: manifest.key }), manifest);
    assert.throws(() => parseManifest(serializeManifest(manifest), { expectedKey: "other.snap" }), {
      name: "ManifestError",
      field: "key",
      message: /belongs to "other\.snap"/,
    });
  });

  test("refuses to serialize an invalid manifest", () => {
    assert.throws(() => serializeManifest({ ...manifest, size: -1 }), ManifestError);
  });

  const invalid: { name: string; text: string; field?: string; message: RegExp }[] = [
    { name: "not JSON", text: "{", message: /not valid JSON/ },
    { name: "empty", text: "", message: /not valid JSON/ },
    { name: "an array", text: "[]", message: /JSON object/ },
    { name: "null", text: "null", message: /JSON object/ },
    {
      name: "a newer format",
      text: JSON.stringify({ ...manifest, formatVersion: 2 }),
      field: "formatVersion",
      message: /version 2 is not supported/,
    },
    {
      name: "no format version",
      text: JSON.stringify({ ...manifest, formatVersion: undefined }),
      field: "formatVersion",
      message: /missing/,
    },
    {
      name: "a string format version",
      text: JSON.stringify({ ...manifest, formatVersion: "1" }),
      field: "formatVersion",
      message: /must be 1/,
    },
    { name: "an empty key", text: JSON.stringify({ ...manifest, key: "" }), field: "key", message: /non-empty string/ },
    {
      name: "a negative size",
      text: JSON.stringify({ ...manifest, size: -1 }),
      field: "size",
      message: /non-negative integer/,
    },
    {
      name: "a fractional size",
      text: JSON.stringify({ ...manifest, size: 1.5 }),
      field: "size",
      message: /non-negative integer/,
    },
    {
      name: "a size as a string",
      text: JSON.stringify({ ...manifest, size: "123" }),
      field: "size",
      message: /non-negative integer/,
    },
    {
      name: "an unsafe size",
      text: JSON.stringify(manifest).replace('"size":123456', '"size":9007199254740993'),
      field: "size",
      message: /non-negative integer/,
    },
    {
      name: "upper-case sha256",
      text: JSON.stringify({ ...manifest, sha256: manifest.sha256.toUpperCase() }),
      field: "sha256",
      message: /lower-case hex/,
    },
    { name: "a short sha256", text: JSON.stringify({ ...manifest, sha256: "abc" }), field: "sha256", message: /64/ },
    {
      name: "a missing raftIndex",
      text: JSON.stringify({ ...manifest, raftIndex: undefined }),
      field: "raftIndex",
      message: /missing/,
    },
    {
      name: "a negative raftTerm",
      text: JSON.stringify({ ...manifest, raftTerm: -3 }),
      field: "raftTerm",
      message: /non-negative/,
    },
    {
      name: "an empty openbaoVersion",
      text: JSON.stringify({ ...manifest, openbaoVersion: "" }),
      field: "openbaoVersion",
      message: /non-empty string or null/,
    },
    {
      name: "a numeric openbaoVersion",
      text: JSON.stringify({ ...manifest, openbaoVersion: 2 }),
      field: "openbaoVersion",
      message: /non-empty string or null/,
    },
    {
      name: "a numeric clusterId",
      text: JSON.stringify({ ...manifest, clusterId: 42 }),
      field: "clusterId",
      message: /cluster id like a UUID or null/,
    },
    {
      name: "an empty clusterId",
      text: JSON.stringify({ ...manifest, clusterId: "" }),
      field: "clusterId",
      message: /cluster id like a UUID or null/,
    },
    {
      name: "a clusterId with a newline",
      text: JSON.stringify({ ...manifest, clusterId: "abc\ndef" }),
      field: "clusterId",
      message: /cluster id/,
    },
    {
      name: "a sealType that is not a seal name",
      text: JSON.stringify({ ...manifest, sealType: "Shamir; rm -rf" }),
      field: "sealType",
      message: /seal type like "shamir" or "awskms" or null/,
    },
    {
      name: "a sealType as a boolean",
      text: JSON.stringify({ ...manifest, sealType: true }),
      field: "sealType",
      message: /seal type/,
    },
    {
      name: "a created time with an offset",
      text: JSON.stringify({ ...manifest, created: "2025-03-04T07:06:07+02:00" }),
      field: "created",
      message: /ISO 8601 UTC/,
    },
    {
      name: "a created date only",
      text: JSON.stringify({ ...manifest, created: "2025-03-04" }),
      field: "created",
      message: /ISO 8601 UTC/,
    },
    {
      name: "a created time that does not exist",
      text: JSON.stringify({ ...manifest, created: "2025-02-30T00:00:00Z" }),
      field: "created",
      message: /ISO 8601 UTC/,
    },
    {
      name: "a created time as epoch",
      text: JSON.stringify({ ...manifest, created: 1741064767890 }),
      field: "created",
      message: /ISO 8601 UTC/,
    },
  ];
  for (const c of invalid) {
    test(`rejects ${c.name}`, () => {
      assert.throws(
        () => parseManifest(c.text),
        (error: unknown) => {
          assert.ok(error instanceof ManifestError);
          assert.equal(error.code, "ManifestInvalid");
          assert.equal(error.field, c.field);
          assert.match(error.message, c.message);
          return true;
        },
      );
    });
  }

  test("rejects bytes that are not UTF-8", () => {
    assert.throws(() => parseManifest(Buffer.from([0x7b, 0xff, 0x7d])), { name: "ManifestError", message: /UTF-8/ });
  });

  test("validateManifest returns only the known fields", () => {
    const extra = { ...manifest, secretLookingField: "x" };
    assert.deepEqual(validateManifest(extra), manifest);
  });
});
