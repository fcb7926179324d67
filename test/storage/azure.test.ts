/**
 * Azure Blob against a real Azurite: the ObjectStore contract and TLS, then the credential
 * modes of SPEC §2 (account key, connection string, managed/workload identity when the
 * Secret has neither) and `azure.container` overriding `bucket`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { isStorageError, TargetConfigError } from "../../src/storage/errors.ts";
import { openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget, type StorageCredentials, type TargetSpec } from "../../src/storage/target.ts";
import { type AzuriteServer, startAzurite } from "../servers/azurite.ts";
import { printServerLogsOnFailure } from "../servers/process.ts";
import { storageContract, tlsContract } from "./contract.ts";
import { generate, sha256Of } from "./data.ts";
import { startWireProxy, type WireProxy } from "./wire-proxy.ts";

printServerLogsOnFailure();
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
