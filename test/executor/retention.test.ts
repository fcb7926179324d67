/**
 * Issue 4 acceptance, retention inside the backup run (SPEC §4, §5 trap 1): only this
 * cluster's standard keys are candidates, the newest and the just-written key survive,
 * pre-upgrade and foreign objects are never touched, and every page of a listing is seen.
 * Issue 18: only verified snapshots (with a manifest) count; one without is kept and reported
 * until it is older than the newest verified one and beyond the policy.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildKey } from "../../src/snapshot/key.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers } from "../servers/process.ts";
import { clusterEnv, mounts, runExecutor } from "./harness.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

const day = 24 * 3600 * 1000;
const hex = (i: number): string => i.toString(16).padStart(8, "0");

describe("retention in the backup run (MinIO)", () => {
  let cluster: OpenBaoCluster;
  let target: TargetUnderTest;
  before(async () => {
    [cluster, target] = await startTogether([startOpenBao({ nodes: 1 }), startTarget("s3")]);
  });
  after(async () => {
    await Promise.all([cluster?.stop(), target?.stop()]);
  });

  const backup = (name: string, extra: Record<string, string>) =>
    runExecutor("backup", {
      ...clusterEnv(cluster),
      CLUSTER_NAME: name,
      ...target.env(),
      ...mounts({ cluster, credentials: target.credentials, token: cluster.rootToken }).env,
      ...extra,
    });

  const seed = async (
    name: string,
    count: number,
    kind: "scheduled" | "pre-upgrade",
    manifests: boolean,
    offset = 0,
  ) => {
    const keys: string[] = [];
    for (let i = 0; i < count; i++) {
      const time = new Date(Date.now() - (i + 1 + offset) * day);
      keys.push(buildKey({ pathPrefix: "", namespace: "openbao", cluster: name, time, kind, random: hex(i + offset) }));
    }
    const bodies = keys.flatMap((k) => (manifests ? [k, `${k}.json`] : [k]));
    for (let i = 0; i < bodies.length; i += 50) {
      await Promise.all(bodies.slice(i, i + 50).map((k) => target.put(k, Buffer.from("seeded"))));
    }
    return keys;
  };

  test("maxCount 3 keeps exactly the 3 newest standard snapshots and everything else", async () => {
    const standard = await seed("bao", 10, "scheduled", true);
    const preUpgrade = await seed("bao", 2, "pre-upgrade", false, 100);
    const foreign = [
      "openbao/bao/notes.txt",
      "openbao/bao/2020-01-01T00-00-00Z-ABCDEF12.snap",
      "openbao/bao-2/2020-01-01T00-00-00Z-abcdef12.snap",
    ];
    for (const k of foreign) await target.put(k, Buffer.from("foreign"));

    const run = await backup("bao", { BACKUP_RETENTION_MAX_COUNT: "3" });
    assert.equal(run.code, 0, run.stderr + run.raw);
    const written = String(run.result?.key);
    const retention = run.result?.retention as { kept: number; deleted: number; failed: number };
    assert.deepEqual(retention, { kept: 3, deleted: 8, failed: 0 });

    const survivors = [
      written,
      `${written}.json`,
      ...standard.slice(0, 2).flatMap((k) => [k, `${k}.json`]),
      ...preUpgrade,
      ...foreign,
    ];
    const all = [...(await target.keys("openbao/bao/")), ...(await target.keys("openbao/bao-2/"))];
    assert.deepEqual(all.sort(), survivors.sort());
  });

  test("a maxAge shorter than every backup's age still keeps the newest", async () => {
    await seed("aged", 4, "scheduled", true);
    const run = await backup("aged", { BACKUP_RETENTION_MAX_AGE: "1ms" });
    assert.equal(run.code, 0, run.stderr + run.raw);
    const written = String(run.result?.key);
    assert.deepEqual(await target.keys("openbao/aged/"), [written, `${written}.json`]);
  });

  test("a listing of 1,500 keys is read to the end (trap 1: no 1,000-key ceiling)", async () => {
    await seed("many", 750, "scheduled", true);
    const run = await backup("many", { BACKUP_RETENTION_MAX_COUNT: "2" });
    assert.equal(run.code, 0, run.stderr + run.raw);
    assert.deepEqual(run.result?.retention, { kept: 2, deleted: 749, failed: 0 });
    assert.equal(
      (await target.keys("openbao/many/")).length,
      4,
      "just written + the newest seeded, each with its manifest",
    );
  });

  test("a snapshot without a manifest takes no maxCount slot, is reported, and goes once older than every verified one kept", async () => {
    const recentLeftover = await seed("orphans", 1, "scheduled", false); // 1 day old
    const verified = await seed("orphans", 2, "scheduled", true, 1); // 2 and 3 days old
    const oldLeftover = await seed("orphans", 1, "scheduled", false, 3); // 4 days old
    const run = await backup("orphans", { BACKUP_RETENTION_MAX_COUNT: "3" });
    assert.equal(run.code, 0, run.stderr + run.raw);
    const written = String(run.result?.key);
    // Before issue 18 the recent leftover took a slot and the verified backup of 3 days ago went.
    assert.deepEqual(run.result?.retention, { kept: 3, deleted: 1, failed: 0, unverified: 1 });
    assert.match(run.stdout, /kept 1 without a manifest \(not verified, not counted: openbao\/orphans\/\S+\.snap\)/);
    assert.ok(run.stdout.includes(String(recentLeftover[0])), run.stdout);
    assert.ok(!run.raw.includes(String(recentLeftover[0])), "the termination message carries the count, not the keys");
    assert.deepEqual(
      (await target.keys("openbao/orphans/")).sort(),
      [written, `${written}.json`, ...recentLeftover, ...verified.flatMap((k) => [k, `${k}.json`])].sort(),
    );
    assert.ok(oldLeftover[0] && !(await target.keys("openbao/orphans/")).includes(oldLeftover[0]));
  });
});
