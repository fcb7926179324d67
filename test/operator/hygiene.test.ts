/**
 * Issue 9, secret hygiene: the full operator-driven backup and restore flow with distinctive
 * secret values, plus runs that fail with those values in hand, then a search of every place
 * text leaves the system for each value (and its base64 forms):
 *
 * - an OpenBao token (tokenSecretRef) used by a successful backup and restore;
 * - a wrong OpenBao token (a backup and a restore whose login fails);
 * - MinIO's access key and secret key (the s3 credentials Secret, successful runs);
 * - an Azure account key, an Azure connection string and a GCS service-account JSON with a
 *   real private key, in Secrets of clusters whose storage endpoint is a closed port, so the
 *   values are read, parsed and used by the executor and its error path.
 *
 * Searched: the operator's stdout/stderr, every executor run's stdout/stderr and termination
 * message, every Event in the namespace, the status of every OpenBaoCluster and OpenBaoRestore
 * (which holds the error messages), every Job object, and the operator's /metrics. A positive
 * control proves the search finds a value where it is (the Secrets themselves).
 *
 * Also here, because it shares the stack: hostile termination messages written by a runner in
 * complete-with mode (1 MiB, HTML, JSON of the wrong types, empty) end as failed Jobs with a
 * clear reason, the lock released and `currentJob` cleared, and none of their text is copied.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Label } from "../../src/api/constants.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../../src/api/types.ts";
import { type CompletionResult, printJobRunnerOnFailure, startJobRunner } from "../servers/job-runner.ts";
import { freePort } from "../servers/ports.ts";
import { superviseServers } from "../servers/process.ts";
import { namespace, type RestoreStack, startRestoreStack } from "./restore-stack.ts";

superviseServers();
printJobRunnerOnFailure();

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** The forms a value could take on its way out: as is, base64 (a Secret's data), base64url, JSON-escaped. */
function forms(value: string): string[] {
  const out = new Set([value, Buffer.from(value).toString("base64"), Buffer.from(value).toString("base64url")]);
  out.add(JSON.stringify(value).slice(1, -1));
  return [...out].filter((f) => f.length >= 8);
}

interface Place {
  readonly what: string;
  readonly text: string;
}

const clusters = {
  good: "hyg",
  azureKey: "hyg-azkey",
  azureConn: "hyg-azconn",
  gcs: "hyg-gcs",
  wrongToken: "hyg-badtoken",
  /** Its Jobs are finished by a runner of the test's own, with hostile termination messages. */
  hostile: "hyg-hostile",
};

/** Text a hostile termination message carries: it must never reach status or an Event. */
const hostileMarker = `HOSTILE-TERMINATION-${hex(8)}`;

describe("secret hygiene: no secret value leaves through logs, Events, status, metrics or errors", () => {
  let stack: RestoreStack;
  let closedUrl: string;
  const secrets = new Map<string, string>();

  before(async () => {
    stack = await startRestoreStack(Object.values(clusters), { foreignRunClusters: [clusters.hostile] });
    // Nothing listens here: storage calls fail with the credentials in hand.
    closedUrl = `http://127.0.0.1:${await freePort()}`;

    const baoToken = `hygBaoToken${hex(12)}`;
    await stack.bao.call("POST", "auth/token/create", { id: baoToken, policies: ["backup", "restore"], ttl: "6h" });
    const wrongToken = `hygWrongToken${hex(12)}`;
    const accountKey = randomBytes(64).toString("base64");
    const connKey = randomBytes(64).toString("base64");
    const connectionString = `DefaultEndpointsProtocol=http;AccountName=hygconn;AccountKey=${connKey};BlobEndpoint=${closedUrl}/hygconn;`;
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const privateKeyId = hex(20);
    const gcsJson = JSON.stringify({
      type: "service_account",
      project_id: "hyg-project",
      private_key_id: privateKeyId,
      private_key: pem,
      client_email: "hygiene@hyg-project.iam.gserviceaccount.com",
      client_id: "100000000000000000001",
      token_uri: `${closedUrl}/token`,
    });
    const s3 = stack.targets.s3.credentials;
    for (const [name, value] of Object.entries({
      "OpenBao token": baoToken,
      "wrong OpenBao token": wrongToken,
      "S3 access key": s3.accessKeyId ?? "",
      "S3 secret key": s3.secretAccessKey ?? "",
      "Azure account key": accountKey,
      "Azure connection string": connectionString,
      "Azure connection string AccountKey": connKey,
      "GCS service-account JSON": gcsJson,
      "GCS private_key": pem,
      // The first line of the key's body: distinctive even if the PEM were re-wrapped or cut.
      "GCS private_key body line": pem.split("\n")[1] ?? "",
      "GCS private_key_id": privateKeyId,
    })) {
      assert.ok(value.length >= 12, `${name} is distinctive`);
      secrets.set(name, value);
    }

    await stack.createSecret("hyg-token", { token: baoToken });
    await stack.createSecret("hyg-wrong-token", { token: wrongToken });
    await stack.createSecret("hyg-azure-key", { accountKey });
    await stack.createSecret("hyg-azure-conn", { connectionString });
    await stack.createSecret("hyg-gcs-creds", { "credentials.json": gcsJson });

    const tokenAuth = (secret: string) => ({ jwtAuthRole: undefined, tokenSecretRef: { name: secret } });
    await stack.createCluster(clusters.good, "s3", tokenAuth("hyg-token"));
    await stack.createCluster(clusters.wrongToken, "s3", tokenAuth("hyg-wrong-token"));
    const azureTarget = (account: string, secret: string) => ({
      provider: "azure",
      endpoint: `${closedUrl}/${account}`,
      bucket: "hygiene",
      azure: { storageAccount: account },
      credentialsSecretRef: { name: secret },
    });
    await stack.createCluster(clusters.azureKey, "azure", { target: azureTarget("hygacct", "hyg-azure-key") });
    await stack.createCluster(clusters.azureConn, "azure", { target: azureTarget("hygconn", "hyg-azure-conn") });
    await stack.createCluster(clusters.hostile, "s3");
    await stack.createCluster(clusters.gcs, "gcs", {
      target: {
        provider: "gcs",
        endpoint: closedUrl,
        bucket: "hygiene",
        gcs: { project: "hyg-project" },
        credentialsSecretRef: { name: "hyg-gcs-creds" },
      },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  const failures = new Map<string, { reason: string | undefined; message: string | undefined }>();

  test("a backup and a restore with the distinctive token and S3 keys succeed", async () => {
    await stack.bao.writeSecret("hygiene/probe", { value: "before" });
    const key = await stack.backup(clusters.good, "hyg-1");
    await stack.bao.writeSecret("hygiene/probe", { value: "after" });
    await stack.createRestore("hyg-restore", {
      cluster: clusters.good,
      source: { target: stack.target("s3"), key },
      tokenSecretRef: { name: "hyg-token" },
    });
    await stack.waitRestore("hyg-restore", "Completed");
    assert.deepEqual(await stack.bao.readSecret("hygiene/probe"), { value: "before" });
  });

  test("runs that fail with the secrets in hand: wrong token, Azure key, connection string, GCS JSON", async () => {
    const recorded = await Promise.all(
      [clusters.wrongToken, clusters.azureKey, clusters.azureConn, clusters.gcs].map((name) =>
        stack.recordBackup(name, `${name}-1`),
      ),
    );
    for (const c of recorded) {
      const b = c.status?.backup;
      assert.equal(b?.consecutiveFailures, 1, `${c.metadata.name} failed`);
      assert.ok(b?.lastFailureReason && b.lastFailureMessage, `${c.metadata.name} says why`);
      failures.set(`backup ${c.metadata.name}`, { reason: b.lastFailureReason, message: b.lastFailureMessage });
    }
    for (const [what, f] of failures) process.stdout.write(`# ${what}: ${f.reason}: ${f.message}\n`);
    // The wrong token is refused by OpenBao (403 on the snapshot: OpenBao does not tell an
    // unknown token from a missing permission): an OpenBao reason, not a storage error.
    const refused = failures.get(`backup ${clusters.wrongToken}`);
    assert.ok(["AuthFailed", "PermissionDenied"].includes(refused?.reason ?? ""), refused?.reason);
    assert.match(refused?.message ?? "", /403|denied/);
    // The storage runs got past OpenBao and failed at the closed port, credentials in hand.
    for (const name of [clusters.azureKey, clusters.azureConn]) {
      assert.equal(failures.get(`backup ${name}`)?.reason, "StorageUnreachable", name);
    }

    const key = (await stack.getCluster(clusters.good)).status?.backup?.lastBackupName ?? "";
    await stack.createRestore("hyg-restore-badtoken", {
      cluster: clusters.good,
      source: { target: stack.target("s3"), key },
      tokenSecretRef: { name: "hyg-wrong-token" },
    });
    const badToken = await stack.waitRestore("hyg-restore-badtoken", "Failed");
    failures.set("restore with the wrong token", { reason: reasonOf(badToken), message: badToken.status?.message });
    await stack.createRestore("hyg-restore-azure", {
      cluster: clusters.good,
      source: {
        target: {
          provider: "azure",
          endpoint: `${closedUrl}/hygacct`,
          bucket: "hygiene",
          azure: { storageAccount: "hygacct" },
          credentialsSecretRef: { name: "hyg-azure-key" },
        },
        key,
      },
      tokenSecretRef: { name: "hyg-token" },
    });
    const azure = await stack.waitRestore("hyg-restore-azure", "Failed");
    failures.set("restore from a closed Azure endpoint", { reason: reasonOf(azure), message: azure.status?.message });
    for (const what of ["restore with the wrong token", "restore from a closed Azure endpoint"]) {
      process.stdout.write(`# ${what}: ${failures.get(what)?.reason}: ${failures.get(what)?.message}\n`);
    }
  });

  test("hostile termination messages (1 MiB, not JSON, wrong types, empty) are failed Jobs; the operator carries on", async () => {
    const messages: CompletionResult[] = [
      { exitCode: 0, terminationMessage: `${hostileMarker}\u001b[2J ${"x".repeat(1024 * 1024)} ${hostileMarker}` },
      { exitCode: 0, terminationMessage: `<html><title>${hostileMarker}</title></html>` },
      { exitCode: 0, terminationMessage: JSON.stringify({ ok: "yes", key: 7, message: hostileMarker }) },
      { exitCode: 1, terminationMessage: "" },
    ];
    const queue = [...messages];
    const fake = await startJobRunner({
      kubeConfig: stack.kube.kubeConfig,
      namespace,
      labelSelector: `${Label.Cluster}=${clusters.hostile}`,
      mode: {
        // A Job that exits 0 with no readable result is looked for in storage first (issue 15,
        // defect 6): its confirm Job finds nothing, as the real one would for these runs.
        completeWith: (job) =>
          job.metadata?.annotations?.["openbao.org/confirms"] !== undefined
            ? {
                exitCode: 6,
                terminationMessage: JSON.stringify({ v: 1, ok: false, reason: "BackupNotFound", message: "none" }),
              }
            : (queue.shift() ?? { exitCode: 1, terminationMessage: "" }),
      },
    });
    try {
      for (const [i, m] of messages.entries()) {
        // Manual Jobs are named to the second (backup-<cluster>-<yyyymmdd-hhmmss>): a trigger
        // in the same second as the last Job reuses its name and is recorded against that
        // Job (see the helper's report). One trigger per second keeps every run its own Job.
        await sleep(1100);
        const c = await stack.recordBackup(clusters.hostile, `hostile-${i}`);
        const b = c.status?.backup;
        assert.equal(b?.consecutiveFailures, i + 1, `attempt ${i} counted once`);
        assert.equal(b?.currentJob ?? null, null, "currentJob cleared");
        assert.equal(c.status?.operationLock ?? null, null, "lock released");
        assert.equal(b?.lastBackupName, undefined);
        assert.equal(b?.lastFailureReason, m.exitCode === 0 ? "JobFailed" : "BackoffLimitExceeded");
        assert.match(b?.lastFailureMessage ?? "", /without a readable result|left no readable result/);
      }
      // The operator is not stuck: the next Job with a real result line is recorded as a success.
      queue.push({
        exitCode: 0,
        terminationMessage: JSON.stringify({
          v: 1,
          mode: "backup",
          ok: true,
          key: "openbao/hyg-hostile/2026-11-21T00-00-00Z-0a1b2c3d.snap",
          size: 1,
          sha256: "c".repeat(64),
          durationMs: 1,
          raftIndex: 1,
          extra: hostileMarker,
        }),
      });
      await sleep(1100);
      const ok = await stack.recordBackup(clusters.hostile, "hostile-ok");
      assert.equal(ok.status?.backup?.consecutiveFailures, 0);
      assert.equal(ok.status?.backup?.lastBackupName, "openbao/hyg-hostile/2026-11-21T00-00-00Z-0a1b2c3d.snap");
      const events = await stack.eventsOf(clusters.hostile);
      assert.ok(events.some((e) => e.reason === "BackupFailed"));
      const written = JSON.stringify({ status: (await stack.getCluster(clusters.hostile)).status, events });
      assert.ok(!written.includes(hostileMarker), "no hostile text in status or Events");
      const confirms = messages.filter((m) => m.exitCode === 0).length;
      assert.equal(
        fake.runs.length,
        messages.length + 1 + confirms,
        "each exit-0 run without a result was looked for once",
      );
    } finally {
      await fake.stop();
    }
  });

  test("no value (nor its base64) appears in logs, runs, Events, status, Jobs, metrics or errors", async () => {
    const places: Place[] = [];
    places.push({ what: "operator stdout/stderr", text: readFileSync(stack.operator.logPath, "utf8") });
    for (const run of stack.runner.runs) {
      const log = run.logPath ? readFileSync(run.logPath, "utf8") : "";
      places.push({ what: `executor output of ${run.jobName}`, text: log });
      places.push({ what: `termination message of ${run.jobName}`, text: run.terminationMessage });
    }
    const events = await stack.core.listNamespacedEvent({ namespace });
    for (const e of events.items) {
      places.push({ what: `Event ${e.reason} of ${e.involvedObject.name}`, text: JSON.stringify(e) });
    }
    const clusterList = (await stack.custom.listNamespacedCustomObject({
      group: "openbao.org",
      version: "v1alpha1",
      namespace,
      plural: "openbaoclusters",
    })) as { items: OpenBaoCluster[] };
    for (const c of clusterList.items) {
      places.push({ what: `status of OpenBaoCluster ${c.metadata.name}`, text: JSON.stringify(c.status) });
    }
    const restoreList = (await stack.custom.listNamespacedCustomObject({
      group: "openbao.org",
      version: "v1alpha1",
      namespace,
      plural: "openbaorestores",
    })) as { items: OpenBaoRestore[] };
    for (const r of restoreList.items) {
      places.push({ what: `status of OpenBaoRestore ${r.metadata.name}`, text: JSON.stringify(r.status) });
    }
    for (const job of await stack.jobs()) places.push({ what: `Job ${job.metadata?.name}`, text: JSON.stringify(job) });
    places.push({ what: "operator /metrics", text: await stack.metrics() });
    for (const [what, f] of failures) places.push({ what: `error of ${what}`, text: `${f.reason}: ${f.message}` });

    // The places are the real ones: every run was seen and logged something.
    assert.ok(stack.runner.runs.length >= 8, `${stack.runner.runs.length} executor runs`);
    assert.ok(places.filter((p) => p.what.startsWith("executor output")).every((p) => p.text.length > 0));
    assert.ok(events.items.length >= 10, `${events.items.length} Events`);

    const leaks: string[] = [];
    let needles = 0;
    // The hostile termination text too: it never leaves the Pod's status.
    for (const [name, value] of [...secrets, ["hostile termination text", hostileMarker] as const]) {
      for (const form of forms(value)) {
        needles += 1;
        for (const place of places) {
          if (place.text.includes(form))
            leaks.push(`${name} (${form === value ? "as is" : "encoded"}) in ${place.what}`);
        }
      }
    }
    const bytes = places.reduce((n, p) => n + Buffer.byteLength(p.text), 0);
    process.stdout.write(
      `# hygiene: ${secrets.size} secret values, ${needles} forms, ${places.length} places (${bytes} bytes) searched; ${leaks.length} leaks\n`,
    );
    assert.deepEqual(leaks, []);

    // Positive control: the same search finds the values where they are meant to be.
    const stored = JSON.stringify(await stack.core.readNamespacedSecret({ name: "hyg-gcs-creds", namespace }));
    assert.ok(forms(secrets.get("GCS service-account JSON") ?? "").some((f) => stored.includes(f)));
    const token = JSON.stringify(await stack.core.readNamespacedSecret({ name: "hyg-token", namespace }));
    assert.ok(forms(secrets.get("OpenBao token") ?? "").some((f) => token.includes(f)));
  });
});

function reasonOf(r: OpenBaoRestore): string | undefined {
  return r.status?.conditions?.find((c) => c.status === "False" || c.type === "Failed")?.reason;
}
