/**
 * Issue 15, defect 6, the executor's half: `bao-backup backup` with `BACKUP_KEY_ID` writes a
 * key ending in that id, and `bao-backup confirm` finds that backup by the id alone — its facts
 * from its manifest — or says, with exit 6 and `BackupNotFound`, that storage holds none: no
 * object, an object without its manifest, another kind, another id. Real OpenBao, real MinIO.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildKey } from "../../src/snapshot/key.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers } from "../servers/process.ts";
import { clusterEnv, mounts, runExecutor } from "./harness.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

describe("confirm: the backup of a Job, found by its key id (MinIO)", () => {
  let cluster: OpenBaoCluster;
  let target: TargetUnderTest;
  before(async () => {
    [cluster, target] = await startTogether([startOpenBao({ nodes: 1 }), startTarget("s3")]);
  });
  after(async () => {
    await Promise.all([cluster?.stop(), target?.stop()]);
  });

  const env = (name: string, extra: Record<string, string>) => ({
    ...clusterEnv(cluster),
    CLUSTER_NAME: name,
    ...target.env(),
    ...mounts({ cluster, credentials: target.credentials, token: cluster.rootToken }).env,
    ...extra,
  });

  test("a backup with a key id is found by confirm, with the facts of its manifest", async () => {
    const backup = await runExecutor("backup", env("found", { BACKUP_KEY_ID: "0a1b2c3d" }));
    assert.equal(backup.code, 0, backup.stderr + backup.raw);
    const key = String(backup.result?.key);
    assert.match(key, /^openbao\/found\/\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-0a1b2c3d\.snap$/);

    const confirm = await runExecutor("confirm", env("found", { BACKUP_KEY_ID: "0a1b2c3d" }));
    assert.equal(confirm.code, 0, confirm.stderr + confirm.raw);
    assert.equal(confirm.result?.mode, "confirm");
    assert.equal(confirm.result?.key, key);
    assert.equal(confirm.result?.sha256, backup.result?.sha256);
    assert.equal(confirm.result?.size, backup.result?.size);
    assert.equal(confirm.result?.raftIndex, backup.result?.raftIndex);
    assert.match(confirm.stdout, /found openbao\/found\/.*-0a1b2c3d\.snap .* with its manifest/);
  });

  test("nothing with the id, only an unverified object, or another kind: exit 6, BackupNotFound, naming what it saw", async () => {
    const none = await runExecutor("confirm", env("none", { BACKUP_KEY_ID: "deadbeef" }));
    assert.equal(none.code, 6, none.stderr + none.raw);
    assert.equal(none.result?.reason, "BackupNotFound");
    assert.match(
      String(none.result?.message),
      /no scheduled snapshot whose key ends in -deadbeef\.snap under openbao\/none\//,
    );

    const time = new Date(Date.now() - 60_000);
    const orphan = buildKey({
      pathPrefix: "",
      namespace: "openbao",
      cluster: "none",
      time,
      kind: "scheduled",
      random: "deadbeef",
    });
    await target.put(orphan, Buffer.from("uploaded, never verified"));
    const unverified = await runExecutor("confirm", env("none", { BACKUP_KEY_ID: "deadbeef" }));
    assert.equal(unverified.code, 6);
    assert.equal(unverified.result?.reason, "BackupNotFound");
    assert.match(String(unverified.result?.message), /is in .* but is not a verified backup \(no manifest\)/);

    const preUpgrade = await runExecutor(
      "backup",
      env("kinds", { BACKUP_KEY_ID: "00c0ffee", BACKUP_TYPE: "pre-upgrade" }),
    );
    assert.equal(preUpgrade.code, 0, preUpgrade.stderr + preUpgrade.raw);
    const scheduled = await runExecutor("confirm", env("kinds", { BACKUP_KEY_ID: "00c0ffee" }));
    assert.equal(scheduled.code, 6, "a pre-upgrade snapshot is not the scheduled Job's backup");
    const same = await runExecutor("confirm", env("kinds", { BACKUP_KEY_ID: "00c0ffee", BACKUP_TYPE: "pre-upgrade" }));
    assert.equal(same.code, 0, same.stderr + same.raw);
  });

  test("a key id that is not 8 lower-case hex digits is refused, naming the setting", async () => {
    for (const mode of ["backup", "confirm"] as const) {
      const run = await runExecutor(mode, env("bad", { BACKUP_KEY_ID: "ABC" }));
      assert.equal(run.code, 1, run.stderr);
      assert.match(String(run.result?.message), /BACKUP_KEY_ID \(--key-id\): must be exactly 8 lower-case hex digits/);
    }
    const missing = await runExecutor("confirm", env("bad", {}));
    assert.equal(missing.code, 1);
    assert.match(String(missing.result?.message), /BACKUP_KEY_ID \(--key-id\): is required/);
  });
});
