/**
 * Restores without retyping (pure planner): the source taken from the cluster's own
 * `spec.backup.target`, `key: latest` resolved by the Job and recorded from its result, and
 * readiness of a cluster no lifecycle operator manages read from its StatefulSet.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { OpenBaoCluster, OpenBaoRestore } from "../../../src/api/types.ts";
import type { ReportedResult } from "../../../src/executor/result.ts";
import { type ObservedStatefulSet, observeStatefulSet } from "../../../src/readiness/statefulset.ts";
import { type ObservedJob, planRestore, type RestorePlan } from "../../../src/restore/plan.ts";

const now = new Date("2026-12-05T10:00:00Z");
const finalizer = "openbao.org/release-operation-lock";

function restore(source: OpenBaoRestore["spec"]["source"], force = false): OpenBaoRestore {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoRestore",
    metadata: {
      name: "r1",
      namespace: "vault",
      uid: "0a1b2c3d-1111-2222-3333-444455556666",
      creationTimestamp: "2026-12-05T09:59:00Z",
      generation: 1,
    },
    spec: { cluster: "openbao", source, jwtAuthRole: "restore", ...(force ? { force } : {}) },
  };
}

/** A cluster for an OpenBao installed by the official chart: nobody writes its status. */
function unmanagedCluster(): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "openbao", namespace: "vault", uid: "cluster-uid", resourceVersion: "7" },
    spec: {
      backup: {
        schedule: "@daily",
        jwtAuthRole: "backup",
        target: { provider: "gcs", bucket: "snaps", credentialsSecretRef: { name: "gcs-creds" } },
      },
    },
  };
}

function sts(pods = 3): ObservedStatefulSet {
  return observeStatefulSet({
    metadata: { name: "openbao", namespace: "vault" },
    spec: {
      replicas: 3,
      serviceName: "openbao-internal",
      template: { spec: { containers: [{ name: "openbao", ports: [{ name: "http", containerPort: 8200 }] }] } },
    },
    status: { replicas: pods, readyReplicas: pods },
  });
}

/** Plans passes (applying status, finalizer, secrets answer) until the plan creates a Job or fails. */
function runUntilStart(
  r: OpenBaoRestore,
  c: OpenBaoCluster | undefined,
  statefulSet: ObservedStatefulSet | undefined,
): { plan: RestorePlan; restore: OpenBaoRestore; secretsChecked: string[] } {
  let current = structuredClone(r);
  let secretsChecked: string[] = [];
  let missing: string[] | undefined;
  for (let pass = 0; pass < 6; pass++) {
    const plan = planRestore({
      restore: current,
      cluster: c,
      job: undefined,
      activeJobPods: 0,
      peers: [],
      backupWork: { runningJobs: [], activePods: 0 },
      missingSecrets: missing,
      now,
      defaultImage: "img",
      statefulSet,
    });
    if (plan.addFinalizer) current.metadata.finalizers = [finalizer];
    if (plan.status) current = { ...current, status: plan.status };
    if (plan.secretsToCheck.length > 0) {
      secretsChecked = [...plan.secretsToCheck];
      missing = [];
    }
    if (plan.createJob || current.status?.phase === "Failed") return { plan, restore: current, secretsChecked };
  }
  throw new Error("the restore neither started nor failed");
}

describe("a restore's source", () => {
  test("no spec.source.target: the cluster's own target and credentials Secret", () => {
    const { plan, secretsChecked } = runUntilStart(
      restore({ key: "backups/vault/openbao/x.snap" }),
      unmanagedCluster(),
      sts(),
    );
    assert.equal(plan.createJob?.target.provider, "gcs");
    assert.equal(plan.createJob?.target.bucket, "snaps");
    assert.deepEqual(secretsChecked, ["gcs-creds"], "http:// members: no CA Secret is checked");
  });

  test("no target anywhere: Failed, naming spec.source.target", () => {
    const c = unmanagedCluster();
    delete c.spec?.backup;
    const { restore: after } = runUntilStart(restore({ key: "k.snap" }), c, sts());
    assert.equal(after.status?.phase, "Failed");
    assert.match(after.status?.message ?? "", /spec\.source\.target is not set/);
  });

  test('key "latest": no key recorded at start; the key the Job chose is recorded from its result', () => {
    const { plan, restore: running } = runUntilStart(restore({ key: "latest" }), unmanagedCluster(), sts());
    assert.equal(plan.createJob?.key, "latest");
    assert.equal(running.status?.phase, "Running");
    assert.equal(running.status?.snapshotKey, undefined);
    const chosen = "backups/vault/openbao/2026-12-05T09-00-00Z-0a0a0a0a.snap";
    const result: ReportedResult = {
      ok: true,
      key: chosen,
      size: 10,
      sha256: "ab".repeat(32),
      durationMs: 5,
      raftIndex: undefined,
      reason: undefined,
      message: undefined,
      retentionDeleted: undefined,
      retentionFailed: undefined,
    };
    const job: ObservedJob = {
      name: plan.createJob?.name ?? "",
      phase: "Succeeded",
      finishedAt: now,
      jobFailureReason: undefined,
      result,
      podTerminated: true,
    };
    const c = unmanagedCluster();
    c.status = { operationLock: plan.lock?.kind === "acquire" ? plan.lock.lock : null };
    const done = planRestore({
      restore: running,
      cluster: c,
      job,
      activeJobPods: 0,
      peers: [],
      backupWork: { runningJobs: [], activePods: 0 },
      missingSecrets: [],
      now,
      defaultImage: "img",
      statefulSet: sts(),
    });
    assert.equal(done.status?.phase, "Completed");
    assert.equal(done.status?.snapshotKey, chosen);
  });
});

describe("a restore into an OpenBao no lifecycle operator manages", () => {
  test("Pods present, no status.initialized anywhere: it starts, with the StatefulSet's members", () => {
    const { plan } = runUntilStart(restore({ key: "k.snap" }), unmanagedCluster(), sts());
    assert.deepEqual(plan.createJob?.openbaoAddresses, [
      "http://openbao-0.openbao-internal.vault.svc:8200",
      "http://openbao-1.openbao-internal.vault.svc:8200",
      "http://openbao-2.openbao-internal.vault.svc:8200",
    ]);
    assert.equal(plan.createJob?.tlsSecretName, undefined);
  });

  test("no Pods: Failed with the StatefulSet's state, unless forced", () => {
    const { restore: failed } = runUntilStart(restore({ key: "k.snap" }), unmanagedCluster(), sts(0));
    assert.equal(failed.status?.phase, "Failed");
    assert.match(failed.status?.message ?? "", /StatefulSet openbao has no Pods yet/);
    const { plan } = runUntilStart(restore({ key: "k.snap" }, true), unmanagedCluster(), sts(0));
    assert.ok(plan.createJob);
  });

  test("no StatefulSet and no status: today's rule, not initialized", () => {
    const { restore: failed } = runUntilStart(restore({ key: "k.snap" }), unmanagedCluster(), undefined);
    assert.equal(failed.status?.phase, "Failed");
    assert.match(failed.status?.message ?? "", /not initialized/);
  });
});
