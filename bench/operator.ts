/**
 * Operator scale benchmark (BENCHMARKS.md §3): N OpenBaoCluster objects on the real
 * kube-apiserver + etcd, all scheduled on the same cron minute, the operator as a child process
 * (`bao-backup operator`, default leader election), and the job runner completing each Job
 * with a success result line without running the executor (`completeWith`): the control plane
 * alone.
 *
 * API requests are counted by the API server itself: an audit log (level Metadata) records
 * every request with its user, and the operator runs as its own ServiceAccount
 * (`openbao:bench-operator`, bound to cluster-admin), so its requests are told apart from the
 * job runner's and the benchmark's. Memory and CPU are the kernel's figures for the operator
 * process (/proc/<pid>/status VmRSS, /proc/<pid>/stat utime+stime).
 *
 * Timeline: create the N clusters (with their Secrets) for a daily schedule at minute T, start
 * the operator, let it settle, measure the idle phase until shortly before T, then the burst
 * (T → every result recorded), then another idle minute.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  Watch,
} from "@kubernetes/client-node";
import { crdFiles } from "../src/api/schema.ts";
import { resultLine } from "../src/executor/result.ts";
import { projectRoot } from "../test/servers/catalog.ts";
import { startJobRunner } from "../test/servers/job-runner.ts";
import { serviceAccountIssuer, startKube } from "../test/servers/kube.ts";
import { freePort } from "../test/servers/ports.ts";
import { scratchDir, startProcess, waitFor } from "../test/servers/process.ts";
import { MiB, percentile, procCpuMs, procMemory, table } from "./measure.ts";
import { type ClusterRef, minimalClientBurst, minimalClients } from "./minimal-client.ts";

const namespace = "openbao";
const group = "openbao.org";
const version = "v1alpha1";
const plural = "openbaoclusters";
const operatorUser = `system:serviceaccount:${namespace}:bench-operator`;

export interface OperatorBenchOptions {
  readonly clusters: number;
  readonly log: (line: string) => void;
  /** Seconds of idle measurement after the burst (default 60). */
  readonly idleAfterSeconds?: number;
  /** Seconds from the start of creation to the window, before rounding up to a minute (default 100 + 0.03 × N). */
  readonly leadSeconds?: number;
  /** Write a V8 CPU profile of the operator here (`--cpu-prof`, written when it stops). */
  readonly cpuProfileDir?: string | undefined;
  /**
   * Write V8 heap snapshots of the operator here: one when it has settled (idle, every cluster
   * cached) and one in the burst, when half the results are recorded (`--heapsnapshot-signal`).
   */
  readonly heapSnapshotDir?: string | undefined;
  /** Extra NODE_OPTIONS of the operator, e.g. `--max-old-space-size=128`. */
  readonly nodeOptions?: string | undefined;
  /** Extra arguments for `bao-backup operator`. */
  readonly operatorArgs?: readonly string[];
  /** Give up on the burst after this many seconds (default 1800). */
  readonly burstTimeoutSeconds?: number;
  /** Measure the minimal client's burst afterwards (bench/minimal-client.ts); default true. */
  readonly baseline?: boolean;
  /** The operator's workers (`--workers`), and the minimal client's requests in flight; default 16. */
  readonly workers?: number;
}

interface AuditRecord {
  readonly auditID: string;
  readonly stage: string;
  readonly verb: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly name?: string };
  readonly responseStatus?: { readonly code?: number };
  readonly requestReceivedTimestamp: string;
  /** When the stage was reached: for ResponseComplete, when the API server answered (µs resolution). */
  readonly stageTimestamp?: string;
}

/**
 * Seconds from `windowMs` until the API server answered each successful Job create whose name
 * `matches` (the audit log's ResponseComplete stage): a millisecond figure for the operator and
 * the minimal client alike, where creationTimestamp has whole seconds only.
 */
function jobCreateLatencies(
  records: readonly AuditRecord[],
  windowMs: number,
  matches: (record: AuditRecord) => boolean,
): number[] {
  return records
    .filter(
      (r) =>
        r.verb === "create" &&
        r.stage === "ResponseComplete" &&
        r.objectRef?.resource === "jobs" &&
        (r.responseStatus?.code ?? 0) < 300 &&
        Date.parse(r.requestReceivedTimestamp) >= windowMs - 1_000 &&
        matches(r),
    )
    .map((r) => (Date.parse(r.stageTimestamp ?? r.requestReceivedTimestamp) - windowMs) / 1000);
}

export interface RequestCounts {
  readonly total: number;
  readonly byVerbResource: Record<string, number>;
}

export interface Sample {
  readonly at: number;
  readonly rss: number;
  readonly cpuMs: number;
}

export interface OperatorResult {
  readonly clusters: number;
  readonly windowIso: string;
  readonly createdInMs: number;
  readonly jobsCreated: number;
  /** Seconds from the window to each Job's creationTimestamp (1 s resolution, truncated). */
  readonly creationLatencyS: { p50: number; p99: number; max: number };
  /** Seconds from the window until the job runner saw each Job (ms resolution; ≥ creation). */
  readonly seenLatencyS: { p50: number; p99: number; max: number };
  /** Seconds from the window until the last Job finished and until the last result was recorded. */
  readonly lastJobFinishedS: number;
  readonly allRecordedS: number;
  /** Per Job: recorded (status.backup.lastRecordedJob) − finished (runner), seconds. */
  readonly recordLagS: { p50: number; p99: number; max: number };
  readonly recorded: number;
  readonly idleBefore: PhaseFigures;
  readonly burst: PhaseFigures;
  readonly idleAfter: PhaseFigures;
  readonly clusterWritesPerBackup: number;
  /** The operator's warn/error log lines over the whole run, counted by level and message. */
  readonly operatorWarnings: Record<string, number>;
  /** The operator's own memory figures (its /metrics), MiB: when settled, at the end of the burst, at the end. */
  readonly memory: { readonly settled: MemoryFigures; readonly burstEnd: MemoryFigures; readonly end: MemoryFigures };
  /**
   * The minimal client on the same API server, after the operator stopped: the same writes
   * before each Job (status, ServiceAccount, Job), as many in flight as the operator's workers.
   */
  readonly baseline?: {
    readonly jobsCreated: number;
    readonly creationLatencyS: { p50: number; p99: number; max: number };
    /** From the audit log: window → the API server's answer to each Job create (ms resolution). */
    readonly createdLatencyS: { p50: number; p99: number; max: number };
    readonly workers: number;
  };
  /** The operator's Job creates, from the audit log like the baseline's (ms resolution). */
  readonly createdLatencyS?: { p50: number; p99: number; max: number };
  readonly samples: Sample[];
}

export interface MemoryFigures {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

export interface PhaseFigures {
  readonly seconds: number;
  readonly requests: RequestCounts;
  readonly rssMaxMiB: number;
  readonly rssEndMiB: number;
  /** CPU seconds used by the operator in the phase, and as a share of one core. */
  readonly cpuSeconds: number;
  readonly cpuShare: number;
}

function stats(values: readonly number[]): { p50: number; p99: number; max: number } {
  return {
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values.length === 0 ? Number.NaN : Math.max(...values),
  };
}

function readAudit(path: string): AuditRecord[] {
  const seen = new Set<string>();
  const out: AuditRecord[] = [];
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let record: AuditRecord;
    try {
      record = JSON.parse(line) as AuditRecord;
    } catch {
      continue;
    }
    if (seen.has(record.auditID)) continue;
    seen.add(record.auditID);
    out.push(record);
  }
  return out;
}

function countRequests(records: readonly AuditRecord[], from: number, to: number): RequestCounts {
  const byVerbResource: Record<string, number> = {};
  let total = 0;
  for (const r of records) {
    if (r.user?.username !== operatorUser) continue;
    const at = Date.parse(r.requestReceivedTimestamp);
    if (at < from || at >= to) continue;
    const resource = `${r.objectRef?.resource ?? "?"}${r.objectRef?.subresource ? `/${r.objectRef.subresource}` : ""}`;
    const key = `${r.verb} ${resource}`;
    byVerbResource[key] = (byVerbResource[key] ?? 0) + 1;
    total++;
  }
  return { total, byVerbResource };
}

function phase(records: readonly AuditRecord[], samples: readonly Sample[], from: number, to: number): PhaseFigures {
  const inPhase = samples.filter((s) => s.at >= from && s.at <= to);
  const first = inPhase[0];
  const last = inPhase.at(-1);
  const cpuMs = first && last ? last.cpuMs - first.cpuMs : Number.NaN;
  const wall = first && last ? last.at - first.at : Number.NaN;
  return {
    seconds: (to - from) / 1000,
    requests: countRequests(records, from, to),
    rssMaxMiB: Math.max(...inPhase.map((s) => s.rss)) / MiB,
    rssEndMiB: (last?.rss ?? Number.NaN) / MiB,
    cpuSeconds: cpuMs / 1000,
    cpuShare: cpuMs / wall,
  };
}

async function inBatches<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await work(item);
      }
    }),
  );
}

function nodeOptions(options: OperatorBenchOptions): { NODE_OPTIONS?: string } {
  const flags: string[] = [];
  if (options.cpuProfileDir) flags.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`);
  if (options.heapSnapshotDir)
    flags.push("--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${options.heapSnapshotDir}`);
  if (options.nodeOptions) flags.push(options.nodeOptions);
  return flags.length === 0 ? {} : { NODE_OPTIONS: flags.join(" ") };
}

/** Counts the warn/error lines of a JSON log (pino, `level` as a word) by level and message. */
function warnings(logPath: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let text = "";
  try {
    text = readFileSync(logPath, "utf8");
  } catch {
    return counts;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const record = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if (record.level !== "warn" && record.level !== "error" && record.level !== "fatal") continue;
      const key = `${String(record.level)}: ${String(record.msg)}`;
      counts[key] = (counts[key] ?? 0) + 1;
    } catch {
      // not a log record
    }
  }
  return counts;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function benchOperator(options: OperatorBenchOptions): Promise<OperatorResult> {
  const { log } = options;
  const n = options.clusters;
  const dir = scratchDir("bench-operator");
  const auditPath = join(dir, "audit.log");
  const policyPath = join(dir, "audit-policy.yaml");
  writeFileSync(
    policyPath,
    'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived"]\nrules:\n  - level: Metadata\n',
  );
  log(`operator: starting etcd + kube-apiserver (audit log ${auditPath})`);
  const kube = await startKube({
    name: "bench-kube",
    extraApiServerArgs: [
      `--audit-policy-file=${policyPath}`,
      `--audit-log-path=${auditPath}`,
      "--audit-log-format=json",
      "--audit-log-maxsize=0",
      "--audit-log-maxbackup=0",
    ],
  });
  const stops: (() => Promise<void>)[] = [() => kube.stop()];
  try {
    await kube.installCrds(crdFiles().map((f) => f.content));
    await kube.createNamespace(namespace);
    const kc = kube.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);

    // The operator's own identity, so the audit log tells its requests apart.
    await kube.createServiceAccount(namespace, "bench-operator");
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: "bench-operator" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: "bench-operator", namespace }],
      },
    });
    const token = await kube.requestToken(namespace, "bench-operator", serviceAccountIssuer, 4 * 3600);
    const operatorKubeconfig = join(dir, "operator.kubeconfig");
    writeFileSync(operatorKubeconfig, kube.kubeConfigForToken(token.token, "bench-operator").exportConfig(), {
      mode: 0o600,
    });

    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "bao-token" }, stringData: { token: "s.bench" } },
    });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "s3-credentials" }, stringData: { accessKeyId: "bench", secretAccessKey: "bench" } },
    });

    // The window: a whole minute far enough ahead for creation, start-up and an idle phase.
    const names = Array.from({ length: n }, (_, i) => `bao-${String(i).padStart(4, "0")}`);
    const leadMs = (options.leadSeconds ?? 100 + n * 0.03) * 1000;
    const windowMs = Math.ceil((Date.now() + leadMs) / 60_000) * 60_000;
    const window = new Date(windowMs);
    const schedule = `${window.getUTCMinutes()} ${window.getUTCHours()} * * *`;
    log(`operator: creating ${n} clusters scheduled "${schedule}" (UTC), window ${window.toISOString()}`);
    const createStart = Date.now();
    await inBatches(names, 16, async (name) => {
      await core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: `${name}-tls-ca` }, stringData: { "ca.crt": "bench" } },
      });
      await custom.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
        body: {
          apiVersion: `${group}/${version}`,
          kind: "OpenBaoCluster",
          metadata: { name, namespace },
          spec: {
            replicas: 1,
            version: "2.4.0",
            backup: {
              schedule,
              tokenSecretRef: { name: "bao-token" },
              openbaoAddresses: ["https://127.0.0.1:8200"],
              target: {
                provider: "s3",
                endpoint: "http://127.0.0.1:9000",
                bucket: "backups",
                usePathStyle: true,
                credentialsSecretRef: { name: "s3-credentials" },
              },
            },
          },
        },
      });
      await custom.patchNamespacedCustomObjectStatus(
        {
          group,
          version,
          namespace,
          plural,
          name,
          body: { status: { phase: "Running", initialized: true, currentVersion: "2.4.0" } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    });
    const createdInMs = Date.now() - createStart;
    log(`operator: ${n} clusters created in ${(createdInMs / 1000).toFixed(1)} s`);
    if (Date.now() > windowMs - 30_000) throw new Error("creating the clusters took too long for the chosen window");

    // Results, as the executor would write them.
    const runner = await startJobRunner({
      kubeConfig: kc,
      namespace,
      mode: {
        completeWith: (job) => {
          const cluster = job.metadata?.annotations?.["openbao.org/cluster-name"] ?? "unknown";
          const now = new Date();
          return {
            exitCode: 0,
            terminationMessage: resultLine({
              mode: "backup",
              ok: true,
              key: `${namespace}/${cluster}/${now.toISOString().replace(/[:.]/g, "-")}-bench.snap`,
              size: 1024,
              sha256: "0".repeat(64),
              durationMs: 1,
              raftIndex: 1000,
              raftTerm: 3,
              openbaoVersion: "2.4.0",
              startedAt: now.toISOString(),
              retention: undefined,
            }),
          };
        },
      },
    });
    stops.unshift(() => runner.stop());

    // When each cluster's result is recorded, from a watch (ms resolution, no polling).
    const recordedAt = new Map<string, { job: string; at: number }>();
    let watchEvents = 0;
    const watch = new Watch(kc);
    let stopping = false;
    let watchRequest: AbortController | undefined;
    // The client's watch ends after its request timeout; open it again (a re-opened watch
    // replays every object as ADDED, which changes nothing already recorded).
    const openWatch = async (): Promise<void> => {
      watchRequest = await watch.watch(
        `/apis/${group}/${version}/namespaces/${namespace}/${plural}`,
        {},
        (_type, object: { metadata?: { name?: string }; status?: { backup?: { lastRecordedJob?: string } } }) => {
          watchEvents++;
          const name = object.metadata?.name;
          const job = object.status?.backup?.lastRecordedJob;
          if (name && job && recordedAt.get(name)?.job !== job) recordedAt.set(name, { job, at: Date.now() });
        },
        () => {
          if (!stopping)
            void openWatch().catch((err: unknown) => log(`operator: cannot re-open the watch: ${String(err)}`));
        },
      );
    };
    await openWatch();
    stops.unshift(async () => {
      stopping = true;
      watchRequest?.abort();
    });

    const port = await freePort();
    const operator = startProcess({
      name: "bench-operator",
      command: process.execPath,
      args: [
        join(projectRoot, "src", "cli", "main.ts"),
        "operator",
        "--kubeconfig",
        operatorKubeconfig,
        "--namespace",
        namespace,
        "--image",
        "openbao-backup:bench",
        "--health-port",
        String(port),
        "--leader-election-namespace",
        namespace,
        ...(options.operatorArgs ?? []),
      ],
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        ...nodeOptions(options),
      },
      logDir: dir,
    });
    stops.unshift(() => operator.stop());
    const pid = operator.child.pid ?? 0;
    const samples: Sample[] = [];
    const sampler = setInterval(() => {
      const m = procMemory(pid);
      const cpu = procCpuMs(pid);
      if (m && cpu !== undefined) samples.push({ at: Date.now(), rss: m.rss, cpuMs: cpu });
    }, 250);
    stops.unshift(async () => clearInterval(sampler));
    const metricsUrl = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${metricsUrl}/readyz`)).ok, {
      what: "operator /readyz",
      timeoutMs: 120_000,
      processes: [operator],
    });
    // Settled: every cluster reconciled once and the queue empty.
    const queueDepth = async (): Promise<number> => {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      let depth = 0;
      for (const m of text.matchAll(/^workqueue_(?:depth|processing)\{[^}]*\} (\d+)/gm)) depth += Number(m[1]);
      return depth;
    };
    await waitFor(async () => (await queueDepth()) === 0, { what: "operator queue empty", timeoutMs: 120_000 });
    const snapshot = (): void => {
      if (options.heapSnapshotDir) process.kill(pid, "SIGUSR2");
    };
    const memory = async (): Promise<MemoryFigures> => {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      const gauge = (name: string): number =>
        Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, "m").exec(text)?.[1]) / MiB;
      return {
        rss: gauge("process_resident_memory_bytes"),
        heapTotal: gauge("nodejs_heap_size_total_bytes"),
        heapUsed: gauge("nodejs_heap_size_used_bytes"),
        external: gauge("nodejs_external_memory_bytes"),
      };
    };
    const settledMemory = await memory();
    snapshot();
    const idleFrom = Date.now() + 2_000;
    log(`operator: ready and settled; idle until the window (${((windowMs - idleFrom) / 1000).toFixed(0)} s)`);
    const idleTo = windowMs - 3_000;
    await sleep(Math.max(0, windowMs - Date.now()));

    log("operator: window reached; waiting for every Job and every recorded result");
    const deadline = windowMs + (options.burstTimeoutSeconds ?? 1800) * 1000;
    let lastReport = Date.now();
    let burstSnapshotTaken = false;
    for (;;) {
      const done = names.filter((name) => {
        const rec = recordedAt.get(name);
        return rec !== undefined && rec.at >= windowMs;
      }).length;
      if (done === n) break;
      if (!burstSnapshotTaken && done >= n / 2) {
        burstSnapshotTaken = true;
        snapshot();
      }
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        const seen = runner.runs.filter((r) => r.seenAt >= windowMs - 60_000).length;
        log(`operator: ${seen} Jobs seen, ${done} of ${n} results recorded (${watchEvents} watch events)`);
        if (seen === 0 && Date.now() > windowMs + 60_000) log(`operator log tail:\n${operator.logTail(4000)}`);
      }
      if (Date.now() > deadline) {
        log(`operator: only ${done} of ${n} results recorded by the deadline`);
        break;
      }
      await sleep(500);
    }
    const burstTo = Math.max(...[...recordedAt.values()].map((r) => r.at), windowMs) + 1_000;
    const burstEndMemory = await memory();
    log(`operator: burst over after ${((burstTo - windowMs) / 1000).toFixed(1)} s; idle for a minute`);
    const idleAfterSeconds = options.idleAfterSeconds ?? 60;
    await sleep(idleAfterSeconds * 1000 + 2_000);
    const idleAfterTo = Date.now() - 1_000;
    const endMemory = await memory();

    const jobs = runner.runs.filter((r) => r.seenAt >= windowMs - 60_000);
    const batchApi = kc.makeApiClient(BatchV1Api);
    const batch = await batchApi.listNamespacedJob({ namespace });
    const creation = batch.items
      .map((j) => j.metadata?.creationTimestamp)
      .filter((t): t is Date => t !== undefined)
      .map((t) => (new Date(t).getTime() - windowMs) / 1000);
    const finishedByJob = new Map(jobs.map((r) => [r.jobName, r.finishedAt ?? Number.NaN]));
    const lags: number[] = [];
    for (const rec of recordedAt.values()) {
      const finished = finishedByJob.get(rec.job);
      if (finished !== undefined && Number.isFinite(finished)) lags.push((rec.at - finished) / 1000);
    }
    const records = readAudit(auditPath);
    const burst = phase(records, samples, windowMs - 1_000, burstTo);

    let baseline: OperatorResult["baseline"];
    const template = batch.items[0];
    if (options.baseline !== false && template) {
      // The operator stops first: the API server and etcd serve the minimal client alone.
      await operator.stop();
      const workers = options.workers ?? 16;
      const listed = (await custom.listNamespacedCustomObject({ group, version, namespace, plural })) as {
        items: { metadata: { name: string; uid: string; resourceVersion: string }; status?: Record<string, unknown> }[];
      };
      const clusters: ClusterRef[] = listed.items.map((c) => ({
        name: c.metadata.name,
        uid: c.metadata.uid,
        resourceVersion: c.metadata.resourceVersion,
        status: c.status ?? {},
      }));
      const baselineWindow = Math.ceil((Date.now() + 15_000) / 60_000) * 60_000;
      log(`operator: the minimal client's burst at ${new Date(baselineWindow).toISOString()} (${workers} in flight)`);
      const names = new Set(
        await minimalClientBurst({
          // Kept-alive connections, as the operator's (src/runtime/kube-connections.ts): the
          // client library alone opens a TLS connection per request.
          ...minimalClients(kc),
          namespace,
          clusters,
          template,
          windowMs: baselineWindow,
          workers,
        }),
      );
      const after = await batchApi.listNamespacedJob({ namespace });
      const latencies = after.items
        .filter((j) => names.has(j.metadata?.name ?? ""))
        .map((j) => (new Date(j.metadata?.creationTimestamp ?? 0).getTime() - baselineWindow) / 1000);
      await sleep(2_000); // the audit log is written asynchronously
      const acked = jobCreateLatencies(readAudit(auditPath), baselineWindow, (r) => r.user?.username !== operatorUser);
      const measured = {
        jobsCreated: latencies.length,
        creationLatencyS: stats(latencies),
        createdLatencyS: stats(acked),
        workers,
      };
      baseline = measured;
      log(
        `operator: minimal client: ${latencies.length} Jobs, window → Job create answered p50 ${measured.createdLatencyS.p50.toFixed(2)} s, p99 ${measured.createdLatencyS.p99.toFixed(2)} s`,
      );
    }
    const clusterWrites = Object.entries(burst.requests.byVerbResource)
      .filter(([key]) => /^(patch|update|create) openbaoclusters/.test(key))
      .reduce((sum, [, count]) => sum + count, 0);
    const result: OperatorResult = {
      clusters: n,
      windowIso: window.toISOString(),
      createdInMs,
      jobsCreated: jobs.length,
      creationLatencyS: stats(creation),
      seenLatencyS: stats(jobs.map((r) => (r.seenAt - windowMs) / 1000)),
      lastJobFinishedS: (Math.max(...jobs.map((r) => r.finishedAt ?? 0)) - windowMs) / 1000,
      allRecordedS: (burstTo - 1_000 - windowMs) / 1000,
      recordLagS: stats(lags),
      recorded: [...recordedAt.values()].filter((r) => r.at >= windowMs).length,
      idleBefore: phase(records, samples, idleFrom, idleTo),
      burst,
      idleAfter: phase(records, samples, burstTo + 1_000, idleAfterTo),
      clusterWritesPerBackup: clusterWrites / n,
      operatorWarnings: warnings(operator.logPath),
      memory: { settled: settledMemory, burstEnd: burstEndMemory, end: endMemory },
      createdLatencyS: stats(jobCreateLatencies(records, windowMs, (r) => r.user?.username === operatorUser)),
      ...(baseline ? { baseline } : {}),
      samples,
    };
    mkdirSync(dir, { recursive: true });
    return result;
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

function requestsPerMinute(p: PhaseFigures): string {
  return ((p.requests.total / p.seconds) * 60).toFixed(1);
}

function breakdown(counts: RequestCounts, divisor: number): string {
  return Object.entries(counts.byVerbResource)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${(v / divisor).toFixed(divisor === 1 ? 0 : 2)}`)
    .join("; ");
}

export function operatorTables(r: OperatorResult): string {
  const s = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "–");
  const s3 = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(2) : "–");
  const main = table(
    ["figure", "value"],
    [
      ["clusters on one cron minute", String(r.clusters)],
      ["Jobs created", String(r.jobsCreated)],
      [
        "window → Job creationTimestamp p50 / p99 / max (s, 1 s resolution)",
        `${s(r.creationLatencyS.p50)} / ${s(r.creationLatencyS.p99)} / ${s(r.creationLatencyS.max)}`,
      ],
      [
        "window → Job seen by the runner p50 / p99 / max (s)",
        `${s(r.seenLatencyS.p50)} / ${s(r.seenLatencyS.p99)} / ${s(r.seenLatencyS.max)}`,
      ],
      ...(r.baseline
        ? [
            [
              `minimal client (status write, ServiceAccount, Job; ${r.baseline.workers} in flight): window → Job creationTimestamp p50 / p99 / max (s)`,
              `${s(r.baseline.creationLatencyS.p50)} / ${s(r.baseline.creationLatencyS.p99)} / ${s(r.baseline.creationLatencyS.max)} (${r.baseline.jobsCreated} Jobs)`,
            ],
            [
              "window → Job create answered (audit log, ms) p50 / p99 / max (s): operator; minimal client",
              `${s3(r.createdLatencyS?.p50)} / ${s3(r.createdLatencyS?.p99)} / ${s3(r.createdLatencyS?.max)}; ${s3(r.baseline.createdLatencyS.p50)} / ${s3(r.baseline.createdLatencyS.p99)} / ${s3(r.baseline.createdLatencyS.max)}`,
            ],
            [
              "operator p99 / minimal client p99, Job create answered (target ≤ 1.25)",
              ((r.createdLatencyS?.p99 ?? Number.NaN) / r.baseline.createdLatencyS.p99).toFixed(2),
            ],
          ]
        : []),
      ["window → last Job finished (s)", s(r.lastJobFinishedS)],
      ["window → all results recorded (s)", `${s(r.allRecordedS)} (${r.recorded} recorded)`],
      [
        "Job finished → result recorded p50 / p99 / max (s)",
        `${s(r.recordLagS.p50)} / ${s(r.recordLagS.p99)} / ${s(r.recordLagS.max)}`,
      ],
      ["operator API requests per backup (burst)", (r.burst.requests.total / r.clusters).toFixed(2)],
      ["writes on the OpenBaoCluster per backup", r.clusterWritesPerBackup.toFixed(2)],
      [
        "operator RSS idle before / max in burst / idle after (MiB)",
        `${s(r.idleBefore.rssEndMiB)} / ${s(r.burst.rssMaxMiB)} / ${s(r.idleAfter.rssEndMiB)}`,
      ],
      [
        "operator RSS / V8 heap total / heap used / external, settled → burst end → end (MiB)",
        (["settled", "burstEnd", "end"] as const)
          .map((k) => {
            const m = r.memory?.[k];
            return m ? `${s(m.rss)} / ${s(m.heapTotal)} / ${s(m.heapUsed)} / ${s(m.external)}` : "–";
          })
          .join(" → "),
      ],
      [
        "operator CPU idle before / burst / idle after (share of one core)",
        `${(r.idleBefore.cpuShare * 100).toFixed(1)}% / ${(r.burst.cpuShare * 100).toFixed(0)}% over ${s(r.burst.seconds)} s (${s(r.burst.cpuSeconds)} CPU s) / ${(r.idleAfter.cpuShare * 100).toFixed(1)}%`,
      ],
      [
        "operator requests per minute, idle before / after",
        `${requestsPerMinute(r.idleBefore)} / ${requestsPerMinute(r.idleAfter)}`,
      ],
    ],
  );
  return [
    main,
    "",
    `Burst requests per backup by verb and resource: ${breakdown(r.burst.requests, r.clusters)}`,
    "",
    `Idle before (${s(r.idleBefore.seconds)} s), all requests: ${breakdown(r.idleBefore.requests, 1)}`,
    "",
    `Idle after (${s(r.idleAfter.seconds)} s), all requests: ${breakdown(r.idleAfter.requests, 1)}`,
    "",
    `Operator warnings and errors: ${
      Object.entries(r.operatorWarnings ?? {})
        .map(([k, v]) => `${k} × ${v}`)
        .join("; ") || "none"
    }`,
  ].join("\n");
}
