/**
 * Issue 7 acceptance for the Helm chart (deploy/chart):
 * - it renders with the real `helm` (default values, watchNamespace, monitoring, executor
 *   ServiceAccounts) and every manifest is accepted by the real kube-apiserver (strict field
 *   validation, server-side dry-run; ServiceMonitor/PrometheusRule against minimal
 *   monitoring.coreos.com CRDs installed first);
 * - its RBAC has no wildcard and is enough: the operator, run with the token of the chart's
 *   operator ServiceAccount and the args/env of the chart's Deployment, takes the Lease and
 *   completes a real backup (job runner + executor + OpenBao + MinIO) with the default
 *   (ClusterRole) release, then a real restore with a second release installed with
 *   `watchNamespace` (namespaced Role);
 * - and no more: SubjectAccessReviews of what it must not do are denied.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Container,
  type V1Deployment,
} from "@kubernetes/client-node";
import { crdFiles } from "../../src/api/schema.ts";
import type { OpenBaoCluster, OpenBaoRestore } from "../../src/api/types.ts";
import { startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { quietSchedule } from "../quiet-schedule.ts";
import { projectRoot } from "../servers/catalog.ts";
import { type JobRunner, printJobRunnerOnFailure, startJobRunner } from "../servers/job-runner.ts";
import { type KubeHandle, startKube } from "../servers/kube.ts";
import { type OpenBaoCluster as BaoServer, startOpenBao } from "../servers/openbao.ts";
import { freePort } from "../servers/ports.ts";
import {
  type ManagedProcess,
  removeScratch,
  scratchDir,
  startProcess,
  superviseServers,
  waitFor,
} from "../servers/process.ts";
import {
  apply,
  chartDir,
  helm,
  type Manifest,
  monitoringCrds,
  type PolicyRule,
  removeHelmHome,
  render,
  rulesOf,
} from "./helm.ts";

superviseServers();
printJobRunnerOnFailure();

const release = "bao";
const releaseNamespace = "openbao-backup-system";
/** Where the OpenBaoClusters live. */
const namespace = "openbao";
const clusterName = "chart";
const group = "openbao.org";
const version = "v1alpha1";

const renders: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  default: {},
  watchNamespace: { watchNamespace: namespace },
  monitoring: {
    "metrics.serviceMonitor.enabled": "true",
    "metrics.prometheusRule.enabled": "true",
    "metrics.dashboard.enabled": "true",
  },
  executorServiceAccounts: {
    "executor.serviceAccounts[0].cluster": clusterName,
    "executor.serviceAccounts[0].namespace": namespace,
    "executor.serviceAccounts[0].annotations.eks\\.amazonaws\\.com/role-arn": "arn:aws:iam::123456789012:role/backup",
    "executor.serviceAccounts[1].cluster": "other",
    "executor.serviceAccounts[1].restore": "false",
  },
  singleReplica: { replicaCount: "1", "leaderElection.enabled": "false" },
};

const byKind = (manifests: readonly Manifest[], kind: string) => manifests.filter((m) => m.kind === kind);
const componentOf = (m: Manifest) => m.metadata.labels?.["app.kubernetes.io/component"];
/** The freshness monitor's manifests (component monitor), and everything else. */
const monitorPart = (manifests: readonly Manifest[]) => manifests.filter((m) => componentOf(m) === "monitor");
const operatorPart = (manifests: readonly Manifest[]) => manifests.filter((m) => componentOf(m) !== "monitor");
/** The one `kind` of the operator (the monitor's own Deployment, ServiceAccount… are not counted). */
const one = (manifests: readonly Manifest[], kind: string): Manifest => {
  const found = byKind(operatorPart(manifests), kind);
  assert.equal(found.length, 1, `exactly one ${kind}: ${found.map((m) => m.metadata.name).join(", ")}`);
  const [m] = found;
  assert.ok(m);
  return m;
};
const operatorContainer = (manifests: readonly Manifest[]): V1Container => {
  const deployment = one(manifests, "Deployment") as unknown as V1Deployment;
  const container = deployment.spec?.template.spec?.containers.find((c) => c.name === "operator");
  assert.ok(container, "operator container");
  return container;
};

describe("Helm chart", () => {
  const rendered = new Map<string, Manifest[]>();
  before(async () => {
    for (const [name, values] of Object.entries(renders)) {
      rendered.set(name, await render(release, releaseNamespace, values));
    }
  });
  after(() => removeHelmHome());
  const get = (name: string): Manifest[] => {
    const m = rendered.get(name);
    assert.ok(m, `render ${name}`);
    return m;
  };

  test("crds/ holds exactly the CRDs generated from src/api/schema.ts", () => {
    const dir = join(chartDir, "crds");
    const generated = crdFiles();
    assert.deepEqual(
      readdirSync(dir).sort(),
      generated.map((f) => f.path.split("/").pop()).sort(),
      "deploy/chart/crds/ lists the same files as deploy/crds/",
    );
    for (const file of generated) {
      const name = file.path.split("/").pop() ?? "";
      assert.equal(
        readFileSync(join(dir, name), "utf8"),
        file.content,
        `deploy/chart/crds/${name} is stale: run \`node scripts/generate-crds.ts\``,
      );
      assert.equal(readFileSync(join(projectRoot, file.path), "utf8"), file.content, `${file.path} is stale`);
    }
  });

  test("a cluster-wide install reads no Secret anywhere unless rbac.secretReadNamespaces names a namespace", async () => {
    const secretRules = (manifests: readonly Manifest[]) =>
      manifests
        .filter((m) => m.kind === "ClusterRole" || m.kind === "Role")
        .flatMap((m) =>
          ((m as unknown as { rules?: PolicyRule[] }).rules ?? [])
            .filter((rule) => rule.resources?.includes("secrets"))
            .map(() => `${m.kind} ${m.metadata.namespace ?? ""}`.trim()),
        );
    for (const part of [operatorPart, monitorPart]) {
      assert.deepEqual(secretRules(part(get("default"))), []);
      assert.deepEqual(secretRules(part(get("watchNamespace"))), [`Role ${namespace}`]);
      const named = await render(release, releaseNamespace, { "rbac.secretReadNamespaces[0]": namespace });
      assert.deepEqual(secretRules(part(named)), [`Role ${namespace}`]);
    }
  });

  test("the freshness monitor: its own Deployment and ServiceAccount, no leader election, list OpenBaoClusters only", () => {
    const m = monitorPart(get("default"));
    assert.deepEqual(
      m.map((x) => x.kind).sort(),
      ["ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"].sort(),
    );
    const deployment = byKind(m, "Deployment")[0] as unknown as V1Deployment;
    const pod = deployment.spec?.template.spec;
    assert.equal(pod?.serviceAccountName, byKind(m, "ServiceAccount")[0]?.metadata.name);
    const c = pod?.containers.find((x) => x.name === "monitor");
    assert.deepEqual(c?.args?.slice(0, 1), ["monitor"]);
    assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(
      rulesOf(m).map(({ rule }) => ({ apiGroups: rule.apiGroups, resources: rule.resources, verbs: rule.verbs })),
      [{ apiGroups: ["openbao.org"], resources: ["openbaoclusters"], verbs: ["list"] }],
    );
    // Its Pods are not the operator's: the operator's Service, PDB and Deployment select none of them.
    const podLabels = deployment.spec?.template.metadata?.labels ?? {};
    const operatorSelector =
      (one(get("default"), "Deployment") as unknown as V1Deployment).spec?.selector.matchLabels ?? {};
    assert.ok(Object.entries(operatorSelector).some(([k, v]) => podLabels[k] !== v));
    // The ServiceMonitor scrapes both Services.
    const monitoring = get("monitoring");
    const selector =
      (one(monitoring, "ServiceMonitor") as { spec?: { selector?: { matchLabels?: Record<string, string> } } }).spec
        ?.selector?.matchLabels ?? {};
    const services = byKind(monitoring, "Service");
    assert.equal(services.length, 2);
    for (const svc of services) {
      assert.ok(
        Object.entries(selector).every(([k, v]) => svc.metadata.labels?.[k] === v),
        svc.metadata.name,
      );
    }
  });

  test(
    "--skip-crds installs none of the CRDs (next to another operator's CRDs of the same names)",
    { timeout: 180_000 },
    async () => {
      // Only a real install shows it: `helm template --include-crds` ignores --skip-crds.
      const kube = await startKube({ name: "kube-chart-skip-crds" });
      try {
        const ours = async () =>
          (await kube.kubeConfig.makeApiClient(ApiextensionsV1Api).listCustomResourceDefinition()).items
            .map((crd) => crd.metadata?.name ?? "")
            .filter((name) => name.endsWith(".openbao.org"))
            .sort();
        const install = (name: string, extra: readonly string[]) =>
          helm([
            "install",
            name,
            chartDir,
            "--kubeconfig",
            kube.kubeConfigPath,
            "--namespace",
            releaseNamespace,
            "--create-namespace",
            ...extra,
          ]);
        await install("skipped", ["--skip-crds"]);
        assert.deepEqual(await ours(), [], "with --skip-crds the chart installs no CRD");
        await install("with-crds", ["--set", "leaderElection.leaseName=other-lease"]);
        assert.deepEqual(await ours(), ["openbaoclusters.openbao.org", "openbaorestores.openbao.org"]);
      } finally {
        await kube.stop();
      }
    },
  );

  test("helm lint passes for every value set", async () => {
    for (const values of Object.values(renders)) {
      const sets = Object.entries(values).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
      const out = await helm(["lint", chartDir, "--namespace", releaseNamespace, ...sets]);
      assert.match(out, /0 chart\(s\) failed/);
    }
  });

  test("default render: cluster-wide RBAC, Lease Role, 2 replicas with leader election, hardened Pod", () => {
    const m = operatorPart(get("default"));
    assert.deepEqual(
      m.map((x) => x.kind).sort(),
      [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ].sort(),
    );
    assert.equal(byKind(m, "ServiceMonitor").length + byKind(m, "PrometheusRule").length, 0, "monitoring off");
    const deployment = one(m, "Deployment") as unknown as V1Deployment;
    assert.equal(deployment.spec?.replicas, 2);
    const pod = deployment.spec?.template.spec;
    assert.equal(pod?.serviceAccountName, one(m, "ServiceAccount").metadata.name);
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.equal(pod?.securityContext?.seccompProfile?.type, "RuntimeDefault");
    const c = operatorContainer(m);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext?.runAsNonRoot, true);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"]);
    assert.equal(c.securityContext?.seccompProfile?.type, "RuntimeDefault");
    assert.equal(c.livenessProbe?.httpGet?.path, "/healthz");
    assert.equal(c.readinessProbe?.httpGet?.path, "/readyz");
    assert.ok(c.resources?.requests?.memory && c.resources.limits?.memory, "memory request and limit");
    assert.equal(c.args?.[0], "operator");
    assert.ok(!c.args?.includes("--no-leader-election"));
    const env = new Map(c.env?.map((e) => [e.name, e]));
    assert.equal(env.get("OPERATOR_IMAGE")?.value, c.image, "the operator image is the default executor image");
    assert.equal(env.get("OPENBAO_JWT_AUDIENCE")?.value, "openbao-internal");
    assert.equal(env.get("POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath, "metadata.namespace");
    assert.equal(env.has("WATCH_NAMESPACE"), false, "all namespaces by default");
    // Restore drills' throwaway OpenBao: the operator's default repository, tagged with each cluster's version.
    assert.equal(env.get("DRILL_IMAGE_REPOSITORY")?.value, "quay.io/openbao/openbao");
    // The operator's own Pods must never look like the Jobs it manages.
    const labels = deployment.spec?.template.metadata?.labels ?? {};
    assert.notEqual(labels["app.kubernetes.io/managed-by"], "openbao-backup");
  });

  test("watchNamespace: a Role and RoleBinding in that namespace, no cluster-wide RBAC", () => {
    const m = get("watchNamespace");
    assert.equal(byKind(m, "ClusterRole").length + byKind(m, "ClusterRoleBinding").length, 0);
    const roles = byKind(operatorPart(m), "Role");
    assert.deepEqual(roles.map((r) => r.metadata.namespace).sort(), [namespace, releaseNamespace].sort());
    assert.deepEqual(
      byKind(monitorPart(m), "Role").map((r) => r.metadata.namespace),
      [namespace],
      "the monitor: a Role in the watched namespace",
    );
    const env = new Map(operatorContainer(m).env?.map((e) => [e.name, e.value]));
    assert.equal(env.get("WATCH_NAMESPACE"), namespace);
  });

  test("monitoring: ServiceMonitor and PrometheusRule with an alert for every silent failure", () => {
    const m = get("monitoring");
    one(m, "ServiceMonitor");
    const rule = one(m, "PrometheusRule") as Manifest & {
      spec: { groups: { rules: { alert?: string; expr: string; annotations?: Record<string, string> }[] }[] };
    };
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    assert.deepEqual(rules.map((r) => r.alert).sort(), [
      "OpenBaoBackupBlocked",
      "OpenBaoBackupDestinationFailing",
      "OpenBaoBackupFailing",
      "OpenBaoBackupFreshnessUnknown",
      "OpenBaoBackupMisconfigured",
      "OpenBaoBackupMissed",
      "OpenBaoBackupMonitorDown",
      "OpenBaoBackupNeverSucceeded",
      "OpenBaoBackupOperatorDown",
      "OpenBaoBackupRetentionFailing",
      "OpenBaoBackupStale",
      "OpenBaoRestoreDrillFailed",
      "OpenBaoRestoreDrillStale",
      "OpenBaoRestoreFailed",
    ]);
    for (const r of rules) {
      assert.equal(
        r.annotations?.runbook_url,
        `https://github.com/openbao/openbao-backup/blob/main/docs/troubleshooting.md#${(r.alert ?? "").toLowerCase()}`,
      );
    }
    // The operator's and the monitor's absence are judged on their own scrape jobs.
    const expr = (name: string) => rules.find((r) => r.alert === name)?.expr ?? "";
    assert.match(expr("OpenBaoBackupOperatorDown"), new RegExp(`job="${release}-openbao-backup-metrics"`));
    assert.match(expr("OpenBaoBackupMonitorDown"), new RegExp(`job="${release}-openbao-backup-monitor-metrics"`));
  });

  test("executor ServiceAccounts: optional, no token automount, and no RBAC at all", () => {
    const m = get("executorServiceAccounts");
    const executors = byKind(operatorPart(m), "ServiceAccount").filter(
      (s) => s.metadata.name !== `${release}-openbao-backup`,
    );
    assert.deepEqual(
      executors.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).sort(),
      [
        `${namespace}/${clusterName}-backup`,
        `${namespace}/${clusterName}-restore`,
        `${releaseNamespace}/other-backup`,
      ].sort(),
    );
    for (const sa of executors) assert.equal(sa.automountServiceAccountToken, false);
    const bindings = operatorPart(m);
    const subjects = [...byKind(bindings, "RoleBinding"), ...byKind(bindings, "ClusterRoleBinding")].flatMap(
      (b) => (b.subjects as { name: string }[] | undefined) ?? [],
    );
    assert.ok(
      subjects.every((s) => s.name === `${release}-openbao-backup`),
      "only the operator is bound to a role",
    );
  });

  test("no Role or ClusterRole has a wildcard verb, resource, group or name", () => {
    for (const [name, manifests] of rendered) {
      const rules = rulesOf(manifests);
      if (name !== "singleReplica") assert.ok(rules.length > 0, `${name} renders RBAC`);
      for (const { role, rule } of rules) {
        const where = `${name}: ${role.kind} ${role.metadata.name} ${JSON.stringify(rule)}`;
        for (const list of [rule.verbs, rule.resources ?? [], rule.apiGroups ?? [], rule.resourceNames ?? []]) {
          assert.ok(!list.some((v) => v.includes("*")), where);
        }
        assert.equal(rule.nonResourceURLs, undefined, where);
        for (const verb of rule.verbs) {
          assert.ok(!["escalate", "bind", "impersonate", "deletecollection"].includes(verb), where);
        }
      }
    }
  });

  test(
    "every rendered manifest (and the CRDs) is accepted by the real kube-apiserver",
    { timeout: 180_000 },
    async () => {
      const kube = await startKube({ name: "kube-chart-dryrun" });
      try {
        await kube.installCrds(
          readdirSync(join(chartDir, "crds")).map((f) => readFileSync(join(chartDir, "crds", f), "utf8")),
        );
        await kube.installCrds([monitoringCrds()]);
        await kube.createNamespace(releaseNamespace);
        await kube.createNamespace(namespace);
        for (const [name, manifests] of rendered) {
          for (const manifest of manifests) {
            const res = await apply(kube, manifest, { dryRun: true });
            assert.equal(res.status, 201, `${name}: ${manifest.kind} ${manifest.metadata.name}: ${res.body}`);
          }
        }
        // Strict validation is really on: a misspelt field is refused, not dropped.
        const rule = one(get("monitoring"), "PrometheusRule");
        const bad = { ...rule, spec: { groups: [{ name: "x", rules: [{ alert: "A", expr: "1", fro: "5m" }] }] } };
        assert.equal((await apply(kube, bad, { dryRun: true })).status, 400);
      } finally {
        await kube.stop();
      }
    },
  );
});

describe("the chart's RBAC runs a full backup and restore, and allows nothing more", { timeout: 600_000 }, () => {
  let kube: KubeHandle;
  let bao: BaoServer;
  let target: TargetUnderTest;
  let runner: JobRunner;
  /** The default release (ClusterRole, Lease) runs the backup. */
  const cluster = { release, manifests: [] as Manifest[], saName: "", kubeconfig: "" };
  /** A second release with watchNamespace (namespaced Role) runs the restore. */
  const scoped = { release: "scoped", manifests: [] as Manifest[], saName: "", kubeconfig: "" };
  let scratch: string;
  const processes: ManagedProcess[] = [];

  before(async () => {
    // Secrets are readable only where asked (rbac.secretReadNamespaces): here, the clusters' namespace.
    cluster.manifests = await render(cluster.release, releaseNamespace, { "rbac.secretReadNamespaces[0]": namespace });
    scoped.manifests = await render(scoped.release, releaseNamespace, { watchNamespace: namespace });
    // OwnerReferencesPermissionEnforcement (on in hardened clusters) checks that whoever sets
    // blockOwnerDeletion may update the owner's finalizers: the chart grants exactly that.
    kube = await startKube({
      name: "kube-chart",
      extraApiServerArgs: ["--enable-admission-plugins=OwnerReferencesPermissionEnforcement"],
    });
    await kube.installCrds(
      readdirSync(join(chartDir, "crds")).map((f) => readFileSync(join(chartDir, "crds", f), "utf8")),
    );
    await kube.createNamespace(releaseNamespace);
    await kube.createNamespace(namespace);
    for (const manifest of [...cluster.manifests, ...scoped.manifests]) {
      const res = await apply(kube, manifest, { dryRun: false });
      assert.equal(res.status, 201, `${manifest.kind} ${manifest.metadata.name}: ${res.body}`);
    }
    [bao, target] = await Promise.all([
      startOpenBao({
        nodes: 1,
        jwtValidationPubkeys: [kube.serviceAccountPublicKeyPem],
        jwtIssuer: kube.issuer,
        backupServiceAccount: { namespace, name: `${clusterName}-backup` },
        restoreServiceAccount: { namespace, name: `${clusterName}-restore` },
      }),
      startTarget("s3"),
    ]);
    const core = kube.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "s3-credentials" }, stringData: target.credentials },
    });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: `${clusterName}-tls-ca` }, stringData: { "ca.crt": bao.caPem } },
    });
    runner = await startJobRunner({ kubeConfig: kube.kubeConfig, namespace });
    // The operator authenticates exactly as in the cluster: a token of the chart's ServiceAccount.
    scratch = scratchDir("chart-operator");
    for (const r of [cluster, scoped]) {
      r.saName = one(r.manifests, "ServiceAccount").metadata.name;
      const { token } = await kube.requestToken(releaseNamespace, r.saName, kube.apiAudiences[0], 3600);
      r.kubeconfig = join(scratch, `${r.release}.kubeconfig`);
      writeFileSync(r.kubeconfig, kube.kubeConfigForToken(token, r.saName).exportConfig(), { mode: 0o600 });
    }
  });
  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await runner?.stop();
    await Promise.all([bao?.stop(), target?.stop()]);
    await kube?.stop();
    if (scratch) removeScratch(scratch);
  });

  /** The chart's Deployment as a process: its args and env, the SA's kubeconfig, a free port. */
  async function startChartOperator(r: typeof cluster, name: string): Promise<{ proc: ManagedProcess; url: string }> {
    const container = operatorContainer(r.manifests);
    const port = await freePort();
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" };
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = releaseNamespace;
      else assert.fail(`unsupported env ${e.name}`);
    }
    env.HEALTH_PORT = String(port);
    env.LOG_LEVEL = "debug";
    const args = [join(projectRoot, "src", "cli", "main.ts"), ...(container.args ?? []), "--kubeconfig", r.kubeconfig];
    const proc = startProcess({ name: `chart-operator-${name}`, command: process.execPath, args, env });
    processes.push(proc);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/readyz`)).ok, {
      what: "operator /readyz",
      processes: [proc],
      timeoutMs: 60_000,
    });
    return { proc, url };
  }

  /** The Lease the release's Deployment elects on (`--leader-election-name`). */
  const leaseName = (r: typeof cluster): string => {
    const flag = operatorContainer(r.manifests).args?.find((a) => a.startsWith("--leader-election-name="));
    assert.ok(flag, "the Deployment names its Lease");
    return flag.slice("--leader-election-name=".length);
  };
  const custom = () => kube.kubeConfig.makeApiClient(CustomObjectsApi);
  const getCluster = async () =>
    (await custom().getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: "openbaoclusters",
      name: clusterName,
    })) as OpenBaoCluster;
  const assertNoForbidden = (proc: ManagedProcess) => {
    const log = readFileSync(proc.logPath, "utf8");
    assert.doesNotMatch(log, /forbidden|\b403\b/i, `the operator was refused something:\n${proc.logTail()}`);
  };
  let backupKey = "";

  test("backup: the chart's operator takes the Lease and a manual backup completes", { timeout: 240_000 }, async () => {
    const { proc, url } = await startChartOperator(cluster, "cluster-wide");
    const lease = await waitFor(
      async () => {
        const l = await kube.kubeConfig
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: leaseName(cluster), namespace: releaseNamespace });
        return l.spec?.holderIdentity ? l : undefined;
      },
      { what: "the Lease held", processes: [proc] },
    );
    assert.ok(lease.spec?.holderIdentity);

    await bao.writeSecret("chart/s", { value: "before-backup" });
    await custom().createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: "openbaoclusters",
      body: {
        apiVersion: `${group}/${version}`,
        kind: "OpenBaoCluster",
        metadata: { name: clusterName, namespace },
        spec: {
          replicas: 1,
          version: "2.4.0",
          backup: {
            schedule: quietSchedule,
            jwtAuthRole: "backup",
            openbaoAddresses: bao.addresses,
            target: {
              provider: "s3",
              endpoint: target.env().BACKUP_ENDPOINT,
              bucket: target.bucket,
              usePathStyle: true,
              credentialsSecretRef: { name: "s3-credentials" },
            },
          },
        },
      },
    });
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    await custom().patchNamespacedCustomObjectStatus(
      {
        group,
        version,
        namespace,
        plural: "openbaoclusters",
        name: clusterName,
        body: { status: { phase: "Running", initialized: true, currentVersion: "2.4.0" } },
      },
      merge,
    );
    await custom().patchNamespacedCustomObject(
      {
        group,
        version,
        namespace,
        plural: "openbaoclusters",
        name: clusterName,
        body: { metadata: { annotations: { "openbao.org/trigger-backup": "chart-test" } } },
      },
      merge,
    );
    const done = await waitFor(
      async () => {
        const c = await getCluster();
        return c.status?.backup?.lastBackupName ? c : undefined;
      },
      { what: "the backup recorded in status", processes: [proc], timeoutMs: 180_000, intervalMs: 300 },
    );
    backupKey = done.status?.backup?.lastBackupName ?? "";
    const jobName = done.status?.backup?.lastRecordedJob ?? "";
    const run = await runner.waitForRun(jobName, { namespace });
    assert.equal(run.outcome, "Complete", run.notes.join("\n"));
    assert.ok(await target.get(backupKey), `${backupKey} is in the bucket`);
    assert.equal(done.metadata.annotations?.["openbao.org/trigger-backup"], undefined, "trigger cleared (patch)");
    const sa = await kube.kubeConfig
      .makeApiClient(CoreV1Api)
      .readNamespacedServiceAccount({ name: `${clusterName}-backup`, namespace });
    assert.equal(sa.automountServiceAccountToken, false, "executor SA created by the operator, no API token");
    const events = await kube.kubeConfig.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace });
    assert.ok(
      events.items.some((e) => e.reportingComponent === "openbao-backup"),
      "the operator recorded Events",
    );
    assert.match(await (await fetch(`${url}/metrics`)).text(), /openbao_backup_last_success_timestamp_seconds\{/);
    assertNoForbidden(proc);
    await proc.stop();
  });

  test(
    "the chart's freshness monitor, with only its own ServiceAccount's rights, reads the backup from the bucket",
    {
      timeout: 120_000,
    },
    async () => {
      assert.ok(backupKey, "needs the backup of the previous test");
      const monitor = monitorPart(cluster.manifests);
      const saName = byKind(monitor, "ServiceAccount")[0]?.metadata.name ?? "";
      const deployment = byKind(monitor, "Deployment")[0] as unknown as V1Deployment;
      const container = deployment.spec?.template.spec?.containers.find((c) => c.name === "monitor");
      assert.ok(saName && container);
      const { token } = await kube.requestToken(releaseNamespace, saName, kube.apiAudiences[0], 3600);
      const kubeconfig = join(scratch, "monitor.kubeconfig");
      writeFileSync(kubeconfig, kube.kubeConfigForToken(token, saName).exportConfig(), { mode: 0o600 });
      const port = await freePort();
      const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" };
      for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
      env.HEALTH_PORT = String(port);
      env.LOG_LEVEL = "debug";
      const proc = startProcess({
        name: "chart-monitor",
        command: process.execPath,
        // The chart's args, then a short interval (the last value of a flag wins).
        args: [
          join(projectRoot, "src", "cli", "main.ts"),
          ...(container.args ?? []),
          "--kubeconfig",
          kubeconfig,
          "--interval=10",
        ],
        env,
      });
      processes.push(proc);
      const labels = `namespace="${namespace}",cluster="${clusterName}"`;
      const created = Date.parse((await getCluster()).status?.backup?.lastBackupTime ?? "");
      const text = await waitFor(
        async () => {
          const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return body.includes(`openbao_backup_storage_probe_success{${labels}} 1`) ? body : undefined;
        },
        { what: "the monitor to read the bucket", processes: [proc], timeoutMs: 90_000, intervalMs: 500 },
      );
      const newest = Number(
        text
          .split("\n")
          .find((l) => l.startsWith(`openbao_backup_storage_newest_verified_timestamp_seconds{${labels}} `))
          ?.split(" ")
          .pop(),
      );
      assert.ok(
        Math.abs(newest * 1000 - created) < 120_000,
        `newest verified ${newest} near the recorded backup ${created}`,
      );
      assertNoForbidden(proc);
      await proc.stop();
    },
  );

  test(
    "restore: a watchNamespace release (namespaced Role) runs an OpenBaoRestore to Completed",
    { timeout: 240_000 },
    async () => {
      assert.ok(backupKey, "needs the backup of the previous test");
      await bao.writeSecret("chart/s", { value: "after-backup" });
      const { proc } = await startChartOperator(scoped, "namespaced");
      await custom().createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural: "openbaorestores",
        body: {
          apiVersion: `${group}/${version}`,
          kind: "OpenBaoRestore",
          metadata: { name: "chart-restore", namespace },
          spec: {
            cluster: clusterName,
            jwtAuthRole: "restore",
            source: {
              key: backupKey,
              target: {
                provider: "s3",
                endpoint: target.env().BACKUP_ENDPOINT,
                bucket: target.bucket,
                usePathStyle: true,
                credentialsSecretRef: { name: "s3-credentials" },
              },
            },
          },
        },
      });
      const done = await waitFor(
        async () => {
          const r = (await custom().getNamespacedCustomObject({
            group,
            version,
            namespace,
            plural: "openbaorestores",
            name: "chart-restore",
          })) as OpenBaoRestore;
          const phase = r.status?.phase;
          return phase === "Completed" || phase === "Failed" ? r : undefined;
        },
        { what: "the restore finished", processes: [proc], timeoutMs: 180_000, intervalMs: 300 },
      );
      assert.equal(done.status?.phase, "Completed", done.status?.message);
      assert.deepEqual(await bao.readSecret("chart/s"), { value: "before-backup" }, "the snapshot's data is back");
      // Deleting the restore runs its finalizer (patch) as the operator.
      await custom().deleteNamespacedCustomObject({
        group,
        version,
        namespace,
        plural: "openbaorestores",
        name: "chart-restore",
      });
      await waitFor(
        async () => {
          try {
            await custom().getNamespacedCustomObject({
              group,
              version,
              namespace,
              plural: "openbaorestores",
              name: "chart-restore",
            });
            return false;
          } catch {
            return true;
          }
        },
        { what: "the restore's finalizer removed", processes: [proc] },
      );
      assertNoForbidden(proc);
      await proc.stop();
    },
  );

  test("and nothing more: SubjectAccessReviews outside the granted rules are denied", async () => {
    const authz = kube.kubeConfig.makeApiClient(AuthorizationV1Api);
    interface Attrs {
      verb: string;
      resource: string;
      group?: string;
      namespace?: string;
      subresource?: string;
      name?: string;
    }
    const can = async (saName: string, attrs: Attrs): Promise<boolean> => {
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: `system:serviceaccount:${releaseNamespace}:${saName}`,
            groups: ["system:serviceaccounts", `system:serviceaccounts:${releaseNamespace}`, "system:authenticated"],
            resourceAttributes: { group: "", ...attrs },
          },
        },
      });
      return review.status?.allowed === true;
    };
    const lease = (r: typeof cluster, name: string, ns = releaseNamespace): Attrs => ({
      verb: "update",
      resource: "leases",
      group: "coordination.k8s.io",
      namespace: ns,
      name: name || leaseName(r),
    });
    for (const r of [cluster, scoped]) {
      const allowed: Attrs[] = [
        { verb: "watch", resource: "openbaoclusters", group, namespace },
        { verb: "update", resource: "openbaoclusters", subresource: "status", group, namespace },
        { verb: "update", resource: "openbaorestores", subresource: "finalizers", group, namespace },
        { verb: "create", resource: "jobs", group: "batch", namespace },
        { verb: "delete", resource: "jobs", group: "batch", namespace },
        { verb: "get", resource: "secrets", namespace },
        { verb: "create", resource: "events", namespace },
        { verb: "watch", resource: "statefulsets", group: "apps", namespace },
        lease(r, ""),
      ];
      const denied: Attrs[] = [
        { verb: "list", resource: "secrets", namespace },
        { verb: "watch", resource: "secrets", namespace },
        { verb: "create", resource: "secrets", namespace },
        { verb: "get", resource: "configmaps", namespace },
        { verb: "get", resource: "pods", namespace },
        { verb: "create", resource: "pods", namespace },
        { verb: "delete", resource: "pods", namespace },
        { verb: "get", resource: "pods", subresource: "log", namespace },
        { verb: "create", resource: "pods", subresource: "exec", namespace },
        { verb: "delete", resource: "openbaoclusters", group, namespace },
        { verb: "update", resource: "openbaoclusters", group, namespace },
        { verb: "create", resource: "openbaoclusters", group, namespace },
        { verb: "create", resource: "openbaorestores", group, namespace },
        { verb: "delete", resource: "openbaorestores", group, namespace },
        { verb: "delete", resource: "serviceaccounts", namespace },
        { verb: "create", resource: "serviceaccounts", subresource: "token", namespace, name: `${clusterName}-backup` },
        { verb: "update", resource: "jobs", group: "batch", namespace },
        { verb: "get", resource: "statefulsets", group: "apps", namespace },
        { verb: "patch", resource: "statefulsets", group: "apps", namespace },
        { verb: "delete", resource: "statefulsets", group: "apps", namespace },
        { verb: "create", resource: "rolebindings", group: "rbac.authorization.k8s.io", namespace },
        { verb: "escalate", resource: "clusterroles", group: "rbac.authorization.k8s.io" },
        { verb: "update", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
        { verb: "delete", resource: "events", namespace },
        lease(r, "someone-else"),
        lease(r, "", "kube-system"),
        { ...lease(r, ""), verb: "delete" },
      ];
      for (const attrs of allowed) {
        assert.equal(await can(r.saName, attrs), true, `${r.release} allowed: ${JSON.stringify(attrs)}`);
      }
      for (const attrs of denied) {
        assert.equal(await can(r.saName, attrs), false, `${r.release} denied: ${JSON.stringify(attrs)}`);
      }
    }
    // The watchNamespace release reaches nothing outside its namespace; the default one does.
    const elsewhere: Attrs[] = [
      { verb: "list", resource: "openbaoclusters", group },
      { verb: "list", resource: "openbaoclusters", group, namespace: "default" },
      { verb: "create", resource: "jobs", group: "batch", namespace: "kube-system" },
    ];
    for (const attrs of elsewhere) {
      assert.equal(await can(cluster.saName, attrs), true, `default release: ${JSON.stringify(attrs)}`);
      assert.equal(await can(scoped.saName, attrs), false, `watchNamespace release: ${JSON.stringify(attrs)}`);
    }
    // No Secret outside the namespaces named in rbac.secretReadNamespaces (or watchNamespace).
    for (const r of [cluster, scoped]) {
      assert.equal(
        await can(r.saName, { verb: "get", resource: "secrets", namespace: "default" }),
        false,
        `${r.release}: no Secret in default`,
      );
    }
    // Each release elects on its own Lease.
    assert.notEqual(leaseName(cluster), leaseName(scoped));
    assert.equal(await can(scoped.saName, lease(cluster, "")), false);
  });
});
