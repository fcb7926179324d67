import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Annotation, BlockedReason, Condition, Reason } from "../../../src/api/constants.ts";
import {
  canTransitionRestore,
  clusterBlockers,
  fromTimestamp,
  getCondition,
  isConditionTrue,
  isRestoreActive,
  isRestoreTerminal,
  observeSchedule,
  pendingTrigger,
  preUpgradeSnapshotEnabled,
  removeCondition,
  resolveBackupSpec,
  resolveTarget,
  setCondition,
  toTimestamp,
  wantsPreUpgradeSnapshot,
} from "../../../src/api/predicates.ts";
import type {
  BackupSpec,
  Condition as ConditionT,
  OpenBaoCluster,
  OpenBaoClusterStatus,
  RestorePhase,
  TargetSpec,
} from "../../../src/api/types.ts";
import type { TargetSpec as StorageTargetSpec } from "../../../src/storage/target.ts";

const t0 = new Date("2025-03-04T05:06:07.890Z");
const t1 = new Date("2025-03-04T06:00:00Z");

describe("timestamps", () => {
  test("toTimestamp writes RFC 3339 to the second, as Kubernetes does", () => {
    assert.equal(toTimestamp(t0), "2025-03-04T05:06:07Z");
  });
  test("fromTimestamp never throws on foreign data", () => {
    assert.equal(fromTimestamp("2025-03-04T05:06:07Z")?.toISOString(), "2025-03-04T05:06:07.000Z");
    assert.equal(fromTimestamp("yesterday"), undefined);
    assert.equal(fromTimestamp(undefined), undefined);
  });
});

describe("setCondition", () => {
  const foreign: ConditionT = {
    type: "Available",
    status: "True",
    reason: "AllReplicasReady",
    message: "",
    lastTransitionTime: "2025-01-01T00:00:00Z",
  };
  const healthy = {
    type: Condition.BackupHealthy,
    status: "True",
    reason: Reason.BackupSucceeded,
    message: "ok",
  } as const;

  test("adds a condition with lastTransitionTime now, keeping the lifecycle operator's", () => {
    const out = setCondition([foreign], healthy, t0);
    assert.deepEqual(out, [foreign, { ...healthy, lastTransitionTime: "2025-03-04T05:06:07Z" }]);
  });

  test("returns the same array when nothing changed (skip the patch)", () => {
    const once = setCondition([foreign], healthy, t0);
    assert.equal(setCondition(once, healthy, t1), once);
  });

  test("a new reason or message keeps lastTransitionTime when the status is unchanged", () => {
    const once = setCondition([], healthy, t0);
    const twice = setCondition(once, { ...healthy, message: "newer backup" }, t1);
    assert.notEqual(twice, once);
    assert.equal(getCondition(twice, Condition.BackupHealthy)?.lastTransitionTime, "2025-03-04T05:06:07Z");
    assert.equal(getCondition(twice, Condition.BackupHealthy)?.message, "newer backup");
  });

  test("a status change moves lastTransitionTime", () => {
    const once = setCondition([], healthy, t0);
    const failed = setCondition(once, { ...healthy, status: "False", reason: Reason.BackupFailed }, t1);
    assert.equal(getCondition(failed, Condition.BackupHealthy)?.lastTransitionTime, "2025-03-04T06:00:00Z");
    assert.equal(isConditionTrue(failed, Condition.BackupHealthy), false);
    assert.equal(isConditionTrue(once, Condition.BackupHealthy), true);
  });

  test("observedGeneration counts as a change", () => {
    const once = setCondition([], { ...healthy, observedGeneration: 1 }, t0);
    assert.notEqual(setCondition(once, { ...healthy, observedGeneration: 2 }, t1), once);
  });

  test("removeCondition", () => {
    const list = setCondition([foreign], healthy, t0);
    assert.deepEqual(removeCondition(list, Condition.BackupHealthy), [foreign]);
    assert.equal(removeCondition(list, Condition.BackingUp), list);
  });
});

describe("restore phases", () => {
  const phases: RestorePhase[] = ["Pending", "Validating", "Running", "Completed", "Failed"];

  test("Completed and Failed are terminal", () => {
    assert.deepEqual(
      phases.filter((p) => isRestoreTerminal(p)),
      ["Completed", "Failed"],
    );
    assert.equal(isRestoreTerminal(undefined), false);
    assert.equal(isRestoreActive(undefined), true);
    assert.equal(isRestoreActive("Completed"), false);
  });

  const table: [RestorePhase | undefined, RestorePhase, boolean][] = [
    [undefined, "Pending", true],
    ["Pending", "Validating", true],
    ["Validating", "Running", true],
    ["Pending", "Running", true],
    ["Running", "Completed", true],
    ["Pending", "Failed", true],
    ["Running", "Validating", false],
    ["Running", "Pending", false],
    ["Completed", "Failed", false],
    ["Failed", "Running", false],
    ["Completed", "Completed", true],
  ];
  for (const [from, to, ok] of table) {
    test(`${from ?? "(none)"} → ${to}: ${ok ? "allowed" : "refused"}`, () =>
      assert.equal(canTransitionRestore(from, to), ok));
  }
});

describe("resolveBackupSpec (SPEC §2 defaults)", () => {
  const options = { clusterName: "prod", defaultImage: "ghcr.io/openbao/openbao-backup:0.1.0" };

  test("a minimal S3 spec gets every default", () => {
    const spec: BackupSpec = { schedule: "0 3 * * *", jwtAuthRole: "backup", target: { bucket: "b" } };
    assert.deepEqual(resolveBackupSpec(spec, options), {
      schedule: "0 3 * * *",
      timeZone: "UTC",
      suspend: false,
      image: "ghcr.io/openbao/openbao-backup:0.1.0",
      auth: { method: "jwt", role: "backup", path: "jwt" },
      openbaoAddresses: undefined,
      tlsSecretName: "prod-tls-ca",
      target: { bucket: "b", provider: "s3", region: "us-east-1", partSize: 10 * 1024 * 1024, concurrency: 3 },
      additionalTargets: [],
      successPolicy: undefined,
      retention: undefined,
      activeDeadlineSeconds: 3600,
      resources: undefined,
      serviceAccountAnnotations: {},
      podLabels: {},
      podAnnotations: {},
      canaryPath: undefined,
    });
  });

  test("given values win; a static token defaults its key to token; executorImage is the old name of image", () => {
    const spec: BackupSpec = {
      schedule: "@daily",
      timeZone: "Europe/Berlin",
      suspend: true,
      executorImage: "old/name:1",
      tokenSecretRef: { name: "backup-token" },
      openbaoAddresses: ["https://bao-0:8200"],
      tlsSecretRef: { name: "custom-ca" },
      target: { provider: "gcs", bucket: "b", partSize: 8 * 1024 * 1024, concurrency: 5 },
      retention: { maxAge: "7d" },
      activeDeadlineSeconds: 60,
      podLabels: { "azure.workload.identity/use": "true" },
    };
    const resolved = resolveBackupSpec(spec, options);
    assert.ok(resolved);
    assert.equal(resolved.image, "old/name:1");
    assert.deepEqual(resolved.auth, { method: "token", secretName: "backup-token", secretKey: "token" });
    assert.equal(resolved.tlsSecretName, "custom-ca");
    assert.equal(resolved.timeZone, "Europe/Berlin");
    assert.equal(resolved.suspend, true);
    assert.deepEqual(resolved.target, { provider: "gcs", bucket: "b", partSize: 8 * 1024 * 1024, concurrency: 5 });
    assert.deepEqual(resolved.retention, { maxCount: undefined, maxAge: "7d" });
    assert.deepEqual(resolved.podLabels, { "azure.workload.identity/use": "true" });
  });

  test("no region is invented for gcs or azure", () => {
    const azure = resolveTarget({ provider: "azure", azure: { storageAccount: "acct", container: "c" } });
    assert.equal("region" in azure, false);
    assert.equal(azure.partSize, 10 * 1024 * 1024);
  });

  test("no auth (refused by the CRD, possible in old objects) resolves to undefined", () => {
    const spec = { schedule: "0 3 * * *", target: { bucket: "b" } } as unknown as BackupSpec;
    assert.equal(resolveBackupSpec(spec, options), undefined);
  });

  test("the resolved target is what the executor's parseTarget reads (same shape and defaults)", () => {
    // Compile-time: the API's target is assignable to storage's TargetSpec.
    const target: TargetSpec = { provider: "azure", azure: { storageAccount: "acct" }, bucket: "c" };
    const forStorage: StorageTargetSpec = target;
    assert.ok(forStorage);
  });
});

describe("observeSchedule", () => {
  const spec = { schedule: "0 3 * * *" };

  test("first sight starts the observation now", () => {
    assert.deepEqual(observeSchedule(spec, undefined, t0), {
      observed: { schedule: "0 3 * * *", timeZone: "UTC", suspend: false, observedTime: "2025-03-04T05:06:07Z" },
      changed: true,
    });
  });

  test("an unchanged schedule keeps its observation time", () => {
    const { observed } = observeSchedule(spec, undefined, t0);
    assert.deepEqual(observeSchedule({ ...spec, timeZone: "UTC" }, observed, t1), { observed, changed: false });
  });

  const changes: [string, { schedule: string; timeZone?: string; suspend?: boolean }][] = [
    ["a new expression", { schedule: "0 4 * * *" }],
    ["a new time zone", { ...spec, timeZone: "Europe/Berlin" }],
    ["suspending", { ...spec, suspend: true }],
  ];
  for (const [name, next] of changes) {
    test(`${name} restarts the observation`, () => {
      const { observed } = observeSchedule(spec, undefined, t0);
      const result = observeSchedule(next, observed, t1);
      assert.equal(result.changed, true);
      assert.equal(result.observed.observedTime, "2025-03-04T06:00:00Z");
    });
  }

  test("lifting suspend restarts it too (windows missed while suspended are not caught up)", () => {
    const { observed: suspended } = observeSchedule({ ...spec, suspend: true }, undefined, t0);
    const resumed = observeSchedule(spec, suspended, t1);
    assert.equal(resumed.changed, true);
    assert.equal(resumed.observed.observedTime, "2025-03-04T06:00:00Z");
  });

  test("an unreadable observation time is replaced", () => {
    const broken = { schedule: "0 3 * * *", timeZone: "UTC", suspend: false, observedTime: "garbage" };
    assert.equal(observeSchedule(spec, broken, t1).changed, true);
  });
});

function cluster(status: OpenBaoClusterStatus | undefined, annotations?: Record<string, string>): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "prod", namespace: "vault", ...(annotations ? { annotations } : {}) },
    spec: {
      replicas: 3,
      version: "2.5.0",
      backup: { schedule: "0 3 * * *", jwtAuthRole: "backup", target: { bucket: "b" } },
      upgrade: { preUpgradeSnapshot: true },
    },
    ...(status ? { status } : {}),
  };
}

describe("cluster facts", () => {
  test("pendingTrigger: any non-empty value", () => {
    assert.equal(pendingTrigger(cluster(undefined, { [Annotation.TriggerBackup]: "now" })), "now");
    assert.equal(pendingTrigger(cluster(undefined, { [Annotation.TriggerBackup]: "" })), undefined);
    assert.equal(pendingTrigger(cluster(undefined)), undefined);
  });

  const running: OpenBaoClusterStatus = { phase: "Running", initialized: true, currentVersion: "2.4.1" };
  const blockers: [string, OpenBaoClusterStatus | undefined, "scheduled" | "pre-upgrade", string[]][] = [
    ["running and initialized", running, "scheduled", []],
    ["no status yet", undefined, "scheduled", [BlockedReason.ClusterNotRunning, BlockedReason.ClusterNotInitialized]],
    [
      "initializing",
      { ...running, phase: "Initializing", initialized: false },
      "scheduled",
      [BlockedReason.ClusterNotRunning, BlockedReason.ClusterNotInitialized],
    ],
    [
      "upgrading",
      { ...running, phase: "Upgrading", upgrade: { targetVersion: "2.5.0" } },
      "scheduled",
      [BlockedReason.ClusterNotRunning, BlockedReason.UpgradeInProgress],
    ],
    ["status.upgrade set while Running", { ...running, upgrade: {} }, "scheduled", [BlockedReason.UpgradeInProgress]],
    ["status.upgrade null is no upgrade", { ...running, upgrade: null }, "scheduled", []],
    [
      "pre-upgrade: a pending upgrade does not block it",
      { ...running, phase: "Upgrading", upgrade: {} },
      "pre-upgrade",
      [],
    ],
    [
      "pre-upgrade: a failed cluster does",
      { ...running, phase: "Failed" },
      "pre-upgrade",
      [BlockedReason.ClusterNotRunning],
    ],
  ];
  for (const [name, status, type, expected] of blockers) {
    test(`clusterBlockers: ${name}`, () => assert.deepEqual(clusterBlockers(cluster(status), type), expected));
  }

  test("wantsPreUpgradeSnapshot: only when enabled, configured, and spec.version differs from the running version", () => {
    assert.equal(wantsPreUpgradeSnapshot(cluster(running)), true);
    assert.equal(wantsPreUpgradeSnapshot(cluster({ ...running, currentVersion: "2.5.0" })), false);
    assert.equal(wantsPreUpgradeSnapshot(cluster({ ...running, currentVersion: undefined })), false);
    const off = cluster(running);
    assert.ok(off.spec);
    off.spec.upgrade = { preUpgradeSnapshot: false };
    assert.equal(wantsPreUpgradeSnapshot(off), false);
    const noBackup = cluster(running);
    assert.ok(noBackup.spec);
    delete noBackup.spec.backup;
    assert.equal(wantsPreUpgradeSnapshot(noBackup), false);
  });

  test("preUpgradeSnapshotEnabled: spec.upgrade.preUpgradeSnapshot or its other spelling spec.backup.preUpgradeSnapshot", () => {
    const backup = { schedule: "0 3 * * *", jwtAuthRole: "backup", target: { bucket: "b" } };
    const cases: [string, OpenBaoCluster["spec"], boolean][] = [
      ["no spec", undefined, false],
      ["neither", { backup }, false],
      ["spec.upgrade true", { backup, upgrade: { preUpgradeSnapshot: true } }, true],
      ["spec.upgrade false", { backup, upgrade: { preUpgradeSnapshot: false } }, false],
      ["spec.backup true", { backup: { ...backup, preUpgradeSnapshot: true } }, true],
      ["spec.backup false", { backup: { ...backup, preUpgradeSnapshot: false } }, false],
      ["both true", { backup: { ...backup, preUpgradeSnapshot: true }, upgrade: { preUpgradeSnapshot: true } }, true],
      // Refused at admission; an object stored before the rule existed errs on the side of the snapshot.
      [
        "they disagree",
        { backup: { ...backup, preUpgradeSnapshot: false }, upgrade: { preUpgradeSnapshot: true } },
        true,
      ],
      ["spec.upgrade without the switch", { backup: { ...backup, preUpgradeSnapshot: true }, upgrade: {} }, true],
    ];
    for (const [name, spec, expected] of cases) assert.equal(preUpgradeSnapshotEnabled(spec), expected, name);
  });

  test("wantsPreUpgradeSnapshot: the switch spelled spec.backup.preUpgradeSnapshot counts the same", () => {
    const c = cluster({ phase: "Running", initialized: true, currentVersion: "2.4.1" });
    assert.ok(c.spec?.backup);
    delete c.spec.upgrade;
    assert.equal(wantsPreUpgradeSnapshot(c), false);
    c.spec.backup.preUpgradeSnapshot = true;
    assert.equal(wantsPreUpgradeSnapshot(c), true);
  });
});

describe("the types make invalid specs hard to write", () => {
  test("auth is JWT or a static token, never both", () => {
    // @ts-expect-error both auth methods
    const both: BackupSpec = {
      schedule: "x",
      jwtAuthRole: "r",
      tokenSecretRef: { name: "t" },
      target: { bucket: "b" },
    };
    // @ts-expect-error jwtAuthPath without a role
    const pathOnly: BackupSpec = {
      schedule: "x",
      jwtAuthPath: "jwt",
      tokenSecretRef: { name: "t" },
      target: { bucket: "b" },
    };
    assert.ok(both && pathOnly);
  });

  test("provider blocks belong to their provider", () => {
    // @ts-expect-error an azure block on an s3 target
    const s3WithAzure: TargetSpec = { bucket: "b", azure: { storageAccount: "a" } };
    // @ts-expect-error azure needs azure.storageAccount
    const azureWithout: TargetSpec = { provider: "azure", bucket: "b" };
    // @ts-expect-error roleArn is S3 only
    const gcsWithRole: TargetSpec = { provider: "gcs", bucket: "b", roleArn: "arn:aws:iam::1:role/x" };
    assert.ok(s3WithAzure && azureWithout && gcsWithRole);
  });
});
