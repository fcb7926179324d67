/**
 * `npm run demo`: the main job in one command — a real backup and a real restore on a local
 * stack. It starts etcd + kube-apiserver, a 3-node OpenBao (Raft, TLS), MinIO and the job
 * runner (which plays kubelet for the Jobs), installs the CRDs, runs `bao-backup operator`,
 * and then walks through: create an OpenBaoCluster with a schedule and retention, write
 * secrets, trigger a backup, show the status and the bucket, delete the secrets, restore
 * through an OpenBaoRestore, and read the secrets back from every member.
 *
 * Everything runs on 127.0.0.1 and is stopped on exit or Ctrl-C (test/servers/process.ts
 * kills what it started and removes its scratch directories). The servers are built on the
 * first run and reused from ~/.cache/openbao-backup afterwards.
 */
import { isDeepStrictEqual } from "node:util";
import type { OpenBaoCluster, OpenBaoRestore } from "../src/api/types.ts";
import { s3Target, startStack } from "../test/operator/stack.ts";
import { prepareServers } from "../test/servers/prepare.ts";
import { waitFor } from "../test/servers/process.ts";

const started = Date.now();
const clusterName = "demo";
const namespace = "openbao";

function say(line: string): void {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[demo ${s}s] ${line}\n`);
}

function show(title: string, value: unknown): void {
  process.stdout.write(`\n  ${title}\n${JSON.stringify(value, null, 2).replace(/^/gm, "    ")}\n\n`);
}

const secrets: Record<string, Record<string, string>> = {
  "payments/stripe": { apiKey: "sk_demo_4eC39HqLyjWDarjtT1zdp7dc" },
  "payments/db": { username: "payments", password: "correct-horse-battery-staple" },
  "web/session": { signingKey: "b1946ac92492d2347c6235b4d2611184" },
};

say("preparing the servers (built once, then reused from the cache)");
await prepareServers(["etcd", "kube-apiserver", "openbao", "minio"]);

const stack = await startStack([clusterName], { nodes: 3, say });
let exitCode = 0;
try {
  say("starting the operator: bao-backup operator --kubeconfig … --namespace openbao");
  const operator = await stack.startOperator({ name: "operator" });
  process.stdout.write(
    `\n  logs: operator ${operator.process.logPath}\n        OpenBao ${stack.bao.nodes.map((n) => n.process.logPath).join(", ")}\n        jobs ${stack.runner.dir}/logs\n\n`,
  );

  say(`creating OpenBaoCluster ${clusterName}: schedule "0 3 * * *", retention maxCount 7, JWT auth role "backup"`);
  await stack.createCluster(clusterName, {
    schedule: "0 3 * * *",
    jwtAuthRole: "backup",
    target: { ...s3Target(stack.target), pathPrefix: "demo" },
    retention: { maxCount: 7 },
  });

  const leader = await stack.bao.leaderIndex();
  say(`writing ${Object.keys(secrets).length} secrets into OpenBao (KV v2 at secret/)`);
  for (const [path, data] of Object.entries(secrets)) await stack.bao.writeSecret(path, data, leader);

  say("triggering a backup: kubectl annotate openbaocluster demo openbao.org/trigger-backup=now");
  await stack.patchCluster(clusterName, { metadata: { annotations: { "openbao.org/trigger-backup": "now" } } });
  const backedUp = await waitFor(
    async () => {
      const c = await stack.getCluster(clusterName);
      return c.status?.backup?.lastBackupName !== undefined && c;
    },
    { what: "the backup to be recorded", timeoutMs: 120_000, processes: [operator.process] },
  );
  const b = backedUp.status?.backup;
  show("status.backup", {
    lastBackupName: b?.lastBackupName,
    lastBackupSize: b?.lastBackupSize,
    lastBackupSHA256: b?.lastBackupSHA256,
    lastBackupRaftIndex: b?.lastBackupRaftIndex,
    lastBackupDuration: b?.lastBackupDuration,
    consecutiveFailures: b?.consecutiveFailures,
    nextScheduledBackup: b?.nextScheduledBackup,
  });
  show(
    "conditions",
    (backedUp.status?.conditions ?? []).map((c) => `${c.type}=${c.status} (${c.reason}): ${c.message}`),
  );
  show("objects in the bucket", await stack.target.keys("demo/"));
  const key = b?.lastBackupName ?? "";

  say("deleting every secret (the disaster)");
  for (const path of Object.keys(secrets))
    await stack.bao.call("DELETE", `secret/metadata/${path}`, undefined, { node: leader });
  show(
    "secrets now",
    Object.fromEntries(
      await Promise.all(
        Object.keys(secrets).map(async (p) => [p, (await stack.bao.readSecret(p, leader)) ?? "(gone)"]),
      ),
    ),
  );

  say(`restoring ${key} through an OpenBaoRestore (JWT auth role "restore")`);
  await stack.custom.createNamespacedCustomObject({
    group: "openbao.org",
    version: "v1alpha1",
    namespace,
    plural: "openbaorestores",
    body: {
      apiVersion: "openbao.org/v1alpha1",
      kind: "OpenBaoRestore",
      metadata: { name: "demo-restore", namespace },
      spec: {
        cluster: clusterName,
        source: { target: { ...s3Target(stack.target), pathPrefix: "demo" }, key },
        jwtAuthRole: "restore",
      },
    },
  });
  const restored = await waitFor(
    async () => {
      const r = (await stack.custom.getNamespacedCustomObject({
        group: "openbao.org",
        version: "v1alpha1",
        namespace,
        plural: "openbaorestores",
        name: "demo-restore",
      })) as OpenBaoRestore;
      const phase = r.status?.phase;
      return (phase === "Completed" || phase === "Failed") && r;
    },
    { what: "the restore to finish", timeoutMs: 300_000, processes: [operator.process] },
  );
  show("OpenBaoRestore status", restored.status);
  if (restored.status?.phase !== "Completed")
    throw new Error(`the restore ended ${restored.status?.phase}: ${restored.status?.message}`);

  say("reading every secret back from every member");
  let missing = 0;
  for (const node of stack.bao.nodes) {
    for (const [path, data] of Object.entries(secrets)) {
      const got = await stack.bao.readSecret(path, node.index);
      const ok = isDeepStrictEqual(got, data);
      if (!ok) missing++;
      process.stdout.write(`    node ${node.index}  ${path.padEnd(18)} ${ok ? "restored" : "MISSING"}\n`);
    }
  }
  const cluster: OpenBaoCluster = await stack.getCluster(clusterName);
  say(
    `operation lock after the restore: ${cluster.status?.operationLock ? cluster.status.operationLock.holder : "free"}`,
  );
  if (missing > 0) throw new Error(`${missing} secret reads did not match`);
  say("done: a real backup and a real restore, every secret back on every member");
} catch (err) {
  exitCode = 1;
  say(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  say("stopping everything");
  await stack.stop();
  say(`finished in ${((Date.now() - started) / 1000).toFixed(0)}s`);
}
process.exitCode = exitCode;
