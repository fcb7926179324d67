/**
 * The operation lock module (src/lock/): every holder × operation pair of the decision table,
 * release by holder, the holder predicates and orphan recovery. The invariants are in
 * src/lock/lock.ts; defect 4 (an override stops what it displaces) is in override.test.ts and
 * displaced.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LockHolder, restoreLockHolder } from "../../../src/api/constants.ts";
import type { OperationLock } from "../../../src/api/types.ts";
import {
  describeLock,
  heldBy,
  holderKind,
  holdsLock,
  isBackupLock,
  isLockHeld,
  restoreHoldingLock,
} from "../../../src/lock/holder.ts";
import { decideLock, type LockDecision, type LockRequest, mayRun, releaseLock } from "../../../src/lock/lock.ts";
import {
  deletionGraceMs,
  leftOverBackupLock,
  orphanedRestoreLock,
  releaseOnDeletion,
} from "../../../src/lock/orphans.ts";

const now = new Date("2026-11-21T10:00:00Z");
const restoreCreated = "2026-11-21T09:30:00Z";

const holders = {
  free: null,
  backup: {
    operation: "Backup",
    holder: LockHolder.Backup,
    acquiredAt: "2026-11-21T09:50:00Z",
    message: "manual backup Job b",
  },
  upgrade: { operation: "Upgrade", holder: LockHolder.Upgrade, acquiredAt: "2026-11-21T09:40:00Z" },
  "this restore": { operation: "Restore", holder: restoreLockHolder("r1"), acquiredAt: "2026-11-21T09:31:00Z" },
  "a deleted namesake": { operation: "Restore", holder: restoreLockHolder("r1"), acquiredAt: "2026-11-21T09:00:00Z" },
  "another restore": { operation: "Restore", holder: restoreLockHolder("r0"), acquiredAt: "2026-11-21T09:20:00Z" },
} as const satisfies Record<string, OperationLock | null>;
type HolderName = keyof typeof holders;

const restoreMeta = { metadata: { name: "r1", creationTimestamp: restoreCreated } };
const operations = {
  scheduled: { operation: "Backup", type: "scheduled", message: "scheduled backup Job s" },
  manual: { operation: "Backup", type: "manual", message: "manual backup Job m" },
  "pre-upgrade": { operation: "Backup", type: "pre-upgrade", message: "pre-upgrade backup Job p" },
  restore: { operation: "Restore", restore: restoreMeta, override: false, message: "OpenBaoRestore r1 restores k" },
  "restore with override": {
    operation: "Restore",
    restore: restoreMeta,
    override: true,
    message: "OpenBaoRestore r1 restores k",
  },
} as const satisfies Record<string, LockRequest>;
type OperationName = keyof typeof operations;

/** What each operation gets from each holder (docs/lifecycle-operators.md states the same). */
const table: Record<HolderName, Record<OperationName, LockDecision["kind"]>> = {
  free: {
    scheduled: "acquire",
    manual: "acquire",
    "pre-upgrade": "acquire",
    restore: "acquire",
    "restore with override": "acquire",
  },
  backup: {
    scheduled: "renew",
    manual: "renew",
    "pre-upgrade": "renew",
    restore: "wait",
    "restore with override": "override",
  },
  upgrade: {
    scheduled: "wait",
    manual: "wait",
    "pre-upgrade": "share",
    restore: "wait",
    "restore with override": "override",
  },
  "this restore": {
    scheduled: "wait",
    manual: "wait",
    "pre-upgrade": "wait",
    restore: "renew",
    "restore with override": "renew",
  },
  "a deleted namesake": {
    scheduled: "wait",
    manual: "wait",
    "pre-upgrade": "wait",
    restore: "acquire",
    "restore with override": "acquire",
  },
  "another restore": {
    scheduled: "wait",
    manual: "wait",
    "pre-upgrade": "wait",
    restore: "wait",
    "restore with override": "wait",
  },
};

describe("decideLock: every holder × operation", () => {
  for (const [holderName, lock] of Object.entries(holders) as [HolderName, OperationLock | null][]) {
    for (const [operationName, request] of Object.entries(operations) as [OperationName, LockRequest][]) {
      const expected = table[holderName][operationName];
      test(`${holderName} × ${operationName} → ${expected}`, () => {
        const d = decideLock(lock, request, now);
        assert.equal(d.kind, expected);
        assert.equal(mayRun(d), expected !== "wait");
        switch (d.kind) {
          case "acquire":
          case "override": {
            // A new lock of the requester's own, stamped now, with its message.
            const holder = request.operation === "Backup" ? LockHolder.Backup : restoreLockHolder("r1");
            assert.equal(d.lock.holder, holder);
            assert.equal(d.lock.operation, request.operation);
            assert.equal(d.lock.acquiredAt, "2026-11-21T10:00:00Z");
            assert.equal(d.lock.message, request.message);
            if (d.kind === "override") assert.equal(d.displaced, lock, "the displaced holder is named");
            else assert.equal(d.replaced, lock ?? undefined, "a namesake's lock is replaced, said so");
            break;
          }
          case "renew":
          case "share":
            assert.equal(d.lock, lock, "kept exactly as it is: never re-stamped, never replaced");
            break;
          case "wait":
            assert.equal(d.holder, lock, "the wait names the holder");
            break;
        }
      });
    }
  }

  test("the override never takes a restore's lock, and only a restore overrides", () => {
    for (const [holderName, row] of Object.entries(table)) {
      for (const [operationName, kind] of Object.entries(row)) {
        if (kind !== "override") continue;
        assert.equal(operationName, "restore with override");
        assert.ok(holderName === "backup" || holderName === "upgrade", holderName);
      }
    }
  });
});

describe("releaseLock: only its holder frees it", () => {
  const releasers = [LockHolder.Backup, LockHolder.Upgrade, restoreLockHolder("r1"), restoreLockHolder("r0")];
  for (const [holderName, lock] of Object.entries(holders) as [HolderName, OperationLock | null][]) {
    for (const releaser of releasers) {
      test(`${holderName} released by ${releaser}`, () => {
        const after = releaseLock(lock, releaser);
        if (lock === null) assert.equal(after, null);
        else if (lock.holder === releaser) assert.equal(after, null);
        else assert.equal(after, lock, "someone else's lock is left alone");
      });
    }
  }
});

describe("holders", () => {
  test("predicates", () => {
    assert.equal(isLockHeld(null), false);
    assert.equal(isLockHeld(undefined), false);
    assert.equal(isLockHeld(holders.backup), true);
    assert.equal(isBackupLock(holders.backup), true);
    assert.equal(isBackupLock(holders["this restore"]), false);
    assert.equal(restoreHoldingLock(holders["this restore"]), "r1");
    assert.equal(restoreHoldingLock(holders.backup), undefined);
    assert.equal(holderKind(null), "free");
    assert.equal(holderKind(holders.upgrade), "upgrade");
    assert.equal(holderKind(holders["another restore"]), "restore");
    assert.equal(heldBy(holders.upgrade, LockHolder.Upgrade), true);
    assert.equal(heldBy(null, LockHolder.Upgrade), false);
  });

  test("a restore holds a lock of its name only if taken after it was created", () => {
    assert.equal(holdsLock(restoreMeta, holders["this restore"]), true);
    assert.equal(holdsLock(restoreMeta, holders["a deleted namesake"]), false);
    assert.equal(holdsLock(restoreMeta, holders["another restore"]), false);
    assert.equal(holdsLock({ metadata: { name: "r1" } }, holders["a deleted namesake"]), true, "no time: the name");
  });

  test("described with operation, holder, time and message", () => {
    assert.equal(
      describeLock(holders.backup),
      "Backup (openbaocluster/backup) since 2026-11-21T09:50:00Z: manual backup Job b",
    );
  });

  test("the types refuse a holder that does not match its operation", () => {
    // @ts-expect-error Backup is held by openbaocluster/backup only
    const wrong: OperationLock = { operation: "Backup", holder: "openbaorestore/r1", acquiredAt: "x" };
    assert.ok(wrong);
  });
});

describe("orphan recovery", () => {
  test("a Backup lock with no Job in flight is left over; with one, it is not; other holders never are", () => {
    assert.equal(leftOverBackupLock(holders.backup, undefined), true);
    assert.equal(leftOverBackupLock(holders.backup, "backup-bao-1"), false);
    for (const lock of [holders.free, holders.upgrade, holders["this restore"]]) {
      assert.equal(leftOverBackupLock(lock, undefined), false);
    }
  });

  test("a lock naming a restore that no longer exists is that restore's orphan only", () => {
    assert.equal(orphanedRestoreLock(holders["this restore"], "r1"), true);
    assert.equal(orphanedRestoreLock(holders["another restore"], "r1"), false);
    assert.equal(orphanedRestoreLock(holders.backup, "r1"), false);
  });

  test("a deleted restore releases once its Pods stopped, or anyway after the grace", () => {
    assert.equal(releaseOnDeletion(0, 0), "release");
    assert.equal(releaseOnDeletion(1, deletionGraceMs - 1), "wait");
    assert.equal(releaseOnDeletion(1, deletionGraceMs), "release-anyway");
  });
});
