/**
 * Issue 7: `list`, `verify` and `prune` against a real MinIO holding real backups (made by
 * the executor from a real OpenBao), plus seeded objects for each thing that can be wrong.
 * Storage settings come from flags and the executor's env contract.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildKey } from "../../src/snapshot/key.ts";
import { clusterEnv, mounts, runExecutor } from "../executor/harness.ts";
import { startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { scratchDir, startTogether, superviseServers } from "../servers/process.ts";
import { json, runCli, show } from "./run.ts";

superviseServers();

const day = 24 * 3600 * 1000;

interface ListJson {
  location: string;
  prefix: string;
  backups: {
    key: string;
    kind: string;
    size: number;
    raftIndex: number | null;
    verified: boolean;
    problem: string | null;
  }[];
}

interface VerifyJson {
  ok: boolean;
  sha256: string | null;
  raftIndex: number | null;
  checks: { name: string; ok: boolean; detail: string }[];
}

describe("list, verify and prune against MinIO", () => {
  let bao: OpenBaoCluster;
  let target: TargetUnderTest;
  let storageEnv: Record<string, string>;
  let real: string[] = [];
  const seeded: Record<string, string> = {};
  const key = (daysAgo: number, random: string, kind: "scheduled" | "pre-upgrade" = "scheduled") =>
    buildKey({
      pathPrefix: "",
      namespace: "openbao",
      cluster: "bao",
      time: new Date(Date.now() - daysAgo * day),
      kind,
      random,
    });

  before(async () => {
    [bao, target] = await startTogether([startOpenBao({ nodes: 1 }), startTarget("s3")]);
    await bao.writeSecret("app", { password: "hunter2" });
    const m = mounts({ cluster: bao, credentials: target.credentials, token: bao.rootToken });
    storageEnv = { ...target.env(), BACKUP_CREDENTIALS_DIR: m.env.BACKUP_CREDENTIALS_DIR ?? "" };
    for (let i = 0; i < 2; i++) {
      const run = await runExecutor("backup", { ...clusterEnv(bao), ...target.env(), ...m.env });
      assert.equal(run.code, 0, run.stderr + run.raw);
      real.push(String(run.result?.key));
    }
    real = real.sort().reverse();
    const [newest] = real;
    assert.ok(newest);
    const bytes = await target.get(newest);
    const manifestText = await target.get(`${newest}.json`);
    assert.ok(bytes && manifestText);
    const manifest = JSON.parse(manifestText.toString()) as Record<string, unknown>;
    const withManifest = async (k: string, body: Buffer, change: Record<string, unknown> = {}) => {
      await target.put(k, body);
      await target.put(`${k}.json`, Buffer.from(JSON.stringify({ ...manifest, key: k, ...change })));
    };
    seeded.copy = key(5, "00000005");
    await withManifest(seeded.copy, bytes);
    seeded.noManifest = key(4, "00000004");
    await target.put(seeded.noManifest, bytes);
    seeded.truncated = key(3, "00000003");
    await withManifest(seeded.truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    seeded.shaMismatch = key(2, "00000002");
    await withManifest(seeded.shaMismatch, bytes, { sha256: "0".repeat(64) });
    seeded.preUpgrade = key(10, "0000000a", "pre-upgrade");
    await withManifest(seeded.preUpgrade, bytes);
    seeded.foreign = "openbao/bao/notes.txt";
    await target.put(seeded.foreign, Buffer.from("not a backup"));
    await target.put("openbao/bao-2/2020-01-01T00-00-00Z-abcdef12.snap", Buffer.from("another cluster"));
  });
  after(async () => {
    await Promise.all([bao?.stop(), target?.stop()]);
  });

  const flags = ["--cluster", "bao", "--namespace", "openbao"];

  test("list prints a table, newest first, and says which backups are verified", async () => {
    const run = await runCli(["list", ...flags], storageEnv);
    assert.equal(run.code, 0, show(run));
    const lines = run.stdout.split("\n");
    assert.match(lines[0] ?? "", /^KEY\s+SIZE\s+AGE\s+RAFT INDEX\s+VERIFIED$/);
    const rowOf = (k: string) => lines.find((l) => l.startsWith(`${k} `)) ?? "";
    for (const k of real) assert.match(rowOf(k), /\s\d+\s+yes$/);
    assert.match(rowOf(seeded.copy ?? ""), /5d\s+\d+\s+yes$/);
    assert.match(rowOf(seeded.noManifest ?? ""), /-\s+no \(no manifest\)$/);
    assert.match(rowOf(seeded.truncated ?? ""), /no \(size mismatch: object \d+ bytes, manifest \d+\)$/);
    assert.ok(rowOf(seeded.preUpgrade ?? ""), "pre-upgrade snapshots are listed");
    assert.doesNotMatch(run.stdout, /notes\.txt|bao-2/);
    // newest first
    assert.ok(lines.indexOf(rowOf(real[0] ?? "")) < lines.indexOf(rowOf(seeded.copy ?? "")));
    assert.match(run.stdout, /7 backups in s3:\/\/backups\/openbao\/bao\/; 2 not verified/);
  });

  test("list --output json gives sizes, raft indexes and the reason a backup is not verified", async () => {
    const out = json<ListJson>(await runCli(["list", ...flags, "-o", "json"], storageEnv));
    assert.equal(out.prefix, "openbao/bao/");
    assert.equal(out.backups.length, 7);
    const byKey = new Map(out.backups.map((b) => [b.key, b]));
    for (const k of real) {
      const b = byKey.get(k);
      assert.equal(b?.verified, true);
      assert.ok((b?.raftIndex ?? 0) > 0);
      assert.ok((b?.size ?? 0) > 0);
    }
    assert.equal(byKey.get(seeded.noManifest ?? "")?.problem, "no manifest");
    assert.equal(byKey.get(seeded.preUpgrade ?? "")?.kind, "pre-upgrade");
  });

  test("list of a cluster with no backups says so and exits 0", async () => {
    const run = await runCli(["list", "--cluster", "empty", "--namespace", "openbao"], storageEnv);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /No backups under s3:\/\/backups\/openbao\/empty\//);
  });

  test("list errors: a missing setting names its flag (1), unreachable storage is 5, bad output is 1", async () => {
    const noNamespace = await runCli(["list", "--cluster", "bao"], storageEnv);
    assert.equal(noNamespace.code, 1, show(noNamespace));
    assert.match(noNamespace.stderr, /CLUSTER_NAMESPACE \(--namespace\): is required/);
    const badProvider = await runCli(["list", ...flags, "--provider", "ftp"], storageEnv);
    assert.equal(badProvider.code, 1);
    assert.match(badProvider.stderr, /BACKUP_PROVIDER \(--provider\)/);
    const unknown = await runCli(["list", ...flags, "--frobnicate"], storageEnv);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /--frobnicate/);
    const down = await runCli(["list", ...flags, "--endpoint", "http://127.0.0.1:9"], storageEnv);
    assert.equal(down.code, 5, show(down));
    const wrongKey = await runCli(["list", ...flags], { ...storageEnv, BACKUP_CREDENTIALS_DIR: "/nonexistent" });
    assert.equal(wrongKey.code, 5, show(wrongKey));
    const badOutput = await runCli(["list", ...flags, "-o", "yaml"], storageEnv);
    assert.equal(badOutput.code, 1);
    assert.match(badOutput.stderr, /--output must be json or text/);
    for (const r of [down, wrongKey])
      assert.ok(!r.stderr.includes(target.credentials.secretAccessKey ?? "x"), "the secret key is never printed");
  });

  test("verify: a real backup is good (0), with every check reported", async () => {
    const run = await runCli(["verify", real[0] ?? ""], storageEnv);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /^Verified /);
    for (const name of ["object", "manifest", "archive", "size", "sha256", "raft index"]) {
      assert.match(run.stdout, new RegExp(`ok\\s+${name}\\s`));
    }
    const out = json<VerifyJson>(await runCli(["verify", real[0] ?? "", "-o", "json"], storageEnv));
    assert.equal(out.ok, true);
    assert.match(out.sha256 ?? "", /^[0-9a-f]{64}$/);
    const copy = await runCli(["verify", seeded.copy ?? ""], storageEnv);
    assert.equal(copy.code, 0, show(copy));
  });

  test("verify: mismatching checksum, truncated archive, missing manifest or object all exit 6", async () => {
    const sha = await runCli(["verify", seeded.shaMismatch ?? "", "-o", "json"], storageEnv);
    assert.equal(sha.code, 6, show(sha));
    const shaOut = json<VerifyJson>(sha);
    assert.deepEqual(
      shaOut.checks.filter((c) => !c.ok).map((c) => c.name),
      ["sha256"],
    );
    const truncated = await runCli(["verify", seeded.truncated ?? ""], storageEnv);
    assert.equal(truncated.code, 6, show(truncated));
    assert.match(truncated.stdout, /FAIL\s+archive/);
    assert.match(truncated.stdout, /Verification FAILED/);
    const noManifest = await runCli(["verify", seeded.noManifest ?? ""], storageEnv);
    assert.equal(noManifest.code, 6);
    assert.match(noManifest.stdout, /FAIL\s+manifest\s+.*missing/);
    const missing = await runCli(["verify", "openbao/bao/2001-01-01T00-00-00Z-deadbeef.snap"], storageEnv);
    assert.equal(missing.code, 6);
    assert.match(missing.stdout, /does not exist/);
  });

  test("verify errors: no key or a manifest key is 1, storage failing is 5", async () => {
    const noKey = await runCli(["verify"], storageEnv);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /<key> is required/);
    const manifestKey = await runCli(["verify", `${real[0]}.json`], storageEnv);
    assert.equal(manifestKey.code, 1);
    const down = await runCli(["verify", real[0] ?? "", "--endpoint", "http://127.0.0.1:9"], storageEnv);
    assert.equal(down.code, 5, show(down));
    const noBucket = await runCli(["verify", real[0] ?? ""], { ...storageEnv, BACKUP_BUCKET: "" });
    assert.equal(noBucket.code, 1);
    assert.match(noBucket.stderr, /--bucket/);
  });

  test("prune needs --dry-run or --yes and a policy; bad policies name the flag", async () => {
    const neither = await runCli(["prune", ...flags, "--max-count", "1"], storageEnv);
    assert.equal(neither.code, 1);
    assert.match(neither.stderr, /--dry-run .* --yes/);
    const noPolicy = await runCli(["prune", ...flags, "--dry-run"], storageEnv);
    assert.equal(noPolicy.code, 1);
    assert.match(noPolicy.stderr, /--max-count/);
    const badCount = await runCli(["prune", ...flags, "--dry-run", "--max-count", "0"], storageEnv);
    assert.equal(badCount.code, 1);
    assert.match(badCount.stderr, /--max-count must be/);
    const badAge = await runCli(["prune", ...flags, "--dry-run", "--max-age", "soon"], storageEnv);
    assert.equal(badAge.code, 1);
    assert.match(badAge.stderr, /--max-age/);
    const down = await runCli(
      ["prune", ...flags, "--dry-run", "--max-count", "1", "--endpoint", "http://127.0.0.1:9"],
      storageEnv,
    );
    assert.equal(down.code, 5);
  });

  test("prune --dry-run shows what would go and why, and deletes nothing; --yes deletes exactly that", async () => {
    const before = await target.keys("openbao/");
    const dry = await runCli(["prune", ...flags, "--dry-run", "--max-age", "3d12h"], storageEnv);
    assert.equal(dry.code, 0, show(dry));
    assert.match(dry.stdout, /Would delete 2 backup\(s\):/);
    assert.match(dry.stdout, new RegExp(`${seeded.copy} \\(\\+ manifest\\): older than 3d12h \\(age 5d`));
    assert.match(dry.stdout, new RegExp(`${seeded.noManifest}: no manifest, older than 3d12h \\(age 4d`));
    assert.match(dry.stdout, new RegExp(`${seeded.preUpgrade}: pre-upgrade`));
    assert.match(dry.stdout, /notes\.txt: foreign/);
    assert.match(dry.stdout, /nothing was deleted/);
    assert.deepEqual(await target.keys("openbao/"), before);

    const plan = json<{ delete: { key: string; reason: string }[] }>(
      await runCli(["prune", ...flags, "--dry-run", "--max-count", "3", "-o", "json"], storageEnv),
    );
    assert.deepEqual(
      plan.delete.map((d) => [d.key, d.reason]),
      [
        [`${seeded.copy}.json`, "max-count"],
        [seeded.copy, "max-count"],
        [seeded.noManifest, "max-count"],
        [`${seeded.truncated}.json`, "max-count"],
        [seeded.truncated, "max-count"],
      ],
    );

    const applied = await runCli(["prune", ...flags, "--yes", "--max-count", "3"], storageEnv);
    assert.equal(applied.code, 0, show(applied));
    assert.match(applied.stdout, /Deleting 3 backup\(s\)/);
    assert.match(applied.stdout, /Deleted 5 object\(s\)\./);
    const after = await target.keys("openbao/");
    assert.deepEqual(
      before.filter((k) => !after.includes(k)).sort(),
      [seeded.copy, `${seeded.copy}.json`, seeded.noManifest, seeded.truncated, `${seeded.truncated}.json`].sort(),
    );
    const again = await runCli(["prune", ...flags, "--yes", "--max-count", "3"], storageEnv);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /Nothing to delete\./);
  });

  test("prune: a backup without a manifest takes no --max-count slot and is listed apart (issue 18)", async () => {
    // Left: the two real backups and shaMismatch (2 days), all with a manifest. A leftover of a
    // failed run (1 day, no manifest) sits between them, one newer than all is being written.
    const leftover = key(1, "000000a1");
    const inProgress = key(-1 / 1440, "000000a2"); // stamped a minute after now: after every real backup
    await target.put(leftover, Buffer.from("unverified"));
    await target.put(inProgress, Buffer.from("unverified"));
    const before = await target.keys("openbao/");
    const dry = await runCli(["prune", ...flags, "--dry-run", "--max-count", "3"], storageEnv);
    assert.equal(dry.code, 0, show(dry));
    assert.match(
      dry.stdout,
      /Nothing to delete\./,
      "before issue 18 the leftover took a slot and pushed out a verified backup",
    );
    assert.match(dry.stdout, /Keeping 3 backup\(s\):/);
    assert.match(dry.stdout, /Keeping 2 backup\(s\) WITHOUT a manifest/);
    assert.match(dry.stdout, new RegExp(`${inProgress}: newer than the newest verified backup`));
    assert.match(dry.stdout, new RegExp(`${leftover}: within the policy`));
    const plan = json<{ delete: unknown[]; unverified: { key: string; reason: string }[] }>(
      await runCli(["prune", ...flags, "--dry-run", "--max-count", "2", "-o", "json"], storageEnv),
    );
    assert.deepEqual(
      plan.unverified.map((u) => [u.key, u.reason]),
      [[inProgress, "newer-than-verified"]],
    );
    const applied = await runCli(["prune", ...flags, "--yes", "--max-count", "2"], storageEnv);
    assert.equal(applied.code, 0, show(applied));
    assert.match(applied.stdout, new RegExp(`${leftover}: no manifest, older than every verified backup kept`));
    const after = await target.keys("openbao/");
    assert.deepEqual(
      before.filter((k) => !after.includes(k)).sort(),
      [leftover, seeded.shaMismatch, `${seeded.shaMismatch}.json`].sort(),
    );
    assert.ok(after.includes(inProgress), "a snapshot newer than the newest verified is never deleted");
  });
});

describe("list and verify on GCS and Azure", () => {
  let bao: OpenBaoCluster;
  const targets: TargetUnderTest[] = [];
  before(async () => {
    const [cluster, gcs, azure] = await Promise.all([
      startOpenBao({ nodes: 1 }),
      startTarget("gcs"),
      startTarget("azure"),
    ]);
    bao = cluster;
    targets.push(gcs, azure);
  });
  after(async () => {
    await Promise.all([bao?.stop(), ...targets.map((t) => t.stop())]);
  });

  for (const provider of ["gcs", "azure"] as const) {
    test(`${provider}: a real backup is listed as verified and verifies; a missing key exits 6`, async () => {
      const target = targets.find((t) => t.provider === provider);
      assert.ok(target);
      const m = mounts({ cluster: bao, credentials: target.credentials, token: bao.rootToken });
      const backup = await runExecutor("backup", { ...clusterEnv(bao), ...target.env(), ...m.env });
      assert.equal(backup.code, 0, backup.stderr + backup.raw);
      const key = String(backup.result?.key);
      const env = { ...target.env(), BACKUP_CREDENTIALS_DIR: m.env.BACKUP_CREDENTIALS_DIR ?? "" };
      const list = json<ListJson>(await runCli(["list", "bao", "-n", "openbao", "-o", "json"], env));
      assert.deepEqual(
        list.backups.map((b) => [b.key, b.verified]),
        [[key, true]],
      );
      const verify = await runCli(["verify", key], env);
      assert.equal(verify.code, 0, show(verify));
      const missing = await runCli(["verify", key.replace(/-[0-9a-f]{8}\.snap$/, "-00000000.snap")], env);
      assert.equal(missing.code, 6, show(missing));
    });
  }
});

describe("storage settings given only as flags", () => {
  let target: TargetUnderTest;
  before(async () => {
    target = await startTarget("s3");
  });
  after(async () => {
    await target?.stop();
  });

  test("bare --use-path-style and --credentials-dir work without any environment", async () => {
    const credentialsDir = scratchDir("cli-credentials");
    for (const [name, value] of Object.entries(target.credentials)) writeFileSync(join(credentialsDir, name), value);
    const env = target.env();
    const flags = ["--endpoint", env.BACKUP_ENDPOINT ?? "", "--bucket", env.BACKUP_BUCKET ?? ""];
    const run = await runCli([
      "list",
      "--cluster=bao",
      "-n",
      "openbao",
      ...flags,
      "--use-path-style",
      "--credentials-dir",
      credentialsDir,
    ]);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /No backups under s3:\/\/backups\/openbao\/bao\//);
    const last = await runCli([
      "list",
      "--cluster=bao",
      "-n",
      "openbao",
      "--credentials-dir",
      credentialsDir,
      ...flags,
      "--use-path-style",
    ]);
    assert.equal(last.code, 0, show(last));
    const bad = await runCli(["list", "--cluster=bao", "-n", "openbao", ...flags, "--use-path-style=maybe"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /BACKUP_USE_PATH_STYLE \(--use-path-style\): must be true or false/);
  });
});
