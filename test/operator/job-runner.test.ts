/**
 * The job runner (TESTING.md "Without a kubelet") against a real kube-apiserver + etcd, a
 * real 1-node OpenBao and a real MinIO: Jobs written by hand the way the operator writes
 * them are executed by the real executor, and the Job and Pod statuses read back as a
 * cluster would report them.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import {
  BatchV1Api,
  CoreV1Api,
  type V1EnvVar,
  type V1Job,
  type V1Pod,
  type V1Volume,
  type V1VolumeMount,
} from "@kubernetes/client-node";
import { startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { type JobRunner, printJobRunnerOnFailure, startJobRunner } from "../servers/job-runner.ts";
import { type KubeHandle, openbaoAudience, startKube } from "../servers/kube.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers, waitFor } from "../servers/process.ts";

superviseServers();
printJobRunnerOnFailure();

const namespace = "backups";
const serviceAccount = "openbao-backup";
const managedBy = { "app.kubernetes.io/managed-by": "openbao-backup" };

interface JobShape {
  readonly name: string;
  readonly env: readonly V1EnvVar[];
  readonly volumes: readonly V1Volume[];
  readonly mounts: readonly V1VolumeMount[];
  readonly activeDeadlineSeconds?: number;
  readonly labels?: Readonly<Record<string, string>>;
}

/** A Job shaped like the operator's: one executor container, backoffLimit 0, paths in env. */
function executorJob(shape: JobShape): V1Job {
  const labels = shape.labels ?? managedBy;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: shape.name, namespace, labels: { ...labels } },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: shape.activeDeadlineSeconds ?? 300,
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { labels: { ...labels } },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: serviceAccount,
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 5,
          volumes: [...shape.volumes],
          containers: [
            {
              name: "executor",
              image: "ghcr.io/example/bao-backup:test",
              args: ["backup"],
              env: [...shape.env, { name: "BACKUP_TERMINATION_MESSAGE_PATH", value: "/dev/termination-log" }],
              volumeMounts: [...shape.mounts],
              terminationMessagePath: "/dev/termination-log",
              terminationMessagePolicy: "File",
            },
          ],
        },
      },
    },
  };
}

const storageVolume: V1Volume = { name: "storage", secret: { secretName: "storage-credentials" } };
const storageMount: V1VolumeMount = { name: "storage", mountPath: "/etc/bao-backup/storage", readOnly: true };
const tlsVolume: V1Volume = {
  name: "openbao-tls",
  secret: { secretName: "openbao-ca", items: [{ key: "ca.crt", path: "ca.crt" }] },
};
const tlsMount: V1VolumeMount = { name: "openbao-tls", mountPath: "/etc/bao-backup/openbao-tls", readOnly: true };

function tokenVolume(secretName: string): V1Volume {
  return { name: "openbao-token", secret: { secretName, items: [{ key: "token", path: "token" }] } };
}
const tokenMount: V1VolumeMount = { name: "openbao-token", mountPath: "/etc/bao-backup/openbao-token", readOnly: true };

function podOf(pods: readonly V1Pod[]): V1Pod {
  assert.equal(pods.length, 1, `expected one Pod, found ${pods.length}`);
  const pod = pods[0];
  assert.ok(pod);
  return pod;
}

describe("job runner: Jobs executed without a kubelet", { timeout: 600_000 }, () => {
  let kube: KubeHandle;
  let cluster: OpenBaoCluster;
  let target: TargetUnderTest;
  let runner: JobRunner;
  let batch: BatchV1Api;
  let core: CoreV1Api;
  let blackhole: Server;
  const sockets = new Set<Socket>();
  let blackholeAddress = "";
  let targetPromise: Promise<TargetUnderTest> | undefined;

  const baseEnv = (): V1EnvVar[] => [
    { name: "CLUSTER_NAME", value: "bao" },
    { name: "CLUSTER_NAMESPACE", value: namespace },
    { name: "BACKUP_OPENBAO_ADDRESSES", value: cluster.addresses.join(",") },
    ...Object.entries(target.env()).map(([name, value]) => ({ name, value })),
    { name: "BACKUP_CREDENTIALS_DIR", value: "/etc/bao-backup/storage" },
    { name: "BACKUP_CA_FILE", value: "/etc/bao-backup/openbao-tls/ca.crt" },
  ];
  const tokenEnv: V1EnvVar[] = [
    { name: "BACKUP_AUTH_METHOD", value: "token" },
    { name: "BACKUP_TOKEN_FILE", value: "/etc/bao-backup/openbao-token/token" },
  ];

  const podsOf = async (jobName: string): Promise<V1Pod[]> =>
    (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${jobName}` })).items;
  const conditionsOf = (job: V1Job): Record<string, string | undefined> =>
    Object.fromEntries(
      (job.status?.conditions ?? []).filter((c) => c.status === "True").map((c) => [c.type, c.reason]),
    );

  before(async () => {
    targetPromise = startTarget("s3");
    targetPromise.catch(() => undefined);
    kube = await startKube();
    [cluster, target] = await startTogether([
      startOpenBao({
        jwtValidationPubkeys: [kube.serviceAccountPublicKeyPem],
        jwtIssuer: kube.issuer,
        backupServiceAccount: { namespace, name: serviceAccount },
      }),
      targetPromise,
    ]);
    batch = kube.kubeConfig.makeApiClient(BatchV1Api);
    core = kube.kubeConfig.makeApiClient(CoreV1Api);
    await kube.createNamespace(namespace);
    await kube.createServiceAccount(namespace, serviceAccount);

    const backupToken = await cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
      policies: ["backup"],
      no_default_policy: true,
      ttl: "1h",
    });
    const secret = async (name: string, data: Record<string, string>): Promise<void> => {
      await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } });
    };
    await secret("storage-credentials", target.credentials);
    await secret("openbao-token", { token: backupToken.auth.client_token });
    await secret("openbao-bad-token", { token: "s.not-a-real-token" });
    await secret("openbao-ca", { "ca.crt": cluster.caPem });

    // Accepts connections and never answers: an executor pointed at it waits.
    blackhole = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => blackhole.listen(0, "127.0.0.1", resolve));
    const address = blackhole.address();
    assert.ok(address && typeof address === "object");
    blackholeAddress = `https://127.0.0.1:${address.port}`;

    runner = await startJobRunner({ kubeConfig: kube.kubeConfig, namespace });
  });

  after(async () => {
    if (process.env.JOB_RUNNER_DEBUG) process.stdout.write(`${runner?.describe()}\n`);
    await runner?.stop();
    for (const socket of sockets) socket.destroy();
    blackhole?.close();
    // MinIO may still be starting when something before it failed.
    const storage = target ?? (await targetPromise?.catch(() => undefined));
    await Promise.all([cluster?.stop(), storage?.stop()]);
    await kube?.stop();
  });

  test("a backup Job with token auth completes; its Pod reports the executor's result", async () => {
    const name = "backup-token-ok";
    const created = Date.now();
    await batch.createNamespacedJob({
      namespace,
      body: executorJob({
        name,
        env: [...baseEnv(), ...tokenEnv],
        volumes: [storageVolume, tlsVolume, tokenVolume("openbao-token")],
        mounts: [storageMount, tlsMount, tokenMount],
      }),
    });
    const run = await runner.waitForRun(name, { timeoutMs: 120_000 });
    const endToEnd = Date.now() - created;
    assert.equal(run.outcome, "Complete", runner.describe());
    assert.equal(run.exitCode, 0);

    const job = await batch.readNamespacedJob({ name, namespace });
    assert.deepEqual(conditionsOf(job), { SuccessCriteriaMet: "CompletionsReached", Complete: "CompletionsReached" });
    assert.equal(job.status?.succeeded, 1);
    assert.equal(job.status?.failed ?? 0, 0);
    assert.equal(job.status?.active ?? 0, 0);
    assert.ok(job.status?.startTime && job.status.completionTime);

    const pod = podOf(await podsOf(name));
    assert.equal(pod.status?.phase, "Succeeded");
    assert.equal(pod.metadata?.labels?.["job-name"], name);
    assert.equal(pod.metadata?.labels?.["controller-uid"], job.metadata?.uid);
    assert.match(pod.metadata?.name ?? "", new RegExp(`^${name}-[a-z0-9]{5}$`));
    const owner = pod.metadata?.ownerReferences?.[0];
    assert.equal(owner?.kind, "Job");
    assert.equal(owner?.uid, job.metadata?.uid);
    assert.equal(owner?.controller, true);
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(terminated?.exitCode, 0);
    assert.equal(terminated?.reason, "Completed");
    const result = JSON.parse(terminated?.message ?? "") as { ok?: unknown; key?: unknown };
    assert.equal(result.ok, true);
    assert.equal(typeof result.key, "string");
    const keys = await target.keys();
    assert.ok(keys.includes(String(result.key)), `${String(result.key)} not in ${keys.join(", ")}`);
    assert.ok(keys.includes(`${String(result.key)}.json`), "the manifest was written");
    process.stdout.write(
      `# token Job: end-to-end ${endToEnd} ms, container ${run.durationMs} ms, runner overhead ${run.overheadMs} ms\n`,
    );
  });

  test("a Job with a bad token fails with exit code 2 and BackoffLimitExceeded, no retry", async () => {
    const name = "backup-token-bad";
    await batch.createNamespacedJob({
      namespace,
      body: executorJob({
        name,
        env: [...baseEnv(), ...tokenEnv],
        volumes: [storageVolume, tlsVolume, tokenVolume("openbao-bad-token")],
        mounts: [storageMount, tlsMount, tokenMount],
      }),
    });
    const run = await runner.waitForRun(name, { timeoutMs: 120_000 });
    assert.equal(run.outcome, "Failed", runner.describe());
    assert.equal(run.attempts, 1);
    const job = await batch.readNamespacedJob({ name, namespace });
    assert.deepEqual(conditionsOf(job), { FailureTarget: "BackoffLimitExceeded", Failed: "BackoffLimitExceeded" });
    assert.equal(job.status?.failed, 1);
    assert.equal(job.status?.completionTime, undefined);
    const pod = podOf(await podsOf(name));
    assert.equal(pod.status?.phase, "Failed");
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(terminated?.exitCode, 2);
    assert.equal(terminated?.reason, "Error");
    const result = JSON.parse(terminated?.message ?? "") as { ok?: unknown; exitCode?: unknown };
    assert.equal(result.ok, false);
    assert.equal(result.exitCode, 2);
  });

  test("a Job with a projected service-account token (audience openbao-internal) logs in with JWT", async () => {
    const name = "backup-jwt-ok";
    await batch.createNamespacedJob({
      namespace,
      body: executorJob({
        name,
        env: [
          ...baseEnv(),
          { name: "BACKUP_AUTH_METHOD", value: "jwt" },
          { name: "BACKUP_JWT_AUTH_ROLE", value: "backup" },
          { name: "BACKUP_JWT_AUTH_PATH", value: "jwt" },
          { name: "BACKUP_JWT_TOKEN_FILE", value: "/var/run/secrets/openbao/token" },
        ],
        volumes: [
          storageVolume,
          tlsVolume,
          {
            name: "openbao-jwt",
            projected: {
              sources: [{ serviceAccountToken: { audience: openbaoAudience, expirationSeconds: 3600, path: "token" } }],
            },
          },
        ],
        mounts: [
          storageMount,
          tlsMount,
          { name: "openbao-jwt", mountPath: "/var/run/secrets/openbao", readOnly: true },
        ],
      }),
    });
    const run = await runner.waitForRun(name, { timeoutMs: 120_000 });
    assert.equal(run.outcome, "Complete", runner.describe());
    const pod = podOf(await podsOf(name));
    const result = JSON.parse(pod.status?.containerStatuses?.[0]?.state?.terminated?.message ?? "") as {
      ok?: unknown;
      key?: unknown;
    };
    assert.equal(result.ok, true);
    assert.ok((await target.keys()).includes(String(result.key)));
  });

  test("activeDeadlineSeconds: a running container is stopped, a Pod stuck on a missing Secret too", async () => {
    const running = "backup-deadline-running";
    const pending = "backup-deadline-pending";
    await Promise.all([
      batch.createNamespacedJob({
        namespace,
        body: executorJob({
          name: running,
          // Long enough for the executor to be up and waiting on the silent "OpenBao".
          activeDeadlineSeconds: 6,
          env: [
            ...baseEnv().filter((e) => e.name !== "BACKUP_OPENBAO_ADDRESSES"),
            { name: "BACKUP_OPENBAO_ADDRESSES", value: blackholeAddress },
            ...tokenEnv,
          ],
          volumes: [storageVolume, tlsVolume, tokenVolume("openbao-token")],
          mounts: [storageMount, tlsMount, tokenMount],
        }),
      }),
      batch.createNamespacedJob({
        namespace,
        body: executorJob({
          name: pending,
          activeDeadlineSeconds: 3,
          env: [...baseEnv(), ...tokenEnv],
          volumes: [storageVolume, tlsVolume, tokenVolume("no-such-secret")],
          mounts: [storageMount, tlsMount, tokenMount],
        }),
      }),
    ]);
    const [runningRun, pendingRun] = await Promise.all([
      runner.waitForRun(running, { timeoutMs: 60_000 }),
      runner.waitForRun(pending, { timeoutMs: 60_000 }),
    ]);
    for (const [name, run, failed] of [
      [running, runningRun, 1],
      [pending, pendingRun, 1],
    ] as const) {
      assert.equal(run.outcome, "Failed", runner.describe());
      assert.equal(run.reason, "DeadlineExceeded");
      const job = await batch.readNamespacedJob({ name, namespace });
      assert.deepEqual(conditionsOf(job), { FailureTarget: "DeadlineExceeded", Failed: "DeadlineExceeded" });
      assert.equal(job.status?.failed, failed);
      assert.equal(job.status?.active ?? 0, 0);
      // The Job controller deletes the active Pod of a Job past its deadline.
      assert.deepEqual(await podsOf(name), []);
    }
    assert.notEqual(runningRun.exitCode, null, "the running container was killed");
    process.stdout.write(
      `# deadline: container exit ${runningRun.exitCode}, message ${JSON.stringify(runningRun.terminationMessage)}\n`,
    );
    assert.equal(pendingRun.exitCode, null, "the pending container never ran");
    assert.ok(
      pendingRun.notes.some((n) => n.includes('secret "no-such-secret" not found')),
      pendingRun.notes.join("\n"),
    );
    // Counted from status.startTime, which the API server keeps to the second (as in a cluster).
    const elapsed = (runningRun.finishedAt ?? 0) - runningRun.seenAt;
    assert.ok(elapsed >= 5000 && elapsed < 20_000, `deadline enforced after ${elapsed} ms`);
  });

  test("pause/resume, a Job that vanishes mid-run, and a second runner never re-runs a Job", async () => {
    const shape = (name: string): V1Job =>
      executorJob({
        name,
        env: [...baseEnv(), ...tokenEnv],
        volumes: [storageVolume, tlsVolume, tokenVolume("openbao-token")],
        mounts: [storageMount, tlsMount, tokenMount],
      });
    runner.pause();
    await batch.createNamespacedJob({ namespace, body: shape("backup-paused") });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(await podsOf("backup-paused"), [], "no Pod while paused");
    runner.resume();
    assert.equal((await runner.waitForRun("backup-paused", { timeoutMs: 120_000 })).outcome, "Complete");

    const vanished = runner.vanishNext({ afterMs: 100 });
    await batch.createNamespacedJob({ namespace, body: shape("backup-vanish") });
    const record = await vanished;
    assert.equal(record.jobName, "backup-vanish");
    assert.equal(record.outcome, "Vanished");
    await waitFor(
      async () => {
        const jobs = await batch.listNamespacedJob({ namespace, fieldSelector: "metadata.name=backup-vanish" });
        return jobs.items.length === 0 && (await podsOf("backup-vanish")).length === 0;
      },
      { what: "the vanished Job and Pod gone", timeoutMs: 10_000 },
    );

    // A second runner over the same Jobs: all are finished or gone, so it runs none.
    const second = await startJobRunner({ kubeConfig: kube.kubeConfig, namespace });
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(second.runs, []);
    } finally {
      await second.stop();
    }
    const names = runner.runs.map((r) => r.jobName);
    assert.equal(new Set(names).size, names.length, `a Job ran twice: ${names.join(", ")}`);
  });

  test("complete-with mode: Jobs finish without running anything (control-plane overhead)", async () => {
    const benchNamespace = "bench";
    await kube.createNamespace(benchNamespace);
    await kube.createServiceAccount(benchNamespace, serviceAccount);
    const labels = { "app.kubernetes.io/managed-by": "openbao-backup", bench: "yes" };
    const message = JSON.stringify({ mode: "backup", ok: true, key: "k" });
    const fake = await startJobRunner({
      kubeConfig: kube.kubeConfig,
      namespace: benchNamespace,
      labelSelector: "bench=yes",
      mode: { completeWith: { exitCode: 0, terminationMessage: message } },
    });
    try {
      const count = 20;
      const began = Date.now();
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          batch.createNamespacedJob({
            namespace: benchNamespace,
            body: {
              ...executorJob({ name: `bench-${i}`, env: [], volumes: [], mounts: [], labels }),
              metadata: { name: `bench-${i}`, namespace: benchNamespace, labels },
            },
          }),
        ),
      );
      const records = await Promise.all(
        Array.from({ length: count }, (_, i) => fake.waitForRun(`bench-${i}`, { timeoutMs: 60_000 })),
      );
      const elapsed = Date.now() - began;
      for (const r of records) {
        assert.equal(r.outcome, "Complete");
        assert.equal(r.terminationMessage, message);
      }
      const overheads = records.map((r) => r.overheadMs ?? 0).sort((a, b) => a - b);
      process.stdout.write(
        `# complete-with: ${count} Jobs in ${elapsed} ms; runner overhead per Job median ${overheads[count >> 1]} ms, max ${overheads.at(-1)} ms\n`,
      );

      // One at a time: the runner's own cost per Job (watch → Pod → statuses → Job final).
      const sequential: number[] = [];
      for (let i = 0; i < 5; i++) {
        const name = `bench-seq-${i}`;
        const created = Date.now();
        await batch.createNamespacedJob({
          namespace: benchNamespace,
          body: {
            ...executorJob({ name, env: [], volumes: [], mounts: [], labels }),
            metadata: { name, namespace: benchNamespace, labels },
          },
        });
        const r = await fake.waitForRun(name, { timeoutMs: 30_000 });
        assert.equal(r.outcome, "Complete");
        sequential.push(Date.now() - created);
      }
      sequential.sort((a, b) => a - b);
      process.stdout.write(
        `# complete-with, one at a time: Job created → runner done median ${sequential[2]} ms (${sequential.join(", ")})\n`,
      );

      const pod = podOf(
        (
          await core.listNamespacedPod({
            namespace: benchNamespace,
            labelSelector: "batch.kubernetes.io/job-name=bench-0",
          })
        ).items,
      );
      assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.message, message);
    } finally {
      await fake.stop();
    }
  });
});
