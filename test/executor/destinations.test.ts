/**
 * Issue 18, item 3 acceptance: several destinations from one read, through the real executable,
 * a real OpenBao and three real stores (MinIO, fake-gcs-server, Azurite).
 *
 * - One snapshot stream teed to all three: each holds the snapshot and its manifest, every
 *   manifest with the same SHA-256, size and raft index; a restore from a secondary works.
 * - One destination cut mid-upload (a proxy drops its part requests): the other two complete
 *   and verify, the cut one holds nothing under the key, and the result names it and why.
 * - The success policy decides the run: All fails it (exit 5, the message names the
 *   destination and where the backup is stored), AtLeastOne and Primary do not — unless, for
 *   Primary, the main target is the one cut.
 * - Bad configuration is refused before anything runs, naming BACKUP_ADDITIONAL_TARGETS.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { scratchDir, startTogether, superviseServers, waitFor } from "../servers/process.ts";
import { startWireProxy, type WireProxy } from "../storage/wire-proxy.ts";
import { clusterEnv, mounts, runExecutor, runRestore, showRun } from "./harness.ts";
import { type ProviderName, startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

const MiB = 1024 * 1024;

interface Manifest {
  key: string;
  size: number;
  sha256: string;
  raftIndex: number;
}

interface Report {
  name: string;
  ok: boolean;
  location: string;
  key: string;
  reason?: string;
  message?: string;
}

/** The `target` spec of a destination, as the operator writes it into BACKUP_ADDITIONAL_TARGETS. */
function targetSpec(env: Record<string, string>, pathPrefix: string): Record<string, unknown> {
  return {
    provider: env.BACKUP_PROVIDER,
    endpoint: env.BACKUP_ENDPOINT,
    bucket: env.BACKUP_BUCKET,
    pathPrefix,
    partSize: 5 * MiB,
    ...(env.BACKUP_USE_PATH_STYLE ? { usePathStyle: true } : {}),
    ...(env.BACKUP_GCS_PROJECT ? { gcs: { project: env.BACKUP_GCS_PROJECT } } : {}),
    ...(env.BACKUP_AZURE_STORAGE_ACCOUNT ? { azure: { storageAccount: env.BACKUP_AZURE_STORAGE_ACCOUNT } } : {}),
  };
}

describe("several destinations from one read: MinIO, fake-gcs-server and Azurite", () => {
  let cluster: OpenBaoCluster;
  const targets = {} as Record<ProviderName, TargetUnderTest>;
  const proxies = {} as Record<ProviderName, WireProxy>;
  const credentialDirs = {} as Record<ProviderName, string>;

  before(async () => {
    let s3: TargetUnderTest;
    let gcs: TargetUnderTest;
    let azure: TargetUnderTest;
    [cluster, s3, gcs, azure] = await startTogether([
      startOpenBao({ nodes: 1 }),
      startTarget("s3"),
      startTarget("gcs"),
      startTarget("azure"),
    ]);
    Object.assign(targets, { s3, gcs, azure });
    const root = scratchDir("destinations");
    for (const provider of ["s3", "gcs", "azure"] as const) {
      proxies[provider] = await startWireProxy(`http://127.0.0.1:${targets[provider].port}`);
      const dir = join(root, provider);
      mkdirSync(dir);
      for (const [name, value] of Object.entries(targets[provider].credentials)) writeFileSync(join(dir, name), value);
      credentialDirs[provider] = dir;
    }
    // ~10 MiB of incompressible values: at 5 MiB parts every copy is a multipart upload.
    const leader = await cluster.leaderIndex();
    for (let i = 0; i < 40; i++) {
      await cluster.writeSecret(`bulk/b${i}`, { blob: randomBytes(192 * 1024).toString("base64") }, leader);
    }
  });
  after(async () => {
    for (const p of Object.values(proxies)) await p.stop();
    await Promise.all([cluster?.stop(), ...Object.values(targets).map((t) => t.stop())]);
  });

  /** The executor's env: MinIO as the main target, fake-gcs-server and Azurite as `gcs-copy` and `azure-copy`. */
  function env(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
    const additional = (["gcs", "azure"] as const).map((p) => ({
      name: `${p}-copy`,
      target: targetSpec(targets[p].env(proxies[p].url), prefix),
      credentialsDir: credentialDirs[p],
    }));
    return {
      ...clusterEnv(cluster),
      ...targets.s3.env(proxies.s3.url),
      BACKUP_PATH_PREFIX: prefix,
      BACKUP_PART_SIZE: String(5 * MiB),
      ...mounts({ cluster, credentials: targets.s3.credentials, token: cluster.rootToken }).env,
      BACKUP_ADDITIONAL_TARGETS: JSON.stringify(additional),
      ...extra,
    };
  }

  async function manifestOf(provider: ProviderName, key: string): Promise<Manifest> {
    const body = await targets[provider].get(`${key}.json`);
    assert.ok(body, `${provider} holds the manifest of ${key}`);
    return JSON.parse(body.toString("utf8")) as Manifest;
  }

  /** Every part request to `provider` after the first is cut off (retries too). */
  function cutAfterFirstPart(provider: ProviderName): () => void {
    let parts = 0;
    const isPart = (method: string, url: string): boolean =>
      provider === "s3"
        ? method === "PUT" && /[?&]partNumber=/.test(url)
        : provider === "gcs"
          ? method === "PUT" && /[?&]upload_id=/.test(url)
          : method === "PUT" && /[?&]comp=block(&|$)/.test(url);
    proxies[provider].failWhen = (req) => isPart(req.method ?? "", req.url ?? "") && ++parts > 1;
    return () => {
      proxies[provider].failWhen = undefined;
    };
  }

  test("one read to three stores: each holds a verified copy with the same SHA-256; a secondary restores", async () => {
    const run = await runExecutor("backup", env("three"));
    assert.equal(run.code, 0, showRun(run));
    const reports = run.result?.destinations as Report[];
    assert.deepEqual(
      reports.map((r) => [r.name, r.ok]),
      [
        ["primary", true],
        ["gcs-copy", true],
        ["azure-copy", true],
      ],
    );
    const manifests = await Promise.all(
      (["s3", "gcs", "azure"] as const).map((p, i) => manifestOf(p, (reports[i] as Report).key)),
    );
    const [first] = manifests;
    assert.ok(first);
    assert.ok(first.size > 5 * MiB, `a multipart snapshot (${first.size} bytes)`);
    for (const m of manifests) {
      assert.equal(m.sha256, run.result?.sha256, `${m.key}: the SHA-256 of the one stream`);
      assert.equal(m.size, first.size);
      assert.equal(m.raftIndex, first.raftIndex);
    }
    for (const [i, p] of (["s3", "gcs", "azure"] as const).entries()) {
      const bytes = await targets[p].get((reports[i] as Report).key);
      assert.equal(bytes?.length, first.size, `${p} holds the whole snapshot`);
    }

    // The Azure copy restores like any backup.
    const leader = await cluster.leaderIndex();
    await cluster.writeSecret("marker/destinations", { value: "after" }, leader);
    const azureKey = (reports[2] as Report).key;
    const restore = await runRestore(cluster, {
      ...clusterEnv(cluster),
      ...targets.azure.env(),
      ...mounts({ cluster, credentials: targets.azure.credentials, token: cluster.rootToken }).env,
      BACKUP_KEY: azureKey,
    });
    assert.equal(restore.code, 0, showRun(restore));
    assert.equal(restore.result?.sha256, first.sha256);
    await waitFor(
      async () =>
        (await cluster.readSecret("marker/destinations", await cluster.leaderIndex()).catch(() => undefined)) ===
        undefined,
      { what: "the marker written after the backup to be gone", timeoutMs: 60_000 },
    );
    await cluster.waitHealthy();
  });

  test("one destination cut mid-upload, policy AtLeastOne: the others verify, the cut one holds nothing, the result names it", async () => {
    const restoreCut = cutAfterFirstPart("azure");
    try {
      const run = await runExecutor("backup", env("cut", { BACKUP_SUCCESS_POLICY: "AtLeastOne" }));
      assert.equal(run.code, 0, showRun(run));
      const reports = run.result?.destinations as Report[];
      const azure = reports[2] as Report;
      assert.equal(azure.name, "azure-copy");
      assert.equal(azure.ok, false);
      assert.match(String(azure.reason), /^Storage/, JSON.stringify(azure));
      assert.ok(azure.message, "a message says why");
      assert.deepEqual(await targets.azure.keys("cut/"), [], "nothing under the cut destination's key");
      const s3 = await manifestOf("s3", (reports[0] as Report).key);
      const gcs = await manifestOf("gcs", (reports[1] as Report).key);
      assert.equal(s3.sha256, gcs.sha256);
      assert.equal(s3.sha256, run.result?.sha256);
      assert.match(run.stdout, /^backed up /m);
    } finally {
      restoreCut();
    }
  });

  test("policy All: the same cut fails the run, naming the destination and where the backup is", async () => {
    const restoreCut = cutAfterFirstPart("azure");
    try {
      const run = await runExecutor("backup", env("all"));
      assert.equal(run.code, 5, showRun(run));
      assert.match(String(run.result?.reason), /^Storage/);
      assert.match(
        String(run.result?.message),
        /^destination azure-copy \(azure:\/\/[^)]+\): .*; policy All: stored and verified in primary, gcs-copy$/,
      );
      const reports = run.result?.destinations as Report[];
      assert.deepEqual(
        reports.map((r) => r.ok),
        [true, true, false],
      );
      assert.deepEqual(await targets.azure.keys("all/"), []);
      assert.equal((await targets.s3.keys("all/")).length, 2, "the main copy and its manifest are kept");
    } finally {
      restoreCut();
    }
  });

  test("policy Primary: a secondary failing is reported, the main target failing fails the run", async () => {
    const restoreGcs = cutAfterFirstPart("gcs");
    try {
      const run = await runExecutor("backup", env("primary-ok", { BACKUP_SUCCESS_POLICY: "Primary" }));
      assert.equal(run.code, 0, showRun(run));
      assert.deepEqual(
        (run.result?.destinations as Report[]).map((r) => r.ok),
        [true, false, true],
      );
      assert.deepEqual(await targets.gcs.keys("primary-ok/"), []);
    } finally {
      restoreGcs();
    }
    const restoreS3 = cutAfterFirstPart("s3");
    try {
      const run = await runExecutor("backup", env("primary-cut", { BACKUP_SUCCESS_POLICY: "Primary" }));
      assert.equal(run.code, 5, showRun(run));
      assert.match(
        String(run.result?.message),
        /^destination primary \(s3:\/\/backups\): .*policy Primary: stored and verified in gcs-copy, azure-copy$/,
      );
      assert.deepEqual(await targets.s3.keys("primary-cut/"), []);
      assert.equal(await targets.s3.openUploads(), 0, "the main target's multipart upload was aborted");
    } finally {
      restoreS3();
    }
  });

  test("bad destinations are refused before anything runs, naming the setting", async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { BACKUP_ADDITIONAL_TARGETS: "not json" },
        /BACKUP_ADDITIONAL_TARGETS \(--additional-targets\): must be a JSON array/,
      ],
      [
        { BACKUP_ADDITIONAL_TARGETS: JSON.stringify([{ name: "primary", target: { bucket: "b" } }]) },
        /\[0\]\.name "primary" is used twice/,
      ],
      [
        { BACKUP_ADDITIONAL_TARGETS: JSON.stringify([{ name: "Off Site", target: { bucket: "b" } }]) },
        /\[0\]\.name must be a name of at most 40 lower-case letters/,
      ],
      [
        { BACKUP_ADDITIONAL_TARGETS: JSON.stringify([{ name: "x", target: { provider: "gcs" } }]) },
        /\[0\] \(x\): target\.bucket: is required/,
      ],
      [
        { BACKUP_ADDITIONAL_TARGETS: "", BACKUP_SUCCESS_POLICY: "AtLeastOne" },
        /BACKUP_SUCCESS_POLICY .*applies with BACKUP_ADDITIONAL_TARGETS only/,
      ],
      [{ BACKUP_SUCCESS_POLICY: "Most" }, /BACKUP_SUCCESS_POLICY .*must be All, AtLeastOne, Primary/],
    ];
    for (const [extra, message] of cases) {
      const run = await runExecutor("backup", env("refused", extra));
      assert.equal(run.code, 1, showRun(run));
      assert.match(String(run.result?.message), message);
    }
    assert.deepEqual(await targets.s3.keys("refused/"), []);
  });
});
