/**
 * Failures in words a person acts on, for backups and restores alike: what Kubernetes says
 * when the executor could not report (the deadline, the OOM killer), and which reason wins
 * when both speak (the deadline outranks the executor's own "Terminated": it is why).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type CachedJob, type CachedPod, failureOf, observeJob, resultWaitMs } from "../../../src/jobs/result.ts";
import { trimJob, trimPod } from "../../../src/kube/cache-shape.ts";

const finished = "2026-12-05T10:00:00Z";

function job(reason: string | undefined, activeDeadlineSeconds = 120): CachedJob {
  return trimJob({
    metadata: { name: "backup-bao-1", uid: "j" },
    spec: { activeDeadlineSeconds, backoffLimit: 0, template: { spec: { containers: [] } } },
    status: {
      conditions: [
        { type: "Failed", status: "True", reason: reason ?? "BackoffLimitExceeded", lastTransitionTime: finished },
      ],
    },
  } as CachedJob);
}

function pod(terminated: { reason: string; exitCode: number; message?: string }, memory = "48Mi"): CachedPod {
  return trimPod({
    metadata: { name: "backup-bao-1-abcde" },
    spec: {
      containers: [
        {
          name: "executor",
          image: "x",
          env: [{ name: "SECRET", value: "never kept" }],
          resources: { limits: { memory } },
        },
      ],
    },
    status: {
      containerStatuses: [
        {
          name: "executor",
          image: "x",
          imageID: "",
          ready: false,
          restartCount: 0,
          state: { terminated: { ...terminated, finishedAt: finished } },
        },
      ],
    },
  } as CachedPod);
}

const terminatedResult = JSON.stringify({
  ok: false,
  reason: "Terminated",
  message: "stopped by a signal while transferring",
});

describe("failures the executor could not report", () => {
  test("the deadline: DeadlineExceeded with the deadline's seconds, the executor's Terminated report kept", () => {
    const observed = observeJob(job("DeadlineExceeded", 45), [
      pod({ reason: "Error", exitCode: 4, message: terminatedResult }),
    ]);
    const failure = failureOf(observed);
    assert.equal(failure.reason, "DeadlineExceeded");
    assert.match(failure.message, /deadline of 45s/);
    assert.match(failure.message, /spec\.backup\.activeDeadlineSeconds/);
    assert.match(failure.message, /the executor reported: stopped by a signal/);
  });

  test("a drill Job's deadline names the drill's own deadline field", () => {
    const drillJob = job("DeadlineExceeded", 600);
    drillJob.metadata = { ...drillJob.metadata, labels: { "openbao.org/drill": "scheduled" } };
    const failure = failureOf(observeJob(drillJob, [pod({ reason: "Error", exitCode: 4, message: terminatedResult })]));
    assert.equal(failure.reason, "DeadlineExceeded");
    assert.match(failure.message, /spec\.backup\.drill\.activeDeadlineSeconds/);
    assert.doesNotMatch(failure.message, /raise spec\.backup\.activeDeadlineSeconds/);
  });

  test("the OOM killer: OOMKilled naming the limit and what to change", () => {
    const observed = observeJob(job(undefined), [pod({ reason: "OOMKilled", exitCode: 137 })]);
    const failure = failureOf(observed);
    assert.equal(failure.reason, "OOMKilled");
    assert.match(failure.message, /memory limit \(48Mi\)/);
    assert.match(failure.message, /spec\.backup\.resources\.limits\.memory/);
  });

  test("a drill whose throwaway OpenBao was OOM-killed: that is the reason, the executor's report kept", () => {
    const drillPod = pod({
      reason: "Error",
      exitCode: 6,
      message: JSON.stringify({ ok: false, reason: "SnapshotRefused", message: "connection reset by 127.0.0.1:8200" }),
    });
    const withSidecar: CachedPod = {
      ...drillPod,
      status: {
        ...drillPod.status,
        initContainerStatuses: [
          {
            name: "openbao",
            image: "quay.io/openbao/openbao:2.4.0",
            imageID: "",
            ready: true,
            restartCount: 1,
            state: { running: { startedAt: finished } },
            lastState: { terminated: { reason: "OOMKilled", exitCode: 137, finishedAt: finished } },
          },
        ],
      },
    };
    const failure = failureOf(observeJob(job(undefined), [withSidecar]));
    assert.equal(failure.reason, "OOMKilled");
    assert.match(failure.message, /throwaway OpenBao was killed at its memory limit/);
    assert.match(failure.message, /spec\.backup\.drill\.openbaoResources\.limits\.memory/);
    assert.match(failure.message, /the executor reported: connection reset/);
    // A backup Pod has no such sidecar: the executor's report stands.
    assert.equal(failureOf(observeJob(job(undefined), [drillPod])).reason, "SnapshotRefused");
  });

  test("the executor's own report wins over anything but the deadline", () => {
    const result = JSON.stringify({
      ok: false,
      reason: "StorageDenied",
      message: "access denied by the bucket policy",
    });
    const observed = observeJob(job(undefined), [pod({ reason: "Error", exitCode: 5, message: result })]);
    assert.deepEqual(failureOf(observed), { reason: "StorageDenied", message: "access denied by the bucket policy" });
  });

  test("nothing to go on: the Job's own reason, said plainly", () => {
    const observed = observeJob(job(undefined), []);
    assert.deepEqual(failureOf(observed), {
      reason: "BackoffLimitExceeded",
      message: "Job backup-bao-1 failed (BackoffLimitExceeded) without a readable result",
    });
  });

  test("a deadline-stopped Job is judged at once: its Pod is gone and a short TTL would otherwise win", () => {
    const now = new Date(finished);
    assert.equal(resultWaitMs(observeJob(job("DeadlineExceeded"), []), now), 0);
    // Any other failure without a Pod report still waits the grace for the Pod's late update.
    assert.ok(resultWaitMs(observeJob(job(undefined), []), now) > 0);
  });

  test("the caches keep only the deadline and the containers' limits of the specs", () => {
    assert.deepEqual(job("DeadlineExceeded", 30).spec, { activeDeadlineSeconds: 30 });
    assert.deepEqual(pod({ reason: "OOMKilled", exitCode: 137 }).spec, {
      containers: [{ name: "executor", resources: { limits: { memory: "48Mi" } } }],
    });
  });
});
