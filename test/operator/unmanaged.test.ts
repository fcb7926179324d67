/**
 * An OpenBaoCluster nobody writes a status for (no lifecycle operator), end to end on the
 * fast tier: real kube-apiserver, real OpenBao and MinIO, the operator as a process, Jobs run
 * by the job runner. The real-node proof (chart-shaped StatefulSet as Pods, cluster DNS,
 * sealing, a rollout) is test/node/unmanaged.test.ts.
 *
 * What is played here: the StatefulSet controller. This tier has no kube-controller-manager,
 * so the test writes the StatefulSet's `status.replicas` as that controller would. Nobody
 * plays the lifecycle operator: `status.phase` is never written.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AppsV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { OpenBaoCluster, OpenBaoRestore } from "../../src/api/types.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { printJobRunnerOnFailure } from "../servers/job-runner.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { namespace, type OperatorProcess, type Stack, s3Target, startStack } from "./stack.ts";

superviseServers();
printJobRunnerOnFailure();

const group = "openbao.org";
const version = "v1alpha1";
const cluster = "bao";
const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

describe("an OpenBao without a lifecycle operator, read from its StatefulSet", { timeout: 600_000 }, () => {
  let stack: Stack;
  let apps: AppsV1Api;
  let operator: OperatorProcess;

  before(async () => {
    stack = await startStack([cluster]);
    apps = stack.kube.kubeConfig.makeApiClient(AppsV1Api);
    operator = await stack.startOperator();
  });
  after(async () => {
    await stack?.stop();
  });

  const getCluster = () => stack.getCluster(cluster);
  const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000) =>
    waitFor(check, { what, timeoutMs, intervalMs: 250, processes: [operator.process] });

  /** Plays the StatefulSet controller: the Pods it created. */
  async function setPods(replicas: number): Promise<void> {
    await apps.patchNamespacedStatefulSetStatus(
      {
        namespace,
        name: cluster,
        body: { status: { replicas, readyReplicas: replicas, availableReplicas: replicas } },
      },
      merge,
    );
  }

  test("no Pods yet: blocked with the StatefulSet's state; with Pods: a manual backup, no status.phase", async () => {
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: cluster, labels: { "app.kubernetes.io/managed-by": "Helm" } },
        spec: {
          serviceName: `${cluster}-internal`,
          replicas: 1,
          updateStrategy: { type: "OnDelete" },
          selector: { matchLabels: { app: cluster } },
          template: {
            metadata: { labels: { app: cluster } },
            spec: {
              containers: [{ name: "openbao", image: "openbao", ports: [{ name: "https", containerPort: 8200 }] }],
            },
          },
        },
      },
    });
    await stack.custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: "openbaoclusters",
      body: {
        apiVersion: `${group}/${version}`,
        kind: "OpenBaoCluster",
        metadata: { name: cluster, namespace, annotations: { "openbao.org/trigger-backup": "first" } },
        spec: {
          backup: {
            schedule: quietSchedule,
            tokenSecretRef: { name: "bao-token" },
            // The StatefulSet's DNS names do not resolve on this host: the members are named.
            openbaoAddresses: stack.bao.addresses,
            target: s3Target(stack.target),
          },
        },
      },
    });
    const blocked = await until("blocked on the StatefulSet's missing Pods", async () => {
      const c = await getCluster();
      const cond = c.status?.conditions?.find((x) => x.type === "BackingUp");
      return cond?.reason === "BackupBlocked" && c;
    });
    assert.deepEqual(blocked.status?.backup?.readiness, { source: "StatefulSet", statefulSet: cluster });
    assert.match(
      blocked.status?.conditions?.find((x) => x.type === "BackingUp")?.message ?? "",
      /StatefulSet bao has no Pods yet \(0 of 1 created\)/,
    );
    assert.equal(blocked.metadata.annotations?.["openbao.org/trigger-backup"], "first", "the trigger is kept");

    await setPods(1);
    const done = await until(
      "the manual backup recorded",
      async () => {
        const c = await getCluster();
        return c.status?.backup?.lastBackupName !== undefined && c.status.backup.currentJob == null && c;
      },
      120_000,
    );
    assert.equal(done.status?.backup?.consecutiveFailures ?? 0, 0, done.status?.backup?.lastFailureMessage);
    assert.equal(done.status?.phase, undefined, "nobody wrote status.phase");
    assert.equal(done.status?.conditions?.find((x) => x.type === "BackupHealthy")?.status, "True");
  });

  test("scaled to zero: blocked, saying so", async () => {
    await apps.patchNamespacedStatefulSet({ namespace, name: cluster, body: { spec: { replicas: 0 } } }, merge);
    await setPods(0);
    await stack.patchCluster(cluster, { metadata: { annotations: { "openbao.org/trigger-backup": "scaled-down" } } });
    await until("blocked: scaled to 0", async () => {
      const cond = (await getCluster()).status?.conditions?.find((x) => x.type === "BackingUp");
      return cond?.reason === "BackupBlocked" && /scaled to 0 replicas/.test(cond.message);
    });
    await apps.patchNamespacedStatefulSet({ namespace, name: cluster, body: { spec: { replicas: 1 } } }, merge);
    await setPods(1);
    await until(
      "the kept trigger runs once the Pods are back",
      async () => (await getCluster()).metadata.annotations?.["openbao.org/trigger-backup"] === undefined,
      120_000,
    );
  });

  test("restore key latest with the source taken from the cluster's own target", async () => {
    const newest = (
      await until(
        "the second backup recorded",
        async () => {
          const c = await getCluster();
          return c.status?.backup?.currentJob == null && c.status?.backup?.lastRecordedJob !== undefined && c;
        },
        120_000,
      )
    ).status?.backup?.lastBackupName;
    assert.ok(newest);
    await stack.bao.writeSecret("unmanaged/after", { value: "written after the backup" });
    await stack.custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: "openbaorestores",
      body: {
        apiVersion: `${group}/${version}`,
        kind: "OpenBaoRestore",
        metadata: { name: "latest", namespace },
        spec: { cluster, source: { key: "latest" }, jwtAuthRole: "restore" },
      },
    });
    const restore = await until(
      "the restore finished",
      async () => {
        const r = (await stack.custom.getNamespacedCustomObject({
          group,
          version,
          namespace,
          plural: "openbaorestores",
          name: "latest",
        })) as OpenBaoRestore;
        return (r.status?.phase === "Completed" || r.status?.phase === "Failed") && r;
      },
      180_000,
    );
    assert.equal(restore.status?.phase, "Completed", restore.status?.message);
    assert.equal(restore.status?.snapshotKey, newest, "latest = the newest verified backup, recorded");
    assert.equal(await stack.bao.readSecret("unmanaged/after"), undefined, "the snapshot's data, not later writes");
    // Status first, then the lock (restore/plan.ts): the release follows the Completed write.
    await until("the lock is released", async () => {
      const c: OpenBaoCluster = await getCluster();
      return (c.status?.operationLock ?? null) === null;
    });
  });
});
