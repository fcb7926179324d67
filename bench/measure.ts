/**
 * Shared measuring helpers: the operating system's memory figures for a process
 * (/proc/<pid>/status), CPU time (/proc/<pid>/stat), child processes with their output, and
 * small statistics and formatting.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export const MiB = 1024 * 1024;

export interface ProcMemory {
  /** VmRSS: resident now. */
  readonly rss: number;
  /** VmHWM: the peak resident set since the process started (the kernel's high-water mark). */
  readonly hwm: number;
}

/** Undefined once the process is gone. */
export function procMemory(pid: number): ProcMemory | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string): number | undefined => {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
      return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
    };
    const rss = kib("VmRSS");
    const hwm = kib("VmHWM");
    return rss === undefined || hwm === undefined ? undefined : { rss, hwm };
  } catch {
    return undefined;
  }
}

/**
 * Buffers for the bare-SDK Azure baseline's `uploadStream` (bench/client.ts), which keeps m
 * block buffers and stages ceil(3m/4) blocks at once: the smallest m that stages `concurrency`
 * blocks at once, so that the baseline has as many in flight as the executor's store.
 */
export function azureBufferCount(concurrency: number): number {
  return Math.floor((4 * (concurrency - 1)) / 3) + 1;
}

/** utime + stime of a process, in milliseconds (clock ticks are 100 Hz on Linux). */
export function procCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields after the command: state is [0]; utime is field 14 overall → index 11 here.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Samples a process's memory every `intervalMs` until `stop`; keeps the last (highest) VmHWM. */
export function sampleMemory(
  pid: number,
  intervalMs = 25,
): { stop(): ProcMemory | undefined; now(): ProcMemory | undefined; cpuMs(): number | undefined } {
  let last: ProcMemory | undefined = procMemory(pid);
  // CPU time is sampled too: /proc/<pid>/stat is gone once the process exits.
  let lastCpu: number | undefined = procCpuMs(pid);
  const sample = (): ProcMemory | undefined => {
    const m = procMemory(pid);
    if (m) last = m;
    const cpu = procCpuMs(pid);
    if (cpu !== undefined && !Number.isNaN(cpu)) lastCpu = cpu;
    return m;
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return last;
    },
    now: sample,
    cpuMs: () => lastCpu,
  };
}

export interface ChildRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly memory: ProcMemory | undefined;
  /** utime + stime of the child, as last sampled before it exited (within 25 ms of its end). */
  readonly cpuMs: number | undefined;
}

/**
 * A measured process that has used no CPU for this long is stuck, not slow: every run here
 * moves bytes or polls. Seen once (2026-12-07): the bare SDK's download → POST baseline sat
 * idle for 10 minutes and the whole bench with it.
 */
const stallMs = 120_000;

/**
 * Runs `node <args>` (this Node binary), sampling its memory; `onSpawn` gets the pid. Rejects,
 * after killing the child, when it uses no CPU for `stallMs`.
 */
export function runNode(
  args: readonly string[],
  env: Record<string, string>,
  onSpawn?: (pid: number, sampler: ReturnType<typeof sampleMemory>) => void,
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [...args], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-20_000);
    });
    const pid = child.pid;
    const sampler = pid === undefined ? undefined : sampleMemory(pid);
    if (pid !== undefined && sampler) onSpawn?.(pid, sampler);
    child.on("error", reject);
    child.on("exit", () => {
      // Read before the zombie is reaped? /proc/<pid>/status loses Vm* at exit; the sampler
      // kept the last value seen while it ran (VmHWM only grows).
    });
    let progress = { cpuMs: sampler?.cpuMs(), at: Date.now() };
    let stalled = false;
    const watchdog = setInterval(() => {
      const cpuMs = sampler?.cpuMs();
      if (cpuMs !== progress.cpuMs) progress = { cpuMs, at: Date.now() };
      else if (Date.now() - progress.at > stallMs) {
        stalled = true;
        child.kill("SIGKILL");
      }
    }, 5_000);
    child.on("close", (code) => {
      clearInterval(watchdog);
      const memory = sampler?.stop();
      if (stalled) {
        // A client's job (JSON) carries the bench's credentials: named by its mode only.
        const what = args.map((a) => (a.startsWith("{") ? (/"mode":"([a-z-]+)"/.exec(a)?.[1] ?? "{…}") : a)).join(" ");
        reject(new Error(`stalled: no CPU time for ${stallMs / 1000} s, killed: node ${what}\n${stderr.slice(-3000)}`));
        return;
      }
      resolve({ code, stdout, stderr, startedAt, endedAt: Date.now(), memory, cpuMs: sampler?.cpuMs() });
    });
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Nearest-rank percentile (p in 0–100). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] ?? Number.NaN;
}

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(0);
}

/** CPU seconds (user + system, all threads) per GiB moved; NaN without a CPU figure. */
export function cpuPerGiB(m: { readonly bytes: number; readonly cpuMs?: number | undefined }): number {
  return m.cpuMs === undefined || m.bytes <= 0 ? Number.NaN : m.cpuMs / 1000 / (m.bytes / (1024 * MiB));
}

export function rate(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text} (e.g. 256M, 1G)`);
  const unit = (m[2] ?? "").toUpperCase();
  const factor = unit === "G" ? 1024 * MiB : unit === "M" ? MiB : unit === "K" ? 1024 : 1;
  return Math.round(Number(m[1]) * factor);
}

export function sizeLabel(bytes: number): string {
  const round = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  return bytes >= 1024 * MiB ? `${round(bytes / (1024 * MiB))} GiB` : `${round(bytes / MiB)} MiB`;
}

/** A Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}
