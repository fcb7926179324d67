/**
 * The world for the RestoreManager's end-to-end tests: real etcd + kube-apiserver with the
 * CRDs, a real 3-node OpenBao whose JWT auth trusts the API server's ServiceAccount tokens,
 * MinIO, fake-gcs-server and Azurite, the job runner playing kubelet + Job controller, and
 * the operator (BackupManager + RestoreManager) as a child process.
 *
 * Every OpenBaoCluster object of a test points at the same real OpenBao; the JWT roles
 * `backup` and `restore` are bound to the `<cluster>-backup` / `<cluster>-restore`
 * ServiceAccounts of all of them. Roles, policies and the static tokens are created before
 * any snapshot is taken, so every snapshot (and every restore) keeps them.
 */
import {
  BatchV1Api,
  CoreV1Api,
  type CoreV1Event,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
} from "@kubernetes/client-node";
import { Label } from "../../src/api/constants.ts";
import { crdFiles } from "../../src/api/schema.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../../src/api/types.ts";
import { backupServiceAccountName } from "../../src/backup/controller.ts";
import { restoreServiceAccountName } from "../../src/restore/plan.ts";
import { clusterTarget, type ProviderName, startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { defaultJobLabelSelector, type JobRunner, startJobRunner } from "../servers/job-runner.ts";
import { type KubeHandle, startKube } from "../servers/kube.ts";
import { type OpenBaoCluster as BaoServer, startOpenBao } from "../servers/openbao.ts";
import { type ManagedProcess, startTogether, waitFor } from "../servers/process.ts";
import { startCliProcess } from "./cli-process.ts";

export const namespace = "openbao";
const group = "openbao.org";
const version = "v1alpha1";

export interface RestoreStack {
  readonly kube: KubeHandle;
  readonly bao: BaoServer;
  readonly targets: Readonly<Record<ProviderName, TargetUnderTest>>;
  readonly runner: JobRunner;
  readonly custom: CustomObjectsApi;
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;
  readonly operator: ManagedProcess;
  metrics(): Promise<string>;
  /** `spec.backup.target` / `spec.source.target` for a provider, with its credentials Secret. */
  target(provider: ProviderName): Record<string, unknown>;
  createCluster(name: string, provider: ProviderName, backup?: Record<string, unknown>): Promise<void>;
  getCluster(name: string): Promise<OpenBaoCluster>;
  setStatus(name: string, status: Record<string, unknown>): Promise<void>;
  patchCluster(name: string, patch: Record<string, unknown>): Promise<void>;
  /** Triggers a manual backup through the BackupManager and returns its object key. */
  backup(cluster: string, trigger: string): Promise<string>;
  /** Triggers a manual backup and returns the cluster once its Job is recorded, succeeded or failed. */
  recordBackup(cluster: string, trigger: string): Promise<OpenBaoCluster>;
  /** Creates a Secret in the namespace from string data. */
  createSecret(name: string, data: Record<string, string>): Promise<void>;
  createRestore(name: string, spec: Record<string, unknown>): Promise<void>;
  getRestore(name: string): Promise<OpenBaoRestore | undefined>;
  deleteRestore(name: string): Promise<void>;
  waitRestore(name: string, phase: string, timeoutMs?: number): Promise<OpenBaoRestore>;
  eventsOf(name: string): Promise<CoreV1Event[]>;
  jobs(): Promise<V1Job[]>;
  stop(): Promise<void>;
}

export interface RestoreStackOptions {
  /**
   * Clusters whose Jobs the stack's job runner leaves alone, so a test can finish them with a
   * runner of its own (e.g. `mode: { completeWith }` writing a hostile termination message).
   */
  readonly foreignRunClusters?: readonly string[];
}

export async function startRestoreStack(
  clusterNames: readonly string[],
  options: RestoreStackOptions = {},
): Promise<RestoreStack> {
  const kube = await startKube();
  await kube.installCrds(crdFiles().map((f) => f.content));
  const [bao, s3, gcs, azure] = await startTogether([
    startOpenBao({ nodes: 3, jwtValidationPubkeys: [kube.serviceAccountPublicKeyPem], jwtIssuer: kube.issuer }),
    startTarget("s3"),
    startTarget("gcs"),
    startTarget("azure"),
  ]);
  const targets = { s3, gcs, azure };
  // One role, the ServiceAccounts of every test cluster (a list value matches any of them).
  for (const [role, saName] of [
    ["backup", backupServiceAccountName],
    ["restore", restoreServiceAccountName],
  ] as const) {
    await bao.call("POST", `auth/jwt/role/${role}`, {
      role_type: "jwt",
      user_claim: "sub",
      bound_audiences: ["openbao-internal"],
      bound_claims: {
        "/kubernetes.io/namespace": namespace,
        "/kubernetes.io/serviceaccount/name": clusterNames.map(saName),
      },
      token_policies: [role],
      token_ttl: "1h",
    });
  }
  await kube.createNamespace(namespace);
  const kc = kube.kubeConfig;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const batch = kc.makeApiClient(BatchV1Api);
  const secret = (name: string, data: Record<string, string>) =>
    core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } });
  await secret("s3-credentials", s3.credentials);
  await secret("azure-credentials", azure.credentials);
  for (const policy of ["backup", "restore"]) {
    const token = await bao.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
      policies: [policy],
      ttl: "6h",
    });
    await secret(`${policy}-token`, { token: token.auth.client_token });
  }
  for (const name of clusterNames) await secret(`${name}-tls-ca`, { "ca.crt": bao.caPem });
  const foreign = options.foreignRunClusters ?? [];
  const runner = await startJobRunner({
    kubeConfig: kc,
    namespace,
    ...(foreign.length > 0
      ? { labelSelector: `${defaultJobLabelSelector},${Label.Cluster} notin (${foreign.join(",")})` }
      : {}),
  });

  // The runner is no server process: a failed operator start must stop it here, or its watch
  // keeps the test file alive.
  let operator: ManagedProcess;
  let healthUrl: string;
  try {
    ({ process: operator, healthUrl } = await startCliProcess({
      command: "operator",
      kubeConfigPath: kube.kubeConfigPath,
      namespace,
      args: ["--image", "openbao-backup:test", "--no-leader-election"],
      ready: "/readyz",
    }));
  } catch (err) {
    await runner.stop();
    throw err;
  }

  const restorePath = { group, version, namespace, plural: "openbaorestores" };
  const clusterPath = { group, version, namespace, plural: "openbaoclusters" };
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const targetOf = (provider: ProviderName): Record<string, unknown> => clusterTarget(provider, targets[provider]);
  const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 90_000) =>
    waitFor(check, { what, timeoutMs, intervalMs: 250, processes: [operator] });

  const stack: RestoreStack = {
    kube,
    bao,
    targets,
    runner,
    custom,
    batch,
    core,
    operator,
    metrics: async () => (await fetch(`${healthUrl}/metrics`)).text(),
    target: targetOf,
    async createCluster(name, provider, backup = {}) {
      await custom.createNamespacedCustomObject({
        ...clusterPath,
        body: {
          apiVersion: `${group}/${version}`,
          kind: "OpenBaoCluster",
          metadata: { name, namespace },
          spec: {
            replicas: 3,
            version: "2.4.0",
            backup: {
              schedule: quietSchedule,
              jwtAuthRole: "backup",
              openbaoAddresses: bao.addresses,
              target: targetOf(provider),
              ...backup,
            },
          },
        },
      });
      await stack.setStatus(name, { phase: "Running", initialized: true, currentVersion: "2.4.0" });
    },
    async getCluster(name) {
      return (await custom.getNamespacedCustomObject({ ...clusterPath, name })) as OpenBaoCluster;
    },
    async setStatus(name, status) {
      await custom.patchNamespacedCustomObjectStatus({ ...clusterPath, name, body: { status } }, mergePatch);
    },
    async patchCluster(name, patch) {
      await custom.patchNamespacedCustomObject({ ...clusterPath, name, body: patch }, mergePatch);
    },
    async recordBackup(cluster, trigger) {
      const previous = (await stack.getCluster(cluster)).status?.backup?.lastRecordedJob;
      await stack.patchCluster(cluster, { metadata: { annotations: { "openbao.org/trigger-backup": trigger } } });
      return until(`backup "${trigger}" of ${cluster} recorded`, async () => {
        const c = await stack.getCluster(cluster);
        const b = c.status?.backup;
        return b?.lastRecordedJob !== undefined && b.lastRecordedJob !== previous && b.currentJob == null && c;
      });
    },
    async createSecret(name, data) {
      await secret(name, data);
    },
    async backup(cluster, trigger) {
      const done = await stack.recordBackup(cluster, trigger);
      const b = done.status?.backup;
      if ((b?.consecutiveFailures ?? 0) > 0 || !b?.lastBackupName) {
        throw new Error(`backup of ${cluster} failed: ${b?.lastFailureReason}: ${b?.lastFailureMessage}`);
      }
      return b.lastBackupName;
    },
    async createRestore(name, spec) {
      await custom.createNamespacedCustomObject({
        ...restorePath,
        body: { apiVersion: `${group}/${version}`, kind: "OpenBaoRestore", metadata: { name, namespace }, spec },
      });
    },
    async getRestore(name) {
      try {
        return (await custom.getNamespacedCustomObject({ ...restorePath, name })) as OpenBaoRestore;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
    async deleteRestore(name) {
      await custom.deleteNamespacedCustomObject({ ...restorePath, name });
    },
    async waitRestore(name, phase, timeoutMs = 120_000) {
      const r = await until(
        `OpenBaoRestore ${name} ${phase}`,
        async () => {
          const r = await stack.getRestore(name);
          const now = r?.status?.phase;
          return (now === phase || now === "Failed" || now === "Completed") && r;
        },
        timeoutMs,
      );
      if (r.status?.phase !== phase) {
        throw new Error(`OpenBaoRestore ${name} is ${r.status?.phase}, not ${phase}: ${r.status?.message}`);
      }
      return r;
    },
    async eventsOf(name) {
      const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
      return list.items;
    },
    async jobs() {
      return (await batch.listNamespacedJob({ namespace })).items;
    },
    async stop() {
      await operator.stop();
      await runner.stop();
      await Promise.all([bao.stop(), s3.stop(), gcs.stop(), azure.stop()]);
      await kube.stop();
    },
  };
  return stack;
}
