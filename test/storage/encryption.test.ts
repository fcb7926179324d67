/**
 * Issue 18, item 2: server-side encryption per provider, on the wire and in HEAD, against the
 * real servers. MinIO, with its built-in KMS (a static key), encrypts for real — SSE-S3 and
 * SSE-KMS — and reports it. fake-gcs-server and Azurite accept the parameters and ignore them,
 * so for them this shows what the SDKs send (GCS `kmsKeyName` on the request that opens the
 * resumable session; Azure `x-ms-encryption-scope` on every Put Block and on Put Block List)
 * and that `head()` reads what the real services report, which the proxy adds to the
 * emulator's answer (GCS `kmsKeyName` in the object resource, Azure the `x-ms-encryption-scope`
 * response header). Without that addition the emulators report no encryption, which the
 * backup's check (src/storage/encryption.ts) refuses when encryption was asked for.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { encryptionMismatch } from "../../src/storage/encryption.ts";
import { isStorageError } from "../../src/storage/errors.ts";
import { openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget, type Target, type TargetSpec } from "../../src/storage/target.ts";
import { superviseServers } from "../servers/process.ts";
import { type StorageServer, startStorageServer } from "../servers/storage.ts";
import { generate, sha256Of } from "./data.ts";
import { startWireProxy, type WireProxy, type WireRecord } from "./wire-proxy.ts";

superviseServers();

const MiB = 1024 * 1024;
const bucket = "enc";
const kmsKey = "backup-key";

interface Harness {
  server: StorageServer;
  proxy: WireProxy;
  stores: ObjectStore[];
  open(spec: TargetSpec): { store: ObjectStore; target: Target };
}

function harness(provider: "s3" | "gcs" | "azure", minioEnv?: Record<string, string>): Harness {
  const h = {
    stores: [] as ObjectStore[],
    open(spec: TargetSpec) {
      const target = parseTarget(h.server.target(bucket, { endpoint: h.proxy.url, partSize: 5 * MiB, ...spec }));
      const store = openObjectStore(target, h.server.credentials);
      h.stores.push(store);
      return { store, target };
    },
  } as Harness;
  before(async () => {
    h.server = await startStorageServer(provider, {
      name: `${provider}-encryption`,
      ...(minioEnv ? { minioEnv } : {}),
    });
    await h.server.createBucket(bucket);
    h.proxy = await startWireProxy(h.server.endpoint);
  });
  after(async () => {
    for (const s of h.stores) await s.close();
    await h.proxy?.stop();
    await h.server?.stop();
  });
  return h;
}

/** A 12 MiB multipart upload (5 MiB parts) and a small single request, both read back intact. */
async function uploadBoth(store: ObjectStore, prefix: string): Promise<{ multi: string; single: string }> {
  const multi = `${prefix}/multi.snap`;
  const single = `${prefix}/multi.snap.json`;
  const data = generate(12 * MiB);
  await store.upload(multi, data.source);
  const body = Buffer.from('{"manifest":true}');
  await store.upload(single, Readable.from([body]), { contentLength: body.length, contentType: "application/json" });
  assert.equal((await sha256Of(await store.download(multi))).sha256, data.sha256(), "multipart object reads back");
  assert.equal((await sha256Of(await store.download(single))).bytes, body.length, "single object reads back");
  return { multi, single };
}

const header = (r: WireRecord, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
};

describe("s3 on MinIO with its KMS: SSE-KMS and SSE-S3 for real", () => {
  const h = harness("s3", { MINIO_KMS_SECRET_KEY: `${kmsKey}:${randomBytes(32).toString("base64")}` });

  const writes = (prefix: string) => {
    const mine = h.proxy.records.filter((r) => r.url.startsWith(`/${bucket}/${prefix}/`));
    return {
      create: mine.filter((r) => r.method === "POST" && /[?&]uploads(=|&|$)/.test(r.url)),
      parts: mine.filter((r) => r.method === "PUT" && /[?&]partNumber=/.test(r.url)),
      complete: mine.filter((r) => r.method === "POST" && /[?&]uploadId=/.test(r.url)),
      put: mine.filter((r) => r.method === "PUT" && !/[?&]partNumber=/.test(r.url)),
    };
  };

  test("SSE-KMS with a named key: the creating requests carry it, parts do not, HEAD reports the key", async () => {
    const { store, target } = h.open({ encryption: { type: "aws:kms", kmsKeyId: kmsKey } });
    h.proxy.reset();
    const { multi, single } = await uploadBoth(store, "kms");
    const w = writes("kms");
    assert.equal(w.create.length, 1, "one CreateMultipartUpload");
    assert.ok(w.parts.length >= 3, `three parts of 5 MiB, got ${w.parts.length}`);
    assert.equal(w.complete.length, 1);
    assert.equal(w.put.length, 1, "the small object is one PutObject");
    for (const r of [...w.create, ...w.put]) {
      assert.equal(header(r, "x-amz-server-side-encryption"), "aws:kms", `${r.method} ${r.url}`);
      assert.equal(header(r, "x-amz-server-side-encryption-aws-kms-key-id"), kmsKey, `${r.method} ${r.url}`);
    }
    // S3 refuses the headers on UploadPart and CompleteMultipartUpload; the SDK leaves them off.
    for (const r of [...w.parts, ...w.complete]) {
      assert.equal(header(r, "x-amz-server-side-encryption"), undefined, `${r.method} ${r.url}`);
    }
    for (const key of [multi, single]) {
      const head = await store.head(key);
      assert.deepEqual(head?.encryption, { type: "aws:kms", key: `arn:aws:kms:${kmsKey}` }, key);
      assert.equal(encryptionMismatch(target, head?.encryption ?? { type: undefined, key: undefined }), undefined);
    }
  });

  test("SSE-S3 (AES256): both objects report AES256", async () => {
    const { store, target } = h.open({ encryption: { type: "AES256" } });
    h.proxy.reset();
    const { multi, single } = await uploadBoth(store, "aes");
    const w = writes("aes");
    assert.equal(w.create.length + w.put.length, 2, "one CreateMultipartUpload and one PutObject");
    for (const r of [...w.create, ...w.put]) assert.equal(header(r, "x-amz-server-side-encryption"), "AES256");
    for (const r of [...w.create, ...w.put]) {
      assert.equal(header(r, "x-amz-server-side-encryption-aws-kms-key-id"), undefined);
    }
    for (const key of [multi, single]) {
      const head = await store.head(key);
      assert.equal(head?.encryption.type, "AES256", key);
      assert.equal(encryptionMismatch(target, head?.encryption ?? { type: undefined, key: undefined }), undefined);
    }
  });

  test("SSE-KMS with the store's default key: any key it reports is accepted", async () => {
    const { store, target } = h.open({ encryption: { type: "aws:kms" } });
    h.proxy.reset();
    const { multi } = await uploadBoth(store, "kms-default");
    for (const r of writes("kms-default").create) {
      assert.equal(header(r, "x-amz-server-side-encryption"), "aws:kms");
      assert.equal(header(r, "x-amz-server-side-encryption-aws-kms-key-id"), undefined);
    }
    const head = await store.head(multi);
    assert.equal(head?.encryption.type, "aws:kms");
    assert.equal(encryptionMismatch(target, head?.encryption ?? { type: undefined, key: undefined }), undefined);
  });

  test("no encryption asked: no header is sent, the object is stored unencrypted and nothing is compared", async () => {
    const { store, target } = h.open({});
    h.proxy.reset();
    const { multi } = await uploadBoth(store, "plain");
    const w = writes("plain");
    assert.equal(w.create.length + w.put.length, 2, "one CreateMultipartUpload and one PutObject");
    for (const r of [...w.create, ...w.put]) assert.equal(header(r, "x-amz-server-side-encryption"), undefined);
    const head = await store.head(multi);
    assert.deepEqual(head?.encryption, { type: undefined, key: undefined });
    assert.equal(encryptionMismatch(target, head?.encryption ?? { type: undefined, key: undefined }), undefined);
  });

  test("an unknown KMS key: EncryptionKeyUnusable naming the key, nothing stored, no upload left open", async () => {
    const { store } = h.open({ encryption: { type: "aws:kms", kmsKeyId: "no-such-key" } });
    for (const [key, size] of [
      ["unknown/multi.snap", 12 * MiB],
      ["unknown/small.json", 100],
    ] as const) {
      await assert.rejects(store.upload(key, generate(size).source), (err: unknown) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.code, "EncryptionKeyUnusable", err.message);
        assert.match(err.message, /kms:KeyNotFound/);
        assert.match(err.message, /target\.encryption/);
        assert.match(err.message, /asked for SSE-KMS \(aws:kms\) with key no-such-key/);
        return true;
      });
      assert.equal(await store.head(key), null, `${key} is not stored`);
      assert.deepEqual(await h.server.openUploads(bucket, key), [], `no multipart upload left for ${key}`);
    }
  });
});

describe("gcs on fake-gcs-server: kmsKeyName on the upload, read back from the object resource", () => {
  const h = harness("gcs");
  const keyName = "projects/backup-project/locations/europe-west1/keyRings/backups/cryptoKeys/openbao";

  test("the resumable session is opened with kmsKeyName; HEAD reads the key GCS reports", async () => {
    const { store, target } = h.open({ encryption: { kmsKeyName: keyName } });
    h.proxy.reset();
    const { multi, single } = await uploadBoth(store, "cmek");
    const sessions = h.proxy.records.filter(
      (r) => r.method === "POST" && r.url.startsWith(`/upload/storage/v1/b/${bucket}/o?`),
    );
    assert.equal(sessions.length, 2, "one resumable session per object");
    for (const r of sessions) {
      const query = new URL(r.url, "http://x").searchParams;
      assert.equal(query.get("kmsKeyName"), keyName, r.url);
    }
    // fake-gcs-server ignores kmsKeyName: its answer has none, and the check refuses that.
    const plain = await store.head(multi);
    assert.deepEqual(plain?.encryption, { type: undefined, key: undefined });
    assert.match(
      encryptionMismatch(target, plain?.encryption ?? { type: undefined, key: undefined }) ?? "",
      /Cloud KMS key projects\/.*cryptoKeys\/openbao was asked for; the store reports no Cloud KMS key/,
    );
    // What GCS answers for a CMEK object: the key with the version it used.
    h.proxy.amendResponse = (req) =>
      req.method === "GET" &&
      /^\/storage\/v1\/b\/[^/]+\/o\/[^?]+\?/.test(req.url ?? "") &&
      !/alt=media/.test(req.url ?? "")
        ? { json: { kmsKeyName: `${keyName}/cryptoKeyVersions/3` } }
        : undefined;
    try {
      for (const key of [multi, single]) {
        const head = await store.head(key);
        assert.deepEqual(head?.encryption, { type: "cmek", key: `${keyName}/cryptoKeyVersions/3` }, key);
        assert.equal(encryptionMismatch(target, head?.encryption ?? { type: undefined, key: undefined }), undefined);
      }
      const other = parseTarget(h.server.target(bucket, { encryption: { kmsKeyName: `${keyName}-other` } }));
      const head = await store.head(multi);
      assert.match(
        encryptionMismatch(other, head?.encryption ?? { type: undefined, key: undefined }) ?? "",
        /openbao-other was asked for; the store reports Cloud KMS key .*cryptoKeys\/openbao\/cryptoKeyVersions\/3/,
      );
    } finally {
      h.proxy.amendResponse = undefined;
    }
  });

  test("no encryption asked: no kmsKeyName is sent", async () => {
    const { store } = h.open({});
    h.proxy.reset();
    await uploadBoth(store, "google-managed");
    const sessions = h.proxy.records.filter((r) => r.method === "POST" && r.url.startsWith("/upload/"));
    assert.ok(sessions.length > 0);
    for (const r of sessions) assert.doesNotMatch(r.url, /kmsKeyName/);
  });
});

describe("azure on Azurite: x-ms-encryption-scope on every block and the block list", () => {
  const h = harness("azure");
  const scope = "openbao-backups";

  test("every Put Block and Put Block List carries the scope; HEAD reads the scope Azure reports", async () => {
    const { store, target } = h.open({ encryption: { encryptionScope: scope } });
    h.proxy.reset();
    const { multi, single } = await uploadBoth(store, "scoped");
    const blocks = h.proxy.records.filter((r) => r.method === "PUT" && /[?&]comp=block(&|$)/.test(r.url));
    const lists = h.proxy.records.filter((r) => r.method === "PUT" && /[?&]comp=blocklist/.test(r.url));
    assert.ok(blocks.length >= 4, `three blocks of the 12 MiB blob and one of the small one, got ${blocks.length}`);
    assert.equal(lists.length, 2, "one block list per blob");
    for (const r of [...blocks, ...lists]) assert.equal(header(r, "x-ms-encryption-scope"), scope, r.url);
    // Azurite ignores the scope: its answer has none, and the check refuses that.
    const plain = await store.head(multi);
    assert.deepEqual(plain?.encryption, { type: undefined, key: undefined });
    assert.match(
      encryptionMismatch(target, plain?.encryption ?? { type: undefined, key: undefined }) ?? "",
      /encryption scope openbao-backups was asked for; the store reports no encryption scope/,
    );
    // What Azure answers for a blob written with a scope.
    h.proxy.amendResponse = (req) =>
      req.method === "HEAD" ? { headers: { "x-ms-encryption-scope": scope } } : undefined;
    try {
      for (const key of [multi, single]) {
        const head = await store.head(key);
        assert.deepEqual(head?.encryption, { type: "encryption-scope", key: scope }, key);
        assert.equal(encryptionMismatch(target, head?.encryption ?? { type: undefined, key: undefined }), undefined);
      }
    } finally {
      h.proxy.amendResponse = undefined;
    }
  });

  test("no encryption asked: no scope header is sent", async () => {
    const { store } = h.open({});
    h.proxy.reset();
    await uploadBoth(store, "default-scope");
    const writes = h.proxy.records.filter((r) => r.method === "PUT");
    assert.ok(writes.length > 0);
    for (const r of writes) assert.equal(header(r, "x-ms-encryption-scope"), undefined, r.url);
  });
});
