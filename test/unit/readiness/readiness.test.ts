/**
 * Readiness without a lifecycle operator (src/readiness): which source a cluster's readiness
 * comes from, what blocks a Job, the member addresses a chart-shaped StatefulSet gives, and
 * how the backup planner uses them — with a fixed clock, no servers (pure decisions).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { OpenBaoCluster } from "../../../src/api/types.ts";
import { planBackup } from "../../../src/backup/plan.ts";
import { buildExecutorJob } from "../../../src/jobs/executor-job.ts";
import {
  readinessBlockers,
  readinessOf,
  statefulSetAddresses,
  statefulSetNameOf,
} from "../../../src/readiness/decide.ts";
import {
  type ObservedStatefulSet,
  observeStatefulSet,
  type TrimmedStatefulSet,
  trimStatefulSet,
} from "../../../src/readiness/statefulset.ts";

const now = new Date("2026-12-05T10:00:30Z");

/** A StatefulSet as the official OpenBao chart renders it (release "openbao", TLS off). */
function chartStatefulSet(
  overrides: { tls?: boolean; replicas?: number; pods?: number; ready?: number; owner?: string } = {},
): TrimmedStatefulSet & Record<string, unknown> {
  const scheme = overrides.tls === true ? "https" : "http";
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: {
      name: "openbao",
      namespace: "vault",
      labels: { "app.kubernetes.io/managed-by": "Helm" },
      ...(overrides.owner
        ? {
            ownerReferences: [
              {
                apiVersion: "openbao.org/v1alpha1",
                kind: overrides.owner,
                name: "openbao",
                uid: "u",
                controller: true,
              },
            ],
          }
        : {}),
    },
    spec: {
      replicas: overrides.replicas ?? 3,
      serviceName: "openbao-internal",
      template: {
        spec: {
          containers: [
            {
              name: "openbao",
              ports: [
                { containerPort: 8200, name: scheme },
                { containerPort: 8201, name: "https-internal" },
              ],
              env: [
                { name: "POD_IP", value: undefined },
                { name: "BAO_ADDR", value: `${scheme}://127.0.0.1:8200` },
                { name: "SECRET_THING", value: "must-not-be-kept" },
              ],
            },
          ],
        },
      },
    },
    status: { replicas: overrides.pods ?? 3, readyReplicas: overrides.ready ?? 3 },
  };
}

function observed(overrides: Parameters<typeof chartStatefulSet>[0] = {}): ObservedStatefulSet {
  return observeStatefulSet(trimStatefulSet(chartStatefulSet(overrides)));
}

function cluster(status?: OpenBaoCluster["status"], statefulSetName?: string): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "openbao", namespace: "vault", uid: "uid-1", generation: 1 },
    spec: {
      backup: {
        schedule: "* * * * *",
        jwtAuthRole: "backup",
        target: { bucket: "b" },
        ...(statefulSetName ? { statefulSetName } : {}),
      },
    },
    ...(status ? { status } : {}),
  };
}

describe("the StatefulSet as the operator caches and reads it", () => {
  test("the cache keeps the API port, BAO_ADDR and counts, and drops every other env value", () => {
    const trimmed = trimStatefulSet(chartStatefulSet());
    const text = JSON.stringify(trimmed);
    assert.doesNotMatch(text, /must-not-be-kept/);
    assert.doesNotMatch(text, /managed-by/);
    assert.deepEqual(observeStatefulSet(trimmed), {
      name: "openbao",
      replicas: 3,
      serviceName: "openbao-internal",
      scheme: "http",
      port: 8200,
      controller: undefined,
      pods: 3,
      readyPods: 3,
    });
  });

  test("TLS on: the port named https says so", () => {
    assert.equal(observed({ tls: true }).scheme, "https");
  });

  test("no named port: BAO_ADDR decides; neither: https on 8200", () => {
    const withoutPorts = (keepEnv: boolean) => {
      const sts = chartStatefulSet();
      const container = sts.spec?.template?.spec?.containers?.[0];
      if (container) {
        container.ports = [];
        if (!keepEnv) container.env = [];
      }
      return observeStatefulSet(trimStatefulSet(sts));
    };
    assert.equal(withoutPorts(true).scheme, "http");
    assert.deepEqual([withoutPorts(false).scheme, withoutPorts(false).port], ["https", 8200]);
  });

  test("member addresses: one per replica through the headless Service", () => {
    assert.deepEqual(statefulSetAddresses(observed(), "vault"), [
      "http://openbao-0.openbao-internal.vault.svc:8200",
      "http://openbao-1.openbao-internal.vault.svc:8200",
      "http://openbao-2.openbao-internal.vault.svc:8200",
    ]);
  });
});

describe("where readiness comes from", () => {
  test("a status.phase written by a lifecycle operator wins, StatefulSet or not", () => {
    assert.equal(readinessOf(cluster({ phase: "Running", initialized: true }), observed()).source, "LifecycleOperator");
  });

  test("no status and a StatefulSet nobody of ours controls: the StatefulSet", () => {
    assert.equal(readinessOf(cluster(), observed()).source, "StatefulSet");
  });

  test("a StatefulSet controlled by an OpenBaoCluster waits for its lifecycle operator", () => {
    const readiness = readinessOf(cluster(), observed({ owner: "OpenBaoCluster" }));
    assert.equal(readiness.source, "LifecycleOperator");
    const [first] = readinessBlockers(cluster(), readiness, "scheduled");
    assert.equal(first?.reason, "ClusterNotRunning");
    assert.match(first?.message ?? "", /controlled by OpenBaoCluster openbao/);
  });

  test("nothing at all: blocked, and the message names spec.backup.statefulSetName", () => {
    const blockers = readinessBlockers(cluster(), readinessOf(cluster(), undefined), "scheduled");
    assert.deepEqual(
      blockers.map((b) => b.reason),
      ["ClusterNotRunning", "ClusterNotInitialized"],
    );
    assert.match(blockers[0]?.message ?? "", /spec\.backup\.statefulSetName/);
  });

  test("spec.backup.statefulSetName names the StatefulSet", () => {
    assert.equal(statefulSetNameOf(cluster(undefined, "bao-release")), "bao-release");
    assert.equal(statefulSetNameOf(cluster()), "openbao");
  });
});

describe("what blocks a Job when readiness comes from the StatefulSet", () => {
  const blockers = (sts: ObservedStatefulSet) =>
    readinessBlockers(cluster(), readinessOf(cluster(), sts), "scheduled").map((b) => b.message);

  test("every Pod present: nothing, whatever the readiness probe says (sealed Pods are not ready)", () => {
    assert.deepEqual(blockers(observed({ ready: 0 })), []);
  });

  test("scaled to zero", () => {
    assert.deepEqual(blockers(observed({ replicas: 0, pods: 0 })), [
      "StatefulSet openbao is scaled to 0 replicas: no OpenBao runs to take a snapshot from",
    ]);
  });

  test("no Pods created yet", () => {
    assert.deepEqual(blockers(observed({ pods: 0, ready: 0 })), [
      "StatefulSet openbao has no Pods yet (0 of 3 created)",
    ]);
  });

  test("a rollout with one Pod replaced (2 of 3 exist) does not block", () => {
    assert.deepEqual(blockers(observed({ pods: 2, ready: 2 })), []);
  });
});

describe("the backup planner with a StatefulSet", () => {
  test("nobody writes status.phase: the due window starts a Job against the chart's members", () => {
    const plan = planBackup({
      cluster: {
        ...cluster(),
        status: {
          backup: {
            observedSchedule: {
              schedule: "* * * * *",
              timeZone: "UTC",
              suspend: false,
              observedTime: "2026-12-05T09:00:00Z",
            },
          },
        },
      },
      jobs: [],
      activeRestores: [],
      missingSecrets: [],
      now,
      defaultImage: "img",
      statefulSet: observed(),
    });
    assert.ok(plan.createJob, "a Job is created");
    assert.deepEqual(plan.status?.backup.readiness, { source: "StatefulSet", statefulSet: "openbao" });
    assert.deepEqual(plan.createJob.spec.openbaoAddresses, statefulSetAddresses(observed(), "vault"));
    assert.equal(plan.createJob.spec.tlsSecretName, undefined, "http:// members need no CA Secret");
  });

  test("https members keep the default CA Secret; an explicit tlsSecretRef always wins", () => {
    const base = {
      jobs: [],
      activeRestores: [],
      missingSecrets: [],
      now,
      defaultImage: "img",
    };
    const first = planBackup({ ...base, cluster: cluster(), statefulSet: observed({ tls: true }) });
    assert.equal(first.status?.backup.readiness?.source, "StatefulSet");
    const c = cluster();
    if (c.spec?.backup) c.spec.backup.tlsSecretRef = { name: "openbao-server-tls" };
    const manual = planBackup({
      ...base,
      cluster: { ...c, metadata: { ...c.metadata, annotations: { "openbao.org/trigger-backup": "now" } } },
      statefulSet: observed({ tls: true }),
    });
    assert.equal(manual.createJob?.spec.tlsSecretName, "openbao-server-tls");
  });

  test("a Job for http:// members mounts no CA and sets no BACKUP_CA_FILE", () => {
    const job = buildExecutorJob({
      mode: "backup",
      name: "j",
      namespace: "vault",
      owner: { apiVersion: "openbao.org/v1alpha1", kind: "OpenBaoCluster", name: "openbao", uid: "u" },
      image: "img",
      serviceAccountName: "openbao-backup",
      labels: {},
      annotations: {},
      podLabels: {},
      podAnnotations: {},
      activeDeadlineSeconds: 600,
      jwtAudience: "openbao-internal",
      cluster: { name: "openbao", replicas: 3, addresses: statefulSetAddresses(observed(), "vault") },
      auth: { method: "jwt", role: "backup", path: "jwt" },
      tlsSecretName: undefined,
      target: { provider: "s3", bucket: "b", region: "us-east-1", partSize: 10 * 1024 * 1024, concurrency: 3 },
      extraEnv: {},
    });
    const pod = job.spec?.template.spec;
    assert.equal(
      pod?.volumes?.some((v) => v.secret !== undefined && v.name === "openbao-tls"),
      false,
    );
    assert.equal(
      pod?.containers[0]?.env?.some((e) => e.name === "BACKUP_CA_FILE"),
      false,
    );
    assert.equal(
      pod?.containers[0]?.env?.find((e) => e.name === "BACKUP_OPENBAO_ADDRESSES")?.value,
      statefulSetAddresses(observed(), "vault").join(","),
    );
  });
});
