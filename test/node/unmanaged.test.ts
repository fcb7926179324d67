/**
 * The OpenBao people actually run: a Raft StatefulSet shaped like the official Helm chart's
 * (openbao-statefulset.ts), as real Pods on the real node, TLS off and — in a second
 * StatefulSet — on, with a cert-manager-shaped Secret. Nobody writes `status.phase` or
 * `status.initialized`: there is no lifecycle operator here, played or real. The operator
 * (installed with the project's chart) reads readiness from the StatefulSet, derives the
 * member addresses from it (resolved by the node's cluster DNS), backs up on schedule and on
 * request, fails visibly while OpenBao is sealed, survives a Pod being replaced, and restores
 * `key: latest` from the cluster's own target into every member.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Annotation } from "../../src/api/constants.ts";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { backupServiceAccountName } from "../../src/backup/controller.ts";
import { restoreServiceAccountName } from "../../src/restore/plan.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { printPodsOnFailure } from "./diagnostics.ts";
import { nodeTierSkip } from "./gate.ts";
import { type ChartOpenBao, deployChartShapedOpenBao } from "./openbao-statefulset.ts";
import { namespace, startWorld, type World } from "./world.ts";

const group = "openbao.org";
const version = "v1alpha1";

describe(
  "real node: OpenBao installed like the official chart, no lifecycle operator",
  { skip: nodeTierSkip() },
  () => {
    let world: World;
    const baos: Record<string, ChartOpenBao> = {};
    superviseServers();
    printPodsOnFailure(() => world);

    before(async () => {
      world = await startWorld({ clusters: [], providers: ["s3"], hostOpenBao: false });
      for (const [name, tls] of [
        ["openbao", false],
        ["bao-tls", true],
      ] as const) {
        const began = Date.now();
        baos[name] = await deployChartShapedOpenBao({
          core: world.core,
          apps: world.apps,
          namespace,
          name,
          image: "localhost/openbao-backup/openbao:2.4.0",
          tls,
          jwt: { publicKeyPem: world.node.kube.serviceAccountPublicKeyPem, issuer: world.node.kube.issuer },
          serviceAccounts: { backup: backupServiceAccountName(name), restore: restoreServiceAccountName(name) },
        });
        process.stdout.write(
          `[node] StatefulSet ${name} (TLS ${tls ? "on" : "off"}): 3 Pods initialised, unsealed, Raft healthy in ${((Date.now() - began) / 1000).toFixed(1)}s\n`,
        );
      }
    });
    after(async () => {
      await world?.stop();
    });

    const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 180_000) =>
      waitFor(check, { what, timeoutMs, intervalMs: 500, processes: world.node.processes });

    const bao = (name: string): ChartOpenBao => {
      const b = baos[name];
      if (!b) throw new Error(`no OpenBao ${name}`);
      return b;
    };

    /** An OpenBaoCluster as a user writes it for a chart install: no addresses, no status. */
    async function createUnmanagedCluster(name: string, backup: Record<string, unknown> = {}): Promise<void> {
      await world.custom.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural: "openbaoclusters",
        body: {
          apiVersion: `${group}/${version}`,
          kind: "OpenBaoCluster",
          metadata: { name, namespace },
          spec: { backup: { schedule: quietSchedule, jwtAuthRole: "backup", target: world.target("s3"), ...backup } },
        },
      });
    }

    async function writeSecrets(name: string, prefix: string, count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        await bao(name).call("POST", `secret/data/${prefix}/s${i}`, { data: { value: `${prefix}-${i}` } });
      }
    }

    async function assertEverywhere(name: string, prefix: string, count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        const values = await bao(name).readEverywhere(`secret/data/${prefix}/s${i}`);
        assert.deepEqual(
          values,
          [`${prefix}-${i}`, `${prefix}-${i}`, `${prefix}-${i}`],
          `${prefix}/s${i} on every member`,
        );
      }
    }

    async function eventsOf(cluster: string, reason: string): Promise<string[]> {
      const list = await world.core.listNamespacedEvent({ namespace });
      return list.items
        .filter((e) => e.involvedObject.name === cluster && e.reason === reason)
        .map((e) => e.message ?? "");
    }

    async function restoreLatest(cluster: string, restoreName: string) {
      await world.createRestore(restoreName, { cluster, source: { key: "latest" }, jwtAuthRole: "restore" });
      return world.waitRestore(restoreName, 240_000);
    }

    test("TLS off: readiness from the StatefulSet; manual and scheduled backups with no status.phase", async () => {
      await writeSecrets("openbao", "plain", 10);
      await createUnmanagedCluster("openbao");
      const seen = await until("status.backup.readiness from the StatefulSet", async () => {
        const c = await world.getCluster("openbao");
        return c.status?.backup?.readiness?.source === "StatefulSet" && c;
      });
      assert.deepEqual(seen.status?.backup?.readiness, { source: "StatefulSet", statefulSet: "openbao" });

      const done = await world.triggerBackup("openbao", "first", 240_000);
      const b = done.status?.backup;
      assert.equal(b?.consecutiveFailures ?? 0, 0, `${b?.lastFailureReason}: ${b?.lastFailureMessage}`);
      assert.ok(b?.lastBackupName, "a snapshot recorded");
      assert.equal(done.status?.phase, undefined, "nobody wrote status.phase");
      assert.equal(done.status?.initialized, undefined, "nobody wrote status.initialized");
      const job = (await world.jobsOf("openbao")).find(
        (j) => j.metadata?.annotations?.[Annotation.Trigger] === "first",
      );
      const pod = job?.spec?.template.spec;
      assert.ok(pod, "the manual Job");
      assert.equal(
        pod.containers[0]?.env?.find((e) => e.name === "BACKUP_OPENBAO_ADDRESSES")?.value,
        [0, 1, 2].map((i) => `http://openbao-${i}.openbao-internal.${namespace}.svc:8200`).join(","),
        "member addresses from the StatefulSet and its serviceName",
      );
      assert.equal(
        pod.volumes?.some((v) => v.name === "openbao-tls"),
        false,
        "http:// members: no CA Secret mounted (none exists)",
      );

      // A scheduled window on the real kubelet.
      const previous = b.lastBackupName;
      await world.patchCluster("openbao", { spec: { backup: { schedule: "* * * * *" } } });
      const scheduled = await until(
        "a scheduled backup recorded",
        async () => {
          const c = await world.getCluster("openbao");
          const s = c.status?.backup;
          return s?.lastBackupName !== undefined && s.lastBackupName !== previous && s.currentJob == null && c;
        },
        180_000,
      );
      await world.patchCluster("openbao", { spec: { backup: { schedule: quietSchedule } } });
      assert.equal(scheduled.status?.backup?.consecutiveFailures ?? 0, 0);
      assert.ok(
        (await world.jobsOf("openbao")).some((j) => j.metadata?.annotations?.[Annotation.ScheduledTime] !== undefined),
        "a Job carrying its cron window",
      );
    });

    test("sealed: the next backup fails visibly; unsealed: the next one succeeds", async () => {
      await bao("openbao").sealAll();
      const before = (await world.getCluster("openbao")).status?.backup?.consecutiveFailures ?? 0;
      const failed = await world.triggerBackup("openbao", "while-sealed", 240_000);
      const b = failed.status?.backup;
      assert.equal(b?.consecutiveFailures, before + 1, "counted once");
      assert.equal(b?.lastFailureReason, "NoLeader", b?.lastFailureMessage);
      assert.match(b?.lastFailureMessage ?? "", /sealed|standby|no active/i);
      const healthy = failed.status?.conditions?.find((c) => c.type === "BackupHealthy");
      assert.equal(healthy?.status, "False", JSON.stringify(healthy));
      assert.ok((await eventsOf("openbao", "BackupFailed")).length >= 1, "a Warning Event on the cluster");

      await bao("openbao").unsealAll();
      const recovered = await world.triggerBackup("openbao", "after-unseal", 240_000);
      assert.equal(recovered.status?.backup?.consecutiveFailures ?? 0, 0, recovered.status?.backup?.lastFailureMessage);
      assert.equal(recovered.status?.conditions?.find((c) => c.type === "BackupHealthy")?.status, "True");
    });

    test("a rollout (one Pod replaced under OnDelete) produces no broken backup", async () => {
      const target = world.targets.s3;
      assert.ok(target);
      const uid = await bao("openbao").podUid(2);
      await bao("openbao").deletePod(2);
      const during = await world.triggerBackup("openbao", "during-rollout", 240_000);
      const b = during.status?.backup;
      const keys = await target.keys();
      // Whatever the timing, a recorded success is a complete, verified object with its manifest;
      // a failure leaves no manifest behind for a partial object.
      for (const key of keys.filter((k) => k.endsWith(".snap"))) {
        assert.ok(keys.includes(`${key}.json`) || key !== b?.lastBackupName, `${key} recorded without a manifest`);
      }
      if ((b?.consecutiveFailures ?? 0) === 0) assert.ok(keys.includes(`${b?.lastBackupName}.json`));
      await bao("openbao").recoverPod(2, uid);
      const after = await world.triggerBackup("openbao", "after-rollout", 240_000);
      assert.equal(after.status?.backup?.consecutiveFailures ?? 0, 0, after.status?.backup?.lastFailureMessage);
    });

    test("restore key latest from the cluster's own target: every secret back on every member", async () => {
      const newest = (await world.getCluster("openbao")).status?.backup?.lastBackupName;
      for (let i = 0; i < 10; i += 2) await bao("openbao").call("DELETE", `secret/metadata/plain/s${i}`);
      await bao("openbao").call("POST", "secret/data/plain/s1", { data: { value: "overwritten" } });
      const restore = await restoreLatest("openbao", "restore-latest");
      assert.equal(restore.status?.phase, "Completed", restore.status?.message);
      assert.equal(restore.status?.snapshotKey, newest, "latest resolved to the newest verified backup, recorded");
      await assertEverywhere("openbao", "plain", 10);
    });

    test("TLS on with a cert-manager-shaped Secret: backup and restore latest", async () => {
      const tlsSecret = bao("bao-tls").tlsSecretName;
      assert.ok(tlsSecret);
      await writeSecrets("bao-tls", "tls", 5);
      await createUnmanagedCluster("bao-tls", { tlsSecretRef: { name: tlsSecret } });
      const done = await world.triggerBackup("bao-tls", "tls-first", 240_000);
      const b = done.status?.backup;
      assert.equal(b?.consecutiveFailures ?? 0, 0, `${b?.lastFailureReason}: ${b?.lastFailureMessage}`);
      const job = (await world.jobsOf("bao-tls")).find(
        (j) => j.metadata?.annotations?.[Annotation.Trigger] === "tls-first",
      );
      assert.equal(
        job?.spec?.template.spec?.containers[0]?.env
          ?.find((e) => e.name === "BACKUP_OPENBAO_ADDRESSES")
          ?.value?.split(",")[0],
        `https://bao-tls-0.bao-tls-internal.${namespace}.svc:8200`,
      );
      await bao("bao-tls").call("DELETE", "secret/metadata/tls/s0");
      const restore = await restoreLatest("bao-tls", "restore-tls");
      assert.equal(restore.status?.phase, "Completed", restore.status?.message);
      await assertEverywhere("bao-tls", "tls", 5);
      const cluster = (await world.getCluster("bao-tls")) as OpenBaoCluster;
      assert.equal(cluster.status?.phase, undefined, "still nobody wrote status.phase");
    });
  },
);
