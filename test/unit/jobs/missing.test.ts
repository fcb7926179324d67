/**
 * The one decision every manager makes about a Job it recorded as in flight and cannot see
 * (src/jobs/missing.ts), and the act layer's memory that feeds it (src/jobs/sightings.ts).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decideMissingJob, jobCreateGraceMs, maxJobCreateGraceMs } from "../../../src/jobs/missing.ts";
import { JobSightings } from "../../../src/jobs/sightings.ts";

const decidedAt = new Date("2026-12-07T10:00:00Z");
const at = (ms: number) => new Date(decidedAt.getTime() + ms);

describe("decideMissingJob", () => {
  const base = { decidedAt, graceMs: 120_000, creatable: true } as const;

  test("unknown to this process: created within the grace, lost after it", () => {
    assert.deepEqual(decideMissingJob({ ...base, now: at(20_000), sighting: undefined }), {
      action: "create",
      recheckMs: 100_000,
    });
    assert.deepEqual(decideMissingJob({ ...base, now: at(120_000), sighting: undefined }), { action: "lost" });
  });

  test("created by this process: waited for within the grace, never created again", () => {
    assert.deepEqual(decideMissingJob({ ...base, now: at(1000), sighting: "created" }), {
      action: "wait",
      recheckMs: 119_000,
    });
    assert.deepEqual(decideMissingJob({ ...base, now: at(130_000), sighting: "created" }), { action: "lost" });
  });

  test("observed by this process: deleted, lost at once whatever the clock", () => {
    for (const ms of [0, 1000, 500_000]) {
      assert.deepEqual(decideMissingJob({ ...base, now: at(ms), sighting: "observed" }), { action: "lost" });
    }
  });

  test("not creatable (no spec, no lock): lost, never created", () => {
    assert.deepEqual(decideMissingJob({ ...base, creatable: false, now: at(1000), sighting: undefined }), {
      action: "lost",
    });
  });

  test("no decision time recorded: as old as can be", () => {
    assert.equal(decideMissingJob({ ...base, decidedAt: undefined, now: at(0), sighting: undefined }).action, "lost");
  });
});

test("jobCreateGraceMs: 2 minutes, or under half a shorter Job TTL", () => {
  assert.equal(jobCreateGraceMs(undefined), maxJobCreateGraceMs);
  assert.equal(jobCreateGraceMs(86_400), 120_000);
  assert.equal(jobCreateGraceMs(240), 120_000);
  assert.equal(jobCreateGraceMs(180), 90_000);
  assert.equal(jobCreateGraceMs(60), 30_000);
});

describe("JobSightings", () => {
  test("a Job seen in the cache stays observed after it is gone, while the status names it", () => {
    const s = new JobSightings();
    assert.deepEqual([...s.track("ns/a", ["job-1"], [])], [], "nothing known at first");
    assert.deepEqual([...s.track("ns/a", ["job-1"], ["job-1"])], [["job-1", "observed"]]);
    assert.deepEqual([...s.track("ns/a", ["job-1"], [])], [["job-1", "observed"]], "seen, then gone");
    assert.deepEqual([...s.track("ns/a", ["job-2"], [])], [], "the status moved on: forgotten");
  });

  test("created, then observed; created never downgrades observed", () => {
    const s = new JobSightings();
    s.created("ns/a", "job-1");
    assert.deepEqual([...s.track("ns/a", ["job-1"], [])], [["job-1", "created"]]);
    assert.deepEqual([...s.track("ns/a", ["job-1"], ["job-1"])], [["job-1", "observed"]]);
    s.created("ns/a", "job-1");
    assert.deepEqual([...s.track("ns/a", ["job-1"], [])], [["job-1", "observed"]]);
  });

  test("owners are apart, and a forgotten owner knows nothing", () => {
    const s = new JobSightings();
    s.created("ns/a", "job-1");
    assert.deepEqual([...s.track("ns/b", ["job-1"], [])], []);
    s.forget("ns/a");
    assert.deepEqual([...s.track("ns/a", ["job-1"], [])], []);
  });

  test("a Job and its confirm Job are kept side by side", () => {
    const s = new JobSightings();
    s.track("ns/a", ["job-1"], ["job-1"]);
    s.created("ns/a", "job-1-confirm");
    assert.deepEqual(
      [...s.track("ns/a", ["job-1", "job-1-confirm"], [])],
      [
        ["job-1", "observed"],
        ["job-1-confirm", "created"],
      ],
    );
  });
});
