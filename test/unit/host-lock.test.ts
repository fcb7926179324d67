/**
 * The suite's host lock (test/host-lock.ts), driven through the real test runner the way
 * scripts/test.ts runs it (`--import=<host-lock>`, two files at a time): ordinary files share
 * the machine, a file under test/node runs alone, and no lock file is left behind.
 *
 * A throwaway tree shaped like the repo is run by a child runner with its own TMPDIR, so its
 * lock directory is not the one the real suite (maybe this very process) is holding. Each
 * throwaway file records when it ran and which lock file it held. Sorted and in argument order
 * the files are: two ordinary ones (started together), the node one (started when the first
 * of them ends) and one more ordinary one (started when the second ends) — without the lock the
 * node file would run beside that last one.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, test } from "node:test";

const hostLock = join(import.meta.dirname, "..", "host-lock.ts");
const sleepMs = 700;

/** A throwaway test file: sleeps, then records its interval and the lock file holding its PID. */
const throwaway = `
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { test } from "node:test";

const start = Date.now();
test("holds the machine for a while", async () => {
  const lockDir = process.env.HOST_LOCK_TEST_LOCK_DIR;
  const names = existsSync(lockDir) ? readdirSync(lockDir) : [];
  const mine = names.filter((name) => readFileSync(join(lockDir, name), "utf8") === String(process.pid));
  await new Promise((resolve) => setTimeout(resolve, ${sleepMs}));
  const record = { pid: process.pid, start, end: Date.now(), held: mine };
  writeFileSync(join(process.env.HOST_LOCK_TEST_RESULTS, basename(import.meta.filename) + ".json"), JSON.stringify(record));
});
`;

interface Run {
  pid: number;
  start: number;
  end: number;
  held: string[];
}

const root = mkdtempSync(join(tmpdir(), "host-lock-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

function runRunner(files: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [`--import=${hostLock}`, "--test", "--test-concurrency=2", "--test-reporter=spec", ...files],
      { env, stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

const overlap = (a: Run, b: Run): boolean => a.start < b.end && b.start < a.end;

test("ordinary files run two at a time, a test/node file runs alone, no lock file is left", async () => {
  const tree = join(root, "repo", "test");
  const files = {
    first: join(tree, "a-ordinary", "1.test.mjs"),
    second: join(tree, "a-ordinary", "2.test.mjs"),
    node: join(tree, "node", "3.test.mjs"),
    last: join(tree, "z-ordinary", "4.test.mjs"),
  };
  for (const file of Object.values(files)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, throwaway);
  }
  const results = join(root, "results");
  const privateTmp = join(root, "tmp");
  mkdirSync(results);
  mkdirSync(privateTmp);
  const lockDir = join(privateTmp, "openbao-backup-test-host-lock");

  // Run as a test file ourselves, we carry the runner's NODE_TEST_CONTEXT: a child runner that
  // inherits it runs no file at all (a warning that run() is called within a test file, exit 0).
  const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const { code, output } = await runRunner(Object.values(files), {
    ...env,
    TMPDIR: privateTmp,
    HOST_LOCK_TEST_LOCK_DIR: lockDir,
    HOST_LOCK_TEST_RESULTS: results,
  });
  assert.equal(code, 0, `the runner failed:\n${output}`);

  const read = (file: string): Run => {
    const path = join(results, `${basename(file)}.json`);
    assert.ok(existsSync(path), `${file} did not run:\n${output}`);
    return JSON.parse(readFileSync(path, "utf8")) as Run;
  };
  const first = read(files.first);
  const second = read(files.second);
  const node = read(files.node);
  const last = read(files.last);
  const show = JSON.stringify({ first, second, node, last });

  assert.ok(overlap(first, second), `the two first ordinary files did not run together: ${show}`);
  for (const [name, other] of Object.entries({ first, second, last }))
    assert.ok(!overlap(node, other), `the node file ran beside ${name}: ${show}`);

  // Each file's process held its own lock file: --import reached the runner's children.
  for (const run of [first, second, last]) assert.deepEqual(run.held, [`shared-${run.pid}`], show);
  assert.deepEqual(node.held, ["exclusive"], show);

  assert.ok(existsSync(lockDir), "the lock directory was never made");
  assert.deepEqual(readdirSync(lockDir), [], "lock files were left behind");
});
