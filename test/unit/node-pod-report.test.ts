/**
 * The node tier's failure report (test/node/pod-report.ts): a container that was restarted
 * says how the previous one ended, and the previous container's log is printed beside the
 * current one's, in restart order — what was missing when the operator died once in CI.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { containerLogTails, crashedContainerLogs, describePod } from "../node/pod-report.ts";

test("a restarted container: its state, and how the previous one ended (reason, exit code, signal)", () => {
  const pod: V1Pod = {
    metadata: { namespace: "openbao-backup-system", name: "operator-abc" },
    status: {
      phase: "Running",
      containerStatuses: [
        {
          name: "operator",
          image: "x",
          imageID: "x",
          ready: true,
          restartCount: 1,
          state: { running: { startedAt: new Date("2026-12-07T02:47:29Z") } },
          lastState: {
            terminated: {
              reason: "OOMKilled",
              exitCode: 137,
              signal: 9,
              finishedAt: new Date("2026-12-07T02:47:11Z"),
            },
          },
        },
      ],
    },
  };
  assert.deepEqual(describePod(pod), [
    "openbao-backup-system/operator-abc: Running",
    "  operator: ready=true, 1 restart(s), running since 2026-12-07T02:47:29.000Z; the previous one terminated OOMKilled (exit 137, signal 9) at 2026-12-07T02:47:11.000Z",
  ]);
});

test("container logs: every restart's file of the namespace's Pods, in order, the last lines only", () => {
  const dir = mkdtempSync(join(tmpdir(), "pod-report-"));
  try {
    const operator = join(dir, "openbao-backup-system_operator-abc_1234", "operator");
    mkdirSync(operator, { recursive: true });
    writeFileSync(join(operator, "10.log"), "later\n");
    writeFileSync(join(operator, "9.log"), `${Array.from({ length: 200 }, (_, i) => `line ${i}`).join("\n")}\n`);
    mkdirSync(join(dir, "openbao_bao-0_5678", "openbao"), { recursive: true });
    writeFileSync(join(dir, "openbao_bao-0_5678", "openbao", "0.log"), "not the operator's\n");
    const lines = containerLogTails(dir, "openbao-backup-system");
    assert.equal(lines[0], "--- openbao-backup-system_operator-abc_1234/operator/9.log: last 120 of 200 lines ---");
    assert.equal(lines[1], "line 80");
    assert.equal(lines[120], "line 199");
    assert.deepEqual(lines.slice(121), [
      "--- openbao-backup-system_operator-abc_1234/operator/10.log: last 1 of 1 lines ---",
      "later",
    ]);
    assert.deepEqual(containerLogTails(join(dir, "missing"), "openbao-backup-system"), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("crashed containers: only restarted ones, from their Go panic, else their last lines", () => {
  const dir = mkdtempSync(join(tmpdir(), "pod-report-"));
  try {
    const bao = join(dir, "openbao_openbao-0_5678", "openbao");
    mkdirSync(bao, { recursive: true });
    const dump = ["[INFO] core: sealing", "panic: runtime error: invalid memory address", "goroutine 1 [running]:"];
    writeFileSync(
      join(bao, "0.log"),
      `${["started", ...dump, ...Array.from({ length: 100 }, (_, i) => `frame ${i}`)].join("\n")}\n`,
    );
    writeFileSync(join(bao, "1.log"), `${Array.from({ length: 30 }, (_, i) => `quiet ${i}`).join("\n")}\n`);
    writeFileSync(join(bao, "2.log"), "running now\n");
    const job = join(dir, "openbao_backup-x_9", "executor");
    mkdirSync(job, { recursive: true });
    writeFileSync(join(job, "0.log"), "panic: only container, never restarted\n");
    const lines = crashedContainerLogs(dir, "openbao");
    assert.equal(lines[0], "--- openbao_openbao-0_5678/openbao/0.log (restarted): from its panic ---");
    assert.deepEqual(lines.slice(1, 3), dump.slice(1));
    assert.equal(lines.length, 1 + 40 + 1 + 20, "40 lines from the panic, then the 20 last of the quiet one");
    assert.equal(lines[41], "--- openbao_openbao-0_5678/openbao/1.log (restarted): its last lines ---");
    assert.equal(lines[42], "quiet 10");
    assert.ok(!lines.some((l) => l.includes("running now") || l.includes("never restarted")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
