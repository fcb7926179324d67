/**
 * Hostile termination messages (issue 9): whatever a backup Pod leaves in its terminated
 * state — 1 MiB of text, not JSON, JSON of the wrong shape, extra fields, nothing — the
 * operator records the Job once as failed with a clear reason, clears `currentJob`, releases
 * the lock, and never copies the raw text into status or Events beyond a bounded, sanitized
 * excerpt of the executor's own `message` field.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { controlCharacterPattern, jsRegExp } from "../../../src/api/patterns.ts";
import type { OpenBaoCluster } from "../../../src/api/types.ts";
import { planBackup } from "../../../src/backup/plan.ts";
import { maxReportedMessageChars, parseResultLine } from "../../../src/executor/result.ts";
import { executorContainerName } from "../../../src/jobs/executor-job.ts";
import { type CachedJob, type CachedPod, observeJob, terminationMessage } from "../../../src/jobs/result.ts";

/** A marker that must never reach status or an Event when it is outside `message`. */
const marker = "RAW-TERMINATION-TEXT-7f3a";
const jobName = "backup-bao-20261121-100100";
const sha = "b".repeat(64);

const hostileMessages: [string, string, "Succeeded" | "Failed"][] = [
  ["1 MiB of text", `${marker} ${"x".repeat(1024 * 1024)}`, "Succeeded"],
  [
    "1 MiB of valid-looking JSON",
    JSON.stringify({ ok: true, key: "k.snap", pad: `${marker}${"y".repeat(1 << 20)}` }),
    "Succeeded",
  ],
  ["not JSON", `panic: ${marker} at line 1`, "Failed"],
  ["HTML", `<html><body>${marker}</body></html>`, "Succeeded"],
  ["a JSON string", JSON.stringify(marker), "Succeeded"],
  ["a JSON array", JSON.stringify([{ ok: true, key: marker }]), "Succeeded"],
  ["JSON null", "null", "Failed"],
  ["ok as a string", JSON.stringify({ ok: "true", key: `${marker}.snap` }), "Succeeded"],
  ["ok true with a numeric key", JSON.stringify({ ok: true, key: 42, size: "big", sha256: marker }), "Succeeded"],
  [
    "ok true with a key holding control characters",
    JSON.stringify({ ok: true, key: `a\u001b[2J${marker}` }),
    "Succeeded",
  ],
  ["truncated JSON", `{"ok":true,"key":"${marker}`, "Succeeded"],
  ["empty", "", "Failed"],
  ["whitespace only", " \n\t ", "Succeeded"],
];

function cachedJob(phase: "Succeeded" | "Failed"): CachedJob {
  const now = "2026-11-21T10:01:30Z";
  return {
    metadata: { name: jobName, ownerReferences: [{ uid: "uid-1", controller: true }] },
    status: {
      completionTime: phase === "Succeeded" ? now : undefined,
      conditions: [
        phase === "Succeeded"
          ? { type: "Complete", status: "True", lastTransitionTime: now }
          : { type: "Failed", status: "True", reason: "BackoffLimitExceeded", lastTransitionTime: now },
      ],
    },
  } as CachedJob;
}

function podWith(message: string | undefined, finishedAt = "2026-11-21T10:01:29Z"): CachedPod {
  return {
    metadata: { name: `${jobName}-abcde` },
    status: {
      containerStatuses: [{ name: executorContainerName, state: { terminated: { exitCode: 0, finishedAt, message } } }],
    },
  } as CachedPod;
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
      operationLock: {
        operation: "Backup",
        holder: "openbaocluster/backup",
        acquiredAt: "2026-11-21T10:01:00Z",
      },
    },
  } as OpenBaoCluster;
}

function record(message: string | undefined, phase: "Succeeded" | "Failed") {
  const observed = observeJob(cachedJob(phase), [podWith(message)]);
  return planBackup({
    cluster: clusterInFlight(),
    jobs: [observed],
    activeRestores: [],
    missingSecrets: [],
    now: new Date("2026-11-21T10:01:31Z"),
    defaultImage: "img:1",
  });
}

const controls = jsRegExp(controlCharacterPattern);

describe("a hostile termination message is a failed Job with a clear reason", () => {
  for (const [what, message, phase] of hostileMessages) {
    test(`${what} (Job ${phase})`, () => {
      const plan = record(message, phase);
      const backup = plan.status?.backup;
      assert.ok(backup, "the result is recorded");
      assert.equal(backup.currentJob, null, "currentJob cleared");
      assert.equal(plan.status?.operationLock, null, "lock released");
      assert.equal(backup.lastRecordedJob, jobName);
      assert.equal(backup.consecutiveFailures, 1);
      assert.equal(backup.lastBackupName, undefined, "no snapshot recorded");
      assert.equal(plan.recorded?.ok, false);
      assert.equal(backup.lastFailureReason, phase === "Failed" ? "BackoffLimitExceeded" : "JobFailed");
      assert.equal(
        backup.lastFailureMessage,
        phase === "Succeeded"
          ? `Job ${jobName} succeeded but left no readable result`
          : `Job ${jobName} failed (BackoffLimitExceeded) without a readable result`,
      );
      const written = JSON.stringify({ status: plan.status, events: plan.events });
      assert.ok(!written.includes(marker), "the raw message is not copied");
      assert.ok(plan.events.some((e) => e.type === "Warning" && e.reason === "BackupFailed"));
    });
  }

  test("the executor's own failure line: reason and message are used, extra fields ignored", () => {
    const line = JSON.stringify({
      v: 1,
      mode: "backup",
      ok: false,
      exitCode: 5,
      reason: "StorageUnreachable",
      message: "connect ECONNREFUSED 127.0.0.1:9",
      extra: marker,
      retention: { deleted: 3, failed: 0, note: marker },
    });
    const plan = record(line, "Failed");
    assert.equal(plan.status?.backup.lastFailureReason, "StorageUnreachable");
    assert.equal(plan.status?.backup.lastFailureMessage, "connect ECONNREFUSED 127.0.0.1:9");
    assert.equal(plan.status?.backup.currentJob, null);
    assert.ok(!JSON.stringify(plan).includes(marker));
  });

  test("a failure message with terminal escapes, bidi overrides, a token and 1 MiB: sanitized and bounded", () => {
    const token = `hvs.${"A".repeat(40)}`;
    const message = `bad\u001b[2J\u001b]0;owned\u0007 \u202eevil\r\nline ${token} ${"z".repeat(1 << 20)}`;
    // Too large as a whole line: unreadable, nothing copied.
    assert.equal(parseResultLine(JSON.stringify({ ok: false, reason: "X", message })), undefined);
    // Within the read limit: sanitized, redacted and cut.
    const line = JSON.stringify({ ok: false, reason: "SnapshotFailed", message: message.slice(0, 4000) });
    const plan = record(line, "Failed");
    const recorded = plan.status?.backup.lastFailureMessage ?? "";
    assert.ok(recorded.startsWith("bad"), recorded.slice(0, 40));
    assert.doesNotMatch(recorded, controls);
    assert.ok(!recorded.includes("\u202e"));
    assert.ok(!recorded.includes(token), "token-shaped text redacted");
    assert.ok(recorded.length <= maxReportedMessageChars + 1, `${recorded.length} chars`);
    for (const e of plan.events) {
      assert.doesNotMatch(e.message, controls);
      assert.ok(e.message.length <= 1024);
    }
  });

  test("a wrong-typed reason falls back to the Job's reason; a wrong-typed message to the generic one", () => {
    const line = JSON.stringify({ ok: false, reason: "not a code!", message: { nested: marker } });
    const plan = record(line, "Failed");
    assert.equal(plan.status?.backup.lastFailureReason, "BackoffLimitExceeded");
    assert.equal(
      plan.status?.backup.lastFailureMessage,
      `Job ${jobName} failed (BackoffLimitExceeded) without a readable result`,
    );
    assert.ok(!JSON.stringify(plan).includes(marker));
  });

  test("a success line with extra fields is a success; only its typed fields are kept", () => {
    const line = JSON.stringify({
      v: 1,
      mode: "backup",
      ok: true,
      key: "openbao/bao/2026-11-21T10-01-00Z-0a1b2c3d.snap",
      size: 10,
      sha256: sha,
      durationMs: 5,
      raftIndex: 9,
      unexpected: marker,
    });
    const plan = record(line, "Succeeded");
    assert.equal(plan.status?.backup.lastBackupName, "openbao/bao/2026-11-21T10-01-00Z-0a1b2c3d.snap");
    assert.equal(plan.status?.backup.lastBackupSHA256, sha);
    assert.equal(plan.status?.backup.currentJob, null);
    assert.ok(!JSON.stringify(plan).includes(marker));
  });

  test("no Pod, or a Pod that never terminated: no result, and the Pod's report is not in yet", () => {
    const observed = observeJob(cachedJob("Failed"), []);
    assert.equal(observed.result, undefined);
    assert.equal(observed.podTerminated, false);
    const running = {
      metadata: { name: "p" },
      status: { containerStatuses: [{ name: executorContainerName, state: { running: {} } }] },
    };
    const early = observeJob(cachedJob("Succeeded"), [running as CachedPod]);
    assert.equal(early.podTerminated, false, "a Job seen Complete before its Pod's report waits for it");
    assert.equal(terminationMessage([{ metadata: { name: "p" }, status: {} } as CachedPod]), undefined);
    const reported = observeJob(cachedJob("Succeeded"), [podWith(undefined)]);
    assert.equal(reported.podTerminated, true, "terminated without a message: the report is in, and empty");
    assert.equal(reported.result, undefined);
  });

  test("the last Pod to finish is the one read", () => {
    const good = JSON.stringify({ ok: false, reason: "SnapshotFailed", message: "second attempt" });
    const pods = [podWith(good, "2026-11-21T10:01:29Z"), podWith(`${marker}`, "2026-11-21T10:01:10Z")];
    assert.equal(terminationMessage(pods), good);
  });
});
