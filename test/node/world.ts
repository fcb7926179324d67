/**
 * The node tier's world: a real node (cluster.ts) running the images built from the checkout,
 * a 3-member OpenBao (Raft, TLS) and the three storage servers bound to the bridge gateway so
 * Pods reach them, the CRDs, and — unless a test file wants to drive Jobs itself — the operator
 * installed with the project's Helm chart, running as a Pod on the node. Every Job here is
 * run by the real kubelet and Job controller: nothing in this tier uses the job runner.
 *
 * What is played here: the lifecycle operator, by `createCluster`, which writes
 * `status.phase: Running` and `initialized` as a lifecycle operator would. The case where
 * nobody writes them — OpenBao installed like the official chart does — is
 * unmanaged.test.ts, with `hostOpenBao: false` and openbao-statefulset.ts.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1Pod,
} from "@kubernetes/client-node";
import { crdFiles } from "../../src/api/schema.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../../src/api/types.ts";
import { backupServiceAccountName } from "../../src/backup/controller.ts";
import { restoreServiceAccountName } from "../../src/restore/plan.ts";
import { chartDir, helm } from "../chart/helm.ts";
import { clusterTarget, type ProviderName, startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { cacheRoot, projectRoot } from "../servers/catalog.ts";
import { type OpenBaoCluster as BaoServer, startOpenBao } from "../servers/openbao.ts";
import { startTogether, waitFor } from "../servers/process.ts";
import { type NodeHandle, startNode } from "./cluster.ts";
import { buildImages } from "./image.ts";

export const namespace = "openbao";
export const operatorNamespace = "openbao-backup-system";
/** The operator's Pods (the chart also runs the freshness monitor in that namespace). */
export const operatorPodSelector = "app.kubernetes.io/component=operator";
const group = "openbao.org";
const version = "v1alpha1";
const clusterPath = { group, version, namespace, plural: "openbaoclusters" };
const restorePath = { group, version, namespace, plural: "openbaorestores" };
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export interface Images {
  readonly product: string;
  readonly openbao: string;
  readonly pause: string;
  /** The product image's name, e.g. localhost/openbao-backup:node-test. */
  readonly productName: string;
}

function hashTree(hash: ReturnType<typeof createHash>, dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) hashTree(hash, path);
    else {
      hash.update(`${path}\0${statSync(path).size}\0`);
      hash.update(readFileSync(path));
    }
  }
}

/**
 * The images of this checkout, built once per content (dist/, the lockfile, the Node binary,
 * the image builder itself)
 * and reused by the tier's other files in the same run.
 */
export async function nodeImages(say: (line: string) => void): Promise<Images> {
  const hash = createHash("sha256");
  hashTree(hash, join(projectRoot, "dist"));
  hash.update(readFileSync(join(projectRoot, "package-lock.json")));
  // How the images are made, too: a change to the builder must not reuse an older archive.
  for (const file of ["image.ts", "pause.c"]) hash.update(readFileSync(join(import.meta.dirname, file)));
  hash.update(String(statSync(join(projectRoot, "node_modules", "node", "bin", "node")).size));
  const outDir = join(cacheRoot, "images", hash.digest("hex").slice(0, 16));
  const stamp = join(outDir, "images.json");
  if (!existsSync(stamp)) {
    mkdirSync(outDir, { recursive: true });
    const built = await buildImages({ outDir, say });
    const images: Images = {
      product: built.product.archive,
      openbao: built.openbao.archive,
      pause: built.pause.archive,
      productName: built.product.name,
    };
    writeFileSync(stamp, JSON.stringify(images));
    return images;
  }
  say(`[node] images of this checkout: cached in ${outDir}`);
  return JSON.parse(readFileSync(stamp, "utf8")) as Images;
}

export interface WorldOptions {
  /** Cluster names whose executor ServiceAccounts OpenBao's JWT roles accept. */
  readonly clusters: readonly string[];
  readonly providers?: readonly ProviderName[];
  /** Install the operator with the Helm chart (default true). */
  readonly operator?: boolean;
  /**
   * Start the host OpenBao (3 members on the bridge gateway) — default true. A test file that
   * runs OpenBao as Pods of its own (openbao-statefulset.ts) turns it off.
   */
  readonly hostOpenBao?: boolean;
  /** Extra chart values (`--set key=value`). */
  readonly helmValues?: Readonly<Record<string, string>>;
  readonly say?: (line: string) => void;
}

export interface World {
  readonly node: NodeHandle;
  readonly images: Images;
  readonly bao: BaoServer;
  readonly targets: Partial<Record<ProviderName, TargetUnderTest>>;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;
  target(provider: ProviderName): Record<string, unknown>;
  createCluster(name: string, backup: Record<string, unknown>, spec?: Record<string, unknown>): Promise<void>;
  getCluster(name: string): Promise<OpenBaoCluster>;
  patchCluster(name: string, patch: Record<string, unknown>): Promise<void>;
  /** Sets the manual-trigger annotation and waits until that Job's result is recorded. */
  triggerBackup(cluster: string, trigger: string, timeoutMs?: number): Promise<OpenBaoCluster>;
  createRestore(name: string, spec: Record<string, unknown>): Promise<void>;
  waitRestore(name: string, timeoutMs?: number): Promise<OpenBaoRestore>;
  jobsOf(cluster: string): Promise<V1Job[]>;
  podsOfJob(job: string): Promise<V1Pod[]>;
  /** The operator Pod's log (empty when the operator is not installed). */
  operatorLog(): Promise<string>;
  /** Reads one KV value from every OpenBao member (standbys forward reads to the leader). */
  readEverywhere(path: string): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startWorld(options: WorldOptions): Promise<World> {
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const providers = options.providers ?? ["s3", "gcs", "azure"];
  const images = await nodeImages(say);
  const node = await startNode({ images: [images.pause, images.product, images.openbao], say });
  const stops: (() => Promise<void>)[] = [() => node.stop()];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const kube = node.kube;
    const kc = kube.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await kube.installCrds(crdFiles().map((f) => f.content));
    const hostOpenBao = options.hostOpenBao !== false;
    const [hostBao, ...started] = await startTogether([
      hostOpenBao
        ? startOpenBao({
            nodes: 3,
            host: node.gatewayIp,
            jwtValidationPubkeys: [kube.serviceAccountPublicKeyPem],
            jwtIssuer: kube.issuer,
          })
        : undefined,
      ...providers.map((p) => startTarget(p, { host: node.gatewayIp })),
    ]);
    if (hostBao) stops.push(() => hostBao.stop());
    const theBao = (): BaoServer => {
      if (!hostBao) throw new Error("this world runs no host OpenBao (hostOpenBao: false)");
      return hostBao;
    };
    const targets: Partial<Record<ProviderName, TargetUnderTest>> = {};
    providers.forEach((p, i) => {
      const t = started[i];
      if (t) {
        targets[p] = t;
        stops.push(() => t.stop());
      }
    });
    say(`[node] ${hostBao ? "OpenBao (3 members) and " : ""}${providers.join(", ")} on ${node.gatewayIp}`);
    for (const [role, saName] of hostBao
      ? ([
          ["backup", backupServiceAccountName],
          ["restore", restoreServiceAccountName],
        ] as const)
      : []) {
      await hostBao?.call("POST", `auth/jwt/role/${role}`, {
        role_type: "jwt",
        user_claim: "sub",
        bound_audiences: ["openbao-internal"],
        bound_claims: {
          "/kubernetes.io/namespace": namespace,
          "/kubernetes.io/serviceaccount/name": options.clusters.map(saName),
        },
        token_policies: [role],
        token_ttl: "1h",
      });
    }
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const secret = (name: string, data: Record<string, string>) =>
      core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } });
    if (targets.s3) await secret("s3-credentials", targets.s3.credentials);
    if (targets.azure) await secret("azure-credentials", targets.azure.credentials);
    if (hostBao) for (const name of options.clusters) await secret(`${name}-tls-ca`, { "ca.crt": hostBao.caPem });

    const [repository, tag] = splitImage(images.productName);
    if (options.operator !== false) {
      const began = Date.now();
      await helm([
        "install",
        "openbao-backup",
        chartDir,
        "--kubeconfig",
        kube.kubeConfigPath,
        "--namespace",
        operatorNamespace,
        "--create-namespace",
        "--set",
        `image.repository=${repository}`,
        "--set",
        `image.tag=${tag}`,
        "--set",
        "replicaCount=1",
        "--set",
        "logLevel=debug",
        ...Object.entries(options.helmValues ?? {}).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
        "--wait",
        "--timeout",
        "3m",
      ]);
      say(`[node] operator installed with the Helm chart and Ready in ${((Date.now() - began) / 1000).toFixed(1)}s`);
    }

    const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 120_000) =>
      waitFor(check, { what, timeoutMs, intervalMs: 500, processes: node.processes });

    const world: World = {
      node,
      images,
      get bao() {
        return theBao();
      },
      targets,
      core,
      batch,
      apps,
      custom,
      target(provider) {
        const t = targets[provider];
        if (!t) throw new Error(`no ${provider} server in this world`);
        return clusterTarget(provider, t);
      },
      async createCluster(name, backup, spec = {}) {
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
                // JWT auth unless the test names its own (the CRD refuses both at once).
                ...(backup.tokenSecretRef === undefined ? { jwtAuthRole: "backup" } : {}),
                openbaoAddresses: theBao().addresses,
                ...backup,
              },
              ...spec,
            },
          },
        });
        // Playing the lifecycle operator (see the opening comment).
        await custom.patchNamespacedCustomObjectStatus(
          { ...clusterPath, name, body: { status: { phase: "Running", initialized: true, currentVersion: "2.4.0" } } },
          mergePatch,
        );
      },
      async getCluster(name) {
        return (await custom.getNamespacedCustomObject({ ...clusterPath, name })) as OpenBaoCluster;
      },
      async patchCluster(name, patch) {
        await custom.patchNamespacedCustomObject({ ...clusterPath, name, body: patch }, mergePatch);
      },
      async triggerBackup(cluster, trigger, timeoutMs = 180_000) {
        const previous = (await world.getCluster(cluster)).status?.backup?.lastRecordedJob;
        await world.patchCluster(cluster, { metadata: { annotations: { "openbao.org/trigger-backup": trigger } } });
        return until(
          `backup "${trigger}" of ${cluster} recorded`,
          async () => {
            const c = await world.getCluster(cluster);
            const b = c.status?.backup;
            return b?.lastRecordedJob !== undefined && b.lastRecordedJob !== previous && b.currentJob == null && c;
          },
          timeoutMs,
        );
      },
      async createRestore(name, spec) {
        await custom.createNamespacedCustomObject({
          ...restorePath,
          body: { apiVersion: `${group}/${version}`, kind: "OpenBaoRestore", metadata: { name, namespace }, spec },
        });
      },
      async waitRestore(name, timeoutMs = 180_000) {
        return until(
          `OpenBaoRestore ${name} finished`,
          async () => {
            const r = (await custom.getNamespacedCustomObject({ ...restorePath, name })) as OpenBaoRestore;
            return (r.status?.phase === "Completed" || r.status?.phase === "Failed") && r;
          },
          timeoutMs,
        );
      },
      async jobsOf(cluster) {
        const list = await batch.listNamespacedJob({ namespace });
        return list.items.filter((j) => j.metadata?.annotations?.["openbao.org/cluster-name"] === cluster);
      },
      async podsOfJob(job) {
        const list = await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` });
        return list.items;
      },
      async operatorLog() {
        if (options.operator === false) return "";
        const pods = await core.listNamespacedPod({ namespace: operatorNamespace, labelSelector: operatorPodSelector });
        const pod = pods.items[0]?.metadata?.name;
        return pod ? core.readNamespacedPodLog({ namespace: operatorNamespace, name: pod }) : "";
      },
      async readEverywhere(path) {
        const values: string[] = [];
        for (const member of theBao().nodes) {
          const read = await theBao().call<{ data: { data: { value: string } } }>("GET", path, undefined, {
            node: member.index,
          });
          values.push(read.data.data.value);
        }
        return values;
      },
      stop,
    };
    return world;
  } catch (err) {
    await stop();
    throw err;
  }
}

function splitImage(name: string): [string, string] {
  const at = name.lastIndexOf(":");
  return [name.slice(0, at), name.slice(at + 1)];
}
