/**
 * Issue 17: a drill's decisions, table-driven — which key material applies, which endpoint,
 * when OpenBao has applied the snapshot, and each refusal naming what was expected and found.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DrillConfigError } from "../../../src/drill/config.ts";
import {
  type AfterRestore,
  afterRestore,
  canaryToRead,
  checkArchiveIndex,
  checkCanary,
  checkRestored,
  checkSealType,
  keyMaterialPlan,
  loadedMessage,
  restoreWithForce,
  verifiedMessage,
} from "../../../src/drill/outcome.ts";
import type { LeaderFacts, SealObservation } from "../../../src/drill/throwaway.ts";
import { VerificationError } from "../../../src/executor/failure.ts";
import type { SnapshotManifest } from "../../../src/snapshot/manifest.ts";

const key = "openbao/bao/2026-12-06T04-13-26Z-a85e1be8.snap";
const canary = { mount: "secret", path: "openbao-backup/canary", version: 3, sha256: "a".repeat(64) };
const manifest: SnapshotManifest = {
  formatVersion: 1,
  key,
  size: 14843,
  sha256: "b".repeat(64),
  raftIndex: 55,
  raftTerm: 3,
  openbaoVersion: "2.4.0",
  clusterId: "62f8cead-361d-7d17-b794-3300c8454106",
  sealType: "shamir",
  canary,
  created: "2026-12-06T04:13:26.000Z",
};

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof VerificationError) return `${err.reason}: ${err.message}`;
    if (err instanceof DrillConfigError) return `${err.variable}: ${err.message}`;
    throw err;
  }
  return "accepted";
}

describe("key material", () => {
  const cases: {
    name: string;
    throwaway: string;
    keys: number;
    recorded: string | null | undefined;
    expect: RegExp | string;
  }[] = [
    { name: "nothing given: loaded", throwaway: "shamir", keys: 0, recorded: "shamir", expect: "none" },
    { name: "nothing given, a transit backup", throwaway: "shamir", keys: 0, recorded: "transit", expect: "none" },
    {
      name: "unseal keys for a Shamir backup",
      throwaway: "shamir",
      keys: 3,
      recorded: "shamir",
      expect: "unseal-keys",
    },
    { name: "unseal keys, seal type unknown", throwaway: "shamir", keys: 1, recorded: null, expect: "unseal-keys" },
    {
      name: "unseal keys for an auto-unsealed backup",
      throwaway: "shamir",
      keys: 1,
      recorded: "awskms",
      expect:
        /^SealTypeMismatch: .*sealed by awskms .*unseal keys cannot open it.*recovery keys do not unseal.*nothing was restored$/,
    },
    { name: "same auto-unseal", throwaway: "transit", keys: 0, recorded: "transit", expect: "auto-unseal" },
    {
      name: "auto-unseal, seal type unknown",
      throwaway: "transit",
      keys: 0,
      recorded: undefined,
      expect: "auto-unseal",
    },
    {
      name: "another auto-unseal",
      throwaway: "transit",
      keys: 0,
      recorded: "awskms",
      expect: /^SealTypeMismatch: the backup's cluster is sealed by awskms \(its manifest\), the throwaway by transit/,
    },
    {
      name: "auto-unseal throwaway for a Shamir backup",
      throwaway: "transit",
      keys: 0,
      recorded: "shamir",
      expect:
        /^SealTypeMismatch: .*or start it without a seal stanza and give the unseal keys \(DRILL_UNSEAL_KEYS_DIR\)/,
    },
    {
      name: "both unseal keys and an auto-unseal",
      throwaway: "transit",
      keys: 1,
      recorded: "transit",
      expect:
        /^DRILL_UNSEAL_KEYS_DIR: DRILL_UNSEAL_KEYS_DIR \(--unseal-keys-dir\): unseal keys open a Shamir-sealed OpenBao, but the throwaway runs the transit seal/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      let got = "";
      const outcome = reason(() => {
        got = keyMaterialPlan(c.throwaway, c.keys, c.recorded).kind;
      });
      if (typeof c.expect === "string") assert.equal(got, c.expect, outcome);
      else assert.match(outcome, c.expect);
    });
  }

  test("snapshot-force unless the throwaway shares the source's auto-unseal", () => {
    assert.equal(restoreWithForce({ kind: "none" }), true);
    assert.equal(restoreWithForce({ kind: "unseal-keys" }), true);
    assert.equal(restoreWithForce({ kind: "auto-unseal", sealType: "transit" }), false);
  });
});

describe("has OpenBao applied the snapshot?", () => {
  const before: LeaderFacts = {
    isSelf: true,
    activeTime: "2026-12-06T04:02:13Z",
    appliedIndex: 31,
    committedIndex: 31,
  };
  const status = (sealed: boolean, type = "shamir"): SealObservation => ({
    kind: "status",
    status: { type, initialized: true, sealed, threshold: 2, shares: 3, progress: 0 },
  });
  const cases: {
    name: string;
    seal: SealObservation;
    leader?: LeaderFacts;
    auto?: boolean;
    expect: AfterRestore["state"];
  }[] = [
    { name: "sealed itself (Shamir throwaway)", seal: status(true), expect: "sealed" },
    {
      name: "restored seal type differs from its stanza",
      seal: { kind: "foreign-seal", restored: "transit", configured: "shamir" },
      expect: "foreign-seal",
    },
    { name: "sealed, auto-unseal still opening it", seal: status(true, "transit"), auto: true, expect: "waiting" },
    { name: "unsealed, sys/leader silent", seal: status(false), expect: "waiting" },
    { name: "unsealed, still its own data", seal: status(false), leader: before, expect: "waiting" },
    {
      name: "active again, new active time, past its old index",
      seal: status(false, "transit"),
      leader: { isSelf: true, activeTime: "2026-12-06T04:02:20Z", appliedIndex: 44, committedIndex: 44 },
      auto: true,
      expect: "unsealed",
    },
    {
      name: "new active time but no new entries",
      seal: status(false),
      leader: { isSelf: true, activeTime: "2026-12-06T04:02:20Z", appliedIndex: 31, committedIndex: 31 },
      expect: "waiting",
    },
    {
      name: "not active (post-unseal setup failing)",
      seal: status(false),
      leader: { isSelf: false, activeTime: undefined, appliedIndex: 67, committedIndex: 67 },
      expect: "waiting",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(afterRestore(before, c.seal, c.leader, c.auto ?? false).state, c.expect);
    });
  }

  test("the restored seal configuration is shown in the loaded message", () => {
    const applied = afterRestore(before, status(true), undefined, false);
    assert.ok(applied.state === "sealed", applied.state);
    const message = loadedMessage(key, manifest, applied);
    assert.match(
      message,
      /^OpenBao loaded .* \(Raft index 55\) .*\(shamir seal, 2 of 3 keys\), as its manifest says; /,
    );
    assert.match(message, /without key material the data was not opened, so its secrets were not read$/);
    assert.match(loadedMessage(key, { ...manifest, sealType: null }, applied), /\(its manifest records no seal type\)/);
  });
});

describe("what was restored fits the manifest", () => {
  test("seal type", () => {
    assert.equal(
      reason(() => checkSealType(manifest, "shamir", key)),
      "accepted",
    );
    assert.equal(
      reason(() => checkSealType({ ...manifest, sealType: null }, "transit", key)),
      "accepted",
    );
    assert.match(
      reason(() => checkSealType(manifest, "transit", key)),
      /^SealTypeMismatch: OpenBao loaded .*, but the seal configuration in it is transit and its manifest says shamir/,
    );
  });

  test("the archive's Raft index", () => {
    assert.equal(
      reason(() => checkArchiveIndex(55, manifest, key)),
      "accepted",
    );
    assert.match(
      reason(() => checkArchiveIndex(54, manifest, key)),
      /^RaftIndexMismatch: .* holds a snapshot at Raft index 54, its manifest says 55: .*nothing was restored$/,
    );
  });

  test("the applied index and the cluster id", () => {
    const ok = { appliedIndex: 63, clusterId: manifest.clusterId ?? undefined };
    assert.equal(
      reason(() => checkRestored(manifest, ok, key)),
      "accepted",
    );
    assert.match(
      reason(() => checkRestored(manifest, { ...ok, appliedIndex: 55 }, key)),
      /^RaftIndexMismatch: the throwaway serves .* at Raft index 55, not above the snapshot's 55/,
    );
    assert.match(
      reason(() => checkRestored(manifest, { ...ok, clusterId: "another" }, key)),
      /^ClusterMismatch: the restored data of .* belongs to cluster another, its manifest says 62f8cead/,
    );
    // Unknown on either side: nothing to compare.
    assert.equal(
      reason(() => checkRestored({ ...manifest, clusterId: null }, ok, key)),
      "accepted",
    );
    assert.equal(
      reason(() => checkRestored(manifest, { ...ok, clusterId: undefined }, key)),
      "accepted",
    );
  });
});

describe("the canary", () => {
  const { canary: _dropped, ...withoutCanary } = manifest;
  test("read what the manifest records; DRILL_CANARY_PATH makes it required", () => {
    assert.deepEqual(canaryToRead(manifest, undefined, key), canary);
    assert.equal(canaryToRead(withoutCanary, undefined, key), undefined);
    assert.deepEqual(canaryToRead(manifest, { mount: "secret", path: "openbao-backup/canary" }, key), canary);
    assert.match(
      reason(() => canaryToRead(withoutCanary, { mount: "secret", path: "openbao-backup/canary" }, key)),
      /^CanaryMissing: .*'s manifest records no canary, and DRILL_CANARY_PATH asks for secret\/openbao-backup\/canary: the backup did not write one/,
    );
    assert.match(
      reason(() => canaryToRead(manifest, { mount: "kv", path: "openbao-backup/canary" }, key)),
      /^CanaryMissing: .*backup wrote its canary at secret\/openbao-backup\/canary, DRILL_CANARY_PATH asks for kv\/openbao-backup\/canary/,
    );
  });

  test("exactly the version and value the backup wrote", () => {
    assert.equal(
      reason(() => checkCanary(canary, { found: true, version: 3, sha256: canary.sha256 }, key)),
      "accepted",
    );
    assert.match(
      reason(() => checkCanary(canary, { found: false, detail: "there is no such secret" }, key)),
      /^CanaryMissing: the restored data of .* has no canary at secret\/openbao-backup\/canary \(there is no such secret\); the backup wrote version 3/,
    );
    assert.match(
      reason(() => checkCanary(canary, { found: true, version: 4, sha256: "c".repeat(64) }, key)),
      /^CanaryMismatch: the restored canary at secret\/openbao-backup\/canary is at version 4, not the version 3 of the one the backup wrote/,
    );
    assert.match(
      reason(() => checkCanary(canary, { found: true, version: 3, sha256: "c".repeat(64) }, key)),
      /^CanaryMismatch: .* holds version 3 with another value than the one the backup wrote/,
    );
  });

  test("the verified message says what was proved, with and without a canary", () => {
    const facts = { restoredIndex: 63, canary, secretMounts: 4, authMethods: 2 };
    assert.match(
      verifiedMessage(key, { kind: "unseal-keys" }, facts),
      /opened it with the unseal keys and serves it at Raft index 63; the canary secret\/openbao-backup\/canary reads back as version 3 exactly as the backup wrote it; 4 secret mounts and 2 auth methods are served$/,
    );
    assert.match(
      verifiedMessage(key, { kind: "auto-unseal", sealType: "transit" }, { ...facts, canary: undefined }),
      /opened it with its transit auto-unseal .*no canary was recorded, so this proves the data opens, not that it is this backup's/,
    );
  });
});
