/**
 * The drill manager's decisions (src/drill/manager/plan.ts), scenario by scenario, with a fixed
 * clock. Each scenario feeds the plan's status back in as the next observation, like the
 * controller. Pure: no servers (the real-node tier, test/node/drill.test.ts, runs the Jobs).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DrillSpec, OpenBaoCluster } from "../../../src/api/types.ts";
import { type DrillObservation, type DrillPlan, drillImage, planDrill } from "../../../src/drill/manager/plan.ts";
import type { ReportedResult } from "../../../src/executor/result.ts";
import { drillPodParts, throwawayRequests } from "../../../src/jobs/drill-pod.ts";
import { buildExecutorJob } from "../../../src/jobs/executor-job.ts";
import { jobCreateGraceMs, maxJobCreateGraceMs } from "../../../src/jobs/missing.ts";
import { type ObservedJob, resultGraceMs } from "../../../src/jobs/result.ts";

const t = (iso: string): Date => new Date(iso);
const repo = "quay.io/openbao/openbao";

function cluster(drill: DrillSpec | undefined, extra: Partial<OpenBaoCluster["status"]> = {}): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "openbao", uid: "uid-1", annotations: {}, generation: 3 },
    spec: {
      version: "2.4.0",
      backup: {
        schedule: "0 3 * * *",
        jwtAuthRole: "backup",
        target: { bucket: "b" },
        ...(drill ? { drill } : {}),
      },
    },
    status: { phase: "Running", initialized: true, currentVersion: "2.4.0", ...extra },
  };
}

function apply(c: OpenBaoCluster, plan: DrillPlan): OpenBaoCluster {
  const next = structuredClone(c);
  if (plan.status) next.status = { ...next.status, backup: plan.status.backup, conditions: plan.status.conditions };
  if (plan.clearTrigger) delete next.metadata.annotations?.["openbao.org/trigger-drill"];
  return next;
}

const plan = (
  c: OpenBaoCluster,
  now: Date,
  jobs: ObservedJob[] = [],
  known: Pick<DrillObservation, "sightings" | "jobCreateGraceMs"> = {},
): DrillPlan =>
  planDrill({
    cluster: c,
    jobs,
    now,
    defaultImage: "ghcr.io/openbao/openbao-backup:1",
    drillImageRepository: repo,
    ...known,
  });

const condition = (c: OpenBaoCluster) => c.status?.conditions?.find((x) => x.type === "RestoreVerified");

const drillOk = (outcome: "loaded" | "verified"): ReportedResult => ({
  ok: true,
  key: "bao/2026/12/06/bao-20261206-030000-1a2b3c4d.snap",
  size: 1234,
  sha256: "a".repeat(64),
  durationMs: 12_500,
  raftIndex: 77,
  reason: undefined,
  message: "restored, unsealed and read back canary version 4",
  retentionDeleted: undefined,
  retentionFailed: undefined,
  drill: { outcome, sealType: "shamir", canaryVersion: 4, secretMounts: 4, authMethods: 2 },
});

function job(name: string, phase: ObservedJob["phase"], result?: ReportedResult, finishedAt?: Date): ObservedJob {
  return {
    name,
    phase,
    finishedAt,
    jobFailureReason: phase === "Failed" ? "BackoffLimitExceeded" : undefined,
    result,
    podTerminated: phase !== "Running",
  };
}

const weekly: DrillSpec = { schedule: "0 5 * * 0" }; // Sundays 05:00 UTC

/** A cluster whose drill schedule was observed at `observedAt`, planned once then. */
function observed(drill: DrillSpec, observedAt: Date, extra: Partial<OpenBaoCluster["status"]> = {}): OpenBaoCluster {
  return apply(cluster(drill, extra), plan(cluster(drill, extra), observedAt));
}

describe("drill manager: schedule", () => {
  test("a new drill schedule waits for its next window; RestoreVerified is Unknown until a drill finished", () => {
    const now = t("2026-12-02T10:00:00Z"); // a Wednesday
    const p = plan(cluster(weekly), now);
    assert.equal(p.createJob, undefined);
    const c = apply(cluster(weekly), p);
    assert.equal(c.status?.backup?.drill?.nextScheduledDrill, "2026-12-06T05:00:00Z");
    assert.equal(condition(c)?.status, "Unknown");
    assert.equal(condition(c)?.reason, "NoDrillYet");
    assert.ok(p.requeueAfterMs !== undefined && p.requeueAfterMs > 0);
  });

  test("at its window one drill Job is created, named after the window; a repeat pass creates none", () => {
    let c = observed(weekly, t("2026-12-02T10:00:00Z"));
    const at = t("2026-12-06T05:00:03Z");
    const first = plan(c, at);
    assert.equal(first.createJob?.name, "drill-bao-20261206-050000");
    assert.equal(first.createJob?.type, "scheduled");
    assert.equal(first.createJob?.drill.key, "latest");
    assert.equal(first.createJob?.drill.openbaoImage, `${repo}:2.4.0`);
    assert.ok(first.events.some((e) => e.reason === "DrillJobCreated"));
    c = apply(c, first);
    assert.equal(c.status?.backup?.drill?.currentJob?.name, "drill-bao-20261206-050000");
    assert.equal(c.status?.backup?.drill?.lastAttemptScheduledTime, "2026-12-06T05:00:00Z");
    // The cache has not seen the Job yet: created again under the same name (an AlreadyExists
    // then), never a second Job; once it runs, nothing is created.
    assert.equal(plan(c, t("2026-12-06T05:00:04Z")).createJob?.name, "drill-bao-20261206-050000");
    assert.equal(
      plan(c, t("2026-12-06T05:01:00Z"), [job(first.createJob?.name ?? "", "Running")]).createJob,
      undefined,
    );
  });

  test("a drill never waits for the operation lock, a backup, an upgrade or a not-Running cluster", () => {
    const busy = {
      phase: "Upgrading" as const,
      operationLock: {
        operation: "Restore" as const,
        holder: "openbaorestore/r1" as const,
        acquiredAt: "2026-12-06T04:00:00Z",
      },
      backup: {
        currentJob: {
          name: "backup-bao-20261206-030000",
          type: "scheduled" as const,
          createdAt: "2026-12-06T03:00:00Z",
        },
      },
    };
    const c = observed(weekly, t("2026-12-02T10:00:00Z"), busy);
    const p = plan(c, t("2026-12-06T05:00:01Z"));
    assert.equal(p.createJob?.name, "drill-bao-20261206-050000");
    const after = apply(c, p);
    assert.deepEqual(after.status?.operationLock, busy.operationLock, "the lock is untouched");
    assert.deepEqual(after.status?.backup?.currentJob, busy.backup.currentJob, "the backup's record is untouched");
  });

  test("nobody writes status.phase (OpenBao from the official chart, no lifecycle operator): drills still run", () => {
    const bare = cluster(weekly);
    bare.status = {};
    const c = apply(bare, plan(bare, t("2026-12-02T10:00:00Z")));
    const p = plan(c, t("2026-12-06T05:00:01Z"));
    assert.equal(p.createJob?.name, "drill-bao-20261206-050000");
    assert.equal(p.createJob?.drill.openbaoImage, `${repo}:2.4.0`, "the image from spec.version");
  });

  test("suspended: no scheduled drill, but a trigger still runs one and is cleared once", () => {
    let c = observed({ ...weekly, suspend: true }, t("2026-12-02T10:00:00Z"));
    assert.equal(plan(c, t("2026-12-06T05:00:01Z")).createJob, undefined);
    c.metadata.annotations = { "openbao.org/trigger-drill": "now-1" };
    const p = plan(c, t("2026-12-06T06:00:00Z"));
    assert.equal(p.createJob?.type, "manual");
    assert.equal(p.createJob?.trigger, "now-1");
    assert.equal(p.clearTrigger, true);
    assert.ok(p.events.some((e) => e.reason === "ManualDrillRequested"));
    // A crash before the trigger's removal: the Job carrying its value answers it.
    const left = apply(c, { ...p, clearTrigger: false });
    const again = plan(left, t("2026-12-06T06:00:05Z"), [
      { ...job(p.createJob?.name ?? "", "Running"), trigger: "now-1" },
    ]);
    assert.equal(again.createJob, undefined);
    assert.equal(again.clearTrigger, true);
    c = apply(left, again);
    // A request naming a backup drills that one.
    c.metadata.annotations = { "openbao.org/trigger-drill": "2026-12-06T07:00:00.000Z key=bao/x-0000a001.snap" };
    const named = plan(c, t("2026-12-06T07:00:00Z"));
    assert.equal(named.createJob?.drill.key, "bao/x-0000a001.snap");
  });
});

describe("drill manager: results", () => {
  const started = (): { c: OpenBaoCluster; name: string } => {
    const c0 = observed(weekly, t("2026-12-02T10:00:00Z"));
    const p = plan(c0, t("2026-12-06T05:00:01Z"));
    return { c: apply(c0, p), name: p.createJob?.name ?? "" };
  };

  for (const outcome of ["verified", "loaded"] as const) {
    test(`a drill that ${outcome === "verified" ? "read the data back" : "only loaded"} is recorded once: lastDrill, RestoreVerified=True`, () => {
      const { c, name } = started();
      const done = t("2026-12-06T05:02:00Z");
      const p = plan(c, done, [job(name, "Succeeded", drillOk(outcome), done)]);
      const after = apply(c, p);
      const last = after.status?.backup?.lastDrill;
      assert.equal(last?.outcome, outcome);
      assert.equal(last?.key, "bao/2026/12/06/bao-20261206-030000-1a2b3c4d.snap");
      assert.equal(last?.raftIndex, 77);
      assert.equal(last?.duration, "12.5s");
      assert.equal(last?.canaryVersion, 4);
      assert.equal(last?.sealType, "shamir");
      assert.equal(after.status?.backup?.drill?.currentJob, null);
      assert.equal(after.status?.backup?.drill?.lastSuccessTime, "2026-12-06T05:02:00Z");
      assert.equal(condition(after)?.status, "True");
      assert.equal(condition(after)?.reason, outcome === "verified" ? "DrillVerified" : "DrillLoaded");
      assert.deepEqual(p.recorded, { outcome, reason: undefined, durationMs: 12_500 });
      assert.ok(p.events.some((e) => e.reason === "DrillSucceeded" && e.type === "Normal"));
      // Recorded once: the next pass sees the same finished Job and records nothing.
      const again = plan(after, t("2026-12-06T05:03:00Z"), [job(name, "Succeeded", drillOk(outcome), done)]);
      assert.equal(again.recorded, undefined);
      assert.equal(again.createJob, undefined);
    });
  }

  test("a failed drill: RestoreVerified=False DrillFailed with the executor's reason, a Warning, counted", () => {
    const { c, name } = started();
    const done = t("2026-12-06T05:01:00Z");
    const failure: ReportedResult = {
      ok: false,
      key: "bao/x.snap",
      size: undefined,
      sha256: undefined,
      durationMs: 900,
      raftIndex: undefined,
      reason: "SnapshotRefused",
      message: "OpenBao refused bao/x.snap although its bytes match its manifest",
      retentionDeleted: undefined,
      retentionFailed: undefined,
    };
    const p = plan(c, done, [job(name, "Failed", failure, done)]);
    const after = apply(c, p);
    assert.equal(after.status?.backup?.lastDrill?.outcome, "failed");
    assert.equal(after.status?.backup?.lastDrill?.reason, "SnapshotRefused");
    assert.equal(after.status?.backup?.drill?.consecutiveFailures, 1);
    assert.equal(condition(after)?.status, "False");
    assert.equal(condition(after)?.reason, "DrillFailed");
    assert.match(condition(after)?.message ?? "", /SnapshotRefused.*refused bao\/x\.snap/);
    assert.ok(p.events.some((e) => e.reason === "DrillFailed" && e.type === "Warning"));
    assert.equal(p.recorded?.outcome, "failed");
  });

  test("a finished Job's report is waited for, then a missing report is a failure", () => {
    const { c, name } = started();
    const done = t("2026-12-06T05:01:00Z");
    const finished = { ...job(name, "Succeeded", undefined, done), podTerminated: false };
    const early = plan(c, t("2026-12-06T05:01:05Z"), [finished]);
    assert.equal(early.recorded, undefined);
    assert.ok(early.requeueAfterMs !== undefined && early.requeueAfterMs <= resultGraceMs);
    const late = plan(c, new Date(done.getTime() + resultGraceMs + 1), [finished]);
    assert.equal(late.recorded?.outcome, "failed");
  });

  test("a drill Job that vanished: re-created within the grace, then recorded JobLost", () => {
    const { c, name } = started();
    const within = plan(c, new Date(t("2026-12-06T05:00:01Z").getTime() + maxJobCreateGraceMs - 1000));
    assert.equal(within.recorded, undefined);
    assert.equal(within.createJob?.name, name, "created again under its own name (AlreadyExists if it exists)");
    const after = plan(c, new Date(t("2026-12-06T05:00:01Z").getTime() + maxJobCreateGraceMs + 1000));
    assert.equal(after.recorded?.outcome, "failed");
    assert.equal(apply(c, after).status?.backup?.lastDrill?.reason, "JobLost");
    assert.equal(apply(c, after).status?.backup?.lastDrill?.jobName, name);
  });

  test("a drill Job this process saw, then gone: recorded JobLost at once, never run again", () => {
    const { c, name } = started();
    const gone = plan(c, t("2026-12-06T05:00:30Z"), [], { sightings: new Map([[name, "observed"]]) });
    assert.equal(gone.createJob, undefined);
    assert.equal(apply(c, gone).status?.backup?.lastDrill?.reason, "JobLost");
    const waiting = plan(c, t("2026-12-06T05:00:30Z"), [], { sightings: new Map([[name, "created"]]) });
    assert.equal(waiting.createJob, undefined, "created by this process: the cache is waited for");
    assert.equal(waiting.recorded, undefined);
    const ttl = plan(c, t("2026-12-06T05:00:45Z"), [], { jobCreateGraceMs: jobCreateGraceMs(60) });
    assert.equal(ttl.createJob, undefined, "past half a 60 s TTL");
    assert.equal(ttl.recorded?.outcome, "failed");
  });

  test("two drill windows without a drill that passed: DrillStale", () => {
    const c = observed({ ...weekly, suspend: false }, t("2026-11-01T10:00:00Z"));
    // Jobs could not run (never recorded): after the second window the condition says so.
    const p = plan(apply(c, plan(c, t("2026-11-01T10:00:01Z"))), t("2026-11-15T06:00:00Z"));
    const after = apply(c, p);
    assert.equal(condition(after)?.reason, "DrillStale");
    assert.equal(condition(after)?.status, "False");
  });
});

describe("drill manager: configuration", () => {
  test("an invalid drill schedule names spec.backup.drill, with one Event per new problem", () => {
    const c = cluster({ schedule: "0 5 * * 0", timeZone: "Mars/Olympus" });
    const p = plan(c, t("2026-12-02T10:00:00Z"));
    const after = apply(c, p);
    assert.equal(condition(after)?.reason, "DrillInvalid");
    assert.match(condition(after)?.message ?? "", /^spec\.backup\.drill\.timeZone: "Mars\/Olympus"/);
    assert.equal(p.events.filter((e) => e.reason === "DrillInvalid").length, 1);
    assert.equal(plan(after, t("2026-12-02T10:01:00Z")).events.length, 0, "no Event while nothing changed");
  });

  test("the throwaway's image: spec.backup.drill.image, else the cluster's version, else a clear refusal", () => {
    assert.equal(drillImage(cluster(weekly), { image: "mirror/openbao:2.4.1" }, repo), "mirror/openbao:2.4.1");
    assert.equal(drillImage(cluster(weekly, { currentVersion: "v2.3.9" }), {}, repo), `${repo}:2.3.9`);
    const noVersion = cluster(weekly, { currentVersion: undefined });
    delete noVersion.spec?.version;
    assert.equal(drillImage(noVersion, {}, repo), undefined);
    const p = plan(noVersion, t("2026-12-06T05:00:01Z"));
    assert.equal(p.createJob, undefined);
    assert.equal(condition(apply(noVersion, p))?.reason, "DrillInvalid");
    assert.match(condition(apply(noVersion, p))?.message ?? "", /set spec\.backup\.drill\.image/);
  });

  test("drills turned off: the condition and the schedule state go, lastDrill stays as history", () => {
    const c = observed(weekly, t("2026-12-02T10:00:00Z"));
    c.status = {
      ...c.status,
      backup: {
        ...c.status?.backup,
        lastDrill: { time: "2026-11-29T05:01:00Z", jobName: "j", outcome: "verified", message: "m" },
      },
    };
    const off = structuredClone(c);
    delete off.spec?.backup?.drill;
    const after = apply(off, plan(off, t("2026-12-03T00:00:00Z")));
    assert.equal(condition(after), undefined);
    assert.equal(after.status?.backup?.drill, undefined);
    assert.equal(after.status?.backup?.lastDrill?.outcome, "verified");
  });
});

describe("drill Job", () => {
  test("a throwaway OpenBao as a native sidecar on 127.0.0.1, key material only where it is used", () => {
    const c0 = observed(
      { ...weekly, unsealKeysSecretRef: { name: "bao-unseal" }, canaryPath: "secret/openbao-backup/canary" },
      t("2026-12-02T10:00:00Z"),
    );
    const req = plan(c0, t("2026-12-06T05:00:01Z")).createJob;
    assert.ok(req);
    const jobSpec = buildExecutorJob({
      mode: "drill",
      name: req.name,
      namespace: "openbao",
      owner: {
        apiVersion: "openbao.org/v1alpha1",
        kind: "OpenBaoCluster",
        name: "bao",
        uid: "uid-1",
        controller: true,
      },
      image: req.spec.image,
      serviceAccountName: "bao-backup",
      labels: {},
      annotations: {},
      podLabels: {},
      podAnnotations: {},
      activeDeadlineSeconds: req.activeDeadlineSeconds,
      jwtAudience: "openbao-internal",
      cluster: { name: "bao", replicas: 3, addresses: undefined },
      auth: req.spec.auth,
      tlsSecretName: undefined,
      target: req.spec.target,
      drill: req.drill,
      extraEnv: {},
    });
    const pod = jobSpec.spec?.template.spec;
    const [prepare, openbao] = pod?.initContainers ?? [];
    const executor = pod?.containers[0];
    assert.equal(prepare?.name, "drill-prepare");
    assert.deepEqual(prepare?.args, ["drill-prepare", "--dir", "/drill"]);
    assert.equal(openbao?.name, "openbao");
    assert.equal(openbao?.restartPolicy, "Always", "a native sidecar: stopped when the executor ends");
    assert.equal(openbao?.image, `${repo}:2.4.0`);
    assert.deepEqual(openbao?.command, ["bao"]);
    assert.deepEqual(openbao?.args, ["server", "-config=/drill/config.hcl"]);
    assert.equal(openbao?.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(executor?.name, "executor");
    assert.deepEqual(executor?.args, ["drill"]);
    const env = new Map((executor?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.get("DRILL_OPENBAO_ADDR"), "http://127.0.0.1:8200");
    assert.equal(env.get("BACKUP_KEY"), "latest");
    assert.equal(env.get("DRILL_UNSEAL_KEYS_DIR"), "/etc/bao-backup/unseal-keys");
    assert.equal(env.get("DRILL_CANARY_PATH"), "secret/openbao-backup/canary");
    assert.equal(env.has("BACKUP_OPENBAO_ADDRESSES"), false, "a drill never contacts the live cluster");
    assert.equal(env.has("BACKUP_CA_FILE"), false);
    assert.match(env.get("BACKUP_REQUIRED_SECRETS") ?? "", /unseal-keys=bao-unseal/);
    assert.ok(executor?.volumeMounts?.some((m) => m.mountPath === "/etc/bao-backup/unseal-keys"));
    assert.ok(
      !openbao?.volumeMounts?.some((m) => m.mountPath === "/etc/bao-backup/unseal-keys"),
      "keys never in the throwaway",
    );
    assert.ok(
      !executor?.volumeMounts?.some((m) => m.mountPath === "/drill"),
      "the throwaway's data never in the executor",
    );
  });

  test("without key material the canary is not asked of the drill (it can only prove loaded)", () => {
    const c0 = observed({ ...weekly, canaryPath: "secret/openbao-backup/canary" }, t("2026-12-02T10:00:00Z"));
    const req = plan(c0, t("2026-12-06T05:00:01Z")).createJob;
    assert.ok(req);
    const env = drillPodParts(req.drill).env.map((e) => e.name);
    assert.ok(!env.includes("DRILL_CANARY_PATH"), env.join(","));
  });

  test("the throwaway's requests follow the last backup's size (≈ 4.5× memory, 2.1× disk); the user's win", () => {
    assert.deepEqual(throwawayRequests(undefined), { memory: "256Mi" });
    assert.deepEqual(throwawayRequests(1024 * 1024 * 1024), { memory: "4864Mi", "ephemeral-storage": "2215Mi" });
    const c0 = observed(weekly, t("2026-12-02T10:00:00Z"), { backup: { lastBackupSize: 100 * 1024 * 1024 } });
    const req = plan(c0, t("2026-12-06T05:00:01Z")).createJob;
    assert.equal(req?.drill.snapshotSize, 100 * 1024 * 1024);
    const openbao = (user?: DrillSpec["openbaoResources"]) =>
      drillPodParts({ ...(req?.drill ?? { openbaoImage: "x", key: "latest" }), openbaoResources: user })
        .initContainers({ image: "e" })
        .find((c) => c.name === "openbao");
    assert.deepEqual(openbao()?.resources, {
      requests: { memory: "706Mi", "ephemeral-storage": "274Mi", cpu: "100m" },
    });
    assert.deepEqual(openbao({ requests: { memory: "8Gi" }, limits: { memory: "10Gi" } })?.resources, {
      requests: { memory: "8Gi", "ephemeral-storage": "274Mi", cpu: "100m" },
      limits: { memory: "10Gi" },
    });
  });

  test("an auto-unseal stanza is the throwaway's second -config, mounted in its container only", () => {
    const c0 = observed({ ...weekly, sealConfigSecretRef: { name: "bao-drill-seal" } }, t("2026-12-02T10:00:00Z"));
    const req = plan(c0, t("2026-12-06T05:00:01Z")).createJob;
    assert.equal(req?.drill.sealConfigSecret, "bao-drill-seal");
    assert.equal(req?.drill.unsealKeysSecret, undefined);
  });
});
