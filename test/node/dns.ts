/**
 * A cluster DNS for the node tier, standing in for CoreDNS: it answers the records of the
 * Kubernetes DNS specification (https://github.com/kubernetes/dns/blob/master/docs/specification.md)
 * that Pods here need, from the API server, read live on every query (no cache, so a test never
 * waits for one to expire).
 *
 * Endpoints come from Pods, not EndpointSlices: the Pods a Service's selector matches, with an
 * IPv4 address, not Succeeded/Failed, and Ready unless the Service publishes not-ready addresses.
 * That is what the EndpointSlice controller would derive, without its lag, and it also works
 * where no controller-manager runs (the smoke tier).
 *
 * Served: `<svc>.<ns>.svc.<zone>` A (ClusterIP; for a headless Service every endpoint, NXDOMAIN
 * if none), `<hostname>.<svc>.<ns>.svc.<zone>` A (headless `<svc>` only), ExternalName CNAME,
 * `<a>-<b>-<c>-<d>.<ns>.pod.<zone>` A, `dns-version.<zone>` TXT. Not served: SRV, PTR, AAAA (the
 * node is IPv4 only; AAAA is NODATA), EDNS (ignored: answers over UDP stop at 512 bytes and set
 * TC, and the client retries over TCP). Nothing is forwarded: other names are REFUSED, so no
 * test reaches outside networks.
 */

import { createSocket, type Socket as UdpSocket } from "node:dgram";
import type { EventEmitter } from "node:events";
import { createServer, isIPv4, isIPv6, type Server, type Socket } from "node:net";
import type { CoreV1Api, V1Pod, V1Service } from "@kubernetes/client-node";

export interface ClusterDnsOptions {
  readonly host: string;
  /** 53 by default; 0 for an ephemeral port (the same for UDP and TCP). */
  readonly port?: number;
  readonly core: CoreV1Api;
  readonly domain?: string;
  /** One line per query, and why a query failed. */
  readonly log?: (line: string) => void;
}

export interface ClusterDns {
  readonly port: number;
  close(): Promise<void>;
}

const [typeA, typeCname, typeTxt, typeAny] = [1, 5, 16, 255];
const [noError, formErr, servFail, nxDomain, notImp, refused] = [0, 1, 2, 3, 4, 5];
const ttlSeconds = 5;
// The endpoints controller's older spelling of publishNotReadyAddresses, still in the spec.
const tolerateUnready = "service.alpha.kubernetes.io/tolerate-unready-endpoints";
// A DNS-1123 label: every Kubernetes name is one. Anything else is NXDOMAIN before it becomes
// part of an API path (a label ".." would otherwise walk up the URL).
const dns1123 = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

interface Question {
  readonly labels: readonly string[];
  readonly type: number;
  readonly qclass: number;
  /** Offset just past the question: the bytes 12..end are echoed as they came. */
  readonly end: number;
}

interface Answer {
  readonly type: number;
  readonly data: Buffer;
}

/** The single question of a query, or undefined if it does not parse. */
function readQuestion(msg: Buffer): Question | undefined {
  if (msg.readUInt16BE(4) !== 1) return undefined;
  try {
    const labels: string[] = [];
    let offset = 12;
    let end = 0; // in the question itself: after its first pointer, or its root label
    let size = 1;
    for (let jumps = 0; ; ) {
      const length = msg.readUInt8(offset); // throws past the end: caught below
      if (length === 0) {
        end ||= offset + 1;
        break;
      }
      if ((length & 0xc0) === 0xc0) {
        // Pointers only backwards, never into the header (the echo rewrites it), and few:
        // no loops, and the echoed question stays valid as it is.
        const target = msg.readUInt16BE(offset) & 0x3fff;
        if (target < 12 || target >= offset || ++jumps > 8) return undefined;
        end ||= offset + 2;
        offset = target;
        continue;
      }
      size += length + 1;
      if (length > 63 || size > 255 || offset + 1 + length > msg.length) return undefined;
      labels.push(msg.toString("latin1", offset + 1, offset + 1 + length).toLowerCase());
      offset += 1 + length;
    }
    return { labels, type: msg.readUInt16BE(end), qclass: msg.readUInt16BE(end + 2), end: end + 4 };
  } catch {
    return undefined;
  }
}

/** A response: ID, opcode and RD echoed; AA for answers from the zone; RA clear (no recursion). */
function reply(query: Buffer, q: Question | undefined, rcode: number, answers: readonly Answer[], max: number): Buffer {
  const question = q ? query.subarray(12, q.end) : Buffer.alloc(0);
  const records = answers.map(({ type, data }) => {
    // Owner name: a pointer to the question's name at offset 12 (case as asked, 0x20-safe).
    const head = Buffer.alloc(12);
    head.writeUInt16BE(0xc00c, 0);
    head.writeUInt16BE(type, 2);
    head.writeUInt16BE(1, 4);
    head.writeUInt32BE(ttlSeconds, 6);
    head.writeUInt16BE(data.length, 10);
    return Buffer.concat([head, data]);
  });
  // Over UDP, whole records up to 512 bytes, and TC set: the client asks again over TCP.
  const fit: Buffer[] = [];
  let size = 12 + question.length;
  for (const record of records) {
    size += record.length;
    if (size <= max) fit.push(record);
  }
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  const aa = rcode === noError || rcode === nxDomain ? 0x0400 : 0;
  const tc = fit.length < records.length ? 0x0200 : 0;
  header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7900) | aa | tc | rcode, 2);
  header.writeUInt16BE(q ? 1 : 0, 4);
  header.writeUInt16BE(fit.length, 6);
  return Buffer.concat([header, question, ...fit]);
}

const a = (ip: string): Answer => ({ type: typeA, data: Buffer.from(ip.split(".").map(Number)) });
/** A <character-string> (TXT), or a label of a name: its length, then its bytes. */
const counted = (value: string): Buffer => Buffer.concat([Buffer.from([value.length]), Buffer.from(value)]);
const cname = (target: string): Answer => {
  const labels = target.replace(/\.$/, "").split(".").map(counted);
  return { type: typeCname, data: Buffer.concat([...labels, Buffer.from([0])]) };
};

function notFound(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && err.code === 404;
}

/** The object `read` returns, or undefined on 404; other failures throw (SERVFAIL). */
async function orMissing<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

function podIps(pod: V1Pod): string[] {
  const ips = pod.status?.podIPs?.map((entry) => entry.ip) ?? [pod.status?.podIP];
  return ips.filter((ip): ip is string => ip !== undefined && isIPv4(ip));
}

/** The Service's ready endpoints, as Pods (see the opening comment). */
async function endpoints(core: CoreV1Api, namespace: string, service: V1Service): Promise<V1Pod[]> {
  const selector = Object.entries(service.spec?.selector ?? {});
  // No selector: hand-written Endpoints, not modelled (and "" would select every Pod).
  if (selector.length === 0) return [];
  const labelSelector = selector.map(([key, value]) => `${key}=${value}`).join(",");
  const pods = await core.listNamespacedPod({ namespace, labelSelector });
  const all =
    service.spec?.publishNotReadyAddresses === true || service.metadata?.annotations?.[tolerateUnready] === "true";
  const ready = (pod: V1Pod) => pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
  return pods.items.filter((pod) => !["Succeeded", "Failed"].includes(pod.status?.phase ?? "") && (all || ready(pod)));
}

/** Every record at a name relative to the zone; [] for a name with none; undefined: NXDOMAIN. */
async function lookup(core: CoreV1Api, rel: readonly string[]): Promise<Answer[] | undefined> {
  if (!rel.every((label) => dns1123.test(label))) return undefined;
  const [first = "", second = "", third = ""] = rel;
  const kind = rel.at(-1);
  if (rel.length === 0 || (rel.length <= 2 && (kind === "svc" || kind === "pod"))) {
    // The apex, svc, pod and <ns>.pod exist without records of their own (no namespace check for
    // pod names: CoreDNS's default "pods insecure" does not make one either).
    if (rel.length < 2 || kind === "pod") return [];
    return (await orMissing(() => core.readNamespace({ name: first }))) ? [] : undefined;
  }
  if (rel.length === 1 && first === "dns-version") return [{ type: typeTxt, data: counted("1.0.1") }];
  if (rel.length === 3 && kind === "pod") {
    const octets = first.split("-");
    const valid = octets.length === 4 && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
    return valid ? [a(octets.map(Number).join("."))] : undefined;
  }
  if (kind !== "svc" || rel.length > 4) return undefined;
  const [name, namespace] = rel.length === 3 ? [first, second] : [second, third];
  const service = await orMissing(() => core.readNamespacedService({ name, namespace }));
  if (!service?.spec) return undefined;
  const headless = service.spec.clusterIP === "None";
  if (rel.length === 3) {
    if (service.spec.type === "ExternalName")
      return service.spec.externalName ? [cname(service.spec.externalName)] : [];
    if (!headless) return (service.spec.clusterIPs ?? [service.spec.clusterIP ?? ""]).filter(isIPv4).map(a);
    const ips = (await endpoints(core, namespace, service)).flatMap(podIps);
    return ips.length > 0 ? ips.map(a) : undefined; // the spec: NXDOMAIN without ready endpoints
  }
  // <hostname>.<svc>: like the endpoints controller, a Pod of a headless Service, whose
  // spec.subdomain names that Service (StatefulSet Pods: hostname = Pod name, subdomain =
  // serviceName).
  if (!headless) return undefined;
  const pods = (await endpoints(core, namespace, service)).filter(
    (pod) => pod.spec?.hostname?.toLowerCase() === first && pod.spec.subdomain?.toLowerCase() === name,
  );
  const ips = pods.flatMap(podIps);
  return ips.length > 0 ? ips.map(a) : undefined;
}

/** Resolves once `start` has bound `target`; rejects with its "error" event before that. */
function bound(target: EventEmitter, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    target.once("error", reject);
    start(() => {
      target.off("error", reject);
      resolve();
    });
  });
}

export async function startClusterDns(options: ClusterDnsOptions): Promise<ClusterDns> {
  const { core, log } = options;
  const zone = (options.domain ?? "cluster.local").toLowerCase().replace(/\.$/, "").split(".");

  /** `respond`, which never rejects: a bug answers nothing rather than ending the process. */
  const handle = (query: Buffer, limit: number): Promise<Buffer | undefined> =>
    respond(query, limit).catch((err: unknown) => {
      log?.(`dns: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });

  /** The response to one query (UDP answers stop at `limit` bytes); undefined: drop it. */
  async function respond(query: Buffer, limit: number): Promise<Buffer | undefined> {
    // Too short for a header, or itself a response (never answer those: no loops).
    if (query.length < 12 || (query.readUInt16BE(2) & 0x8000) !== 0) return undefined;
    const q = readQuestion(query);
    if (((query.readUInt16BE(2) >> 11) & 0xf) !== 0) return reply(query, undefined, notImp, [], limit);
    if (!q) return reply(query, undefined, formErr, [], limit);
    const name = q.labels.join(".");
    const rel = q.labels.slice(0, q.labels.length - zone.length);
    const inZone = q.labels.length >= zone.length && zone.every((label, i) => q.labels[rel.length + i] === label);
    let rcode = refused;
    let answers: Answer[] = [];
    if (q.qclass === 1 && inZone) {
      try {
        const records = await lookup(core, rel);
        rcode = records ? noError : nxDomain;
        answers = (records ?? []).filter((r) => r.type === q.type || r.type === typeCname || q.type === typeAny);
      } catch (err) {
        rcode = servFail;
        log?.(`dns: ${name}: API failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    log?.(`dns: type ${q.type} ${name} -> rcode ${rcode}, ${answers.length} answers`);
    return reply(query, q, rcode, answers, limit);
  }

  const onTcp = (socket: Socket): void => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setTimeout(10_000, () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      // Each message is preceded by its 2-byte length (RFC 1035 4.2.2); several may be
      // pipelined, and answered out of order (RFC 7766: the IDs tell them apart).
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const query = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + query.length);
        void handle(query, 0xffff).then((out) => {
          if (!out || socket.destroyed) return;
          const length = Buffer.alloc(2);
          length.writeUInt16BE(out.length);
          socket.write(Buffer.concat([length, out]));
        });
      }
    });
  };
  const open = new Set<Socket>();

  // UDP first: with port 0 the kernel picks it, and TCP takes the same number; should that be
  // taken for TCP, both are tried again.
  const port = options.port ?? 53;
  let udp: UdpSocket | undefined;
  let tcp: Server | undefined;
  for (let attempt = 1; !tcp; attempt++) {
    const socket = createSocket(isIPv6(options.host) ? "udp6" : "udp4");
    await bound(socket, (done) => socket.bind(port, options.host, done));
    const server = createServer(onTcp);
    try {
      await bound(server, (done) => server.listen(socket.address().port, options.host, done));
      [udp, tcp] = [socket, server];
    } catch (err) {
      socket.close();
      if (port !== 0 || attempt >= 5) throw err;
    }
  }
  const [socket, server] = [udp, tcp];
  if (!socket) throw new Error("unreachable: bound together");
  socket.on("error", (err) => log?.(`dns: udp: ${err.message}`));
  socket.on("message", (msg, peer) => {
    void handle(msg, 512).then((out) => {
      try {
        if (out) socket.send(out, peer.port, peer.address);
      } catch {
        // closed meanwhile
      }
    });
  });
  return {
    port: socket.address().port,
    async close() {
      for (const connection of open) connection.destroy();
      await Promise.all([
        new Promise<void>((resolve) => socket.close(() => resolve())),
        new Promise<void>((resolve) => server.close(() => resolve())),
      ]);
    },
  };
}
