/**
 * `conditionReasons` is the one list of which reason goes with which condition (the docs and
 * the metrics follow it): every `Reason` belongs to exactly one condition, and every literal
 * `setCond(<condition>, "<status>", Reason.<reason>, …)` in the planners agrees with it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Condition, conditionReasons, Reason } from "../../../src/api/constants.ts";

const root = join(import.meta.dirname, "..", "..", "..");

test("every Reason belongs to exactly one condition", () => {
  const owners = new Map<string, string[]>();
  for (const [condition, entries] of Object.entries(conditionReasons)) {
    for (const { reason } of entries) owners.set(reason, [...(owners.get(reason) ?? []), condition]);
  }
  for (const reason of Object.values(Reason)) {
    assert.equal(owners.get(reason)?.length, 1, `${reason}: ${owners.get(reason)?.join(", ") ?? "no condition"}`);
  }
  assert.deepEqual(Object.keys(conditionReasons).sort(), Object.values(Condition).sort());
});

/** `(condition, status, reason)` of every literal setCond call; `c` resolves to its last `const c = …`. */
function literalCalls(source: string): { condition: string; status: string; reason: string }[] {
  const calls: { condition: string; status: string; reason: string }[] = [];
  const call = /setCond\(\s*(?:ConditionType\.(\w+)|(c)),\s*"(\w+)",\s*Reason\.(\w+)/g;
  for (const m of source.matchAll(call)) {
    let condition = m[1];
    if (condition === undefined) {
      const before = source.slice(0, m.index);
      condition = [...before.matchAll(/const c = ConditionType\.(\w+)/g)].pop()?.[1];
    }
    calls.push({ condition: condition ?? "?", status: m[3] ?? "", reason: m[4] ?? "" });
  }
  return calls;
}

test("the planners set each reason only on its condition, with its status", () => {
  let seen = 0;
  for (const file of ["src/backup/plan.ts", "src/restore/plan.ts"]) {
    for (const { condition, status, reason } of literalCalls(readFileSync(join(root, file), "utf8"))) {
      seen += 1;
      const entries = conditionReasons[condition as keyof typeof conditionReasons];
      assert.ok(entries, `${file}: unknown condition ${condition}`);
      assert.ok(
        entries.some((e) => e.reason === reason && e.status === status),
        `${file}: ${condition}=${status}/${reason} is not in conditionReasons`,
      );
    }
  }
  assert.ok(seen >= 15, `found ${seen} literal setCond calls: the pattern no longer matches the planners`);
});
