/**
 * GCS against a real fake-gcs-server: the ObjectStore contract and TLS, then the credential
 * modes of SPEC §2. fake-gcs-server checks no credentials, so what can be shown here is which
 * credentials are selected and where they go: `credentials.json` and Application Default
 * Credentials are exchanged at Google's token endpoint for Google endpoints (unreachable from
 * this machine, which is the typed error the tests expect), never sent to an emulator, and a
 * missing identity is a typed AuthDenied.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { isStorageError } from "../../src/storage/errors.ts";
import { openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget, type StorageCredentials, type TargetSpec } from "../../src/storage/target.ts";
import { scratchDir, superviseServers } from "../servers/process.ts";
import { type StorageServer, startStorageServer } from "../servers/storage.ts";
import { storageContract, tlsContract } from "./contract.ts";
import { generate, sha256Of } from "./data.ts";
import { startWireProxy, type WireProxy } from "./wire-proxy.ts";

superviseServers();
storageContract("gcs");
tlsContract("gcs");

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const privateKeyPem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
const serviceAccountJson = JSON.stringify({
  type: "service_account",
  project_id: "backup-project",
  private_key_id: "0123456789abcdef0123456789abcdef01234567",
  private_key: privateKeyPem,
  client_email: "openbao-backup@backup-project.iam.gserviceaccount.com",
  client_id: "100000000000000000001",
  token_uri: "https://oauth2.googleapis.com/token",
});
/** A line from the middle of the PEM body: key material that must never be printed. */
const keyMaterial = privateKeyPem.split("\n")[3] ?? "unreachable";

/** Runs `fn` with the process environment changed, restoring it afterwards. */
async function withEnv(changes: Record<string, string | undefined>, fn: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(changes).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(changes);
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

/** No ambient Google identity: no ADC file, no gcloud config, no metadata server probe. */
const noAmbientIdentity = {
  GOOGLE_APPLICATION_CREDENTIALS: undefined,
  CLOUDSDK_CONFIG: "/nonexistent/gcloud",
  METADATA_SERVER_DETECTION: "none",
};

describe("gcs: credential modes", () => {
  let server: StorageServer;
  let proxy: WireProxy;
  const stores: ObjectStore[] = [];
  const open = (spec: TargetSpec, credentials: StorageCredentials): ObjectStore => {
    const store = openObjectStore(parseTarget({ ...server.target("modes"), ...spec }), credentials);
    stores.push(store);
    return store;
  };
  before(async () => {
    server = await startStorageServer("gcs", { name: "fake-gcs-modes" });
    await server.createBucket("modes");
    proxy = await startWireProxy(server.endpoint);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await proxy?.stop();
    await server?.stop();
  });

  test("credentials.json is accepted with an emulator endpoint, and not sent to it", async () => {
    const store = open({ endpoint: proxy.url }, { credentialsJson: serviceAccountJson });
    proxy.reset();
    const data = generate(300 * 1024);
    await store.upload("json/object", data.source);
    assert.equal((await sha256Of(await store.download("json/object"))).sha256, data.sha256());
    assert.ok(proxy.records.length > 0);
    assert.ok(
      proxy.records.every((r) => !r.authorization),
      "an Authorization header went to the emulator",
    );
  });

  test("for Google endpoints, credentials.json is exchanged at Google's token endpoint; its key never shows", async () => {
    await withEnv(noAmbientIdentity, async () => {
      const store = open({ endpoint: undefined }, { credentialsJson: serviceAccountJson });
      await assert.rejects(store.head("json/object"), (err) => {
        assert.ok(isStorageError(err), String(err));
        // No route to Google from here: the token request is what fails.
        assert.equal(err.code, "Unreachable", err.message);
        assert.match(err.message, /oauth2|token/);
        assert.ok(!inspect(err, { depth: 8 }).includes(keyMaterial), "key material leaked into the error");
        return true;
      });
    });
  });

  test("without credentials.json, Application Default Credentials are used (GOOGLE_APPLICATION_CREDENTIALS)", async () => {
    const file = join(scratchDir("adc"), "adc.json");
    writeFileSync(file, serviceAccountJson);
    await withEnv({ ...noAmbientIdentity, GOOGLE_APPLICATION_CREDENTIALS: file }, async () => {
      await assert.rejects(open({ endpoint: undefined }, {}).head("x"), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.code, "Unreachable", err.message);
        assert.match(err.message, /oauth2|token/);
        return true;
      });
    });
  });

  test("no credentials.json and no ambient identity is AuthDenied, at once", async () => {
    await withEnv(noAmbientIdentity, async () => {
      const started = performance.now();
      await assert.rejects(open({ endpoint: undefined }, {}).head("x"), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.code, "AuthDenied", err.message);
        assert.match(err.message, /default credentials/i);
        return true;
      });
      assert.ok(performance.now() - started < 5000);
    });
  });
});
