/**
 * Issue 14, `bao-backup restore --key latest` against a real OpenBao and a real MinIO: the
 * key resolves once, to the newest verified backup of the source cluster (of any kind),
 * skipping newer objects that are not verified, and the result reports the key it chose;
 * with no verified backup the run fails as `NoVerifiedBackup` (exit 6) and OpenBao is left
 * alone. The manifests the backups wrote record the cluster id and seal type OpenBao reports.
 * The static token comes from BAO_TOKEN, as on a workstation. Restored into another, fresh
 * OpenBao, the snapshot needs --force (the refusal says so), and --expect-sealed ends the run
 * once that OpenBao sealed itself; the lost cluster's unseal key then opens the restored data.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildKey } from "../../src/snapshot/key.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers, waitFor } from "../servers/process.ts";
import { clusterEnv, mounts, runExecutor, runRestore, showRun } from "./harness.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

const hour = 3600 * 1000;

describe("restore --key latest (OpenBao + MinIO)", () => {
  let cluster: OpenBaoCluster;
  let target: TargetUnderTest;
  let env: Record<string, string>;
  before(async () => {
    [cluster, target] = await startTogether([startOpenBao({ nodes: 1 }), startTarget("s3")]);
    // A token file for backups (the Job's way), BAO_TOKEN for restores (a workstation's way).
    env = {
      ...clusterEnv(cluster),
      ...target.env(),
      ...mounts({ cluster, credentials: target.credentials, token: cluster.rootToken }).env,
    };
  });
  after(async () => {
    await Promise.all([cluster?.stop(), target?.stop()]);
  });

  const restoreEnv = (): Record<string, string> => {
    const rest = Object.fromEntries(Object.entries(env).filter(([name]) => name !== "BACKUP_TOKEN_FILE"));
    return { ...rest, BAO_TOKEN: cluster.rootToken };
  };

  const value = async (): Promise<string | undefined> =>
    (await cluster.readSecret("app/config", await cluster.leaderIndex()))?.version;

  test("with no backup stored: NoVerifiedBackup (exit 6), no key, OpenBao untouched", async () => {
    await cluster.writeSecret("app/config", { version: "untouched" });
    const run = await runExecutor("restore", { ...restoreEnv(), BACKUP_KEY: "latest" });
    assert.equal(run.code, 6, showRun(run));
    assert.equal(run.result?.reason, "NoVerifiedBackup");
    assert.equal(run.result?.key, undefined);
    assert.match(
      String(run.result?.message),
      /no verified backup of openbao\/bao in s3:\/\/backups\/openbao\/bao\/: no backup is stored there; nothing was restored/,
    );
    assert.match(run.stderr, /NoVerifiedBackup/);
    assert.ok(!(run.stderr + run.raw).includes(cluster.rootToken), "the root token is never printed");
    assert.equal(await value(), "untouched");
  });

  test("picks the newest verified backup of any kind, skipping newer unverified objects", async () => {
    await cluster.writeSecret("app/config", { version: "1" });
    const scheduled = await runExecutor("backup", env);
    assert.equal(scheduled.code, 0, showRun(scheduled));
    await cluster.writeSecret("app/config", { version: "2" });
    const preUpgrade = await runExecutor("backup", { ...env, BACKUP_TYPE: "pre-upgrade" });
    assert.equal(preUpgrade.code, 0, showRun(preUpgrade));
    const chosen = String(preUpgrade.result?.key);
    assert.match(chosen, /\/pre-upgrade-/);

    // The manifests record what a person restoring elsewhere needs.
    const health = await cluster.call<{ cluster_id: string; version: string }>("GET", "sys/health");
    const manifest = JSON.parse(String(await target.get(`${chosen}.json`))) as Record<string, unknown>;
    assert.equal(manifest.formatVersion, 1);
    assert.equal(manifest.clusterId, health.cluster_id);
    assert.match(String(manifest.clusterId), /^[0-9a-f-]{36}$/);
    assert.equal(manifest.sealType, "shamir");
    assert.equal(manifest.openbaoVersion, health.version);

    // Newer objects that are not verified: one without a manifest, one whose manifest
    // records another size (truncated); both newer than every real backup.
    const bytes = await target.get(chosen);
    assert.ok(bytes);
    const newerKey = (hoursAhead: number, id: string): string =>
      buildKey({
        pathPrefix: "",
        namespace: "openbao",
        cluster: "bao",
        time: new Date(Date.now() + hoursAhead * hour),
        kind: "scheduled",
        random: id,
      });
    const noManifest = newerKey(2, "0000000b");
    await target.put(noManifest, bytes);
    const truncated = newerKey(1, "0000000a");
    await target.put(truncated, bytes.subarray(0, bytes.length >> 1));
    await target.put(
      `${truncated}.json`,
      Buffer.from(JSON.stringify({ ...manifest, key: truncated, created: new Date(Date.now() + hour).toISOString() })),
    );

    await cluster.writeSecret("app/config", { version: "3" });
    const run = await runRestore(cluster, { ...restoreEnv(), BACKUP_KEY: "latest" });
    assert.equal(run.code, 0, showRun(run));
    assert.equal(run.result?.key, chosen, "the resolved key is reported");
    assert.equal(run.result?.latest, true);
    assert.equal(run.result?.sha256, preUpgrade.result?.sha256);
    assert.match(run.stdout, new RegExp(`^restored ${chosen} \\(the newest verified backup\\)`));
    assert.equal(
      await waitFor(async () => ((await value().catch(() => undefined)) === "2" ? "2" : undefined), {
        what: "the pre-upgrade backup's data served",
        timeoutMs: 60_000,
      }),
      "2",
    );
  });

  test("into a fresh OpenBao: refused without --force (naming it); with --force --expect-sealed done once sealed", async () => {
    const fresh = await startOpenBao({ nodes: 1 });
    try {
      const freshEnv = {
        ...restoreEnv(),
        BACKUP_OPENBAO_ADDRESSES: fresh.addresses.join(","),
        ...mounts({ cluster: fresh, credentials: target.credentials }).env,
        BAO_TOKEN: fresh.rootToken,
        BACKUP_KEY: "latest",
      };
      const refused = await runExecutor("restore", freshEnv);
      assert.equal(refused.code, 4, showRun(refused));
      assert.equal(refused.result?.reason, "RestoreFailed");
      assert.match(String(refused.result?.message), /different set of unseal keys.*--force \(BACKUP_FORCE=true/);
      assert.equal(await fresh.isSealed(0), false, "a refused snapshot changes nothing");

      const run = await runRestore(fresh, freshEnv, { args: ["--force", "--expect-sealed"] });
      assert.equal(run.code, 0, showRun(run));
      assert.equal(run.result?.sealed, true);
      assert.equal(run.result?.latest, true);
      assert.match(run.stdout, /OpenBao sealed itself: unseal it with the unseal keys/);
      assert.equal(await fresh.isSealed(0), true);
      // The lost cluster's key opens it, and its data (the pre-upgrade backup) is served.
      fresh.unsealKey = cluster.unsealKey;
      await fresh.unseal(0);
      const read = async (): Promise<string | undefined> =>
        (await fresh.readSecret("app/config", await fresh.leaderIndex()).catch(() => undefined))?.version;
      fresh.rootToken = cluster.rootToken;
      assert.equal(
        await waitFor(async () => ((await read()) === "2" ? "2" : undefined), {
          what: "the restored data served by the fresh OpenBao",
          timeoutMs: 60_000,
        }),
        "2",
      );
    } finally {
      await fresh.stop();
    }
  });

  test("--source-cluster with only unverified objects: NoVerifiedBackup naming the newest and why", async () => {
    const other = buildKey({
      pathPrefix: "",
      namespace: "openbao",
      cluster: "other",
      time: new Date(),
      kind: "scheduled",
      random: "0000000c",
    });
    await target.put(other, Buffer.from("no manifest"));
    await cluster.writeSecret("app/config", { version: "4" });
    const run = await runExecutor(
      "restore",
      { ...restoreEnv(), BACKUP_KEY: "latest" },
      {
        args: ["--source-cluster", "other"],
      },
    );
    assert.equal(run.code, 6, showRun(run));
    assert.equal(run.result?.reason, "NoVerifiedBackup");
    assert.equal(run.result?.key, undefined);
    assert.match(
      String(run.result?.message),
      new RegExp(
        `no verified backup of openbao/other .*1 backup is stored there, none verified \\(the newest, ${other}: no manifest\\)`,
      ),
    );
    assert.equal(await value(), "4", "nothing was restored");
  });
});
