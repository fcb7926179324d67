/**
 * Issue 9, faults on the executor side: a follower killed, the whole cluster sealed, the
 * storage server gone and back, storage slowed down and throttled. Real 3-node OpenBao, real
 * MinIO, the real executable; faults injected by killing or sealing nodes and by proxies on
 * loopback. After each fault: the failure (if any) is classified and explained, nothing
 * partial is left in the bucket, the next backup succeeds and a restore returns the data.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { FaultProxy } from "../servers/fault-proxy.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers } from "../servers/process.ts";
import { TcpProxy } from "../servers/tcp-proxy.ts";
import {
  assertBackupAndRestoreWork as assertBackupAndRestoreWorkWith,
  clusterEnv,
  type ExecutorRun,
  mounts,
  runExecutor,
  showRun,
} from "./harness.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

const show = showRun;
const partSize = 5 * 1024 * 1024;

describe("executor faults (3-node OpenBao, MinIO)", () => {
  let cluster: OpenBaoCluster;
  let target: TargetUnderTest;
  const prefix = "openbao/bao/";

  const env = (endpoint?: string, extra: Record<string, string> = {}): Record<string, string> => ({
    ...clusterEnv(cluster),
    ...target.env(endpoint),
    ...mounts({ cluster, credentials: target.credentials, token: cluster.rootToken }).env,
    ...extra,
  });

  /** Every snapshot has its manifest and every manifest its snapshot; no multipart upload is open. */
  const assertNothingPartial = async (): Promise<void> => {
    const keys = await target.keys(prefix);
    const snaps = keys.filter((k) => k.endsWith(".snap"));
    const manifests = keys.filter((k) => k.endsWith(".snap.json"));
    assert.deepEqual(
      manifests,
      snaps.map((k) => `${k}.json`),
      "each object is a snapshot with its manifest",
    );
    assert.equal(keys.length, snaps.length * 2, `nothing else under ${prefix}: ${keys.join(", ")}`);
    assert.equal(await target.openUploads(), 0, "no multipart upload left open");
  };

  const assertBackupAndRestoreWork = (label: string): Promise<void> =>
    assertBackupAndRestoreWorkWith(cluster, env(), label);

  /** Calls `act` once, as soon as `moved()` passes `bytes`: the fault lands mid-stream. */
  const whenInFlight = (moved: () => number, bytes: number, act: () => Promise<void> | void) => {
    let fired: Promise<void> | undefined;
    let failure: unknown;
    const timer = setInterval(() => {
      if (fired === undefined && moved() > bytes) {
        fired = Promise.resolve()
          .then(act)
          .catch((err: unknown) => {
            failure = err;
          });
      }
    }, 20);
    return {
      get fired(): boolean {
        return fired !== undefined;
      },
      async done(): Promise<void> {
        clearInterval(timer);
        await fired;
        if (failure !== undefined) throw failure;
      },
    };
  };

  before(async () => {
    [cluster, target] = await startTogether([startOpenBao({ nodes: 3 }), startTarget("s3")]);
    // ~12 MiB of incompressible values: a throttled stream lasts long enough to break.
    const leader = await cluster.leaderIndex();
    for (let i = 0; i < 48; i++) {
      await cluster.writeSecret(`bulk/b${i}`, { blob: randomBytes(192 * 1024).toString("base64") }, leader);
    }
  });
  after(async () => {
    await Promise.all([cluster?.stop(), target?.stop()]);
  });

  test("a follower killed mid-stream: the snapshot comes from the leader and the backup succeeds", async () => {
    const proxy = await new TcpProxy(target.port).start();
    proxy.bytesPerSecond = 4 * 1024 * 1024;
    const leader = await cluster.leaderIndex();
    const follower = cluster.nodes.map((n) => n.index).find((i) => i !== leader) ?? 0;
    const fault = whenInFlight(
      () => proxy.forwarded,
      2 * 1024 * 1024,
      () => cluster.kill(follower),
    );
    try {
      const run = await runExecutor(
        "backup",
        env(`http://127.0.0.1:${proxy.port}`, { BACKUP_PART_SIZE: String(partSize), BACKUP_CONCURRENCY: "1" }),
      );
      assert.ok(fault.fired, "the follower died while the stream was in flight");
      // Two of three voters keep quorum and the leader streams from its own state: there is
      // nothing wrong with this snapshot, so failing the run would only lose a backup.
      assert.equal(run.code, 0, show(run));
      assert.ok(Number(run.result?.size) > 10 * 1024 * 1024, "the whole snapshot was stored");
      await assertNothingPartial();
    } finally {
      await fault.done();
      await proxy.stop();
      await cluster.restart(follower);
      await cluster.waitHealthy();
    }
    await assertBackupAndRestoreWork("follower-killed");
    await assertNothingPartial();
  });

  test("the whole cluster sealed before a backup: exit 3 naming the sealed members, nothing written", async (t) => {
    const before = await target.keys(prefix);
    try {
      await cluster.sealAll();
      const run = await runExecutor("backup", env());
      t.diagnostic(`sealed cluster: exit ${run.code} ${run.result?.reason}: ${run.result?.message}`);
      assert.equal(run.code, 3, show(run));
      assert.equal(run.result?.reason, "NoLeader");
      assert.match(
        String(run.result?.message),
        /every member is sealed: unseal OpenBao/,
        "the result line says why, and the fix",
      );
      assert.match(run.stderr, /sealed/i, "so does the human line");
      assert.deepEqual(await target.keys(prefix), before);
      await assertNothingPartial();
    } finally {
      await cluster.unsealAll();
    }
    await assertBackupAndRestoreWork("sealed-before");
    await assertNothingPartial();
  });

  test("the whole cluster sealed mid-stream: the run ends with a clear reason or a complete backup, never a partial one", async (t) => {
    const before = await target.keys(prefix);
    const proxy = await new TcpProxy(target.port).start();
    proxy.bytesPerSecond = 4 * 1024 * 1024;
    const fault = whenInFlight(
      () => proxy.forwarded,
      2 * 1024 * 1024,
      () => cluster.sealAll(),
    );
    let run: ExecutorRun;
    try {
      run = await runExecutor(
        "backup",
        env(`http://127.0.0.1:${proxy.port}`, { BACKUP_PART_SIZE: String(partSize), BACKUP_CONCURRENCY: "1" }),
      );
      await fault.done();
      assert.ok(fault.fired, "the cluster was sealed while the stream was in flight");
    } finally {
      await fault.done();
      await proxy.stop();
    }
    t.diagnostic(`sealed mid-stream: exit ${run.code} ${run.result?.reason ?? ""} ${run.result?.message ?? ""}`);
    try {
      const after = await target.keys(prefix);
      if (run.code === 0) {
        // The snapshot was being read when the seal came: OpenBao finishes the request it is
        // serving, so the backup is complete and verified (it is restored below).
        assert.equal(after.length, before.length + 2, show(run));
      } else {
        assert.equal(run.code, 4, show(run));
        assert.match(String(run.result?.reason), /^Snapshot|^OpenBaoUnreachable$/, show(run));
        assert.deepEqual(after, before, "a failed run leaves nothing");
      }
      await assertNothingPartial();
      for (const node of cluster.nodes) {
        assert.equal(await cluster.isSealed(node.index), true, `node ${node.index} is sealed after the run`);
      }
    } finally {
      await cluster.unsealAll();
    }
    await assertBackupAndRestoreWork("sealed-mid-stream");
    await assertNothingPartial();
  });

  /** The official SDK straight to MinIO: assertions never go through the product's storage code. */
  const adminClient = (): S3Client =>
    new S3Client({
      region: "us-east-1",
      endpoint: `http://127.0.0.1:${target.port}`,
      forcePathStyle: true,
      credentials: {
        accessKeyId: target.credentials.accessKeyId ?? "",
        secretAccessKey: target.credentials.secretAccessKey ?? "",
      },
    });
  /** The multipart uploads MinIO still holds open in the bucket (official SDK, not the product's code). */
  const openUploadList = async (): Promise<{ Key?: string; UploadId?: string }[]> => {
    const s3 = adminClient();
    try {
      return (await s3.send(new ListMultipartUploadsCommand({ Bucket: target.bucket }))).Uploads ?? [];
    } finally {
      s3.destroy();
    }
  };
  const openUploadKeys = async (): Promise<string[]> => (await openUploadList()).map((u) => String(u.Key));
  /** Multipart uploads a failed run could not abort because storage was gone at that moment. */
  let orphaned: string[] = [];

  test("storage stopped mid-upload then restarted: exit 5, no object, the next backup and a restore work", async (t) => {
    const before = await target.keys(prefix);
    const proxy = await new TcpProxy(target.port).start();
    proxy.bytesPerSecond = 4 * 1024 * 1024;
    const fault = whenInFlight(
      () => proxy.forwarded,
      6 * 1024 * 1024,
      () => {
        proxy.refusing = true;
        proxy.cutAll();
      },
    );
    const endpoint = `http://127.0.0.1:${proxy.port}`;
    try {
      const run = await runExecutor(
        "backup",
        env(endpoint, { BACKUP_PART_SIZE: String(partSize), BACKUP_CONCURRENCY: "1" }),
      );
      assert.ok(fault.fired, "storage went away while the upload was in flight");
      assert.equal(run.code, 5, show(run));
      assert.match(String(run.result?.reason), /^Storage/);
      t.diagnostic(`failed run: ${run.result?.reason}: ${run.result?.message}`);
      assert.deepEqual(await target.keys(prefix), before, "no object from the failed run");
      // The store comes back at the same address.
      proxy.refusing = false;
      // The abort was sent while the store was unreachable, so MinIO may still hold that
      // upload's parts: invisible to listings and never a backup, but it is storage used.
      // It can only ever be the failed run's own key.
      orphaned = await openUploadKeys();
      for (const key of orphaned) assert.equal(key, run.result?.key, "only the failed run's upload is open");
      t.diagnostic(`multipart uploads left open by the failed run: ${orphaned.length}`);
      const next = await runExecutor("backup", env(endpoint));
      assert.equal(next.code, 0, `the next backup through the restarted store succeeds: ${show(next)}`);
      const keys = await target.keys(prefix);
      assert.deepEqual(
        keys.filter((k) => !before.includes(k)),
        [String(next.result?.key), `${next.result?.key}.json`],
        "exactly the new backup and its manifest were added",
      );
    } finally {
      await fault.done();
      await proxy.stop();
    }
    await assertBackupAndRestoreWork("storage-restarted");
  });

  test("multipart uploads left open while storage was down are aborted by the next successful run", async () => {
    try {
      // The fault above must really have left one, or this proves nothing.
      assert.ok(orphaned.length > 0, "the storage fault left an open multipart upload");
      assert.deepEqual(await openUploadKeys(), [], `still open after the next backup: ${orphaned.join(", ")}`);
    } finally {
      // Whatever happened, later tests start from an empty state.
      await abortAll();
    }
  });

  /** What a bucket lifecycle rule (AbortIncompleteMultipartUpload) would do. */
  const abortAll = async (): Promise<void> => {
    const s3 = adminClient();
    try {
      for (const u of await openUploadList()) {
        await s3.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: u.Key, UploadId: u.UploadId }));
      }
    } finally {
      s3.destroy();
    }
  };

  test("slow storage (latency and a bandwidth limit): the backup completes, nothing partial", async () => {
    const proxy = await new FaultProxy(target.port).start();
    proxy.latencyMs = 150;
    proxy.bytesPerSecond = 6 * 1024 * 1024;
    try {
      const run = await runExecutor(
        "backup",
        env(proxy.endpoint, { BACKUP_PART_SIZE: String(partSize), BACKUP_CONCURRENCY: "2" }),
      );
      assert.equal(run.code, 0, show(run));
      assert.ok(
        proxy.seen.filter((r) => r.method === "PUT").length >= 3,
        "the snapshot went up in parts through the proxy",
      );
      assert.equal(Number((await target.get(String(run.result?.key)))?.length), Number(run.result?.size));
      await assertNothingPartial();
    } finally {
      await proxy.stop();
    }
    await assertBackupAndRestoreWork("slow-storage");
  });

  test("503 SlowDown on the first tries of each part: the SDK retries and the backup succeeds", async (t) => {
    const proxy = await new FaultProxy(target.port).start();
    // The first answer to every part, and to the manifest, is "slow down".
    const refusedOnce = new Set<string>();
    proxy.throttle = (req) => {
      if (req.method !== "PUT") return false;
      const part = req.url.replace(/uploadId=[^&]*/, "");
      if (refusedOnce.has(part)) return false;
      refusedOnce.add(part);
      return true;
    };
    try {
      const run = await runExecutor(
        "backup",
        env(proxy.endpoint, { BACKUP_PART_SIZE: String(partSize), BACKUP_CONCURRENCY: "2" }),
      );
      assert.equal(run.code, 0, show(run));
      t.diagnostic(`throttled ${proxy.throttled} of ${proxy.seen.length} requests`);
      assert.ok(proxy.throttled >= 3, `throttled ${proxy.throttled} requests`);
      await assertNothingPartial();
    } finally {
      await proxy.stop();
    }
    await assertBackupAndRestoreWork("throttled-once");
  });

  test("503 SlowDown that never stops: exit 5 StorageThrottled naming the cause, nothing partial", async (t) => {
    const before = await target.keys(prefix);
    const proxy = await new FaultProxy(target.port).start();
    // Parts are refused forever; everything else (create, abort) still reaches MinIO.
    proxy.throttle = (req) => req.method === "PUT";
    try {
      const run = await runExecutor(
        "backup",
        env(proxy.endpoint, { BACKUP_PART_SIZE: String(partSize), BACKUP_CONCURRENCY: "2" }),
      );
      t.diagnostic(
        `never-ending SlowDown: exit ${run.code} ${run.result?.reason}: ${run.result?.message}; ${proxy.throttled} refused`,
      );
      assert.equal(run.code, 5, show(run));
      assert.equal(run.result?.reason, "StorageThrottled");
      assert.match(String(run.result?.message), /throttl/i);
      assert.ok(proxy.throttled >= 3, "the SDK retried before giving up");
      assert.deepEqual(await target.keys(prefix), before);
      await assertNothingPartial();
    } finally {
      await proxy.stop();
    }
    await assertBackupAndRestoreWork("throttled-forever");
  });
});
