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

test("operator --job-ttl below a minute is refused naming the flag, before any cluster is contacted", () => {
  for (const ttl of ["10", "59", "1.5", "a day"]) {
    const r = run(
      "operator",
      "--image",
      "x:1",
      "--no-leader-election",
      "--job-ttl",
      ttl,
      "--kubeconfig",
      "/nonexistent",
    );
    assert.equal(r.status, 1, `--job-ttl ${ttl}: ${r.stderr}`);
    assert.match(r.stderr, /--job-ttl \(JOB_TTL_SECONDS\) must be a whole number of seconds ≥ 60/);
  }
  // A valid value passes that check and fails later, on the kubeconfig.
  const ok = run(
    "operator",
    "--image",
    "x:1",
    "--no-leader-election",
    "--job-ttl",
    "60",
    "--kubeconfig",
    "/nonexistent",
  );
  assert.doesNotMatch(ok.stderr, /--job-ttl/);
  assert.match(ok.stderr, /cannot load the kubeconfig/);
});

test("monitor: bad settings and a missing kubeconfig are refused by name, exit 1", () => {
  for (const [flag, value, named] of [
    ["--interval", "5", /--interval \(MONITOR_INTERVAL_SECONDS\) must be a whole number from 10 to 86400, got "5"/],
    ["--probe-timeout", "0", /--probe-timeout \(MONITOR_PROBE_TIMEOUT_SECONDS\)/],
    ["--concurrency", "many", /--concurrency \(MONITOR_CONCURRENCY\)/],
  ] as const) {
    const r = run("monitor", flag, value, "--kubeconfig", "/nonexistent");
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, named);
  }
  const r = run("monitor", "--kubeconfig", "/nonexistent");
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot load the kubeconfig \/nonexistent \(ENOENT\); pass --kubeconfig or run in a cluster/);
});
