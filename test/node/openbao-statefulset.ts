/**
 * OpenBao as most people run it: a 3-replica Raft StatefulSet shaped like the one the official
 * OpenBao Helm chart renders (`<name>` StatefulSet, headless `<name>-internal` Service with
 * `publishNotReadyAddresses`, `podManagementPolicy: Parallel`, `updateStrategy: OnDelete`, the
 * API port named after its scheme, `BAO_ADDR`/`BAO_API_ADDR`/`BAO_CLUSTER_ADDR`/
 * `BAO_RAFT_NODE_ID` from the Pod, the chart's `bao status` readiness probe, TLS on or off),
 * running as real Pods from the locally built OpenBao image, and — unlike world.ts's
 * `createCluster` — with no lifecycle operator: nobody writes an OpenBaoCluster status.
 *
 * What differs from the chart, and why: the image has no shell, so the container runs
 * `bao server` directly instead of the chart's `/bin/sh -ec` wrapper; data lives on an
 * emptyDir (the node has no volume provisioner), so a replaced Pod comes back empty and
 * rejoins through `retry_join` (as a Pod with a fresh volume does).
 *
 * The test reaches each Pod from the host through its Pod IP on the bridge, verifying TLS
 * against the Pod's DNS name (SNI), and plays the person who initialises and unseals OpenBao.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AppsV1Api, CoreV1Api, V1Pod } from "@kubernetes/client-node";
import { backupPolicy, restorePolicy } from "../servers/openbao.ts";
import { scratchDir, waitFor } from "../servers/process.ts";
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from "../servers/tls.ts";
import { describePod } from "./pod-report.ts";

export interface ChartOpenBaoOptions {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly namespace: string;
  readonly name: string;
  readonly image: string;
  readonly tls: boolean;
  /** The API server's ServiceAccount signing key and issuer: OpenBao's JWT auth trusts them. */
  readonly jwt: { readonly publicKeyPem: string; readonly issuer: string };
  /** Executor ServiceAccount names the `backup` and `restore` roles accept. */
  readonly serviceAccounts: { readonly backup: string; readonly restore: string };
  readonly replicas?: number;
}

export interface ChartOpenBao {
  readonly name: string;
  readonly scheme: "http" | "https";
  /** A Secret shaped like cert-manager's (tls.crt, tls.key, ca.crt), when TLS is on. */
  readonly tlsSecretName: string | undefined;
  readonly rootToken: string;
  /** One API call to the Pod with this ordinal (default: the active node). */
  call<T = unknown>(method: string, path: string, body?: unknown, pod?: number): Promise<T>;
  /** One KV v2 value read from every Pod (standbys forward reads to the active node). */
  readEverywhere(path: string): Promise<string[]>;
  /** Seals members until a majority is sealed: no leader, as after a restart without auto-unseal. */
  sealAll(): Promise<void>;
  /** Unseals every sealed member and waits for a healthy Raft of all replicas. */
  unsealAll(): Promise<void>;
  /** Deletes one Pod (a rollout under OnDelete): the StatefulSet controller replaces it. */
  deletePod(ordinal: number): Promise<void>;
  /** Waits for a replaced Pod, unseals it and waits for all voters healthy. */
  recoverPod(ordinal: number, previousUid: string): Promise<void>;
  podUid(ordinal: number): Promise<string>;
}

interface Reply<T> {
  readonly status: number;
  readonly body: T;
}

const apiPort = 8200;

export async function deployChartShapedOpenBao(options: ChartOpenBaoOptions): Promise<ChartOpenBao> {
  const { core, apps, namespace, name, tls } = options;
  const replicas = options.replicas ?? 3;
  const scheme = tls ? "https" : "http";
  const service = `${name}-internal`;
  const podName = (i: number): string => `${name}-${i}`;
  const podDns = (i: number): string => `${podName(i)}.${service}.${namespace}.svc`;
  const labels = { "app.kubernetes.io/name": "openbao", "app.kubernetes.io/instance": name, component: "server" };

  let ca: CertificateAuthority | undefined;
  let tlsSecretName: string | undefined;
  if (tls) {
    ca = createCertificateAuthority(scratchDir(`chart-openbao-${name}`), `${name} CA`);
    // What cert-manager would issue for the chart's TLS guide: every Pod name, short and long.
    const cert = issueCertificate(ca, name, [
      `*.${service}`,
      `*.${service}.${namespace}.svc`,
      `*.${service}.${namespace}.svc.cluster.local`,
      `${name}.${namespace}.svc`,
    ]);
    tlsSecretName = `${name}-server-tls`;
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: tlsSecretName },
        type: "kubernetes.io/tls",
        stringData: { "tls.crt": cert.certPem, "tls.key": cert.keyPem, "ca.crt": ca.certPem },
      },
    });
  }

  const joins = Array.from({ length: replicas }, (_, i) =>
    [
      "  retry_join {",
      `    leader_api_addr = "${scheme}://${podName(i)}.${service}:${apiPort}"`,
      ...(tls ? ['    leader_ca_cert_file = "/openbao/tls/ca.crt"'] : []),
      "  }",
    ].join("\n"),
  ).join("\n");
  const config = `ui = false
disable_mlock = true
listener "tcp" {
  address = "[::]:${apiPort}"
  cluster_address = "[::]:8201"
${tls ? '  tls_cert_file = "/openbao/tls/tls.crt"\n  tls_key_file = "/openbao/tls/tls.key"' : "  tls_disable = 1"}
}
storage "raft" {
  path = "/openbao/data"
  performance_multiplier = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval = "1s"
${joins}
}
`;
  await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: `${name}-config` }, data: { "extraconfig-from-values.hcl": config } },
  });
  await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name: service, labels },
      spec: {
        clusterIP: "None",
        publishNotReadyAddresses: true,
        selector: labels,
        ports: [
          { name: scheme, port: apiPort, targetPort: apiPort },
          { name: "https-internal", port: 8201, targetPort: 8201 },
        ],
      },
    },
  });
  await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name, labels },
      spec: { selector: labels, ports: [{ name: scheme, port: apiPort, targetPort: apiPort }] },
    },
  });

  await apps.createNamespacedStatefulSet({
    namespace,
    body: {
      metadata: { name, labels: { ...labels, "app.kubernetes.io/managed-by": "Helm" } },
      spec: {
        serviceName: service,
        podManagementPolicy: "Parallel",
        replicas,
        updateStrategy: { type: "OnDelete" },
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            // The chart's service_registration "kubernetes" (Pod role labels) is left out: the
            // product reads none of those labels.
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 5,
            securityContext: { runAsNonRoot: true, runAsUser: 100, runAsGroup: 1000, fsGroup: 1000 },
            volumes: [
              { name: "config", configMap: { name: `${name}-config` } },
              { name: "data", emptyDir: {} },
              ...(tlsSecretName ? [{ name: "tls", secret: { secretName: tlsSecretName } }] : []),
            ],
            containers: [
              {
                name: "openbao",
                image: options.image,
                imagePullPolicy: "Never",
                command: ["/bin/bao", "server", "-config=/openbao/config/extraconfig-from-values.hcl"],
                env: [
                  { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
                  { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
                  { name: "BAO_K8S_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "BAO_K8S_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                  { name: "BAO_ADDR", value: `${scheme}://127.0.0.1:${apiPort}` },
                  { name: "BAO_API_ADDR", value: `${scheme}://$(POD_IP):${apiPort}` },
                  { name: "HOSTNAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "BAO_CLUSTER_ADDR", value: `https://$(HOSTNAME).${service}:8201` },
                  { name: "BAO_RAFT_NODE_ID", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "HOME", value: "/openbao" },
                  ...(tls ? [{ name: "BAO_CACERT", value: "/openbao/tls/ca.crt" }] : []),
                ],
                ports: [
                  { containerPort: apiPort, name: scheme },
                  { containerPort: 8201, name: "https-internal" },
                  { containerPort: 8202, name: `${scheme}-rep` },
                ],
                // The chart's probe: `bao status` exits 2 while sealed, so a sealed Pod is not Ready.
                readinessProbe: {
                  exec: { command: ["/bin/bao", "status", "-tls-skip-verify"] },
                  periodSeconds: 3,
                  failureThreshold: 2,
                  timeoutSeconds: 3,
                },
                volumeMounts: [
                  { name: "config", mountPath: "/openbao/config" },
                  { name: "data", mountPath: "/openbao/data" },
                  ...(tlsSecretName ? [{ name: "tls", mountPath: "/openbao/tls", readOnly: true }] : []),
                ],
              },
            ],
          },
        },
      },
    },
  });

  const pod = async (i: number): Promise<V1Pod | undefined> => {
    try {
      return await core.readNamespacedPod({ namespace, name: podName(i) });
    } catch {
      return undefined;
    }
  };
  const podIp = async (i: number): Promise<string> => {
    const ipOf = await waitFor(async () => (await pod(i))?.status?.podIP, {
      what: `Pod ${podName(i)} has an IP`,
      timeoutMs: 120_000,
      intervalMs: 500,
    });
    return ipOf;
  };

  const raw = async <T>(i: number, method: string, path: string, body: unknown, token: string): Promise<Reply<T>> => {
    const ip = await podIp(i);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {
      ...(token ? { "x-vault-token": token } : {}),
      ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}),
    };
    return new Promise<Reply<T>>((resolve, reject) => {
      const url = `${scheme}://${ip}:${apiPort}/v1/${path}`;
      const onResponse = (res: import("node:http").IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      };
      const req = tls
        ? httpsRequest(url, { method, headers, ca: ca?.certPem, servername: podDns(i), timeout: 10_000 }, onResponse)
        : httpRequest(url, { method, headers, timeout: 10_000 }, onResponse);
      req.on("timeout", () => req.destroy(new Error(`timeout: ${method} ${url}`)));
      req.on("error", reject);
      req.end(payload);
    });
  };

  let rootToken = "";
  let unsealKey = "";
  const ordinals = Array.from({ length: replicas }, (_, i) => i);

  const sealed = async (i: number): Promise<boolean | undefined> => {
    try {
      const res = await raw<{ sealed?: boolean }>(i, "GET", "sys/seal-status", undefined, "");
      return res.status === 200 ? res.body.sealed === true : undefined;
    } catch {
      return undefined;
    }
  };
  const activeOrdinal = async (): Promise<number> =>
    waitFor(
      async () => {
        for (const i of ordinals) {
          try {
            const res = await raw<{ is_self?: boolean }>(i, "GET", "sys/leader", undefined, "");
            if (res.status === 200 && res.body.is_self === true) return i + 1;
          } catch {
            // not answering yet
          }
        }
        return undefined;
      },
      { what: `an active OpenBao node in ${name}`, timeoutMs: 90_000, intervalMs: 500 },
    ).then((n) => n - 1);

  const call = async <T>(method: string, path: string, body?: unknown, podOrdinal?: number): Promise<T> => {
    const i = podOrdinal ?? (await activeOrdinal());
    const res = await raw<T>(i, method, path, body, rootToken);
    if (res.status >= 300)
      throw new Error(`${method} ${path} on ${podName(i)}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };

  const unsealOne = async (i: number): Promise<void> => {
    // What the last attempt met, for the failure message: it once timed out with nothing else said.
    let last = "no answer yet";
    try {
      await waitFor(
        async () => {
          const state = await sealed(i);
          if (state === undefined) last = "sys/seal-status did not answer";
          if (state === false) return true;
          if (state === true) {
            last = await raw(i, "POST", "sys/unseal", { key: unsealKey }, "").then(
              (res) => `sys/unseal answered HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`,
              (err: unknown) => `sys/unseal failed: ${err instanceof Error ? err.message : String(err)}`,
            );
          }
          return false;
        },
        // Up to the kubelet's longest crash-loop back-off (300 s) and a bit: sealing stops Raft
        // autopilot, and v2.4.0 can panic there (hashicorp/vault#27726); the kubelet restarts the
        // container, sealed, later each time it crashed again. (The failure report shows the panic.)
        { what: `${podName(i)} unsealed`, timeoutMs: 330_000, intervalMs: 1000 },
      );
    } catch (err) {
      const p = await pod(i).catch(() => undefined);
      const status = p ? describePod(p).join("\n") : `${podName(i)}: not found`;
      throw new Error(`${err instanceof Error ? err.message : String(err)}; last: ${last}\n${status}`, { cause: err });
    }
  };

  const waitHealthy = async (): Promise<void> => {
    await waitFor(
      async () => {
        try {
          const res = await raw<{ data?: { healthy?: boolean; voters?: string[] } }>(
            await activeOrdinal(),
            "GET",
            "sys/storage/raft/autopilot/state",
            undefined,
            rootToken,
          );
          return (
            res.status === 200 && res.body.data?.healthy === true && (res.body.data.voters?.length ?? 0) === replicas
          );
        } catch {
          return false;
        }
      },
      { what: `${replicas} healthy Raft voters in ${name}`, timeoutMs: 180_000, intervalMs: 1000 },
    );
  };

  // Initialise (as a person does once after `helm install`) and unseal.
  await waitFor(async () => (await sealed(0)) !== undefined, {
    what: `${podName(0)} answering`,
    timeoutMs: 180_000,
    intervalMs: 1000,
  });
  const init = await raw<{ keys_base64: string[]; root_token: string }>(
    0,
    "POST",
    "sys/init",
    { secret_shares: 1, secret_threshold: 1 },
    "",
  );
  if (init.status !== 200) throw new Error(`sys/init on ${podName(0)}: HTTP ${init.status}`);
  unsealKey = init.body.keys_base64[0] ?? "";
  rootToken = init.body.root_token;
  await unsealOne(0);
  await activeOrdinal();
  await call("POST", "sys/storage/raft/autopilot/configuration", { server_stabilization_time: "1s" });
  for (const i of ordinals.slice(1)) await unsealOne(i);
  await waitHealthy();

  // What `bao-backup auth-setup` would write (docs/openbao-auth.md), done directly here.
  await call("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
  await call("POST", "sys/auth/jwt", { type: "jwt" });
  await call("POST", "auth/jwt/config", {
    jwt_validation_pubkeys: [options.jwt.publicKeyPem],
    bound_issuer: options.jwt.issuer,
  });
  await call("POST", "sys/policies/acl/backup", { policy: backupPolicy });
  await call("POST", "sys/policies/acl/restore", { policy: restorePolicy });
  for (const [role, sa] of Object.entries(options.serviceAccounts)) {
    await call("POST", `auth/jwt/role/${role}`, {
      role_type: "jwt",
      user_claim: "sub",
      bound_audiences: ["openbao-internal"],
      bound_claims: { "/kubernetes.io/namespace": namespace, "/kubernetes.io/serviceaccount/name": sa },
      token_policies: [role],
      token_ttl: "1h",
    });
  }

  return {
    name,
    scheme,
    tlsSecretName,
    get rootToken() {
      return rootToken;
    },
    call,
    async readEverywhere(path) {
      const values: string[] = [];
      for (const i of ordinals) {
        const read = await call<{ data: { data: { value: string } } }>("GET", path, undefined, i);
        values.push(read.data.data.value);
      }
      return values;
    },
    async sealAll() {
      // Only the active node can be sealed through the API (a standby answers with an
      // error); a standby then takes over, and is sealed in turn, until a majority is sealed
      // and Raft has no quorum: the last standby stays unsealed but nothing can lead — what
      // a person sees after the Pods restart without auto-unseal.
      const majority = Math.floor(replicas / 2) + 1;
      await waitFor(
        async () => {
          const states = await Promise.all(ordinals.map((i) => sealed(i)));
          if (states.filter((s) => s === true).length >= majority) return true;
          for (const i of ordinals) {
            if (states[i] === false) await raw(i, "PUT", "sys/seal", undefined, rootToken).catch(() => undefined);
          }
          return false;
        },
        { what: `a majority of ${name} sealed`, timeoutMs: 120_000, intervalMs: 1000 },
      );
    },
    async unsealAll() {
      for (const i of ordinals) await unsealOne(i);
      await waitHealthy();
    },
    async deletePod(ordinal) {
      await core.deleteNamespacedPod({ namespace, name: podName(ordinal), gracePeriodSeconds: 1 });
    },
    async podUid(ordinal) {
      return (await pod(ordinal))?.metadata?.uid ?? "";
    },
    async recoverPod(ordinal, previousUid) {
      await waitFor(
        async () => {
          const p = await pod(ordinal);
          return p?.metadata?.uid !== previousUid && p?.status?.podIP !== undefined && p.status.phase === "Running";
        },
        { what: `${podName(ordinal)} replaced`, timeoutMs: 120_000, intervalMs: 500 },
      );
      await unsealOne(ordinal);
      await waitHealthy();
    },
  };
}
