/**
 * The pure parts of Object Lock support (issue 18, item 1): when a lock holds, the lock a
 * backup asks for, how a stored lock is checked, how retention groups what it deletes, how the
 * target and the executor's settings are parsed, how GCS reports its locks, and how the one
 * S3 error for a bucket without Object Lock is recognised. The behaviour on a real MinIO is in
 * test/storage/object-lock.test.ts and test/executor/object-lock.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, loadBackupConfig } from "../../../src/executor/config.ts";
import { humanLine } from "../../../src/executor/result.ts";
import { deletionGroups } from "../../../src/snapshot/retention.ts";
import { azureLock } from "../../../src/storage/azure/store.ts";
import { classify } from "../../../src/storage/errors.ts";
import { gcsLock } from "../../../src/storage/gcs/store.ts";
import { parseTarget, TargetConfigError } from "../../../src/storage/index.ts";
import { earliestRelease, lockHolds, lockMismatch, writeLockFor } from "../../../src/storage/locks.ts";
import { noLock, type WriteLock } from "../../../src/storage/object-store.ts";

const now = new Date("2026-12-06T12:00:00Z");
const at = (iso: string) => new Date(iso);

describe("lockHolds / earliestRelease", () => {
  test("a legal hold always holds; retention until it ends; nothing when unlocked", () => {
    assert.equal(lockHolds({ ...noLock, legalHold: true }, now), true);
    assert.equal(
      lockHolds({ mode: "GOVERNANCE", retainUntil: at("2026-12-06T12:00:01Z"), legalHold: false }, now),
      true,
    );
    assert.equal(lockHolds({ mode: "GOVERNANCE", retainUntil: now, legalHold: false }, now), false, "ends at its time");
    assert.equal(
      lockHolds({ mode: "COMPLIANCE", retainUntil: at("2026-12-01T00:00:00Z"), legalHold: false }, now),
      false,
    );
    assert.equal(lockHolds(noLock, now), false);
  });

  test("the earliest end among retentions; legal holds have none", () => {
    const locked = [
      { key: "a", until: at("2026-12-09T00:00:00Z"), legalHold: false, mode: "GOVERNANCE" },
      { key: "b", until: at("2026-12-07T00:00:00Z"), legalHold: false, mode: "GOVERNANCE" },
      { key: "c", until: at("2026-12-06T13:00:00Z"), legalHold: true, mode: "GOVERNANCE" },
    ];
    assert.equal(earliestRelease(locked), "2026-12-07T00:00:00.000Z");
    assert.equal(earliestRelease(locked.slice(2)), undefined);
    assert.equal(earliestRelease([]), undefined);
  });
});

describe("writeLockFor / lockMismatch", () => {
  const objectLock = { mode: "GOVERNANCE" as const, graceMs: 2 * 3600_000, preUpgradeLegalHold: true };

  test("retained until creation + maxAge + grace, rounded up to a second; a legal hold for pre-upgrade only", () => {
    const created = at("2026-12-06T12:00:00.250Z");
    const lock = writeLockFor(objectLock, { created, maxAgeMs: 24 * 3600_000, preUpgrade: false });
    assert.deepEqual(lock, { mode: "GOVERNANCE", retainUntil: at("2026-12-07T14:00:01.000Z"), legalHold: false });
    assert.equal(writeLockFor(objectLock, { created, maxAgeMs: 0, preUpgrade: true }).legalHold, true);
    assert.equal(
      writeLockFor({ ...objectLock, preUpgradeLegalHold: false }, { created, maxAgeMs: 0, preUpgrade: true }).legalHold,
      false,
    );
  });

  test("the stored lock must be the one asked for, or longer", () => {
    const asked: WriteLock = { mode: "COMPLIANCE", retainUntil: at("2026-12-10T00:00:00Z"), legalHold: true };
    const stored = { mode: "COMPLIANCE", retainUntil: at("2026-12-10T00:00:00Z"), legalHold: true };
    assert.equal(lockMismatch(asked, stored), undefined);
    assert.equal(
      lockMismatch(asked, { ...stored, retainUntil: at("2026-12-11T00:00:00Z") }),
      undefined,
      "longer is fine",
    );
    assert.equal(
      lockMismatch(asked, { ...stored, retainUntil: at("2026-12-09T23:59:59.500Z") }),
      undefined,
      "within a second",
    );
    assert.match(lockMismatch(asked, noLock) ?? "", /reports no lock .*s3:GetObjectRetention/);
    assert.match(
      lockMismatch(asked, { ...stored, mode: "GOVERNANCE" }) ?? "",
      /mode GOVERNANCE, COMPLIANCE was asked for/,
    );
    assert.match(
      lockMismatch(asked, { ...stored, retainUntil: at("2026-12-09T00:00:00Z") }) ?? "",
      /retained until 2026-12-09/,
    );
    assert.match(lockMismatch(asked, { ...stored, legalHold: false }) ?? "", /no legal hold/);
  });
});

describe("deletionGroups", () => {
  test("each snapshot with its manifest, manifest first, in the plan's order", () => {
    const groups = deletionGroups({
      delete: [
        { key: "a.snap.json", object: "manifest", reason: "max-count", snapshot: "a.snap" },
        { key: "a.snap", object: "snapshot", reason: "max-count", snapshot: "a.snap" },
        { key: "b.snap", object: "snapshot", reason: "max-age", snapshot: "b.snap", unverified: true },
      ],
    });
    assert.deepEqual(groups, [["a.snap.json", "a.snap"], ["b.snap"]]);
  });
});

describe("target.objectLock", () => {
  const s3 = { provider: "s3", bucket: "b" };

  test("parsed with its defaults; only on s3; a mode and a duration or the field is named", () => {
    const parsed = parseTarget({ ...s3, objectLock: { mode: "COMPLIANCE" } });
    assert.deepEqual(parsed.provider === "s3" ? parsed.objectLock : "not s3", {
      mode: "COMPLIANCE",
      graceMs: 24 * 3600_000,
      preUpgradeLegalHold: false,
    });
    const s3Default = parseTarget(s3);
    assert.equal(s3Default.provider === "s3" ? s3Default.objectLock : "not s3", undefined);
    const refused = (spec: object, field: string, message: RegExp) => {
      assert.throws(
        () => parseTarget(spec),
        (err: unknown) => err instanceof TargetConfigError && err.field === field && message.test(err.message),
        `${JSON.stringify(spec)} → ${field}`,
      );
    };
    refused(
      { ...s3, objectLock: { mode: "governance" } },
      "target.objectLock.mode",
      /must be GOVERNANCE .* or COMPLIANCE/,
    );
    refused({ ...s3, objectLock: {} }, "target.objectLock.mode", /must be GOVERNANCE/);
    refused(
      { ...s3, objectLock: { mode: "GOVERNANCE", grace: "a day" } },
      "target.objectLock.grace",
      /invalid duration/,
    );
    refused(
      { provider: "gcs", bucket: "b", objectLock: { mode: "GOVERNANCE" } },
      "target.objectLock",
      /s3 only; on GCS use a bucket retention policy/,
    );
    refused(
      { provider: "azure", bucket: "b", azure: { storageAccount: "a" }, objectLock: { mode: "GOVERNANCE" } },
      "target.objectLock",
      /on Azure use a container immutability policy/,
    );
  });

  test("the executor refuses a lock without retention.maxAge, and one on another provider, naming the setting", () => {
    const base = {
      CLUSTER_NAME: "bao",
      CLUSTER_NAMESPACE: "openbao",
      BACKUP_AUTH_METHOD: "token",
      BACKUP_BUCKET: "b",
      BACKUP_OBJECT_LOCK_MODE: "GOVERNANCE",
    };
    const refused = (env: Record<string, string>, setting: string, message: RegExp) =>
      assert.throws(
        () => loadBackupConfig(env, []),
        (err: unknown) => err instanceof ConfigError && err.variable === setting && message.test(err.message),
      );
    refused(base, "BACKUP_OBJECT_LOCK_MODE", /needs BACKUP_RETENTION_MAX_AGE/);
    refused({ ...base, BACKUP_RETENTION_MAX_COUNT: "3" }, "BACKUP_OBJECT_LOCK_MODE", /needs BACKUP_RETENTION_MAX_AGE/);
    refused(
      { ...base, BACKUP_RETENTION_MAX_AGE: "7d", BACKUP_PROVIDER: "gcs" },
      "BACKUP_OBJECT_LOCK_MODE",
      /applies to provider s3 only/,
    );
    refused(
      { ...base, BACKUP_RETENTION_MAX_AGE: "7d", BACKUP_OBJECT_LOCK_GRACE: "soon" },
      "BACKUP_OBJECT_LOCK_GRACE",
      /invalid duration/,
    );
    const ok = loadBackupConfig({ ...base, BACKUP_RETENTION_MAX_AGE: "7d", BACKUP_OBJECT_LOCK_GRACE: "0s" }, []);
    assert.deepEqual(ok.target.provider === "s3" ? ok.target.objectLock : undefined, {
      mode: "GOVERNANCE",
      graceMs: 0,
      preUpgradeLegalHold: false,
    });
  });
});

describe("what stores report", () => {
  test("GCS: object retention or the bucket's policy, whichever ends later; holds as a legal hold", () => {
    assert.deepEqual(gcsLock({}), noLock);
    assert.deepEqual(gcsLock({ retention: { mode: "Unlocked", retainUntilTime: "2026-12-08T00:00:00Z" } }), {
      mode: "Unlocked",
      retainUntil: at("2026-12-08T00:00:00Z"),
      legalHold: false,
    });
    assert.deepEqual(
      gcsLock({
        retention: { mode: "Locked", retainUntilTime: "2026-12-08T00:00:00Z" },
        retentionExpirationTime: "2026-12-09T00:00:00Z",
      }).retainUntil,
      at("2026-12-09T00:00:00Z"),
    );
    assert.equal(gcsLock({ retentionExpirationTime: "2026-12-09T00:00:00Z" }).mode, "BucketRetentionPolicy");
    assert.equal(gcsLock({ temporaryHold: true }).legalHold, true);
    assert.equal(gcsLock({ eventBasedHold: true }).legalHold, true);
  });

  test("Azure: a blob's immutability policy and legal hold, as Get Blob Properties reports them", () => {
    assert.deepEqual(azureLock({}), noLock);
    assert.deepEqual(
      azureLock({ immutabilityPolicyMode: "Locked", immutabilityPolicyExpiresOn: at("2026-12-08T00:00:00Z") }),
      { mode: "Locked", retainUntil: at("2026-12-08T00:00:00Z"), legalHold: false },
    );
    assert.equal(azureLock({ legalHold: true }).legalHold, true);
    assert.equal(lockHolds(azureLock({ immutabilityPolicyExpiresOn: at("2026-12-07T00:00:00Z") }), now), true);
  });

  test("S3 InvalidRequest for a bucket without Object Lock (AWS and MinIO wording) is ObjectLockUnavailable", () => {
    const facts = (detail: string) => ({ status: 400, code: "InvalidRequest", errno: undefined, detail });
    assert.equal(classify(facts("Bucket is missing Object Lock Configuration")), "ObjectLockUnavailable");
    assert.equal(classify(facts("Bucket is missing ObjectLockConfiguration")), "ObjectLockUnavailable");
    assert.equal(classify(facts("Something else entirely")), "Other");
  });

  test("the human line says what a lock kept and when the first can go, and which versions stayed", () => {
    const line = humanLine({
      mode: "backup",
      ok: true,
      key: "openbao/bao/x.snap",
      size: 1024,
      sha256: "a".repeat(64),
      durationMs: 1000,
      raftIndex: 7,
      raftTerm: 2,
      openbaoVersion: "2.4.0",
      startedAt: now.toISOString(),
      retention: {
        kept: 1,
        deleted: 0,
        failed: 0,
        locked: 2,
        lockedUntil: "2026-12-07T00:00:00.000Z",
        versionsKept: 1,
        versionsNote: "AuthDenied: allow s3:ListBucketVersions and s3:DeleteObjectVersion",
      },
    });
    assert.match(
      line,
      /retention kept 1, deleted 0, failed 0, kept 2 a lock holds \(the first can go after 2026-12-07T00:00:00\.000Z\), 1 deleted but older versions kept \(AuthDenied: allow/,
    );
  });
});
