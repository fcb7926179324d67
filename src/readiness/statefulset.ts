/**
 * What the operator reads of an OpenBao StatefulSet: enough to decide readiness and to derive
 * member addresses, nothing else. The informer's transform (`trimStatefulSet`) keeps only
 * these fields, so a cluster-wide StatefulSet cache stays small; `observeStatefulSet` turns
 * the trimmed object into a typed value the pure decisions use.
 *
 * The shape follows the official OpenBao Helm chart: a container port named `http` or
 * `https` on 8200 says the scheme (the chart names it after `global.tlsDisable`), its
 * `BAO_ADDR` says the same, and `spec.serviceName` is the headless `<release>-internal`
 * Service through which each Pod has a stable DNS name.
 */
import type { KubeObject } from "../runtime/informer.ts";

export interface ObservedStatefulSet {
  readonly name: string;
  /** `spec.replicas` (Kubernetes defaults it to 1). */
  readonly replicas: number;
  /** `spec.serviceName`: the headless Service giving each Pod `<pod>.<service>.<ns>.svc`. */
  readonly serviceName: string;
  readonly scheme: "http" | "https";
  readonly port: number;
  /** The controlling owner (`controller: true`), e.g. a lifecycle operator's OpenBaoCluster. */
  readonly controller: { readonly apiVersion: string; readonly kind: string; readonly name: string } | undefined;
  /** `status.replicas`: Pods the StatefulSet controller has created (0 before it has seen the object). */
  readonly pods: number;
  /** `status.readyReplicas`: Pods passing their readiness probe (the chart's probe fails while sealed). */
  readonly readyPods: number;
}

interface ContainerShape {
  name?: string;
  ports?: { name?: string; containerPort?: number }[];
  env?: { name?: string; value?: string }[];
}

/** The StatefulSet fields kept in the cache (everything else is dropped by the transform). */
export interface TrimmedStatefulSet extends KubeObject {
  spec?: {
    replicas?: number;
    serviceName?: string;
    template?: { spec?: { containers?: ContainerShape[] } };
  };
  status?: { replicas?: number; readyReplicas?: number };
}

const addressVariables = new Set(["BAO_ADDR", "VAULT_ADDR"]);
export const defaultOpenBaoPort = 8200;

/** Informer transform: keeps metadata identity, owners, and the fields `observeStatefulSet` reads. */
export function trimStatefulSet<T extends KubeObject>(object: T): T {
  const sts = object as unknown as TrimmedStatefulSet & { metadata?: Record<string, unknown> };
  const spec = sts.spec;
  const metadata = sts.metadata ?? {};
  delete metadata.managedFields;
  delete metadata.annotations;
  delete metadata.labels;
  sts.spec = {
    ...(spec?.replicas !== undefined ? { replicas: spec.replicas } : {}),
    ...(spec?.serviceName !== undefined ? { serviceName: spec.serviceName } : {}),
    template: {
      spec: {
        containers: (spec?.template?.spec?.containers ?? []).map((c) => ({
          ...(c.name !== undefined ? { name: c.name } : {}),
          ports: (c.ports ?? []).map((p) => ({ name: p.name, containerPort: p.containerPort })),
          env: (c.env ?? [])
            .filter((e) => e.name !== undefined && addressVariables.has(e.name) && e.value !== undefined)
            .map((e) => ({ name: e.name, value: e.value })),
        })),
      },
    },
  };
  sts.status = { replicas: sts.status?.replicas ?? 0, readyReplicas: sts.status?.readyReplicas ?? 0 };
  return object;
}

/** The OpenBao API endpoint of the Pod template: the port named http/https, else BAO_ADDR, else https:8200. */
function apiEndpoint(containers: readonly ContainerShape[]): { scheme: "http" | "https"; port: number } {
  // The chart's container is named "openbao"; look there first, then anywhere.
  const ordered = [...containers].sort((a, b) => Number(b.name === "openbao") - Number(a.name === "openbao"));
  for (const c of ordered) {
    const port = c.ports?.find((p) => p.name === "http" || p.name === "https");
    if (port?.name === "http" || port?.name === "https") {
      return { scheme: port.name, port: port.containerPort ?? defaultOpenBaoPort };
    }
  }
  for (const c of ordered) {
    for (const e of c.env ?? []) {
      if (e.name === undefined || !addressVariables.has(e.name) || e.value === undefined) continue;
      try {
        const url = new URL(e.value);
        if (url.protocol === "http:" || url.protocol === "https:") {
          return { scheme: url.protocol === "http:" ? "http" : "https", port: defaultOpenBaoPort };
        }
      } catch {
        // not a URL: ignore
      }
    }
  }
  return { scheme: "https", port: defaultOpenBaoPort };
}

export function observeStatefulSet(object: TrimmedStatefulSet): ObservedStatefulSet {
  const controller = object.metadata?.ownerReferences?.find((ref) => ref.controller === true);
  const name = object.metadata?.name ?? "";
  return {
    name,
    replicas: object.spec?.replicas ?? 1,
    serviceName: object.spec?.serviceName ?? "",
    ...apiEndpoint(object.spec?.template?.spec?.containers ?? []),
    controller: controller
      ? { apiVersion: controller.apiVersion, kind: controller.kind, name: controller.name }
      : undefined,
    pods: object.status?.replicas ?? 0,
    readyPods: object.status?.readyReplicas ?? 0,
  };
}
