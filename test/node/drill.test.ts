/**
 * Issue 17, acceptance on the real node: restore drills as users run them. The operator
 * (installed with the Helm chart, running as a Pod) creates each drill Job; the real kubelet
 * runs its Pod — `drill-prepare`, the throwaway OpenBao as a native sidecar from the real
 * OpenBao image (tagged with the cluster's version), and `bao-backup drill` from the product's
 * image — and the real Job controller completes it when the executor ends. Backups come from
 * the real 3-member host OpenBao (Shamir) and from a second source that auto-unseals through a
 * third OpenBao's Transit engine, into real MinIO.
 *
 * Played here: the lifecycle operator (world.createCluster writes status.phase Running); the
 * drill manager reads none of it — a drill never touches the live cluster.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { buildKey } from "../../src/snapshot/key.ts";
import { parseManifest, serializeManifest } from "../../src/snapshot/manifest.ts";
import { flipKvVersionValues, repacked } from "../executor/tamper.ts";
import type { TargetUnderTest } from "../executor/targets.ts";
import { quietSchedule, quietWeeklySchedule } from "../quiet-schedule.ts";
import { type OpenBaoCluster as BaoServer, backupPolicy, startOpenBao, transitSealStanza } from "../servers/openbao.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { startTransitServer, type TransitServer } from "../servers/transit.ts";
import { printPodsOnFailure } from "./diagnostics.ts";
import { nodeTierSkip } from "./gate.ts";
import { namespace, startWorld, type World } from "./world.ts";

const canaryPath = "secret/openbao-backup/canary";
/** What the backup role needs for drills: write the canary, and (in the restored copy) read it and count mounts. */
const drillPolicy = [
  backupPolicy,
  `path "secret/data/openbao-backup/canary" {\n  capabilities = ["create", "update", "read"]\n}`,
  `path "sys/mounts" {\n  capabilities = ["read"]\n}`,
  `path "sys/auth" {\n  capabilities = ["read"]\n}`,
].join("\n");

const shamir = "bao-drill";
const transit = "bao-transit";

describe("real node: restore drills run by the operator prove that backups restore", { skip: nodeTierSkip() }, () => {
  let world: World;
  let s3: TargetUnderTest;
  let transitServer: TransitServer | undefined;
  let transitSource: BaoServer | undefined;
  superviseServers();
  printPodsOnFailure(() => world);

  before(async () => {
    world = await startWorld({
      clusters: [shamir, transit],
      providers: ["s3"],
      // The throwaway's image is derived from the cluster's version (2.4.0) and this repository.
      helmValues: { "drill.openbaoImageRepository": "localhost/openbao-backup/openbao" },
    });
    const target = world.targets.s3;
    assert.ok(target);
    s3 = target;
    await world.bao.call("POST", "sys/policies/acl/backup", { policy: drillPolicy });
    await world.bao.writeSecret("app/config", { value: "hello from the live cluster" });
  });
  after(async () => {
    await transitSource?.stop();
    await transitServer?.stop();
    await world?.stop();
  });

  const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 180_000) =>
    waitFor(check, { what, timeoutMs, intervalMs: 500, processes: world.node.processes });

  const secret = (name: string, data: Record<string, string>) =>
    world.core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } });

  const restoreVerified = (c: OpenBaoCluster) => c.status?.conditions?.find((x) => x.type === "RestoreVerified");

  /** Requests one drill now and waits until its result is recorded. */
  async function drillNow(cluster: string, trigger: string): Promise<OpenBaoCluster> {
    const previous = (await world.getCluster(cluster)).status?.backup?.drill?.lastRecordedJob;
    await world.patchCluster(cluster, { metadata: { annotations: { "openbao.org/trigger-drill": trigger } } });
    return until(`drill "${trigger}" of ${cluster} recorded`, async () => {
      const c = await world.getCluster(cluster);
      const d = c.status?.backup?.drill;
      return d?.lastRecordedJob !== undefined && d.lastRecordedJob !== previous && d.currentJob == null && c;
    });
  }

  /** The drill Pod, as the kubelet ran it: both containers from their real images, the throwaway stopped with it. */
  async function assertDrillPod(job: string): Promise<void> {
    // The result is read as soon as the executor has ended; the kubelet then stops the sidecar.
    const pods = await until(`the Pod of ${job} finished`, async () => {
      const list = await world.podsOfJob(job);
      return list.every((p) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed") && list;
    });
    assert.equal(pods.length, 1, `one Pod for ${job}`);
    const pod = pods[0];
    assert.equal(pod?.spec?.nodeName, world.node.nodeName);
    const openbao = pod?.status?.initContainerStatuses?.find((s) => s.name === "openbao");
    assert.equal(openbao?.image, "localhost/openbao-backup/openbao:2.4.0", "derived from the cluster's version");
    assert.ok(openbao?.state?.terminated, "the native sidecar was stopped when the drill ended");
    const requests = pod?.spec?.initContainers?.find((c) => c.name === "openbao")?.resources?.requests;
    assert.notEqual(requests?.memory, "256Mi", "the throwaway's memory request follows the last backup's size");
    assert.ok(requests?.["ephemeral-storage"], "and its disk request too");
    const executor = pod?.status?.containerStatuses?.find((s) => s.name === "executor");
    assert.equal(executor?.image, world.images.productName);
    // The Job controller marks the Job a moment after its Pod ended (a failed Pod: after the
    // Pod's own status, which the check above already saw): waited for, not read once.
    await until(`the Job controller finished ${job} although a sidecar ran`, async () => {
      const read = await world.batch.readNamespacedJob({ name: job, namespace });
      return read.status?.conditions?.some(
        (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
      );
    });
  }

  async function canaryVersion(bao: BaoServer): Promise<number> {
    const meta = await bao.call<{ data: { current_version: number } }>("GET", "secret/metadata/openbao-backup/canary");
    return meta.data.current_version;
  }

  let verifiedKey = "";

  test("Shamir keys Secret: a backup writes the canary, the drill restores it into a throwaway and reads it back (verified)", async () => {
    await secret("bao-drill-unseal", { "key-1": world.bao.unsealKey });
    await world.createCluster(shamir, {
      schedule: quietSchedule,
      target: world.target("s3"),
      drill: { schedule: quietWeeklySchedule, unsealKeysSecretRef: { name: "bao-drill-unseal" }, canaryPath },
    });
    const backedUp = await world.triggerBackup(shamir, "before-drill");
    verifiedKey = backedUp.status?.backup?.lastBackupName ?? "";
    assert.ok(verifiedKey, `a backup: ${JSON.stringify(backedUp.status?.backup)}`);
    const written = await canaryVersion(world.bao);

    const c = await drillNow(shamir, "first");
    const last = c.status?.backup?.lastDrill;
    assert.equal(last?.outcome, "verified", JSON.stringify(last));
    assert.equal(last?.key, verifiedKey, "latest: the backup just taken");
    assert.equal(last?.canaryVersion, written, "the canary that backup wrote, read back from the restored copy");
    assert.equal(last?.sealType, "shamir");
    assert.equal(last?.raftIndex, backedUp.status?.backup?.lastBackupRaftIndex);
    assert.ok((last?.secretMounts ?? 0) >= 2 && (last?.authMethods ?? 0) >= 2, JSON.stringify(last));
    assert.equal(restoreVerified(c)?.status, "True");
    assert.equal(restoreVerified(c)?.reason, "DrillVerified");
    await assertDrillPod(last?.jobName ?? "");
    const events = await world.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${shamir}` });
    assert.ok(
      events.items.some((e) => e.reason === "DrillSucceeded"),
      "a DrillSucceeded Event",
    );
    // Looked for as text: a base64 key is no pattern ("+" first is an invalid expression).
    assert.ok(!JSON.stringify(c.status).includes(world.bao.unsealKey), "the key is nowhere in status");
    assert.equal(c.status?.operationLock ?? null, null, "a drill never takes the operation lock");
  });

  test("without key material the same backup only loads: outcome loaded, RestoreVerified=True DrillLoaded", async () => {
    await world.patchCluster(shamir, { spec: { backup: { drill: { unsealKeysSecretRef: null } } } });
    const c = await drillNow(shamir, "keyless");
    const last = c.status?.backup?.lastDrill;
    assert.equal(last?.outcome, "loaded", JSON.stringify(last));
    assert.equal(last?.key, verifiedKey);
    assert.equal(restoreVerified(c)?.reason, "DrillLoaded");
    assert.match(restoreVerified(c)?.message ?? "", /load/);
  });

  test("a drill beside a backup of the same cluster: both run at once, neither waits for the other", async () => {
    const recorded = (await world.getCluster(shamir)).status?.backup;
    const backupBefore = recorded?.lastRecordedJob;
    const drillBefore = recorded?.drill?.lastRecordedJob;
    await world.patchCluster(shamir, {
      metadata: { annotations: { "openbao.org/trigger-backup": "beside", "openbao.org/trigger-drill": "beside" } },
    });
    const c = await until("the backup and the drill both recorded", async () => {
      const x = await world.getCluster(shamir);
      const b = x.status?.backup;
      const backupDone = b?.lastRecordedJob !== backupBefore && b?.currentJob == null;
      const drillDone = b?.drill?.lastRecordedJob !== drillBefore && b?.drill?.currentJob == null;
      return backupDone && drillDone ? x : undefined;
    });
    // Results are read when the executor ends; the Job controller completes each Job a moment later.
    const completed = (name: string) =>
      until(`Job ${name} completed`, async () => {
        const j = await world.batch.readNamespacedJob({ name, namespace });
        return j.status?.completionTime !== undefined && j;
      });
    const backupJob = await completed(c.status?.backup?.lastRecordedJob ?? "");
    const drillJob = await completed(c.status?.backup?.drill?.lastRecordedJob ?? "");
    const created = (j: typeof backupJob) => new Date(j.metadata?.creationTimestamp ?? 0).getTime();
    const finished = (j: typeof backupJob) => new Date(j.status?.completionTime ?? 0).getTime();
    assert.ok(finished(backupJob) > 0 && finished(drillJob) > 0, "both completed");
    assert.ok(
      created(drillJob) <= finished(backupJob) && created(backupJob) <= finished(drillJob),
      `the two Jobs overlapped: backup ${created(backupJob)}–${finished(backupJob)}, drill ${created(drillJob)}–${finished(drillJob)}`,
    );
    assert.equal(c.status?.backup?.lastDrill?.outcome, "loaded");
    assert.equal(c.status?.backup?.consecutiveFailures ?? 0, 0);
  });

  /** Stores `bytes` under a key of another cluster's prefix (never `latest`), with a manifest that matches them. */
  async function storeWithMatchingManifest(fromKey: string, bytes: Buffer, id: string): Promise<string> {
    const key = buildKey({
      pathPrefix: "",
      namespace,
      cluster: "tampered",
      time: new Date(),
      kind: "scheduled",
      random: id,
    });
    const manifest = parseManifest(String(await s3.get(`${fromKey}.json`)));
    await s3.put(key, bytes);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    await s3.put(`${key}.json`, Buffer.from(serializeManifest({ ...manifest, key, size: bytes.length, sha256 })));
    return key;
  }

  test("a backup changed in storage, checksums and manifest rewritten to match: RestoreVerified=False, the live cluster untouched", async () => {
    const original = await s3.get(verifiedKey);
    assert.ok(original);
    const tampered = await storeWithMatchingManifest(
      verifiedKey,
      await repacked(original, flipKvVersionValues),
      "0000a001",
    );
    const truncated = await storeWithMatchingManifest(
      verifiedKey,
      original.subarray(0, original.length - 200),
      "0000a002",
    );
    await world.patchCluster(shamir, {
      spec: { backup: { drill: { unsealKeysSecretRef: { name: "bao-drill-unseal" }, key: tampered } } },
    });
    const before = (await world.getCluster(shamir)).status?.backup;

    const c = await drillNow(shamir, "tampered");
    const last = c.status?.backup?.lastDrill;
    assert.equal(last?.outcome, "failed", JSON.stringify(last));
    assert.equal(last?.key, tampered);
    assert.equal(last?.reason, "RestoredDataUnreadable");
    assert.match(last?.message ?? "", /could not read the canary .*does not decrypt or is damaged/);
    assert.equal(restoreVerified(c)?.status, "False");
    assert.equal(restoreVerified(c)?.reason, "DrillFailed");
    await assertDrillPod(last?.jobName ?? "");

    await world.patchCluster(shamir, { spec: { backup: { drill: { key: truncated } } } });
    const cut = await drillNow(shamir, "truncated");
    assert.equal(cut.status?.backup?.lastDrill?.outcome, "failed");
    assert.equal(cut.status?.backup?.lastDrill?.reason, "SnapshotTruncated");
    assert.match(cut.status?.backup?.lastDrill?.message ?? "", /is not a valid snapshot: truncated snapshot/);
    assert.equal(restoreVerified(cut)?.reason, "DrillFailed");
    assert.equal(cut.status?.backup?.drill?.consecutiveFailures, 2);
    const events = await world.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${shamir}` });
    assert.ok(
      events.items.some((e) => e.reason === "DrillFailed" && e.type === "Warning"),
      "a DrillFailed Warning",
    );

    // The live cluster: its data, its backup record and its lock are as they were.
    assert.deepEqual(
      await world.readEverywhere("secret/data/app/config"),
      Array(3).fill("hello from the live cluster"),
    );
    const after = cut.status?.backup;
    assert.equal(after?.lastBackupName, before?.lastBackupName);
    assert.equal(after?.lastRecordedJob, before?.lastRecordedJob);
    assert.equal(cut.status?.operationLock ?? null, null);
  });

  test("Transit auto-unseal, on the drill schedule: the throwaway gets the source's seal stanza and the drill reads the canary (verified)", async () => {
    transitServer = await startTransitServer({ host: world.node.gatewayIp });
    transitSource = await startOpenBao({ nodes: 1, host: world.node.gatewayIp, seal: transitServer.seal });
    await transitSource.call("POST", "sys/policies/acl/backup", { policy: drillPolicy });
    await transitSource.writeSecret("app/config", { value: "transit" });
    const token = await transitSource.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
      policies: ["backup"],
      ttl: "4h",
    });
    await secret(`${transit}-token`, { token: token.auth.client_token });
    // (`<cluster>-tls-ca` holds the host OpenBao's CA: world.ts made it for every cluster name.)
    await secret(`${transit}-source-ca`, { "ca.crt": transitSource.caPem });
    await secret(`${transit}-drill-seal`, {
      "seal.hcl": transitSealStanza(transitServer.seal, "/etc/bao-drill/seal/transit-ca.crt"),
      "transit-ca.crt": transitServer.seal.caPem,
    });
    await world.createCluster(transit, {
      schedule: quietSchedule,
      tokenSecretRef: { name: `${transit}-token` },
      openbaoAddresses: transitSource.addresses,
      tlsSecretRef: { name: `${transit}-source-ca` },
      target: world.target("s3"),
      drill: { schedule: "* * * * *", sealConfigSecretRef: { name: `${transit}-drill-seal` }, canaryPath },
    });
    const backedUp = await world.triggerBackup(transit, "transit-backup");
    const key = backedUp.status?.backup?.lastBackupName;
    assert.ok(key, JSON.stringify(backedUp.status?.backup));
    // No trigger here: the drill schedule (every minute) runs it, at most once per window.
    const c = await until(
      "a scheduled drill of the transit cluster verified",
      async () => {
        const x = await world.getCluster(transit);
        const d = x.status?.backup?.lastDrill;
        return d?.outcome === "verified" && d.key === key && x;
      },
      200_000,
    );
    const last = c.status?.backup?.lastDrill;
    const drillJob = await world.batch.readNamespacedJob({ name: last?.jobName ?? "", namespace });
    assert.equal(drillJob.metadata?.labels?.["openbao.org/drill"], "scheduled");
    const window = drillJob.metadata?.annotations?.["openbao.org/scheduled-time"] ?? "";
    assert.match(window, /:00Z$/, "named after its cron window");
    const sameWindow = (
      await world.batch.listNamespacedJob({ namespace, labelSelector: "openbao.org/drill=scheduled" })
    ).items.filter((j) => j.metadata?.annotations?.["openbao.org/scheduled-time"] === window);
    assert.equal(sameWindow.length, 1, "one drill Job per window");
    assert.equal(last?.sealType, "transit");
    assert.equal(last?.key, key);
    assert.equal(last?.canaryVersion, await canaryVersion(transitSource));
    assert.equal(restoreVerified(c)?.reason, "DrillVerified");
    assert.ok(!JSON.stringify(c.status).includes(transitServer.seal.token), "no seal token in status");
  });
});
