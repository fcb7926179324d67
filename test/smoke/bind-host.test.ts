/**
 * Proves the server fixtures can serve on a host address other than 127.0.0.1, which the
 * `node` tier needs: there the servers are bound to the CNI bridge gateway so Pods reach
 * them. Linux routes all of 127.0.0.0/8 to loopback, so 127.0.0.2 stands in for the gateway
 * without any host setup. Each server must report that address, present a certificate that
 * verifies for it against the fixture CA, answer a client configured from its handle, and
 * not listen on 127.0.0.1 at the same port (except MinIO, which always listens on loopback
 * too).
 */
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget } from "../../src/storage/target.ts";
import { httpsJson } from "../servers/https-json.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { scratchDir, startTogether, superviseServers } from "../servers/process.ts";
import { type StorageProvider, type StorageServer, startStorageServer, storageProviders } from "../servers/storage.ts";
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from "../servers/tls.ts";

superviseServers();

const host = "127.0.0.2";
const bucket = "bind-host";

/**
 * Opens a TLS connection to `url` verified against `caPem` for the URL's host (an IP address,
 * so the certificate must carry it as an IP SAN) and returns the peer's subjectAltName.
 */
function verifiedSubjectAltName(url: string, caPem: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ca: caPem, timeout: 5000 }, () => {
      const san = socket.getPeerCertificate().subjectaltname ?? "";
      socket.end();
      resolve(san);
    });
    socket.on("timeout", () => socket.destroy(new Error(`TLS to ${url}: timeout`)));
    socket.on("error", reject);
  });
}

/** The error code a plain TCP connection to `address:port` ends with; rejects if it connects. */
function connectError(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: address, port });
    socket.on("connect", () => {
      socket.destroy();
      reject(new Error(`something listens on ${address}:${port}`));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

async function* bytes(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

describe(`servers bound to ${host}`, () => {
  let cluster: OpenBaoCluster;
  let ca: CertificateAuthority;
  const storage = new Map<StorageProvider, StorageServer>();
  const stores: ObjectStore[] = [];

  before(async () => {
    ca = createCertificateAuthority(scratchDir("bind-host-ca"));
    const tls = { ca, cert: issueCertificate(ca, "storage", [], [host]) };
    const [bao, servers] = await startTogether([
      startOpenBao({ nodes: 1, host }),
      Promise.all(storageProviders.map((p) => startStorageServer(p, { tls, host, name: `${p}-bind-host` }))),
    ]);
    cluster = bao;
    for (const server of servers) storage.set(server.provider, server);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await Promise.all([cluster?.stop(), ...[...storage.values()].map((s) => s.stop())]);
  });

  test("OpenBao listens, advertises and is certified on the host address only", async () => {
    const node = cluster.nodes[0];
    assert.ok(node);
    assert.equal(node.address, `https://${host}:${node.apiPort}`);
    assert.deepEqual(cluster.addresses, [node.address]);

    assert.match(await verifiedSubjectAltName(node.address, cluster.caPem), /IP Address:127\.0\.0\.2(,|$)/);
    const health = await httpsJson<{ initialized?: boolean; sealed?: boolean }>(`${node.address}/v1/sys/health`, {
      caPem: cluster.caPem,
    });
    assert.equal(health.status, 200, health.text);
    assert.equal(health.body.initialized, true);
    assert.equal(health.body.sealed, false);

    // Raft advertises the cluster address built from the same host.
    const config = await cluster.call<{ data: { config: { servers: { address: string }[] } } }>(
      "GET",
      "sys/storage/raft/configuration",
    );
    assert.deepEqual(
      config.data.config.servers.map((s) => s.address),
      [`${host}:${node.clusterPort}`],
    );

    for (const port of [node.apiPort, node.clusterPort]) {
      assert.equal(await connectError("127.0.0.1", port), "ECONNREFUSED", `127.0.0.1:${port}`);
    }
  });

  for (const provider of storageProviders) {
    test(`${provider}: endpoint on the host address, verified over TLS, the ObjectStore round-trips`, async () => {
      const server = storage.get(provider);
      assert.ok(server);
      const endpoint = new URL(server.endpoint);
      assert.equal(endpoint.protocol, "https:");
      assert.equal(endpoint.hostname, host);

      assert.match(await verifiedSubjectAltName(server.endpoint, ca.certPem), /IP Address:127\.0\.0\.2(,|$)/);

      await server.createBucket(bucket);
      const store = openObjectStore(parseTarget(server.target(bucket)), {
        ...server.credentials,
        caCert: ca.certPem,
      });
      stores.push(store);
      const body = Buffer.from(`bound to ${host} via ${provider}`);
      const result = await store.upload("hello.txt", bytes(body), { contentLength: body.length });
      assert.equal(result.size, body.length);
      assert.equal((await store.head("hello.txt"))?.size, body.length);

      // MinIO also listens on every loopback address at its API port, whatever `--address`
      // says (see minio.ts); the emulators listen on the host address only.
      if (provider !== "s3") {
        assert.equal(await connectError("127.0.0.1", Number(endpoint.port)), "ECONNREFUSED");
      }
    });
  }
});
