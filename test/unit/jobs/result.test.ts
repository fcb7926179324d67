/**
 * Issue 15, defect 5: the executor's result is read from the container named `executor`,
 * never from whichever container the Pod lists first. A mesh sidecar (istio-proxy,
 * linkerd-proxy) is often listed first, and a classic sidecar keeps the Pod — and so the
 * Job — running after the executor has finished: the executor's terminated state is then the
 * Job's result, and a stored backup is recorded as stored, not as a failure an hour later.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1ContainerStatus } from "@kubernetes/client-node";
import type { OpenBaoCluster, OpenBaoRestore } from "../../../src/api/types.ts";
import { planBackup } from "../../../src/backup/plan.ts";
import { executorContainerName } from "../../../src/jobs/executor-job.ts";
import { type CachedJob, type CachedPod, executorDone, observeJob } from "../../../src/jobs/result.ts";
import { planRestore, type RestoreObservation } from "../../../src/restore/plan.ts";

const jobName = "backup-bao-20261121-100100";
const key = "openbao/bao/2026-11-21T10-01-00Z-0a1b2c3d.snap";
const stored = JSON.stringify({
  v: 1,
  mode: "backup",
  ok: true,
  key,
  size: 10,
  sha256: "b".repeat(64),
  durationMs: 5,
  raftIndex: 9,
});
const executorFinishedAt = "2026-11-21T10:01:20Z";

type Status = Omit<V1ContainerStatus, "image" | "imageID" | "ready" | "restartCount"> & { name: string };

function running(name: string): Status {
  return { name, state: { running: { startedAt: "2026-11-21T10:01:01Z" } as never } };
}

function terminated(name: string, exitCode: number, message?: string, reason = exitCode === 0 ? "Completed" : "Error") {
  return {
    name,
    state: { terminated: { exitCode, reason, message, finishedAt: executorFinishedAt } },
  } as unknown as Status;
}

function pod(
  containerStatuses: Status[],
  phase: string,
  extra: { initContainerStatuses?: Status[]; deletionTimestamp?: string; containers?: unknown[] } = {},
): CachedPod {
  return {
    metadata: {
      name: `${jobName}-abcde`,
      ...(extra.deletionTimestamp ? { deletionTimestamp: extra.deletionTimestamp } : {}),
    },
    ...(extra.containers ? { spec: { containers: extra.containers } } : {}),
    status: { phase, containerStatuses, initContainerStatuses: extra.initContainerStatuses },
  } as unknown as CachedPod;
}

function job(state: "Running" | "Complete" | "Failed", reason = "BackoffLimitExceeded"): CachedJob {
  const at = "2026-11-21T10:01:30Z";
  const conditions =
    state === "Complete"
      ? [{ type: "Complete", status: "True", lastTransitionTime: at }]
      : state === "Failed"
        ? [{ type: "Failed", status: "True", reason, lastTransitionTime: at }]
        : [];
  return {
    metadata: { name: jobName, ownerReferences: [{ uid: "uid-1", controller: true }] },
    status: {
      ...(state === "Complete" ? { completionTime: at } : {}),
      conditions,
      active: state === "Running" ? 1 : 0,
    },
  } as CachedJob;
}

/** A cluster whose backup Job `jobName` is in flight, holding the lock. */
function clusterInFlight(): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "openbao", uid: "uid-1", annotations: {} },
    spec: {
      replicas: 3,
      version: "2.4.0",
      backup: { schedule: "0 3 * * *", jwtAuthRole: "backup", target: { bucket: "b" } },
    },
    status: {
      phase: "Running",
      initialized: true,
      currentVersion: "2.4.0",
      backup: {
        currentJob: { name: jobName, type: "manual", createdAt: "2026-11-21T10:01:00Z" },
        consecutiveFailures: 0,
        observedSchedule: {
          schedule: "0 3 * * *",
          timeZone: "UTC",
          suspend: false,
          observedTime: "2026-11-21T09:00:00Z",
        },
      },
      operationLock: { operation: "Backup", holder: "openbaocluster/backup", acquiredAt: "2026-11-21T10:01:00Z" },
    },
  } as OpenBaoCluster;
}

function planFor(cached: CachedJob, pods: CachedPod[]) {
  return planBackup({
    cluster: clusterInFlight(),
    jobs: [observeJob(cached, pods)],
    activeRestores: [],
    missingSecrets: [],
    now: new Date("2026-11-21T10:01:31Z"),
    defaultImage: "img:1",
  });
}

describe("the executor's container is found by name (issue 15, defect 5)", () => {
  test("the Job builder names its container with the one exported constant", () => {
    assert.equal(executorContainerName, "executor");
  });

  test("a sidecar listed first, both finished, Job Complete: the executor's result is recorded", () => {
    const pods = [pod([terminated("istio-proxy", 0), terminated(executorContainerName, 0, stored)], "Succeeded")];
    const observed = observeJob(job("Complete"), pods);
    assert.equal(observed.result?.ok, true);
    assert.equal(observed.result?.key, key);
    const plan = planFor(job("Complete"), pods);
    assert.equal(plan.status?.backup.lastBackupName, key, "a stored backup is recorded as stored");
    assert.equal(plan.status?.backup.consecutiveFailures, 0);
    assert.equal(plan.recorded?.ok, true);
  });

  test("a sidecar's own termination message is never read as the executor's result", () => {
    const sidecarLine = JSON.stringify({ ok: true, key: "not-the-executor.snap" });
    const failure = JSON.stringify({ ok: false, reason: "StorageUnreachable", message: "connect ECONNREFUSED" });
    const pods = [
      pod([terminated("log-shipper", 0, sidecarLine), terminated(executorContainerName, 5, failure)], "Failed"),
    ];
    const observed = observeJob(job("Failed"), pods);
    assert.equal(observed.result?.ok, false);
    assert.equal(observed.result?.reason, "StorageUnreachable");
  });

  test("a sidecar that terminated while the executor still runs is no report", () => {
    const pods = [pod([terminated("istio-proxy", 0, "bye"), running(executorContainerName)], "Running")];
    const observed = observeJob(job("Running"), pods);
    assert.equal(observed.phase, "Running");
    assert.equal(observed.podTerminated, false);
    assert.equal(observed.result, undefined);
    assert.equal(executorDone(pods[0] as CachedPod), false);
  });

  test("an OOMKilled sidecar is not blamed on the executor's memory limit", () => {
    const containers = [
      { name: "istio-proxy", resources: { limits: { memory: "64Mi" } } },
      { name: executorContainerName, resources: { limits: { memory: "256Mi" } } },
    ];
    const pods = [
      pod([terminated("istio-proxy", 137, undefined, "OOMKilled"), terminated(executorContainerName, 1)], "Failed", {
        containers,
      }),
    ];
    const observed = observeJob(job("Failed"), pods);
    assert.equal(observed.explained, undefined, "the executor was not OOMKilled");
    const executorOom = [
      pod([running("istio-proxy"), terminated(executorContainerName, 137, undefined, "OOMKilled")], "Running", {
        containers,
      }),
    ];
    const explained = observeJob(job("Failed"), executorOom).explained;
    assert.equal(explained?.reason, "OOMKilled");
    assert.match(explained?.message ?? "", /\(256Mi\)/, "the executor's limit, not the sidecar's");
  });
});

describe("a sidecar that keeps the Pod alive after the executor finished", () => {
  test("classic sidecar listed first, still running; executor exit 0: finished, stored, lock released", () => {
    const pods = [pod([running("istio-proxy"), terminated(executorContainerName, 0, stored)], "Running")];
    const observed = observeJob(job("Running"), pods);
    assert.equal(observed.phase, "Succeeded", "the executor's exit code decides, not the Job that cannot complete");
    assert.equal(observed.finishedAt?.toISOString(), new Date(executorFinishedAt).toISOString());
    assert.equal(observed.podTerminated, true);
    assert.equal(observed.result?.key, key);
    assert.equal(executorDone(pods[0] as CachedPod), true);

    const plan = planFor(job("Running"), pods);
    assert.equal(plan.status?.backup.lastBackupName, key);
    assert.equal(plan.status?.backup.currentJob, null, "recorded once: currentJob cleared");
    assert.equal(plan.status?.operationLock, null, "lock released");
    assert.equal(plan.recorded?.ok, true);
    assert.ok(plan.events.some((e) => e.reason === "BackupSucceeded"));
  });

  test("classic sidecar; executor failed with its own report: a failure with the executor's reason", () => {
    const failure = JSON.stringify({ ok: false, reason: "StorageDenied", message: "access denied" });
    const pods = [pod([running("linkerd-proxy"), terminated(executorContainerName, 5, failure)], "Running")];
    const observed = observeJob(job("Running"), pods);
    assert.equal(observed.phase, "Failed");
    const plan = planFor(job("Running"), pods);
    assert.equal(plan.status?.backup.lastFailureReason, "StorageDenied");
    assert.equal(plan.status?.backup.currentJob, null);
  });

  test("native sidecar (init container, restartPolicy Always) still stopping: the executor's result is read", () => {
    const pods = [
      pod([terminated(executorContainerName, 0, stored)], "Running", {
        initContainerStatuses: [running("istio-proxy")],
      }),
    ];
    const observed = observeJob(job("Running"), pods);
    assert.equal(observed.phase, "Succeeded");
    assert.equal(observed.result?.key, key);
  });

  test("a Pod being deleted (the Job's deadline): the Job's own verdict is awaited, not the executor's SIGTERM report", () => {
    const terminatedReport = JSON.stringify({ ok: false, reason: "Terminated", message: "stopped by a signal" });
    const pods = [
      pod([running("istio-proxy"), terminated(executorContainerName, 4, terminatedReport)], "Running", {
        deletionTimestamp: "2026-11-21T10:01:19Z",
      }),
    ];
    const observed = observeJob(job("Running"), pods);
    assert.equal(observed.phase, "Running");
    assert.equal(executorDone(pods[0] as CachedPod), true, "its executor no longer runs");
    const failed = observeJob(job("Failed", "DeadlineExceeded"), pods);
    assert.equal(failed.explained?.reason, "DeadlineExceeded");
  });

  test("a Pod with no executor status yet, or an executor still running, is not done", () => {
    assert.equal(executorDone(pod([], "Pending")), false);
    assert.equal(executorDone(pod([running(executorContainerName)], "Running")), false);
    assert.equal(executorDone(pod([], "Failed")), true, "a terminal Pod is done whatever it reports");
    const observed = observeJob(job("Running"), [
      pod([running("istio-proxy"), running(executorContainerName)], "Running"),
    ]);
    assert.equal(observed.phase, "Running");
  });
});

describe("restores read the same result", () => {
  test("a restore Job kept running by a classic sidecar: Completed with the executor's report, lock released", () => {
    const cluster = clusterInFlight();
    cluster.status = { phase: "Running", initialized: true, currentVersion: "2.4.0", operationLock: null };
    let restore: OpenBaoRestore = {
      apiVersion: "openbao.org/v1alpha1",
      kind: "OpenBaoRestore",
      metadata: { name: "r1", namespace: "openbao", uid: "0a1b2c3d-1111", creationTimestamp: "2026-11-21T10:00:00Z" },
      spec: { cluster: "bao", source: { key: "p/k.snap" }, jwtAuthRole: "restore" } as OpenBaoRestore["spec"],
    };
    const observe = (now: string, extra: Partial<RestoreObservation> = {}): RestoreObservation => ({
      restore,
      cluster,
      job: undefined,
      activeJobPods: 0,
      peers: [],
      missingSecrets: [],
      now: new Date(now),
      defaultImage: "img:1",
      backupWork: { runningJobs: [], activePods: 0 },
      ...extra,
    });
    const start = planRestore(observe("2026-11-21T10:00:10Z"));
    assert.equal(start.status?.phase, "Running");
    assert.equal(start.lock?.kind, "acquire");
    restore = { ...restore, status: start.status, metadata: { ...restore.metadata, finalizers: ["f"] } };
    if (start.lock?.kind === "acquire") cluster.status = { ...cluster.status, operationLock: start.lock.lock };

    const restored = JSON.stringify({ v: 1, mode: "restore", ok: true, key: "p/k.snap", size: 4096, durationMs: 9 });
    const pods = [pod([running("istio-proxy"), terminated(executorContainerName, 0, restored)], "Running")];
    const plan = planRestore(
      observe("2026-11-21T10:01:31Z", {
        job: observeJob(job("Running"), pods),
        activeJobPods: pods.filter((p) => !executorDone(p)).length,
      }),
    );
    assert.equal(plan.status?.phase, "Completed");
    assert.equal(plan.status?.snapshotKey, "p/k.snap");
    assert.equal(plan.lock?.kind, "release");
    assert.equal(plan.finished?.ok, true);
  });
});
