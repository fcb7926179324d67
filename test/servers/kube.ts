/**
 * A real Kubernetes control plane for a test: etcd + kube-apiserver on 127.0.0.1, served
 * over TLS from a CA generated for this instance, RBAC authorization, and service-account
 * token issuing (TokenRequest) with a generated RSA signing key whose public half is handed
 * to OpenBao's JWT auth as `jwt_validation_pubkeys`.
 *
 * There is no kube-controller-manager, scheduler or kubelet. What that leaves out:
 * - no ServiceAccount controller: a namespace gets no "default" ServiceAccount by itself
 *   (`createNamespace` below adds one), and a Pod naming a missing ServiceAccount is rejected
 *   by the ServiceAccount admission plugin;
 * - no namespace controller: a deleted Namespace stays Terminating forever;
 * - no garbage collector: ownerReferences never cascade; no Job or ReplicaSet controllers.
 * TokenRequest itself is served by kube-apiserver and works fully.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { type RequestOptions, request } from "node:https";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  loadYaml,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { serverBinary } from "./catalog.ts";
import { type EtcdHandle, launchEtcd, lostPortRace } from "./etcd.ts";
import { freePort } from "./ports.ts";
import { type ManagedProcess, removeScratch, scratchDir, startProcess, waitFor } from "./process.ts";
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from "./tls.ts";

export const serviceAccountIssuer = "https://kubernetes.default.svc";
/** The audience OpenBao's JWT roles are bound to (SPEC). */
export const openbaoAudience = "openbao-internal";

export interface KubeOptions {
  /** Prefix for process and log names; "kube" by default. */
  readonly name?: string;
  /**
   * Audiences the API server accepts for itself (`--api-audiences`); the issuer and
   * openbao-internal by default. TokenRequest issues tokens for any audience regardless.
   */
  readonly apiAudiences?: readonly string[];
  /** Extra kube-apiserver flags, appended last (a later flag of the same name wins). */
  readonly extraApiServerArgs?: readonly string[];
  /**
   * Extra IP addresses in the serving certificate, e.g. the `kubernetes` Service IP through
   * which Pods on a real node reach this API server (test/node).
   */
  readonly servingIps?: readonly string[];
  /**
   * Serve real kubelets (test/node): the Node authorizer before RBAC (a kubelet's
   * TokenRequests for projected tokens go through it), and the admin certificate as the API
   * server's client identity towards kubelets (logs, exec).
   */
  readonly kubelets?: boolean;
  /** Directory for the log files; a scratch directory by default. */
  readonly logDir?: string;
  /** Readiness timeout for each server. */
  readonly timeoutMs?: number;
}

export interface TokenResponse {
  readonly token: string;
  readonly expirationTimestamp: Date;
}

export interface KubeHandle {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** PEM of the CA that signed the serving certificate (and the admin client certificate). */
  readonly caPem: string;
  /** That CA itself, to issue more client certificates (a kubelet's, on a real node). */
  readonly ca: CertificateAuthority;
  /** Admin (CN=admin, O=system:masters) client credentials, e.g. for raw HTTPS requests. */
  readonly admin: { readonly certPem: string; readonly keyPem: string };
  /** A KubeConfig for the admin, ready for `makeApiClient`. */
  readonly kubeConfig: KubeConfig;
  /** The same admin kubeconfig written to disk (removed by `stop`). */
  readonly kubeConfigPath: string;
  /** `--service-account-issuer`: the `iss` of every service-account token. */
  readonly issuer: string;
  readonly apiAudiences: readonly string[];
  /** PKIX public key PEM that verifies service-account tokens (OpenBao `jwt_validation_pubkeys`). */
  readonly serviceAccountPublicKeyPem: string;
  readonly etcd: EtcdHandle;
  readonly apiServer: ManagedProcess;
  /** Milliseconds spent starting, for reports. */
  readonly startup: { readonly etcdMs: number; readonly apiServerMs: number; readonly totalMs: number };
  /** A KubeConfig that authenticates with a bearer token, e.g. a ServiceAccount's (for RBAC tests). */
  kubeConfigForToken(token: string, user?: string): KubeConfig;
  /** Creates a Namespace plus its "default" ServiceAccount (what the controller-manager would add). */
  createNamespace(name: string, labels?: Readonly<Record<string, string>>): Promise<void>;
  createServiceAccount(namespace: string, name: string): Promise<void>;
  /** TokenRequest for a ServiceAccount (which must exist); expirationSeconds ≥ 600. */
  requestToken(
    namespace: string,
    serviceAccount: string,
    audience?: string,
    expirationSeconds?: number,
  ): Promise<TokenResponse>;
  /** Creates CRDs and waits until each is Established and served; see `installCrds`. */
  installCrds(crds: readonly (string | V1CustomResourceDefinition)[]): Promise<void>;
  /** Stops kube-apiserver, then etcd, and removes their data, keys and kubeconfig. */
  stop(): Promise<void>;
}

/** The kube-apiserver binary: `OPENBAO_BACKUP_KUBE_APISERVER_BIN` if set, else the cached build. */
export function kubeApiServerBinary(): string {
  return process.env.OPENBAO_BACKUP_KUBE_APISERVER_BIN ?? serverBinary("kube-apiserver");
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A client certificate the API server maps to a user by its subject: CN is the user, each O a
 * group. The admin's O=system:masters bypasses RBAC; a kubelet's is O=system:nodes,
 * CN=system:node:<node> (the Node authorizer's convention).
 */
export function issueClientCertificate(
  ca: CertificateAuthority,
  name: string,
  subject: string,
): { certPath: string; keyPath: string } {
  const keyPath = join(ca.dir, `${name}.key`);
  const csrPath = join(ca.dir, `${name}.csr`);
  const certPath = join(ca.dir, `${name}.crt`);
  const extPath = join(ca.dir, `${name}.ext`);
  writeFileSync(extPath, "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n");
  // genpkey writes PKCS#8, which every client (Go, Node) reads.
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyPath], ca.dir);
  openssl(["req", "-new", "-key", keyPath, "-subj", subject, "-out", csrPath], ca.dir);
  const sign = ["x509", "-req", "-in", csrPath, "-CA", ca.certPath, "-CAkey", ca.keyPath, "-CAcreateserial"];
  openssl([...sign, "-days", "2", "-sha256", "-extfile", extPath, "-out", certPath], ca.dir);
  return { certPath, keyPath };
}

/** A GET over HTTPS with the given client credentials; resolves with status and body. */
function httpsGet(url: string, tls: RequestOptions, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, method: "GET", timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

function adminKubeConfig(server: string, caPem: string, certPem: string, keyPem: string): KubeConfig {
  const kc = new KubeConfig();
  const b64 = (text: string): string => Buffer.from(text).toString("base64");
  kc.loadFromOptions({
    clusters: [{ name: "test", server, caData: b64(caPem), skipTLSVerify: false }],
    users: [{ name: "admin", certData: b64(certPem), keyData: b64(keyPem) }],
    contexts: [{ name: "admin@test", cluster: "test", user: "admin" }],
    currentContext: "admin@test",
  });
  return kc;
}

function tokenKubeConfig(server: string, caPem: string, token: string, user: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "test", server, caData: Buffer.from(caPem).toString("base64"), skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: `${user}@test`, cluster: "test", user }],
    currentContext: `${user}@test`,
  });
  return kc;
}

interface Pki {
  readonly dir: string;
  readonly ca: CertificateAuthority;
  readonly servingCertPath: string;
  readonly servingKeyPath: string;
  readonly adminCertPem: string;
  readonly adminKeyPem: string;
  readonly saPublicPath: string;
  readonly saPrivatePath: string;
  readonly saPublicKeyPem: string;
}

/** The CA, serving and admin certificates, and the service-account signing key pair. */
function makePki(dir: string, name: string, servingIps: readonly string[]): Pki {
  const ca = createCertificateAuthority(dir, `${name} test CA`);
  const serving = issueCertificate(
    ca,
    "kube-apiserver",
    ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    servingIps,
  );
  const admin = issueClientCertificate(ca, "admin", "/O=system:masters/CN=admin");
  const saKeys = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const saPublicPath = join(dir, "sa.pub");
  const saPrivatePath = join(dir, "sa.key");
  writeFileSync(saPublicPath, saKeys.publicKey);
  writeFileSync(saPrivatePath, saKeys.privateKey, { mode: 0o600 });
  return {
    dir,
    ca,
    servingCertPath: serving.certPath,
    servingKeyPath: serving.keyPath,
    adminCertPem: readFileSync(admin.certPath, "utf8"),
    adminKeyPem: readFileSync(admin.keyPath, "utf8"),
    saPublicPath,
    saPrivatePath,
    saPublicKeyPem: saKeys.publicKey,
  };
}

function apiServerArgs(
  pki: Pki,
  etcdUrl: string,
  port: number,
  apiAudiences: readonly string[],
  kubelets: boolean,
  extra: readonly string[],
): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${port}`,
    // Where it would write a self-signed pair if no cert were given; keep it in our scratch.
    `--cert-dir=${pki.dir}`,
    `--tls-cert-file=${pki.servingCertPath}`,
    `--tls-private-key-file=${pki.servingKeyPath}`,
    `--client-ca-file=${pki.ca.certPath}`,
    // A list flag: a second occurrence would append (and repeat RBAC), so it is set once here.
    `--authorization-mode=${kubelets ? "Node,RBAC" : "RBAC"}`,
    `--service-account-issuer=${serviceAccountIssuer}`,
    `--service-account-key-file=${pki.saPublicPath}`,
    `--service-account-signing-key-file=${pki.saPrivatePath}`,
    `--api-audiences=${apiAudiences.join(",")}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    // A single apiserver per test: no `kubernetes` endpoints to reconcile between peers.
    "--endpoint-reconciler-type=none",
    // API Priority and Fairness only queues requests; off, it saves a little start-up work.
    "--enable-priority-and-fairness=false",
    "--profiling=false",
    "--v=1",
    ...extra,
  ];
}

/** Ports are chosen, then bound by the servers: a lost race is retried with new ports. */
const attempts = 3;

export async function startKube(options: KubeOptions = {}): Promise<KubeHandle> {
  const name = options.name ?? "kube";
  const timeoutMs = options.timeoutMs ?? 90_000;
  // Like a real cluster: the API server accepts only its own audience, so a token minted for
  // OpenBao (audience openbao-internal) cannot be replayed against the Kubernetes API.
  const apiAudiences = options.apiAudiences ?? [serviceAccountIssuer];
  const logDir = options.logDir === undefined ? {} : { logDir: options.logDir };
  const began = Date.now();
  const pkiDir = scratchDir(`${name}-pki`);
  let pki: Pki | undefined;

  for (let attempt = 1; ; attempt++) {
    // etcd, then kube-apiserver right away (it retries its etcd connection while etcd
    // starts); the keys are made while etcd starts on the first attempt.
    const etcd = await launchEtcd({ name: `${name}-etcd`, timeoutMs, ...logDir });
    let apiServer: ManagedProcess | undefined;
    try {
      pki ??= makePki(pkiDir, name, options.servingIps ?? []);
      const port = await freePort();
      const server = `https://127.0.0.1:${port}`;
      const proc = startProcess({
        name: `${name}-apiserver`,
        command: kubeApiServerBinary(),
        args: apiServerArgs(pki, etcd.clientUrl, port, apiAudiences, options.kubelets === true, [
          ...(options.kubelets
            ? [
                `--kubelet-client-certificate=${join(pki.dir, "admin.crt")}`,
                `--kubelet-client-key=${join(pki.dir, "admin.key")}`,
                "--kubelet-preferred-address-types=InternalIP",
              ]
            : []),
          ...(options.extraApiServerArgs ?? []),
        ]),
        ...logDir,
      });
      apiServer = proc;
      const tls: RequestOptions = { ca: pki.ca.certPem, cert: pki.adminCertPem, key: pki.adminKeyPem };
      await etcd.ready;
      const etcdMs = Date.now() - began;
      await waitFor(
        async () => {
          // /readyz covers etcd, informer sync and every post-start hook (RBAC bootstrap roles,
          // system namespaces, priority classes); the default namespace is checked on top.
          const ready = await httpsGet(`${server}/readyz`, tls);
          if (ready.status !== 200) throw new Error(`/readyz ${ready.status}: ${ready.body.slice(0, 2000)}`);
          const ns = await httpsGet(`${server}/api/v1/namespaces/default`, tls);
          if (ns.status !== 200) throw new Error(`default namespace: ${ns.status} ${ns.body.slice(0, 500)}`);
          return true;
        },
        { what: `${proc.name} /readyz`, timeoutMs, intervalMs: 100, processes: [proc, etcd.process] },
      );
      const apiServerMs = Date.now() - began - etcdMs;
      return makeHandle(server, pki, etcd, proc, apiAudiences, { etcdMs, apiServerMs, totalMs: Date.now() - began });
    } catch (err) {
      await apiServer?.stop();
      await etcd.stop();
      const raced = lostPortRace(etcd.process) || (apiServer !== undefined && lostPortRace(apiServer));
      if (attempt >= attempts || !raced) {
        removeScratch(pkiDir);
        throw err;
      }
    }
  }
}

function makeHandle(
  server: string,
  pki: Pki,
  etcd: EtcdHandle,
  apiServer: ManagedProcess,
  apiAudiences: readonly string[],
  startup: KubeHandle["startup"],
): KubeHandle {
  const kubeConfig = adminKubeConfig(server, pki.ca.certPem, pki.adminCertPem, pki.adminKeyPem);
  const kubeConfigPath = join(pki.dir, "admin.kubeconfig");
  writeFileSync(kubeConfigPath, kubeConfig.exportConfig(), { mode: 0o600 });
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const createServiceAccount = async (namespace: string, name: string): Promise<void> => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  };
  return {
    server,
    caPem: pki.ca.certPem,
    ca: pki.ca,
    admin: { certPem: pki.adminCertPem, keyPem: pki.adminKeyPem },
    kubeConfig,
    kubeConfigPath,
    issuer: serviceAccountIssuer,
    apiAudiences,
    serviceAccountPublicKeyPem: pki.saPublicKeyPem,
    etcd,
    apiServer,
    startup,
    kubeConfigForToken: (token, user = "token-user") => tokenKubeConfig(server, pki.ca.certPem, token, user),
    async createNamespace(name, labels) {
      await core.createNamespace({ body: { metadata: { name, ...(labels ? { labels: { ...labels } } : {}) } } });
      await createServiceAccount(name, "default");
    },
    createServiceAccount,
    requestToken: (namespace, serviceAccount, audience = openbaoAudience, expirationSeconds = 3600) =>
      requestToken(kubeConfig, namespace, serviceAccount, audience, expirationSeconds),
    installCrds: (crds) => installCrds(kubeConfig, crds),
    async stop() {
      await apiServer.stop();
      await etcd.stop();
      removeScratch(pki.dir);
    },
  };
}

/** TokenRequest (`POST …/serviceaccounts/<name>/token`) for one audience. */
export async function requestToken(
  kc: KubeConfig,
  namespace: string,
  serviceAccount: string,
  audience: string = openbaoAudience,
  expirationSeconds = 3600,
): Promise<TokenResponse> {
  const core = kc.makeApiClient(CoreV1Api);
  const response = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [audience], expirationSeconds } },
  });
  const token = response.status?.token;
  const expiration = response.status?.expirationTimestamp;
  if (!token || !expiration) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
  return { token, expirationTimestamp: new Date(expiration) };
}

/** A raw GET against the cluster of `kc`, with its credentials. */
/**
 * POSTs a JSON body to `path` (with its query) as the admin; resolves with the status and the
 * body whatever the status, so tests can assert on rejections (422, 400) as well.
 */
export function kubePost(
  kube: Pick<KubeHandle, "server" | "caPem" | "admin">,
  path: string,
  body: unknown,
): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, kube.server),
      {
        method: "POST",
        ca: kube.caPem,
        cert: kube.admin.certPem,
        key: kube.admin.keyPem,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

export async function kubeGet(kc: KubeConfig, path: string): Promise<{ status: number; body: string }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("kubeconfig has no current cluster");
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return httpsGet(`${cluster.server}${path}`, options);
}

/**
 * The non-empty documents of a YAML stream. (`loadAllYaml` of @kubernetes/client-node 2.0
 * throws on an empty document, e.g. a leading `---` or a trailing one.)
 */
function yamlDocuments(text: string): string[] {
  return text
    .split(/^---[ \t]*(?:#.*)?$/m)
    .filter((doc) => doc.split("\n").some((line) => line.trim() !== "" && !line.trim().startsWith("#")));
}

function isCrd(value: unknown): value is V1CustomResourceDefinition {
  if (typeof value !== "object" || value === null) return false;
  const object = value as { apiVersion?: unknown; kind?: unknown };
  return object.kind === "CustomResourceDefinition" && object.apiVersion === "apiextensions.k8s.io/v1";
}

function statusCode(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "number" ? code : undefined;
  }
  return undefined;
}

/**
 * The 2 s of customresource_handler.go (measured from lastTransitionTime, which the server
 * too only knows to the second), plus a margin.
 */
const createHoldMs = 2000 + 50;

/**
 * Creates (or replaces) each CustomResourceDefinition and waits until it is Established,
 * in discovery, and a list of its resources succeeds at every served version, so a test can
 * use it at once. Each item is YAML or JSON text (several documents allowed, e.g. a file of
 * deploy/crds) or a typed `V1CustomResourceDefinition` as the client models it (`_enum`,
 * `x_kubernetes_preserve_unknown_fields`): a plain manifest object would lose those fields to
 * the client's serializer, so pass plain manifests as text.
 */
export async function installCrds(
  kc: KubeConfig,
  crds: readonly (string | V1CustomResourceDefinition)[],
  timeoutMs = 30_000,
): Promise<void> {
  const definitions: V1CustomResourceDefinition[] = [];
  for (const item of crds) {
    const objects: unknown[] = typeof item === "string" ? yamlDocuments(item).map((doc) => loadYaml(doc)) : [item];
    for (const object of objects) {
      if (object === null || object === undefined) continue; // empty YAML document
      if (!isCrd(object)) throw new Error(`installCrds: not an apiextensions.k8s.io/v1 CustomResourceDefinition`);
      definitions.push(object);
    }
  }
  const extensions = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const crd of definitions) {
    const name = crd.metadata?.name;
    if (!name) throw new Error("installCrds: a CustomResourceDefinition without metadata.name");
    try {
      await extensions.createCustomResourceDefinition({ body: crd });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
      const existing = await extensions.readCustomResourceDefinition({ name });
      await extensions.replaceCustomResourceDefinition({
        name,
        body: { ...crd, metadata: { ...crd.metadata, resourceVersion: existing.metadata?.resourceVersion } },
      });
    }
  }
  await Promise.all(
    definitions.map(async (crd) => {
      const name = crd.metadata?.name ?? "";
      const establishedAt = await waitFor(
        async () => {
          const current = await extensions.readCustomResourceDefinition({ name });
          const established = current.status?.conditions?.find((c) => c.type === "Established" && c.status === "True");
          return established ? new Date(established.lastTransitionTime ?? 0) : undefined;
        },
        { what: `CRD ${name} Established`, timeoutMs, intervalMs: 50 },
      );
      const { group, names } = crd.spec;
      const served = crd.spec.versions.filter((v) => v.served).map((v) => v.name);
      for (const version of served) {
        await waitFor(
          async () => {
            // Discovery first (clients that resolve kinds through it, like KubernetesObjectApi),
            // then a real list of the resource.
            const discovery = await kubeGet(kc, `/apis/${group}/${version}`);
            if (discovery.status !== 200) return false;
            const list = JSON.parse(discovery.body) as { resources?: { name?: string }[] };
            if (!list.resources?.some((r) => r.name === names.plural)) return false;
            await custom.listClusterCustomObject({ group, version, plural: names.plural });
            return true;
          },
          { what: `${crd.spec.names.plural}.${crd.spec.group}/${version} served`, timeoutMs, intervalMs: 50 },
        );
      }
      // kube-apiserver holds every create of a custom resource for 2 s while its CRD has been
      // Established for less than 2 s (customresource_handler.go, for HA peers to catch up).
      // Spend that time here, once, so the caller's first create is not mysteriously slow.
      const settleMs = establishedAt.getTime() + createHoldMs - Date.now();
      if (settleMs > 0) await sleep(settleMs);
    }),
  );
}
