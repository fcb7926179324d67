/**
 * Issue 17: `bao-backup drill`'s settings — its own three, restore's for the rest — and every
 * refusal naming the variable, its flag and the fix.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadDrillConfig, splitDrillArgv, throwawayAddress } from "../../../src/drill/config.ts";
import { classify } from "../../../src/executor/failure.ts";

const base = { BACKUP_BUCKET: "backups", BACKUP_KEY: "openbao/bao/2026-12-06T04-13-26Z-a85e1be8.snap" };
const addr = { DRILL_OPENBAO_ADDR: "http://127.0.0.1:8200" };

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    const c = classify(err);
    return `${c.exitCode} ${c.reason}: ${c.message}`;
  }
  return "accepted";
}

describe("drill configuration", () => {
  test("the throwaway and restore's settings; a static token by default", () => {
    const c = loadDrillConfig({ ...base, ...addr, BAO_TOKEN: "s.drilltokenvalueabcdefghijkl" }, []);
    assert.equal(c.mode, "drill");
    assert.equal(c.throwaway, "http://127.0.0.1:8200");
    assert.equal(c.unsealKeysDir, undefined);
    assert.equal(c.canary, undefined);
    assert.equal(c.restore.key, base.BACKUP_KEY);
    assert.deepEqual(c.restore.members, ["http://127.0.0.1:8200"]);
    assert.equal(c.restore.auth.method, "token");
    assert.equal(c.restore.staticToken, "s.drilltokenvalueabcdefghijkl");
    assert.equal(c.restore.target.bucket, "backups");
  });

  test("flags: the drill's own taken out, the rest read as restore reads them", () => {
    const c = loadDrillConfig({}, [
      "--openbao-addr",
      "http://127.0.0.1:18200",
      "--bucket=backups",
      "--unseal-keys-dir=/keys",
      "--key",
      "latest",
      "--canary-path",
      "kv/drills/canary",
      "--cluster",
      "bao",
      "--namespace",
      "openbao",
      "--auth-method",
      "jwt",
      "--jwt-role",
      "drill",
    ]);
    assert.equal(c.throwaway, "http://127.0.0.1:18200");
    assert.equal(c.unsealKeysDir, "/keys");
    assert.deepEqual(c.canary, { mount: "kv", path: "drills/canary" });
    assert.equal(c.restore.key, "latest");
    assert.deepEqual(c.restore.source, { name: "bao", namespace: "openbao" });
    assert.equal(c.restore.auth.method, "jwt");
  });

  test("splitting the command line never throws and keeps values with their flags", () => {
    assert.deepEqual(splitDrillArgv(["--force", "--openbao-addr", "http://127.0.0.1:1", "--bucket", "b", "stray"]), {
      values: new Map([["DRILL_OPENBAO_ADDR", "http://127.0.0.1:1"]]),
      rest: ["--force", "--bucket", "b", "stray"],
    });
    assert.deepEqual(splitDrillArgv(["--canary-path"]).values.get("DRILL_CANARY_PATH"), "");
  });

  const refusals: { name: string; env: Record<string, string>; argv?: string[]; expect: RegExp }[] = [
    {
      name: "no throwaway",
      env: base,
      expect:
        /^1 InvalidConfig: DRILL_OPENBAO_ADDR \(--openbao-addr\): is required: the address of the throwaway OpenBao to restore into, e.g. http:\/\/127.0.0.1:8200/,
    },
    {
      name: "a throwaway that is not loopback",
      env: { ...base, DRILL_OPENBAO_ADDR: "https://bao.openbao.svc:8200" },
      expect:
        /DRILL_OPENBAO_ADDR \(--openbao-addr\): "https:\/\/bao.openbao.svc:8200" is not a loopback address: .*127\.0\.0\.1/,
    },
    {
      name: "a throwaway address with a path",
      env: { ...base, DRILL_OPENBAO_ADDR: "http://127.0.0.1:8200/v1" },
      expect: /must be scheme:\/\/host:port and nothing more/,
    },
    {
      name: "not a URL",
      env: { ...base, DRILL_OPENBAO_ADDR: "127.0.0.1:8200" },
      expect: /DRILL_OPENBAO_ADDR \(--openbao-addr\): "127.0.0.1:8200" (is not a URL|must start with http)/,
    },
    {
      name: "the live cluster's members",
      env: { ...base, ...addr, BACKUP_OPENBAO_ADDRESSES: "https://bao-0.bao.openbao.svc:8200" },
      expect:
        /^1 InvalidConfig: BACKUP_OPENBAO_ADDRESSES \(--openbao-addresses\): a drill never contacts the live cluster; give the throwaway with --openbao-addr/,
    },
    {
      name: "--force",
      env: { ...base, ...addr },
      argv: ["--force"],
      expect: /^1 InvalidConfig: BACKUP_FORCE \(--force\): does not apply to a drill/,
    },
    {
      name: "--expect-sealed",
      env: { ...base, ...addr, BACKUP_EXPECT_SEALED: "true" },
      expect: /BACKUP_EXPECT_SEALED \(--expect-sealed\): does not apply to a drill/,
    },
    {
      name: "a canary path without a mount",
      env: { ...base, ...addr, DRILL_CANARY_PATH: "canary" },
      expect:
        /^1 InvalidConfig: DRILL_CANARY_PATH \(--canary-path\): "canary" must be <KV v2 mount>\/<secret path>, e\.g\. secret\/openbao-backup\/canary/,
    },
    {
      name: "a canary path climbing out",
      env: { ...base, ...addr, DRILL_CANARY_PATH: "secret/../sys/canary" },
      expect: /DRILL_CANARY_PATH \(--canary-path\): .*no "\." or "\.\." segment/,
    },
    {
      name: "jwt asked for without a role",
      env: { ...base, ...addr, BACKUP_AUTH_METHOD: "jwt" },
      expect: /BACKUP_JWT_AUTH_ROLE \(--jwt-role\): is required/,
    },
    {
      name: "no key",
      env: { ...addr, BACKUP_BUCKET: "backups" },
      expect: /BACKUP_KEY \(--key\): is required/,
    },
    {
      name: "an unknown flag",
      env: { ...base, ...addr },
      argv: ["--unseal-key", "x"],
      expect: /unknown option --unseal-key/,
    },
  ];
  for (const r of refusals) {
    test(`refused: ${r.name}`, () => {
      assert.match(
        failure(() => loadDrillConfig(r.env, r.argv ?? [])),
        r.expect,
      );
    });
  }

  test("loopback addresses in every form OpenBao is reached by", () => {
    assert.equal(throwawayAddress("http://127.0.0.1:8200"), "http://127.0.0.1:8200");
    assert.equal(throwawayAddress("https://127.0.0.2:8200/"), "https://127.0.0.2:8200");
    assert.equal(throwawayAddress("http://[::1]:8200"), "http://[::1]:8200");
    assert.equal(throwawayAddress("http://localhost:8200"), "http://localhost:8200");
    assert.match(
      failure(() => throwawayAddress("http://0x7f.0.0.1:8200")),
      /canonical form|not a loopback/,
    );
    assert.match(
      failure(() => throwawayAddress("http://169.254.169.254")),
      /link-local|not a loopback/,
    );
  });
});
