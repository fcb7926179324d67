/**
 * Issue 18, item 3, through the operator: a real `bao-backup operator`, the real kube-apiserver,
 * Jobs run by the job runner with the real executor, a real OpenBao, MinIO as `target` and
 * fake-gcs-server and Azurite as `additionalTargets`.
 *
 * - All three destinations hold a verified copy: each is recorded in status.backup.destinations
 *   with its location and key (DestinationsHealthy True), and the Job's memory covers every
 *   destination's buffers.
 * - A destination whose credentials Secret is missing (Azure) under `successPolicy: AtLeastOne`:
 *   the Job succeeds, status names the failed destination and why (SecretNotFound), so does
 *   DestinationsHealthy (False, DestinationFailed, also as openbao_backup_condition), a Warning
 *   BackupDestinationFailed says so, and openbao_backup_destination_failures_total counts it —
 *   the copy that did not land is never silent. Under the default policy (All) the same
 *   backup is a failed backup.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { clusterTarget, startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { printJobRunnerOnFailure } from "../servers/job-runner.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { namespace, type OperatorProcess, type Stack, s3Target, startStack } from "./stack.ts";

superviseServers();
printJobRunnerOnFailure();

const tokenAuth = { tokenSecretRef: { name: "bao-token" } };

describe("several destinations through the operator", () => {
  let stack: Stack;
  let operator: OperatorProcess;
  let gcs: TargetUnderTest;
  let azure: TargetUnderTest;

  before(async () => {
    stack = await startStack(["copies", "strict"]);
    [gcs, azure] = await Promise.all([startTarget("gcs"), startTarget("azure")]);
    await stack.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "azure-credentials" }, stringData: azure.credentials },
    });
    operator = await stack.startOperator();
  });
  after(async () => {
    await Promise.all([stack?.stop(), gcs?.stop(), azure?.stop()]);
  });

  const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 90_000) =>
    waitFor(check, { what, timeoutMs, intervalMs: 300, processes: [operator.process] });

  const trigger = (name: string, value: string) =>
    stack.patchCluster(name, { metadata: { annotations: { "openbao.org/trigger-backup": value } } });

  const recorded = (name: string, jobs: number) =>
    until(`${jobs} recorded backup(s) of ${name}`, async () => {
      const c = await stack.getCluster(name);
      const done = (await stack.jobsOf(name)).filter((j) => j.status?.succeeded || j.status?.failed).length;
      return (
        done >= jobs && c.status?.backup?.currentJob == null && c.status?.backup?.lastRecordedJob !== undefined && c
      );
    });

  const events = async (name: string, reason: string) =>
    (await stack.core.listNamespacedEvent({ namespace })).items.filter(
      (e) => e.involvedObject.name === name && e.reason === reason,
    );

  test("three destinations: each recorded with its copy; a missing Secret fails one, named everywhere", async () => {
    const additional = [
      { name: "offsite", ...clusterTarget("gcs", gcs) },
      { name: "azure-copy", ...clusterTarget("azure", azure) },
    ];
    await stack.createCluster("copies", {
      schedule: "0 0 1 1 *",
      ...tokenAuth,
      target: s3Target(stack.target),
      additionalTargets: additional,
      successPolicy: "AtLeastOne",
    });
    await trigger("copies", "all-three");
    let c: OpenBaoCluster = await recorded("copies", 1);
    assert.equal(c.status?.backup?.consecutiveFailures ?? 0, 0, JSON.stringify(c.status?.backup));
    const key = c.status?.backup?.lastBackupName ?? "";
    assert.deepEqual(
      c.status?.backup?.destinations?.map((d) => [d.name, d.location, d.lastBackupName, d.consecutiveFailures]),
      [
        ["primary", "s3://backups", key, 0],
        ["offsite", "gcs://backups", key, 0],
        ["azure-copy", `azure://${azure.env().BACKUP_AZURE_STORAGE_ACCOUNT}/backups`, key, 0],
      ],
    );
    for (const target of [stack.target, gcs, azure]) {
      assert.ok(await target.get(key), `${target.provider} holds ${key}`);
      assert.ok(await target.get(`${key}.json`), `${target.provider} holds its manifest`);
    }
    const healthy = c.status?.conditions?.find((x) => x.type === "DestinationsHealthy");
    assert.equal(healthy?.status, "True", JSON.stringify(healthy));
    assert.equal(healthy?.reason, "AllDestinationsStored");
    const [job] = await stack.jobsOf("copies");
    const memory = job?.spec?.template.spec?.containers[0]?.resources?.limits?.memory;
    assert.equal(memory, `${3 * 50 + 256}Mi`, "10 MiB × (3 + 2) for each of three destinations, plus the baseline");

    // The Azure destination's Secret goes away: AtLeastOne keeps the backup a success, but the
    // missing copy is in status, an Event and a metric.
    await stack.core.deleteNamespacedSecret({ namespace, name: "azure-credentials" });
    await trigger("copies", "azure-gone");
    c = await recorded("copies", 2);
    assert.equal(c.status?.backup?.consecutiveFailures ?? 0, 0, "the Job succeeded under AtLeastOne");
    const azureCopy = c.status?.backup?.destinations?.find((d) => d.name === "azure-copy");
    assert.equal(azureCopy?.consecutiveFailures, 1);
    assert.equal(azureCopy?.lastFailureReason, "SecretNotFound");
    assert.match(
      azureCopy?.lastFailureMessage ?? "",
      /Secret azure-credentials \(the credentials of destination azure-copy\)/,
    );
    assert.equal(azureCopy?.lastBackupName, key, "its last good copy is still the first backup");
    const failing = c.status?.conditions?.find((x) => x.type === "DestinationsHealthy");
    assert.equal(failing?.status, "False", "a condition, not only an Event and a metric");
    assert.equal(failing?.reason, "DestinationFailed");
    assert.match(failing?.message ?? "", /azure-copy \(azure:\/\/[^)]+\): SecretNotFound: .*1 consecutive failure/);
    assert.equal(c.status?.conditions?.find((x) => x.type === "BackupHealthy")?.status, "True");
    const warnings = await until("a BackupDestinationFailed Event", async () => {
      const found = await events("copies", "BackupDestinationFailed");
      return found.length > 0 && found;
    });
    assert.equal(warnings[0]?.type, "Warning");
    assert.match(
      warnings[0]?.message ?? "",
      /destination azure-copy \(azure:\/\/[^)]+\) holds no copy of this backup: SecretNotFound/,
    );
    const metrics = await operator.metrics();
    assert.match(
      metrics,
      /openbao_backup_destination_failures_total\{namespace="openbao",cluster="copies",destination="azure-copy"\} 1/,
    );
    assert.match(
      metrics,
      /openbao_backup_condition\{namespace="openbao",cluster="copies",condition="DestinationsHealthy",status="False",reason="DestinationFailed"\} 1/,
    );
    assert.match(
      metrics,
      /openbao_backup_destination_failures_total\{namespace="openbao",cluster="copies",destination="offsite"\} 0/,
    );
    const newKey = c.status?.backup?.lastBackupName ?? "";
    assert.notEqual(newKey, key);
    assert.deepEqual(await azure.keys(newKey), [], "nothing under the new key in the failed destination");
    assert.ok(await gcs.get(`${newKey}.json`), "the other secondary holds the new backup");
  });

  test("the default policy (All): a destination without a copy makes the backup a failure", async () => {
    await stack.createCluster("strict", {
      schedule: "0 0 1 1 *",
      ...tokenAuth,
      target: s3Target(stack.target),
      additionalTargets: [
        {
          name: "azure-copy",
          ...clusterTarget("azure", azure),
          pathPrefix: "strict",
          credentialsSecretRef: { name: "never-created" },
        },
      ],
    });
    await trigger("strict", "one");
    const c = await recorded("strict", 1);
    assert.equal(c.status?.backup?.consecutiveFailures, 1);
    assert.equal(c.status?.backup?.lastFailureReason, "SecretNotFound");
    assert.match(
      c.status?.backup?.lastFailureMessage ?? "",
      /^destination azure-copy .*policy All: stored and verified in primary$/,
    );
    assert.deepEqual(
      c.status?.backup?.destinations?.map((d) => [d.name, d.consecutiveFailures]),
      [
        ["primary", 0],
        ["azure-copy", 1],
      ],
    );
    const destinations = c.status?.conditions?.find((x) => x.type === "DestinationsHealthy");
    assert.equal(destinations?.status, "False", "a failed Job's report still names the destination");
    assert.match(
      destinations?.message ?? "",
      /^a destination holds no copy of the last backup: azure-copy .*SecretNotFound/,
    );
  });
});
