/**
 * Runs the real `bao-backup` executable the way a Job would: environment variables for
 * configuration, files for the mounted credentials / token / CA, and a termination-message
 * file to read the result from. Paths are overridden through the executor's env contract.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../servers/catalog.ts";
import type { OpenBaoCluster } from "../servers/openbao.ts";
import { scratchDir, waitFor } from "../servers/process.ts";

export const cli = join(projectRoot, "src", "cli", "main.ts");

export interface ExecutorRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The parsed termination message (undefined if none was written). */
  readonly result: Record<string, unknown> | undefined;
  readonly raw: string;
}

export interface Mounts {
  readonly dir: string;
  readonly env: Record<string, string>;
}

/** Writes the files a Job would mount and returns the env pointing at them. */
export function mounts(options: {
  cluster: OpenBaoCluster;
  credentials?: Record<string, string>;
  token?: string;
  jwt?: string;
}): Mounts {
  const dir = scratchDir("executor");
  const credentialsDir = join(dir, "storage");
  mkdirSync(credentialsDir);
  for (const [name, value] of Object.entries(options.credentials ?? {}))
    writeFileSync(join(credentialsDir, name), value);
  writeFileSync(join(dir, "ca.crt"), options.cluster.caPem);
  const env: Record<string, string> = {
    BACKUP_CREDENTIALS_DIR: credentialsDir,
    BACKUP_CA_FILE: join(dir, "ca.crt"),
    BACKUP_TERMINATION_MESSAGE_PATH: join(dir, "termination-log"),
  };
  if (options.token !== undefined) {
    writeFileSync(join(dir, "token"), options.token);
    Object.assign(env, { BACKUP_AUTH_METHOD: "token", BACKUP_TOKEN_FILE: join(dir, "token") });
  }
  if (options.jwt !== undefined) {
    writeFileSync(join(dir, "jwt"), options.jwt);
    Object.assign(env, { BACKUP_AUTH_METHOD: "jwt", BACKUP_JWT_TOKEN_FILE: join(dir, "jwt") });
  }
  return { dir, env };
}

export function runExecutor(
  mode: "backup" | "restore" | "confirm" | "drill",
  env: Record<string, string>,
  options: { onStart?: (pid: number) => void; args?: readonly string[] } = {},
): Promise<ExecutorRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, mode, ...(options.args ?? [])], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    if (child.pid !== undefined) options.onStart?.(child.pid);
    child.on("error", reject);
    child.on("close", (code) => {
      let raw = "";
      let result: Record<string, unknown> | undefined;
      const path = env.BACKUP_TERMINATION_MESSAGE_PATH;
      if (path) {
        try {
          raw = readFileSync(path, "utf8");
          result = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          result = undefined;
        }
      }
      resolve({ code, stdout, stderr, result, raw });
    });
  });
}

/**
 * A restore expected to succeed. OpenBao v2.4.0's autopilot race can crash a node as the restore
 * shuts its active-node systems down (the fixture restarts it, as a kubelet would); the snapshot
 * is then never applied and the run fails `RestoreNotServed` instead of claiming success. What
 * the runbook tells a person to do next is run it again: so does this, once, and only when the
 * fixture saw that crash during the run. Any other failure is returned as it is.
 */
export async function runRestore(
  cluster: Pick<OpenBaoCluster, "crashRestarts">,
  env: Record<string, string>,
  options: { args?: readonly string[] } = {},
): Promise<ExecutorRun> {
  const crashes = cluster.crashRestarts;
  const first = await runExecutor("restore", env, options);
  if (first.result?.reason !== "RestoreNotServed" || cluster.crashRestarts === crashes) return first;
  process.stdout.write(`# OpenBao crashed during the restore, which failed RestoreNotServed: run again\n`);
  return runExecutor("restore", env, options);
}

/** Base env for a cluster: name, namespace and the explicit member list. */
export function clusterEnv(cluster: OpenBaoCluster, order?: readonly number[]): Record<string, string> {
  const addresses = (order ?? cluster.nodes.map((n) => n.index)).map((i) => cluster.addresses[i]);
  return {
    CLUSTER_NAME: "bao",
    CLUSTER_NAMESPACE: "openbao",
    BACKUP_OPENBAO_ADDRESSES: addresses.join(","),
  };
}

export const showRun = (run: ExecutorRun): string => `exit ${run.code}\n${run.stdout}${run.stderr}${run.raw}`;

/**
 * The proof that a fault lost nothing: a backup now succeeds, and restoring it brings back a
 * value that was overwritten after it was taken. `env` is a complete backup environment;
 * restore runs with the same one plus the key.
 */
export async function assertBackupAndRestoreWork(
  cluster: OpenBaoCluster,
  env: Record<string, string>,
  label: string,
): Promise<void> {
  const leader = await cluster.leaderIndex();
  await cluster.writeSecret(`marker/${label}`, { value: "before" }, leader);
  const backup = await runExecutor("backup", env);
  assert.equal(backup.code, 0, `the next backup succeeds: ${showRun(backup)}`);
  await cluster.writeSecret(`marker/${label}`, { value: "after" }, leader);
  const restoreEnv = { ...env, BACKUP_KEY: String(backup.result?.key) };
  const restore = await runRestore(cluster, restoreEnv);
  assert.equal(restore.code, 0, `the restore succeeds: ${showRun(restore)}`);
  assert.equal(
    await waitFor(
      async () => {
        const now = await cluster.leaderIndex();
        return (await cluster.readSecret(`marker/${label}`, now).catch(() => undefined))?.value === "before"
          ? "before"
          : undefined;
      },
      { what: `restored marker/${label}`, timeoutMs: 60_000 },
    ),
    "before",
  );
  await cluster.waitHealthy();
}
