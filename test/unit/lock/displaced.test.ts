/**
 * What an override displaces (src/lock/displaced.ts) and how the running backup work is read
 * from the caches (src/lock/work.ts), with a fixed clock.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { OpenBaoCluster } from "../../../src/api/types.ts";
import type { CachedJob, CachedPod } from "../../../src/jobs/result.ts";
import {
  type BackupWork,
  displacedBy,
  displacedFailure,
  jobsToStop,
  stopGraceMs,
  stopRecheckMs,
  stuckRecheckMs,
  waitForBackupWork,
} from "../../../src/lock/displaced.ts";
import { observeBackupWork } from "../../../src/lock/work.ts";

const since = new Date("2026-11-21T10:00:00Z");
const at = (seconds: number): Date => new Date(since.getTime() + seconds * 1000);
const input = (override: boolean, seconds: number) => ({
  cluster: "bao",
  override,
  since,
  deadlineSeconds: 600,
  now: at(seconds),
});
const idle: BackupWork = { inFlight: undefined, runningJobs: [], activePods: 0 };
const busy: BackupWork = { inFlight: "backup-bao-1", runningJobs: ["backup-bao-1", "backup-bao-0"], activePods: 2 };

describe("waitForBackupWork", () => {
  test("nothing runs: clear", () => {
    assert.deepEqual(waitForBackupWork(idle, input(true, 0)), { kind: "clear" });
    assert.deepEqual(waitForBackupWork(idle, input(false, 0)), { kind: "clear" });
  });

  test("with override: stop the running Jobs and wait, re-checking soon", () => {
    const v = waitForBackupWork(busy, input(true, 0));
    assert.equal(v.kind, "wait");
    assert.ok(v.kind === "wait");
    assert.deepEqual([...v.stop].sort(), ["backup-bao-0", "backup-bao-1"]);
    assert.equal(v.recheckMs, stopRecheckMs);
    assert.match(v.message, /spec\.overrideOperationLock\): stopping backup Job backup-bao-1, backup-bao-0 \(2 Pods\)/);
  });

  test("without override: wait, stop nothing", () => {
    const v = waitForBackupWork(busy, input(false, 0));
    assert.ok(v.kind === "wait");
    assert.deepEqual(v.stop, []);
    assert.match(v.message, /waiting for backup Job .* to end before the restore starts/);
  });

  test("a Job in flight but not seen yet is waited for, never deleted by a name read from status", () => {
    const v = waitForBackupWork({ inFlight: "backup-bao-2", runningJobs: [], activePods: 0 }, input(true, 0));
    assert.ok(v.kind === "wait");
    assert.deepEqual(v.stop, []);
    assert.match(v.message, /backup Job backup-bao-2/);
    assert.deepEqual(jobsToStop({ inFlight: "x", runningJobs: ["y", "y"], activePods: 0 }), ["y"]);
  });

  test("Pods of a deleted Job still stopping are waited for", () => {
    const v = waitForBackupWork({ inFlight: undefined, runningJobs: [], activePods: 1 }, input(true, 5));
    assert.ok(v.kind === "wait");
    assert.match(v.message, /1 Pod of a stopped backup Job/);
  });

  test("bounded by the backup Job deadline plus the stop grace; re-checked less often once stuck", () => {
    const limit = 600 + stopGraceMs / 1000;
    const late = waitForBackupWork(busy, input(true, stopGraceMs / 1000 + 1));
    assert.ok(late.kind === "wait");
    assert.equal(late.recheckMs, stuckRecheckMs);
    const last = waitForBackupWork(busy, input(true, limit - 1));
    assert.ok(last.kind === "wait");
    assert.equal(last.recheckMs, 1000, "woken exactly at the bound");
    const over = waitForBackupWork(busy, input(false, limit));
    assert.equal(over.kind, "overdue");
    assert.ok(over.kind === "overdue");
    assert.match(
      over.message,
      /still runs 720 s after the restore took the operation lock of cluster bao.*starting the restore anyway/,
    );
  });
});

describe("the backup side", () => {
  test("a restore holding the lock displaces the Job in flight; other holders do not", () => {
    assert.equal(displacedBy({ operation: "Restore", holder: "openbaorestore/r1", acquiredAt: "x" }), "r1");
    assert.equal(displacedBy({ operation: "Upgrade", holder: "openbaocluster/upgrade", acquiredAt: "x" }), undefined);
    assert.equal(displacedBy(null), undefined);
  });

  test("the failure names the restore and the override", () => {
    const f = displacedFailure("backup-bao-1", "r1");
    assert.equal(f.reason, "LockOverridden");
    assert.match(
      f.message,
      /OpenBaoRestore r1 took the operation lock \(spec\.overrideOperationLock\) while Job backup-bao-1 ran/,
    );
  });
});

describe("observeBackupWork", () => {
  const cluster: OpenBaoCluster = {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: "bao", namespace: "openbao", uid: "uid-1" },
    status: { backup: { currentJob: { name: "backup-bao-1", type: "manual", createdAt: "x" } } },
  };
  const job = (name: string, extra: { owner?: string; done?: boolean; backupType?: string } = {}): CachedJob =>
    ({
      metadata: {
        name,
        namespace: "openbao",
        labels: {
          "app.kubernetes.io/component": "backup",
          "openbao.org/cluster": "bao",
          ...(extra.backupType === "" ? {} : { "openbao.org/backup-type": extra.backupType ?? "manual" }),
        },
        ownerReferences: [
          {
            apiVersion: "openbao.org/v1alpha1",
            kind: "OpenBaoCluster",
            name: "bao",
            uid: extra.owner ?? "uid-1",
            controller: true,
          },
        ],
      },
      status: extra.done
        ? { conditions: [{ type: "Complete", status: "True", lastTransitionTime: "2026-11-21T10:00:00Z" }] }
        : {},
    }) as CachedJob;
  const pod = (jobName: string, phase: string, cluster = "bao", component = "backup"): CachedPod =>
    ({
      metadata: {
        name: `${jobName}-x`,
        namespace: "openbao",
        labels: { "job-name": jobName, "app.kubernetes.io/component": component, "openbao.org/cluster": cluster },
      },
      status: { phase },
    }) as CachedPod;

  test("running owned backup Jobs, and every backup Pod of the cluster still running, Job or not", () => {
    const work = observeBackupWork(
      cluster,
      [
        job("backup-bao-1"),
        job("backup-bao-0", { done: true }),
        job("backup-other", { owner: "uid-2" }),
        job("restore-like", { backupType: "" }),
      ],
      [
        pod("backup-bao-1", "Running"),
        pod("backup-bao-deleted", "Running"),
        pod("backup-bao-0", "Succeeded"),
        pod("backup-other", "Running", "other"),
        pod("restore-bao-x", "Running", "bao", "restore"),
      ],
    );
    assert.deepEqual(work, { inFlight: "backup-bao-1", runningJobs: ["backup-bao-1"], activePods: 2 });
  });
});
