/**
 * `npm test`: every pass/fail tier, in order, on a fresh machine or a warm one.
 *   1. lint + format check (biome), type check (tsc), build (tsc → dist)
 *   2. prepare the real servers (build on a cold machine, reuse the cache afterwards)
 *   3. run the test files of every tier with Node's test runner, two at a time (a `node` tier
 *      file alone), ending with its summary
 * Pass test file paths or globs to run only those (e.g. `npm test -- test/unit`).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { nodeStateDir, undoStaleNode } from "../test/node/host.ts";
import { prepareServers } from "../test/servers/prepare.ts";

// "node" last: a real kubelet runs the product's image (test/node); it skips where the machine
// cannot run a node, and must run in CI.
const tiers = ["unit", "smoke", "storage", "executor", "cli", "operator", "chart", "docs", "node"] as const;

function step(title: string, command: string, args: readonly string[]): void {
  const started = Date.now();
  process.stdout.write(`[test] ${title}…\n`);
  const result = spawnSync(command, [...args], { stdio: "inherit" });
  if (result.status !== 0) {
    process.stdout.write(`[test] ${title} failed (exit ${result.status ?? result.signal})\n`);
    // Node's test runner may end a test file's process before its exit hooks have undone a real
    // node (an interrupt): whatever the journal still lists is undone here, after the runner.
    if (undoStaleNode(nodeStateDir))
      process.stdout.write("[test] undid what an interrupted node test left on the host\n");
    process.exit(result.status ?? 1);
  }
  process.stdout.write(`[test] ${title}: ok in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
}

const selected = process.argv.slice(2);
step("lint and format check (biome)", "biome", ["ci", "."]);
step("type check (tsc --noEmit)", "tsc", ["-p", "tsconfig.json"]);
step("build (tsc → dist)", "tsc", ["-p", "tsconfig.build.json"]);

process.stdout.write("[test] preparing real servers…\n");
await prepareServers();

const patterns = selected.length > 0 ? selected : tiers.map((tier) => `test/${tier}/**/*.test.ts`);
process.stdout.write(`[test] running ${patterns.join(" ")}\n`);
// Two test files at a time (most of a file's time is spent waiting on its servers); a `node`
// tier file waits for the others and runs alone (test/host-lock.ts, loaded into every file).
const hostLock = join(import.meta.dirname, "..", "test", "host-lock.ts");
const result = spawnSync(
  process.execPath,
  [
    `--import=${hostLock}`,
    "--test",
    "--test-reporter=spec",
    "--test-concurrency=2",
    "--test-timeout=900000",
    ...patterns,
  ],
  { stdio: "inherit" },
);
// Node's test runner may end a test file's process before its exit hooks have undone a real
// node (an interrupt): whatever the journal still lists is undone here, after the runner.
if (undoStaleNode(nodeStateDir)) process.stdout.write("[test] undid what an interrupted node test left on the host\n");
process.exit(result.status ?? 1);
