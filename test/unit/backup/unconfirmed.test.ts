/**
 * A status write that recorded a result but got no answer: counted exactly once, whether it
 * applied (seen on the next observation) or not (recorded again by a later write).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RecordedOutcome } from "../../../src/backup/plan.ts";
import { UnconfirmedResults } from "../../../src/backup/unconfirmed.ts";

const outcome: RecordedOutcome = {
  type: "scheduled",
  ok: true,
  size: 10,
  durationMs: 100,
  retentionDeleted: 0,
  retentionFailed: false,
  finishedAt: new Date("2026-11-22T02:00:00Z"),
};

describe("UnconfirmedResults", () => {
  test("the lost write applied: counted once when the cluster shows the Job, then forgotten", () => {
    const u = new UnconfirmedResults();
    u.lost("ns/a", "backup-a-1", outcome);
    assert.equal(u.confirmed("ns/a", "backup-a-0"), undefined, "a stale cache does not show it yet");
    assert.equal(u.confirmed("ns/a", "backup-a-1"), outcome);
    assert.equal(u.confirmed("ns/a", "backup-a-1"), undefined, "only once");
    assert.equal(u.size, 0);
  });

  test("the lost write did not apply: the write that records it again settles it, nothing counted here", () => {
    const u = new UnconfirmedResults();
    u.lost("ns/a", "backup-a-1", outcome);
    assert.equal(u.confirmed("ns/a", undefined), undefined);
    u.settled("ns/a");
    assert.equal(u.confirmed("ns/a", "backup-a-1"), undefined);
  });

  test("clusters are kept apart, and a deleted cluster forgets its entry", () => {
    const u = new UnconfirmedResults();
    u.lost("ns/a", "backup-x", outcome);
    u.lost("ns/b", "backup-x", outcome);
    assert.equal(u.confirmed("other/a", "backup-x"), undefined);
    u.settled("ns/b");
    assert.equal(u.confirmed("ns/b", "backup-x"), undefined);
    assert.equal(u.confirmed("ns/a", "backup-x"), outcome);
  });
});
