/**
 * Issue 18, item 1 acceptance, through the real executable: a real OpenBao, MinIO with a
 * bucket created with Object Lock and a default GOVERNANCE retention.
 *
 * - Backups succeed on the locked bucket; retention (maxCount 1) keeps the snapshots the lock
 *   holds, reports them with the time the first can go, and exits 0; a restore works.
 * - `target.objectLock`: the snapshot and its manifest are retained until creation + maxAge +
 *   grace in the mode asked for (HEAD says so), and a pre-upgrade snapshot carries a legal hold.
 * - `target.objectLock` without `retention.maxAge` is refused before anything runs, naming the
 *   setting; on a bucket without Object Lock the backup fails with StorageObjectLockUnavailable
 *   and keeps nothing.
 * - `bao-backup prune --yes` reports locked objects and does not fail.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CreateBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectLockConfigurationCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { runCli, show } from "../cli/run.ts";
import { type MinioServer, startMinio } from "../servers/minio.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers, waitFor } from "../servers/process.ts";
import { clusterEnv, mounts, runExecutor, runRestore, showRun } from "./harness.ts";

superviseServers();

const locked = "locked";
const plain = "plain";
const day = 24 * 60 * 60 * 1000;

describe("Object Lock through the executor: backup, retention, legal hold, restore", () => {
  let cluster: OpenBaoCluster;
  let minio: MinioServer;
  let s3: S3Client;

  before(async () => {
    [cluster, minio] = await startTogether([startOpenBao({ nodes: 1 }), startMinio({ name: "minio-objectlock" })]);
    s3 = minio.client();
    await s3.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: locked,
        ObjectLockConfiguration: {
          ObjectLockEnabled: "Enabled",
          Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 1 } },
        },
      }),
    );
    await minio.createBucket(plain);
  });
  after(async () => {
    await Promise.all([cluster?.stop(), minio?.stop()]);
  });

  const env = (extra: Record<string, string>, bucket = locked): Record<string, string> => ({
    ...clusterEnv(cluster),
    BACKUP_PROVIDER: "s3",
    BACKUP_ENDPOINT: minio.endpoint,
    BACKUP_BUCKET: bucket,
    BACKUP_USE_PATH_STYLE: "true",
    BACKUP_PATH_PREFIX: extra.BACKUP_PATH_PREFIX ?? "",
    ...mounts({
      cluster,
      credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
      token: cluster.rootToken,
    }).env,
    ...extra,
  });

  const keys = async (bucket: string, prefix: string): Promise<string[]> => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key ?? "").sort();
  };
  const head = (bucket: string, key: string) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));

  test("a bucket with default governance retention: backups succeed, retention reports what is locked, a restore works", async () => {
    const backupEnv = env({ BACKUP_PATH_PREFIX: "default", BACKUP_RETENTION_MAX_COUNT: "1" });
    const leader = await cluster.leaderIndex();
    await cluster.writeSecret("marker/lock", { value: "first" }, leader);
    const first = await runExecutor("backup", backupEnv);
    assert.equal(first.code, 0, showRun(first));
    await cluster.writeSecret("marker/lock", { value: "second" }, leader);
    // Keys carry the start time to the second: the second backup must start in a later second,
    // or it may sort before the first and both be kept (the newest, and the one just written).
    await sleep(1100);
    const second = await runExecutor("backup", backupEnv);
    assert.equal(second.code, 0, `retention under a lock is not a failure: ${showRun(second)}`);
    const retention = second.result?.retention as Record<string, unknown> | undefined;
    assert.equal(retention?.deleted, 0);
    assert.equal(retention?.failed, 0);
    assert.equal(retention?.locked, 1, "the older backup is held by the bucket's default retention");
    const until = Date.parse(String(retention?.lockedUntil));
    assert.ok(
      Math.abs(until - (Date.now() + day)) < 10 * 60_000,
      `locked for a day: ${String(retention?.lockedUntil)}`,
    );
    assert.match(second.stdout, /kept 1 a lock holds \(the first can go after \d{4}-\d{2}-\d{2}T/, second.stdout);
    // Untouched: both backups and both manifests are still there, restorable.
    const stored = await keys(locked, "default/");
    assert.equal(stored.length, 4, stored.join(", "));

    const restore = await runRestore(cluster, { ...backupEnv, BACKUP_KEY: String(first.result?.key) });
    assert.equal(restore.code, 0, showRun(restore));
    await waitFor(
      async () =>
        (await cluster.readSecret("marker/lock", await cluster.leaderIndex()).catch(() => undefined))?.value ===
        "first",
      { what: "the restored marker", timeoutMs: 60_000 },
    );
    await cluster.waitHealthy();

    // prune does the same: reports, deletes nothing, exit 0.
    const prune = await runCli(
      [
        "prune",
        "--cluster",
        String(backupEnv.CLUSTER_NAME),
        "--namespace",
        String(backupEnv.CLUSTER_NAMESPACE),
        "--yes",
        "--max-count",
        "1",
      ],
      {
        ...backupEnv,
        BACKUP_CREDENTIALS_DIR: backupEnv.BACKUP_CREDENTIALS_DIR ?? "",
      },
    );
    assert.equal(prune.code, 0, show(prune));
    assert.match(prune.stdout, /Kept 2 object\(s\) a lock holds/, prune.stdout);
    assert.match(prune.stdout, /locked until \d{4}-/, prune.stdout);
    assert.equal((await keys(locked, "default/")).length, 4);
  });

  test("target.objectLock: snapshot and manifest retained until creation + maxAge + grace; a pre-upgrade snapshot under a legal hold", async () => {
    const lockEnv = {
      BACKUP_PATH_PREFIX: "asked",
      BACKUP_RETENTION_MAX_AGE: "72h",
      BACKUP_OBJECT_LOCK_MODE: "GOVERNANCE",
      BACKUP_OBJECT_LOCK_GRACE: "2h",
      BACKUP_OBJECT_LOCK_PRE_UPGRADE_LEGAL_HOLD: "true",
    };
    const scheduled = await runExecutor("backup", env(lockEnv));
    assert.equal(scheduled.code, 0, showRun(scheduled));
    const key = String(scheduled.result?.key);
    const expected = Date.parse(String(scheduled.result?.startedAt)) + 72 * 3600_000 + 2 * 3600_000;
    for (const k of [key, `${key}.json`]) {
      const out = await head(locked, k);
      assert.equal(out.ObjectLockMode, "GOVERNANCE", k);
      assert.ok(
        Math.abs((out.ObjectLockRetainUntilDate?.getTime() ?? 0) - expected) <= 1000,
        `${k} retained until ${out.ObjectLockRetainUntilDate?.toISOString()}, expected ${new Date(expected).toISOString()}`,
      );
      assert.notEqual(out.ObjectLockLegalHoldStatus, "ON", `${k}: a scheduled backup has no legal hold`);
    }

    const preUpgrade = await runExecutor("backup", env({ ...lockEnv, BACKUP_TYPE: "pre-upgrade" }));
    assert.equal(preUpgrade.code, 0, showRun(preUpgrade));
    const preKey = String(preUpgrade.result?.key);
    for (const k of [preKey, `${preKey}.json`]) {
      const out = await head(locked, k);
      assert.equal(out.ObjectLockLegalHoldStatus, "ON", `${k} carries a legal hold`);
      assert.equal(out.ObjectLockMode, "GOVERNANCE", k);
    }
  });

  test("objectLock without retention.maxAge is refused before anything runs, naming the setting", async () => {
    const run = await runExecutor(
      "backup",
      env({ BACKUP_PATH_PREFIX: "nomaxage", BACKUP_RETENTION_MAX_COUNT: "3", BACKUP_OBJECT_LOCK_MODE: "COMPLIANCE" }),
    );
    assert.equal(run.code, 1, showRun(run));
    assert.match(
      String(run.result?.message),
      /BACKUP_OBJECT_LOCK_MODE \(--object-lock-mode\): needs BACKUP_RETENTION_MAX_AGE/,
    );
    assert.deepEqual(await keys(locked, "nomaxage/"), []);
    const badMode = await runExecutor(
      "backup",
      env({ BACKUP_PATH_PREFIX: "nomaxage", BACKUP_RETENTION_MAX_AGE: "1d", BACKUP_OBJECT_LOCK_MODE: "governance" }),
    );
    assert.equal(badMode.code, 1, showRun(badMode));
    assert.match(
      String(badMode.result?.message),
      /BACKUP_OBJECT_LOCK_MODE \(--object-lock-mode\): target\.objectLock\.mode: must be GOVERNANCE/,
    );
  });

  test("objectLock on a bucket without Object Lock: StorageObjectLockUnavailable, nothing stored", async () => {
    const run = await runExecutor(
      "backup",
      env(
        { BACKUP_PATH_PREFIX: "nolock", BACKUP_RETENTION_MAX_AGE: "1d", BACKUP_OBJECT_LOCK_MODE: "COMPLIANCE" },
        plain,
      ),
    );
    assert.equal(run.code, 5, showRun(run));
    assert.equal(run.result?.reason, "StorageObjectLockUnavailable");
    assert.match(String(run.result?.message), /needs a bucket created with Object Lock enabled/);
    assert.deepEqual(await keys(plain, "nolock/"), []);
  });
});
