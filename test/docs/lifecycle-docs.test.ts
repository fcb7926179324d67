/**
 * docs/lifecycle-operators.md and the restore runbook state numbers and names a lifecycle
 * operator relies on: the lock holders, the pre-upgrade backoff and attempts, and the bound on
 * an override's wait. Each is read from the code here, so the page cannot drift from it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { FailureReason, LockHolder, LockOperation, limits, restoreLockHolderPrefix } from "../../src/api/constants.ts";
import { retryBackoffMs } from "../../src/backup/pre-upgrade.ts";
import { stopGraceMs } from "../../src/lock/displaced.ts";
import { projectRoot } from "../servers/catalog.ts";

const page = readFileSync(join(projectRoot, "docs", "lifecycle-operators.md"), "utf8");
const runbook = readFileSync(join(projectRoot, "docs", "restore-runbook.md"), "utf8");
const minutes = (ms: number) => ms / 60_000;
const words = ["zero", "one", "two", "three", "four", "five"];

test("the lock table names every holder and operation the code uses", () => {
  const rows = page.split("\n").filter((l) => /^\| `(openbaocluster|openbaorestore)\//.test(l));
  const holders = rows.map((r) => /^\| `([^`]+)`/.exec(r)?.[1]);
  assert.deepEqual(holders, [LockHolder.Backup, LockHolder.Upgrade, `${restoreLockHolderPrefix}<name>`]);
  const operations = rows.map((r) => /^\| `[^`]+` \| `([^`]+)`/.exec(r)?.[1]);
  assert.deepEqual(operations, [LockOperation.Backup, LockOperation.Upgrade, LockOperation.Restore]);
  assert.match(page, new RegExp(`\`${FailureReason.LockOverridden}\``));
});

test("the pre-upgrade backoff and attempt count are the code's", () => {
  assert.match(
    page,
    new RegExp(`backoff \\(${minutes(retryBackoffMs(1))} minutes, then ${minutes(retryBackoffMs(2))}\\)`),
  );
  assert.match(page, new RegExp(`after ${words[limits.preUpgradeMaxAttempts]} failed attempts`));
});

test("an override's wait is bounded as the docs say", () => {
  const bound = `\`spec.backup.activeDeadlineSeconds\` plus ${minutes(stopGraceMs)} minutes`;
  assert.ok(page.includes(bound), `lifecycle-operators.md: ${bound}`);
  assert.ok(runbook.includes(bound), `restore-runbook.md: ${bound}`);
});
