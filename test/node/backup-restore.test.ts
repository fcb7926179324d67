/**
 * The product where users run it: the operator installed with the project's Helm chart runs
 * as a Pod on a real kubelet, from the image built from this checkout; its backup and restore
 * Jobs are real Pods run by the kubelet and the real Job controller, against a real 3-member
 * OpenBao and each real storage server. Data is read back from every OpenBao member.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Annotation } from "../../src/api/constants.ts";
import type { ProviderName } from "../executor/targets.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { printPodsOnFailure } from "./diagnostics.ts";
import { nodeTierSkip } from "./gate.ts";
import { operatorNamespace, operatorPodSelector, startWorld, type World } from "./world.ts";

const providers: readonly ProviderName[] = ["s3", "gcs", "azure"];
const clusterOf = (p: ProviderName): string => `bao-${p}`;
const secretCount = 20;
const original = (prefix: string, i: number): Record<string, string> => ({ value: `${prefix}-original-${i}` });

describe(
  "real node: the Helm-installed operator backs up and restores through real Pods",
  {
    skip: nodeTierSkip(),
  },
  () => {
    let world: World;
    superviseServers();
    printPodsOnFailure(() => world);
    before(async () => {
      world = await startWorld({ clusters: providers.map(clusterOf) });
    });
    after(async () => {
      await world?.stop();
    });

    const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 180_000) =>
      waitFor(check, { what, timeoutMs, intervalMs: 500, processes: world.node.processes });

    async function readEverywhere(path: string): Promise<(Record<string, string> | undefined)[]> {
      return Promise.all(world.bao.nodes.map((n) => world.bao.readSecret(path, n.index)));
    }

    /** A finished Job's single Pod, asserted to have run on the real node from the product image. */
    async function podOfFinishedJob(job: string) {
      const pods = await world.podsOfJob(job);
      assert.equal(pods.length, 1, `one Pod for ${job}: ${pods.map((p) => p.metadata?.name).join(", ")}`);
      const pod = pods[0];
      assert.ok(pod);
      assert.equal(pod.spec?.nodeName, world.node.nodeName, "scheduled by kube-scheduler onto the real node");
      const status = pod.status?.containerStatuses?.[0];
      assert.equal(status?.image, world.images.productName);
      assert.match(status?.imageID ?? "", /^sha256:|@sha256:/, "an image the runtime really holds");
      return { pod, terminated: status?.state?.terminated };
    }

    test("the chart's operator Deployment runs on the node, Ready, from the checkout's image", async () => {
      const pods = await world.core.listNamespacedPod({
        namespace: operatorNamespace,
        labelSelector: operatorPodSelector,
      });
      assert.equal(pods.items.length, 1);
      const pod = pods.items[0];
      assert.equal(pod?.spec?.nodeName, world.node.nodeName);
      assert.equal(pod?.status?.phase, "Running");
      const status = pod?.status?.containerStatuses?.[0];
      assert.equal(status?.ready, true, "readiness probe /readyz passed through the kubelet");
      assert.equal(status?.image, world.images.productName);
      assert.equal(status?.restartCount, 0, "no crash: it reached the API server through the Service IP");
      const log = await world.operatorLog();
      assert.match(log, /leader|lead/i, "the operator's own log, read through the kubelet");
    });

    for (const provider of providers) {
      test(`${provider}: a manual backup and an OpenBaoRestore, every member serves the restored data`, async () => {
        const cluster = clusterOf(provider);
        const prefix = `node-${provider}`;
        for (let i = 0; i < secretCount; i++) await world.bao.writeSecret(`${prefix}/s${i}`, original(prefix, i));
        await world.createCluster(cluster, { schedule: quietSchedule, target: world.target(provider) });

        const done = await world.triggerBackup(cluster, `manual-${provider}`);
        const b = done.status?.backup;
        assert.equal(b?.consecutiveFailures ?? 0, 0, `${b?.lastFailureReason}: ${b?.lastFailureMessage}`);
        const key = b?.lastBackupName;
        assert.ok(key, "lastBackupName recorded from the Pod's termination message");
        // The operator records the executor's result as soon as its container terminated; the
        // Job controller marks the Job Complete a moment later.
        const manual = await waitFor(
          async () =>
            (await world.jobsOf(cluster)).find(
              (j) =>
                j.metadata?.annotations?.[Annotation.Trigger] === `manual-${provider}` &&
                j.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True"),
            ),
          { what: "the manual Job Complete, as the real Job controller says", timeoutMs: 60_000 },
        );
        assert.ok(manual.metadata?.name, "the manual Job");
        const { terminated } = await podOfFinishedJob(manual.metadata.name);
        assert.equal(terminated?.exitCode, 0);
        assert.match(
          terminated?.message ?? "",
          /"outcome"|"key"|sha256/,
          "the executor's result in the termination message",
        );
        const target = world.targets[provider];
        assert.ok(target);
        const stored = await target.keys();
        assert.ok(stored.includes(key), `${key} stored in ${provider}: ${stored.join(", ")}`);
        assert.ok(stored.includes(`${key}.json`), "its manifest beside it");

        // Damage: delete the even secrets, overwrite the odd ones, add one.
        for (let i = 0; i < secretCount; i++) {
          if (i % 2 === 0) await world.bao.call("DELETE", `secret/metadata/${prefix}/s${i}`);
          else await world.bao.writeSecret(`${prefix}/s${i}`, { value: "overwritten" });
        }
        await world.bao.writeSecret(`${prefix}/new`, { value: "written after the backup" });

        await world.createRestore(`restore-${provider}`, {
          cluster,
          source: { target: world.target(provider), key },
          jwtAuthRole: "restore",
        });
        const restore = await world.waitRestore(`restore-${provider}`);
        assert.equal(restore.status?.phase, "Completed", restore.status?.message);
        const restoreJobs = (await world.batch.listNamespacedJob({ namespace: "openbao" })).items.filter(
          (j) => j.metadata?.annotations?.[Annotation.RestoreName] === `restore-${provider}`,
        );
        assert.equal(restoreJobs.length, 1);
        const restoreJob = restoreJobs[0]?.metadata?.name;
        assert.ok(restoreJob);
        assert.equal((await podOfFinishedJob(restoreJob)).terminated?.exitCode, 0);
        for (let i = 0; i < secretCount; i++) {
          for (const [member, v] of (await readEverywhere(`${prefix}/s${i}`)).entries()) {
            assert.deepEqual(v, original(prefix, i), `${prefix}/s${i} on member ${member}`);
          }
        }
        for (const [member, v] of (await readEverywhere(`${prefix}/new`)).entries()) {
          assert.equal(v, undefined, `${prefix}/new is gone on member ${member}`);
        }
      });
    }

    test("a scheduled backup: the cron window's Job runs on the kubelet and is recorded", async () => {
      const cluster = clusterOf("s3");
      const before = (await world.getCluster(cluster)).status?.backup?.lastBackupName;
      await world.patchCluster(cluster, { spec: { backup: { schedule: "* * * * *" } } });
      const done = await until(
        "a scheduled backup recorded",
        async () => {
          const c = await world.getCluster(cluster);
          const b = c.status?.backup;
          return b?.lastBackupName !== undefined && b.lastBackupName !== before && b.currentJob == null && c;
        },
        150_000,
      );
      await world.patchCluster(cluster, { spec: { backup: { schedule: quietSchedule } } });
      const job = await waitFor(
        async () =>
          (await world.jobsOf(cluster)).find(
            (j) =>
              j.metadata?.annotations?.[Annotation.ScheduledTime] &&
              j.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True"),
          ),
        { what: "a Job carrying its cron window, Complete", timeoutMs: 60_000 },
      );
      assert.ok(job.metadata?.name);
      assert.equal((await podOfFinishedJob(job.metadata.name)).terminated?.exitCode, 0);
      assert.equal(done.status?.backup?.consecutiveFailures ?? 0, 0);
      assert.ok(
        world.targets.s3 && (await world.targets.s3.keys()).includes(done.status?.backup?.lastBackupName ?? ""),
      );
    });
  },
);
