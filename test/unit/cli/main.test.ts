import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { projectRoot } from "../../servers/catalog.ts";

const cli = join(projectRoot, "src", "cli", "main.ts");

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("--help lists every subcommand and exits 0", () => {
  const r = run("--help");
  assert.equal(r.status, 0);
  for (const name of ["operator", "backup", "restore", "list", "verify", "trigger", "status", "prune", "auth-setup"]) {
    assert.match(r.stdout, new RegExp(`^  ${name} `, "m"));
  }
});

test("no arguments prints usage and exits 1 (configuration)", () => {
  const r = run();
  assert.equal(r.status, 1);
  assert.match(r.stdout, /Usage: bao-backup/);
});

test("an unknown subcommand names itself and exits 1", () => {
  const r = run("frobnicate");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test("--version prints the package version", () => {
  const r = run("--version");
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
});
