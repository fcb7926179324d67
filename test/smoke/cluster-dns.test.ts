/**
 * Smoke test of the node tier's cluster DNS (test/node/dns.ts) against a real kube-apiserver:
 * Service, headless Service and StatefulSet-style Pod names resolve through Node's own resolver
 * (c-ares), the rest answers NXDOMAIN / NODATA / REFUSED / SERVFAIL, large answers fall back
 * to TCP, and malformed packets do not take the server down.
 *
 * This tier has no kubelet (nor scheduler or controller-manager): the test plays the kubelet
 * for Pod status, writing podIP and the Ready condition through the pods/status subresource.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { promises as dns } from "node:dns";
import { createConnection } from "node:net";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { type ClusterDns, startClusterDns } from "../node/dns.ts";
import { type KubeHandle, startKube } from "../servers/kube.ts";
import { superviseServers } from "../servers/process.ts";

superviseServers();

const namespace = "dns-smoke";
const zone = "cluster.local";
const fqdn = (name: string): string => `${name}.${namespace}.svc.${zone}`;

/** A query: ID, RD set, one question; `name` as labels, or raw name bytes. */
function rawQuery(id: number, name: string | Buffer, type = 1): Buffer {
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const encoded =
    typeof name === "string"
      ? Buffer.concat([
          ...name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
          Buffer.from([0]),
        ])
      : name;
  return Buffer.concat([header, encoded, Buffer.from([0, type, 0, 1])]);
}

/** Sends one UDP datagram; resolves with the response, or undefined after `waitMs`. */
function udpExchange(port: number, packet: Buffer, waitMs = 1000): Promise<Buffer | undefined> {
  const socket = createSocket("udp4");
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), waitMs);
    const done = (value: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    socket.on("message", (msg) => done(msg));
    socket.send(packet, port, "127.0.0.1");
  });
}

const rcodeOf = (msg: Buffer): number => (msg.readUInt16BE(2) & 0x000f) >>> 0;

describe("cluster DNS (test/node/dns.ts)", { timeout: 180_000 }, () => {
  let kube: KubeHandle;
  let core: CoreV1Api;
  let server: ClusterDns;
  const lines: string[] = [];

  /** A fresh resolver per lookup: c-ares caches answers for their TTL. */
  const resolver = (port = server.port): dns.Resolver => {
    const r = new dns.Resolver({ timeout: 3000, tries: 1 });
    r.setServers([`127.0.0.1:${port}`]);
    return r;
  };

  /** Creates a Pod, then writes its status as a kubelet would. */
  async function pod(name: string, labels: Record<string, string>, ip: string, ready: boolean, subdomain?: string) {
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, labels },
        spec: {
          ...(subdomain ? { hostname: name, subdomain } : {}),
          containers: [{ name: "main", image: "registry.invalid/pause:1" }],
        },
      },
    });
    const current: V1Pod = await core.readNamespacedPod({ name, namespace });
    current.status = {
      phase: "Running",
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
    };
    await core.replaceNamespacedPodStatus({ name, namespace, body: current });
  }

  async function service(name: string, app: string, headless: boolean, publishNotReadyAddresses = false) {
    const created = await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name },
        spec: {
          selector: { app },
          ports: [{ name: "http", port: 8200 }],
          ...(headless ? { clusterIP: "None", publishNotReadyAddresses } : {}),
        },
      },
    });
    return created.spec?.clusterIP ?? "";
  }

  before(async () => {
    kube = await startKube({ name: "dns" });
    core = kube.kubeConfig.makeApiClient(CoreV1Api);
    server = await startClusterDns({ host: "127.0.0.1", port: 0, core, log: (line) => lines.push(line) });
    await kube.createNamespace(namespace);
  });

  after(async () => {
    await server?.close();
    await kube?.stop();
  });

  it("resolves a ClusterIP Service, the kubernetes Service, and names case-insensitively", async () => {
    const ip = await service("web", "web", false);
    assert.match(ip, /^10\.0\.0\.\d+$/);
    assert.deepEqual(await resolver().resolve4(fqdn("web")), [ip]);
    assert.deepEqual(await resolver().resolve4(fqdn("WEB").toUpperCase()), [ip]);
    assert.deepEqual(await resolver().resolve4(`kubernetes.default.svc.${zone}`), ["10.0.0.1"]);
    // A ClusterIP Service resolves whether or not it has endpoints; it has no Pod names.
    await pod("web-0", { app: "web" }, "10.217.0.20", true, "web");
    await assert.rejects(resolver().resolve4(`web-0.${fqdn("web")}`), { code: "ENOTFOUND" });
  });

  it("resolves a headless Service and its StatefulSet-style Pods, honouring publishNotReadyAddresses", async () => {
    await service("openbao-internal", "openbao", true, true);
    await pod("openbao-0", { app: "openbao" }, "10.217.0.10", true, "openbao-internal");
    await pod("openbao-1", { app: "openbao" }, "10.217.0.11", false, "openbao-internal");
    const r = resolver();
    assert.deepEqual(await r.resolve4(`openbao-0.${fqdn("openbao-internal")}`), ["10.217.0.10"]);
    // Not ready, but the Service publishes not-ready addresses (as OpenBao's chart does).
    assert.deepEqual(await r.resolve4(`openbao-1.${fqdn("openbao-internal")}`), ["10.217.0.11"]);
    assert.deepEqual((await r.resolve4(fqdn("openbao-internal"))).sort(), ["10.217.0.10", "10.217.0.11"]);
    await assert.rejects(r.resolve4(`openbao-9.${fqdn("openbao-internal")}`), { code: "ENOTFOUND" });
    // An existing name, no AAAA: NODATA, not NXDOMAIN.
    await assert.rejects(r.resolve6(`openbao-0.${fqdn("openbao-internal")}`), { code: "ENODATA" });
    await assert.rejects(r.resolve6(fqdn("web")), { code: "ENODATA" });

    // Without publishNotReadyAddresses only Ready Pods are endpoints.
    await service("strict", "strict", true);
    await pod("strict-0", { app: "strict" }, "10.217.0.30", true, "strict");
    await pod("strict-1", { app: "strict" }, "10.217.0.31", false, "strict");
    assert.deepEqual(await r.resolve4(fqdn("strict")), ["10.217.0.30"]);
    assert.deepEqual(await r.resolve4(`strict-0.${fqdn("strict")}`), ["10.217.0.30"]);
    await assert.rejects(r.resolve4(`strict-1.${fqdn("strict")}`), { code: "ENOTFOUND" });
    // A headless Service without ready endpoints: NXDOMAIN (the spec).
    await service("empty", "nobody", true);
    await assert.rejects(r.resolve4(fqdn("empty")), { code: "ENOTFOUND" });
  });

  it("does not resolve a Pod whose subdomain names no Service", async () => {
    await pod("loner", { app: "loner" }, "10.217.0.40", true, "nosuch");
    await assert.rejects(resolver().resolve4(`loner.${fqdn("nosuch")}`), { code: "ENOTFOUND" });
    await assert.rejects(resolver().resolve4(fqdn("nosuch")), { code: "ENOTFOUND" });
    await assert.rejects(resolver().resolve4(`web.nowhere.svc.${zone}`), { code: "ENOTFOUND" });
    // A namespace is a name without records of its own (NODATA); a missing one does not exist.
    await assert.rejects(resolver().resolve4(`${namespace}.svc.${zone}`), { code: "ENODATA" });
    await assert.rejects(resolver().resolve4(`nowhere.svc.${zone}`), { code: "ENOTFOUND" });
    await assert.rejects(resolver().resolve4(`a.b.web.${namespace}.svc.${zone}`), { code: "ENOTFOUND" });
  });

  it("reads the API live: a changed or deleted Pod is seen by the next query", async () => {
    const name = `openbao-0.${fqdn("openbao-internal")}`;
    const current = await core.readNamespacedPod({ name: "openbao-0", namespace });
    current.status = { ...current.status, podIP: "10.217.0.12", podIPs: [{ ip: "10.217.0.12" }] };
    await core.replaceNamespacedPodStatus({ name: "openbao-0", namespace, body: current });
    assert.deepEqual(await resolver().resolve4(name), ["10.217.0.12"]);
    await core.deleteNamespacedPod({ name: "openbao-0", namespace, gracePeriodSeconds: 0 });
    await assert.rejects(resolver().resolve4(name), { code: "ENOTFOUND" });
  });

  it("serves the spec's other records: dns-version TXT, pod A, ExternalName CNAME", async () => {
    assert.deepEqual(await resolver().resolveTxt(`dns-version.${zone}`), [["1.0.1"]]);
    assert.deepEqual(await resolver().resolve4(`10-217-0-99.${namespace}.pod.${zone}`), ["10.217.0.99"]);
    await core.createNamespacedService({
      namespace,
      body: { metadata: { name: "ext" }, spec: { type: "ExternalName", externalName: "db.example.com" } },
    });
    assert.deepEqual(await resolver().resolveCname(fqdn("ext")), ["db.example.com"]);
  });

  it("refuses names outside the cluster domain, and answers SERVFAIL when the API fails", async () => {
    await assert.rejects(resolver().resolve4("example.com"), { code: "EREFUSED" });
    await assert.rejects(resolver().resolve4("cluster.local.example.com"), { code: "EREFUSED" });
    const dead = new KubeConfig();
    dead.loadFromOptions({
      clusters: [{ name: "dead", server: "https://127.0.0.1:1", skipTLSVerify: true }],
      users: [{ name: "nobody" }],
      contexts: [{ name: "dead", cluster: "dead", user: "nobody" }],
      currentContext: "dead",
    });
    const broken = await startClusterDns({ host: "127.0.0.1", port: 0, core: dead.makeApiClient(CoreV1Api) });
    try {
      await assert.rejects(resolver(broken.port).resolve4(fqdn("web")), { code: "ESERVFAIL" });
      await assert.rejects(resolver(broken.port).resolve4("example.com"), { code: "EREFUSED" });
    } finally {
      await broken.close();
    }
  });

  it("falls back to TCP for answers over 512 bytes, and serves pipelined TCP queries", async () => {
    await service("big", "big", true);
    const ips = Array.from({ length: 40 }, (_, i) => `10.217.1.${i + 1}`);
    await Promise.all(ips.map((ip, i) => pod(`big-${i}`, { app: "big" }, ip, true, "big")));
    const udp = await udpExchange(server.port, rawQuery(7, fqdn("big")));
    assert.ok(udp);
    assert.ok((udp.readUInt16BE(2) & 0x0200) !== 0, "TC set over UDP");
    assert.ok(udp.length <= 512);
    // c-ares retries a truncated answer over TCP on its own: the raw query, then c-ares's two.
    const asked = (): number => lines.filter((line) => line.includes(` ${fqdn("big")} `)).length;
    assert.deepEqual((await resolver().resolve4(fqdn("big"))).sort(), [...ips].sort());
    assert.equal(asked(), 3);

    const socket = createConnection(server.port, "127.0.0.1");
    const responses = await new Promise<Buffer[]>((resolve, reject) => {
      let received = Buffer.alloc(0);
      const out: Buffer[] = [];
      socket.on("error", reject);
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        while (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
          out.push(received.subarray(2, 2 + received.readUInt16BE(0)));
          received = received.subarray(2 + received.readUInt16BE(0));
        }
        if (out.length === 2) resolve(out);
      });
      const framed = [rawQuery(1, fqdn("web")), rawQuery(2, "example.com")].map((q) =>
        Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]),
      );
      socket.write(Buffer.concat(framed)); // both in one segment
    });
    socket.destroy();
    const byId = new Map(responses.map((r) => [r.readUInt16BE(0), r]));
    assert.equal(rcodeOf(byId.get(1) ?? Buffer.alloc(4)), 0);
    assert.equal(byId.get(1)?.readUInt16BE(6), 1, "one answer");
    assert.equal(rcodeOf(byId.get(2) ?? Buffer.alloc(4)), 5);
  });

  it("survives malformed packets, answering FORMERR where it can, and keeps serving", async () => {
    const name = fqdn("web");
    const loop = Buffer.from([0xc0, 12]); // a pointer to itself
    const forward = Buffer.from([3, 0x61, 0x62, 0x63, 0xc0, 40]); // a pointer past itself
    const intoHeader = Buffer.from([0xc0, 2]);
    const long = Buffer.concat([Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0])]);
    const deep = Buffer.concat([...Array.from({ length: 130 }, () => Buffer.from([1, 0x61])), Buffer.from([0])]);
    for (const [id, bad] of [loop, forward, intoHeader, long, deep].entries()) {
      const response = await udpExchange(server.port, rawQuery(100 + id, bad));
      assert.ok(response, `packet ${id} answered`);
      assert.equal(response.readUInt16BE(0), 100 + id, "ID echoed");
      assert.equal(rcodeOf(response), 1, `packet ${id}: FORMERR`);
    }
    const truncated = rawQuery(200, name).subarray(0, 20);
    assert.equal(rcodeOf((await udpExchange(server.port, truncated)) ?? Buffer.alloc(4, 0xff)), 1);
    // Shorter than a header, or itself a response: dropped, no answer.
    assert.equal(await udpExchange(server.port, Buffer.from([1, 2, 3]), 300), undefined);
    const response = Buffer.from(rawQuery(201, name));
    response[2] = 0x81;
    assert.equal(await udpExchange(server.port, response, 300), undefined);
    assert.equal(await udpExchange(server.port, Buffer.alloc(0), 300), undefined);

    // A well-formed query still answers, ID and question echoed, AA set, RA clear.
    const good = await udpExchange(server.port, rawQuery(0xbeef, name.toUpperCase()));
    assert.ok(good);
    assert.equal(good.readUInt16BE(0), 0xbeef);
    const flags = good.readUInt16BE(2);
    assert.equal(flags & 0x8000, 0x8000, "QR");
    assert.equal(flags & 0x0400, 0x0400, "AA");
    assert.equal(flags & 0x0080, 0, "RA clear: no recursion offered");
    assert.equal(flags & 0x0100, 0x0100, "RD echoed");
    assert.ok(good.includes(Buffer.from("WEB")), "question echoed in the case asked");
    assert.equal(good.readUInt32BE(good.length - 10), 5, "TTL 5 s");
    assert.deepEqual(await resolver().resolve4(name), [await webIp()]);
    assert.ok(lines.some((line) => line.includes("rcode 0")));
  });

  async function webIp(): Promise<string> {
    return (await core.readNamespacedService({ name: "web", namespace })).spec?.clusterIP ?? "";
  }
});
