/**
 * The BackupManager's decisions, scenario by scenario, with a fixed clock (SPEC §3).
 * Each scenario feeds the plan's status back in as the next observation, like the controller.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { OpenBaoCluster } from "../../../src/api/types.ts";
import { type BackupPlan, planBackup, sizeHintHeadroom } from "../../../src/backup/plan.ts";
import type { ReportedResult } from "../../../src/executor/result.ts";
import { type JobSighting, jobCreateGraceMs, maxJobCreateGraceMs } from "../../../src/jobs/missing.ts";
import { type ObservedJob, resultGraceMs } from "../../../src/jobs/result.ts";

const t = (iso: string): Date => new Date(iso);

function cluster(
  overrides: { schedule?: string; phase?: string; annotations?: Record<string, string>; name?: string } = {},
): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: {
      name: overrides.name ?? "bao",
      namespace: "openbao",
      uid: "uid-1",
      annotations: overrides.annotations ?? {},
    },
    spec: {
      replicas: 3,
      version: "2.4.0",
      backup: { schedule: overrides.schedule ?? "* * * * *", jwtAuthRole: "backup", target: { bucket: "b" } },
    },
    status: { phase: (overrides.phase ?? "Running") as "Running", initialized: true, currentVersion: "2.4.0" },
  };
}

/** Applies a plan's status write to the cluster, as the controller would. */
function apply(c: OpenBaoCluster, plan: BackupPlan, clearTrigger = true): OpenBaoCluster {
  const next = structuredClone(c);
  if (plan.status) next.status = { ...next.status, ...plan.status };
  if (clearTrigger && plan.clearTrigger) delete next.metadata.annotations?.["openbao.org/trigger-backup"];
  return next;
}

const ok = (key: string): ReportedResult => ({
  ok: true,
  key,
  size: 1234,
  sha256: "a".repeat(64),
  durationMs: 1500,
  raftIndex: 42,
  reason: undefined,
  message: undefined,
  retentionDeleted: 2,
  retentionFailed: 0,
});
const failed = (reason: string): ReportedResult => ({
  ok: false,
  key: undefined,
  size: undefined,
  sha256: undefined,
  durationMs: 100,
  raftIndex: undefined,
  reason,
  message: `${reason} happened`,
  retentionDeleted: undefined,
  retentionFailed: undefined,
});
const job = (
  name: string,
  phase: ObservedJob["phase"],
  result?: ReportedResult,
  jobFailureReason?: string,
): ObservedJob => ({
  name,
  phase,
  finishedAt: phase === "Running" ? undefined : t("2026-11-21T10:02:30Z"),
  jobFailureReason,
  result,
  podTerminated: phase !== "Running",
});

const plan = (
  c: OpenBaoCluster,
  now: Date,
  jobs: ObservedJob[] = [],
  extra: {
    restores?: string[];
    missing?: string[];
    sightings?: ReadonlyMap<string, JobSighting>;
    jobCreateGraceMs?: number;
  } = {},
) =>
  planBackup({
    cluster: c,
    jobs,
    activeRestores: extra.restores ?? [],
    missingSecrets: extra.missing ?? [],
    now,
    defaultImage: "img:1",
    ...(extra.sightings ? { sightings: extra.sightings } : {}),
    ...(extra.jobCreateGraceMs === undefined ? {} : { jobCreateGraceMs: extra.jobCreateGraceMs }),
  });

/** A cluster first seen at 10:00:30 (observation recorded). */
function observed(c = cluster()): OpenBaoCluster {
  return apply(c, plan(c, t("2026-11-21T10:00:30Z")));
}

describe("planBackup", () => {
  test("a new cluster does not back up at once; the next window is recorded and timed exactly", () => {
    const p = plan(cluster(), t("2026-11-21T10:00:30Z"));
    assert.equal(p.createJob, undefined);
    assert.equal(p.status?.backup.nextScheduledBackup, "2026-11-21T10:01:00Z");
    assert.equal(p.requeueAfterMs, 30_000);
    assert.equal(p.status?.operationLock, null);
  });

  test("at the window: one Job, lock and window recorded in the same write", () => {
    const c = observed();
    const p = plan(c, t("2026-11-21T10:01:00.200Z"));
    assert.equal(p.createJob?.name, "backup-bao-20261121-100100");
    assert.equal(p.createJob?.type, "scheduled");
    assert.equal(p.status?.operationLock?.holder, "openbaocluster/backup");
    assert.equal(p.status?.backup.lastAttemptScheduledTime, "2026-11-21T10:01:00Z");
    assert.equal(p.status?.backup.currentJob?.name, "backup-bao-20261121-100100");
    assert.ok(p.events.some((e) => e.reason === "BackupJobCreated"));
  });

  test("at most once per window: reconciling again while the Job runs creates nothing and writes nothing", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    for (const now of ["2026-11-21T10:01:05Z", "2026-11-21T10:01:30Z", "2026-11-21T10:01:59Z"]) {
      const p = plan(c, t(now), [job("backup-bao-20261121-100100", "Running")]);
      assert.equal(p.createJob, undefined, now);
      assert.equal(p.status, undefined, now);
    }
  });

  test("success is recorded once, releases the lock and resets failures", () => {
    let c = observed();
    c.status = { ...c.status, backup: { ...c.status?.backup, consecutiveFailures: 2 } };
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    const done = [job("backup-bao-20261121-100100", "Succeeded", ok("openbao/bao/k.snap"))];
    const p = plan(c, t("2026-11-21T10:01:31Z"), done);
    assert.equal(p.status?.operationLock, null);
    assert.equal(p.status?.backup.lastBackupName, "openbao/bao/k.snap");
    assert.equal(p.status?.backup.lastBackupSize, 1234);
    assert.equal(p.status?.backup.lastBackupRaftIndex, 42);
    assert.equal(p.status?.backup.consecutiveFailures, 0);
    assert.equal(p.status?.backup.lastRetentionDeleted, 2);
    assert.equal(p.status?.backup.currentJob, null);
    assert.equal(p.recorded?.ok, true);
    c = apply(c, p);
    const again = plan(c, t("2026-11-21T10:01:40Z"), done);
    assert.equal(again.recorded, undefined, "recorded exactly once");
  });

  test("trap 6: a failure counts once however many reconciles follow; success resets; BackupHealthy follows", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    const failedJob = [job("backup-bao-20261121-100100", "Failed", failed("SnapshotFailed"))];
    for (let i = 0; i < 5; i++) c = apply(c, plan(c, t(`2026-11-21T10:01:3${i}Z`), failedJob));
    assert.equal(c.status?.backup?.consecutiveFailures, 1);
    assert.equal(c.status?.backup?.lastFailureReason, "SnapshotFailed");
    assert.equal(c.status?.conditions?.find((x) => x.type === "BackupHealthy")?.status, "False");
    // next window: a new Job that succeeds
    c = apply(c, plan(c, t("2026-11-21T10:02:00Z"), failedJob));
    assert.equal(c.status?.backup?.currentJob?.name, "backup-bao-20261121-100200");
    c = apply(
      c,
      plan(c, t("2026-11-21T10:02:31Z"), [...failedJob, job("backup-bao-20261121-100200", "Succeeded", ok("k2"))]),
    );
    assert.equal(c.status?.backup?.consecutiveFailures, 0);
    assert.equal(c.status?.conditions?.find((x) => x.type === "BackupHealthy")?.status, "True");
  });

  test("a failed Job without a readable result uses the Job's reason (DeadlineExceeded)", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    const p = plan(c, t("2026-11-21T10:02:00Z"), [
      job("backup-bao-20261121-100100", "Failed", undefined, "DeadlineExceeded"),
    ]);
    assert.equal(p.status?.backup.lastFailureReason, "DeadlineExceeded");
  });

  test("a Job seen Complete before its Pod's report waits for the result, then records success", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    const name = "backup-bao-20261121-100100";
    // Finished at 10:01:20; the Pod still looks Running in the operator's cache.
    const finishedAt = t("2026-11-21T10:01:20Z");
    const early = { ...job(name, "Succeeded"), finishedAt, podTerminated: false };
    const waiting = plan(c, t("2026-11-21T10:01:21Z"), [early]);
    assert.equal(waiting.recorded, undefined, "nothing recorded without the Pod's report");
    assert.equal(waiting.status, undefined, "the lock and currentJob stay");
    assert.equal(waiting.createJob, undefined);
    assert.equal(waiting.requeueAfterMs, resultGraceMs - 1000, "re-checked when the grace ends");
    const p = plan(c, t("2026-11-21T10:01:22Z"), [{ ...job(name, "Succeeded", ok("openbao/bao/k.snap")), finishedAt }]);
    assert.equal(p.recorded?.ok, true);
    assert.equal(p.status?.backup.lastBackupName, "openbao/bao/k.snap");
    assert.equal(p.status?.backup.consecutiveFailures ?? 0, 0);
  });

  test("a finished Job whose Pod never reports is looked for in storage once the grace ends", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    const finishedAt = t("2026-11-21T10:01:20Z");
    const gone = [{ ...job("backup-bao-20261121-100100", "Succeeded"), finishedAt, podTerminated: false }];
    const waiting = plan(c, new Date(finishedAt.getTime() + resultGraceMs - 1000), gone);
    assert.equal(waiting.recorded, undefined);
    assert.equal(waiting.requeueAfterMs, 1000, "the report may still come: wait out the grace");
    // Then storage is asked (defect 6), and what it says is recorded: here, nothing stored.
    const end = new Date(finishedAt.getTime() + resultGraceMs);
    const p = plan(c, end, gone);
    assert.equal(p.recorded, undefined);
    assert.equal(p.createJob?.confirms, "backup-bao-20261121-100100");
    c = apply(c, p);
    const confirm = p.createJob?.name ?? "";
    const recorded = plan(c, new Date(end.getTime() + 10_000), [
      ...gone,
      job(confirm, "Failed", failed("BackupNotFound")),
    ]);
    assert.equal(recorded.recorded?.ok, false);
    assert.equal(
      recorded.status?.backup.lastFailureReason,
      "JobFailed",
      "it finished: not lost, but nothing readable nor stored",
    );
    assert.match(
      recorded.status?.backup.lastFailureMessage ?? "",
      /succeeded but left no readable result, and storage holds no backup of it/,
    );
    assert.ok(!recorded.events.some((e) => e.reason === "LockRecovered"), "its lock is released as a Job's that ended");
    assert.doesNotMatch(recorded.status?.operationLock?.message ?? "", /100100/, "its lock is released");
    // A Pod that terminated with an unreadable message: nothing more will come, storage is asked at once.
    const unreadable = plan(apply(observed(), plan(observed(), t("2026-11-21T10:01:00Z"))), t("2026-11-21T10:01:21Z"), [
      { ...job("backup-bao-20261121-100100", "Succeeded"), finishedAt },
    ]);
    assert.equal(unreadable.createJob?.confirms, "backup-bao-20261121-100100");
  });

  test("catch-up: missed windows collapse into one run for the latest window", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    c = apply(c, plan(c, t("2026-11-21T10:01:30Z"), [job("backup-bao-20261121-100100", "Succeeded", ok("k"))]));
    const p = plan(c, t("2026-11-21T10:05:10Z"), [job("backup-bao-20261121-100100", "Succeeded", ok("k"))]);
    assert.equal(p.createJob?.name, "backup-bao-20261121-100500");
    assert.ok(p.events.some((e) => e.reason === "BackupCatchUp" && /3 missed/.test(e.message)));
  });

  /** A daily-scheduled cluster, observed, then given a manual trigger. */
  function triggered(phase = "Running"): OpenBaoCluster {
    const c = observed(cluster({ schedule: "0 3 * * *", phase }));
    c.metadata.annotations = { "openbao.org/trigger-backup": "now" };
    return c;
  }

  test("manual trigger: a Job now and the annotation cleared", () => {
    const c = triggered();
    const p = plan(c, t("2026-11-21T10:00:40Z"));
    assert.equal(p.createJob?.type, "manual");
    assert.equal(p.clearTrigger, true);
  });

  test("trigger while Upgrading: no Job, trigger kept, condition and event say why; runs once Running", () => {
    let c = triggered("Upgrading");
    const blocked = plan(c, t("2026-11-21T10:00:40Z"));
    assert.equal(blocked.createJob, undefined);
    assert.equal(blocked.clearTrigger, false);
    assert.equal(blocked.status?.operationLock ?? null, null);
    const backingUp = blocked.status?.conditions.find((x) => x.type === "BackingUp");
    assert.equal(backingUp?.reason, "BackupBlocked");
    assert.match(backingUp?.message ?? "", /Upgrading, not Running/);
    assert.ok(blocked.events.some((e) => e.reason === "BackupBlocked" && e.type === "Warning"));
    assert.equal(blocked.requeueAfterMs, 30_000);
    c = apply(c, blocked);
    assert.equal(plan(c, t("2026-11-21T10:00:50Z")).events.length, 0, "no repeated event while nothing changed");
    c.status = { ...c.status, phase: "Running" };
    const p = plan(c, t("2026-11-21T10:01:10Z"));
    assert.equal(p.createJob?.type, "manual");
    assert.equal(p.clearTrigger, true);
  });

  test("preflight: restore, foreign lock, missing Secret, running Job each block", () => {
    const c = observed();
    const at = t("2026-11-21T10:01:00Z");
    assert.match(
      plan(c, at, [], { restores: ["r1"] }).status?.conditions.find((x) => x.type === "BackingUp")?.message ?? "",
      /r1/,
    );
    const locked = structuredClone(c);
    locked.status = {
      ...locked.status,
      operationLock: { operation: "Upgrade", holder: "openbaocluster/upgrade", acquiredAt: "2026-11-21T09:00:00Z" },
    };
    const lp = plan(locked, at);
    assert.equal(lp.createJob, undefined);
    assert.match(lp.status?.conditions.find((x) => x.type === "BackingUp")?.message ?? "", /openbaocluster\/upgrade/);
    assert.equal(lp.status?.operationLock?.holder, "openbaocluster/upgrade", "a foreign lock is never touched");
    assert.match(
      plan(c, at, [], { missing: ["bao-tls-ca"] }).status?.conditions.find((x) => x.type === "BackingUp")?.message ??
        "",
      /bao-tls-ca/,
    );
    assert.equal(plan(c, at, [job("backup-bao-x", "Running")]).createJob, undefined);
  });

  test("operator crashed after the status write: the Job is created (same name) within the grace", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    const p = plan(c, t("2026-11-21T10:01:20Z"), []);
    assert.equal(p.createJob?.name, "backup-bao-20261121-100100");
    assert.equal(p.status, undefined, "nothing new to write");
  });

  describe("a trigger is honoured once across a crash between the status write and its removal", () => {
    const decidedAt = t("2026-11-21T10:00:40Z");
    /** The status write that started the manual Job, with the trigger left in place (the crash). */
    function crashedAfterStatusWrite(): { c: OpenBaoCluster; name: string } {
      const c = triggered();
      const started = plan(c, decidedAt);
      assert.equal(started.createJob?.trigger, "now", "the Job carries the value it answers");
      return { c: apply(c, started, false), name: started.createJob?.name ?? "" };
    }

    test("before the Job existed: the re-created Job answers the trigger, which is cleared", () => {
      const { c, name } = crashedAfterStatusWrite();
      const p = plan(c, t("2026-11-21T10:00:50Z"), []);
      assert.equal(p.createJob?.name, name, "the same Job, not a second one");
      assert.equal(p.createJob?.trigger, "now");
      assert.equal(p.clearTrigger, true);
      // Even if the removal fails again, the finished Job is recorded and nothing new starts.
      const done = plan(c, t("2026-11-21T10:01:30Z"), [{ ...job(name, "Succeeded", ok("k1")), trigger: "now" }]);
      assert.equal(done.recorded?.ok, true);
      assert.equal(done.createJob, undefined, "no second Job for the same trigger");
      assert.equal(done.clearTrigger, true);
      assert.ok(!done.events.some((e) => e.reason === "ManualBackupRequested"));
    });

    test("after the Job was created: the Job that answers the trigger clears it; no second Job", () => {
      const { c, name } = crashedAfterStatusWrite();
      const running = plan(c, t("2026-11-21T10:00:50Z"), [{ ...job(name, "Running"), trigger: "now" }]);
      assert.equal(running.createJob, undefined);
      assert.equal(running.clearTrigger, true);
      const done = plan(c, t("2026-11-21T10:01:30Z"), [{ ...job(name, "Succeeded", ok("k1")), trigger: "now" }]);
      assert.equal(done.status?.backup.lastRecordedJob, name);
      assert.equal(done.createJob, undefined, "recorded once, and the trigger not honoured again");
      assert.equal(done.clearTrigger, true);
    });

    test("a new trigger value set while the manual Job runs is kept and runs after it", () => {
      const c = triggered();
      const started = plan(c, decidedAt);
      const name = started.createJob?.name ?? "";
      const next = apply(c, started);
      next.metadata.annotations = { "openbao.org/trigger-backup": "again" };
      const running = plan(next, t("2026-11-21T10:00:50Z"), [{ ...job(name, "Running"), trigger: "now" }]);
      assert.equal(running.clearTrigger, false, "not the request this Job answers");
      const done = plan(next, t("2026-11-21T10:01:30Z"), [{ ...job(name, "Succeeded", ok("k1")), trigger: "now" }]);
      assert.equal(done.recorded?.ok, true);
      assert.equal(done.createJob?.type, "manual");
      assert.equal(done.createJob?.trigger, "again");
      assert.equal(done.clearTrigger, true);
    });

    test("a Job lost after the grace never ran: storage is asked, then the trigger is still honoured, once", () => {
      const { c, name } = crashedAfterStatusWrite();
      const lostAt = new Date(decidedAt.getTime() + maxJobCreateGraceMs + 1000);
      const p = plan(c, lostAt, []);
      assert.equal(p.createJob?.confirms, name, "a confirm Job looks for its backup first");
      assert.equal(p.clearTrigger, false, "the request is not answered yet");
      const confirming = apply(c, p, false);
      const confirm = p.createJob?.name ?? "";
      const done = plan(confirming, new Date(lostAt.getTime() + 20_000), [
        job(confirm, "Failed", failed("BackupNotFound")),
      ]);
      assert.equal(done.status?.backup.lastFailureReason, "JobLost");
      assert.equal(done.createJob?.type, "manual");
      assert.equal(done.createJob?.trigger, "now");
      assert.equal(done.clearTrigger, true);
    });
  });

  test("a manual trigger in the same second as a finished window's Job waits for the next second", () => {
    let c = observed();
    const window = plan(c, t("2026-11-21T10:01:00Z"));
    const windowJob = window.createJob?.name ?? "";
    assert.equal(windowJob, "backup-bao-20261121-100100");
    c = apply(c, window);
    const finished = [job(windowJob, "Succeeded", ok("k1"))];
    c = apply(c, plan(c, t("2026-11-21T10:01:00.500Z"), finished));
    c.metadata.annotations = { "openbao.org/trigger-backup": "now" };
    const same = plan(c, t("2026-11-21T10:01:00.800Z"), finished);
    assert.equal(same.createJob, undefined, "never adopts the window's Job as the manual one");
    assert.equal(same.recorded, undefined, "the window's result is not recorded twice");
    assert.equal(same.clearTrigger, false, "the request is kept");
    assert.equal(same.requeueAfterMs, 200);
    const next = plan(c, t("2026-11-21T10:01:01Z"), finished);
    assert.equal(next.createJob?.type, "manual");
    assert.equal(next.createJob?.name, "backup-bao-20261121-100101");
    assert.equal(next.clearTrigger, true);
  });

  test("trap 5: a Job that vanished, and whose backup storage does not hold, is recorded as lost and the lock released", () => {
    let c = triggered();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    assert.ok(c.status?.backup?.currentJob);
    const lostAt = new Date(t("2026-11-21T10:01:00Z").getTime() + maxJobCreateGraceMs + 1000);
    const p = plan(c, lostAt, []);
    assert.equal(p.recorded, undefined, "nothing is recorded before storage is asked");
    c = apply(c, p);
    const confirm = c.status?.backup?.currentJob?.confirm?.job ?? "";
    const done = plan(c, new Date(lostAt.getTime() + 30_000), [job(confirm, "Failed", failed("BackupNotFound"))]);
    assert.equal(done.createJob, undefined);
    assert.equal(done.status?.operationLock, null);
    assert.equal(done.status?.backup.lastFailureReason, "JobLost");
    assert.equal(done.status?.backup.consecutiveFailures, 1);
  });

  test("issue 18: a backup Job expects the last backup's size × 2 (BACKUP_SIZE_HINT); the first has no hint", () => {
    let c = observed();
    const first = plan(c, t("2026-11-21T10:01:00Z"));
    assert.equal(first.createJob?.sizeHint, undefined, "nothing known yet");
    c = apply(c, first);
    c = apply(c, plan(c, t("2026-11-21T10:01:30Z"), [job(first.createJob?.name ?? "", "Succeeded", ok("k1"))]));
    assert.equal(c.status?.backup?.lastBackupSize, 1234);
    const second = plan(c, t("2026-11-21T10:02:00Z"));
    assert.equal(second.createJob?.sizeHint, 1234 * sizeHintHeadroom);
  });

  describe("a Job that vanished is never created again (src/jobs/missing.ts)", () => {
    const decided = t("2026-11-21T10:01:00Z");
    function started(): { c: OpenBaoCluster; name: string } {
      let c = triggered();
      const p = plan(c, decided);
      c = apply(c, p);
      return { c, name: p.createJob?.name ?? "" };
    }

    test("seen in the cache, then gone within the grace: storage is asked (JobLost path), no second run", () => {
      const { c, name } = started();
      const p = plan(c, new Date(decided.getTime() + 40_000), [], { sightings: new Map([[name, "observed"]]) });
      assert.equal(p.createJob?.confirms, name, "a confirm Job, not the backup Job again");
      assert.ok(p.events.some((e) => e.reason === "BackupResultMissing"));
      assert.equal(p.status?.backup.currentJob?.confirm?.reason, "JobLost");
    });

    test("created by this process, not cached yet: waits, creates nothing; after the grace it is lost", () => {
      const { c, name } = started();
      const sightings = new Map<string, JobSighting>([[name, "created"]]);
      const wait = plan(c, new Date(decided.getTime() + 5000), [], { sightings });
      assert.equal(wait.createJob, undefined);
      assert.equal(wait.status, undefined, "nothing changes");
      assert.equal(wait.requeueAfterMs, maxJobCreateGraceMs - 5000);
      const late = plan(c, new Date(decided.getTime() + maxJobCreateGraceMs + 1), [], { sightings });
      assert.equal(late.createJob?.confirms, name);
    });

    test("unknown to this process (a new leader): created within the grace, as before", () => {
      const { c, name } = started();
      const p = plan(c, new Date(decided.getTime() + 40_000), []);
      assert.equal(p.createJob?.name, name);
      assert.equal(p.createJob?.confirms, undefined);
    });

    test("a 60 s Job TTL: the grace is 30 s, so a Job its TTL collected is never re-run by a new leader", () => {
      const grace = jobCreateGraceMs(60);
      assert.equal(grace, 30_000);
      const { c, name } = started();
      // The earliest a 60 s TTL can collect a Job is 60 s after it was created.
      const p = plan(c, new Date(decided.getTime() + 60_000), [], { jobCreateGraceMs: grace });
      assert.equal(p.createJob?.confirms, name, "looked for in storage, then recorded: never silent");
      const early = plan(c, new Date(decided.getTime() + 10_000), [], { jobCreateGraceMs: grace });
      assert.equal(early.createJob?.name, name, "a create that did not happen is still made");
    });

    test("a confirm Job seen and then gone is not created again either: the loss is recorded", () => {
      const { c, name } = started();
      const lostAt = new Date(decided.getTime() + maxJobCreateGraceMs + 1000);
      const p = plan(c, lostAt, []);
      const confirming = apply(c, p);
      const confirm = p.createJob?.name ?? "";
      const gone = plan(confirming, new Date(lostAt.getTime() + 10_000), [], {
        sightings: new Map([[confirm, "observed"]]),
      });
      assert.equal(gone.createJob, undefined);
      assert.equal(gone.status?.backup.lastFailureReason, "JobLost");
      assert.match(gone.status?.backup.lastFailureMessage ?? "", new RegExp(`${name}.*${confirm}.*disappeared too`));
    });
  });

  describe("defect 6: a Job whose result was lost is recorded as what storage holds", () => {
    const decided = t("2026-11-21T10:01:00Z");
    const lostAt = new Date(decided.getTime() + maxJobCreateGraceMs + 1000);
    function started(): { c: OpenBaoCluster; name: string; keyId: string } {
      let c = triggered();
      const p = plan(c, decided);
      c = apply(c, p);
      const keyId = p.createJob?.keyId ?? "";
      assert.match(keyId, /^[0-9a-f]{8}$/, "the key id is decided with the Job");
      assert.equal(c.status?.backup?.currentJob?.keyId, keyId, "and recorded with it");
      return { c, name: p.createJob?.name ?? "", keyId };
    }
    function lost(): { c: OpenBaoCluster; name: string; keyId: string; confirm: string } {
      const s = started();
      const p = plan(s.c, lostAt, []);
      assert.equal(p.recorded, undefined, "not recorded as lost");
      assert.equal(p.createJob?.confirms, s.name);
      assert.equal(p.createJob?.keyId, s.keyId);
      assert.equal(p.createJob?.name, `confirm-${s.name}`);
      assert.equal(p.createJob?.sizeHint, undefined, "a confirm Job uploads nothing");
      assert.ok(
        p.events.some((e) => e.type === "Warning" && e.reason === "BackupResultMissing" && e.message.includes(s.keyId)),
      );
      const c = apply(s.c, p);
      assert.equal(c.status?.operationLock?.holder, "openbaocluster/backup", "the lock is kept while storage is asked");
      return { ...s, c, confirm: p.createJob?.name ?? "" };
    }

    test("a stored backup found by the confirm Job is recorded as a success, with the backup's facts", () => {
      const { c, name, confirm } = lost();
      const p = plan(c, new Date(lostAt.getTime() + 20_000), [job(confirm, "Succeeded", ok("ns/bao/k.snap"))]);
      assert.equal(p.recorded?.ok, true);
      assert.equal(p.recorded?.durationMs, undefined, "the confirm's duration is not the backup's");
      assert.equal(p.status?.backup.lastBackupName, "ns/bao/k.snap");
      assert.equal(p.status?.backup.lastBackupSHA256, "a".repeat(64));
      assert.equal(p.status?.backup.lastRecordedJob, name, "recorded as the lost Job");
      assert.equal(p.status?.backup.consecutiveFailures, 0);
      assert.equal(p.status?.backup.currentJob, null);
      assert.equal(p.status?.operationLock, null);
      assert.ok(p.events.some((e) => e.reason === "BackupSucceeded" && e.message.includes(confirm)));
      assert.ok(!p.events.some((e) => e.reason === "BackupFailed" || e.reason === "LockRecovered"));
    });

    test("the same loss always gives the same record: replanned from the same state, the same confirm Job", () => {
      const s = started();
      const a = plan(s.c, lostAt, []);
      const b = plan(s.c, new Date(lostAt.getTime() + 5000), []);
      assert.equal(a.createJob?.name, b.createJob?.name);
      const { c, confirm } = lost();
      const notVisible = plan(c, new Date(lostAt.getTime() + 1000), []);
      assert.equal(
        notVisible.createJob?.name,
        confirm,
        "a confirm Job not visible yet is re-created, not a second one",
      );
      assert.equal(notVisible.recorded, undefined);
    });

    test("a confirm Job that is itself lost records the loss, saying so", () => {
      const { c, confirm } = lost();
      const p = plan(c, new Date(lostAt.getTime() + maxJobCreateGraceMs + 1000), []);
      assert.equal(p.status?.backup.lastFailureReason, "JobLost");
      assert.match(
        p.status?.backup.lastFailureMessage ?? "",
        new RegExp(`and Job ${confirm} that was to look for its backup in storage disappeared too`),
      );
    });

    test("storage that cannot be asked: JobLost, with the confirm Job's reason", () => {
      const { c, confirm } = lost();
      const p = plan(c, new Date(lostAt.getTime() + 20_000), [job(confirm, "Failed", failed("StorageAuthDenied"))]);
      assert.equal(p.status?.backup.lastFailureReason, "JobLost");
      assert.match(
        p.status?.backup.lastFailureMessage ?? "",
        /could not look for its backup in storage: StorageAuthDenied/,
      );
    });

    test("a Job that succeeded but whose Pod (and report) is gone is confirmed in storage too", () => {
      const s = started();
      const gone: ObservedJob = { ...job(s.name, "Succeeded"), podTerminated: false };
      const waiting = plan(s.c, t("2026-11-21T10:02:40Z"), [gone]);
      assert.equal(waiting.recorded, undefined, "the report may still arrive");
      const p = plan(s.c, new Date(t("2026-11-21T10:02:30Z").getTime() + resultGraceMs + 1000), [gone]);
      assert.equal(p.recorded, undefined, "not recorded as 'no readable result'");
      assert.equal(p.createJob?.confirms, s.name);
    });

    test("a Job from before key ids (none recorded) is recorded as lost at once, saying why", () => {
      const s = started();
      const current = s.c.status?.backup?.currentJob;
      assert.ok(current);
      delete current.keyId;
      const p = plan(s.c, lostAt, []);
      assert.equal(p.status?.backup.lastFailureReason, "JobLost");
      assert.match(p.status?.backup.lastFailureMessage ?? "", /no key id/);
    });
  });

  test("trap 5: spec.backup removed mid-run keeps the lock until the Job ends, then releases it", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    delete c.spec?.backup;
    const running = plan(c, t("2026-11-21T10:01:10Z"), [job("backup-bao-20261121-100100", "Running")]);
    assert.equal(running.createJob, undefined);
    assert.equal((running.status?.operationLock ?? c.status?.operationLock)?.holder, "openbaocluster/backup");
    c = apply(c, running);
    const ended = plan(c, t("2026-11-21T10:02:00Z"), [job("backup-bao-20261121-100100", "Succeeded", ok("k"))]);
    assert.equal(ended.status?.operationLock, null);
    assert.equal(ended.status?.backup.nextScheduledBackup, undefined);
  });

  test("a Job re-created after a crash, whose lock was freed meanwhile, takes the lock again", () => {
    let c = observed();
    c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
    c.status = { ...c.status, operationLock: null };
    const p = plan(c, t("2026-11-21T10:01:20Z"), []);
    assert.equal(p.createJob?.name, "backup-bao-20261121-100100");
    assert.equal(p.status?.operationLock?.holder, "openbaocluster/backup", "a Job never runs without its lock");
  });

  describe("defect 4: a restore took the lock over (overrideOperationLock)", () => {
    const restoreLock = {
      operation: "Restore" as const,
      holder: "openbaorestore/urgent" as const,
      acquiredAt: "2026-11-21T10:01:10Z",
    };
    function displaced(): OpenBaoCluster {
      let c = observed();
      c = apply(c, plan(c, t("2026-11-21T10:01:00Z")));
      return { ...c, status: { ...c.status, operationLock: restoreLock } };
    }

    test("the running Job is deleted and recorded once as LockOverridden; the restore keeps the lock", () => {
      let c = displaced();
      const name = "backup-bao-20261121-100100";
      const p = plan(c, t("2026-11-21T10:01:11Z"), [job(name, "Running")], { restores: ["urgent"] });
      assert.equal(p.deleteJob, name);
      assert.equal(p.recorded?.ok, false);
      assert.equal(p.status?.backup.lastFailureReason, "LockOverridden");
      assert.equal(p.status?.backup.consecutiveFailures, 1);
      assert.equal(p.status?.backup.currentJob, null);
      assert.deepEqual(p.status?.operationLock, restoreLock);
      assert.ok(!p.events.some((e) => e.reason === "LockRecovered"), "nothing was released");
      assert.ok(
        p.events.some(
          (e) => e.type === "Warning" && e.reason === "BackupFailed" && /OpenBaoRestore urgent/.test(e.message),
        ),
      );
      assert.equal(p.createJob, undefined, "and nothing new starts under the restore's lock");
      c = apply(c, p);
      const again = plan(c, t("2026-11-21T10:01:12Z"), [], { restores: ["urgent"] });
      assert.equal(again.recorded, undefined);
      assert.equal(again.deleteJob, undefined);
    });

    test("a Job not visible yet is not re-created: recorded as displaced, never as lost", () => {
      const p = plan(displaced(), t("2026-11-21T10:01:11Z"), [], { restores: ["urgent"] });
      assert.equal(p.createJob, undefined);
      assert.equal(p.deleteJob, undefined, "never deleted by a name read from status (it may be someone else's)");
      assert.equal(p.status?.backup.lastFailureReason, "LockOverridden");
    });

    test("a Job that failed (stopped) keeps its logs; its failure is the override's", () => {
      const name = "backup-bao-20261121-100100";
      const p = plan(displaced(), t("2026-11-21T10:01:20Z"), [job(name, "Failed", failed("Interrupted"))], {
        restores: ["urgent"],
      });
      assert.equal(p.deleteJob, undefined);
      assert.equal(p.status?.backup.lastFailureReason, "LockOverridden");
    });
  });

  test("a leftover backup lock with no Job in flight is released", () => {
    const c = observed();
    c.status = {
      ...c.status,
      operationLock: { operation: "Backup", holder: "openbaocluster/backup", acquiredAt: "2026-11-21T09:00:00Z" },
    };
    const p = plan(c, t("2026-11-21T10:00:40Z"));
    assert.equal(p.status?.operationLock, null);
  });

  test("suspend stops scheduled runs, not manual ones", () => {
    const c = cluster({ annotations: { "openbao.org/trigger-backup": "1" } });
    if (c.spec?.backup) c.spec.backup.suspend = true;
    const p = plan(c, t("2026-11-21T10:05:00Z"));
    assert.equal(p.status?.backup.nextScheduledBackup, undefined);
    assert.equal(p.createJob?.type, "manual");
  });

  test("an invalid time zone is reported on BackupHealthy, with an event, and schedules nothing", () => {
    const c = cluster();
    if (c.spec?.backup) c.spec.backup.timeZone = "Mars/Olympus";
    const p = plan(c, t("2026-11-21T10:05:00Z"));
    assert.equal(p.createJob, undefined);
    assert.equal(p.status?.conditions.find((x) => x.type === "BackupHealthy")?.reason, "InvalidSchedule");
    assert.ok(p.events.some((e) => e.reason === "ScheduleInvalid"));
  });

  test("trap 8: a 63-character cluster name gives a valid Job name", () => {
    const name = "a".repeat(63);
    const c = observed(cluster({ name, annotations: { "openbao.org/trigger-backup": "1" } }));
    const p = plan(c, t("2026-11-21T10:00:40Z"));
    const jobName = p.createJob?.name ?? "";
    assert.ok(jobName.length <= 63, jobName);
    assert.match(jobName, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  describe("pre-upgrade snapshots", () => {
    function upgrading(): OpenBaoCluster {
      const c = observed(cluster({ schedule: "0 3 * * *" }));
      if (c.spec) {
        c.spec.version = "2.5.0";
        c.spec.upgrade = { preUpgradeSnapshot: true };
      }
      return c;
    }

    test("a version bump runs one pre-upgrade Job; success makes PreUpgradeSnapshotReady True", () => {
      let c = upgrading();
      const p = plan(c, t("2026-11-21T10:01:00Z"));
      assert.equal(p.createJob?.type, "pre-upgrade");
      assert.equal(p.createJob?.targetVersion, "2.5.0");
      assert.equal(p.status?.backup.preUpgrade?.attempts, 1);
      c = apply(c, p);
      assert.equal(plan(c, t("2026-11-21T10:01:05Z"), [job(p.createJob?.name ?? "", "Running")]).createJob, undefined);
      c = apply(
        c,
        plan(c, t("2026-11-21T10:02:00Z"), [
          job(p.createJob?.name ?? "", "Succeeded", ok("openbao/bao/pre-upgrade-x.snap")),
        ]),
      );
      const ready = c.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady");
      assert.equal(ready?.status, "True");
      assert.equal(c.status?.backup?.preUpgrade?.key, "openbao/bao/pre-upgrade-x.snap");
      assert.equal(plan(c, t("2026-11-21T10:03:00Z")).createJob, undefined, "no second pre-upgrade Job");
    });

    /** Runs attempts until none is left, each failing; returns the cluster and the Job names. */
    function failAll(start: OpenBaoCluster, from: Date): { c: OpenBaoCluster; names: string[]; at: Date } {
      let c = start;
      let at = from;
      const names: string[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        const p = plan(c, at);
        assert.equal(p.createJob?.type, "pre-upgrade", `attempt ${attempt}`);
        names.push(p.createJob?.name ?? "");
        c = apply(c, p);
        const end = new Date(at.getTime() + 30_000);
        c = apply(
          c,
          plan(
            c,
            end,
            names.map((n) => ({ ...job(n, "Failed", failed("SnapshotFailed")), finishedAt: end })),
          ),
        );
        at = new Date(Date.parse(c.status?.backup?.preUpgrade?.nextAttemptTime ?? end.toISOString()));
      }
      return { c, names, at };
    }

    test("three failures: False/PreUpgradeBackupFailed and no fourth Job", () => {
      const { c, names, at } = failAll(upgrading(), t("2026-11-21T10:01:00Z"));
      assert.equal(new Set(names).size, 3, "each attempt has its own Job name");
      const ready = c.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady");
      assert.equal(ready?.status, "False");
      assert.equal(ready?.reason, "PreUpgradeBackupFailed");
      assert.equal(c.status?.backup?.preUpgrade?.nextAttemptTime, undefined, "no next attempt is announced");
      assert.notEqual(plan(c, new Date(at.getTime() + 86_400_000)).createJob?.type, "pre-upgrade", "no fourth attempt");
    });

    test("defect 2: a failed attempt is retried after a backoff shown in status, not in the same pass", () => {
      let c = upgrading();
      const first = plan(c, t("2026-11-21T10:01:00Z"));
      c = apply(c, first);
      const end = t("2026-11-21T10:01:30Z");
      const after = plan(c, end, [
        { ...job(first.createJob?.name ?? "", "Failed", failed("StorageFailed")), finishedAt: end },
      ]);
      assert.equal(after.createJob, undefined, "no second attempt in the pass that recorded the failure");
      const next = after.status?.backup.preUpgrade?.nextAttemptTime ?? "";
      assert.ok(Date.parse(next) >= end.getTime() + 60_000, `next attempt at least a minute later: ${next}`);
      c = apply(c, after);
      const ready = c.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady");
      assert.match(ready?.message ?? "", new RegExp(`next attempt at ${next}`));
      const early = plan(c, new Date(Date.parse(next) - 1000));
      assert.equal(early.createJob, undefined, "not before the announced time");
      assert.equal(early.requeueAfterMs, 1000, "woken at the announced time");
      assert.equal(plan(c, new Date(Date.parse(next))).createJob?.type, "pre-upgrade");
      // Three attempts span minutes, not seconds: a storage blip of a few minutes does not use them all.
      const { names, at } = failAll(upgrading(), t("2026-11-21T10:01:00Z"));
      assert.equal(names.length, 3);
      assert.ok(at.getTime() - t("2026-11-21T10:01:00Z").getTime() >= 10 * 60_000, `three attempts over ≥10 min`);
    });

    test("defect 1: a rollback point belongs to its upgrade; reverting clears it, and a new upgrade takes a new one", () => {
      let c = upgrading();
      const first = plan(c, t("2026-11-21T10:01:00Z"));
      c = apply(c, first);
      const done = t("2026-11-21T10:02:00Z");
      c = apply(
        c,
        plan(c, done, [
          { ...job(first.createJob?.name ?? "", "Succeeded", ok("openbao/bao/old.snap")), finishedAt: done },
        ]),
      );
      assert.equal(c.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady")?.status, "True");
      // Reverted before the upgrade happened: no upgrade pending, the rollback point is not kept as current.
      if (c.spec) c.spec.version = "2.4.0";
      c = apply(
        c,
        plan(c, t("2026-11-22T10:00:00Z"), [job(first.createJob?.name ?? "", "Succeeded", ok("openbao/bao/old.snap"))]),
      );
      assert.ok(c.status?.backup?.preUpgrade?.endedAt, "the rollback point is kept as history of an ended upgrade");
      assert.equal(
        c.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady")?.reason,
        "PreUpgradeBackupNotRequired",
      );
      // Days later, the same upgrade again: a fresh snapshot, under a Job name the old Job cannot answer to.
      if (c.spec) c.spec.version = "2.5.0";
      const window = c.status?.backup?.currentJob?.name ?? "";
      const again = plan(c, t("2026-11-25T10:00:00Z"), [
        job(first.createJob?.name ?? "", "Succeeded", ok("openbao/bao/old.snap")),
        job(window, "Succeeded", ok("openbao/bao/window.snap")),
      ]);
      const ready = again.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady");
      assert.notEqual(ready?.status, "True", "the old snapshot is not this upgrade's rollback point");
      assert.equal(again.createJob?.type, "pre-upgrade");
      assert.notEqual(again.createJob?.name, first.createJob?.name, "never adopts the old Job");
    });

    test("defect 1: two upgrades begun within one second still get different Job names", () => {
      let c = upgrading();
      c.metadata.generation = 2;
      const at = t("2026-11-21T10:01:00Z");
      const first = plan(c, at);
      c = apply(c, first);
      c = apply(c, plan(c, at, [{ ...job(first.createJob?.name ?? "", "Succeeded", ok("k1")), finishedAt: at }]));
      if (c.spec) c.spec.version = "2.4.0";
      c.metadata.generation = 3;
      c = apply(c, plan(c, at, [job(first.createJob?.name ?? "", "Succeeded", ok("k1"))]));
      if (c.spec) c.spec.version = "2.5.0";
      c.metadata.generation = 4;
      const second = plan(c, at, [job(first.createJob?.name ?? "", "Succeeded", ok("k1"))]);
      assert.equal(second.createJob?.type, "pre-upgrade");
      assert.notEqual(second.createJob?.name, first.createJob?.name);
    });

    test("defect 1: Failed is cleared by going back to the running version", () => {
      let { c } = failAll(upgrading(), t("2026-11-21T10:01:00Z"));
      if (c.spec) c.spec.version = "2.4.0";
      c = apply(c, plan(c, t("2026-11-21T12:00:00Z")));
      if (c.spec) c.spec.version = "2.5.0";
      const p = plan(c, t("2026-11-21T12:01:00Z"));
      assert.equal(p.createJob?.type, "pre-upgrade", "a new upgrade gets new attempts");
      assert.equal(p.status?.backup.preUpgrade?.attempts, 1);
    });

    test("defect 4: a restore overriding the Upgrade lock stops the pre-upgrade Job; the attempt counts as failed", () => {
      let c = upgrading();
      const upgradeLock = {
        operation: "Upgrade" as const,
        holder: "openbaocluster/upgrade" as const,
        acquiredAt: "2026-11-21T10:00:50Z",
      };
      c = { ...c, status: { ...c.status, phase: "Upgrading" as const, operationLock: upgradeLock } };
      const p = plan(c, t("2026-11-21T10:01:00Z"));
      const name = p.createJob?.name ?? "";
      c = apply(c, p);
      c = {
        ...c,
        status: {
          ...c.status,
          operationLock: { operation: "Restore", holder: "openbaorestore/urgent", acquiredAt: "2026-11-21T10:01:05Z" },
        },
      };
      const stopped = plan(c, t("2026-11-21T10:01:06Z"), [job(name, "Running")], { restores: ["urgent"] });
      assert.equal(stopped.deleteJob, name);
      assert.equal(stopped.status?.backup.preUpgrade?.phase, "Pending");
      assert.ok(
        stopped.status?.backup.preUpgrade?.nextAttemptTime,
        "retried after the backoff, like any failed attempt",
      );
      assert.equal(stopped.status?.operationLock?.holder, "openbaorestore/urgent");
      assert.ok(
        stopped.events.some((e) => e.reason === "PreUpgradeBackupFailed" && /overrideOperationLock/.test(e.message)),
      );
    });

    test("defect 3: under the lifecycle operator's Upgrade lock the snapshot runs, and the lock stays the upgrade's", () => {
      let c = upgrading();
      const upgradeLock = {
        operation: "Upgrade" as const,
        holder: "openbaocluster/upgrade" as const,
        acquiredAt: "2026-11-21T10:00:50Z",
        message: "upgrade to 2.5.0",
      };
      c = { ...c, status: { ...c.status, phase: "Upgrading" as const, operationLock: upgradeLock } };
      const p = plan(c, t("2026-11-21T10:01:00Z"));
      assert.equal(p.createJob?.type, "pre-upgrade", `blocked: ${p.blocked.join(", ")}`);
      assert.deepEqual(p.status?.operationLock, upgradeLock, "the snapshot runs under the Upgrade lock, unchanged");
      c = apply(c, p);
      const end = t("2026-11-21T10:02:00Z");
      const rec = plan(c, end, [
        { ...job(p.createJob?.name ?? "", "Succeeded", ok("openbao/bao/pu.snap")), finishedAt: end },
      ]);
      assert.deepEqual(rec.status?.operationLock, upgradeLock, "recording the result leaves the Upgrade lock alone");
      c = apply(c, rec);
      assert.equal(c.status?.conditions?.find((x) => x.type === "PreUpgradeSnapshotReady")?.status, "True");
      // A scheduled or manual backup stays blocked by the Upgrade lock.
      c.metadata.annotations = { "openbao.org/trigger-backup": "now" };
      const manual = plan(c, t("2026-11-21T10:03:00Z"));
      assert.equal(manual.createJob, undefined);
      assert.ok(manual.blocked.includes("OperationLockHeld") || manual.blocked.includes("UpgradeInProgress"));
    });
  });
});
