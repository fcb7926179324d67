/**
 * Issue 7: the subcommands that work from a kubeconfig — `trigger`, `status`, `list` /
 * `prune` reading the target, credentials Secret and retention from the OpenBaoCluster, and
 * `auth-setup` (key discovery from the API server, idempotence, a real TokenRequest token
 * logging in afterwards) — against a real kube-apiserver, MinIO and OpenBao.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { crdFiles } from "../../src/api/schema.ts";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { buildKey } from "../../src/snapshot/key.ts";
import { startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { s3Target } from "../operator/stack.ts";
import { type KubeHandle, startKube } from "../servers/kube.ts";
import { type OpenBaoCluster as BaoServer, startOpenBao } from "../servers/openbao.ts";
import { scratchDir, startTogether, superviseServers } from "../servers/process.ts";
import { json, runCli, show } from "./run.ts";

superviseServers();

const ns = "openbao";
const api = { group: "openbao.org", version: "v1alpha1", namespace: ns, plural: "openbaoclusters" };
const day = 24 * 3600 * 1000;

describe("kubeconfig subcommands against kube-apiserver, MinIO and OpenBao", () => {
  let kube: KubeHandle;
  let target: TargetUnderTest;
  let bao: BaoServer;
  let custom: CustomObjectsApi;
  let dir: string;
  let kubeconfig: string;
  let nobodyKubeconfig: string;
  const seededKeys: string[] = [];

  before(async () => {
    kube = await startKube();
    [target, bao] = await startTogether([
      startTarget("s3"),
      startOpenBao({ nodes: 1 }),
      kube.installCrds(crdFiles().map((f) => f.content)),
    ]);
    await kube.createNamespace(ns);
    const core = kube.kubeConfig.makeApiClient(CoreV1Api);
    custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "s3-credentials" }, stringData: target.credentials },
    });
    dir = scratchDir("cli-kube");
    kubeconfig = join(dir, "admin.kubeconfig");
    writeFileSync(kubeconfig, kube.kubeConfig.exportConfig());
    // A ServiceAccount with no RBAC at all, for the 403 paths.
    await kube.createServiceAccount(ns, "nobody");
    const nobody = await kube.requestToken(ns, "nobody", kube.issuer);
    nobodyKubeconfig = join(dir, "nobody.kubeconfig");
    writeFileSync(nobodyKubeconfig, kube.kubeConfigForToken(nobody.token, "nobody").exportConfig());

    const cluster = (name: string, backup: boolean): OpenBaoCluster =>
      ({
        apiVersion: "openbao.org/v1alpha1",
        kind: "OpenBaoCluster",
        metadata: { name, namespace: ns },
        spec: {
          replicas: 1,
          ...(backup
            ? {
                backup: {
                  schedule: "0 3 * * *",
                  timeZone: "UTC",
                  jwtAuthRole: "backup",
                  target: s3Target(target),
                  retention: { maxCount: 2 },
                },
              }
            : {}),
        },
      }) as unknown as OpenBaoCluster;
    await custom.createNamespacedCustomObject({ ...api, body: cluster("bao", true) });
    await custom.createNamespacedCustomObject({ ...api, body: cluster("plain", false) });
    const now = Date.now();
    await custom.patchNamespacedCustomObjectStatus(
      {
        ...api,
        name: "bao",
        body: {
          status: {
            phase: "Running",
            initialized: true,
            backup: {
              lastBackupTime: new Date(now - 3600_000).toISOString(),
              lastBackupName: "openbao/bao/2026-01-01T03-00-00Z-0123abcd.snap",
              lastBackupSize: 123456,
              lastBackupDuration: "1.2s",
              lastBackupRaftIndex: 42,
              consecutiveFailures: 1,
              lastFailureReason: "StorageUnreachable",
              lastFailureMessage: "cannot reach s3",
              lastFailureTime: new Date(now - 600_000).toISOString(),
              lastDrill: {
                time: new Date(now - 7200_000).toISOString(),
                jobName: "drill-bao-20260101-050000",
                outcome: "failed",
                key: "openbao/bao/2026-01-01T03-00-00Z-0123abcd.snap",
                duration: "9.1s",
                reason: "SnapshotRefused",
                message: "OpenBao refused the snapshot",
              },
            },
            operationLock: {
              operation: "Backup",
              holder: "openbaocluster/backup",
              message: "backup-bao-20260101-030000",
              acquiredAt: new Date(now - 60_000).toISOString(),
            },
            conditions: [
              {
                type: "BackupHealthy",
                status: "False",
                reason: "BackupFailed",
                message: "the last attempt failed",
                lastTransitionTime: new Date(now - 600_000).toISOString(),
              },
              {
                type: "RestoreVerified",
                status: "False",
                reason: "DrillFailed",
                message: "the restore drill failed",
                lastTransitionTime: new Date(now - 7200_000).toISOString(),
              },
            ],
          },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    for (let i = 1; i <= 3; i++) {
      const key = buildKey({
        pathPrefix: "",
        namespace: ns,
        cluster: "bao",
        time: new Date(now - i * day),
        kind: "scheduled",
        random: `0000000${i}`,
      });
      seededKeys.push(key);
      await target.put(key, Buffer.from("seeded"));
      // Retention counts only snapshots with a manifest (issue 18); its content is not read here.
      await target.put(`${key}.json`, Buffer.from("{}"));
    }
  });
  after(async () => {
    await Promise.all([target?.stop(), bao?.stop(), kube?.stop()]);
  });

  const k = () => ["--kubeconfig", kubeconfig, "-n", ns];

  test("trigger sets the annotation to a timestamp (merge patch) and says what happens next", async () => {
    const run = await runCli(["trigger", "bao", ...k()]);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /Requested a backup of openbao\/bao \(openbao\.org\/trigger-backup=\d{4}-/);
    const got = (await custom.getNamespacedCustomObject({ ...api, name: "bao" })) as OpenBaoCluster;
    const value = got.metadata.annotations?.["openbao.org/trigger-backup"] ?? "";
    assert.ok(!Number.isNaN(Date.parse(value)), value);
    assert.equal(got.spec?.backup?.schedule, "0 3 * * *", "the rest of the object is untouched");
    const again = json<{ value: string; replacedPending: string | null }>(
      await runCli(["trigger", "bao", ...k(), "-o", "json"]),
    );
    assert.equal(again.replacedPending, value);
  });

  test("trigger errors: unknown cluster, no spec.backup, no name, bad kubeconfig (1), RBAC (2)", async () => {
    const missing = await runCli(["trigger", "nope", ...k()]);
    assert.equal(missing.code, 1, show(missing));
    assert.match(missing.stderr, /OpenBaoCluster openbao\/nope does not exist; check the name and --namespace/);
    const plain = await runCli(["trigger", "plain", ...k()]);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /no spec\.backup/);
    const noName = await runCli(["trigger", ...k()]);
    assert.equal(noName.code, 1);
    assert.match(noName.stderr, /<cluster> is required/);
    const badConfig = await runCli(["trigger", "bao", "--kubeconfig", join(dir, "missing"), "-n", ns]);
    assert.equal(badConfig.code, 1);
    assert.match(badConfig.stderr, /--kubeconfig/);
    const forbidden = await runCli(["trigger", "bao", "--kubeconfig", nobodyKubeconfig, "-n", ns]);
    assert.equal(forbidden.code, 2, show(forbidden));
    assert.match(forbidden.stderr, /forbidden \(403\)/);
  });

  test("trigger --drill asks for one restore drill, and only of a cluster with spec.backup.drill", async () => {
    const none = await runCli(["trigger", "bao", "--drill", ...k()]);
    assert.equal(none.code, 1, show(none));
    assert.match(
      none.stderr,
      /has no spec\.backup\.drill, so no restore drill would run; configure spec\.backup\.drill first/,
    );
    await custom.patchNamespacedCustomObject(
      { ...api, name: "bao", body: { spec: { backup: { drill: { schedule: "0 5 * * 0" } } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    try {
      const run = await runCli(["trigger", "bao", "--drill", ...k()]);
      assert.equal(run.code, 0, show(run));
      assert.match(run.stdout, /Requested a restore drill of openbao\/bao \(openbao\.org\/trigger-drill=\d{4}-/);
      const got = (await custom.getNamespacedCustomObject({ ...api, name: "bao" })) as OpenBaoCluster;
      assert.ok(!Number.isNaN(Date.parse(got.metadata.annotations?.["openbao.org/trigger-drill"] ?? "")));
      const named = await runCli(["trigger", "bao", "--drill", "--key", "bao/x-0000a001.snap", ...k()]);
      assert.equal(named.code, 0, show(named));
      const again = (await custom.getNamespacedCustomObject({ ...api, name: "bao" })) as OpenBaoCluster;
      assert.match(
        again.metadata.annotations?.["openbao.org/trigger-drill"] ?? "",
        /^\d{4}-\S+ key=bao\/x-0000a001\.snap$/,
      );
      const misplaced = await runCli(["trigger", "bao", "--key", "bao/x.snap", ...k()]);
      assert.equal(misplaced.code, 1);
      assert.match(misplaced.stderr, /--key applies with --drill only/);
    } finally {
      await custom.patchNamespacedCustomObject(
        {
          ...api,
          name: "bao",
          body: { metadata: { annotations: { "openbao.org/trigger-drill": null } }, spec: { backup: { drill: null } } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    }
  });

  test("status summarises one cluster: schedule, next window, last backup, failure, lock, conditions", async () => {
    const run = await runCli(["status", "bao", ...k()]);
    assert.equal(run.code, 0, show(run));
    const out = run.stdout;
    assert.match(out, /^openbao\/bao \(phase Running\)/);
    assert.match(out, /schedule\s+0 3 \* \* \* \(UTC\)/);
    assert.match(out, /next window\s+\d{4}-\d{2}-\d{2}T03:00:00\.000Z \(in /);
    assert.match(out, /manual trigger\s+pending since/);
    assert.match(out, /last backup\s+.*\(1h ago\)/);
    assert.match(out, /key\s+openbao\/bao\/2026-01-01T03-00-00Z-0123abcd\.snap/);
    assert.match(out, /size\s+121 KiB, took 1\.2s, raft index 42/);
    assert.match(out, /failures in a row\s+1/);
    assert.match(out, /last failure\s+StorageUnreachable/);
    assert.match(out, /operation lock\s+Backup held by openbaocluster\/backup/);
    assert.match(out, /BackupHealthy\s+False BackupFailed: the last attempt failed/);
    assert.match(out, /last drill\s+FAILED \(SnapshotRefused\) at .*\(2h ago\), took 9\.1s/);
    assert.match(out, /RestoreVerified\s+False DrillFailed: the restore drill failed/);
  });

  test("status without a name covers every cluster in the namespace; --output json for scripts", async () => {
    const all = await runCli(["status", ...k()]);
    assert.equal(all.code, 0, show(all));
    assert.match(all.stdout, /openbao\/plain\n\s+backups\s+not configured/);
    const out = json<{
      clusters: { name: string; nextWindow: string | null; operationLock: unknown; backup: Record<string, unknown> }[];
    }>(await runCli(["status", ...k(), "-o", "json"]));
    assert.deepEqual(out.clusters.map((c) => c.name).sort(), ["bao", "plain"]);
    const bao = out.clusters.find((c) => c.name === "bao");
    assert.ok(bao?.nextWindow);
    assert.equal(bao?.backup.lastBackupRaftIndex, 42);
    const empty = await runCli(["status", "--kubeconfig", kubeconfig, "-n", "default"]);
    assert.equal(empty.code, 0);
    assert.match(empty.stdout, /No OpenBaoClusters in namespace default/);
  });

  test("status errors: unknown cluster (1), RBAC (2), unreachable API server (1)", async () => {
    const missing = await runCli(["status", "nope", ...k()]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist/);
    const forbidden = await runCli(["status", "--kubeconfig", nobodyKubeconfig, "-n", ns]);
    assert.equal(forbidden.code, 2, show(forbidden));
    const unreachable = join(dir, "unreachable.kubeconfig");
    writeFileSync(unreachable, kube.kubeConfig.exportConfig().replace(kube.server, "https://127.0.0.1:9"));
    const down = await runCli(["status", "--kubeconfig", unreachable, "-n", ns]);
    assert.equal(down.code, 1, show(down));
    assert.match(down.stderr, /cannot reach the Kubernetes API at https:\/\/127\.0\.0\.1:9/);
  });

  test("list and prune read the target, its credentials Secret and retention from the cluster", async () => {
    const list = json<{ backups: { key: string; verified: boolean }[] }>(
      await runCli(["list", "bao", ...k(), "-o", "json"]),
    );
    assert.deepEqual(
      list.backups.map((b) => b.key),
      seededKeys,
    );
    const dry = await runCli(["prune", "bao", ...k(), "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    assert.match(dry.stdout, /keep at most 2; from spec\.backup\.retention of openbao\/bao/);
    assert.match(dry.stdout, new RegExp(`${seededKeys[2]} \\(\\+ manifest\\): beyond the 2 newest \\(max-count\\)`));
    assert.equal((await target.keys("openbao/bao/")).length, 6, "a dry run deletes nothing");
  });

  test("list/prune with --kubeconfig: conflicting flags, a cluster without spec.backup or retention (1)", async () => {
    const conflict = await runCli(["list", "bao", ...k(), "--bucket", "x"]);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /--bucket cannot be combined with --kubeconfig/);
    const plain = await runCli(["list", "plain", ...k()]);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /no spec\.backup\.target/);
    const noCluster = await runCli(["list", ...k()]);
    assert.equal(noCluster.code, 1);
    assert.match(noCluster.stderr, /--cluster is required/);
  });

  const login = (path: string, role: string, jwt: string) =>
    bao.api<{ auth?: { policies?: string[] } }>("POST", `auth/${path}/login`, { role, jwt }, { token: "" });

  test("auth-setup configures JWT auth from the API server's keys; a second run is unchanged; tokens log in", async () => {
    // Start from an OpenBao without the product's policies.
    await bao.call("DELETE", "sys/policies/acl/backup");
    await bao.call("DELETE", "sys/policies/acl/restore");
    const caFile = join(dir, "bao-ca.crt");
    writeFileSync(caFile, bao.caPem);
    const args = [
      "auth-setup",
      "bao",
      ...k(),
      "--address",
      bao.addresses[0] ?? "",
      "--ca-file",
      caFile,
      "--path",
      "k8s",
    ];
    const env = { BAO_TOKEN: bao.rootToken };
    const first = await runCli(args, env);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, /created\s+auth\/k8s\/ \(JWT auth\)/);
    assert.match(
      first.stdout,
      /created\s+auth\/k8s\/config \(validation keys, issuer https:\/\/kubernetes\.default\.svc\)/,
    );
    assert.match(first.stdout, /created\s+policy backup/);
    assert.match(
      first.stdout,
      /created\s+role backup \(openbao\/bao-backup, audience openbao-internal, policy backup\)/,
    );
    assert.match(
      first.stdout,
      /created\s+role restore \(openbao\/bao-restore, audience openbao-internal, policy restore\)/,
    );
    assert.ok(!(first.stdout + first.stderr).includes(bao.rootToken), "the root token is never printed");

    const second = json<{ changed: number; changes: { action: string }[] }>(await runCli([...args, "-o", "json"], env));
    assert.equal(second.changed, 0);
    assert.ok(second.changes.every((c) => c.action === "unchanged"));
    const secondText = await runCli(args, env);
    assert.match(secondText.stdout, /already configured: unchanged/);

    await kube.createServiceAccount(ns, "bao-backup");
    await kube.createServiceAccount(ns, "bao-restore");
    const backupJwt = (await kube.requestToken(ns, "bao-backup", "openbao-internal")).token;
    const ok = await login("k8s", "backup", backupJwt);
    assert.equal(ok.status, 200, ok.text);
    assert.ok(ok.body.auth?.policies?.includes("backup"));
    const restoreJwt = (await kube.requestToken(ns, "bao-restore", "openbao-internal")).token;
    const restore = await login("k8s", "restore", restoreJwt);
    assert.equal(restore.status, 200, restore.text);
    assert.ok(restore.body.auth?.policies?.includes("restore"));
    assert.equal((await login("k8s", "backup", restoreJwt)).status, 400, "the restore SA is not the backup role");
    const otherAudience = (await kube.requestToken(ns, "bao-backup", kube.issuer)).token;
    assert.equal((await login("k8s", "backup", otherAudience)).status, 400);
    const policy = await bao.call<{ data: { policy: string } }>("GET", "sys/policies/acl/backup");
    assert.match(policy.data.policy, /sys\/storage\/raft\/snapshot"[\s\S]*"read"/);
  });

  test("auth-setup with a key file reports what it updates, and a changed audience updates the roles", async () => {
    const caFile = join(dir, "bao-ca.crt");
    const keyFile = join(dir, "sa.pub");
    writeFileSync(keyFile, kube.serviceAccountPublicKeyPem);
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${bao.rootToken}\n`);
    const base = ["auth-setup", "bao", "-n", ns, "--address", bao.addresses[0] ?? "", "--ca-file", caFile];
    const run = await runCli([
      ...base,
      "--path",
      "k8s",
      "--jwt-validation-pubkey-file",
      keyFile,
      "--issuer",
      kube.issuer,
      "--token-file",
      tokenFile,
      "-o",
      "json",
    ]);
    assert.equal(run.code, 0, show(run));
    const out = json<{ changes: { item: string; action: string }[] }>(run);
    assert.ok(
      out.changes.every((c) => c.action === "unchanged"),
      "the same key from a file is the same config",
    );
    const moved = await runCli([
      ...base,
      "--path",
      "k8s",
      "--jwt-validation-pubkey-file",
      keyFile,
      "--token-file",
      tokenFile,
      "--audience",
      "other",
    ]);
    assert.equal(moved.code, 0, show(moved));
    assert.match(moved.stdout, /updated\s+auth\/k8s\/config \(validation keys, issuer any\)/);
    assert.match(moved.stdout, /updated\s+role backup \(.*audience other/);
    assert.match(moved.stdout, /unchanged\s+policy backup/);
  });

  test("auth-setup errors: no token (1), refused token (2), unreachable OpenBao (3), bad flags (1)", async () => {
    const caFile = join(dir, "bao-ca.crt");
    const keyFile = join(dir, "sa.pub");
    const base = [
      "auth-setup",
      "bao",
      "-n",
      ns,
      "--address",
      bao.addresses[0] ?? "",
      "--ca-file",
      caFile,
      "--jwt-validation-pubkey-file",
      keyFile,
    ];
    const noToken = await runCli(base);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /--token-file <file> or the BAO_TOKEN environment variable/);
    const refused = await runCli(base, { BAO_TOKEN: "s.notAValidTokenAtAllxxxxxxxx" });
    assert.equal(refused.code, 2, show(refused));
    assert.doesNotMatch(refused.stderr, /notAValidToken/);
    const down = await runCli(
      [
        "auth-setup",
        "bao",
        "-n",
        ns,
        "--address",
        "https://127.0.0.1:9",
        "--ca-file",
        caFile,
        "--jwt-validation-pubkey-file",
        keyFile,
      ],
      { BAO_TOKEN: bao.rootToken },
    );
    assert.equal(down.code, 3, show(down));
    const noNamespace = await runCli(["auth-setup", "bao", "--address", bao.addresses[0] ?? ""], {
      BAO_TOKEN: bao.rootToken,
    });
    assert.equal(noNamespace.code, 1);
    assert.match(noNamespace.stderr, /--namespace \(-n\) is required/);
    const noKey = await runCli(["auth-setup", "bao", "-n", ns, "--address", bao.addresses[0] ?? ""], {
      BAO_TOKEN: bao.rootToken,
    });
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /--jwt-validation-pubkey-file/);
    const tokenFlag = await runCli([...base, "--token", "x"]);
    assert.equal(tokenFlag.code, 1);
    const wrongType = await runCli([...base, "--path", "token"], { BAO_TOKEN: bao.rootToken });
    assert.equal(wrongType.code, 1, show(wrongType));
    assert.match(wrongType.stderr, /already enabled with type "token"/);
  });
});
