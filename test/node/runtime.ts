/**
 * The container runtime of the real node (containerd, runc, the CNI plugins): Debian packages,
 * installed by the project's own setup (`npm test` → prepare) when the machine is root and has
 * apt — nothing installed by hand. Also the single answer to "can this machine run a node?",
 * so the `node` tier skips with one clear line where it cannot, and fails where it must run
 * (`CI=true`).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

/** Where Debian's containernetworking-plugins puts bridge, host-local and loopback. */
export const cniBinDir = "/usr/lib/cni";
export const containerdBinary = "/usr/bin/containerd";
export const ctrBinary = "/usr/bin/ctr";
const runcBinary = "/usr/sbin/runc";

/** Debian bookworm's versions, measured working with kubelet v1.36.3 (shared/realnode). */
const packages = ["containerd", "runc", "containernetworking-plugins"] as const;

function installed(): boolean {
  return (
    existsSync(containerdBinary) && existsSync(ctrBinary) && existsSync(runcBinary) && existsSync(`${cniBinDir}/bridge`)
  );
}

/** Why this machine cannot run a node, or undefined when it can (packages aside). */
export function nodeUnsupportedReason(): string | undefined {
  if (process.platform !== "linux") return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return "not root (a kubelet and containerd need root)";
  const filesystems = readFileSync("/proc/filesystems", "utf8");
  if (!/\boverlay\b/.test(filesystems)) return "the kernel has no overlay filesystem";
  if (!existsSync("/sys/fs/cgroup/memory") && !existsSync("/sys/fs/cgroup/cgroup.controllers")) {
    return "no memory cgroup mounted under /sys/fs/cgroup";
  }
  if (!existsSync("/proc/sys/net/bridge") && !existsSync("/sys/module/bridge") && !bridgeBuiltIn()) {
    return "the kernel has no bridge support";
  }
  return undefined;
}

function bridgeBuiltIn(): boolean {
  try {
    return readFileSync(
      `/lib/modules/${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}/modules.builtin`,
      "utf8",
    )
      .split("\n")
      .some((line) => line.endsWith("/bridge.ko"));
  } catch {
    // No module list (a VM kernel with everything built in): let the fixture's `ip link add` decide.
    return true;
  }
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => {
      output = (output + c.toString()).slice(-6000);
    });
    child.stderr.on("data", (c: Buffer) => {
      output = (output + c.toString()).slice(-6000);
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(" ")} exited ${code}:\n${output}`)),
    );
  });
}

/**
 * Installs the runtime packages if this machine can run a node and they are missing. Returns
 * a line for the progress log. `--no-install-recommends`, and no iptables: nothing on the node
 * needs it, and without it the kubelet adds no chains to the host's firewall.
 */
export async function ensureNodeRuntime(log: (line: string) => void): Promise<void> {
  const reason = nodeUnsupportedReason();
  if (reason !== undefined) {
    log(`node runtime: not installed — ${reason}; the node tier will skip`);
    return;
  }
  if (installed()) {
    log("node runtime: containerd, runc, CNI plugins present");
    return;
  }
  if (!existsSync("/usr/bin/apt-get")) {
    log("node runtime: containerd/runc/CNI plugins missing and no apt-get here; the node tier will skip");
    return;
  }
  const started = Date.now();
  log(`node runtime: installing ${packages.join(", ")} (Debian packages, first run only)…`);
  // No service is started by the package scripts: policy-rc.d is not needed because this
  // machine has no init system running them; the node fixture starts its own containerd.
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = ["install", "-y", "-q", "--no-install-recommends", ...packages];
  try {
    await run("apt-get", install, env);
  } catch {
    await run("apt-get", ["update", "-q"], env);
    await run("apt-get", install, env);
  }
  if (!installed()) throw new Error(`apt-get installed ${packages.join(", ")} but the binaries are not where expected`);
  log(`node runtime: installed in ${Math.round((Date.now() - started) / 1000)}s`);
}

/** Whether the runtime is installed (after `ensureNodeRuntime`). */
export function nodeRuntimeInstalled(): boolean {
  return installed();
}
