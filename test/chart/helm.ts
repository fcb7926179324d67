/**
 * Renders deploy/chart with the real `helm template` (built by test/servers into the cache)
 * and sends the result to the real kube-apiserver, with strict field validation so a
 * misspelt field fails instead of being dropped.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadAllYaml } from "@kubernetes/client-node";
import { projectRoot, serverBinary } from "../servers/catalog.ts";
import { type KubeHandle, kubePost } from "../servers/kube.ts";
import { removeScratch, scratchDir } from "../servers/process.ts";

const run = promisify(execFile);

export const chartDir: string = join(projectRoot, "deploy", "chart");

export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [field: string]: unknown;
}

export interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly verbs: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== "object" || value === null) return false;
  const v = value as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
  return typeof v.apiVersion === "string" && typeof v.kind === "string" && typeof v.metadata?.name === "string";
}

/**
 * Helm keeps its caches and config in a scratch home, never the user's; removed by
 * `removeHelmHome`, or when the process exits for a file that does not call it.
 */
let helmHome: string | undefined;
function helmEnv(): NodeJS.ProcessEnv {
  helmHome ??= scratchDir("helm-home");
  return {
    PATH: process.env.PATH ?? "",
    HOME: helmHome,
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_DATA_HOME: join(helmHome, "data"),
  };
}

export function removeHelmHome(): void {
  if (helmHome) removeScratch(helmHome);
  helmHome = undefined;
}

export async function helm(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run(serverBinary("helm"), [...args], {
      env: helmEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args.join(" ")} failed: ${e.stderr ?? ""}${e.stdout ?? ""}${e.message}`);
  }
}

/** `helm template <release> deploy/chart --namespace <ns> --set …` parsed into objects. */
export async function render(
  release: string,
  namespace: string,
  values: Readonly<Record<string, string>> = {},
  extra: readonly string[] = [],
): Promise<Manifest[]> {
  const sets = Object.entries(values).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
  const text = await helm(["template", release, chartDir, "--namespace", namespace, ...sets, ...extra]);
  const docs: unknown[] = loadAllYaml(text);
  const out: Manifest[] = [];
  for (const doc of docs) {
    if (doc === null || doc === undefined) continue;
    if (!isManifest(doc)) throw new Error(`helm template produced a document that is not an object: ${String(doc)}`);
    out.push(doc);
  }
  return out;
}

export function rulesOf(manifests: readonly Manifest[]): { role: Manifest; rule: PolicyRule }[] {
  return manifests
    .filter((m) => m.kind === "Role" || m.kind === "ClusterRole")
    .flatMap((role) => ((role.rules as PolicyRule[] | undefined) ?? []).map((rule) => ({ role, rule })));
}

/** Where each kind the chart renders is served. Unknown kinds fail loudly (add them here). */
const resources: Record<string, { readonly prefix: string; readonly plural: string; readonly namespaced: boolean }> = {
  ServiceAccount: { prefix: "/api/v1", plural: "serviceaccounts", namespaced: true },
  Service: { prefix: "/api/v1", plural: "services", namespaced: true },
  ConfigMap: { prefix: "/api/v1", plural: "configmaps", namespaced: true },
  Deployment: { prefix: "/apis/apps/v1", plural: "deployments", namespaced: true },
  PodDisruptionBudget: { prefix: "/apis/policy/v1", plural: "poddisruptionbudgets", namespaced: true },
  Role: { prefix: "/apis/rbac.authorization.k8s.io/v1", plural: "roles", namespaced: true },
  RoleBinding: { prefix: "/apis/rbac.authorization.k8s.io/v1", plural: "rolebindings", namespaced: true },
  ClusterRole: { prefix: "/apis/rbac.authorization.k8s.io/v1", plural: "clusterroles", namespaced: false },
  ClusterRoleBinding: {
    prefix: "/apis/rbac.authorization.k8s.io/v1",
    plural: "clusterrolebindings",
    namespaced: false,
  },
  CustomResourceDefinition: {
    prefix: "/apis/apiextensions.k8s.io/v1",
    plural: "customresourcedefinitions",
    namespaced: false,
  },
  ServiceMonitor: { prefix: "/apis/monitoring.coreos.com/v1", plural: "servicemonitors", namespaced: true },
  PrometheusRule: { prefix: "/apis/monitoring.coreos.com/v1", plural: "prometheusrules", namespaced: true },
};

/**
 * POSTs one manifest as the admin with `fieldValidation=Strict` (and `dryRun=All` unless
 * `dryRun` is false). Resolves with the HTTP status and body; never throws on a 4xx.
 */
export function apply(
  kube: KubeHandle,
  manifest: Manifest,
  options: { readonly dryRun: boolean },
): Promise<{ status: number; body: string }> {
  const where = resources[manifest.kind];
  if (!where) throw new Error(`test/chart/helm.ts does not know where ${manifest.kind} is served`);
  const namespace = manifest.metadata.namespace;
  if (where.namespaced && !namespace) throw new Error(`${manifest.kind}/${manifest.metadata.name} has no namespace`);
  const path = `${where.prefix}${where.namespaced ? `/namespaces/${namespace}` : ""}/${where.plural}`;
  const query = `fieldValidation=Strict${options.dryRun ? "&dryRun=All" : ""}`;
  return kubePost(kube, `${path}?${query}`, manifest);
}

/**
 * Minimal prometheus-operator CRDs (monitoring.coreos.com/v1 ServiceMonitor, PrometheusRule):
 * the fields this chart sets are typed, so strict validation rejects a misspelt one; the rest
 * of the real schemas is left open.
 */
export function monitoringCrds(): string {
  const str = { type: "string" };
  const labels = { type: "object", additionalProperties: str };
  const crd = (kind: string, plural: string, spec: Record<string, unknown>) => ({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: "monitoring.coreos.com",
      scope: "Namespaced",
      names: { kind, plural, listKind: `${kind}List`, singular: kind.toLowerCase() },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", properties: { spec } } },
        },
      ],
    },
  });
  const serviceMonitor = crd("ServiceMonitor", "servicemonitors", {
    type: "object",
    required: ["selector"],
    properties: {
      selector: { type: "object", properties: { matchLabels: labels } },
      namespaceSelector: { type: "object", properties: { matchNames: { type: "array", items: str } } },
      endpoints: {
        type: "array",
        items: {
          type: "object",
          properties: {
            port: str,
            path: str,
            interval: {
              type: "string",
              pattern: "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
            },
            scrapeTimeout: str,
            honorLabels: { type: "boolean" },
          },
        },
      },
    },
  });
  const prometheusRule = crd("PrometheusRule", "prometheusrules", {
    type: "object",
    properties: {
      groups: {
        type: "array",
        items: {
          type: "object",
          required: ["name", "rules"],
          properties: {
            name: str,
            interval: str,
            rules: {
              type: "array",
              items: {
                type: "object",
                required: ["expr"],
                properties: {
                  alert: str,
                  record: str,
                  expr: { "x-kubernetes-int-or-string": true },
                  for: {
                    type: "string",
                    pattern:
                      "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
                  },
                  labels,
                  annotations: labels,
                },
              },
            },
          },
        },
      },
    },
  });
  return [serviceMonitor, prometheusRule].map((c) => JSON.stringify(c)).join("\n---\n");
}
