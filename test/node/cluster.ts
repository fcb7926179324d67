/**
 * A real single-node Kubernetes for the `node` tier: the suite's own etcd + kube-apiserver
 * (test/servers/kube.ts, with Node authorization and a serving certificate for the Service
 * IP), kube-controller-manager (Job, TTL, garbage-collector, ServiceAccount, namespace
 * controllers — all real), kube-scheduler, a kubelet, containerd + runc, and a CNI bridge.
 * Images are imported from OCI archives built from the checkout (image.ts): no registry.
 *
 * One node per test file, never per test (≈ 15 s to start, most of it importing images). The
 * bridge's gateway is a host address on the Pods' own segment: host servers bound to it
 * (OpenBao, MinIO, fake-gcs-server, Azurite) are reached by Pods directly, no NAT.
 *
 * The Kubernetes API from inside a Pod: the kubelet gives every container
 * KUBERNETES_SERVICE_HOST=10.0.0.1 (the `kubernetes` Service). A real cluster makes that
 * address reach the API server with kube-proxy; in its IPVS mode the Service IP is a host
 * address (on `kube-ipvs0`) and the kernel forwards the connection. Here the Service IP is an
 * address of the bridge and a small L4 forwarder carries it to the API server: the same shape,
 * without kube-proxy's iptables/IPVS rules, which would need the host firewall (not ours to
 * change) and kernel IPVS support this VM does not have.
 *
 * Names: a small cluster DNS (dns.ts) on the gateway answers what CoreDNS would — Services
 * and the per-Pod names of StatefulSets behind headless Services — and refuses everything
 * else, so no Pod query leaves the machine.
 *
 * Host changes are journalled (host.ts) and undone by `stop`, by the exit hooks on SIGINT or
 * SIGTERM, and by the next start if a run was killed outright.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { serverBinary } from "../servers/catalog.ts";
import { issueClientCertificate, type KubeHandle, startKube } from "../servers/kube.ts";
import { type ManagedProcess, startProcess, waitFor } from "../servers/process.ts";
import { type ClusterDns, startClusterDns } from "./dns.ts";
import {
  beginJournal,
  bridgeName,
  ip,
  type Journal,
  journalPid,
  nodeStateDir,
  undoHost,
  undoStaleNode,
} from "./host.ts";
import { cniBinDir, containerdBinary, ctrBinary } from "./runtime.ts";

export { bridgeName, nodeStateDir } from "./host.ts";
export const nodeName = "node-test";
/** The bridge gateway = the node's IP = the address host servers bind for Pods. */
export const gatewayIp = "10.217.0.1";
const podSubnet = "10.217.0.0/24";
/** kube.ts serves 10.0.0.0/24: the `kubernetes` Service takes its first address. */
export const apiServiceIp = "10.0.0.1";
const kubeletPort = 10250;
const clusterDomain = "cluster.local";

export interface NodeOptions {
  /** OCI archives to import into containerd before the kubelet starts. */
  readonly images: readonly string[];
  /** Progress lines (the tier prints them: a node takes a while to start). */
  readonly say?: (line: string) => void;
}

export interface NodeHandle {
  readonly kube: KubeHandle;
  readonly gatewayIp: string;
  readonly nodeName: string;
  readonly stateDir: string;
  /** `ctr -n k8s.io …` against this node's containerd. */
  ctr(args: readonly string[]): string;
  /** Logs of the node's programs (kubelet, containerd, controllers), for failure reports. */
  readonly processes: readonly ManagedProcess[];
  stop(): Promise<void>;
}

function write(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

function kubeconfigFor(kube: KubeHandle, dir: string, name: string, subject: string): string {
  const client = issueClientCertificate(kube.ca, name, subject);
  return write(
    join(dir, `${name}.kubeconfig`),
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: node, cluster: {server: "${kube.server}", certificate-authority: "${kube.ca.certPath}"}}]`,
      `users: [{name: ${name}, user: {client-certificate: "${client.certPath}", client-key: "${client.keyPath}"}}]`,
      `contexts: [{name: ${name}, context: {cluster: node, user: ${name}}}]`,
      `current-context: ${name}`,
      "",
    ].join("\n"),
  );
}

function containerdConfig(dir: string, socket: string, cniConfDir: string): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
[grpc]
  address = "${socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/openbao-backup/pause:1"
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj (the
  # kubelet asks -998 for every sandbox) and no Pod would start. Clamp to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${cniBinDir}"
    conf_dir = "${cniConfDir}"
`;
}

function cniConfig(dir: string): string {
  // isGateway false: the bridge address is ours (set before any Pod exists), and the plugin
  // then leaves net.ipv4.ip_forward alone — Pods reach the host, nothing is routed beyond it.
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: "node-test",
    plugins: [
      {
        type: "bridge",
        bridge: bridgeName,
        isGateway: false,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          dataDir: join(dir, "ipam"),
          ranges: [[{ subnet: podSubnet, gateway: gatewayIp }]],
          routes: [{ dst: "0.0.0.0/0", gw: gatewayIp }],
        },
      },
    ],
  });
}

function kubeletConfig(dir: string, socket: string, healthzPort: number): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host mounts cgroup v1 hierarchies; 1.36 refuses them unless told not to.
failCgroupV1: false
# containerd 1.6 cannot report its cgroup driver (no RuntimeConfig RPC): name it here.
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${socket}
address: ${gatewayIp}
port: ${kubeletPort}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${healthzPort}
authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: "${join(dir, "ca.crt")}" } }
authorization: { mode: AlwaysAllow }
podLogsDir: ${join(dir, "pod-logs")}
volumePluginDir: ${join(dir, "volume-plugins")}
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDNS: [${gatewayIp}]
clusterDomain: ${clusterDomain}
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`;
}

/** The L4 forwarder for the `kubernetes` Service IP (see the opening comment). */
async function forwardServiceIp(apiServer: string): Promise<Server> {
  const upstream = new URL(apiServer);
  // Open connections are tracked: in-cluster clients (the operator Pod) keep theirs open for
  // ever, and `close` alone would wait for them.
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.on("close", () => open.delete(client));
    const api = createConnection(Number(upstream.port), upstream.hostname);
    client.pipe(api).pipe(client);
    const close = (): void => {
      client.destroy();
      api.destroy();
    };
    client.on("error", close);
    api.on("error", close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(443, apiServiceIp, resolve);
  });
  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void) => {
    for (const socket of open) socket.destroy();
    return close(callback);
  };
  return server;
}

export async function startNode(options: NodeOptions): Promise<NodeHandle> {
  const say = options.say ?? (() => undefined);
  const began = Date.now();
  const stamp = (line: string): void => say(`[node ${((Date.now() - began) / 1000).toFixed(1)}s] ${line}`);
  if (undoStaleNode(nodeStateDir)) stamp("undid what an interrupted run had left");
  const containerdDir = join(nodeStateDir, "containerd");
  const socket = join(containerdDir, "containerd.sock");
  let journal: Journal = beginJournal(nodeStateDir, bridgeName, socket);
  for (const sub of ["containerd", "cni", "ipam", "pod-logs", "kubelet", "volume-plugins", "logs", "pki"]) {
    mkdirSync(join(nodeStateDir, sub), { recursive: true });
  }
  const logDir = join(nodeStateDir, "logs");
  const processes: ManagedProcess[] = [];
  let kube: KubeHandle | undefined;
  let forwarder: Server | undefined;
  let dns: ClusterDns | undefined;
  let stopped = false;

  const teardownSync = (): void => {
    if (stopped) return;
    stopped = true;
    forwarder?.close();
    void dns?.close();
    undoHost(journal);
  };
  // process.ts kills the servers it started on these signals; the host changes are ours.
  const onExit = (): void => teardownSync();
  process.once("exit", onExit);

  const track = (proc: ManagedProcess): ManagedProcess => {
    processes.push(proc);
    if (proc.child.pid !== undefined) journal = journalPid(journal, proc.child.pid);
    return proc;
  };

  try {
    ip(["link", "add", bridgeName, "type", "bridge"]);
    ip(["addr", "add", `${gatewayIp}/24`, "dev", bridgeName]);
    ip(["addr", "add", `${apiServiceIp}/32`, "dev", bridgeName]);
    ip(["link", "set", bridgeName, "up"]);
    write(join(nodeStateDir, "cni", "10-node-test.conflist"), cniConfig(nodeStateDir));
    stamp(`bridge ${bridgeName} ${gatewayIp}/24`);

    kube = await startKube({
      name: "node-kube",
      logDir,
      servingIps: [apiServiceIp, gatewayIp],
      kubelets: true,
    });
    const theKube = kube;
    // Journalled too: a runner killed outright must not leave the control plane behind.
    for (const pid of [theKube.apiServer.child.pid, theKube.etcd.process.child.pid]) {
      if (pid !== undefined) journal = journalPid(journal, pid);
    }
    writeFileSync(join(nodeStateDir, "ca.crt"), theKube.caPem);
    stamp(`kube-apiserver ready (${theKube.server})`);
    forwarder = await forwardServiceIp(theKube.server);
    // The cluster DNS a real cluster runs as CoreDNS: Pods resolve Services and StatefulSet
    // Pods (`openbao-0.openbao-internal.<ns>.svc`) through it (dns.ts).
    dns = await startClusterDns({ host: gatewayIp, core: theKube.kubeConfig.makeApiClient(CoreV1Api) });
    stamp(`cluster DNS on ${gatewayIp}:53 (${clusterDomain})`);

    const containerd = track(
      startProcess({
        name: "containerd",
        command: containerdBinary,
        args: [
          "--config",
          write(join(containerdDir, "config.toml"), containerdConfig(containerdDir, socket, join(nodeStateDir, "cni"))),
        ],
        logDir,
      }),
    );
    const ctr = (args: readonly string[]): string =>
      execFileSync(ctrBinary, ["--address", socket, "-n", "k8s.io", ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 16 * 1024 * 1024,
      });
    await waitFor(async () => ctr(["version"]).includes("Server"), {
      what: "containerd",
      timeoutMs: 30_000,
      processes: [containerd],
    });
    for (const archive of options.images) {
      const started = Date.now();
      ctr(["images", "import", archive]);
      stamp(`imported ${archive.split("/").pop()} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }

    const admin = kubeconfigFor(theKube, join(nodeStateDir, "pki"), "controllers", "/O=system:masters/CN=controllers");
    const common = [`--kubeconfig=${admin}`, "--leader-elect=false", "--secure-port=0", "--v=1"];
    track(
      startProcess({
        name: "kube-controller-manager",
        command: serverBinary("k8s-node", "kube-controller-manager"),
        args: [
          ...common,
          // Published as kube-root-ca.crt in every namespace: the CA Pods trust the API with.
          `--root-ca-file=${theKube.ca.certPath}`,
          "--cluster-name=node-test",
          "--use-service-account-credentials=false",
          // Finished Jobs: the TTL and garbage collectors act within a second or two.
          "--concurrent-ttl-after-finished-syncs=5",
        ],
        logDir,
      }),
    );
    track(
      startProcess({
        name: "kube-scheduler",
        command: serverBinary("k8s-node", "kube-scheduler"),
        args: common,
        logDir,
      }),
    );

    const kubeletKubeconfig = kubeconfigFor(
      theKube,
      join(nodeStateDir, "pki"),
      "kubelet",
      `/O=system:nodes/CN=system:node:${nodeName}`,
    );
    const kubelet = track(
      startProcess({
        name: "kubelet",
        command: serverBinary("k8s-node", "kubelet"),
        args: [
          `--config=${write(join(nodeStateDir, "kubelet.yaml"), kubeletConfig(nodeStateDir, socket, 10248))}`,
          `--kubeconfig=${kubeletKubeconfig}`,
          `--root-dir=${join(nodeStateDir, "kubelet")}`,
          `--cert-dir=${join(nodeStateDir, "kubelet", "pki")}`,
          `--hostname-override=${nodeName}`,
          `--node-ip=${gatewayIp}`,
          "--v=1",
        ],
        // No sbin on its PATH: without an iptables binary in reach the kubelet adds no chains
        // to the host's firewall (nothing here needs them: no kube-proxy, no masquerading).
        env: { ...process.env, PATH: "/usr/local/bin:/usr/bin:/bin" },
        logDir,
      }),
    );
    const core = theKube.kubeConfig.makeApiClient(CoreV1Api);
    await waitFor(
      async () => {
        const node = await core.readNode({ name: nodeName });
        return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      },
      { what: `node ${nodeName} Ready`, timeoutMs: 120_000, processes: [kubelet, containerd] },
    );
    // The ServiceAccount controller's "default" in "default": the sign the controllers run.
    await waitFor(
      async () => (await core.readNamespacedServiceAccount({ namespace: "default", name: "default" })).metadata?.name,
      { what: "the controller-manager's default ServiceAccount", timeoutMs: 60_000, processes },
    );
    stamp(`node ${nodeName} Ready`);

    return {
      kube: theKube,
      gatewayIp,
      nodeName,
      stateDir: nodeStateDir,
      ctr,
      processes,
      async stop() {
        process.removeListener("exit", onExit);
        // Pods first, gently: the kubelet stops their containers; then everything by PID.
        for (const proc of [...processes].reverse()) await proc.stop(3000);
        await new Promise<void>((resolve) => (forwarder ? forwarder.close(() => resolve()) : resolve()));
        forwarder = undefined;
        await dns?.close();
        dns = undefined;
        await theKube.stop();
        teardownSync();
      },
    };
  } catch (err) {
    process.removeListener("exit", onExit);
    for (const proc of processes) proc.kill();
    await kube?.stop();
    teardownSync();
    throw err;
  }
}
