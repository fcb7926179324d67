/**
 * What a real node changes on the host, written down before it changes it, and undone —
 * by the fixture's `stop`, by the exit hooks when a run is interrupted, or by the next run
 * when the last one was killed outright (its journal is still on disk).
 *
 * A kubelet and containerd write outside every directory they are given: kernel sysctls the
 * kubelet sets with no opt-out (vm.overcommit_memory, kernel.panic, …), cgroups `/kubepods`
 * in every v1 hierarchy, mounts (overlay rootfs, tmpfs volumes, network namespaces), the
 * bridge and addresses the node needs, and a few fixed host paths (/var/lib/kubelet/
 * device-plugins, /var/log/containers, /var/lib/cni, /run/containerd, /run/runc). Container
 * processes outlive containerd (their shims re-parent to init), so they are found through
 * their cgroups, not their parents.
 *
 * Everything here is synchronous: it must also run inside an `exit` hook.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Where the node keeps its state, and its bridge: fixed per machine (one kubelet owns the host),
 * so a later run — or `npm test` after its runner — finds what an interrupted one left.
 */
export const nodeStateDir = "/tmp/openbao-backup-node";
export const bridgeName = "obk0";

/** The sysctls a kubelet (or the CNI bridge plugin) may set, restored on teardown. */
export const watchedSysctls = [
  "vm.overcommit_memory",
  "vm.panic_on_oom",
  "kernel.panic",
  "kernel.panic_on_oops",
  "kernel.keys.root_maxkeys",
  "kernel.keys.root_maxbytes",
  "net.ipv4.ip_forward",
] as const;

/** Fixed host paths the node's programs write whatever their flags say. */
export const watchedHostPaths = [
  "/var/lib/kubelet",
  "/var/log/containers",
  "/var/log/pods",
  "/var/lib/cni",
  "/run/containerd",
  "/run/runc",
  "/run/nri",
  "/usr/libexec/kubernetes",
] as const;

export interface Journal {
  readonly stateDir: string;
  readonly bridge: string;
  /** The containerd socket: its shims carry it on their command line. */
  readonly containerdSocket: string;
  readonly sysctls: Readonly<Record<string, string>>;
  /** Host paths that existed before the node started (the others are removed). */
  readonly preexisting: readonly string[];
  /** PIDs of the processes the fixture started (already stopped ones are harmless). */
  readonly pids: readonly number[];
}

const journalFile = (stateDir: string): string => join(stateDir, "host-journal.json");

function sysctlPath(key: string): string {
  return join("/proc/sys", ...key.split("."));
}

export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(sysctlPath(key), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Records the host's state before the node touches it; returns the journal. */
export function beginJournal(stateDir: string, bridge: string, containerdSocket: string): Journal {
  mkdirSync(stateDir, { recursive: true });
  const sysctls: Record<string, string> = {};
  for (const key of watchedSysctls) {
    const value = readSysctl(key);
    if (value !== undefined) sysctls[key] = value;
  }
  const journal: Journal = {
    stateDir,
    bridge,
    containerdSocket,
    sysctls,
    preexisting: watchedHostPaths.filter((p) => existsSync(p)),
    pids: [],
  };
  writeFileSync(journalFile(stateDir), JSON.stringify(journal, null, 2));
  return journal;
}

/** Adds a started process to the journal, so even a later run can stop it. */
export function journalPid(journal: Journal, pid: number): Journal {
  const next = { ...journal, pids: [...journal.pids, pid] };
  writeFileSync(journalFile(journal.stateDir), JSON.stringify(next, null, 2));
  return next;
}

export function readJournal(stateDir: string): Journal | undefined {
  try {
    return JSON.parse(readFileSync(journalFile(stateDir), "utf8")) as Journal;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function allPids(): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** The v1 hierarchies (and the unified one) mounted under /sys/fs/cgroup. */
function cgroupHierarchies(): string[] {
  try {
    return readdirSync("/sys/fs/cgroup", { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join("/sys/fs/cgroup", d.name));
  } catch {
    return [];
  }
}

/** Every cgroup directory under `<hierarchy>/kubepods`, deepest first. */
function kubepodsCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(dir, d.name));
    } catch {
      return;
    }
    for (const child of entries) walk(child);
    found.push(dir);
  };
  for (const hierarchy of cgroupHierarchies()) {
    const root = join(hierarchy, "kubepods");
    if (existsSync(root)) walk(root);
  }
  return found;
}

/** PIDs in the node's Pod cgroups: every container process and the Pods' sandboxes. */
function podProcesses(): number[] {
  const pids = new Set<number>();
  for (const dir of kubepodsCgroups()) {
    try {
      for (const line of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n")) {
        if (line.trim() !== "") pids.add(Number(line));
      }
    } catch {
      // a cgroup removed meanwhile
    }
  }
  return [...pids];
}

/** Mount points under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((line) => line.split(" ")[4] ?? "")
      .filter((mount) => mount === dir || mount.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
  } catch {
    return [];
  }
}

function linkExists(name: string): boolean {
  return existsSync(join("/sys/class/net", name));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Stops everything the journal's node started and undoes its host changes, in an order where
 * nothing recreates what was just removed: processes (ours, then every Pod process by cgroup,
 * then containerd's shims), mounts, cgroups, the bridge, sysctls, host paths, the state dir.
 */
export function undoHost(journal: Journal): void {
  for (const pid of journal.pids) kill(pid);
  for (let round = 0; round < 20; round++) {
    const shims = allPids().filter((pid) => cmdline(pid).includes(journal.containerdSocket));
    const victims = [...podProcesses(), ...shims, ...journal.pids.filter(alive)];
    if (victims.length === 0) break;
    for (const pid of victims) kill(pid);
    sleepSync(100);
  }
  for (let round = 0; round < 3; round++) {
    for (const mount of mountsUnder(journal.stateDir)) {
      if (spawnSync("umount", [mount], { stdio: "ignore" }).status !== 0) {
        spawnSync("umount", ["-l", mount], { stdio: "ignore" });
      }
    }
  }
  // A cgroup can be removed once empty; its processes were killed above (exit is async: retry).
  for (let round = 0; round < 20 && kubepodsCgroups().length > 0; round++) {
    for (const dir of kubepodsCgroups()) spawnSync("rmdir", [dir], { stdio: "ignore" });
    if (kubepodsCgroups().length > 0) sleepSync(100);
  }
  if (linkExists(journal.bridge)) spawnSync("ip", ["link", "del", journal.bridge], { stdio: "ignore" });
  for (const [key, value] of Object.entries(journal.sysctls)) {
    if (readSysctl(key) !== value) {
      try {
        writeFileSync(sysctlPath(key), value);
      } catch {
        // reported by findLeftovers
      }
    }
  }
  for (const path of watchedHostPaths) {
    if (!journal.preexisting.includes(path)) rmSync(path, { recursive: true, force: true });
  }
  if (mountsUnder(journal.stateDir).length === 0) rmSync(journal.stateDir, { recursive: true, force: true });
}

/** Undoes what an earlier, interrupted run left (its journal survived it); returns whether it did. */
export function undoStaleNode(stateDir: string): boolean {
  const journal = readJournal(stateDir);
  if (!journal) return false;
  undoHost(journal);
  return true;
}

/** What the host looked like before: compared by `findLeftovers` afterwards. */
export interface HostBaseline {
  readonly sysctls: Readonly<Record<string, string | undefined>>;
  readonly hostPaths: readonly string[];
  /** Processes of the programs a node run starts that were already running before. */
  readonly pids: readonly number[];
}

/** The programs a node run starts (the control plane, the node, the servers Pods reach). */
const nodePrograms = [
  "kubelet",
  "kube-controller-manager",
  "kube-scheduler",
  "kube-apiserver",
  "etcd",
  "containerd",
  "containerd-shim",
  "containerd-shim-runc-v2",
  "bao",
  "minio",
  "fake-gcs-server",
];

function programOf(pid: number): string {
  return cmdline(pid).split(" ")[0]?.split("/").pop() ?? "";
}

export function hostBaseline(): HostBaseline {
  return {
    sysctls: Object.fromEntries(watchedSysctls.map((key) => [key, readSysctl(key)])),
    hostPaths: watchedHostPaths.filter((p) => existsSync(p)),
    pids: allPids().filter((pid) => nodePrograms.includes(programOf(pid))),
  };
}

/**
 * Everything a node could leave behind, as readable lines (empty: the host is as it was):
 * processes of the node's programs or in Pod cgroups, mounts under the state dir, the bridge,
 * kubepods cgroups, changed sysctls, host paths that appeared, the state dir itself.
 */
export function findLeftovers(baseline: HostBaseline, stateDir: string, bridge: string): string[] {
  const found: string[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid || baseline.pids.includes(pid)) continue;
    const line = cmdline(pid);
    if (nodePrograms.includes(programOf(pid)) || line.includes(stateDir)) found.push(`process ${pid}: ${line}`);
  }
  for (const pid of podProcesses()) found.push(`process ${pid} in a kubepods cgroup: ${cmdline(pid)}`);
  for (const mount of mountsUnder(stateDir)) found.push(`mount ${mount}`);
  for (const dir of kubepodsCgroups()) found.push(`cgroup ${dir}`);
  if (linkExists(bridge)) found.push(`network link ${bridge}`);
  for (const [key, before] of Object.entries(baseline.sysctls)) {
    const now = readSysctl(key);
    if (now !== before) found.push(`sysctl ${key} = ${now} (was ${before})`);
  }
  for (const path of watchedHostPaths) {
    if (existsSync(path) && !baseline.hostPaths.includes(path)) found.push(`host path ${path}`);
  }
  if (existsSync(stateDir)) found.push(`state dir ${stateDir}`);
  return found;
}

/** `ip …`, failing with its stderr. */
export function ip(args: readonly string[]): void {
  execFileSync("ip", [...args], { stdio: ["ignore", "ignore", "pipe"] });
}
