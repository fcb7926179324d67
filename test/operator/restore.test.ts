/**
 * Issue 6 acceptance: OpenBaoRestore end to end. The operator (BackupManager + RestoreManager,
 * a child process) against the real kube-apiserver; Jobs run by the job runner with the real
 * executor; a real 3-node OpenBao; MinIO, fake-gcs-server and Azurite.
 *
 * The tests share one OpenBao and run one after the other: a restore rewinds all of OpenBao,
 * so each test writes its own secrets, backs them up, changes them and restores. After
 * `Completed` every member is read at once, without waiting: the restore Job only succeeds
 * once every member serves the restored data.
 */
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { OpenBaoCluster, OpenBaoRestore } from "../../src/api/types.ts";
import type { ProviderName } from "../executor/targets.ts";
import { printJobRunnerOnFailure } from "../servers/job-runner.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { namespace, type RestoreStack, startRestoreStack } from "./restore-stack.ts";

superviseServers();
printJobRunnerOnFailure();

const clusters = ["bao-s3", "bao-gcs", "bao-azure", "waits", "override", "displaced", "fails", "deleted"];
const condition = (o: OpenBaoRestore | OpenBaoCluster, type: string) =>
  o.status?.conditions?.find((c) => c.type === type);
const secretCount = 12;
const original = (p: string, i: number) => ({ value: `${p}-secret-${i}`, owner: `team-${i % 3}` });

describe("RestoreManager end to end", () => {
  let stack: RestoreStack;
  before(async () => {
    stack = await startRestoreStack(clusters);
  });
  after(async () => {
    await stack?.stop();
  });

  const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 90_000) =>
    waitFor(check, { what, timeoutMs, intervalMs: 250, processes: [stack.operator] });

  /** Reads `path` from every member, immediately (no retries: Completed promises it). */
  async function readEverywhere(path: string): Promise<(Record<string, string> | undefined)[]> {
    return Promise.all(stack.bao.nodes.map((n) => stack.bao.readSecret(path, n.index)));
  }

  async function lockOf(cluster: string) {
    return (await stack.getCluster(cluster)).status?.operationLock ?? null;
  }

  async function writeSecrets(prefix: string): Promise<void> {
    for (let i = 0; i < secretCount; i++) await stack.bao.writeSecret(`${prefix}/s${i}`, original(prefix, i));
  }

  /** Deletes the even secrets, overwrites the odd ones, adds one that did not exist. */
  async function damage(prefix: string): Promise<void> {
    for (let i = 0; i < secretCount; i++) {
      if (i % 2 === 0) await stack.bao.call("DELETE", `secret/metadata/${prefix}/s${i}`);
      else await stack.bao.writeSecret(`${prefix}/s${i}`, { value: "overwritten" });
    }
    await stack.bao.writeSecret(`${prefix}/new`, { value: "written after the backup" });
    assert.equal(await stack.bao.readSecret(`${prefix}/s0`), undefined);
  }

  async function assertRestored(prefix: string): Promise<void> {
    for (let i = 0; i < secretCount; i++) {
      const values = await readEverywhere(`${prefix}/s${i}`);
      for (const [node, v] of values.entries())
        assert.deepEqual(v, original(prefix, i), `${prefix}/s${i} on node ${node}`);
    }
    const added = await readEverywhere(`${prefix}/new`);
    for (const [node, v] of added.entries()) assert.equal(v, undefined, `${prefix}/new is gone on node ${node}`);
  }

  const happy: [ProviderName, string, Record<string, unknown>][] = [
    ["s3", "bao-s3", { jwtAuthRole: "restore" }],
    // Static token: read from the same mounted path as backups (SPEC §5 trap 7).
    ["gcs", "bao-gcs", { tokenSecretRef: { name: "restore-token" } }],
    ["azure", "bao-azure", { jwtAuthRole: "restore" }],
  ];
  for (const [provider, cluster, auth] of happy) {
    test(`${provider}: backup → delete and overwrite → OpenBaoRestore → Completed; every secret back on every member`, async () => {
      await stack.createCluster(cluster, provider);
      const prefix = `app-${provider}`;
      await writeSecrets(prefix);
      const key = await stack.backup(cluster, "before-damage");
      await damage(prefix);

      const name = `restore-${provider}`;
      await stack.createRestore(name, { cluster, source: { target: stack.target(provider), key }, ...auth });
      const done = await stack.waitRestore(name, "Completed");
      await assertRestored(prefix);

      const status = done.status;
      assert.equal(status?.snapshotKey, key);
      assert.ok((status?.snapshotSize ?? 0) > 0);
      assert.ok(status?.startTime && status.completionTime);
      assert.match(status?.message ?? "", /every member serves the restored data/);
      assert.equal(condition(done, "RestoreComplete")?.status, "True");
      assert.equal(condition(done, "RestoreComplete")?.reason, "RestoreSucceeded");
      assert.equal(await lockOf(cluster), null, "lock released");
      const after = await until("finalizer removed", async () => {
        const r = await stack.getRestore(name);
        return r && (r.metadata.finalizers ?? []).length === 0 && r;
      });
      assert.equal(after.status?.phase, "Completed");

      const jobs = (await stack.jobs()).filter((j) => j.metadata?.annotations?.["openbao.org/restore-name"] === name);
      assert.equal(jobs.length, 1);
      const job = jobs[0];
      assert.ok((job?.metadata?.name ?? "").length <= 63);
      assert.equal(job?.metadata?.ownerReferences?.[0]?.kind, "OpenBaoRestore");
      assert.equal(job?.metadata?.ownerReferences?.[0]?.uid, done.metadata.uid);
      const env = job?.spec?.template.spec?.containers[0]?.env ?? [];
      assert.equal(env.find((e) => e.name === "BACKUP_KEY")?.value, key);
      assert.equal(env.find((e) => e.name === "BACKUP_FORCE")?.value, "false");
      if ("tokenSecretRef" in auth) {
        const mount = job?.spec?.template.spec?.containers[0]?.volumeMounts?.find((m) => m.name === "openbao-token");
        assert.equal(env.find((e) => e.name === "BACKUP_TOKEN_FILE")?.value, `${mount?.mountPath}/token`);
      }
      const reasons = (await stack.eventsOf(name)).map((e) => e.reason);
      for (const r of ["RestoreValidating", "LockAcquired", "RestoreJobCreated", "RestoreSucceeded", "LockReleased"]) {
        assert.ok(reasons.includes(r), `event ${r} in ${reasons.join(", ")}`);
      }
    });
  }

  test("a restore while a backup holds the lock waits in Validating, then proceeds once the backup ends", async (t) => {
    await stack.createCluster("waits", "s3");
    await writeSecrets("waits");
    const key = await stack.backup("waits", "first");
    await damage("waits");
    stack.runner.pause();
    try {
      await stack.patchCluster("waits", { metadata: { annotations: { "openbao.org/trigger-backup": "second" } } });
      await until("the backup holds the lock", async () => (await lockOf("waits"))?.holder === "openbaocluster/backup");
      await stack.createRestore("restore-waits", {
        cluster: "waits",
        source: { target: stack.target("s3"), key },
        jwtAuthRole: "restore",
      });
      const waiting = await until("restore waiting", async () => {
        const r = await stack.getRestore("restore-waits");
        return r?.status?.phase === "Validating" && /openbaocluster\/backup/.test(r.status.message ?? "") && r;
      });
      t.diagnostic(`status.message: ${waiting.status?.message}`);
      assert.match(
        waiting.status?.message ?? "",
        /waiting for the operation lock, held by Backup \(openbaocluster\/backup\)/,
      );
      assert.equal(condition(waiting, "RestoreComplete")?.reason, "RestoreWaitingForLock");
      await sleep(1500);
      const still = await stack.getRestore("restore-waits");
      assert.equal(still?.status?.phase, "Validating", "still waiting while the backup runs");
      assert.equal((await lockOf("waits"))?.holder, "openbaocluster/backup", "the backup's lock was not taken");
      assert.ok(
        !(await stack.jobs()).some((j) => j.metadata?.annotations?.["openbao.org/restore-name"] === "restore-waits"),
        "no restore Job yet",
      );
    } finally {
      stack.runner.resume();
    }
    await stack.waitRestore("restore-waits", "Completed");
    await assertRestored("waits");
    assert.equal(await lockOf("waits"), null);
    const c = await stack.getCluster("waits");
    assert.ok(c.status?.backup?.lastBackupName !== key, "the second backup ran and was recorded first");
  });

  test("override + force while an upgrade holds the lock: proceeds, Warning event and condition", async () => {
    await stack.createCluster("override", "s3");
    await writeSecrets("override");
    const key = await stack.backup("override", "before-upgrade");
    await damage("override");
    await stack.setStatus("override", {
      phase: "Upgrading",
      upgrade: { from: "2.4.0", to: "2.5.0" },
      operationLock: { operation: "Upgrade", holder: "openbaocluster/upgrade", acquiredAt: new Date().toISOString() },
    });
    await stack.createRestore("restore-override", {
      cluster: "override",
      source: { target: stack.target("s3"), key },
      jwtAuthRole: "restore",
      force: true,
      overrideOperationLock: true,
    });
    const done = await stack.waitRestore("restore-override", "Completed");
    await assertRestored("override");
    assert.equal(condition(done, "OperationLockOverride")?.status, "True");
    assert.match(condition(done, "OperationLockOverride")?.message ?? "", /openbaocluster\/upgrade/);
    const warnings = (await stack.eventsOf("restore-override")).filter(
      (e) => e.type === "Warning" && e.reason === "OperationLockOverridden",
    );
    assert.equal(warnings.length, 1);
    assert.ok(
      (await stack.eventsOf("override")).some((e) => e.type === "Warning" && e.reason === "OperationLockOverridden"),
      "the cluster shows the override too",
    );
    const job = (await stack.jobs()).find(
      (j) => j.metadata?.annotations?.["openbao.org/restore-name"] === "restore-override",
    );
    assert.equal(job?.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === "BACKUP_FORCE")?.value, "true");
    assert.equal(await lockOf("override"), null);
  });

  test("override + force while a backup Job runs: the backup is stopped first; no restore beside it, no free lock while it runs", async (t) => {
    await stack.createCluster("displaced", "s3");
    await writeSecrets("displaced");
    const key = await stack.backup("displaced", "base");
    await damage("displaced");
    // The next backup hangs mid-upload: its storage accepts connections and never answers.
    const sockets = new Set<Socket>();
    const blackhole = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => blackhole.listen(0, "127.0.0.1", resolve));
    const address = blackhole.address();
    assert.ok(address && typeof address === "object");
    const violations: string[] = [];
    let sampling = true;
    try {
      const stuck = { ...stack.target("s3"), endpoint: `http://127.0.0.1:${address.port}` };
      await stack.patchCluster("displaced", { spec: { backup: { target: stuck } } });
      await stack.patchCluster("displaced", { metadata: { annotations: { "openbao.org/trigger-backup": "stuck" } } });
      const backupJob = await until("the backup Job runs, waiting on its storage", async () => {
        const name = (await stack.getCluster("displaced")).status?.backup?.currentJob?.name;
        const run = stack.runner.runs.find((r) => r.jobName === name);
        return run?.startedAt !== undefined && run.exitedAt === undefined && sockets.size > 0 && name;
      });
      // The defect's invariant, sampled throughout: while the backup's executor runs, the lock is held.
      const backupRun = () => stack.runner.runs.find((r) => r.jobName === backupJob);
      const sampler = (async () => {
        while (sampling) {
          const lock = await lockOf("displaced");
          if (lock === null && backupRun()?.exitedAt === undefined) violations.push(`lock free at ${Date.now()}`);
          await sleep(100);
        }
      })();
      await stack.createRestore("restore-displaced", {
        cluster: "displaced",
        source: { target: stack.target("s3"), key },
        jwtAuthRole: "restore",
        force: true,
        overrideOperationLock: true,
      });
      const done = await stack.waitRestore("restore-displaced", "Completed");
      sampling = false;
      await sampler;
      await assertRestored("displaced");

      const stopped = backupRun();
      t.diagnostic(`backup run: ${stopped?.outcome}, notes: ${stopped?.notes.join("; ")}`);
      assert.equal(stopped?.outcome, "JobDeleted", "the displaced backup Job was deleted mid-run");
      const restoreJob = (await stack.jobs()).find(
        (j) => j.metadata?.annotations?.["openbao.org/restore-name"] === "restore-displaced",
      )?.metadata?.name;
      const restoreRun = stack.runner.runs.find((r) => r.jobName === restoreJob);
      assert.ok(stopped?.exitedAt !== undefined && restoreRun?.startedAt !== undefined);
      assert.ok(
        stopped.exitedAt <= restoreRun.startedAt,
        `the restore started ${restoreRun.startedAt - stopped.exitedAt} ms after the backup stopped, never beside it`,
      );
      assert.deepEqual(violations, [], "the lock was never free while the backup ran");

      const c = await stack.getCluster("displaced");
      t.diagnostic(`lastFailureMessage: ${c.status?.backup?.lastFailureMessage}`);
      assert.equal(c.status?.backup?.lastFailureReason, "LockOverridden", "recorded as a failure, not as a success");
      assert.match(c.status?.backup?.lastFailureMessage ?? "", /OpenBaoRestore restore-displaced/);
      assert.equal(c.status?.backup?.currentJob ?? null, null);
      const failedEvent = (await stack.eventsOf("displaced")).find(
        (e) => e.type === "Warning" && e.reason === "BackupFailed" && /overrideOperationLock/.test(e.message ?? ""),
      );
      assert.ok(failedEvent, "a Warning Event on the cluster names the override");
      assert.equal(condition(done, "OperationLockOverride")?.status, "True");
      const messages = (await stack.eventsOf("restore-displaced")).map((e) => e.message ?? "");
      assert.ok(
        messages.some((m) => m.includes(`stopping backup Job ${backupJob}`)),
        `the restore said what it waited for: ${messages.join(" | ")}`,
      );
      assert.equal(await lockOf("displaced"), null, "released after the restore");
    } finally {
      sampling = false;
      for (const socket of sockets) socket.destroy();
      blackhole.close();
    }
  });

  describe("failures: Failed with a precise message, lock released, OpenBao untouched", () => {
    let key = "";
    before(async () => {
      await stack.createCluster("fails", "s3");
      await stack.bao.writeSecret("fails/marker", { value: "backed-up" });
      key = await stack.backup("fails", "base");
      await stack.bao.writeSecret("fails/marker", { value: "current" });
    });

    async function assertUntouched(): Promise<void> {
      const values = await readEverywhere("fails/marker");
      for (const [node, v] of values.entries()) assert.deepEqual(v, { value: "current" }, `marker on node ${node}`);
      assert.equal(await lockOf("fails"), null, "lock released");
    }

    test("a key that does not exist → ObjectMissing", async (t) => {
      const missing = key.replace(/[^/]+\.snap$/, "2000-01-01T00-00-00Z-deadbeef.snap");
      await stack.createRestore("missing-key", {
        cluster: "fails",
        source: { target: stack.target("s3"), key: missing },
        jwtAuthRole: "restore",
      });
      const r = await stack.waitRestore("missing-key", "Failed");
      t.diagnostic(`status.message: ${r.status?.message}`);
      assert.match(
        r.status?.message ?? "",
        new RegExp(`^ObjectMissing: ${missing.replace(/[.]/g, "\\.")} does not exist`),
      );
      assert.match(r.status?.message ?? "", /nothing was restored/);
      assert.equal(condition(r, "RestoreComplete")?.reason, "RestoreFailed");
      assert.ok(
        (await stack.eventsOf("missing-key")).some((e) => e.type === "Warning" && e.reason === "RestoreFailed"),
      );
      await assertUntouched();
    });

    test("a corrupted object → refused before OpenBao applies anything (exit 6)", async (t) => {
      const bytes = await stack.targets.s3.get(key);
      const manifest = await stack.targets.s3.get(`${key}.json`);
      assert.ok(bytes && manifest);
      const corrupt = Buffer.from(bytes);
      for (let i = Math.floor(corrupt.length / 2); i < Math.floor(corrupt.length / 2) + 64; i++) {
        corrupt[i] = (corrupt[i] ?? 0) ^ 0xff;
      }
      const corruptKey = key.replace(/-([0-9a-f]{8})\.snap$/, "-0badc0de.snap");
      await stack.targets.s3.put(corruptKey, corrupt);
      const m = JSON.parse(manifest.toString("utf8")) as Record<string, unknown>;
      await stack.targets.s3.put(`${corruptKey}.json`, Buffer.from(JSON.stringify({ ...m, key: corruptKey })));
      await stack.createRestore("corrupted", {
        cluster: "fails",
        source: { target: stack.target("s3"), key: corruptKey },
        jwtAuthRole: "restore",
      });
      const r = await stack.waitRestore("corrupted", "Failed");
      t.diagnostic(`status.message: ${r.status?.message}`);
      // Whichever check trips first (gzip/tar integrity while streaming, or the manifest's sha256).
      assert.match(r.status?.message ?? "", /^\w+: \S+-0badc0de\.snap .*nothing was restored$/);
      const job = (await stack.jobs()).find(
        (j) => j.metadata?.annotations?.["openbao.org/restore-name"] === "corrupted",
      );
      const run = await stack.runner.waitForRun(job?.metadata?.name ?? "");
      assert.equal(run.exitCode, 6, run.terminationMessage);
      await assertUntouched();
    });

    test("no auth: refused at admission; a missing token Secret; a JWT role OpenBao refuses", async (t) => {
      await assert.rejects(
        stack.createRestore("no-auth", { cluster: "fails", source: { target: stack.target("s3"), key } }),
        (err: unknown) => /needs OpenBao authentication/.test(String((err as { body?: unknown }).body ?? err)),
      );

      await stack.createRestore("missing-token", {
        cluster: "fails",
        source: { target: stack.target("s3"), key },
        tokenSecretRef: { name: "no-such-token" },
      });
      const noSecret = await stack.waitRestore("missing-token", "Failed");
      t.diagnostic(`status.message: ${noSecret.status?.message}`);
      assert.match(noSecret.status?.message ?? "", /Secret no-such-token not found in namespace openbao/);
      assert.equal(condition(noSecret, "RestoreComplete")?.reason, "RestoreValidationFailed");

      await stack.createRestore("refused-role", {
        cluster: "fails",
        source: { target: stack.target("s3"), key },
        jwtAuthRole: "nobody",
      });
      const refused = await stack.waitRestore("refused-role", "Failed");
      t.diagnostic(`status.message: ${refused.status?.message}`);
      assert.match(refused.status?.message ?? "", /^AuthFailed: JWT login as role "nobody" at auth\/jwt was refused/);
      await assertUntouched();
    });
  });

  test("deleting a running restore deletes its Job and releases the lock; the restore queued behind it then runs", async () => {
    await stack.createCluster("deleted", "s3");
    await writeSecrets("deleted");
    const key = await stack.backup("deleted", "base");
    await damage("deleted");
    const spec = { cluster: "deleted", source: { target: stack.target("s3"), key }, jwtAuthRole: "restore" };
    stack.runner.pause();
    let firstJob = "";
    try {
      await stack.createRestore("first", spec);
      const running = await stack.waitRestore("first", "Running");
      assert.deepEqual(running.metadata.finalizers, ["openbao.org/release-operation-lock"]);
      assert.equal((await lockOf("deleted"))?.holder, "openbaorestore/first");
      firstJob = await until("the first restore's Job", async () => {
        const j = (await stack.jobs()).find((x) => x.metadata?.annotations?.["openbao.org/restore-name"] === "first");
        return j?.metadata?.name;
      });

      await stack.createRestore("second", spec);
      const queued = await until("second waits", async () => {
        const r = await stack.getRestore("second");
        return r?.status?.phase === "Validating" && /openbaorestore\/first/.test(r.status.message ?? "") && r;
      });
      assert.match(queued.status?.message ?? "", /another restore holds the operation lock/);

      await stack.deleteRestore("first");
      await until("first is gone", async () => (await stack.getRestore("first")) === undefined);
      assert.ok(!(await stack.jobs()).some((j) => j.metadata?.name === firstJob), "the first Job was deleted");
      await until("second holds the lock", async () => (await lockOf("deleted"))?.holder === "openbaorestore/second");
    } finally {
      stack.runner.resume();
    }
    await stack.waitRestore("second", "Completed");
    await assertRestored("deleted");
    assert.equal(await lockOf("deleted"), null);
    assert.ok(!stack.runner.runs.some((r) => r.jobName === firstJob), "the deleted restore's Job never ran");
  });

  test("openbao_restore_* metrics are exported and follow the restores", async () => {
    const metrics = await stack.metrics();
    const value = (pattern: RegExp): number => Number(metrics.match(pattern)?.[1] ?? Number.NaN);
    assert.equal(value(/^openbao_restore_total\{namespace="openbao",cluster="bao-s3"\} (\d+)/m), 1);
    assert.equal(value(/^openbao_restore_success_total\{namespace="openbao",cluster="bao-s3"\} (\d+)/m), 1);
    assert.equal(
      value(/^openbao_restore_failure_total\{namespace="openbao",cluster="fails",reason="ObjectMissing"\} (\d+)/m),
      1,
    );
    assert.equal(
      value(/^openbao_restore_failure_total\{namespace="openbao",cluster="fails",reason="ValidationFailed"\} (\d+)/m),
      1,
    );
    assert.equal(
      value(/^openbao_restore_failure_total\{namespace="openbao",cluster="deleted",reason="Deleted"\} (\d+)/m),
      1,
    );
    assert.equal(value(/^openbao_restore_duration_seconds_count\{namespace="openbao",cluster="bao-azure"\} (\d+)/m), 1);
    assert.equal(value(/^openbao_restore_in_progress\{namespace="openbao",cluster="bao-gcs"\} (\d+)/m), 0);
    assert.ok(
      value(/^openbao_restore_last_success_timestamp_seconds\{namespace="openbao",cluster="bao-s3"\} ([\d.e+]+)/m) > 0,
    );
    assert.ok(value(/^openbao_restore_last_size_bytes\{namespace="openbao",cluster="bao-s3"\} (\d+)/m) > 0);
    assert.equal(namespace, "openbao");
  });
});
