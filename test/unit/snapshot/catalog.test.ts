/**
 * The pure part of `restore --key latest`: which of a cluster's listed backups is the newest
 * verified one (src/snapshot/catalog.ts). Reading the store is exercised against real MinIO
 * in test/executor/latest.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type CatalogEntry,
  isVerified,
  newestVerified,
  noVerifiedBackupReason,
} from "../../../src/snapshot/catalog.ts";
import type { SnapshotManifest } from "../../../src/snapshot/manifest.ts";

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

function entry(
  name: string,
  options: {
    keyTime: string;
    created?: string;
    raftIndex?: number;
    problem?: string;
    kind?: "scheduled" | "pre-upgrade";
  },
): CatalogEntry {
  const key = `openbao/bao/${name}.snap`;
  const manifest: SnapshotManifest | undefined =
    options.created === undefined
      ? undefined
      : {
          formatVersion: 1,
          key,
          size: 10,
          sha256: sha,
          raftIndex: options.raftIndex ?? 1,
          raftTerm: 1,
          openbaoVersion: "2.4.0",
          created: options.created,
        };
  return {
    key,
    kind: options.kind ?? "scheduled",
    keyTime: new Date(options.keyTime),
    object: { key, size: 10, lastModified: new Date(options.keyTime) },
    manifest,
    problem: options.problem ?? (manifest === undefined ? "no manifest" : null),
  };
}

describe("newestVerified (restore --key latest)", () => {
  test("no entries, or none verified: undefined", () => {
    assert.equal(newestVerified([]), undefined);
    const unverified = [
      entry("a", { keyTime: "2026-01-02T00:00:00Z" }),
      entry("b", {
        keyTime: "2026-01-01T00:00:00Z",
        created: "2026-01-01T00:00:00.000Z",
        problem: "size mismatch: object 5 bytes, manifest 10",
      }),
    ];
    assert.equal(newestVerified(unverified), undefined);
    assert.equal(unverified.filter(isVerified).length, 0);
  });

  test("skips a newer backup that is not verified", () => {
    const chosen = newestVerified([
      entry("newest-no-manifest", { keyTime: "2026-01-03T00:00:00Z" }),
      entry("newer-truncated", {
        keyTime: "2026-01-02T00:00:00Z",
        created: "2026-01-02T00:00:00.000Z",
        problem: "size mismatch: object 5 bytes, manifest 10",
      }),
      entry("verified", { keyTime: "2026-01-01T00:00:00Z", created: "2026-01-01T00:00:00.000Z" }),
    ]);
    assert.equal(chosen?.key, "openbao/bao/verified.snap");
  });

  test("newest by the manifest's created, whatever the listing order and the kind", () => {
    const entries = [
      entry("older", { keyTime: "2026-01-01T00:00:00Z", created: "2026-01-01T00:00:00.000Z", raftIndex: 900 }),
      entry("pre-upgrade", {
        keyTime: "2026-01-02T00:00:00Z",
        created: "2026-01-02T00:00:00.000Z",
        kind: "pre-upgrade",
        raftIndex: 5,
      }),
      entry("middle", { keyTime: "2026-01-01T12:00:00Z", created: "2026-01-01T12:00:00.000Z" }),
    ];
    for (const order of [entries, [...entries].reverse()]) {
      assert.equal(newestVerified(order)?.key, "openbao/bao/pre-upgrade.snap");
    }
  });

  test("the manifest's created decides, not the key's time (sub-second order within one second)", () => {
    const chosen = newestVerified([
      entry("z-first", { keyTime: "2026-01-01T00:00:00Z", created: "2026-01-01T00:00:00.100Z" }),
      entry("a-second", { keyTime: "2026-01-01T00:00:00Z", created: "2026-01-01T00:00:00.900Z" }),
    ]);
    assert.equal(chosen?.key, "openbao/bao/a-second.snap");
  });

  test("equal created times: the higher Raft index, then the later key time, then the greater key", () => {
    const created = "2026-01-01T00:00:00.000Z";
    assert.equal(
      newestVerified([
        entry("low", { keyTime: "2026-01-01T00:00:00Z", created, raftIndex: 10 }),
        entry("high", { keyTime: "2026-01-01T00:00:00Z", created, raftIndex: 11 }),
      ])?.key,
      "openbao/bao/high.snap",
    );
    assert.equal(
      newestVerified([
        entry("later-key", { keyTime: "2026-01-01T00:00:05Z", created }),
        entry("earlier-key", { keyTime: "2026-01-01T00:00:00Z", created }),
      ])?.key,
      "openbao/bao/later-key.snap",
    );
    const ties = [
      entry("aaa", { keyTime: "2026-01-01T00:00:00Z", created }),
      entry("bbb", { keyTime: "2026-01-01T00:00:00Z", created }),
    ];
    assert.equal(newestVerified(ties)?.key, "openbao/bao/bbb.snap");
    assert.equal(newestVerified([...ties].reverse())?.key, "openbao/bao/bbb.snap");
  });

  test("the reason for NoVerifiedBackup says what is there", () => {
    assert.equal(noVerifiedBackupReason([]), "no backup is stored there");
    assert.equal(
      noVerifiedBackupReason([
        entry("n", { keyTime: "2026-01-02T00:00:00Z" }),
        entry("o", { keyTime: "2026-01-01T00:00:00Z" }),
      ]),
      "2 backups are stored there, none verified (the newest, openbao/bao/n.snap: no manifest)",
    );
  });
});
