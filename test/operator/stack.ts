/**
 * The operator's world for end-to-end tests: real etcd + kube-apiserver with the CRDs, a
 * real OpenBao whose JWT auth trusts the API server's ServiceAccount tokens, a real MinIO,
 * the job runner playing kubelet + Job controller, and the operator itself as a child
 * process (`bao-backup operator`), so it can be killed like a real Pod.
 */

import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
} from "@kubernetes/client-node";
import { crdFiles } from "../../src/api/schema.ts";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { backupServiceAccountName } from "../../src/backup/controller.ts";
import { restoreServiceAccountName } from "../../src/restore/plan.ts";
import { clusterTarget, startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { type JobRunner, startJobRunner } from "../servers/job-runner.ts";
import { type KubeHandle, kubeGet, startKube } from "../servers/kube.ts";
import { type OpenBaoCluster as BaoServer, startOpenBao } from "../servers/openbao.ts";
import { type ManagedProcess, startProcess, startTogether, waitFor } from "../servers/process.ts";
import { startCliProcess } from "./cli-process.ts";

export const namespace = "openbao";
const group = "openbao.org";
const version = "v1alpha1";
const plural = "openbaoclusters";

export interface Stack {
  readonly kube: KubeHandle;
  readonly bao: BaoServer;
  readonly target: TargetUnderTest;
  readonly runner: JobRunner;
  readonly custom: CustomObjectsApi;
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;
  startOperator(options?: OperatorOptions): Promise<OperatorProcess>;
  createCluster(
    name: string,
    backup: Record<string, unknown>,
    extra?: { spec?: Record<string, unknown> },
  ): Promise<void>;
  getCluster(name: string): Promise<OpenBaoCluster>;
  setStatus(name: string, status: Record<string, unknown>): Promise<void>;
  patchCluster(name: string, patch: Record<string, unknown>): Promise<void>;
  jobsOf(name: string): Promise<V1Job[]>;
  /** Fault: stops the serving kube-apiserver (etcd keeps running). */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again with the same flags (port, etcd, keys) and waits for /readyz. */
  startApiServer(): Promise<void>;
  /**
   * Fault: freezes kube-apiserver (SIGSTOP): connections are accepted by the kernel and never
   * answered, as when an API server stalls. Returns the resume (SIGCONT); `stop` resumes too.
   */
  stallApiServer(): () => void;
  stop(): Promise<void>;
}

export interface OperatorOptions {
  readonly name?: string;
  readonly leaderElection?: boolean;
  /** Extra environment, e.g. `BAO_BACKUP_CRASH_AT` (src/runtime/crash-point.ts). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface OperatorProcess {
  readonly process: ManagedProcess;
  readonly healthUrl: string;
  metrics(): Promise<string>;
}

/** The `target` block pointing at the stack's MinIO, with the credentials Secret. */
export function s3Target(target: TargetUnderTest): Record<string, unknown> {
  return clusterTarget("s3", target);
}

export interface StackOptions {
  /** OpenBao members; 1 by default. */
  readonly nodes?: 1 | 3;
  /** Called with a line for each step, for narration (the demo). */
  readonly say?: (line: string) => void;
}

export async function startStack(clusterNames: readonly string[], options: StackOptions = {}): Promise<Stack> {
  const say = options.say ?? (() => undefined);
  say("starting etcd + kube-apiserver");
  const kube = await startKube();
  say("installing the OpenBaoCluster and OpenBaoRestore CRDs");
  await kube.installCrds(crdFiles().map((f) => f.content));
  say(`starting a ${options.nodes ?? 1}-node OpenBao (Raft, TLS) and MinIO`);
  const [bao, target] = await startTogether([
    startOpenBao({
      nodes: options.nodes ?? 1,
      jwtValidationPubkeys: [kube.serviceAccountPublicKeyPem],
      jwtIssuer: kube.issuer,
      // The role binds one ServiceAccount; tests that need several clusters use token auth.
      backupServiceAccount: { namespace, name: backupServiceAccountName(clusterNames[0] ?? "bao") },
      restoreServiceAccount: { namespace, name: restoreServiceAccountName(clusterNames[0] ?? "bao") },
    }),
    startTarget("s3"),
  ]);
  await kube.createNamespace(namespace);
  const kc = kube.kubeConfig;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const batch = kc.makeApiClient(BatchV1Api);
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: "s3-credentials" }, stringData: target.credentials },
  });
  const token = await bao.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
    policies: ["backup"],
    ttl: "4h",
  });
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: "bao-token" }, stringData: { token: token.auth.client_token } },
  });
  for (const name of clusterNames) {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: `${name}-tls-ca` }, stringData: { "ca.crt": bao.caPem } },
    });
  }
  const runner = await startJobRunner({ kubeConfig: kc, namespace });
  const operators: ManagedProcess[] = [];
  /** The kube-apiserver serving now: the fixture's, or the one `startApiServer` started. */
  let apiServer = kube.apiServer;
  /** Resumes a stalled kube-apiserver (`stallApiServer`). */
  let stalled: (() => void) | undefined;

  const stack: Stack = {
    kube,
    bao,
    target,
    runner,
    custom,
    batch,
    core,
    async startOperator(options = {}) {
      const { process: proc, healthUrl } = await startCliProcess({
        command: "operator",
        name: options.name ?? "operator",
        kubeConfigPath: kube.kubeConfigPath,
        namespace,
        args: [
          "--image",
          "openbao-backup:test",
          ...(options.leaderElection
            ? [
                "--leader-election-namespace",
                namespace,
                "--lease-duration",
                "4",
                "--renew-deadline",
                "3",
                "--retry-period",
                "1",
              ]
            : ["--no-leader-election"]),
        ],
        ...(options.env ? { env: options.env } : {}),
      });
      operators.push(proc);
      return { process: proc, healthUrl, metrics: async () => (await fetch(`${healthUrl}/metrics`)).text() };
    },
    async createCluster(name, backup, extra = {}) {
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
            backup: { openbaoAddresses: bao.addresses, ...backup },
            ...extra.spec,
          },
        },
      });
      await stack.setStatus(name, { phase: "Running", initialized: true, currentVersion: "2.4.0" });
    },
    async getCluster(name) {
      return (await custom.getNamespacedCustomObject({ group, version, namespace, plural, name })) as OpenBaoCluster;
    },
    async setStatus(name, status) {
      await custom.patchNamespacedCustomObjectStatus(
        { group, version, namespace, plural, name, body: { status } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    },
    async patchCluster(name, patch) {
      await custom.patchNamespacedCustomObject(
        { group, version, namespace, plural, name, body: patch },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    },
    async jobsOf(name) {
      const list = await batch.listNamespacedJob({ namespace });
      return list.items.filter((j) => j.metadata?.annotations?.["openbao.org/cluster-name"] === name);
    },
    async stopApiServer() {
      await apiServer.stop();
    },
    async startApiServer() {
      const restarted = startProcess({
        name: "kube-apiserver-restarted",
        command: kube.apiServer.child.spawnfile,
        args: kube.apiServer.child.spawnargs.slice(1),
      });
      apiServer = restarted;
      await waitFor(async () => (await kubeGet(kc, "/readyz")).status === 200, {
        what: "kube-apiserver /readyz after the restart",
        timeoutMs: 120_000,
        intervalMs: 100,
        processes: [restarted],
      });
    },
    stallApiServer() {
      const frozen = apiServer;
      frozen.child.kill("SIGSTOP");
      stalled = () => frozen.child.kill("SIGCONT");
      return () => {
        stalled?.();
        stalled = undefined;
      };
    },
    async stop() {
      stalled?.();
      await Promise.all(operators.map((p) => p.stop()));
      await runner.stop();
      await Promise.all([bao.stop(), target.stop()]);
      await apiServer.stop();
      await kube.stop();
    },
  };
  return stack;
}
