import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { KeyPartError } from "../../../src/snapshot/errors.ts";
import {
  buildKey,
  type ClusterLocation,
  clusterPrefix,
  formatKeyTimestamp,
  manifestKey,
  newKeyId,
  normalizePathPrefix,
  parseKey,
  snapshotKeyOfManifest,
} from "../../../src/snapshot/key.ts";

const at = new Date("2025-03-04T05:06:07.890Z");
const here: ClusterLocation = { pathPrefix: "backups", namespace: "vault", cluster: "prod" };

describe("buildKey", () => {
  const cases: { name: string; input: Parameters<typeof buildKey>[0]; expected: string }[] = [
    {
      name: "scheduled, with a pathPrefix",
      input: { ...here, time: at, kind: "scheduled", random: "0a1b2c3d" },
      expected: "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap",
    },
    {
      name: "pre-upgrade inserts the marker before the timestamp",
      input: { ...here, time: at, kind: "pre-upgrade", random: "deadbeef" },
      expected: "backups/vault/prod/pre-upgrade-2025-03-04T05-06-07Z-deadbeef.snap",
    },
    {
      name: "empty pathPrefix: no leading slash",
      input: { ...here, pathPrefix: "", time: at, kind: "scheduled", random: "00000000" },
      expected: "vault/prod/2025-03-04T05-06-07Z-00000000.snap",
    },
    {
      name: "trailing slashes are normalised away",
      input: { ...here, pathPrefix: "a/b//", time: at, kind: "scheduled", random: "ffffffff" },
      expected: "a/b/vault/prod/2025-03-04T05-06-07Z-ffffffff.snap",
    },
    {
      name: "a nested pathPrefix",
      input: { ...here, pathPrefix: "team-a/openbao/backups", time: at, kind: "scheduled", random: "12345678" },
      expected: "team-a/openbao/backups/vault/prod/2025-03-04T05-06-07Z-12345678.snap",
    },
    {
      name: "the timestamp is UTC whatever the input's offset",
      input: { ...here, time: new Date("2025-12-31T23:59:59+02:00"), kind: "scheduled", random: "abcdef01" },
      expected: "backups/vault/prod/2025-12-31T21-59-59Z-abcdef01.snap",
    },
    {
      name: "a cluster name with dots",
      input: { ...here, cluster: "bao.eu-1", time: at, kind: "scheduled", random: "abcdef01" },
      expected: "backups/vault/bao.eu-1/2025-03-04T05-06-07Z-abcdef01.snap",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const key = buildKey(c.input);
      assert.equal(key, c.expected);
      const parsed = parseKey(key, c.input);
      assert.ok(parsed, "every built key parses back");
      assert.equal(parsed.kind, c.input.kind);
      assert.equal(parsed.id, c.input.random);
      assert.equal(parsed.time.getTime(), Math.floor(c.input.time.getTime() / 1000) * 1000);
    });
  }

  const invalid: { name: string; change: Partial<Parameters<typeof buildKey>[0]>; field: string }[] = [
    { name: "7 hex digits", change: { random: "abcdef0" }, field: "random" },
    { name: "upper-case hex", change: { random: "ABCDEF01" }, field: "random" },
    { name: "a namespace with a slash", change: { namespace: "a/b" }, field: "namespace" },
    { name: "an upper-case namespace", change: { namespace: "Vault" }, field: "namespace" },
    { name: "an empty cluster", change: { cluster: "" }, field: "cluster" },
    { name: "a cluster with a slash", change: { cluster: "prod/../x" }, field: "cluster" },
    { name: "an invalid date", change: { time: new Date("nope") }, field: "time" },
    { name: "a 5-digit year", change: { time: new Date("+010000-01-01T00:00:00Z") }, field: "time" },
    { name: "a bad pathPrefix", change: { pathPrefix: "../up" }, field: "pathPrefix" },
  ];
  for (const c of invalid) {
    test(`rejects ${c.name}, naming ${c.field}`, () => {
      assert.throws(
        () => buildKey({ ...here, time: at, kind: "scheduled", random: "0a1b2c3d", ...c.change }),
        (error: unknown) => {
          assert.ok(error instanceof KeyPartError);
          assert.equal(error.code, "InvalidKeyPart");
          assert.equal(error.field, c.field);
          assert.ok(error.message.startsWith(`${c.field}: `), error.message);
          return true;
        },
      );
    });
  }

  test("newKeyId gives 8 lower-case hex digits that buildKey accepts", () => {
    for (let i = 0; i < 50; i++) {
      const id = newKeyId();
      assert.match(id, /^[0-9a-f]{8}$/);
      buildKey({ ...here, time: at, kind: "scheduled", random: id });
    }
  });

  test("formatKeyTimestamp pads every field", () => {
    assert.equal(formatKeyTimestamp(new Date("0999-01-02T03:04:05Z")), "0999-01-02T03-04-05Z");
  });
});

describe("pathPrefix validation", () => {
  const accepted: [string, string][] = [
    ["", ""],
    ["backups", "backups"],
    ["backups/", "backups"],
    ["backups///", "backups"],
    ["a/b/c", "a/b/c"],
    ["with space", "with space"],
    ["dots.in.name/..hidden", "dots.in.name/..hidden"],
  ];
  for (const [input, expected] of accepted) {
    test(`accepts ${JSON.stringify(input)} as ${JSON.stringify(expected)}`, () => {
      assert.equal(normalizePathPrefix(input), expected);
    });
  }

  const rejected: [string, RegExp][] = [
    ["/backups", /must not start with "\/"/],
    ["/", /must not start with "\/"/],
    ["a//b", /empty segments/],
    ["..", /"\.\." segments/],
    ["a/../b", /"\.\." segments/],
    ["a/./b", /"\." or "\.\." segments/],
    ["a\\b", /backslashes/],
    ["a\nb", /control characters/],
    ["a\u0000b", /control characters/],
    ["a\u007fb", /control characters/],
    ["x".repeat(513), /at most 512 bytes/],
  ];
  for (const [input, message] of rejected) {
    test(`rejects ${JSON.stringify(input.length > 20 ? `${input.slice(0, 20)}…` : input)}, naming pathPrefix`, () => {
      assert.throws(
        () => normalizePathPrefix(input),
        (error: unknown) => {
          assert.ok(error instanceof KeyPartError);
          assert.equal(error.field, "pathPrefix");
          assert.match(error.message, /^pathPrefix: /);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});

describe("clusterPrefix", () => {
  test("ends with a slash so that prod never lists prod-2", () => {
    assert.equal(clusterPrefix(here), "backups/vault/prod/");
    assert.equal(clusterPrefix({ ...here, pathPrefix: "" }), "vault/prod/");
    assert.ok(!"backups/vault/prod-2/2025-03-04T05-06-07Z-0a1b2c3d.snap".startsWith(clusterPrefix(here)));
  });
});

describe("parseKey", () => {
  const good = "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap";

  test("parses a scheduled key", () => {
    assert.deepEqual(parseKey(good, here), {
      kind: "scheduled",
      time: new Date("2025-03-04T05:06:07Z"),
      id: "0a1b2c3d",
    });
  });

  test("parses a pre-upgrade key", () => {
    assert.deepEqual(parseKey("backups/vault/prod/pre-upgrade-2025-03-04T05-06-07Z-0a1b2c3d.snap", here), {
      kind: "pre-upgrade",
      time: new Date("2025-03-04T05:06:07Z"),
      id: "0a1b2c3d",
    });
  });

  test("accepts the same pathPrefix written with a trailing slash", () => {
    assert.ok(parseKey(good, { ...here, pathPrefix: "backups/" }));
  });

  test("parses leap days that exist", () => {
    assert.ok(parseKey("backups/vault/prod/2024-02-29T00-00-00Z-0a1b2c3d.snap", here));
  });

  // Each of these must be null: retention deletes only what parses (SPEC §5 trap 1).
  const notOurs: [string, string][] = [
    ["another cluster whose name extends ours", "backups/vault/prod-2/2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["another cluster whose name is a prefix of ours", "backups/vault/pro/2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["another namespace", "backups/vault-2/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["another pathPrefix", "other/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["no pathPrefix when one is configured", "vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["a leading slash", "/backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["a manifest", `${good}.json`],
    ["a nested folder", "backups/vault/prod/old/2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["7 hex digits", "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3.snap"],
    ["9 hex digits", "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d4.snap"],
    ["upper-case hex", "backups/vault/prod/2025-03-04T05-06-07Z-0A1B2C3D.snap"],
    ["non-hex", "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3g.snap"],
    ["an extra suffix", "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap.bak"],
    ["a temporary suffix", "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap.tmp"],
    ["another extension", "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.tar.gz"],
    ["a prefix before the timestamp", "backups/vault/prod/manual-2025-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["colons in the time", "backups/vault/prod/2025-03-04T05:06:07Z-0a1b2c3d.snap"],
    ["no Z", "backups/vault/prod/2025-03-04T05-06-07-0a1b2c3d.snap"],
    ["February 30th", "backups/vault/prod/2025-02-30T05-06-07Z-0a1b2c3d.snap"],
    ["February 29th in a common year", "backups/vault/prod/2025-02-29T05-06-07Z-0a1b2c3d.snap"],
    ["month 13", "backups/vault/prod/2025-13-04T05-06-07Z-0a1b2c3d.snap"],
    ["hour 24", "backups/vault/prod/2025-03-04T24-00-00Z-0a1b2c3d.snap"],
    ["second 60", "backups/vault/prod/2025-03-04T05-06-60Z-0a1b2c3d.snap"],
    ["a short year", "backups/vault/prod/25-03-04T05-06-07Z-0a1b2c3d.snap"],
    ["pre-upgrade in the wrong place", "backups/vault/prod/2025-03-04T05-06-07Z-pre-upgrade-0a1b2c3d.snap"],
    ["the prefix itself", "backups/vault/prod/"],
    ["an empty key", ""],
  ];
  for (const [name, key] of notOurs) {
    test(`returns null for ${name}`, () => {
      assert.equal(parseKey(key, here), null);
    });
  }

  test("with an empty pathPrefix, keys under any prefix are not ours", () => {
    const bare = { ...here, pathPrefix: "" };
    assert.ok(parseKey("vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap", bare));
    assert.equal(parseKey(good, bare), null);
  });

  test("an invalid location throws rather than silently matching nothing", () => {
    assert.throws(() => parseKey(good, { ...here, pathPrefix: "/backups" }), KeyPartError);
  });
});

describe("manifest keys", () => {
  test("manifestKey appends .json and snapshotKeyOfManifest reverses it", () => {
    const key = "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap";
    assert.equal(manifestKey(key), `${key}.json`);
    assert.equal(snapshotKeyOfManifest(manifestKey(key)), key);
    assert.equal(snapshotKeyOfManifest(key), null);
    assert.equal(snapshotKeyOfManifest("backups/vault/prod/notes.json"), null);
  });
});
