/**
 * Issue 14: docs/restore-runbook.md, "Disaster recovery from a workstation", run as written.
 *
 * The section's shell blocks marked `<!-- run-by: test/docs/workstation-restore.test.ts -->`
 * run literally, in order, in one `bash -euo pipefail` (one shell session, as a person would
 * type them), with `bao` (the real OpenBao binary), `bao-backup` (this checkout) and `jq` on
 * PATH. The only substitution is the block marked `… settings`: its variables are set by this
 * test instead (a real MinIO holding backups a real OpenBao made, free ports, the lost
 * cluster's unseal key and token), and the test checks it sets exactly the variables that
 * block names. No Kubernetes, no operator, no container paths: the environment holds nothing
 * else, `/etc/bao-backup` and `/dev/termination-log` do not exist.
 *
 * The runbook starts a fresh single-node OpenBao, restores `--key latest` with `--force
 * --expect-sealed`, unseals it with the lost cluster's key and reads a secret back; the test
 * then reads every secret back itself. A wrong command fails the script (`set -e`) or one of
 * the checks.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { clusterEnv, mounts, runExecutor, showRun } from "../executor/harness.ts";
import { projectRoot, serverBinary } from "../servers/catalog.ts";
import { type MinioServer, startMinio } from "../servers/minio.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { freePort } from "../servers/ports.ts";
import { removeScratch, scratchDir, superviseServers } from "../servers/process.ts";

superviseServers();

const runbookPath = join(projectRoot, "docs", "restore-runbook.md");
const thisFile = relative(projectRoot, new URL(import.meta.url).pathname);
const heading = "## Disaster recovery from a workstation (no Kubernetes, no operator)";

interface Block {
  readonly line: number;
  readonly role: string;
  readonly body: string;
}

/** The section's blocks marked `run-by: <this file> [role]`, in order. */
function runbookBlocks(): Block[] {
  const lines = readFileSync(runbookPath, "utf8").split("\n");
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `docs/restore-runbook.md has the section "${heading}"`);
  const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  const blocks: Block[] = [];
  for (let i = start; i < (end === -1 ? lines.length : end); i++) {
    if (!/^```\s*(sh|bash)\s*$/.test(lines[i] ?? "")) {
      if (/^```/.test(lines[i] ?? "")) {
        // Skip other fences whole.
        i++;
        while (i < lines.length && !/^```\s*$/.test(lines[i] ?? "")) i++;
      }
      continue;
    }
    let j = i - 1;
    while (j > start && (lines[j] ?? "").trim() === "") j--;
    const marker = /^<!--\s*run-by:\s*(\S+)(?:\s+(\S+))?\s*-->$/.exec((lines[j] ?? "").trim());
    const body: string[] = [];
    const open = i;
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ""); i++) body.push(lines[i] ?? "");
    assert.ok(
      marker && marker[1] === thisFile,
      `docs/restore-runbook.md:${open + 1}: a shell block not run by ${thisFile}`,
    );
    blocks.push({ line: open + 1, role: marker[2] ?? "step", body: body.join("\n") });
  }
  return blocks;
}

/** Names the settings block exports (`export A=… B=…`), comments ignored. */
function exportedNames(body: string): string[] {
  const names: string[] = [];
  for (const raw of body.split("\n")) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line.startsWith("export ")) continue;
    for (const m of line.matchAll(/(?:^export\s+|\s)([A-Za-z_][A-Za-z0-9_]*)=/g)) names.push(m[1] ?? "");
  }
  return names.sort();
}

function tail(text: string, chars = 4000): string {
  return text.length > chars ? `…${text.slice(-chars)}` : text;
}

describe("docs/restore-runbook.md: disaster recovery from a workstation, run as written", () => {
  let lost: OpenBaoCluster | undefined;
  let minio: MinioServer | undefined;
  let dir = "";
  const bucket = "dr-backups";
  const secretCount = 25;
  const facts = { rootToken: "", unsealKey: "", clusterId: "", firstKey: "", latestKey: "" };

  before(async () => {
    [lost, minio] = await Promise.all([startOpenBao({ nodes: 1 }), startMinio({ name: "minio-dr" })]);
    await minio.createBucket(bucket);
    dir = scratchDir("workstation-dr");
    // The lost cluster, backed up twice the way its Jobs did (token file, credentials files).
    const job = {
      ...clusterEnv(lost),
      BACKUP_PROVIDER: "s3",
      BACKUP_ENDPOINT: minio.endpoint,
      BACKUP_BUCKET: bucket,
      BACKUP_USE_PATH_STYLE: "true",
      BACKUP_PATH_PREFIX: "clusters/prod",
      ...mounts({
        cluster: lost,
        credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
        token: lost.rootToken,
      }).env,
    };
    for (let i = 0; i < secretCount; i++) await lost.writeSecret(`app/s${i}`, { value: `secret-${i}` });
    await lost.writeSecret("app/db", { password: "first" });
    const first = await runExecutor("backup", job);
    assert.equal(first.code, 0, showRun(first));
    await lost.writeSecret("app/db", { password: "rotated" });
    await lost.writeSecret("app/late", { value: "only in the newest backup" });
    const second = await runExecutor("backup", { ...job, BACKUP_TYPE: "pre-upgrade" });
    assert.equal(second.code, 0, showRun(second));
    const health = await lost.call<{ cluster_id: string }>("GET", "sys/health");
    Object.assign(facts, {
      rootToken: lost.rootToken,
      unsealKey: lost.unsealKey,
      clusterId: health.cluster_id,
      firstKey: String(first.result?.key),
      latestKey: String(second.result?.key),
    });
    // The cluster is gone; what is left is the bucket, its unseal key and a token of it.
    await lost.stop();
    lost = undefined;
  });

  after(async () => {
    await Promise.all([lost?.stop(), minio?.stop()]);
    if (dir) removeScratch(dir);
  });

  test("the section's commands restore the newest verified backup into a fresh OpenBao, unsealed with the lost cluster's key", async (t) => {
    assert.ok(minio);
    const blocks = runbookBlocks();
    const settings = blocks.filter((b) => b.role === "settings");
    const steps = blocks.filter((b) => b.role === "step");
    assert.equal(settings.length, 1, "one settings block");
    assert.equal(blocks[0]?.role, "settings", "the settings come first");
    assert.equal(steps.length + settings.length, blocks.length, "roles are settings or none");
    const script = steps.map((b) => b.body).join("\n");
    assert.match(script, /^bao-backup restore .*--key latest/m, "the runbook restores --key latest");
    assert.match(script, /^bao server /m, "the runbook starts the fresh OpenBao itself");

    // Tools on PATH: the real OpenBao binary as `bao`, this checkout as `bao-backup`, jq.
    const bin = join(dir, "bin");
    mkdirSync(bin);
    symlinkSync(process.env.OPENBAO_BACKUP_BAO_BIN ?? serverBinary("openbao"), join(bin, "bao"));
    writeFileSync(
      join(bin, "bao-backup"),
      `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(projectRoot, "src", "cli", "main.ts"))} "$@"\n`,
    );
    chmodSync(join(bin, "bao-backup"), 0o755);
    const jq = spawnSync("sh", ["-c", "command -v jq"], { encoding: "utf8" }).stdout.trim();
    assert.ok(jq, "jq is installed (the runbook needs it)");
    symlinkSync(jq, join(bin, "jq"));

    // The settings block, substituted: the same variables, this test's values.
    const home = join(dir, "home");
    mkdirSync(home);
    const apiPort = await freePort();
    let clusterPort = await freePort();
    while (clusterPort === apiPort) clusterPort = await freePort();
    const values: Record<string, string> = {
      DR_DIR: join(home, "openbao-dr"),
      DR_API_PORT: String(apiPort),
      DR_CLUSTER_PORT: String(clusterPort),
      BAO_ADDR: `http://127.0.0.1:${apiPort}`,
      BACKUP_PROVIDER: "s3",
      BACKUP_BUCKET: bucket,
      BACKUP_REGION: "us-east-1",
      BACKUP_PATH_PREFIX: "clusters/prod",
      BACKUP_ENDPOINT: minio.endpoint,
      BACKUP_USE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
      CLUSTER_NAME: "bao",
      CLUSTER_NAMESPACE: "openbao",
      ORIGINAL_UNSEAL_KEYS: facts.unsealKey,
      ORIGINAL_TOKEN: facts.rootToken,
      CHECK_SECRET: "secret/app/db",
    };
    assert.deepEqual(
      exportedNames(settings[0]?.body ?? ""),
      Object.keys(values).sort(),
      "the test sets exactly the variables the settings block names",
    );
    // Nothing of a container: none of the Job's mounts, no termination-log file.
    for (const path of ["/etc/bao-backup", "/var/run/secrets/openbao"]) assert.equal(existsSync(path), false, path);
    const terminationLogBefore = existsSync("/dev/termination-log");

    const env: NodeJS.ProcessEnv = { PATH: `${bin}:/usr/bin:/bin`, HOME: home, ...values };
    const marked = steps.map((b) => `echo "### docs/restore-runbook.md:${b.line}" >&2\n${b.body}`).join("\n");
    let stdout = "";
    let stderr = "";
    // Its own process group, so the server the runbook starts in the background is stopped with it.
    const child: ChildProcess = spawn("bash", ["-euo", "pipefail", "-c", marked], {
      cwd: home,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const group = child.pid;
    assert.ok(group);
    child.stdout?.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => killGroup(group, "SIGKILL"), 240_000);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearTimeout(timer);

    try {
      const serverLog = (): string => {
        try {
          return tail(readFileSync(join(values.DR_DIR ?? "", "openbao.log"), "utf8"), 3000);
        } catch {
          return "(no openbao.log)";
        }
      };
      const shown = `exit ${code}\n--- stdout\n${tail(stdout)}\n--- stderr\n${tail(stderr)}\n--- openbao.log\n${serverLog()}`;
      assert.equal(code, 0, `the runbook's commands fail:\n${shown}`);
      t.diagnostic(tail(stdout, 1500));

      // What the commands printed: the list, the chosen key, the seal, the secret.
      assert.ok(
        stdout.includes(facts.firstKey) && stdout.includes(facts.latestKey),
        `list shows both backups\n${shown}`,
      );
      assert.match(stdout, /"sealType": "shamir"/, shown);
      assert.ok(stdout.includes(`"clusterId": "${facts.clusterId}"`), `the manifest's cluster id\n${shown}`);
      assert.match(
        stdout,
        new RegExp(`^restored ${facts.latestKey} \\(the newest verified backup\\) .*OpenBao sealed itself`, "m"),
        shown,
      );
      assert.match(stdout, /password\s+rotated/, `bao kv get shows the restored secret\n${shown}`);
      for (const secret of [facts.rootToken, facts.unsealKey, minio.secretAccessKey]) {
        assert.ok(!stdout.includes(secret) && !stderr.includes(secret), "no secret in the output");
      }

      // Read back independently: every secret, with the lost cluster's token, from the new OpenBao.
      const read = async (
        path: string,
        token: string,
      ): Promise<{ status: number; data: Record<string, string> | undefined }> => {
        const res = await fetch(`${values.BAO_ADDR}/v1/secret/data/${path}`, { headers: { "x-vault-token": token } });
        const body = (await res.json().catch(() => ({}))) as { data?: { data?: Record<string, string> } };
        return { status: res.status, data: body.data?.data };
      };
      for (let i = 0; i < secretCount; i++) {
        assert.deepEqual((await read(`app/s${i}`, facts.rootToken)).data, { value: `secret-${i}` }, `app/s${i}`);
      }
      assert.deepEqual((await read("app/db", facts.rootToken)).data, { password: "rotated" });
      assert.deepEqual((await read("app/late", facts.rootToken)).data, { value: "only in the newest backup" });
      // The fresh OpenBao's own root token went with the data it belonged to.
      const init = JSON.parse(readFileSync(join(values.DR_DIR ?? "", "init.json"), "utf8")) as { root_token: string };
      assert.equal((await read("app/db", init.root_token)).status, 403);
      const health = (await (await fetch(`${values.BAO_ADDR}/v1/sys/health`)).json()) as { cluster_id?: string };
      assert.equal(health.cluster_id, facts.clusterId, "the new OpenBao now is the lost cluster (its cluster id)");

      // No termination message was written without being asked for.
      assert.equal(existsSync("/dev/termination-log"), terminationLogBefore);
    } finally {
      await stopGroup(group);
    }
  });
});

function killGroup(group: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch {
    return false; // ESRCH: nothing left in the group
  }
}

/** Stops whatever the script left running (the OpenBao server): TERM, then KILL after 15 s. */
async function stopGroup(group: number): Promise<void> {
  if (!killGroup(group, "SIGTERM")) return;
  for (let i = 0; i < 60; i++) {
    await sleep(250);
    if (!killGroup(group, 0)) return;
  }
  killGroup(group, "SIGKILL");
}
