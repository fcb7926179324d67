/**
 * The ObjectStore contract (src/storage/object-store.ts), one suite run unchanged against
 * MinIO, fake-gcs-server and Azurite (s3.test.ts, gcs.test.ts, azure.test.ts). Every store
 * talks to the real server; where the wire matters (part sizes, parts in flight, listing
 * pages, a store failing mid-upload) it goes through a recording pass-through proxy
 * (wire-proxy.ts). What a provider leaves behind is checked with the official SDK, not with
 * the code under test.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { isStorageError, StorageError } from "../../src/storage/errors.ts";
import { openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget, type StorageCredentials, type TargetSpec } from "../../src/storage/target.ts";
import { freePort } from "../servers/ports.ts";
import { scratchDir } from "../servers/process.ts";
import { type StorageProvider, type StorageServer, startStorageServer } from "../servers/storage.ts";
import { createCertificateAuthority, issueCertificate } from "../servers/tls.ts";
import { generate, sha256Of } from "./data.ts";
import { startWireProxy, type WireProxy } from "./wire-proxy.ts";

const MiB = 1024 * 1024;
const partSize = 5 * MiB;

export interface ContractContext {
  server: StorageServer;
  proxy: WireProxy;
  bucket: string;
  /** Opens a store on the server (or through the proxy), closed after the test file. */
  open(overrides?: TargetSpec & { viaProxy?: boolean }, credentials?: StorageCredentials): ObjectStore;
}

/** Starts the provider's server, a proxy in front of it and a bucket; registers cleanup. */
export function contractContext(provider: StorageProvider): ContractContext {
  const stores: ObjectStore[] = [];
  const ctx = {
    bucket: "contract",
    open(overrides: TargetSpec & { viaProxy?: boolean } = {}, credentials?: StorageCredentials): ObjectStore {
      const { viaProxy, ...spec } = overrides;
      const target = parseTarget(
        ctx.server.target(ctx.bucket, { ...spec, ...(viaProxy ? { endpoint: ctx.proxy.url } : {}) }),
      );
      const store = openObjectStore(target, credentials ?? ctx.server.credentials);
      stores.push(store);
      return store;
    },
  } as ContractContext;
  before(async () => {
    ctx.server = await startStorageServer(provider);
    await ctx.server.createBucket(ctx.bucket);
    ctx.proxy = await startWireProxy(ctx.server.endpoint);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await ctx.proxy?.stop();
    await ctx.server?.stop();
  });
  return ctx;
}

async function assertNothingLeft(ctx: ContractContext, store: ObjectStore, key: string): Promise<void> {
  assert.equal(await store.head(key), null, `an object was left under ${key}`);
  const listed: string[] = [];
  for await (const o of store.list(key)) listed.push(o.key);
  assert.deepEqual(listed, [], `listing ${key} shows ${listed.join(", ")}`);
  assert.deepEqual(await ctx.server.openUploads(ctx.bucket, key), [], "a multipart upload was left open");
}

async function roundTrip(store: ObjectStore, key: string, size: number, contentType?: string): Promise<void> {
  const data = generate(size);
  const result = await store.upload(key, data.source, {
    metadata: { sha256: "pending", kind: "test" },
    ...(contentType ? { contentType } : {}),
  });
  assert.equal(result.size, size);
  assert.equal(result.key, key);
  const head = await store.head(key);
  assert.ok(head, `head(${key}) found nothing`);
  assert.equal(head.size, size);
  assert.equal(head.metadata.kind, "test");
  assert.ok(head.lastModified.getTime() > Date.now() - 10 * 60_000, `lastModified ${head.lastModified.toISOString()}`);
  const down = await sha256Of(await store.download(key));
  assert.equal(down.bytes, size);
  assert.equal(down.sha256, data.sha256(), `${key}: downloaded bytes differ from uploaded bytes`);
}

export function storageContract(provider: StorageProvider): void {
  describe(`${provider}: ObjectStore contract`, () => {
    const ctx = contractContext(provider);

    for (const [name, size] of [
      ["0 bytes", 0],
      ["1 byte", 1],
      ["exactly partSize", partSize],
      ["partSize + 1", partSize + 1],
    ] as const) {
      test(`round trip of ${name} is byte-identical, with size and metadata`, async () => {
        const store = ctx.open({ partSize, concurrency: 3 });
        await roundTrip(store, `roundtrip/${size}.bin`, size, "application/gzip");
        const head = await store.head(`roundtrip/${size}.bin`);
        if (!ctx.server.quirks.dropsUploadContentType) assert.equal(head?.contentType, "application/gzip");
      });
    }

    test("partSize and concurrency reach the wire: parts of exactly partSize, at most `concurrency` in flight", async () => {
      const ps = 6 * MiB;
      const store = ctx.open({ partSize: ps, concurrency: 2, viaProxy: true });
      ctx.proxy.reset();
      const size = 5 * ps + 123;
      await roundTrip(store, "wire/small.bin", size);
      const parts = ctx.proxy.records.filter(
        (r) => ctx.server.isPartRequest(r.method, r.url) && r.status !== undefined,
      );
      assert.deepEqual(
        parts.map((p) => p.bodyBytes),
        [ps, ps, ps, ps, ps, 123],
        "part sizes on the wire",
      );
      const inFlight = ctx.proxy.maxConcurrent((r) => ctx.server.isPartRequest(r.method, r.url));
      assert.ok(inFlight <= 2, `${inFlight} parts in flight with concurrency 2`);
      if (ctx.server.parallelParts) assert.equal(inFlight, 2, "parts were not uploaded in parallel");
    });

    test("200 MiB round trip through the wire: byte-identical, partSize parts, `concurrency` in flight", async () => {
      const ps = 8 * MiB;
      const store = ctx.open({ partSize: ps, concurrency: 3, viaProxy: true });
      ctx.proxy.reset();
      const size = 200 * MiB;
      const started = performance.now();
      await roundTrip(store, "wire/200MiB.bin", size);
      const seconds = (performance.now() - started) / 1000;
      const parts = ctx.proxy.records.filter((r) => ctx.server.isPartRequest(r.method, r.url));
      assert.equal(parts.length, size / ps);
      assert.ok(parts.every((p) => p.bodyBytes === ps));
      const inFlight = ctx.proxy.maxConcurrent((r) => ctx.server.isPartRequest(r.method, r.url));
      assert.equal(inFlight, ctx.server.parallelParts ? 3 : 1);
      process.stdout.write(
        `# ${provider}: 200 MiB up and down in ${seconds.toFixed(1)} s, ${inFlight} parts in flight\n`,
      );
      await store.delete("wire/200MiB.bin");
    });

    test("listing 2,500 keys returns all of them, over several pages; batch delete removes exactly the given keys", async () => {
      const store = ctx.open({ concurrency: 16, viaProxy: true });
      const keys = Array.from({ length: 2500 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
      const decoys = ["many-not/0", "man/1"];
      const all = [...keys, ...decoys];
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = next++; i < all.length; i = next++) {
            await ctx.server.putObject(ctx.bucket, all[i] as string, "x");
          }
        }),
      );
      ctx.proxy.reset();
      const listed: string[] = [];
      for await (const o of store.list("many/")) {
        listed.push(o.key);
        assert.equal(o.size, 1);
      }
      assert.equal(listed.length, 2500);
      assert.deepEqual([...listed].sort(), keys);
      const pages = ctx.proxy.records.filter((r) => ctx.server.isListRequest(r.method, r.url)).length;
      assert.ok(pages >= 3, `2,500 keys came in ${pages} page(s); pagination was not exercised`);

      const doomed = keys.filter((_, i) => i % 3 === 0);
      const result = await store.deleteMany([...doomed, "many/missing-1", "many/missing-2"]);
      assert.deepEqual(result.failed, []);
      assert.deepEqual([...result.deleted].sort(), [...doomed, "many/missing-1", "many/missing-2"].sort());
      const remaining: string[] = [];
      for await (const o of store.list("man")) remaining.push(o.key);
      const doomedSet = new Set(doomed);
      assert.deepEqual(remaining.sort(), [...keys.filter((k) => !doomedSet.has(k)), ...decoys].sort());
    });

    test("a source that fails after 12 MiB rejects with its own error and leaves no object and no open upload", async () => {
      const store = ctx.open({ partSize, concurrency: 3 });
      const boom = new Error("snapshot stream cut after 12 MiB");
      const data = generate(100 * MiB, { failAfter: { bytes: 12 * MiB, error: boom } });
      await assert.rejects(store.upload("fail/source.bin", data.source), (err) => err === boom);
      await assertNothingLeft(ctx, store, "fail/source.bin");
    });

    test("an abort mid-upload rejects with Aborted and leaves nothing behind", async () => {
      const store = ctx.open({ partSize, concurrency: 3 });
      const controller = new AbortController();
      const data = generate(100 * MiB, { onProgress: { bytes: 12 * MiB, run: () => controller.abort() } });
      await assert.rejects(
        store.upload("fail/aborted.bin", data.source, { signal: controller.signal }),
        (err) => isStorageError(err) && err.code === "Aborted",
      );
      assert.ok(data.produced() < 40 * MiB, `the source was read on to ${data.produced()} bytes after the abort`);
      await assertNothingLeft(ctx, store, "fail/aborted.bin");
    });

    test("a store that fails mid-upload gives a typed error and leaves nothing behind", async () => {
      const store = ctx.open({ partSize, concurrency: 2, viaProxy: true });
      let parts = 0;
      ctx.proxy.failWhen = (req) => ctx.server.isPartRequest(req.method ?? "", req.url ?? "") && ++parts > 2;
      try {
        await assert.rejects(store.upload("fail/store.bin", generate(60 * MiB).source), (err) => {
          assert.ok(isStorageError(err), `not a StorageError: ${inspect(err)}`);
          assert.equal(err.operation, "upload");
          return true;
        });
      } finally {
        ctx.proxy.failWhen = undefined;
      }
      await assertNothingLeft(ctx, ctx.open(), "fail/store.bin");
    });

    test("declared contentLength: a matching stream is stored, a short one is refused and leaves nothing", async () => {
      const store = ctx.open({ partSize, concurrency: 3 });
      const ok = generate(7 * MiB);
      assert.equal((await store.upload("length/ok.bin", ok.source, { contentLength: 7 * MiB })).size, 7 * MiB);
      await assert.rejects(
        store.upload("length/short.bin", generate(7 * MiB).source, { contentLength: 8 * MiB }),
        (err) => isStorageError(err) && err.code === "SizeMismatch",
      );
      await assertNothingLeft(ctx, store, "length/short.bin");
    });

    test("a download stops with Aborted when its signal fires mid-stream", async () => {
      const store = ctx.open({ partSize });
      await store.upload("download/abort.bin", generate(8 * MiB).source);
      const controller = new AbortController();
      const body = await store.download("download/abort.bin", { signal: controller.signal });
      let bytes = 0;
      await assert.rejects(
        (async () => {
          for await (const chunk of body) {
            bytes += (chunk as Buffer).length;
            controller.abort();
          }
        })(),
        (err) => isStorageError(err) && err.code === "Aborted" && err.operation === "download",
      );
      assert.ok(bytes < 8 * MiB, `read ${bytes} bytes`);
    });

    test("missing objects: head is null, download is NotFound, delete succeeds", async () => {
      const store = ctx.open();
      assert.equal(await store.head("missing/nothing"), null);
      await assert.rejects(store.download("missing/nothing"), (err) => isStorageError(err) && err.code === "NotFound");
      await store.delete("missing/nothing");
      const listed: string[] = [];
      for await (const o of store.list("missing/")) listed.push(o.key);
      assert.deepEqual(listed, []);
    });

    test("a missing bucket is NotFound on upload", async () => {
      const store = ctx.open({ bucket: "no-such-bucket" });
      await assert.rejects(
        store.upload("x", generate(10).source),
        (err) => isStorageError(err) && err.code === "NotFound" && err.message.includes("no-such-bucket"),
      );
    });

    test("wrong credentials give AuthDenied without the secret in the error", async (t) => {
      const secret = "Wr0ngS3cretValue-do-not-print-4f1c9a";
      const credentials = ctx.server.wrongCredentials(secret);
      if (!credentials) {
        t.skip(`${provider}: the emulator checks no credentials (see gcs.test.ts for GCS auth failures)`);
        return;
      }
      const store = ctx.open({}, credentials);
      const encoded = Buffer.from(secret).toString("base64");
      for (const attempt of [() => store.head("auth/x"), () => store.upload("auth/x", generate(1000).source)]) {
        await assert.rejects(attempt(), (err) => {
          assert.ok(isStorageError(err), `not a StorageError: ${String(err)}`);
          assert.equal(err.code, "AuthDenied", err.message);
          const everything = `${err.message}\n${inspect(err, { depth: 6 })}`;
          assert.ok(!everything.includes(secret) && !everything.includes(encoded), "the secret leaked into the error");
          return true;
        });
      }
    });

    test("an unreachable endpoint gives Unreachable, quickly", async () => {
      const port = await freePort();
      const store = ctx.open({ endpoint: `http://127.0.0.1:${port}` });
      for (const [name, attempt] of [
        ["head", () => store.head("x")],
        ["upload", () => store.upload("x", generate(2 * MiB).source)],
        [
          "list",
          async () => {
            for await (const _ of store.list("x")) break;
          },
        ],
      ] as const) {
        const started = performance.now();
        await assert.rejects(attempt(), (err) => {
          assert.ok(err instanceof StorageError, `${name}: not a StorageError: ${String(err)}`);
          assert.equal(err.code, "Unreachable", err.message);
          assert.match(err.message, /unreachable/);
          return true;
        });
        const seconds = (performance.now() - started) / 1000;
        process.stdout.write(`# ${provider}: ${name} against a closed port failed in ${seconds.toFixed(1)} s\n`);
        assert.ok(seconds < 20, `${name} took ${seconds.toFixed(1)} s`);
      }
    });
  });
}

/**
 * TLS to the store (SPEC §5 trap 10): the same checks for every provider against its server
 * serving HTTPS with a certificate from a CA made for the run.
 */
export function tlsContract(provider: StorageProvider): void {
  describe(`${provider}: TLS to the store`, () => {
    tlsTests(provider);
  });
}

function tlsTests(provider: StorageProvider): void {
  let server: StorageServer;
  let caPem = "";
  let otherCaPem = "";
  const stores: ObjectStore[] = [];
  const open = (spec: TargetSpec, extra: StorageCredentials): ObjectStore => {
    const store = openObjectStore(parseTarget(server.target("tls", spec)), { ...server.credentials, ...extra });
    stores.push(store);
    return store;
  };
  before(async () => {
    const dir = scratchDir(`${provider}-tls`);
    const ca = createCertificateAuthority(dir);
    caPem = ca.certPem;
    otherCaPem = createCertificateAuthority(scratchDir(`${provider}-other-ca`), "some other CA").certPem;
    server = await startStorageServer(provider, {
      tls: { ca, cert: issueCertificate(ca, "storage") },
      name: `${provider}-tls`,
    });
    await server.createBucket("tls");
  });
  after(async () => {
    for (const store of stores) await store.close();
    await server?.stop();
  });
  test("caCert from the credentials Secret is trusted", async () => {
    assert.match(server.endpoint, /^https:/);
    await roundTrip(open({}, { caCert: caPem }), "tls/ca.bin", 3 * MiB);
  });

  test("without caCert the certificate is refused with a typed error that says how to fix it", async () => {
    for (const extra of [{}, { caCert: otherCaPem }]) {
      await assert.rejects(open({}, extra).head("tls/ca.bin"), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.code, "Unreachable", err.message);
        assert.match(err.message, /TLS verification.*caCert/);
        return true;
      });
    }
  });

  test("insecureSkipVerify turns verification off for the store", async () => {
    const head = await open({ insecureSkipVerify: true }, {}).head("tls/ca.bin");
    assert.equal(head?.size, 3 * MiB);
  });
}
