/**
 * Several destinations, operator side (issue 18, item 3): what a Job's report of each
 * destination becomes — `status.backup.destinations`, a Warning per failed copy whatever the
 * success policy made of the Job, the `openbao_backup_destination_*` series from the first
 * reconcile — and what the Job is given (one credentials Secret per destination, the
 * destinations as BACKUP_ADDITIONAL_TARGETS, memory for every destination's buffers).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry } from "prom-client";
import { resolveBackupSpec } from "../../../src/api/predicates.ts";
import type { OpenBaoCluster } from "../../../src/api/types.ts";
import { backupJobEnv } from "../../../src/backup/job-env.ts";
import { backupMetrics } from "../../../src/backup/metrics.ts";
import { planBackup } from "../../../src/backup/plan.ts";
import { loadBackupConfig } from "../../../src/executor/config.ts";
import { parseResultLine, type ReportedResult, resultLine } from "../../../src/executor/result.ts";
import { buildExecutorJob, executorMemory } from "../../../src/jobs/executor-job.ts";
import type { ObservedJob } from "../../../src/jobs/result.ts";

const t = (iso: string): Date => new Date(iso);

function cluster(): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "openbao", uid: "uid-1", annotations: {} },
    spec: {
      replicas: 1,
      version: "2.4.0",
      backup: {
        schedule: "* * * * *",
        jwtAuthRole: "backup",
        target: { bucket: "main", credentialsSecretRef: { name: "s3-creds" } },
        additionalTargets: [
          { name: "offsite", provider: "gcs", bucket: "copies", credentialsSecretRef: { name: "gcs-creds" } },
          { name: "azure-copy", provider: "azure", bucket: "copies", azure: { storageAccount: "acct" } },
        ],
        successPolicy: "Primary",
        retention: { maxCount: 3, maxAge: "7d" },
      },
    },
    status: { phase: "Running", initialized: true, currentVersion: "2.4.0" },
  };
}

const reported = (ok: boolean[]): ReportedResult => ({
  ok: true,
  key: "openbao/bao/2026-11-21T10-01-02Z-0000abcd.snap",
  size: 1234,
  sha256: "a".repeat(64),
  durationMs: 1500,
  raftIndex: 42,
  reason: undefined,
  message: undefined,
  retentionDeleted: 0,
  retentionFailed: 0,
  destinations: ["primary", "offsite", "azure-copy"].map((name, i) => ({
    name,
    ok: ok[i] ?? true,
    location: i === 0 ? "s3://main" : i === 1 ? "gcs://copies" : "azure://acct/copies",
    key: "openbao/bao/2026-11-21T10-01-02Z-0000abcd.snap",
    reason: ok[i] === false ? "StorageUnreachable" : undefined,
    message: ok[i] === false ? "gcs upload gcs://copies/…: storage endpoint unreachable" : undefined,
  })),
});

/** Runs one scheduled Job to its end with `result`, and returns the status written and the events. */
function finish(c: OpenBaoCluster, result: ReportedResult) {
  const plan = (now: Date, jobs: ObservedJob[] = []) =>
    planBackup({ cluster: c, jobs, activeRestores: [], missingSecrets: [], now, defaultImage: "img:1" });
  const first = plan(t("2026-11-21T10:00:30Z"));
  c.status = { ...c.status, ...first.status };
  const start = plan(t("2026-11-21T10:01:00Z"));
  c.status = { ...c.status, ...start.status };
  const name = start.createJob?.name ?? "";
  const done = plan(t("2026-11-21T10:02:40Z"), [
    {
      name,
      phase: "Succeeded",
      finishedAt: t("2026-11-21T10:02:30Z"),
      jobFailureReason: undefined,
      result,
      podTerminated: true,
    },
  ]);
  c.status = { ...c.status, ...done.status };
  return { status: c.status?.backup, events: done.events, recorded: done.recorded, job: name };
}

describe("status.backup.destinations", () => {
  test("each destination's record; a failed copy is a Warning naming it even when the Job succeeded", () => {
    const c = cluster();
    const { status, events, job } = finish(c, reported([true, false, true]));
    assert.equal(status?.consecutiveFailures, 0, "the Job itself succeeded (policy Primary)");
    assert.deepEqual(status?.destinations, [
      {
        name: "primary",
        location: "s3://main",
        lastBackupTime: "2026-11-21T10:02:30Z",
        lastBackupName: "openbao/bao/2026-11-21T10-01-02Z-0000abcd.snap",
        consecutiveFailures: 0,
      },
      {
        name: "offsite",
        location: "gcs://copies",
        consecutiveFailures: 1,
        lastFailureReason: "StorageUnreachable",
        lastFailureMessage: "gcs upload gcs://copies/…: storage endpoint unreachable",
        lastFailureTime: "2026-11-21T10:02:30Z",
      },
      {
        name: "azure-copy",
        location: "azure://acct/copies",
        lastBackupTime: "2026-11-21T10:02:30Z",
        lastBackupName: "openbao/bao/2026-11-21T10-01-02Z-0000abcd.snap",
        consecutiveFailures: 0,
      },
    ]);
    const warnings = events.filter((e) => e.reason === "BackupDestinationFailed");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.type, "Warning");
    assert.match(
      warnings[0]?.message ?? "",
      new RegExp(
        `^Job ${job}: destination offsite \\(gcs://copies\\) holds no copy of this backup: StorageUnreachable: `,
      ),
    );
    assert.ok(events.some((e) => e.reason === "BackupSucceeded"));
  });
});

describe("DestinationsHealthy: a destination without the last backup is a condition (never silent)", () => {
  const condition = (c: OpenBaoCluster) => c.status?.conditions?.find((x) => x.type === "DestinationsHealthy");

  test("Unknown until a Job reports; False naming the destination even when the Job succeeded; True again", () => {
    const c = cluster();
    const seen = planBackup({
      cluster: c,
      jobs: [],
      activeRestores: [],
      missingSecrets: [],
      now: t("2026-11-21T10:00:30Z"),
      defaultImage: "img:1",
    });
    const first = seen.status?.conditions.find((x) => x.type === "DestinationsHealthy");
    assert.equal(first?.status, "Unknown");
    assert.equal(first?.reason, "NoDestinationReportYet");

    finish(c, reported([true, false, true]));
    assert.equal(c.status?.conditions?.find((x) => x.type === "BackupHealthy")?.status, "True", "policy Primary");
    assert.equal(condition(c)?.status, "False");
    assert.equal(condition(c)?.reason, "DestinationFailed");
    assert.equal(
      condition(c)?.message,
      "a destination holds no copy of the last backup: offsite (gcs://copies): StorageUnreachable: gcs upload gcs://copies/…: storage endpoint unreachable; 1 consecutive failure(s)",
    );

    finish(c, reported([true, true, true]));
    assert.equal(condition(c)?.status, "True");
    assert.equal(condition(c)?.reason, "AllDestinationsStored");
    assert.equal(condition(c)?.message, "the last backup is stored in every destination: primary, offsite, azure-copy");
  });

  test("without additional targets there is no such condition; removing them removes it", () => {
    const c = cluster();
    finish(c, reported([true, false, false]));
    assert.match(condition(c)?.message ?? "", /^2 destinations hold no copy/);
    const backup = c.spec?.backup;
    assert.ok(backup);
    delete backup.additionalTargets;
    const p = planBackup({
      cluster: c,
      jobs: [],
      activeRestores: [],
      missingSecrets: [],
      now: t("2026-11-21T10:03:00Z"),
      defaultImage: "img:1",
    });
    assert.equal(
      p.status?.conditions.find((x) => x.type === "DestinationsHealthy"),
      undefined,
      "one target: nothing to compare",
    );
  });

  test("the condition is exported with the others as openbao_backup_condition", async () => {
    const registry = new Registry();
    const metrics = backupMetrics(registry);
    const c = cluster();
    finish(c, reported([true, false, true]));
    metrics.observe(c);
    const text = await registry.metrics();
    assert.match(
      text,
      /openbao_backup_condition\{namespace="openbao",cluster="bao",condition="DestinationsHealthy",status="False",reason="DestinationFailed"\} 1/,
    );
  });
});

describe("a backup without its drill canary", () => {
  test("is recorded as the success it is, with a Warning that no drill can verify its data", () => {
    const c = cluster();
    const result = parseResultLine(
      JSON.stringify({
        v: 1,
        ok: true,
        key: "openbao/bao/2026-11-21T10-01-02Z-0000abcd.snap",
        size: 10,
        canaryProblem:
          "could not write the canary secret/openbao-backup/canary before the snapshot: permission denied\u001b[0m",
      }),
    );
    assert.ok(result);
    const { status, events, job } = finish(c, { ...result, destinations: undefined });
    assert.equal(status?.consecutiveFailures, 0);
    const warning = events.find((e) => e.reason === "BackupCanaryNotWritten");
    assert.equal(warning?.type, "Warning");
    assert.equal(
      warning?.message,
      `Job ${job} stored openbao/bao/2026-11-21T10-01-02Z-0000abcd.snap without the drill canary: could not write the canary secret/openbao-backup/canary before the snapshot: permission denied [0m`,
    );
  });
});

describe("openbao_backup_destination_* metrics", () => {
  test("every configured destination has its series from the first reconcile; failures count per destination", async () => {
    const registry = new Registry();
    const metrics = backupMetrics(registry, () => t("2026-11-21T10:00:00Z"));
    const c = cluster();
    metrics.observe(c);
    const text = await registry.metrics();
    for (const d of ["primary", "offsite", "azure-copy"]) {
      assert.match(
        text,
        new RegExp(
          `openbao_backup_destination_failures_total\\{namespace="openbao",cluster="bao",destination="${d}"\\} 0`,
        ),
      );
      assert.match(
        text,
        new RegExp(
          `openbao_backup_destination_last_success_timestamp_seconds\\{namespace="openbao",cluster="bao",destination="${d}"\\} 0`,
        ),
      );
    }
    const { recorded } = finish(c, reported([true, false, true]));
    assert.ok(recorded);
    metrics.recorded(c, recorded);
    metrics.observe(c);
    const after = await registry.metrics();
    assert.match(
      after,
      /openbao_backup_destination_failures_total\{namespace="openbao",cluster="bao",destination="offsite"\} 1/,
    );
    assert.match(
      after,
      /openbao_backup_destination_failures_total\{namespace="openbao",cluster="bao",destination="primary"\} 0/,
    );
    assert.match(
      after,
      new RegExp(
        `openbao_backup_destination_last_success_timestamp_seconds\\{namespace="openbao",cluster="bao",destination="primary"\\} ${t("2026-11-21T10:02:30Z").getTime() / 1000}`,
      ),
    );
    // A destination removed from the spec loses its series; without additional targets there are none.
    const fewer = structuredClone(c);
    if (fewer.spec?.backup)
      fewer.spec.backup.additionalTargets = [{ name: "offsite", provider: "gcs", bucket: "copies" }];
    metrics.observe(fewer);
    assert.doesNotMatch(await registry.metrics(), /destination="azure-copy"/);
    const none = structuredClone(c);
    if (none.spec?.backup) none.spec.backup.additionalTargets = undefined;
    metrics.observe(none);
    assert.doesNotMatch(await registry.metrics(), /openbao_backup_destination_failures_total\{/);
  });
});

describe("the backup Job of several destinations", () => {
  const spec = resolveBackupSpec(cluster().spec?.backup ?? ({} as never), {
    clusterName: "bao",
    defaultImage: "img:1",
  });
  assert.ok(spec);
  const job = buildExecutorJob({
    mode: "backup",
    name: "backup-bao-1",
    namespace: "openbao",
    owner: { apiVersion: "openbao.org/v1alpha1", kind: "OpenBaoCluster", name: "bao", uid: "uid-1" },
    image: "img:1",
    serviceAccountName: "bao-backup",
    labels: {},
    annotations: {},
    podLabels: {},
    podAnnotations: {},
    activeDeadlineSeconds: 600,
    jwtAudience: "openbao-internal",
    cluster: { name: "bao", replicas: 1, addresses: undefined },
    auth: spec.auth,
    tlsSecretName: undefined,
    target: spec.target,
    additionalTargets: spec.additionalTargets,
    successPolicy: spec.successPolicy,
    extraEnv: backupJobEnv({ type: "scheduled" }, spec),
  });
  const container = job.spec?.template.spec?.containers[0];
  const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? ""]));

  test("each destination's Secret is mounted at its own path, and the destinations reach the executor", () => {
    const volumes = job.spec?.template.spec?.volumes ?? [];
    assert.equal(volumes.find((v) => v.name === "storage-offsite")?.secret?.secretName, "gcs-creds");
    assert.equal(volumes.find((v) => v.name === "storage-offsite")?.secret?.optional, true);
    assert.equal(
      volumes.find((v) => v.name === "storage-azure-copy"),
      undefined,
      "no Secret: ambient identity",
    );
    const mounts = container?.volumeMounts ?? [];
    assert.ok(
      mounts.some(
        (m) => m.name === "storage-offsite" && m.mountPath === "/etc/bao-backup/storage-offsite" && m.readOnly,
      ),
      "mounted where docs/install.md says",
    );
    assert.ok(
      (env.BACKUP_ADDITIONAL_TARGETS ?? "").includes('"credentialsDir":"/etc/bao-backup/storage-offsite"'),
      "and where the executor reads it",
    );
    assert.equal(env.BACKUP_SUCCESS_POLICY, "Primary");
    const config = loadBackupConfig({ ...env, BACKUP_AUTH_METHOD: "token" }, []);
    assert.deepEqual(
      config.destinations.map((d) => [d.name, d.target.provider, d.target.bucket, d.credentialsSecret]),
      [
        ["primary", "s3", "main", undefined],
        ["offsite", "gcs", "copies", "gcs-creds"],
        ["azure-copy", "azure", "copies", undefined],
      ],
    );
    assert.equal(config.successPolicy, "Primary");
    assert.doesNotMatch(env.BACKUP_ADDITIONAL_TARGETS ?? "", /credentialsSecretRef/);
  });

  test("memory holds every destination's upload buffers", () => {
    const one = 10 * 1024 * 1024 * 5;
    assert.equal(container?.resources?.limits?.memory, `${(3 * one) / (1024 * 1024) + 256}Mi`);
    assert.equal(executorMemory(spec.target), `${one / (1024 * 1024) + 256}Mi`);
  });

  test("retention settings reach pre-upgrade Jobs too: an object lock needs maxAge there", () => {
    const pre = backupJobEnv({ type: "pre-upgrade" }, spec);
    assert.equal(pre.BACKUP_TYPE, "pre-upgrade");
    assert.equal(pre.BACKUP_RETENTION_MAX_AGE, "7d");
    const lockedPreUpgrade = loadBackupConfig(
      {
        CLUSTER_NAME: "bao",
        CLUSTER_NAMESPACE: "openbao",
        BACKUP_AUTH_METHOD: "token",
        BACKUP_BUCKET: "b",
        BACKUP_OBJECT_LOCK_MODE: "GOVERNANCE",
        ...pre,
      },
      [],
    );
    assert.equal(lockedPreUpgrade.kind, "pre-upgrade");
  });
});

describe("the destinations in the termination message", () => {
  test("parsed field by field: bad names dropped, messages sanitized", () => {
    const parsed = parseResultLine(
      JSON.stringify({
        v: 1,
        ok: true,
        key: "k.snap",
        destinations: [
          { name: "primary", ok: true, location: "s3://b", key: "k.snap" },
          { name: "Bad Name", ok: false },
          {
            name: "offsite",
            ok: false,
            location: "gcs://c",
            reason: "StorageUnreachable",
            message: "line\u001b[31m red\nnext",
          },
          { name: "x", ok: "yes" },
        ],
      }),
    );
    assert.deepEqual(
      parsed?.destinations?.map((d) => [d.name, d.ok, d.location, d.reason]),
      [
        ["primary", true, "s3://b", undefined],
        ["offsite", false, "gcs://c", "StorageUnreachable"],
      ],
    );
    const message = parsed?.destinations?.[1]?.message ?? "";
    assert.ok(!message.includes("\u001b") && !message.includes("\n"), JSON.stringify(message));
  });

  test("a result with long destination messages stays under what Kubernetes keeps, reasons kept", () => {
    const line = resultLine({
      mode: "backup",
      ok: false,
      exitCode: 5,
      reason: "StorageUnreachable",
      message: "m".repeat(1200),
      key: "k",
      durationMs: 1,
      startedAt: "2026-11-21T10:00:00Z",
      destinations: ["primary", "a", "b", "c", "d"].map((name) => ({
        name,
        ok: false,
        location: `s3://${"b".repeat(60)}`,
        key: `${"p/".repeat(40)}k.snap`,
        reason: "StorageUnreachable",
        message: "x".repeat(200),
      })),
    });
    assert.ok(line.length <= 3900, `${line.length} characters`);
    const parsed = parseResultLine(line);
    assert.equal(parsed?.destinations?.length, 5);
    assert.equal(parsed?.destinations?.[4]?.reason, "StorageUnreachable");
  });
});
