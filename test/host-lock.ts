/**
 * Lets `npm test` run two test files at a time while a `node` tier file always runs alone.
 *
 * Most files spend their time waiting on servers (elections, Jobs, polls), so two at once on
 * two cores nearly halve the suite; a real node (test/node) changes the host (a bridge,
 * containerd, mounts, a journal it undoes) and runs kubelet, containerd and a Helm-installed
 * operator on the same two cores, so it must share the machine with nothing.
 *
 * Loaded with `--import` into every test file's process (the runner passes it on): a reader
 * and writer lock made of files, `shared-<pid>` per ordinary file and one `exclusive` for a
 * node file, which waits for the shared holders to finish while no new one starts. A holder
 * that died is recognised by its PID and its file removed. The runner's own process takes
 * nothing (only its children run tests).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const dir = join(tmpdir(), "openbao-backup-test-host-lock");
const exclusive = join(dir, "exclusive");
const pollMs = 200;

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The PID written in `path`, or undefined when the file is gone. */
function ownerOf(path: string): number | undefined {
  try {
    return Number(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/** Whether a live process holds `path`; a dead holder's file is removed. */
function held(path: string): boolean {
  const pid = ownerOf(path);
  if (pid === undefined) return false;
  if (pid !== process.pid && !alive(pid)) {
    rmSync(path, { force: true });
    return false;
  }
  return true;
}

function liveShared(): string[] {
  return readdirSync(dir)
    .filter((name) => name.startsWith("shared-"))
    .map((name) => join(dir, name))
    .filter(held);
}

function release(path: string): void {
  process.on("exit", () => {
    if (ownerOf(path) === process.pid) rmSync(path, { force: true });
  });
}

async function acquireExclusive(): Promise<void> {
  for (;;) {
    try {
      writeFileSync(exclusive, String(process.pid), { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (!held(exclusive)) continue;
      await sleep(pollMs);
    }
  }
  release(exclusive);
  while (liveShared().length > 0) await sleep(pollMs);
}

async function acquireShared(): Promise<void> {
  const mine = join(dir, `shared-${process.pid}`);
  for (;;) {
    if (held(exclusive)) {
      await sleep(pollMs);
      continue;
    }
    writeFileSync(mine, String(process.pid));
    // A node file may have taken the lock between the check and the write: it goes first.
    if (!held(exclusive)) break;
    rmSync(mine, { force: true });
  }
  release(mine);
}

// Only the runner's children run test files (the runner sets NODE_TEST_CONTEXT for them).
const testFile = process.argv[1];
if (process.env.NODE_TEST_CONTEXT !== undefined && testFile !== undefined) {
  mkdirSync(dir, { recursive: true });
  if (testFile.includes(`${sep}test${sep}node${sep}`)) await acquireExclusive();
  else await acquireShared();
}
