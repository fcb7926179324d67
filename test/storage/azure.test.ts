/**
 * Azure Blob against a real Azurite: the ObjectStore contract and TLS, then the credential
 * modes of SPEC §2 (account key, connection string, managed/workload identity when the
 * Secret has neither) and `azure.container` overriding `bucket`, then the block uploads of
 * src/storage/azure/blocks.ts beyond the contract: what is staged and committed, retries, a
 * failed upload, and blocks sliced over HTTPS.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { isStorageError, TargetConfigError } from "../../src/storage/errors.ts";
import { openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget, type StorageCredentials, type TargetSpec } from "../../src/storage/target.ts";
import { type AzuriteServer, startAzurite } from "../servers/azurite.ts";
import { scratchDir, superviseServers } from "../servers/process.ts";
import { createCertificateAuthority, issueCertificate } from "../servers/tls.ts";
import { storageContract, tlsContract } from "./contract.ts";
import { generate, sha256Of } from "./data.ts";
import { startWireProxy, type WireProxy } from "./wire-proxy.ts";

superviseServers();
storageContract("azure");
tlsContract("azure");

describe("azure: credential modes and container", () => {
  let azurite: AzuriteServer;
  let proxy: WireProxy;
  const stores: ObjectStore[] = [];
  const open = (spec: TargetSpec, credentials: StorageCredentials): ObjectStore => {
    const store = openObjectStore(
      parseTarget({ provider: "azure", bucket: "modes", azure: { storageAccount: azurite.account }, ...spec }),
      credentials,
    );
    stores.push(store);
    return store;
  };
  const roundTrip = async (store: ObjectStore, key: string): Promise<void> => {
    const data = generate(100 * 1024);
    await store.upload(key, data.source);
    assert.equal((await sha256Of(await store.download(key))).sha256, data.sha256());
  };

  before(async () => {
    azurite = await startAzurite({ name: "azurite-modes", inMemory: true });
    await azurite.createContainer("modes");
    await azurite.createContainer("real-container");
    proxy = await startWireProxy(azurite.endpoint);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await proxy?.stop();
    await azurite?.stop();
  });

  test("connection string: account, key and endpoint all come from it", async () => {
    await roundTrip(open({}, { connectionString: azurite.connectionString }), "cs/object");
  });

  test("connection string with target.endpoint: the endpoint wins, the key still signs", async () => {
    proxy.reset();
    await roundTrip(open({ endpoint: proxy.url }, { connectionString: azurite.connectionString }), "cs/via-endpoint");
    assert.ok(proxy.records.length >= 2, "requests did not go to target.endpoint");
  });

  test("a connection string with a wrong key is AuthDenied, without the key or the string in the error", async () => {
    const wrongKey = Buffer.from("not-the-account-key-0123456789abcdef").toString("base64");
    const connectionString = azurite.connectionString.replace(azurite.accountKey, wrongKey);
    await assert.rejects(open({}, { connectionString }).head("cs/object"), (err) => {
      assert.ok(isStorageError(err), String(err));
      assert.equal(err.code, "AuthDenied", err.message);
      const everything = `${err.message}\n${inspect(err, { depth: 6 })}`;
      assert.ok(!everything.includes(wrongKey), "the key leaked into the error");
      return true;
    });
  });

  test("an unparsable connection string is a configuration error that does not quote it", () => {
    assert.throws(
      () => open({}, { connectionString: "AccountName=x;AccountKey=c2VjcmV0LWtleS12YWx1ZQ==;Nonsense" }),
      (err) =>
        err instanceof TargetConfigError &&
        err.field === "credentials.connectionString" &&
        !err.message.includes("c2VjcmV0LWtleS12YWx1ZQ=="),
    );
  });

  test("azure.container overrides bucket", async () => {
    const store = open(
      {
        bucket: "no-such-container",
        azure: { storageAccount: azurite.account, container: "real-container" },
        endpoint: azurite.endpoint,
      },
      { accountKey: azurite.accountKey },
    );
    await store.upload("placed/object", generate(10).source);
    const official = azurite.client();
    assert.equal(await official.getContainerClient("real-container").getBlobClient("placed/object").exists(), true);
    assert.equal(await official.getContainerClient("no-such-container").exists(), false);
  });

  test("no accountKey or connectionString: managed/workload identity is used; none here is AuthDenied, quickly", async () => {
    const saved = { ...process.env };
    for (const name of Object.keys(process.env)) {
      if (/^(AZURE_|IDENTITY_|MSI_|IMDS_)/.test(name)) delete process.env[name];
    }
    try {
      const started = performance.now();
      // The default endpoint (<account>.blob.core.windows.net): the token is needed before any request.
      await assert.rejects(open({}, {}).head("x"), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.code, "AuthDenied", err.message);
        assert.match(err.message, /ManagedIdentity|Workload|EnvironmentCredential/);
        return true;
      });
      assert.ok(performance.now() - started < 15_000);
    } finally {
      process.env = saved;
    }
  });

  test("identity over plain http is refused up front (Azure sends bearer tokens over TLS only)", () => {
    assert.throws(
      () => open({ endpoint: azurite.endpoint }, {}),
      (err) => err instanceof TargetConfigError && err.field === "target.endpoint",
    );
  });
});

describe("azure block uploads (blocks.ts on part-upload.ts), on the wire and as Azurite committed them", () => {
  const MiB = 1024 * 1024;
  const partSize = 5 * MiB;
  const container = "blocks";
  let azurite: AzuriteServer;
  let proxy: WireProxy;
  const stores: ObjectStore[] = [];
  const open = (concurrency: number): ObjectStore => {
    const store = openObjectStore(
      parseTarget({
        provider: "azure",
        bucket: container,
        azure: { storageAccount: azurite.account },
        endpoint: proxy.url,
        partSize,
        concurrency,
      }),
      { accountKey: azurite.accountKey },
    );
    stores.push(store);
    return store;
  };
  const isBlock = (method: string, url: string): boolean => method === "PUT" && /[?&]comp=block(&|$)/.test(url);
  const isList = (method: string, url: string): boolean => method === "PUT" && /[?&]comp=blocklist(&|$)/.test(url);
  /** The block id of a Put Block request, decoded from its base64. */
  const blockIdOf = (url: string): string =>
    Buffer.from(decodeURIComponent(/[?&]blockid=([^&]+)/.exec(url)?.[1] ?? ""), "base64").toString("latin1");
  /** The part number a block id ends with (blocks.ts: 12 digits after the upload's UUID). */
  const partNumberOf = (id: string): number => Number(id.slice(-12));
  const blob = (key: string) => azurite.client().getContainerClient(container).getBlockBlobClient(key);

  before(async () => {
    azurite = await startAzurite({ name: "azurite-blocks", inMemory: true });
    await azurite.createContainer(container);
    proxy = await startWireProxy(azurite.endpoint);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await proxy?.stop();
    await azurite?.stop();
  });

  test("a multi-block blob: blocks of partSize but the last, ids of one length, committed in order with type and metadata", async () => {
    const data = generate(4 * partSize + 4321);
    proxy.reset();
    const store = open(3);
    await store.upload("multi/blob.snap", data.source, {
      contentType: "application/gzip",
      metadata: { sha256: "pending", kind: "test" },
    });
    const blocks = proxy.matching((r) => isBlock(r.method, r.url));
    const ids = blocks.map((r) => blockIdOf(r.url));
    assert.equal(new Set(ids.map((id) => id.length)).size, 1, `block ids of one length: ${ids.join(", ")}`);
    assert.equal(ids[0]?.length, 48, "48 characters before base64, like the SDK's own block ids");
    assert.deepEqual(
      blocks.map((r) => [partNumberOf(blockIdOf(r.url)), r.bodyBytes]).sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0)),
      [
        [1, partSize],
        [2, partSize],
        [3, partSize],
        [4, partSize],
        [5, 4321],
      ],
    );
    const lists = proxy.matching((r) => isList(r.method, r.url));
    assert.equal(lists.length, 1, "one Put Block List");
    assert.ok(
      (lists[0]?.startedAt ?? 0) >= Math.max(...blocks.map((r) => r.endedAt ?? Number.POSITIVE_INFINITY)),
      "the list was committed after every block had been staged",
    );
    // What Azurite committed, read with the official SDK.
    const list = await blob("multi/blob.snap").getBlockList("all");
    assert.deepEqual(
      (list.committedBlocks ?? []).map((b) => [partNumberOf(Buffer.from(b.name, "base64").toString("latin1")), b.size]),
      [
        [1, partSize],
        [2, partSize],
        [3, partSize],
        [4, partSize],
        [5, 4321],
      ],
    );
    assert.deepEqual(list.uncommittedBlocks ?? [], []);
    const props = await blob("multi/blob.snap").getProperties();
    assert.equal(props.contentType, "application/gzip");
    assert.deepEqual(props.metadata, { sha256: "pending", kind: "test" });
    assert.equal((await sha256Of(await store.download("multi/blob.snap"))).sha256, data.sha256());
  });

  test("a blob of one block or less: that block and the list; 0 bytes: the list alone", async () => {
    const store = open(3);
    for (const [key, size, expectedBlocks] of [
      ["single/one-part.bin", partSize, [partSize]],
      ["single/small.bin", 10, [10]],
      ["single/empty.bin", 0, []],
    ] as const) {
      proxy.reset();
      const data = generate(size);
      await store.upload(key, data.source, { contentType: "application/json", metadata: { kind: "single" } });
      assert.deepEqual(
        proxy.matching((r) => isBlock(r.method, r.url)).map((r) => r.bodyBytes),
        expectedBlocks,
        key,
      );
      assert.equal(proxy.matching((r) => isList(r.method, r.url)).length, 1, key);
      const props = await blob(key).getProperties();
      assert.equal(props.contentLength, size, key);
      assert.equal(props.contentType, "application/json", key);
      assert.deepEqual(props.metadata, { kind: "single" }, key);
    }
  });

  test("a block cut off on the wire is retried by the SDK's pipeline, and the blob is whole", async () => {
    const data = generate(3 * partSize);
    proxy.reset();
    let cut = 0;
    proxy.failWhen = (req) =>
      isBlock(req.method ?? "", req.url ?? "") && partNumberOf(blockIdOf(req.url ?? "")) === 2 && ++cut === 1;
    try {
      await open(2).upload("retried/blob.bin", data.source);
    } finally {
      proxy.failWhen = undefined;
    }
    const second = proxy.matching((r) => isBlock(r.method, r.url) && partNumberOf(blockIdOf(r.url)) === 2);
    assert.equal(second.length, 2, "block 2 was sent twice");
    assert.equal((await blob("retried/blob.bin").getProperties()).contentLength, 3 * partSize);
  });

  test("a block that keeps failing stops the upload: no block starts after it, no list, no blob", async () => {
    const concurrency = 2;
    proxy.reset();
    proxy.failWhen = (req) => isBlock(req.method ?? "", req.url ?? "") && partNumberOf(blockIdOf(req.url ?? "")) >= 3;
    const data = generate(12 * partSize);
    try {
      await assert.rejects(open(concurrency).upload("failed/blob.bin", data.source), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.operation, "upload");
        return true;
      });
    } finally {
      proxy.failWhen = undefined;
    }
    const numbers = proxy.matching((r) => isBlock(r.method, r.url)).map((r) => partNumberOf(blockIdOf(r.url)));
    // Blocks 3 and 4 were in flight when 3 failed for good; none was started after that.
    assert.ok(Math.max(...numbers) <= 2 + concurrency, `blocks on the wire: ${numbers.join(", ")}`);
    assert.ok(data.produced() < 12 * partSize, "the source was not read to its end");
    assert.deepEqual(
      proxy.matching((r) => isList(r.method, r.url)),
      [],
      "no block list was committed",
    );
    assert.equal(await blob("failed/blob.bin").exists(), false);
  });
});

describe("azure block uploads over HTTPS (blocks written to the TLS socket in 1 MiB views)", () => {
  const MiB = 1024 * 1024;
  let azurite: AzuriteServer;
  let caPem = "";
  const stores: ObjectStore[] = [];
  before(async () => {
    const ca = createCertificateAuthority(scratchDir("azure-blocks-tls"));
    caPem = ca.certPem;
    azurite = await startAzurite({
      name: "azurite-blocks-tls",
      inMemory: true,
      tls: { ca, cert: issueCertificate(ca, "storage") },
    });
    await azurite.createContainer("tls-blocks");
  });
  after(async () => {
    for (const store of stores) await store.close();
    await azurite?.stop();
  });

  test("a multi-block blob with blocks of several slices and one smaller than a slice reads back whole", async () => {
    assert.match(azurite.endpoint, /^https:/);
    const store = openObjectStore(
      parseTarget({
        provider: "azure",
        bucket: "tls-blocks",
        azure: { storageAccount: azurite.account },
        endpoint: azurite.endpoint,
        partSize: 5 * MiB + 3,
        concurrency: 3,
      }),
      { accountKey: azurite.accountKey, caCert: caPem },
    );
    stores.push(store);
    const size = 4 * (5 * MiB + 3) + 1000;
    const data = generate(size);
    assert.equal((await store.upload("tls/blocks.bin", data.source)).size, size);
    const list = await azurite
      .client()
      .getContainerClient("tls-blocks")
      .getBlockBlobClient("tls/blocks.bin")
      .getBlockList("committed");
    assert.deepEqual(
      (list.committedBlocks ?? []).map((b) => b.size),
      [5 * MiB + 3, 5 * MiB + 3, 5 * MiB + 3, 5 * MiB + 3, 1000],
    );
    assert.equal((await sha256Of(await store.download("tls/blocks.bin"))).sha256, data.sha256());
  });
});
