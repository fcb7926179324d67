/**
 * Runs a real server as a child process for a test: its output goes to a log file, its
 * readiness is awaited, and it is always stopped — by the test's `after`, or by the exit
 * hooks below if the test process itself is interrupted. Scratch directories made with
 * `scratchDir` are removed the same way, so a run leaves no stray processes or data behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

export interface StartOptions {
  /** Short name used in log file names and messages, e.g. "openbao-0". */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Directory for the log file; a scratch directory by default. */
  readonly logDir?: string;
}

export class ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or null when killed by a signal) once the process ends. */
  readonly exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  #exitSignal: NodeJS.Signals | null = null;

  constructor(name: string, logPath: string, child: ChildProcess) {
    this.name = name;
    this.logPath = logPath;
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.#exitCode = code;
        this.#exitSignal = signal;
        live.delete(this);
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** How it ended, for failure messages: a process killed by a signal often logs nothing. */
  get exitReason(): string {
    if (this.running) return "running";
    return this.#exitSignal === null ? `exit code ${this.#exitCode}` : `killed by ${this.#exitSignal}`;
  }

  /** The last `bytes` of the log, for failure messages. */
  logTail(bytes = 6000): string {
    try {
      const text = readFileSync(this.logPath, "utf8");
      return text.length > bytes ? `…${text.slice(-bytes)}` : text;
    } catch {
      return "(no log)";
    }
  }

  /** Sends a signal without waiting, e.g. SIGKILL to simulate a crash. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

const live = new Set<ManagedProcess>();
/** Every process started by this test file, running or not, for failure reports. */
const started: ManagedProcess[] = [];
const scratch = new Set<string>();

// Last-resort cleanup when the test process ends or is interrupted: kill what is still
// running and remove scratch data, synchronously (nothing async runs in an exit hook).
function cleanupSync(): void {
  for (const proc of live) proc.child.kill("SIGKILL");
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
}
process.once("exit", cleanupSync);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    cleanupSync();
    process.exit(130);
  });
}

/** A fresh temporary directory removed when the process exits (or earlier by `removeScratch`). */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `openbao-backup-${prefix}-`));
  scratch.add(dir);
  return dir;
}

export function removeScratch(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  scratch.delete(dir);
}

export function startProcess(options: StartOptions): ManagedProcess {
  const logDir = options.logDir ?? scratchDir("logs");
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${options.name}.log`);
  const fd = openSync(logPath, "a");
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const proc = new ManagedProcess(options.name, logPath, child);
  live.add(proc);
  started.push(proc);
  return proc;
}

export interface WaitOptions {
  readonly what: string;
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Processes whose early exit fails the wait at once, and whose logs go in the error. */
  readonly processes?: readonly ManagedProcess[];
}

/** A server that ended while a wait for it was still going on. */
export class ProcessExitedError extends Error {
  readonly process: ManagedProcess;
  constructor(proc: ManagedProcess, what: string) {
    super(`${proc.name} exited (${proc.exitReason}) while waiting for ${what}:\n${proc.logTail()}`);
    this.name = "ProcessExitedError";
    this.process = proc;
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails with the logs. */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError: unknown;
  for (;;) {
    for (const proc of options.processes ?? []) {
      if (!proc.running) throw new ProcessExitedError(proc, options.what);
    }
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const logs = (options.processes ?? []).map((p) => `--- ${p.name} (${p.logPath})\n${p.logTail()}`).join("\n");
      const cause = lastError instanceof Error ? lastError.message : String(lastError ?? "condition never held");
      throw new Error(`timed out waiting for ${options.what}: ${cause}\n${logs}`);
    }
    await sleep(options.intervalMs ?? 200);
  }
}

/**
 * Registers an `afterEach` hook in the calling test file that prints the logs of every server
 * this file started when a test fails, so a failure explains itself in CI output. (Servers a
 * file never stopped are stopped after its last test, below.)
 */
export function superviseServers(): void {
  afterEach((t) => {
    // `passed` exists at run time on Node 24; @types/node does not declare it on every context.
    if ((t as { passed?: boolean }).passed !== false) return;
    for (const proc of started) {
      process.stderr.write(`\n--- log of ${proc.name} (${proc.logPath}) ---\n${proc.logTail()}\n`);
    }
  });
}

// After the last test of a test file (a root-level hook, registered on import so it runs after
// every suite's own `after`): stop every server still running. A setup that fails half-way has
// started servers its `after` never received, and their handles would keep the file's process
// alive (once for an hour in CI). Only in a test file's own process: not in the bench, nor in a
// helper process a test spawns (which inherits NODE_TEST_CONTEXT).
if (process.env.NODE_TEST_CONTEXT !== undefined && process.argv[1]?.endsWith(".test.ts")) {
  after(async () => {
    const leftovers = [...live];
    if (leftovers.length === 0) return;
    process.stdout.write(`# stopping ${leftovers.map((p) => p.name).join(", ")}: started, never stopped\n`);
    await Promise.all(leftovers.map((proc) => proc.stop()));
  });
}

/**
 * Starts servers in parallel, like `Promise.all`, but when one fails the others that did start
 * are stopped before the failure is thrown. With `Promise.all` a failed start left the rest
 * running and unassigned: the test's `after` could not stop them, and their handles kept the
 * test process alive until the runner's timeout (15 minutes).
 */
export async function startTogether<T extends readonly unknown[] | []>(
  starts: T,
): Promise<{ -readonly [P in keyof T]: Awaited<T[P]> }> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s) => s.status === "rejected") as PromiseRejectedResult | undefined;
  if (failed) {
    await Promise.allSettled(
      settled.flatMap((s) => (s.status === "fulfilled" ? stoppables(s.value) : [])).map((server) => server.stop()),
    );
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as {
    -readonly [P in keyof T]: Awaited<T[P]>;
  };
}

/** What in a started value can be stopped: the value, or the members of an array of them. */
function stoppables(value: unknown): { stop(): Promise<unknown> }[] {
  if (Array.isArray(value)) return value.flatMap(stoppables);
  const stop = (value as { stop?: unknown } | null | undefined)?.stop;
  return typeof stop === "function" ? [value as { stop(): Promise<unknown> }] : [];
}
