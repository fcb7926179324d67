/**
 * Issue 4 acceptance, failure paths: every failure exits with its category and leaves
 * nothing under the key; a corrupted object never reaches OpenBao. Real 3-node OpenBao,
 * real MinIO, the real executable; faults injected by a TCP proxy or by killing a node.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers, waitFor } from "../servers/process.ts";
import { TcpProxy } from "../servers/tcp-proxy.ts";
import { assertBackupAndRestoreWork, clusterEnv, mounts, runExecutor } from "./harness.ts";
import { repacked, storeWithMatchingManifest } from "./tamper.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

describe("executor failures (3-node OpenBao, MinIO)", () => {
  let cluster: OpenBaoCluster;
  let target: TargetUnderTest;
  let backupToken: string;
  let restoreToken: string;
  const prefix = "openbao/bao/";

  const token = async (policy: string): Promise<string> =>
    (
      await cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
        policies: [policy],
        ttl: "2h",
      })
    ).auth.client_token;

  const backupEnv = (extra: Record<string, string> = {}, endpoint?: string): Record<string, string> => ({
    ...clusterEnv(cluster),
    ...target.env(endpoint),
    ...mounts({ cluster, credentials: target.credentials, token: backupToken }).env,
    ...extra,
  });

  const snapKeys = async (): Promise<string[]> => (await target.keys(prefix)).filter((k) => k.endsWith(".snap"));

  before(async () => {
    [cluster, target] = await startTogether([startOpenBao({ nodes: 3 }), startTarget("s3")]);
    backupToken = await token("backup");
    restoreToken = await token("restore");
    // ~40 MiB of incompressible values, so a snapshot stream lasts long enough to break.
    const leader = await cluster.leaderIndex();
    for (let i = 0; i < 160; i++) {
      await cluster.writeSecret(`bulk/b${i}`, { blob: randomBytes(192 * 1024).toString("base64") }, leader);
    }
  });
  after(async () => {
    await Promise.all([cluster?.stop(), target?.stop()]);
  });

  test("a wrong token exits 2 and writes nothing", async () => {
    const env = backupEnv();
    const m = mounts({ cluster, credentials: target.credentials, token: "s.thisisnotavalidtokenatall000000" });
    const run = await runExecutor("backup", { ...env, ...m.env });
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.result?.ok, false);
    // OpenBao answers 403 for an unknown token as for a missing policy; the run tells them apart.
    assert.equal(run.result?.reason, "AuthFailed", run.raw);
    assert.match(String(run.result?.message), /does not accept the token .*wrong, expired or revoked/);
    assert.doesNotMatch(run.raw + run.stderr, /thisisnotavalidtoken/, "the token never appears in output");
    assert.deepEqual(await snapKeys(), []);
  });

  test("a valid token without the backup policy exits 2 PermissionDenied, pointing at the policy", async () => {
    const m = mounts({ cluster, credentials: target.credentials, token: await token("default") });
    const run = await runExecutor("backup", { ...backupEnv(), ...m.env });
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.result?.reason, "PermissionDenied", run.raw);
    assert.match(String(run.result?.message), /check the policy/);
    assert.deepEqual(await snapKeys(), []);
  });

  test("no reachable leader exits 3", async () => {
    const run = await runExecutor(
      "backup",
      backupEnv({ BACKUP_OPENBAO_ADDRESSES: "https://127.0.0.1:1,https://127.0.0.1:2" }),
    );
    assert.equal(run.code, 3, run.stderr);
    assert.equal(run.result?.reason, "NoLeader");
  });

  test("invalid configuration exits 1 naming the variable", async () => {
    const run = await runExecutor("backup", backupEnv({ BACKUP_CONCURRENCY: "99" }));
    assert.equal(run.code, 1);
    assert.match(String(run.result?.message), /BACKUP_CONCURRENCY/);
  });

  test("killing the leader mid-stream exits 4 and leaves nothing under the key", async () => {
    const proxy = await new TcpProxy(target.port).start();
    proxy.bytesPerSecond = 4 * 1024 * 1024;
    const leader = await cluster.leaderIndex();
    let killed = false;
    const watcher = setInterval(() => {
      if (!killed && proxy.forwarded > 2 * 1024 * 1024) {
        killed = true;
        cluster.kill(leader);
      }
    }, 20);
    try {
      const run = await runExecutor(
        "backup",
        backupEnv(
          { BACKUP_PART_SIZE: String(5 * 1024 * 1024), BACKUP_CONCURRENCY: "1" },
          `http://127.0.0.1:${proxy.port}`,
        ),
      );
      assert.ok(killed, "the leader was killed while the stream was in flight");
      assert.equal(run.code, 4, `${run.stderr}${run.raw}`);
      assert.deepEqual(await snapKeys(), []);
      assert.equal(await target.openUploads(), 0, "no multipart upload left open");
    } finally {
      clearInterval(watcher);
      await proxy.stop();
      await cluster.restart(leader);
      await cluster.waitHealthy();
    }
    // Nothing lost: with the old leader back, a backup succeeds and restores the data (the
    // root token, because one run does both a backup and a restore).
    const rootEnv = {
      ...clusterEnv(cluster),
      ...target.env(),
      ...mounts({ cluster, credentials: target.credentials, token: cluster.rootToken }).env,
    };
    await assertBackupAndRestoreWork(cluster, rootEnv, "leader-killed");
  });

  test("storage failing mid-upload exits 5 and leaves no object", async () => {
    const before = await snapKeys(); // the previous test's proof left a good backup
    const proxy = await new TcpProxy(target.port).start();
    proxy.bytesPerSecond = 4 * 1024 * 1024;
    let cut = false;
    const watcher = setInterval(() => {
      if (!cut && proxy.forwarded > 6 * 1024 * 1024) {
        cut = true;
        proxy.refusing = true;
        proxy.cutAll();
      }
    }, 20);
    try {
      const run = await runExecutor(
        "backup",
        backupEnv(
          { BACKUP_PART_SIZE: String(5 * 1024 * 1024), BACKUP_CONCURRENCY: "1" },
          `http://127.0.0.1:${proxy.port}`,
        ),
      );
      assert.ok(cut, "storage went away while the upload was in flight");
      assert.equal(run.code, 5, `${run.stderr}${run.raw}`);
      assert.match(String(run.result?.reason), /^Storage/);
      assert.deepEqual(await snapKeys(), before, "no object from the failed run");
    } finally {
      clearInterval(watcher);
      await proxy.stop();
    }
  });

  /** A backup, then a marker written after it that no restore of that backup may remove. */
  const backupThenMarker = async (marker: string): Promise<{ key: string; leader: number }> => {
    const backup = await runExecutor("backup", backupEnv());
    assert.equal(backup.code, 0, backup.stderr);
    const leader = await cluster.leaderIndex();
    await cluster.writeSecret(marker, { value: "must survive" }, leader);
    return { key: String(backup.result?.key), leader };
  };

  const restoreEnvFor = (key: string): Record<string, string> => ({
    ...clusterEnv(cluster),
    ...target.env(),
    ...mounts({ cluster, credentials: target.credentials, token: restoreToken }).env,
    BACKUP_KEY: key,
  });

  test("a corrupted object is refused on restore (exit 6) and OpenBao's data is unchanged", async () => {
    const { key, leader } = await backupThenMarker("marker/after-backup");

    const bytes = await target.get(key);
    assert.ok(bytes);
    const corrupted = Buffer.from(bytes);
    const at = Math.floor(corrupted.length / 2);
    corrupted[at] = (corrupted[at] ?? 0) ^ 0xff;
    await target.put(key, corrupted);

    const restoreEnv = restoreEnvFor(key);
    const run = await runExecutor("restore", restoreEnv);
    assert.equal(run.code, 6, `${run.stderr}${run.raw}`);
    assert.equal(
      await waitFor(async () => (await cluster.readSecret("marker/after-backup", leader))?.value, { what: "marker" }),
      "must survive",
    );

    // A manifest whose checksum does not match: the gate withholds the last bytes, so
    // OpenBao never receives a complete snapshot and applies nothing.
    await target.put(key, bytes);
    const manifest = JSON.parse(String(await target.get(`${key}.json`))) as Record<string, unknown>;
    await target.put(`${key}.json`, Buffer.from(JSON.stringify({ ...manifest, sha256: "0".repeat(64) })));
    const mismatch = await runExecutor("restore", restoreEnv);
    assert.equal(mismatch.code, 6, `${mismatch.stderr}${mismatch.raw}`);
    assert.equal(mismatch.result?.reason, "ChecksumMismatch");
    assert.equal((await cluster.readSecret("marker/after-backup", leader))?.value, "must survive");

    const missing = await runExecutor("restore", {
      ...restoreEnv,
      BACKUP_KEY: `${prefix}2020-01-01T00-00-00Z-00000000.snap`,
    });
    assert.equal(missing.code, 6);
    assert.equal(missing.result?.reason, "ObjectMissing");
  });

  test("state.bin changed, SHA256SUMS left, the manifest rewritten to match: OpenBao refuses it (exit 6), nothing restored", async () => {
    // A restore leaves state.bin's SHA-256 against SHA256SUMS to OpenBao (archive.ts,
    // hashState): this proves OpenBao makes that check, before applying anything.
    const { key } = await backupThenMarker("marker/after-forged");
    const flipped = (state: Buffer): Buffer => {
      const out = Buffer.from(state);
      out[out.length >> 1] = (out[out.length >> 1] ?? 0) ^ 0x01;
      return out;
    };
    const forged = await repacked((await target.get(key)) ?? Buffer.alloc(0), flipped, { sums: "kept" });
    await storeWithMatchingManifest(target, key, key, forged);

    const run = await runExecutor("restore", restoreEnvFor(key));
    assert.equal(run.code, 6, `${run.stderr}${run.raw}`);
    assert.equal(run.result?.reason, "SnapshotCorrupt");
    assert.match(
      String(run.result?.message),
      /is not a valid snapshot: OpenBao found its contents do not match their checksums \(.*integrity of snapshot.*state\.bin.*\); nothing was restored$/s,
    );
    assert.equal((await cluster.readSecret("marker/after-forged", await cluster.leaderIndex()))?.value, "must survive");
  });
});
