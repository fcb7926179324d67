/**
 * What only a real kubelet and the real Job controller can show, recorded by the operator
 * (installed with the Helm chart, running as a Pod) as a person needs to read it:
 * - a hung snapshot stopped by `activeDeadlineSeconds` → `DeadlineExceeded`, counted once;
 * - an executor killed at its memory limit → `OOMKilled`, naming the limit;
 * - a Pod deleted mid-backup → one failure saying why, the lock released, the next run fine;
 * - finished Jobs collected by their TTL, the recorded result kept;
 * - Jobs (with their Pods) and ServiceAccounts garbage-collected with their OpenBaoCluster;
 * - the Pod's security settings as seen from inside a running Pod of the operator's own spec.
 */
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import type { V1Job } from "@kubernetes/client-node";
import { Annotation } from "../../src/api/constants.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { type HttpsFixtureServer, serveHttps } from "../servers/https-json.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { issueCertificate } from "../servers/tls.ts";
import { printPodsOnFailure } from "./diagnostics.ts";
import { nodeTierSkip } from "./gate.ts";
import { namespace, operatorNamespace, operatorPodSelector, startWorld, type World } from "./world.ts";

const clusters = ["hung", "oom", "deleted", "ttl", "gc", "probe"];
/** Short, so the TTL controller's collection is seen within the test. */
const jobTtlSeconds = 60;

describe(
  "real node: the Job controller's verdicts, recorded truly by the operator",
  {
    skip: nodeTierSkip(),
  },
  () => {
    let world: World;
    let hung: HttpsFixtureServer;
    /** Snapshot requests the hung OpenBao has received, by member address. */
    let snapshotRequests = 0;
    superviseServers();
    printPodsOnFailure(() => world);

    before(async () => {
      world = await startWorld({
        clusters,
        providers: ["s3"],
        helmValues: { jobTTLSecondsAfterFinished: String(jobTtlSeconds) },
      });
      // An OpenBao member that is the healthy leader and then sends a snapshot that never ends:
      // the gzip header, then silence on an open connection.
      const cert = issueCertificate(world.bao.ca, "hung-openbao", [], [world.node.gatewayIp]);
      let address = "";
      hung = await serveHttps(
        cert,
        (req: IncomingMessage, res: ServerResponse) => {
          const path = (req.url ?? "/").split("?")[0];
          const json = (body: unknown): void => {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify(body));
          };
          if (path === "/v1/sys/leader") return json({ ha_enabled: true, is_self: true, leader_address: address });
          if (path === "/v1/sys/health") return json({ initialized: true, sealed: false, version: "2.4.0" });
          if (path === "/v1/sys/storage/raft/snapshot") {
            snapshotRequests++;
            res.writeHead(200, { "content-type": "application/gzip" });
            res.write(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]));
            return;
          }
          res.writeHead(404, { "content-type": "application/json" });
          res.end('{"errors":[]}');
        },
        world.node.gatewayIp,
      );
      address = hung.address;
      await world.core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: "hung-token" }, stringData: { token: "s.not-a-real-token" } },
      });
    });
    after(async () => {
      await hung?.stop();
      await world?.stop();
    });

    const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 120_000) =>
      waitFor(check, { what, timeoutMs, intervalMs: 500, processes: world.node.processes });

    const hungBackup = (extra: Record<string, unknown> = {}) => ({
      schedule: quietSchedule,
      target: world.target("s3"),
      openbaoAddresses: [hung.address],
      tokenSecretRef: { name: "hung-token" },
      ...extra,
    });

    async function operatorMetrics(): Promise<string> {
      const pods = await world.core.listNamespacedPod({
        namespace: operatorNamespace,
        labelSelector: operatorPodSelector,
      });
      const ip = pods.items[0]?.status?.podIP;
      assert.ok(ip, "the operator Pod has an IP on the bridge");
      // The host reaches Pod IPs directly: the bridge is a host interface.
      return (await fetch(`http://${ip}:8080/metrics`)).text();
    }

    function metric(text: string, name: string, labels: Record<string, string>): number {
      const line = text
        .split("\n")
        .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
      return line ? Number(line.split(" ").at(-1)) : 0;
    }

    async function onlyJob(cluster: string): Promise<V1Job> {
      const jobs = await world.jobsOf(cluster);
      assert.equal(jobs.length, 1, `one Job of ${cluster}: ${jobs.map((j) => j.metadata?.name).join(", ")}`);
      const job = jobs[0];
      assert.ok(job);
      return job;
    }

    async function warnings(name: string): Promise<string[]> {
      const list = await world.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
      return list.items.filter((e) => e.type === "Warning").map((e) => `${e.reason}: ${e.message}`);
    }

    test("the Pod's security settings, from inside a running Pod of the operator's own spec", async () => {
      await world.createCluster("probe", { schedule: quietSchedule, target: world.target("s3") });
      const done = await world.triggerBackup("probe", "probe-1");
      assert.equal(done.status?.backup?.consecutiveFailures ?? 0, 0, done.status?.backup?.lastFailureMessage);
      const made = await onlyJob("probe");
      const template = made.spec?.template;
      assert.ok(template?.spec);
      // The operator's exact pod spec, with only the command replaced by a probe that reports
      // what the kernel and the kubelet gave the process.
      const container = template.spec.containers[0];
      assert.ok(container);
      const probe = `
      const fs = require("fs");
      const st = Object.fromEntries(fs.readFileSync("/proc/self/status", "utf8").split("\\n").map((l) => l.split(":\\t")).filter((p) => p.length === 2));
      let rootWrite; try { fs.writeFileSync("/probe", "x"); rootWrite = "written"; } catch (e) { rootWrite = e.code; }
      const jwt = fs.readFileSync(process.env.BACKUP_JWT_TOKEN_FILE, "utf8").split(".")[1];
      const claims = JSON.parse(Buffer.from(jwt, "base64url"));
      fs.writeFileSync("/dev/termination-log", JSON.stringify({
        uid: st.Uid, gid: st.Gid, groups: st.Groups, capEff: st.CapEff, capBnd: st.CapBnd, noNewPrivs: st.NoNewPrivs,
        seccomp: st.Seccomp, rootWrite, aud: claims.aud, sub: claims.sub, lifetime: claims.exp - claims.iat,
        apiToken: fs.existsSync("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        ca: fs.existsSync(process.env.BACKUP_CA_FILE), nodeOptions: process.env.NODE_OPTIONS,
        memoryLimit: fs.readFileSync("/sys/fs/cgroup/memory/memory.limit_in_bytes", "utf8").trim(),
      }));`;
      const job: V1Job = {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "security-probe", namespace },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: { labels: { probe: "security" } },
            spec: {
              ...template.spec,
              containers: [{ ...container, command: ["/nodejs/bin/node", "-e", probe], args: [] }],
            },
          },
        },
      };
      await world.batch.createNamespacedJob({ namespace, body: job });
      const finished = await until("the probe Job Complete", async () => {
        const j = await world.batch.readNamespacedJob({ namespace, name: "security-probe" });
        const failed = j.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
        if (failed) throw new Error(`probe failed: ${failed.reason} ${failed.message}`);
        return j.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True") && j;
      });
      assert.ok(finished);
      const [pod] = await world.podsOfJob("security-probe");
      const report = JSON.parse(pod?.status?.containerStatuses?.[0]?.state?.terminated?.message ?? "{}") as Record<
        string,
        unknown
      >;
      assert.match(String(report.uid), /^65532\s+65532\s+65532\s+65532$/, "runs as 65532 (real, effective, saved, fs)");
      assert.match(String(report.gid), /^65532\s/);
      assert.equal(report.capEff, "0000000000000000", "no effective capabilities");
      assert.equal(report.capBnd, "0000000000000000", "an empty bounding set: none can be regained");
      assert.equal(report.noNewPrivs, "1");
      assert.equal(report.seccomp, "2", "a seccomp filter (RuntimeDefault)");
      assert.equal(report.rootWrite, "EROFS", "the root filesystem is read-only");
      assert.deepEqual(report.aud, ["openbao-internal"], "the projected token is for OpenBao only");
      assert.equal(report.sub, `system:serviceaccount:${namespace}:probe-backup`);
      assert.equal(report.lifetime, 3600);
      assert.equal(report.apiToken, false, "no Kubernetes API token is mounted");
      assert.equal(report.ca, true, "the CA Secret is mounted where BACKUP_CA_FILE says");
      assert.equal(report.nodeOptions, "--max-semi-space-size=1");
      assert.equal(report.memoryLimit, String(306 * 1024 * 1024), "the memory limit is enforced by the cgroup");
    });

    test("a hung snapshot stopped by activeDeadlineSeconds: DeadlineExceeded, counted once", async () => {
      await world.createCluster("hung", hungBackup({ activeDeadlineSeconds: 20 }));
      const done = await world.triggerBackup("hung", "hung-1", 150_000);
      const b = done.status?.backup;
      assert.equal(b?.lastFailureReason, "DeadlineExceeded", b?.lastFailureMessage);
      assert.match(b?.lastFailureMessage ?? "", /deadline of 20s/);
      assert.equal(b?.consecutiveFailures, 1);
      assert.ok(snapshotRequests >= 1, "the executor was streaming the snapshot when it was stopped");
      const job = await onlyJob("hung");
      const failed = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
      assert.equal(failed?.reason, "DeadlineExceeded", "the real Job controller's verdict");
      // Counted once: a little later, still one failure, one event, one metric increment.
      await new Promise((r) => setTimeout(r, 5000));
      assert.equal((await world.getCluster("hung")).status?.backup?.consecutiveFailures, 1);
      const events = (await warnings("hung")).filter((e) => e.startsWith("BackupFailed"));
      assert.equal(events.length, 1, events.join("\n"));
      assert.match(events[0] ?? "", /DeadlineExceeded/);
      assert.equal(
        metric(await operatorMetrics(), "openbao_backup_failure_total", { cluster: "hung", type: "manual" }),
        1,
      );
      assert.equal((await world.getCluster("hung")).status?.operationLock ?? null, null, "the lock is released");
    });

    test("an executor killed at its memory limit: OOMKilled, naming the limit", async () => {
      await world.createCluster("oom", {
        schedule: quietSchedule,
        target: world.target("s3"),
        // Node.js alone needs more: 40Mi was measured to suffice for a small backup on cgroup v1.
        resources: { limits: { memory: "12Mi" } },
      });
      const done = await world.triggerBackup("oom", "oom-1");
      const b = done.status?.backup;
      assert.equal(b?.lastFailureReason, "OOMKilled", b?.lastFailureMessage);
      assert.match(b?.lastFailureMessage ?? "", /memory limit \(12Mi\)/);
      assert.match(b?.lastFailureMessage ?? "", /spec\.backup\.resources\.limits\.memory/);
      const job = await onlyJob("oom");
      const [pod] = await world.podsOfJob(job.metadata?.name ?? "");
      assert.equal(pod?.status?.containerStatuses?.[0]?.state?.terminated?.reason, "OOMKilled", "the kernel's verdict");
    });

    test("a Pod deleted mid-backup: one failure saying why, the lock released, the next backup fine", async () => {
      await world.createCluster("deleted", hungBackup({ activeDeadlineSeconds: 600 }));
      const before = snapshotRequests;
      await world.patchCluster("deleted", { metadata: { annotations: { [Annotation.TriggerBackup]: "deleted-1" } } });
      const pod = await until("the backup Pod streaming", async () => {
        const job = (await world.jobsOf("deleted"))[0];
        const pods = job?.metadata?.name ? await world.podsOfJob(job.metadata.name) : [];
        return snapshotRequests > before && pods[0]?.status?.phase === "Running" && pods[0];
      });
      await world.core.deleteNamespacedPod({ namespace, name: pod.metadata?.name ?? "" });
      const failed = await until("the failure recorded", async () => {
        const c = await world.getCluster("deleted");
        return (c.status?.backup?.consecutiveFailures ?? 0) > 0 && c.status?.backup?.currentJob == null && c;
      });
      const b = failed.status?.backup;
      assert.equal(b?.consecutiveFailures, 1);
      assert.ok(
        b?.lastFailureReason && b.lastFailureReason !== "JobLost",
        `${b?.lastFailureReason}: ${b?.lastFailureMessage}`,
      );
      assert.match(b?.lastFailureMessage ?? "", /signal|deleted|BackoffLimitExceeded/i);
      assert.equal(failed.status?.operationLock ?? null, null, "the lock is released");

      await world.patchCluster("deleted", {
        spec: { backup: { openbaoAddresses: world.bao.addresses, tokenSecretRef: null, jwtAuthRole: "backup" } },
      });
      const next = await world.triggerBackup("deleted", "deleted-2");
      assert.equal(next.status?.backup?.consecutiveFailures, 0, next.status?.backup?.lastFailureMessage);
      assert.ok(next.status?.backup?.lastBackupName);
    });

    test("finished Jobs are collected by their TTL; the recorded result stays", async () => {
      await world.createCluster("ttl", { schedule: quietSchedule, target: world.target("s3") });
      const done = await world.triggerBackup("ttl", "ttl-1");
      const key = done.status?.backup?.lastBackupName;
      assert.ok(key, done.status?.backup?.lastFailureMessage);
      const job = await onlyJob("ttl");
      assert.equal(job.spec?.ttlSecondsAfterFinished, jobTtlSeconds, "the chart's value reached the Job");
      await until(
        "the TTL controller deletes the finished Job",
        async () => (await world.jobsOf("ttl")).length === 0,
        90_000,
      );
      await new Promise((r) => setTimeout(r, 3000));
      const after = (await world.getCluster("ttl")).status?.backup;
      assert.equal(after?.lastBackupName, key);
      assert.equal(after?.consecutiveFailures ?? 0, 0, "a collected Job is not a lost one");
      assert.deepEqual(
        (await warnings("ttl")).filter((e) => /JobLost|LockRecovered|BackupFailed/.test(e)),
        [],
        "nothing reported as lost",
      );
    });

    test("deleting the OpenBaoCluster garbage-collects its Jobs, their Pods and its ServiceAccounts", async () => {
      await world.createCluster("gc", hungBackup({ activeDeadlineSeconds: 600 }));
      await world.patchCluster("gc", { metadata: { annotations: { [Annotation.TriggerBackup]: "gc-1" } } });
      const job = await until("a running Job of gc", async () => (await world.jobsOf("gc"))[0]);
      const jobName = job.metadata?.name ?? "";
      await until("its Pod", async () => (await world.podsOfJob(jobName)).length > 0);
      const accounts = async () =>
        (await world.core.listNamespacedServiceAccount({ namespace })).items
          .map((a) => a.metadata?.name ?? "")
          .filter((n) => n.startsWith("gc-"));
      assert.deepEqual(await accounts(), ["gc-backup"]);
      await world.custom.deleteNamespacedCustomObject({
        group: "openbao.org",
        version: "v1alpha1",
        namespace,
        plural: "openbaoclusters",
        name: "gc",
      });
      await until("the garbage collector removes the Job, its Pod and the ServiceAccount", async () => {
        const jobs = await world.batch.listNamespacedJob({ namespace });
        const pods = await world.podsOfJob(jobName);
        return (
          !jobs.items.some((j) => j.metadata?.name === jobName) && pods.length === 0 && (await accounts()).length === 0
        );
      });
    });
  },
);
