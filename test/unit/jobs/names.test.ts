import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  backupJobName,
  fitName,
  formatJobTimestamp,
  labelValue,
  preUpgradeJobName,
  restoreJobName,
  shortHash,
} from "../../../src/jobs/names.ts";

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const time = new Date("2025-03-04T05:06:07.890Z");
const uid = "3f0c2a9e-1b7d-4c55-9e0f-2d6a8b1c4e77";

/** A deterministic pseudo-random DNS-1123 subdomain of exactly `length` characters. */
function clusterName(length: number, seed: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-.";
  let state = seed * 2654435761;
  let name = "";
  for (let i = 0; i < length; i += 1) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    let c = alphabet[state % alphabet.length] ?? "a";
    const first = i === 0;
    const last = i === length - 1;
    const afterDot = name.endsWith(".") || name.endsWith("-");
    if ((first || last || afterDot) && (c === "-" || c === ".")) c = "x";
    name += c;
  }
  return name;
}

describe("backupJobName", () => {
  test("backup-<cluster>-<yyyymmdd-hhmmss> in UTC, sub-seconds dropped", () => {
    assert.equal(backupJobName("prod", time), "backup-prod-20250304-050607");
    assert.equal(formatJobTimestamp(new Date("2025-12-31T23:59:59+02:00")), "20251231-215959");
  });

  test("clusters up to 39 characters appear whole; longer ones are shortened to exactly 63", () => {
    const n39 = "a".repeat(39);
    assert.equal(backupJobName(n39, time), `backup-${n39}-20250304-050607`);
    assert.equal(backupJobName(n39, time).length, 62);
    const n40 = "a".repeat(40);
    const shortened = backupJobName(n40, time);
    assert.equal(shortened, `backup-${"a".repeat(31)}-${shortHash(n40)}-20250304-050607`);
    assert.equal(shortened.length, 63);
  });

  test("trap 8: job names ≤ 63 chars and DNS labels for every cluster name length up to 253", () => {
    for (let length = 1; length <= 253; length += 1) {
      for (const seed of [1, 2, 3]) {
        const cluster = clusterName(length, seed + length * 7);
        for (const name of [
          backupJobName(cluster, time),
          preUpgradeJobName(cluster, "2.4.1+build.7", 3),
          preUpgradeJobName(cluster, "2.4.1", 42),
          restoreJobName({ metadata: { name: cluster, uid } }),
        ]) {
          assert.ok(name.length <= 63, `${name} (${name.length}) for a ${length}-character name`);
          assert.match(name, dnsLabel, `${name} for ${cluster}`);
        }
        const label = labelValue(cluster);
        assert.ok(label.length <= 63 && labelValuePattern.test(label), `${label} for ${cluster}`);
      }
    }
  });

  test("a 63-character cluster name (the acceptance case) gives a valid name", () => {
    const cluster = `prod-${"x".repeat(53)}-east`;
    assert.equal(cluster.length, 63);
    const name = backupJobName(cluster, time);
    assert.match(name, dnsLabel);
    assert.equal(name.length, 63);
    assert.ok(name.startsWith("backup-prod-xxx"));
    assert.ok(name.endsWith("-20250304-050607"));
  });

  test("deterministic: the same cluster and window give the same name (a restarted operator finds its Job)", () => {
    const cluster = clusterName(200, 9);
    assert.equal(backupJobName(cluster, time), backupJobName(cluster, new Date(time.getTime())));
    assert.equal(backupJobName(cluster, time), backupJobName(cluster, new Date("2025-03-04T05:06:07.001Z")));
  });

  test("distinct for different clusters even when their shortened starts collide", () => {
    const prefix = "a".repeat(60);
    const names = new Set<string>();
    for (let i = 0; i < 500; i += 1) names.add(backupJobName(`${prefix}-${i}`, time));
    assert.equal(names.size, 500);
    // Dots become hyphens only in a shortened (hashed) part, so a.b and a-b stay apart.
    assert.notEqual(backupJobName("a.b", time), backupJobName("a-b", time));
    assert.equal(backupJobName("a-b", time), "backup-a-b-20250304-050607");
  });

  test("a shortened part never equals a whole name (different lengths)", () => {
    const long = "b".repeat(80);
    const part = fitName(long, 40);
    assert.equal(part.length, 40);
    // A cluster literally named like the shortened part is itself too long to appear whole.
    assert.notEqual(backupJobName(part, time), backupJobName(long, time));
  });

  test("different windows give different names", () => {
    assert.notEqual(backupJobName("prod", time), backupJobName("prod", new Date("2025-03-04T05:07:07Z")));
  });
});

describe("preUpgradeJobName", () => {
  test("one name per target version and attempt", () => {
    assert.equal(preUpgradeJobName("prod", "2.4.1", 1), `pre-upgrade-prod-${shortHash("2.4.1")}-1`);
    const names = new Set([
      preUpgradeJobName("prod", "2.4.1", 1),
      preUpgradeJobName("prod", "2.4.1", 2),
      preUpgradeJobName("prod", "2.4.1", 3),
      preUpgradeJobName("prod", "2.5.0", 1),
      preUpgradeJobName("prod-2", "2.4.1", 1),
    ]);
    assert.equal(names.size, 5);
    assert.equal(preUpgradeJobName("prod", "2.4.1", 2), preUpgradeJobName("prod", "2.4.1", 2));
  });

  test("refuses attempt numbers outside 1–99", () => {
    for (const attempt of [0, -1, 1.5, 100])
      assert.throws(() => preUpgradeJobName("prod", "2.4.1", attempt), RangeError);
  });
});

describe("restoreJobName", () => {
  test("restore-<name>-<uid prefix>", () => {
    assert.equal(restoreJobName({ metadata: { name: "restore-1", uid } }), "restore-restore-1-3f0c2a9e");
  });

  test("a re-created restore of the same name gets a new Job name", () => {
    const other = "9a1b2c3d-0000-4000-8000-000000000000";
    assert.notEqual(
      restoreJobName({ metadata: { name: "r", uid } }),
      restoreJobName({ metadata: { name: "r", uid: other } }),
    );
  });

  test("refuses a restore without a UID", () => {
    assert.throws(() => restoreJobName({ metadata: { name: "r", uid: "" } }), /no UID/);
  });
});

describe("labelValue", () => {
  test("names up to 62 characters are kept, dots included; longer are shortened to exactly 63", () => {
    assert.equal(labelValue("bao.eu-1"), "bao.eu-1");
    assert.equal(labelValue("a".repeat(62)), "a".repeat(62));
    const long = labelValue("a".repeat(63));
    assert.equal(long.length, 63);
    assert.ok(long.endsWith(shortHash("a".repeat(63))));
    assert.notEqual(labelValue(`${"a".repeat(70)}x`), labelValue(`${"a".repeat(70)}y`));
  });
});
