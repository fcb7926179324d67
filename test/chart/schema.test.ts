/**
 * deploy/chart/values.schema.json: the chart validates its values with the real `helm`.
 * - the defaults, and values that fill every list and map the chart reads, lint and render;
 * - a misspelt key (anywhere, or at the top level), a wrong type, an out-of-range number or an
 *   unknown log level fails `helm lint` and `helm template`, naming the offending key;
 * - the schema and values.yaml describe the same keys, both ways, so the two never drift, and
 *   every property the schema declares has a description.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { load } from "js-yaml";
import { chartDir, helm, removeHelmHome } from "./helm.ts";

const releaseNamespace = "openbao-backup-system";

interface SchemaNode {
  readonly type?: string | readonly string[];
  readonly description?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: boolean | SchemaNode;
  readonly items?: SchemaNode;
}

type ValueMap = Readonly<Record<string, unknown>>;

const isMap = (value: unknown): value is ValueMap =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const schema = JSON.parse(readFileSync(join(chartDir, "values.schema.json"), "utf8")) as SchemaNode;
const defaults: unknown = load(readFileSync(join(chartDir, "values.yaml"), "utf8"));

/**
 * Keys Helm may hand the chart without values.yaml naming them: `global`, when it is a
 * dependency of another chart.
 */
const helmProvided: ReadonlySet<string> = new Set(["global"]);

/** List items that are Kubernetes objects passed through as they are: their schema names only the required field. */
const kubernetesItems: ReadonlySet<string> = new Set(["imagePullSecrets[]", "extraEnv[]", "monitor.extraEnv[]"]);

const join2 = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`);

/** Keys of values.yaml the schema does not describe. A node without `properties` is a free-form map: not descended. */
function undescribed(values: ValueMap, node: SchemaNode, path = ""): string[] {
  const properties = node.properties;
  if (properties === undefined) return [];
  return Object.entries(values).flatMap(([key, value]) => {
    const child = properties[key];
    if (child === undefined) return [join2(path, key)];
    return isMap(value) ? undescribed(value, child, join2(path, key)) : [];
  });
}

/** Properties of the schema values.yaml does not have (or has as something other than a map). */
function stale(values: ValueMap, node: SchemaNode, path = ""): string[] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => {
    if (path === "" && helmProvided.has(key)) return [];
    if (!Object.hasOwn(values, key)) return [join2(path, key)];
    const value = values[key];
    if (child.properties === undefined) return [];
    return isMap(value) ? stale(value, child, join2(path, key)) : [`${join2(path, key)} (not a map in values.yaml)`];
  });
}

/** Every schema node with `properties`, `items` included, as [path, node]. */
function schemaNodes(node: SchemaNode, path = ""): [string, SchemaNode][] {
  const own: [string, SchemaNode][] = [[path === "" ? "(root)" : path, node]];
  const children = Object.entries(node.properties ?? {}).flatMap(([key, child]) =>
    schemaNodes(child, join2(path, key)),
  );
  const items = node.items ? schemaNodes(node.items, `${path}[]`) : [];
  return [...own, ...children, ...items];
}

const sets = (values: Readonly<Record<string, string>>, flag = "--set"): string[] =>
  Object.entries(values).flatMap(([k, v]) => [flag, `${k}=${v}`]);

const lint = (args: readonly string[]): Promise<string> =>
  helm(["lint", chartDir, "--namespace", releaseNamespace, ...args]);
const template = (args: readonly string[]): Promise<string> =>
  helm(["template", "bao", chartDir, "--namespace", releaseNamespace, ...args]);

/** Both `helm lint` and `helm template` refuse `args`, with a message that matches `names`. */
async function refused(args: readonly string[], names: RegExp): Promise<void> {
  for (const [command, run] of [
    ["lint", lint],
    ["template", template],
  ] as const) {
    await assert.rejects(run(args), (err: Error) => {
      assert.match(err.message, /schema/i, `helm ${command} ${args.join(" ")} fails on the schema: ${err.message}`);
      assert.match(err.message, names, `helm ${command} ${args.join(" ")} names the key: ${err.message}`);
      return true;
    });
  }
}

describe("Helm chart values schema", () => {
  after(() => removeHelmHome());

  test("values.yaml is a map and the schema a closed object", () => {
    assert.ok(isMap(defaults), "values.yaml is a map");
    assert.equal(schema.type, "object");
    assert.equal(schema.additionalProperties, false);
  });

  test("every key of values.yaml is described by the schema", () => {
    assert.ok(isMap(defaults));
    assert.deepEqual(undescribed(defaults, schema), [], "add these keys to deploy/chart/values.schema.json");
  });

  test("every property of the schema is a key of values.yaml (no stale schema entries)", () => {
    assert.ok(isMap(defaults));
    assert.deepEqual(
      stale(defaults, schema),
      [],
      "remove these from deploy/chart/values.schema.json, or add them to values.yaml",
    );
  });

  test("every property has a description, and every object with properties is closed", () => {
    const nodes = schemaNodes(schema);
    assert.deepEqual(
      nodes.filter(([path, node]) => path !== "(root)" && !node.description?.trim()).map(([path]) => path),
      [],
      "properties without a description",
    );
    assert.deepEqual(
      nodes
        .filter(([, node]) => node.properties !== undefined && node.additionalProperties !== false)
        .map(([path]) => path)
        .filter((path) => !kubernetesItems.has(path)),
      [],
      "objects whose keys the chart defines must set additionalProperties: false",
    );
  });

  test("the defaults lint and render", async () => {
    assert.match(await lint([]), /0 chart\(s\) failed/);
    assert.match(await template([]), /kind: Deployment/);
  });

  test("values filling every list and map the chart reads lint and render", async () => {
    const values = {
      "image.digest": `sha256:${"ab".repeat(32)}`,
      "imagePullSecrets[0].name": "registry",
      "executor.image": "registry.example/openbao-backup:1.0.0",
      // A registry with a port: the colon is not a tag.
      "drill.openbaoImageRepository": "registry.example:5000/mirror/openbao",
      "executor.serviceAccounts[0].cluster": "prod",
      "executor.serviceAccounts[0].namespace": "openbao",
      "executor.serviceAccounts[0].restore": "false",
      "executor.serviceAccounts[0].annotations.eks\\.amazonaws\\.com/role-arn": "arn:aws:iam::123456789012:role/backup",
      "executor.serviceAccounts[1].cluster": "other",
      watchNamespace: "openbao",
      logLevel: "debug",
      "leaderElection.leaseName": "other-lease",
      "rbac.secretReadNamespaces[0]": "openbao",
      "rbac.secretReadNamespaces[1]": "vault",
      "podLabels.team": "platform",
      "podAnnotations.example\\.com/owner": "platform",
      "podSecurityContext.runAsUser": "1000",
      "securityContext.readOnlyRootFilesystem": "true",
      "resources.limits.cpu": "1",
      "livenessProbe.periodSeconds": "20",
      "extraEnv[0].name": "EXTRA",
      "extraEnv[0].value": "on",
      priorityClassName: "system-cluster-critical",
      "nodeSelector.kubernetes\\.io/os": "linux",
      "tolerations[0].key": "dedicated",
      "tolerations[0].operator": "Exists",
      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key":
        "kubernetes.io/os",
      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator":
        "Exists",
      "topologySpreadConstraints[0].maxSkew": "1",
      "topologySpreadConstraints[0].topologyKey": "topology.kubernetes.io/zone",
      "topologySpreadConstraints[0].whenUnsatisfiable": "DoNotSchedule",
      "podDisruptionBudget.maxUnavailable": "50%",
      "monitor.intervalSeconds": "600",
      "monitor.serviceAccount.annotations.example\\.com/identity": "reader",
      "monitor.extraEnv[0].name": "EXTRA",
      "monitor.extraEnv[0].value": "on",
      "metrics.serviceMonitor.enabled": "true",
      "metrics.serviceMonitor.labels.release": "kube-prometheus-stack",
      "metrics.prometheusRule.enabled": "true",
      "metrics.prometheusRule.labels.release": "kube-prometheus-stack",
      "metrics.prometheusRule.alertLabels.team": "platform",
      "metrics.prometheusRule.consecutiveFailures.threshold": "3",
      "metrics.prometheusRule.consecutiveFailures.for": "1h30m",
      "metrics.prometheusRule.restoreFailed.window": "2h",
      "metrics.prometheusRule.operatorDown.selector": 'job="openbao-backup"',
      "metrics.prometheusRule.extraRules[0].alert": "Extra",
      "metrics.prometheusRule.extraRules[0].expr": "vector(1)",
      "metrics.dashboard.enabled": "true",
      "metrics.dashboard.annotations.grafana_folder": "Backups",
    };
    // `--set` parses whole numbers only; a fractional number of seconds needs a values file or --set-json.
    const args = [...sets(values), "--set-json", "leaderElection.leaseDuration=7.5"];
    assert.match(await lint(args), /0 chart\(s\) failed/);
    const text = await template(args);
    assert.match(text, /kind: PrometheusRule/);
    assert.match(text, /alert: Extra/);
    assert.match(text, /name: bao-openbao-backup-dashboard/);
    assert.match(text, /name: prod-backup/);
    assert.match(text, /name: DRILL_IMAGE_REPOSITORY\n\s+value: "registry\.example:5000\/mirror\/openbao"/);
  });

  test("a misspelt key (metrics.servicemonitor) fails lint and template, naming it", async () => {
    await refused(sets({ "metrics.servicemonitor.enabled": "true" }), /servicemonitor/);
  });

  test("an unknown top-level key fails, naming it", async () => {
    await refused(sets({ replicas: "3" }), /\breplicas\b/);
  });

  test("a wrong type (replicaCount: a string) fails, naming replicaCount", async () => {
    await refused(sets({ replicaCount: "two" }, "--set-string"), /replicaCount/);
  });

  test("jobTTLSecondsAfterFinished below 60 (the operator refuses it) fails", async () => {
    await refused(sets({ jobTTLSecondsAfterFinished: "30" }), /jobTTLSecondsAfterFinished/);
  });

  test("an unknown logLevel fails", async () => {
    await refused(sets({ logLevel: "verbose" }), /logLevel/);
  });

  test("ranges, patterns and enums the operator and the templates need are enforced", async () => {
    const bad: Readonly<Record<string, string>> = {
      replicaCount: "0",
      healthPort: "70000",
      "leaderElection.leaseDuration": "0",
      "monitor.intervalSeconds": "5",
      "monitor.probeTimeoutSeconds": "3601",
      "image.digest": "sha256:abc",
      "image.pullPolicy": "Sometimes",
      "metrics.prometheusRule.backupMissed.for": "5 minutes",
      "metrics.prometheusRule.retentionFailing.window": "1day",
      "metrics.prometheusRule.stale.intervals": "0",
      "metrics.prometheusRule.drillStale.intervals": "0",
      "metrics.prometheusRule.drillFailed.for": "5 minutes",
      // The operator refuses a tag or digest: the cluster's version is the tag.
      "drill.openbaoImageRepository": "quay.io/openbao/openbao:2.4.0",
      "rbac.secretReadNamespaces[0]": "Not_A_Namespace",
      "executor.serviceAccounts[0].clusterName": "prod",
    };
    for (const [key, value] of Object.entries(bad)) {
      const last =
        key
          .split(".")
          .pop()
          ?.replace(/\[\d+\]$/, "") ?? key;
      await assert.rejects(lint(sets({ [key]: value })), (err: Error) => {
        assert.match(err.message, new RegExp(last), `${key}=${value} is refused, naming ${last}: ${err.message}`);
        return true;
      });
    }
  });
});
