import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RetentionPolicyError } from "../../../src/snapshot/errors.ts";
import { buildKey, type ClusterLocation, manifestKey } from "../../../src/snapshot/key.ts";
import {
  type ListedObject,
  planRetention,
  type RetentionContext,
  type RetentionPlan,
  type RetentionPolicy,
} from "../../../src/snapshot/retention.ts";

const here: ClusterLocation = { pathPrefix: "backups", namespace: "vault", cluster: "prod" };
const now = new Date("2025-06-15T12:00:00Z");
const hour = 3_600_000;
const day = 24 * hour;

let counter = 0;
function nextId(): string {
  counter += 1;
  return counter.toString(16).padStart(8, "0");
}

/** A scheduled key of this cluster taken `hoursAgo` before `now`. */
function snap(hoursAgo: number, location: ClusterLocation = here): string {
  return buildKey({
    ...location,
    time: new Date(now.getTime() - hoursAgo * hour),
    kind: "scheduled",
    random: nextId(),
  });
}

function preUpgrade(hoursAgo: number): string {
  return buildKey({ ...here, time: new Date(now.getTime() - hoursAgo * hour), kind: "pre-upgrade", random: nextId() });
}

function listed(...keys: string[]): ListedObject[] {
  return keys.map((key) => ({ key, size: 1000 }));
}

function ctx(justWritten: string, overrides: Partial<RetentionContext> = {}): RetentionContext {
  return { ...here, justWritten, now, ...overrides };
}

/** Runs the planner and checks the invariants every plan must satisfy. */
function plan(objects: ListedObject[], policy: RetentionPolicy, context: RetentionContext): RetentionPlan {
  const result = planRetention(objects, policy, context);
  const decided = [...result.keep, ...result.unverified, ...result.delete, ...result.ignored].map((d) => d.key);
  const distinct = [...new Set(objects.map((o) => o.key))];
  assert.deepEqual([...decided].sort(), [...distinct].sort(), "every listed object is decided exactly once");
  const deleted = new Set(result.delete.map((d) => d.key));
  const listedKeys = new Set(distinct);
  assert.ok(!deleted.has(context.justWritten), "the key just written is never deleted");
  if (result.newest) {
    assert.ok(!deleted.has(result.newest), "the newest verified is never deleted");
    assert.ok(
      result.newest === context.justWritten || listedKeys.has(manifestKey(result.newest)),
      "the newest is verified",
    );
    const newestTime = result.newest.replace(/^.*\//, "");
    for (const d of result.delete) {
      if (d.unverified) {
        assert.ok(d.key.replace(/^.*\//, "") < newestTime, `${d.key} is deleted though newer than the newest verified`);
      }
    }
  } else {
    assert.deepEqual(result.delete, [], "nothing is deleted while no snapshot is verified");
  }
  for (const d of result.delete) {
    if (d.object === "snapshot") assert.equal(d.unverified === true, !listedKeys.has(manifestKey(d.key)));
  }
  for (const u of result.unverified) {
    assert.ok(!listedKeys.has(manifestKey(u.key)) && u.key !== context.justWritten, `${u.key} is unverified`);
  }
  if (policy.maxCount !== undefined) {
    const verifiedKept = result.keep.filter((k) => k.object === "snapshot" && k.reason !== "just-written");
    assert.ok(verifiedKept.length <= policy.maxCount, "only verified snapshots take a maxCount slot");
  }
  for (const [i, d] of result.delete.entries()) {
    if (d.object === "manifest") {
      assert.equal(d.key, manifestKey(d.snapshot));
      assert.equal(result.delete[i + 1]?.key, d.snapshot, "a manifest is deleted just before its snapshot");
    }
  }
  return result;
}

function survivors(objects: ListedObject[], result: RetentionPlan): string[] {
  const deleted = new Set(result.delete.map((d) => d.key));
  return objects.map((o) => o.key).filter((key) => !deleted.has(key));
}

function withManifests(keys: string[]): string[] {
  return keys.flatMap((key) => [key, manifestKey(key)]);
}

describe("planRetention: the acceptance case", () => {
  test("10 standard (with manifests) + 2 pre-upgrade + 3 foreign, maxCount 3 → the 3 newest standard and everything else survive", () => {
    const standard = Array.from({ length: 10 }, (_, i) => snap((10 - i) * 24)); // oldest first
    const pre = [preUpgrade(500), preUpgrade(1)];
    const foreign = [
      snap(2, { ...here, cluster: "prod-2" }),
      "backups/vault/prod/notes.txt",
      "backups/other/thing.snap",
    ];
    const objects = listed(...withManifests(standard), ...pre, manifestKey(pre[0] ?? ""), ...foreign);
    const newestThree = standard.slice(7);
    const result = plan(objects, { maxCount: 3 }, ctx(standard[9] ?? ""));

    assert.deepEqual(
      survivors(objects, result).sort(),
      [...withManifests(newestThree), ...pre, manifestKey(pre[0] ?? ""), ...foreign].sort(),
    );
    assert.deepEqual(
      result.delete.map((d) => d.key),
      standard.slice(0, 7).flatMap((key) => [manifestKey(key), key]),
      "oldest first, each manifest before its snapshot",
    );
    assert.ok(result.delete.every((d) => d.reason === "max-count"));
    assert.equal(result.newest, standard[9]);
    assert.deepEqual(
      result.ignored.map((d) => [d.key, d.reason]),
      [
        [pre[0], "pre-upgrade"],
        [pre[1], "pre-upgrade"],
        [manifestKey(pre[0] ?? ""), "pre-upgrade"],
        [foreign[0], "foreign"],
        [foreign[1], "foreign"],
        [foreign[2], "foreign"],
      ],
    );
  });
});

describe("planRetention: rules", () => {
  test("no policy deletes nothing", () => {
    const keys = [snap(1000), snap(500), snap(1)];
    const result = plan(listed(...withManifests(keys)), {}, ctx(keys[2] ?? ""));
    assert.deepEqual(result.delete, []);
    assert.equal(result.keep.length, 6);
  });

  test("an empty listing plans nothing", () => {
    const result = plan([], { maxCount: 1, maxAgeMs: hour }, ctx("backups/vault/prod/custom.snap"));
    assert.deepEqual(result, { keep: [], delete: [], ignored: [], unverified: [], newest: null });
  });

  test("trap 1: maxCount 1 keeps exactly the newest", () => {
    const keys = [snap(30), snap(20), snap(10)];
    const objects = listed(...withManifests(keys));
    const result = plan(objects, { maxCount: 1 }, ctx(keys[2] ?? ""));
    assert.deepEqual(survivors(objects, result), withManifests([keys[2] ?? ""]));
  });

  test("trap 1: a maxAge shorter than every backup's age still keeps the newest", () => {
    const keys = [snap(72), snap(48), snap(24)];
    const objects = listed(...withManifests(keys));
    const result = plan(objects, { maxAgeMs: hour }, ctx("backups/vault/prod/custom-key.snap"));
    assert.deepEqual(survivors(objects, result), withManifests([keys[2] ?? ""]));
    assert.deepEqual(
      result.keep.map((k) => [k.key, k.reason]),
      [
        [keys[2], "newest"],
        [manifestKey(keys[2] ?? ""), "manifest-of-kept"],
      ],
    );
    assert.ok(result.delete.every((d) => d.reason === "max-age"));
  });

  test("trap 1: the only backup is never deleted, whatever the policy", () => {
    const only = snap(10_000);
    for (const policy of [{ maxCount: 1 }, { maxAgeMs: 1 }, { maxCount: 1, maxAgeMs: 1 }]) {
      const result = plan(listed(only, manifestKey(only)), policy, ctx(only));
      assert.deepEqual(result.delete, []);
    }
  });

  test("trap 1: pre-upgrade snapshots are neither deleted nor counted", () => {
    const standard = [snap(300), snap(200), snap(100)];
    const pre = [preUpgrade(5000), preUpgrade(50), preUpgrade(10), preUpgrade(1)];
    const objects = listed(...withManifests(standard), ...pre);
    const result = plan(objects, { maxCount: 3, maxAgeMs: 1000 * day }, ctx(standard[2] ?? ""));
    assert.deepEqual(result.delete, []);
    const tight = plan(objects, { maxCount: 1, maxAgeMs: hour }, ctx(standard[2] ?? ""));
    assert.deepEqual(survivors(objects, tight).sort(), [...withManifests([standard[2] ?? ""]), ...pre].sort());
  });

  test("trap 1: objects of other clusters, namespaces and prefixes are never touched or counted", () => {
    const ours = [snap(50), snap(40)];
    const others = [
      snap(90, { ...here, cluster: "prod-2" }),
      snap(90, { ...here, cluster: "pro" }),
      snap(90, { ...here, namespace: "vault-2" }),
      snap(90, { ...here, pathPrefix: "" }),
      snap(90, { ...here, pathPrefix: "backups/old" }),
    ];
    const nearMisses = [
      "backups/vault/prod/2025-01-01T00-00-00Z-0a1b2c3.snap",
      "backups/vault/prod/2025-01-01T00-00-00Z-0A1B2C3D.snap",
      "backups/vault/prod/2025-02-30T00-00-00Z-0a1b2c3d.snap",
      "backups/vault/prod/2025-01-01T00-00-00Z-0a1b2c3d.snap.tmp",
      "backups/vault/prod/nested/2025-01-01T00-00-00Z-0a1b2c3d.snap",
    ];
    const objects = listed(...ours, ...others, ...others.map(manifestKey), ...nearMisses);
    const result = plan(objects, { maxCount: 1, maxAgeMs: hour }, ctx(ours[1] ?? ""));
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [ours[0]],
    );
    assert.ok(result.ignored.every((d) => d.reason === "foreign"));
    assert.equal(result.ignored.length, others.length * 2 + nearMisses.length);
  });

  test("manifests go with their snapshot; an orphan manifest is left alone", () => {
    const [old, mid, newest] = [snap(30), snap(20), snap(10)];
    const orphan = manifestKey(snap(40)); // its snapshot is not listed
    const objects = listed(
      old ?? "",
      manifestKey(old ?? ""),
      mid ?? "",
      newest ?? "",
      manifestKey(newest ?? ""),
      orphan,
    );
    const result = plan(objects, { maxCount: 1 }, ctx(newest ?? ""));
    assert.deepEqual(
      result.delete.map((d) => [d.key, d.object]),
      [
        [manifestKey(old ?? ""), "manifest"],
        [old, "snapshot"],
        [mid, "snapshot"],
      ],
    );
    assert.deepEqual(result.ignored, [{ key: orphan, reason: "orphan-manifest" }]);
    assert.deepEqual(
      result.keep.map((k) => [k.key, k.reason]),
      [
        [newest, "newest"],
        [manifestKey(newest ?? ""), "manifest-of-kept"],
      ],
    );
  });

  test("maxCount and maxAge together delete what either rule deletes", () => {
    const keys = [snap(100), snap(80), snap(60), snap(3), snap(2), snap(1)];
    const result = plan(listed(...withManifests(keys)), { maxCount: 5, maxAgeMs: 70 * hour }, ctx(keys[5] ?? ""));
    assert.deepEqual(
      result.delete.filter((d) => d.object === "snapshot").map((d) => [d.key, d.reason]),
      [
        [keys[0], "max-count"],
        [keys[1], "max-age"],
      ],
    );
  });

  test("maxAge deletes only what is strictly older", () => {
    const exactly = snap(24);
    const older = buildKey({
      ...here,
      time: new Date(now.getTime() - 24 * hour - 1000),
      kind: "scheduled",
      random: nextId(),
    });
    const newest = snap(1);
    const result = plan(listed(...withManifests([older, exactly, newest])), { maxAgeMs: 24 * hour }, ctx(newest));
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [manifestKey(older), older],
    );
  });

  test("a listing with overlapping pages decides each key once", () => {
    const keys = [snap(30), snap(20), snap(10)];
    const objects = listed(...keys, ...keys, manifestKey(keys[0] ?? ""), manifestKey(keys[0] ?? ""));
    const result = plan(objects, { maxCount: 1 }, ctx(keys[2] ?? ""));
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [manifestKey(keys[0] ?? ""), keys[0], keys[1]],
    );
  });

  test("snapshots stamped in the same second are ordered deterministically", () => {
    const time = new Date(now.getTime() - hour);
    const a = buildKey({ ...here, time, kind: "scheduled", random: "00000001" });
    const b = buildKey({ ...here, time, kind: "scheduled", random: "00000002" });
    for (const order of [
      [a, b],
      [b, a],
    ]) {
      const result = plan(listed(...withManifests(order)), { maxCount: 1 }, ctx("not-a-standard-key"));
      assert.equal(result.newest, b);
      assert.deepEqual(
        result.delete.map((d) => d.key),
        [manifestKey(a), a],
      );
    }
  });

  test("a key from the future (clock skew) is the newest and is kept", () => {
    const future = snap(-48);
    const keys = [snap(10), snap(0)];
    const result = plan(listed(...withManifests([...keys, future])), { maxCount: 1 }, ctx(keys[1] ?? ""));
    assert.equal(result.newest, future);
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [manifestKey(keys[0] ?? ""), keys[0]],
    );
  });
});

describe("planRetention: the key just written", () => {
  test("is kept even when it is not the newest (a newer key exists)", () => {
    const [older, justWritten, newer] = [snap(50), snap(20), snap(10)];
    const objects = listed(
      older ?? "",
      manifestKey(older ?? ""),
      justWritten ?? "",
      newer ?? "",
      manifestKey(newer ?? ""),
    );
    const result = plan(objects, { maxCount: 1 }, ctx(justWritten ?? ""));
    assert.deepEqual(
      result.keep.map((k) => [k.key, k.reason]),
      [
        [newer, "newest"],
        [manifestKey(newer ?? ""), "manifest-of-kept"],
        [justWritten, "just-written"],
      ],
    );
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [manifestKey(older ?? ""), older],
    );
  });

  test("trap 2: a catch-up backup stamped at its start time is the newest and survives maxAge", () => {
    // Windows at 00:00 on three days were missed while the operator was down; the catch-up run
    // starts now and stamps its key with now, not with the missed scheduled time.
    const before = [snap(24 * 5), snap(24 * 4)];
    const catchUp = snap(0);
    const result = plan(listed(...before, catchUp), { maxAgeMs: 3 * day }, ctx(catchUp));
    assert.equal(result.newest, catchUp);
    assert.deepEqual(survivors(listed(...before, catchUp), result), [catchUp]);
  });

  test("trap 2: even a key stamped with an old time is never deleted by the run that wrote it", () => {
    const stampedOld = snap(24 * 10);
    const newer = snap(24);
    const result = plan(listed(stampedOld, newer), { maxCount: 1, maxAgeMs: day }, ctx(stampedOld));
    assert.deepEqual(result.delete, []);
  });

  test("is counted even when the listing does not show it yet", () => {
    const older = [snap(30), snap(20), snap(10)];
    const justWritten = snap(0);
    const result = plan(listed(...withManifests(older), manifestKey(justWritten)), { maxCount: 3 }, ctx(justWritten));
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [manifestKey(older[0] ?? ""), older[0]],
    );
    assert.equal(result.newest, justWritten);
    assert.ok(!result.keep.some((k) => k.key === justWritten), "keep lists only listed objects");
    assert.ok(result.keep.some((k) => k.key === manifestKey(justWritten)));
  });

  test("a custom (non-standard) key protects nothing else and is not a candidate", () => {
    const keys = [snap(30), snap(20)];
    const custom = "backups/vault/prod/manual-before-migration.snap";
    const result = plan(listed(...withManifests(keys), custom), { maxCount: 1 }, ctx(custom));
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [manifestKey(keys[0] ?? ""), keys[0]],
    );
    assert.deepEqual(result.ignored, [{ key: custom, reason: "foreign" }]);
  });
});

describe("planRetention: snapshots without a manifest (issue 18)", () => {
  const kinds = (result: RetentionPlan) => ({
    keep: result.keep.map((k) => [k.key, k.reason]),
    unverified: result.unverified.map((u) => [u.key, u.reason]),
    delete: result.delete.map((d) => [d.key, d.reason, d.unverified === true]),
  });

  test("an unverified snapshot takes no maxCount slot: maxCount 2, verified A and B, unverified C newest → A and B kept, C reported", () => {
    // Before issue 18, C counted as the newest candidate and pushed A out of the two slots.
    const [a, b, c] = [snap(30), snap(20), snap(10)];
    const objects = listed(a ?? "", manifestKey(a ?? ""), b ?? "", manifestKey(b ?? ""), c ?? "");
    for (const justWritten of ["", "backups/vault/prod/custom.snap"]) {
      const result = plan(objects, { maxCount: 2 }, ctx(justWritten));
      assert.deepEqual(result.delete, []);
      assert.deepEqual(kinds(result).keep, [
        [b, "newest"],
        [manifestKey(b ?? ""), "manifest-of-kept"],
        [a, "within-policy"],
        [manifestKey(a ?? ""), "manifest-of-kept"],
      ]);
      assert.deepEqual(result.unverified, [{ key: c, reason: "newer-than-verified" }]);
      assert.equal(result.newest, b, "only a verified snapshot is the newest");
    }
  });

  test("an unverified snapshot newer than the newest verified one is never deleted, whatever the policy", () => {
    // Perhaps a run writing its manifest right now; also when it is older than maxAge.
    const verified = [snap(24 * 40), snap(24 * 30)];
    const newer = [snap(24 * 20), snap(24 * 10)];
    const objects = listed(...withManifests(verified), ...newer);
    for (const policy of [{ maxCount: 1 }, { maxAgeMs: 1 }, { maxCount: 1, maxAgeMs: 1 }]) {
      const result = plan(objects, policy, ctx(""));
      assert.deepEqual(kinds(result).delete, [
        [manifestKey(verified[0] ?? ""), policy.maxCount ? "max-count" : "max-age", false],
        [verified[0], policy.maxCount ? "max-count" : "max-age", false],
      ]);
      assert.deepEqual(kinds(result).unverified, [
        [newer[1], "newer-than-verified"],
        [newer[0], "newer-than-verified"],
      ]);
      assert.equal(result.newest, verified[1]);
    }
  });

  test("with no verified snapshot at all, nothing is deleted and every snapshot is reported", () => {
    const keys = [snap(24 * 30), snap(24 * 20), snap(24 * 10)];
    const result = plan(listed(...keys), { maxCount: 1, maxAgeMs: hour }, ctx(""));
    assert.deepEqual(result.delete, []);
    assert.deepEqual(result.keep, []);
    assert.equal(result.newest, null);
    assert.deepEqual(
      result.unverified.map((u) => [u.key, u.reason]),
      [...keys].reverse().map((key) => [key, "no-verified"]),
    );
  });

  test("maxAge deletes an unverified snapshot older than the age and than the newest verified one", () => {
    const [old, v1, recent, v2] = [snap(48), snap(10), snap(5), snap(1)];
    const objects = listed(old ?? "", recent ?? "", ...withManifests([v1 ?? "", v2 ?? ""]));
    const result = plan(objects, { maxAgeMs: 24 * hour }, ctx(""));
    assert.deepEqual(kinds(result).delete, [[old, "max-age", true]], "no manifest to delete with it");
    assert.deepEqual(kinds(result).unverified, [[recent, "within-policy"]]);
    assert.deepEqual(
      kinds(result).keep.map(([key]) => key),
      withManifests([v2 ?? "", v1 ?? ""]),
    );
  });

  test("maxCount alone deletes an unverified snapshot older than every verified snapshot kept", () => {
    const [v40, u35, v30, u25, v20, u15, v10, u5] = [40, 35, 30, 25, 20, 15, 10, 5].map((h) => snap(h));
    const verified = [v40, v30, v20, v10].map((k) => k ?? "");
    const objects = listed(...withManifests(verified), u35 ?? "", u25 ?? "", u15 ?? "", u5 ?? "");
    const result = plan(objects, { maxCount: 2 }, ctx(""));
    assert.deepEqual(kinds(result).delete, [
      [manifestKey(v40 ?? ""), "max-count", false],
      [v40, "max-count", false],
      [u35, "max-count", true],
      [manifestKey(v30 ?? ""), "max-count", false],
      [v30, "max-count", false],
      [u25, "max-count", true],
    ]);
    assert.deepEqual(kinds(result).unverified, [
      [u5, "newer-than-verified"],
      [u15, "within-policy"],
    ]);
    assert.deepEqual(
      result.keep.filter((k) => k.object === "snapshot").map((k) => k.key),
      [v10, v20],
    );
  });

  test("with maxCount and maxAge, an unverified snapshot is deleted when either says so", () => {
    const [u50, v10, u5, v2, u1] = [50, 10, 5, 2, 1].map((h) => snap(h));
    const objects = listed(u50 ?? "", u5 ?? "", u1 ?? "", ...withManifests([v10 ?? "", v2 ?? ""]));
    const result = plan(objects, { maxCount: 3, maxAgeMs: 24 * hour }, ctx(""));
    // Older than every verified snapshot kept, so maxCount (checked first, as for a verified one) deletes it.
    assert.deepEqual(kinds(result).delete, [[u50, "max-count", true]]);
    assert.deepEqual(kinds(result).unverified, [
      [u1, "newer-than-verified"],
      [u5, "within-policy"],
    ]);
    const tight = plan(objects, { maxCount: 1, maxAgeMs: 100 * hour }, ctx(""));
    assert.deepEqual(kinds(tight).delete, [
      [u50, "max-count", true],
      [manifestKey(v10 ?? ""), "max-count", false],
      [v10, "max-count", false],
      [u5, "max-count", true],
    ]);
    assert.deepEqual(kinds(tight).unverified, [[u1, "newer-than-verified"]]);
    // A key just written but stamped long ago (trap 2) is kept, so only maxAge can delete u50.
    const stampedOld = snap(60);
    const withOld = plan([...objects, ...listed(stampedOld)], { maxCount: 3, maxAgeMs: 24 * hour }, ctx(stampedOld));
    assert.deepEqual(kinds(withOld).delete, [[u50, "max-age", true]]);
  });

  test("a snapshot whose manifest was deleted before its own delete failed is deleted by the next run", () => {
    const keys = [snap(50), snap(40), snap(30), snap(20)];
    const policy = { maxCount: 2, maxAgeMs: 30 * day };
    const first = plan(listed(...withManifests(keys)), policy, ctx(""));
    assert.deepEqual(
      first.delete.map((d) => d.key),
      [manifestKey(keys[0] ?? ""), keys[0], manifestKey(keys[1] ?? ""), keys[1]],
    );
    // The run deleted both manifests and the first snapshot, then failed on the second.
    const leftover = [keys[1] ?? "", ...withManifests(keys.slice(2))];
    const next = plan(listed(...leftover), policy, ctx(""));
    assert.deepEqual(kinds(next).delete, [[keys[1], "max-count", true]]);
  });

  test("the key just written counts as verified before its manifest is listed", () => {
    const [old, unverified, justWritten] = [snap(30), snap(20), snap(0)];
    // The listing shows the new snapshot but not yet its manifest (eventual consistency).
    const objects = listed(...withManifests([old ?? ""]), unverified ?? "", justWritten ?? "");
    const result = plan(objects, { maxCount: 1 }, ctx(justWritten ?? ""));
    assert.equal(result.newest, justWritten);
    assert.deepEqual(kinds(result).keep, [[justWritten, "newest"]]);
    assert.deepEqual(result.unverified, []);
    assert.deepEqual(kinds(result).delete, [
      [manifestKey(old ?? ""), "max-count", false],
      [old, "max-count", false],
      [unverified, "max-count", true],
    ]);
    // Not listed at all, it still holds the slot and bounds the unverified ones.
    const unlisted = plan(
      listed(...withManifests([old ?? ""]), unverified ?? ""),
      { maxCount: 2 },
      ctx(justWritten ?? ""),
    );
    assert.equal(unlisted.newest, justWritten);
    assert.deepEqual(kinds(unlisted).unverified, [[unverified, "within-policy"]]);
    assert.deepEqual(unlisted.delete, []);
  });

  test("random listings: every key is decided once and no unverified snapshot newer than the newest verified is deleted", () => {
    let seed = 18;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const objects: string[] = [];
      const count = random(12);
      for (let i = 0; i < count; i++) {
        const key = snap(random(24 * 10) - 12);
        const shape = random(10);
        if (shape < 5) objects.push(key, manifestKey(key));
        else if (shape < 8) objects.push(key);
        else if (shape < 9) objects.push(manifestKey(key));
        else objects.push(preUpgrade(random(100)), "backups/vault/prod/notes.txt");
      }
      const policies: RetentionPolicy[] = [{}, { maxCount: 1 + random(4) }, { maxAgeMs: (1 + random(100)) * hour }];
      policies.push({ ...policies[1], ...policies[2] });
      const justWritten = random(2) === 0 ? snap(0) : "";
      for (const policy of policies) plan(listed(...objects), policy, ctx(justWritten));
    }
  });
});

describe("planRetention: age comes from the key, not from lastModified", () => {
  test("trap 2: lastModified is ignored in both directions", () => {
    const oldKey = snap(24 * 30);
    const newKey = snap(1);
    const objects: ListedObject[] = [
      { key: oldKey, lastModified: now }, // re-uploaded/copied: modified recently, but old by its key
      { key: newKey, lastModified: new Date("2000-01-01T00:00:00Z") }, // restored from archive storage
    ];
    const result = plan(objects, { maxAgeMs: 7 * day }, ctx(newKey));
    assert.deepEqual(
      result.delete.map((d) => d.key),
      [oldKey],
    );
  });
});

describe("planRetention: scale", () => {
  test("trap 1: 1,500 keys over several pages are all seen, and only the N newest survive", () => {
    const keys = Array.from({ length: 1500 }, (_, i) => snap(1500 - i)); // oldest first
    const all = withManifests(keys);
    // Shuffle deterministically, as pages from several list calls might arrive.
    const shuffled = all.map((key, i) => ({ key, sort: (i * 7919) % all.length })).sort((a, b) => a.sort - b.sort);
    const objects = listed(...shuffled.map((s) => s.key));
    const started = performance.now();
    const result = plan(objects, { maxCount: 10 }, ctx(keys[1499] ?? ""));
    const elapsed = performance.now() - started;
    assert.equal(result.delete.length, 2 * 1490);
    assert.deepEqual(survivors(objects, result).sort(), withManifests(keys.slice(1490)).sort());
    assert.deepEqual(
      result.delete.filter((d) => d.object === "snapshot").map((d) => d.key),
      keys.slice(0, 1490),
      "deletions run oldest first",
    );
    assert.ok(elapsed < 2000, `planning 3,000 objects took ${elapsed} ms`);
  });
});

describe("planRetention: invalid input", () => {
  const invalid: [RetentionPolicy, string][] = [
    [{ maxCount: 0 }, "maxCount"],
    [{ maxCount: -1 }, "maxCount"],
    [{ maxCount: 1.5 }, "maxCount"],
    [{ maxCount: Number.NaN }, "maxCount"],
    [{ maxAgeMs: 0 }, "maxAge"],
    [{ maxAgeMs: -5 }, "maxAge"],
    [{ maxAgeMs: Number.POSITIVE_INFINITY }, "maxAge"],
    [{ maxAgeMs: Number.NaN }, "maxAge"],
  ];
  for (const [policy, field] of invalid) {
    test(`refuses ${JSON.stringify(policy)} instead of guessing`, () => {
      assert.throws(
        () => planRetention(listed(snap(1)), policy, ctx(snap(0))),
        (error: unknown) => {
          assert.ok(error instanceof RetentionPolicyError);
          assert.equal(error.code, "InvalidRetentionPolicy");
          assert.equal(error.field, field);
          assert.match(error.message, new RegExp(`^retention\\.${field}: `));
          return true;
        },
      );
    });
  }

  test("refuses an invalid clock", () => {
    assert.throws(() => planRetention([], {}, ctx("x", { now: new Date("nope") })), RangeError);
  });
});
