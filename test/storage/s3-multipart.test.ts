/**
 * S3's own multipart path (src/storage/s3/multipart.ts) against a real MinIO, beyond the
 * contract every provider passes (contract.ts): what each UploadPart carries on the wire over
 * plain HTTP (its SHA-256 signed and sent as its checksum), that parts go over HTTPS with the
 * store's CA, an unsigned payload and a CRC32, that a part cut off on the wire is retried by the client's retry
 * strategy, and that temporary credentials from web identity (a session token the signer adds)
 * sign the parts as they sign the SDK's own requests.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { StorageError } from "../../src/storage/errors.ts";
import { openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget, type StorageCredentials, type TargetSpec } from "../../src/storage/target.ts";
import { scratchDir, superviseServers, waitFor } from "../servers/process.ts";
import { type StorageServer, startStorageServer } from "../servers/storage.ts";
import { createCertificateAuthority, issueCertificate } from "../servers/tls.ts";
import { sha256Of } from "./data.ts";
import { startOidcIssuer } from "./oidc-issuer.ts";
import { startWireProxy, type WireProxy } from "./wire-proxy.ts";

superviseServers();

const MiB = 1024 * 1024;
const partSize = 5 * MiB;

/** `bytes` as a socket would deliver them: 64 KiB chunks. */
function chunked(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
    })(),
  );
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/** The SDK's own client on `server`, to look at what the store holds independently of ours. */
function officialClient(server: StorageServer, requestHandler?: NodeHttpHandler): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: {
      accessKeyId: server.credentials.accessKeyId ?? "",
      secretAccessKey: server.credentials.secretAccessKey ?? "",
    },
    ...(requestHandler === undefined ? {} : { requestHandler }),
  });
}

function crc32Base64(bytes: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(bytes) >>> 0);
  return out.toString("base64");
}

const isPart = (method: string, url: string): boolean =>
  method === "PUT" && /[?&]partNumber=/.test(url) && /[?&]uploadId=/.test(url);

describe("s3 multipart on MinIO over HTTP: what each part carries, and retries", () => {
  let server: StorageServer;
  let proxy: WireProxy;
  const stores: ObjectStore[] = [];
  const open = (spec: TargetSpec = {}): ObjectStore => {
    const store = openObjectStore(
      parseTarget(server.target("parts", { endpoint: proxy.url, partSize, concurrency: 2, ...spec })),
      server.credentials,
    );
    stores.push(store);
    return store;
  };

  before(async () => {
    server = await startStorageServer("s3", { name: "minio-multipart" });
    await server.createBucket("parts");
    proxy = await startWireProxy(server.endpoint);
  });
  after(async () => {
    for (const s of stores) await s.close();
    await proxy?.stop();
    await server?.stop();
  });

  test("each part: exactly its bytes, an unsigned payload with its CRC32 in a signed header (plain HTTP too); read back whole", async () => {
    const bytes = randomBytes(2 * partSize + 12345);
    proxy.reset();
    const store = open();
    await store.upload("wire/parts.bin", chunked(bytes));
    const parts = proxy.records.filter((r) => isPart(r.method, r.url));
    const expected = [
      bytes.subarray(0, partSize),
      bytes.subarray(partSize, 2 * partSize),
      bytes.subarray(2 * partSize),
    ];
    assert.deepEqual(
      parts.map((p) => p.bodyBytes),
      expected.map((e) => e.length),
    );
    const byNumber = new Map(parts.map((p) => [Number(/[?&]partNumber=(\d+)/.exec(p.url)?.[1]), p]));
    expected.forEach((part, i) => {
      const record = byNumber.get(i + 1);
      assert.ok(record, `part ${i + 1} was sent`);
      // No SHA-256 pass over the part: the payload goes unsigned, as the SDK sends a streamed
      // body, and the store checks the CRC32, whose header the signature covers.
      assert.equal(record.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD", `part ${i + 1}: unsigned payload`);
      assert.equal(record.headers["x-amz-checksum-crc32"], crc32Base64(part), `part ${i + 1}: checksum`);
      assert.equal(record.headers["x-amz-checksum-sha256"], undefined, `part ${i + 1}: no SHA-256`);
      assert.match(String(record.headers.authorization), /SignedHeaders=[^,]*x-amz-checksum-crc32/);
    });
    const down = await sha256Of(await store.download("wire/parts.bin"));
    assert.equal(down.sha256, sha256(bytes));
  });

  test("a download is the SDK's signed GetObject read on its own connection, whole; a cut body fails, never ends cleanly", async () => {
    const store = open();
    const bytes = randomBytes(3 * partSize + 12_345);
    await store.upload("wire/download.bin", chunked(bytes));
    proxy.reset();
    const down = await sha256Of(await store.download("wire/download.bin"));
    assert.equal(down.sha256, sha256(bytes));
    assert.equal(down.bytes, bytes.length);
    const gets = proxy.matching((r) => r.method === "GET");
    assert.equal(gets.length, 1);
    // Signed by the SDK (SigV4, its x-id), sent by http1/stream-get.ts (not node:http's keep-alive agent).
    assert.match(String(gets[0]?.headers.authorization), /^AWS4-HMAC-SHA256 /);
    assert.match(gets[0]?.url ?? "", /[?&]x-id=GetObject(&|$)/);
    assert.equal(gets[0]?.headers.connection, "close");

    proxy.cutResponseWhen = (req) => (req.method === "GET" ? 5 * MiB + 7 : undefined);
    try {
      const stream = await store.download("wire/download.bin");
      await assert.rejects(sha256Of(stream), (err: unknown) => {
        assert.ok(err instanceof StorageError, String(err));
        assert.equal(err.code, "Unreachable");
        assert.match(err.message, /s3 download .*wire\/download\.bin/);
        return true;
      });
    } finally {
      proxy.cutResponseWhen = undefined;
    }
  });

  test("a download whose connection closes before any answer is retried by the SDK, and arrives whole", async () => {
    const store = open();
    const bytes = randomBytes(partSize + 4_321);
    await store.upload("wire/retried-download.bin", chunked(bytes));
    proxy.reset();
    let cut = 0;
    proxy.failWhen = (req) => req.method === "GET" && ++cut === 1;
    try {
      const down = await sha256Of(await store.download("wire/retried-download.bin"));
      assert.equal(down.sha256, sha256(bytes));
    } finally {
      proxy.failWhen = undefined;
    }
    assert.equal(proxy.matching((r) => r.method === "GET").length, 2, "the first GET cut, the second answered");
  });

  test("a part changed on the wire is refused by the store (its CRC32): the upload fails and leaves nothing", async () => {
    const bytes = randomBytes(3 * partSize);
    proxy.reset();
    proxy.alterWhen = (req) => isPart(req.method ?? "", req.url ?? "") && /[?&]partNumber=2(&|$)/.test(req.url ?? "");
    const store = open();
    try {
      await assert.rejects(store.upload("wire/altered.bin", chunked(bytes)));
    } finally {
      proxy.alterWhen = undefined;
    }
    const second = proxy.records.filter((r) => isPart(r.method, r.url) && /[?&]partNumber=2(&|$)/.test(r.url));
    assert.ok(second.length >= 1 && second.every((r) => r.status === 400), "the store refused the altered part");
    assert.equal(await store.head("wire/altered.bin"), null, "no object under the key");
    const direct = officialClient(server);
    try {
      const open = await direct.send(new ListMultipartUploadsCommand({ Bucket: "parts", Prefix: "wire/altered.bin" }));
      assert.deepEqual(open.Uploads ?? [], [], "the multipart upload was aborted");
    } finally {
      direct.destroy();
    }
  });

  test("a part cut off on the wire is retried, and the object is whole", async () => {
    const bytes = randomBytes(3 * partSize);
    proxy.reset();
    let cut = 0;
    proxy.failWhen = (req) =>
      isPart(req.method ?? "", req.url ?? "") && /[?&]partNumber=2(&|$)/.test(req.url ?? "") && ++cut === 1;
    try {
      const store = open();
      await store.upload("wire/retried.bin", chunked(bytes));
    } finally {
      proxy.failWhen = undefined;
    }
    const second = proxy.records.filter((r) => isPart(r.method, r.url) && /[?&]partNumber=2(&|$)/.test(r.url));
    assert.equal(second.length, 2, "part 2 was sent twice");
    const direct = openObjectStore(parseTarget(server.target("parts")), server.credentials);
    stores.push(direct);
    const down = await sha256Of(await direct.download("wire/retried.bin"));
    assert.equal(down.sha256, sha256(bytes));
  });
});

describe("s3 multipart on MinIO over HTTPS", () => {
  let server: StorageServer;
  let caPem = "";
  const stores: ObjectStore[] = [];
  before(async () => {
    const ca = createCertificateAuthority(scratchDir("s3-multipart-tls"));
    caPem = ca.certPem;
    server = await startStorageServer("s3", {
      tls: { ca, cert: issueCertificate(ca, "storage") },
      name: "minio-multipart-tls",
    });
    await server.createBucket("tls");
  });
  after(async () => {
    for (const s of stores) await s.close();
    await server?.stop();
  });

  test("parts go over TLS with the store's CA (unsigned payload, CRC32 checked by the store and listed)", async () => {
    assert.match(server.endpoint, /^https:/);
    const store = openObjectStore(parseTarget(server.target("tls", { partSize, concurrency: 3 })), {
      ...server.credentials,
      caCert: caPem,
    });
    stores.push(store);
    const bytes = randomBytes(3 * partSize + 7);
    const result = await store.upload("tls/parts.bin", chunked(bytes));
    assert.equal(result.size, bytes.length);
    assert.equal((await store.head("tls/parts.bin"))?.size, bytes.length);
    assert.equal((await sha256Of(await store.download("tls/parts.bin"))).sha256, sha256(bytes));
    // Over TLS the parts carry CRC32 (no SHA-256 is computed for an unsigned payload): the
    // store's composite checksum is the CRC32 of the four parts' CRC32s, listed by Complete.
    const official = officialClient(server, new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: caPem }) }));
    try {
      const head = await official.send(
        new HeadObjectCommand({ Bucket: "tls", Key: "tls/parts.bin", ChecksumMode: "ENABLED" }),
      );
      const parts = [0, 1, 2, 3].map((i) => bytes.subarray(i * partSize, (i + 1) * partSize));
      const composite = Buffer.concat(parts.map((part) => Buffer.from(crc32Base64(part), "base64")));
      assert.equal(head.ChecksumCRC32, `${crc32Base64(composite)}-4`);
      assert.equal(head.ChecksumSHA256, undefined);
    } finally {
      official.destroy();
    }
  });
});

describe("s3 multipart with temporary credentials from web identity", () => {
  const region = "eu-central-2";
  let server: StorageServer;
  let stop: (() => Promise<void>) | undefined;
  let token = "";
  let roleArn = "";
  const stores: ObjectStore[] = [];
  before(async () => {
    const idp = await startOidcIssuer("sts.amazonaws.com");
    stop = () => idp.stop();
    token = idp.token();
    server = await startStorageServer("s3", {
      name: "minio-multipart-sts",
      minioEnv: {
        MINIO_SITE_REGION: region,
        MINIO_IDENTITY_OPENID_CONFIG_URL: idp.discoveryUrl,
        MINIO_IDENTITY_OPENID_CLIENT_ID: "sts.amazonaws.com",
        MINIO_IDENTITY_OPENID_ROLE_POLICY: "readwrite",
      },
    });
    roleArn = await waitFor(
      async () => /arn:minio:iam:[^:]*::role\/\S+/.exec(readFileSync(server.processes[0]?.logPath ?? "", "utf8"))?.[0],
      { what: "MinIO to print its IAM role ARN", timeoutMs: 10_000 },
    );
    await server.createBucket("sts");
  });
  after(async () => {
    for (const s of stores) await s.close();
    await server?.stop();
    await stop?.();
  });

  test("roleArn + token file: every part is signed with the session token, and the object is whole", async () => {
    const tokenFile = join(scratchDir("multipart-token"), "token");
    writeFileSync(tokenFile, token);
    const credentials: StorageCredentials = {};
    const store = openObjectStore(
      parseTarget(server.target("sts", { region, roleArn, partSize, concurrency: 2 })),
      credentials,
      { webIdentityTokenFile: tokenFile },
    );
    stores.push(store);
    const bytes = randomBytes(2 * partSize + 1);
    await store.upload("sts/parts.bin", chunked(bytes));
    assert.equal((await sha256Of(await store.download("sts/parts.bin"))).sha256, sha256(bytes));
  });
});
