/**
 * Issue 17: the drill's small parts without a server — canary locations and digests, the
 * unseal-keys directory, `sys/seal-status` as OpenBao answers it after a restore (texts taken
 * from the real `bao` v2.4.0), the manifest's `canary` field, and the result line.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  CanaryLocationError,
  canaryDigest,
  defaultCanaryLocation,
  formatCanaryLocation,
  parseCanaryLocation,
} from "../../../src/drill/canary.ts";
import { readUnsealKeys } from "../../../src/drill/keys.ts";
import { parseSealStatus } from "../../../src/drill/throwaway.ts";
import { classify } from "../../../src/executor/failure.ts";
import { type DrillSuccess, humanLine, parseResultLine, resultLine } from "../../../src/executor/result.ts";
import { OpenBaoError } from "../../../src/openbao/errors.ts";
import { SnapshotArchiveError } from "../../../src/snapshot/errors.ts";
import { parseManifest, serializeManifest, validateManifest } from "../../../src/snapshot/manifest.ts";

describe("canary locations", () => {
  test("mount and path; the default", () => {
    assert.deepEqual(parseCanaryLocation("secret/openbao-backup/canary"), defaultCanaryLocation);
    assert.deepEqual(parseCanaryLocation("/kv/a/b/c/"), { mount: "kv", path: "a/b/c" });
    assert.equal(formatCanaryLocation(defaultCanaryLocation), "secret/openbao-backup/canary");
  });
  for (const bad of [
    "",
    "secret",
    "secret/",
    "a//b",
    "secret/../x",
    "secret/./x",
    "secret/a b",
    'secret/"x"',
    `s/${"x".repeat(300)}`,
  ]) {
    test(`refused: ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseCanaryLocation(bad), CanaryLocationError);
    });
  }
  test("the digest is the SHA-256 of the value's UTF-8", () => {
    assert.equal(canaryDigest("héllo"), createHash("sha256").update(Buffer.from("héllo", "utf8")).digest("hex"));
  });
});

describe("the unseal-keys directory", () => {
  const made: string[] = [];
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), "drill-keys-"));
    made.push(d);
    return d;
  };
  after(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  const b64 = (n: number): string => Buffer.alloc(33, n).toString("base64");

  test("one key per file, in file-name order; the kubelet's dot entries skipped; symlinks followed", async () => {
    const d = dir();
    mkdirSync(join(d, "..2026_01_01"));
    writeFileSync(join(d, "..2026_01_01", "real"), b64(9));
    writeFileSync(join(d, "key-2"), `${b64(2)}\n`);
    writeFileSync(join(d, "key-1"), b64(1));
    symlinkSync(join(d, "..2026_01_01", "real"), join(d, "key-3"));
    writeFileSync(join(d, ".hidden"), "not a key at all");
    writeFileSync(join(d, "key-4"), "a1b2".repeat(8));
    assert.deepEqual(await readUnsealKeys(d), [b64(1), b64(2), b64(9), "a1b2".repeat(8)]);
  });

  test("a file that is not a key is named, its content never shown", async () => {
    const d = dir();
    writeFileSync(join(d, "key-1"), "this is s3cr3t but not a key!");
    await assert.rejects(readUnsealKeys(d), (err: Error) => {
      assert.match(err.message, /^DRILL_UNSEAL_KEYS_DIR \(--unseal-keys-dir\): .*key-1 does not hold an unseal key/);
      assert.doesNotMatch(err.message, /s3cr3t/);
      return true;
    });
  });

  test("empty, missing", async () => {
    await assert.rejects(readUnsealKeys(dir()), /holds no key files; put each unseal key in a file of its own/);
    await assert.rejects(
      readUnsealKeys("/nonexistent/keys"),
      /cannot read \/nonexistent\/keys \(ENOENT\); mount the Secret/,
    );
  });
});

describe("sys/seal-status after a restore (answers of the real bao)", () => {
  const address = "http://127.0.0.1:18300";
  test("sealed with the restored configuration", () => {
    const text =
      '{"type":"shamir","initialized":true,"sealed":true,"t":2,"n":3,"progress":0,"nonce":"","version":"2.4.0","build_date":"","migration":false,"recovery_seal":false,"storage_type":"raft"}';
    assert.deepEqual(parseSealStatus(200, text, address), {
      kind: "status",
      status: { type: "shamir", initialized: true, sealed: true, threshold: 2, shares: 3, progress: 0 },
    });
  });
  test("the restored seal type differs from the throwaway's stanza, either way round", () => {
    assert.deepEqual(
      parseSealStatus(
        500,
        '{"errors":["barrier seal type of \\"transit\\" does not match expected type of \\"shamir\\""]}\n',
        address,
      ),
      { kind: "foreign-seal", restored: "transit", configured: "shamir" },
    );
    assert.deepEqual(
      parseSealStatus(
        500,
        '{"errors":["barrier seal type of \\"shamir\\" does not match loaded type of \\"transit\\""]}\n',
        address,
      ),
      { kind: "foreign-seal", restored: "shamir", configured: "transit" },
    );
  });
  test("anything else is a bad answer, not a guess", () => {
    assert.throws(() => parseSealStatus(500, '{"errors":["internal error"]}', address), OpenBaoError);
    assert.throws(() => parseSealStatus(200, "<html>", address), /not JSON/);
    assert.throws(() => parseSealStatus(200, '{"sealed":true}', address), /without type, sealed and initialized/);
  });
});

describe("the manifest's canary (added compatibly)", () => {
  const manifest = {
    formatVersion: 1,
    key: "openbao/bao/2026-12-06T04-13-26Z-a85e1be8.snap",
    size: 14843,
    sha256: "b".repeat(64),
    raftIndex: 55,
    raftTerm: 3,
    openbaoVersion: "2.4.0",
    clusterId: "62f8cead-361d-7d17-b794-3300c8454106",
    sealType: "shamir",
    created: "2026-12-06T04:13:26.000Z",
  };
  const canary = { mount: "secret", path: "openbao-backup/canary", version: 3, sha256: "a".repeat(64) };

  test("written and read back; absent stays absent (older manifests, backups without a canary)", () => {
    const text = serializeManifest({ ...manifest, formatVersion: 1, canary });
    assert.deepEqual(parseManifest(text).canary, canary);
    assert.ok(text.indexOf('"canary"') < text.indexOf('"created"'), "fixed field order");
    assert.equal("canary" in parseManifest(JSON.stringify(manifest)), false);
  });

  test("unknown members inside it are ignored, like unknown fields (a newer writer)", () => {
    const parsed = parseManifest(JSON.stringify({ ...manifest, canary: { ...canary, algorithm: "sha256" } }));
    assert.deepEqual(parsed.canary, canary);
  });

  const bad: [string, unknown, RegExp][] = [
    ["not an object", "secret/openbao-backup/canary", /manifest field "canary": must be an object/],
    ["no mount", { ...canary, mount: undefined }, /manifest field "canary.mount": must be a KV path/],
    ["a path climbing out", { ...canary, path: "../sys" }, /manifest field "canary.path": must be a KV path/],
    ["version 0", { ...canary, version: 0 }, /manifest field "canary.version": must be a positive integer, got 0/],
    [
      "a value instead of a digest",
      { ...canary, sha256: "hunter2" },
      /manifest field "canary.sha256": must be 64 lower-case hex digits/,
    ],
  ];
  for (const [name, value, expect] of bad) {
    test(`refused: ${name}`, () => {
      assert.throws(() => validateManifest({ ...manifest, canary: value }), expect);
    });
  }
});

describe("the drill's result", () => {
  const success: DrillSuccess = {
    mode: "drill",
    ok: true,
    outcome: "verified",
    key: "openbao/bao/2026-12-06T04-13-26Z-a85e1be8.snap",
    raftIndex: 55,
    restoredIndex: 63,
    sealType: "shamir",
    canary: { path: "secret/openbao-backup/canary", version: 3 },
    secretMounts: 4,
    authMethods: 2,
    message: "OpenBao loaded it, …",
    size: 14843,
    sha256: "b".repeat(64),
    durationMs: 12_345,
    startedAt: "2026-12-06T04:13:26.000Z",
  };

  test("one human line and one JSON line the operator can read", () => {
    assert.equal(humanLine(success), "drill verified: OpenBao loaded it, … (0.0 MiB, sha256 bbbbbbbbbbbb…) in 12.3s");
    assert.equal(
      humanLine({ ...success, latest: true }).startsWith("drill verified (the newest verified backup): "),
      true,
    );
    const line = resultLine(success);
    assert.deepEqual(JSON.parse(line), { v: 1, ...success });
    const reported = parseResultLine(line);
    assert.equal(reported?.ok, true);
    assert.equal(reported?.raftIndex, 55);
    assert.equal(reported?.key, success.key);
    // What the drill proved, for status.backup.lastDrill (src/drill/manager/plan.ts).
    assert.deepEqual(reported?.drill, {
      outcome: "verified",
      sealType: "shamir",
      canaryVersion: 3,
      secretMounts: 4,
      authMethods: 2,
    });
  });

  test("the operator trusts drill fields only from a drill that passed, each well-typed", () => {
    const line = (o: Record<string, unknown>): string => JSON.stringify({ v: 1, ...o });
    assert.equal(parseResultLine(line({ ...success, mode: "backup" }))?.drill, undefined, "not a drill");
    assert.equal(parseResultLine(line({ ...success, ok: false, reason: "X" }))?.drill, undefined, "failed");
    assert.equal(parseResultLine(line({ ...success, outcome: "opened" }))?.drill, undefined, "unknown outcome");
    const odd = parseResultLine(
      line({ ...success, sealType: "Shamir; rm -rf", canary: { version: -1 }, secretMounts: "4", authMethods: 1.5 }),
    )?.drill;
    assert.deepEqual(odd, {
      outcome: "verified",
      sealType: undefined,
      canaryVersion: undefined,
      secretMounts: undefined,
      authMethods: undefined,
    });
  });

  test("a stored archive that fails inspection is a verification failure (6) in a drill, as in a restore", () => {
    const err = new SnapshotArchiveError("SnapshotTruncated", "gzip", "the gzip stream ends early");
    assert.equal(classify(err, [], "drill").exitCode, 6);
    assert.equal(classify(err, [], "restore").exitCode, 6);
    assert.equal(classify(err, [], "backup").exitCode, 4);
  });
});
