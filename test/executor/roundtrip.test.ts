/**
 * Issue 4 acceptance, per provider: 200 KV secrets → `bao-backup backup` → delete and
 * overwrite them → `bao-backup restore` → every secret reads back from every member.
 * Real 3-node OpenBao over TLS, real MinIO / fake-gcs-server / Azurite, the real executable.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers, waitFor } from "../servers/process.ts";
import { clusterEnv, mounts, runExecutor, runRestore } from "./harness.ts";
import { allProviders, startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

async function scopedToken(cluster: OpenBaoCluster, policy: "backup" | "restore"): Promise<string> {
  const out = await cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
    policies: [policy],
    no_default_policy: true,
    ttl: "1h",
  });
  return out.auth.client_token;
}

const secretCount = 200;
const secretValue = (i: number): Record<string, string> => ({ value: `secret-${i}`, owner: `team-${i % 7}` });

for (const provider of allProviders) {
  describe(`executor round trip on ${provider}`, () => {
    let cluster: OpenBaoCluster;
    let target: TargetUnderTest;
    before(async () => {
      [cluster, target] = await startTogether([startOpenBao({ nodes: 3 }), startTarget(provider)]);
    });
    after(async () => {
      await Promise.all([cluster?.stop(), target?.stop()]);
    });

    test("backs up 200 secrets and restores every one, readable from every member", async () => {
      const leader = await cluster.leaderIndex();
      for (let i = 0; i < secretCount; i++) await cluster.writeSecret(`app/s${i}`, secretValue(i), leader);

      // Leader deliberately last in the member list: discovery must find it anyway.
      const order = [...cluster.nodes.map((n) => n.index).filter((i) => i !== leader), leader];
      const backupMounts = mounts({
        cluster,
        credentials: target.credentials,
        token: await scopedToken(cluster, "backup"),
      });
      const backup = await runExecutor("backup", {
        ...clusterEnv(cluster, order),
        ...target.env(),
        ...backupMounts.env,
        BACKUP_PATH_PREFIX: "clusters/prod",
      });
      assert.equal(backup.code, 0, `backup failed: ${backup.stderr}${backup.raw}`);
      const result = backup.result ?? {};
      const key = String(result.key);
      assert.match(key, /^clusters\/prod\/openbao\/bao\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-[0-9a-f]{8}\.snap$/);
      assert.match(backup.stdout, /backed up clusters\/prod\/openbao\/bao\//);

      // The termination message matches what is really stored.
      const stored = await target.get(key);
      assert.ok(stored, "snapshot object exists");
      assert.equal(result.size, stored.length);
      assert.equal(result.sha256, createHash("sha256").update(stored).digest("hex"));
      assert.ok(Number(result.raftIndex) > 0);
      const manifest = JSON.parse(String(await target.get(`${key}.json`))) as Record<string, unknown>;
      assert.equal(manifest.sha256, result.sha256);
      assert.equal(manifest.size, stored.length);
      assert.equal(manifest.raftIndex, result.raftIndex);

      // Lose and corrupt the data.
      for (let i = 0; i < secretCount; i++) {
        if (i % 2 === 0) await cluster.call("DELETE", `secret/metadata/app/s${i}`, undefined, { node: leader });
        else await cluster.writeSecret(`app/s${i}`, { value: "overwritten" }, leader);
      }
      assert.equal(await cluster.readSecret("app/s0", leader), undefined);

      const restoreMounts = mounts({
        cluster,
        credentials: target.credentials,
        token: await scopedToken(cluster, "restore"),
      });
      const restore = await runRestore(cluster, {
        ...clusterEnv(cluster),
        ...target.env(),
        ...restoreMounts.env,
        BACKUP_KEY: key,
      });
      assert.equal(restore.code, 0, `restore failed: ${restore.stderr}${restore.raw}`);
      assert.equal(restore.result?.sha256, result.sha256);

      // Every secret, from every member (standbys catch up through Raft).
      for (const node of cluster.nodes) {
        await waitFor(async () => (await cluster.readSecret("app/s1", node.index))?.value === "secret-1", {
          what: `node ${node.index} serving restored data`,
          timeoutMs: 60_000,
        });
        for (let i = 0; i < secretCount; i++) {
          assert.deepEqual(
            await cluster.readSecret(`app/s${i}`, node.index),
            secretValue(i),
            `s${i} on node ${node.index}`,
          );
        }
      }
    });
  });
}
