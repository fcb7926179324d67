/**
 * The control plane's baseline (issue 19, item 4): a minimal client that makes, for every
 * cluster, exactly the API writes a scheduled backup needs before its Job exists — the status
 * write that records the Job (a PUT of the cluster's status with its resourceVersion, as the
 * operator's optimistic write), the executor's ServiceAccount and the Job itself (the very body
 * the operator created in the same run) — with as many requests in flight as the operator has
 * workers, on the same API server, right after the operator's own burst. Nothing else: no
 * watches, no schedule, no Secret checks, no Events. What it takes from the window to each Job's
 * creationTimestamp is the limit of this machine for those writes; the operator's figure is
 * measured against it.
 */
import { BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Job } from "@kubernetes/client-node";
import { shareConnections } from "../src/runtime/kube-connections.ts";

/** The three clients, on a copy of `kc` whose requests share kept-alive connections (as the operator's). */
export function minimalClients(kc: KubeConfig): { batch: BatchV1Api; core: CoreV1Api; custom: CustomObjectsApi } {
  const own = new KubeConfig();
  own.loadFromString(kc.exportConfig());
  shareConnections(own);
  return {
    batch: own.makeApiClient(BatchV1Api),
    core: own.makeApiClient(CoreV1Api),
    custom: own.makeApiClient(CustomObjectsApi),
  };
}

export interface MinimalClientInput {
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly namespace: string;
  /** The clusters as listed before the window (their resourceVersion and uid, like an informer cache). */
  readonly clusters: readonly ClusterRef[];
  /** A Job the operator created in this run: the body every baseline Job copies. */
  readonly template: V1Job;
  readonly windowMs: number;
  readonly workers: number;
}

export interface ClusterRef {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly status: Record<string, unknown>;
}

const crd = { group: "openbao.org", version: "v1alpha1", plural: "openbaoclusters" } as const;

/** The Job body without what the API server and the Job controller add to it. */
function cleanTemplate(job: V1Job): V1Job {
  const copy = structuredClone(job);
  const {
    name: _n,
    uid: _u,
    resourceVersion: _r,
    creationTimestamp: _c,
    managedFields: _m,
    generation: _g,
    ...meta
  } = copy.metadata ?? {};
  const labels = { ...(copy.spec?.template.metadata?.labels ?? {}) };
  for (const key of Object.keys(labels)) {
    if (key.startsWith("batch.kubernetes.io/") || key === "controller-uid" || key === "job-name") delete labels[key];
  }
  const jobLabels = { ...(meta.labels ?? {}) };
  for (const key of Object.keys(jobLabels)) {
    if (key.startsWith("batch.kubernetes.io/") || key === "controller-uid" || key === "job-name") delete jobLabels[key];
  }
  const spec = copy.spec;
  if (!spec) throw new Error("the template Job has no spec");
  delete spec.selector;
  delete spec.manualSelector;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { ...meta, labels: jobLabels },
    spec: { ...spec, template: { ...spec.template, metadata: { ...spec.template.metadata, labels } } },
  };
}

/** Runs the baseline burst at `windowMs`; resolves to the names of the Jobs it created. */
export async function minimalClientBurst(input: MinimalClientInput): Promise<string[]> {
  const template = cleanTemplate(input.template);
  const stamp = new Date(input.windowMs).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const created: string[] = [];
  let next = 0;
  const wait = input.windowMs - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  await Promise.all(
    Array.from({ length: input.workers }, async () => {
      while (next < input.clusters.length) {
        const cluster = input.clusters[next++] as ClusterRef;
        const jobName = `bl-${cluster.name}-${stamp}`.slice(0, 63);
        await input.custom.replaceNamespacedCustomObjectStatus({
          ...crd,
          namespace: input.namespace,
          name: cluster.name,
          body: {
            apiVersion: `${crd.group}/${crd.version}`,
            kind: "OpenBaoCluster",
            metadata: { name: cluster.name, namespace: input.namespace, resourceVersion: cluster.resourceVersion },
            status: {
              ...cluster.status,
              backup: {
                ...((cluster.status.backup as Record<string, unknown> | undefined) ?? {}),
                currentJob: { name: jobName, type: "scheduled", createdAt: new Date().toISOString() },
              },
            },
          },
        });
        const owner = {
          apiVersion: `${crd.group}/${crd.version}`,
          kind: "OpenBaoCluster",
          name: cluster.name,
          uid: cluster.uid,
          controller: true,
          blockOwnerDeletion: true,
        };
        const serviceAccount = `${cluster.name}-baseline`;
        await input.core.createNamespacedServiceAccount({
          namespace: input.namespace,
          body: { metadata: { name: serviceAccount, namespace: input.namespace, ownerReferences: [owner] } },
        });
        const podSpec = template.spec?.template.spec;
        await input.batch.createNamespacedJob({
          namespace: input.namespace,
          body: {
            ...template,
            metadata: {
              ...template.metadata,
              name: jobName,
              namespace: input.namespace,
              ownerReferences: [owner],
              annotations: { ...template.metadata?.annotations, "openbao.org/cluster-name": cluster.name },
            },
            spec: {
              ...template.spec,
              template: {
                ...template.spec?.template,
                spec: { ...podSpec, containers: podSpec?.containers ?? [], serviceAccountName: serviceAccount },
              },
            },
          },
        });
        created.push(jobName);
      }
    }),
  );
  return created;
}
