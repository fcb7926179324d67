/**
 * A real OpenBao cluster for tests: 1 or 3 `bao server` processes on 127.0.0.1 (or another
 * host address, such as the CNI bridge gateway Pods of the `node` tier reach) with
 * Integrated Storage (Raft), TLS from a CA made for the run, initialised and unsealed,
 * KV v2 at `secret/`, JWT auth at `jwt/`, and the `backup` / `restore` policies and roles
 * the product expects (bound to audience `openbao-internal` and to a namespace +
 * ServiceAccount name). Followers join through `retry_join`.
 *
 * With `seal`, every node auto-unseals through another OpenBao's Transit engine
 * (test/servers/transit.ts): the cluster is initialised with one recovery key instead of an
 * unseal key, and nodes unseal themselves when they start.
 */
import { generateKeyPairSync } from "node:crypto";
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serverBinary } from "./catalog.ts";
import { httpsJson, type JsonResponse } from "./https-json.ts";
import { defaultHost, freePort, hostPort } from "./ports.ts";
import {
  type ManagedProcess,
  ProcessExitedError,
  removeScratch,
  scratchDir,
  startProcess,
  waitFor,
} from "./process.ts";
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from "./tls.ts";

export const backupPolicy = `path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}\n`;
export const restorePolicy = [
  `path "sys/storage/raft/snapshot" {\n  capabilities = ["update"]\n}`,
  `path "sys/storage/raft/snapshot-force" {\n  capabilities = ["update"]\n}`,
].join("\n");

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

export interface OpenBaoOptions {
  readonly nodes?: 1 | 3;
  /**
   * The host address every node listens on (API and cluster ports), advertises and has in
   * its certificate; 127.0.0.1 by default.
   */
  readonly host?: string;
  /** Public key(s) that sign the JWTs to accept (the kube-apiserver's SA key); one is generated otherwise. */
  readonly jwtValidationPubkeys?: readonly string[];
  /** `bound_issuer` for the JWT auth config; unset means any issuer. */
  readonly jwtIssuer?: string;
  readonly audience?: string;
  readonly backupServiceAccount?: ServiceAccountRef;
  readonly restoreServiceAccount?: ServiceAccountRef;
  /** Auto-unseal through this Transit key instead of a Shamir unseal key. */
  readonly seal?: TransitSeal;
}

/** A Transit auto-unseal: another OpenBao's address, a token for it, the key and its mount. */
export interface TransitSeal {
  readonly address: string;
  readonly token: string;
  readonly keyName: string;
  readonly mountPath: string;
  /** CA of the Transit server's TLS. */
  readonly caPem: string;
}

/** The `seal "transit"` stanza of a server configuration; `caPath` is where `seal.caPem` was written. */
export function transitSealStanza(seal: TransitSeal, caPath: string): string {
  return `
seal "transit" {
  address = "${seal.address}"
  token = "${seal.token}"
  key_name = "${seal.keyName}"
  mount_path = "${seal.mountPath}"
  tls_ca_cert = "${caPath}"
}
`;
}

export interface OpenBaoNode {
  readonly index: number;
  readonly nodeId: string;
  /** The host address the node listens on and advertises. */
  readonly host: string;
  /** `https://host:apiPort`, the address clients (and the other nodes) use. */
  readonly address: string;
  readonly apiPort: number;
  readonly clusterPort: number;
  readonly configPath: string;
  process: ManagedProcess;
}

export function openbaoBinary(): string {
  return process.env.OPENBAO_BACKUP_BAO_BIN ?? serverBinary("openbao");
}

export class OpenBaoCluster {
  readonly nodes: OpenBaoNode[];
  readonly ca: CertificateAuthority;
  readonly dir: string;
  rootToken = "";
  unsealKey = "";
  /** With a Transit seal: the recovery key (there is no unseal key). */
  recoveryKey = "";
  /** Nodes unseal themselves (a Transit seal): `unseal` only waits for it. */
  readonly autoUnseal: boolean;
  /** Set by `stop` and `sealAll`: a node that crashes then is not unsealed again. */
  #stopping = false;
  #sealing = false;
  #crashRestarts = 0;

  /** How often a node crashed with OpenBao's known autopilot race and was restarted. */
  get crashRestarts(): number {
    return this.#crashRestarts;
  }

  constructor(nodes: OpenBaoNode[], ca: CertificateAuthority, dir: string, options: { autoUnseal?: boolean } = {}) {
    this.nodes = nodes;
    this.ca = ca;
    this.dir = dir;
    this.autoUnseal = options.autoUnseal ?? false;
  }

  get caPem(): string {
    return this.ca.certPem;
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  get processes(): ManagedProcess[] {
    return this.nodes.map((n) => n.process);
  }

  /** A JSON API call against one node (the first by default), with the root token. */
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options: { node?: number; token?: string } = {},
  ): Promise<JsonResponse<T>> {
    const node = this.nodes[options.node ?? 0];
    if (!node) throw new Error(`no node ${options.node}`);
    const token = options.token ?? this.rootToken;
    return httpsJson<T>(`${node.address}/v1/${path}`, {
      method,
      body,
      caPem: this.caPem,
      headers: token ? { "x-vault-token": token } : {},
    });
  }

  /** Like `api` but throws on a non-2xx answer, with OpenBao's error text. */
  async call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options: { node?: number; token?: string } = {},
  ): Promise<T> {
    const res = await this.api<T>(method, path, body, options);
    if (res.status < 200 || res.status >= 300) {
      throw new Error(
        `OpenBao ${method} ${path} on node ${options.node ?? 0} → ${res.status}: ${res.text.slice(0, 500)}`,
      );
    }
    return res.body;
  }

  /** Index of the current active node (the Raft leader), as the nodes themselves report it. */
  async leaderIndex(): Promise<number> {
    return waitFor(
      async () => {
        for (const node of this.nodes) {
          if (!node.process.running) continue;
          const res = await httpsJson<{ is_self?: boolean; leader_address?: string }>(`${node.address}/v1/sys/leader`, {
            caPem: this.caPem,
            timeoutMs: 2000,
          }).catch(() => undefined);
          if (res?.status === 200 && res.body.is_self) return node.index;
        }
        return undefined;
      },
      { what: "an active OpenBao node", timeoutMs: 30_000, processes: [] },
    );
  }

  async writeSecret(path: string, data: Record<string, string>, node = 0): Promise<void> {
    await this.call("POST", `secret/data/${path}`, { data }, { node });
  }

  /** The secret's current data, or undefined when it does not exist (or was deleted). */
  async readSecret(path: string, node = 0): Promise<Record<string, string> | undefined> {
    const res = await this.api<{ data?: { data?: Record<string, string> | null } }>(
      "GET",
      `secret/data/${path}`,
      undefined,
      {
        node,
      },
    );
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`read secret/${path} on node ${node} → ${res.status}: ${res.text}`);
    return res.body.data?.data ?? undefined;
  }

  /** Unseals one node with the cluster's key (auto-unseal: lets it) and waits until it reports unsealed. */
  async unseal(index: number): Promise<void> {
    const node = this.nodes[index];
    if (!node) throw new Error(`no node ${index}`);
    if (this.autoUnseal) {
      await waitFor(
        async () => {
          const res = await httpsJson<{ sealed?: boolean }>(`${node.address}/v1/sys/seal-status`, {
            caPem: this.caPem,
            timeoutMs: 5000,
          });
          return res.status === 200 && res.body.sealed === false;
        },
        { what: `${node.nodeId} auto-unsealed`, timeoutMs: 60_000, processes: [node.process] },
      );
      return;
    }
    await waitFor(
      async () => {
        const res = await httpsJson<{ sealed?: boolean }>(`${node.address}/v1/sys/unseal`, {
          method: "POST",
          body: { key: this.unsealKey },
          caPem: this.caPem,
          timeoutMs: 5000,
        });
        return res.status === 200 && res.body.sealed === false;
      },
      { what: `${node.nodeId} unsealed`, timeoutMs: 60_000, processes: [node.process] },
    );
  }

  /** Whether a node reports itself sealed (false while it does not answer). */
  async isSealed(index: number): Promise<boolean> {
    const node = this.nodes[index];
    if (!node) throw new Error(`no node ${index}`);
    const res = await httpsJson<{ sealed?: boolean }>(`${node.address}/v1/sys/seal-status`, {
      caPem: this.caPem,
      timeoutMs: 5000,
    }).catch(() => undefined);
    return res?.status === 200 && res.body.sealed === true;
  }

  /**
   * Seals the whole cluster: the active node through `sys/seal` (what `bao operator seal`
   * does; OpenBao refuses it on a standby), every other node by a restart that leaves it
   * sealed, as a Pod restarted without auto-unseal comes up.
   */
  async sealAll(): Promise<void> {
    this.#sealing = true;
    const leader = await this.leaderIndex();
    await this.call("PUT", "sys/seal", undefined, { node: leader });
    for (const node of this.nodes) {
      if (node.index === leader) continue;
      await node.process.stop();
      this.relaunch(node);
      await waitForListener(node, this.caPem);
    }
    for (const node of this.nodes) {
      await waitFor(() => this.isSealed(node.index), {
        what: `${node.nodeId} sealed`,
        timeoutMs: 30_000,
        processes: [node.process],
      });
    }
  }

  /** Unseals every node and waits until Raft is healthy again. */
  async unsealAll(): Promise<void> {
    this.#sealing = false;
    for (const node of this.nodes) await this.unseal(node.index);
    await this.waitHealthy();
  }

  /** Kills one node (SIGKILL by default), e.g. to fail a leader mid-stream. */
  kill(index: number, signal: NodeJS.Signals = "SIGKILL"): void {
    this.nodes[index]?.process.kill(signal);
  }

  /** Starts a stopped node again from its data and unseals it. */
  async restart(index: number): Promise<void> {
    const node = this.nodes[index];
    if (!node) throw new Error(`no node ${index}`);
    await node.process.stop();
    this.relaunch(node);
    await waitForListener(node, this.caPem);
    await this.unseal(index);
  }

  /** Starts `node`'s process from its data, watched for OpenBao's known crash. */
  relaunch(node: OpenBaoNode): void {
    const logOffset = fileSize(join(this.dir, "logs", `${processName(node)}.log`));
    const proc = launch(node, this.dir);
    node.process = proc;
    void proc.exited
      .then(async () => {
        if (this.#stopping || node.process !== proc) return;
        const crash = readFrom(proc.logPath, logOffset);
        if (!autopilotShutdownPanic.test(crash)) return;
        // OpenBao v2.4.0 stops Raft autopilot without waiting for its state updater, which can
        // then dereference the cleared state (hashicorp/vault#27726 fixed it there; the pinned
        // OpenBao lacks the fix). It strikes at random when a leader steps down, as a restore
        // makes it. A StatefulSet's kubelet restarts the container: so does this fixture, and
        // says so, rather than leave every later test of the file waiting on a dead member.
        process.stdout.write(
          `# ${proc.name} crashed with OpenBao's autopilot shutdown race (hashicorp/vault#27726, not fixed in the pinned OpenBao): restarted as a kubelet would\n`,
        );
        this.#crashRestarts++;
        this.relaunch(node);
        await waitForListener(node, this.caPem);
        if (!this.#sealing && !this.#stopping) await this.unseal(node.index);
      })
      .catch((err: unknown) => {
        process.stdout.write(`# restarting ${proc.name} after its crash failed: ${String(err)}\n`);
      });
  }

  /** Waits until every running node is unsealed and Raft has all of them as healthy voters. */
  async waitHealthy(): Promise<void> {
    await waitFor(
      async () => {
        const leader = await this.leaderIndex();
        const res = await this.api<{ data?: { healthy?: boolean; voters?: string[] } }>(
          "GET",
          "sys/storage/raft/autopilot/state",
          undefined,
          { node: leader },
        );
        const voters = res.body.data?.voters ?? [];
        return res.status === 200 && res.body.data?.healthy === true && voters.length === this.nodes.length;
      },
      { what: `${this.nodes.length} healthy Raft voters`, timeoutMs: 90_000, processes: this.processes },
    );
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.nodes.map((n) => n.process.stop()));
    removeScratch(this.dir);
  }
}

function nodeConfig(
  node: OpenBaoNode,
  dir: string,
  ca: CertificateAuthority,
  leader: OpenBaoNode | undefined,
  seal = "",
): string {
  const cert = join(dir, "tls", `${node.nodeId}.crt`);
  const key = join(dir, "tls", `${node.nodeId}.key`);
  const join_ = leader
    ? `\n  retry_join {\n    leader_api_addr = "${leader.address}"\n    leader_ca_cert_file = "${ca.certPath}"\n  }`
    : "";
  return `
storage "raft" {
  path = "${join(dir, node.nodeId)}"
  node_id = "${node.nodeId}"
  performance_multiplier = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval = "1s"${join_}
}
listener "tcp" {
  address = "${hostPort(node.host, node.apiPort)}"
  cluster_address = "${hostPort(node.host, node.clusterPort)}"
  tls_cert_file = "${cert}"
  tls_key_file = "${key}"
}
api_addr = "${node.address}"
cluster_addr = "https://${hostPort(node.host, node.clusterPort)}"
disable_mlock = true
ui = false
log_level = "info"
${seal}`;
}

/** The Go panic of the autopilot shutdown race: a nil state read by `Autopilot.GetState`. */
const autopilotShutdownPanic = /panic: runtime error: invalid memory address[\s\S]*raft-autopilot[^\n]*GetState/;

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** What a log holds after `offset` (a restarted node appends to the same file). */
function readFrom(path: string, offset: number): string {
  const fd = openSync(path, "r");
  try {
    const length = Math.max(0, fileSize(path) - offset);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, offset);
    return buffer.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function processName(node: OpenBaoNode): string {
  return `openbao-${node.index}`;
}

function launch(node: OpenBaoNode, dir: string): ManagedProcess {
  return startProcess({
    name: processName(node),
    command: openbaoBinary(),
    args: ["server", `-config=${node.configPath}`],
    env: { PATH: process.env.PATH ?? "", HOME: dir },
    logDir: join(dir, "logs"),
  });
}

/** A follower that did not join the Raft cluster and unseal: the start is tried once more. */
class FollowerJoinError extends Error {
  readonly logTail: string;
  constructor(node: OpenBaoNode, cause: unknown) {
    super(`${processName(node)} did not join and unseal: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.logTail = node.process.logTail(2000);
  }
}

async function waitForListener(node: OpenBaoNode, caPem: string): Promise<void> {
  await waitFor(
    async () => {
      const res = await httpsJson(`${node.address}/v1/sys/seal-status`, { caPem, timeoutMs: 2000 });
      return res.status === 200;
    },
    { what: `${node.nodeId} listening`, timeoutMs: 30_000, processes: [node.process] },
  );
}

export async function startOpenBao(options: OpenBaoOptions = {}): Promise<OpenBaoCluster> {
  try {
    return await startOpenBaoOnce(options);
  } catch (err) {
    // A node that dies before it listens has met the machine, not the product: a port taken
    // between choosing and binding it, or a signal (once in CI, with nothing in its log). The
    // cluster is started once more from scratch, on new ports; a second failure is reported.
    // So is a follower that never joins (its log is printed, to say why next time).
    if (err instanceof FollowerJoinError) {
      process.stdout.write(`# ${err.message.split("\n")[0]}: starting OpenBao again\n${err.logTail}\n`);
      return startOpenBaoOnce(options);
    }
    if (!(err instanceof ProcessExitedError) || !err.message.includes("listening")) throw err;
    const tail = err.process.logTail(400).trim().split("\n").at(-1) ?? "";
    process.stdout.write(
      `# ${err.process.name} exited (${err.process.exitReason}) before listening (${tail}): starting OpenBao again\n`,
    );
    return startOpenBaoOnce(options);
  }
}

async function startOpenBaoOnce(options: OpenBaoOptions): Promise<OpenBaoCluster> {
  const count = options.nodes ?? 1;
  const host = options.host ?? defaultHost;
  const dir = scratchDir("openbao");
  mkdirSync(join(dir, "tls"));
  mkdirSync(join(dir, "logs"));
  const ca = createCertificateAuthority(join(dir, "tls"), "openbao test CA");

  const nodes: OpenBaoNode[] = [];
  for (let index = 0; index < count; index++) {
    const apiPort = await freePort(host);
    const clusterPort = await freePort(host);
    const nodeId = `node${index}`;
    issueCertificate(ca, nodeId, [], [host]);
    mkdirSync(join(dir, nodeId));
    const node: Omit<OpenBaoNode, "process"> = {
      index,
      nodeId,
      host,
      address: `https://${hostPort(host, apiPort)}`,
      apiPort,
      clusterPort,
      configPath: join(dir, `${nodeId}.hcl`),
    };
    nodes.push(node as OpenBaoNode);
  }
  let seal = "";
  if (options.seal) {
    const caPath = join(dir, "tls", "transit-ca.crt");
    writeFileSync(caPath, options.seal.caPem);
    seal = transitSealStanza(options.seal, caPath);
  }
  const cluster = new OpenBaoCluster(nodes, ca, dir, { autoUnseal: options.seal !== undefined });
  for (const node of nodes) {
    writeFileSync(node.configPath, nodeConfig(node, dir, ca, node.index === 0 ? undefined : nodes[0], seal));
    cluster.relaunch(node);
  }
  try {
    await Promise.all(nodes.map((n) => waitForListener(n, ca.certPem)));
    const init = await cluster.call<{ keys_base64: string[]; recovery_keys_base64?: string[]; root_token: string }>(
      "POST",
      "sys/init",
      options.seal ? { recovery_shares: 1, recovery_threshold: 1 } : { secret_shares: 1, secret_threshold: 1 },
      { token: "" },
    );
    cluster.unsealKey = init.keys_base64[0] ?? "";
    cluster.recoveryKey = init.recovery_keys_base64?.[0] ?? "";
    cluster.rootToken = init.root_token;
    await cluster.unseal(0);
    await cluster.leaderIndex();
    // Autopilot promotes a joined node to voter after `server_stabilization_time` (10 s by
    // default); a test cluster on loopback is stable at once.
    await waitFor(
      async () =>
        (await cluster.api("POST", "sys/storage/raft/autopilot/configuration", { server_stabilization_time: "1s" }))
          .status < 300,
      { what: "autopilot configuration", timeoutMs: 30_000, processes: cluster.processes },
    );
    // Followers complete their retry_join when unsealed (the join challenge needs the key), one
    // at a time: with two joining at once, one once never joined within a minute (CI, loaded).
    for (const node of nodes.slice(1)) {
      await cluster.unseal(node.index).catch((err: unknown) => {
        throw new FollowerJoinError(node, err);
      });
    }
    await cluster.waitHealthy();
    await configure(cluster, options);
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  return cluster;
}

async function configure(cluster: OpenBaoCluster, options: OpenBaoOptions): Promise<void> {
  const audience = options.audience ?? "openbao-internal";
  const pubkeys = options.jwtValidationPubkeys ?? [
    generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }).toString(),
  ];
  await cluster.call("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
  await cluster.call("POST", "sys/auth/jwt", { type: "jwt" });
  await cluster.call("POST", "auth/jwt/config", {
    jwt_validation_pubkeys: pubkeys,
    ...(options.jwtIssuer ? { bound_issuer: options.jwtIssuer } : {}),
  });
  await cluster.call("POST", "sys/policies/acl/backup", { policy: backupPolicy });
  await cluster.call("POST", "sys/policies/acl/restore", { policy: restorePolicy });
  const roles = {
    backup: options.backupServiceAccount ?? { namespace: "default", name: "backup" },
    restore: options.restoreServiceAccount ?? { namespace: "default", name: "restore" },
  };
  for (const [role, sa] of Object.entries(roles)) {
    // Projected tokens nest the namespace and ServiceAccount under "kubernetes.io", so the
    // claims are bound with JSON pointers; a bare "kubernetes.io/namespace" key would look
    // for a top-level claim of that name and never match.
    await cluster.call("POST", `auth/jwt/role/${role}`, {
      role_type: "jwt",
      user_claim: "sub",
      bound_audiences: [audience],
      bound_claims: {
        "/kubernetes.io/namespace": sa.namespace,
        "/kubernetes.io/serviceaccount/name": sa.name,
      },
      token_policies: [role],
      token_ttl: "1h",
    });
  }
}
