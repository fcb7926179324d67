/**
 * Issue 18, item 1, at the storage layer: S3 Object Lock and versioned buckets on a real MinIO.
 *
 * - What reaches the wire: every upload request carries a checksum (AWS refuses uploads
 *   into a bucket with Object Lock — a default retention is enough — without Content-MD5 or an
 *   `x-amz-checksum-*` header; MinIO does not insist, so the headers are read off the wire).
 * - HEAD reports the lock (mode, retain-until, legal hold) of what a backup writes.
 * - Retention's delete (`deleteUnlocked`) keeps what a lock holds and says until when, deletes
 *   what it no longer holds, and on a versioned bucket leaves no version or delete marker
 *   behind; an identity that may not remove versions gets the key hidden and told why.
 * - A lock asked of a bucket without Object Lock fails clearly, nothing stored.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CreateBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { fromTemporaryCredentials } from "@aws-sdk/credential-providers";
import { isStorageError } from "../../src/storage/errors.ts";
import { deleteUnlocked } from "../../src/storage/locks.ts";
import type { ObjectStore, WriteLock } from "../../src/storage/object-store.ts";
import { S3ObjectStore } from "../../src/storage/s3/store.ts";
import { parseTarget, type S3Target } from "../../src/storage/target.ts";
import { type MinioServer, startMinio } from "../servers/minio.ts";
import { superviseServers } from "../servers/process.ts";
import { generate } from "./data.ts";
import { startWireProxy, type WireProxy } from "./wire-proxy.ts";

superviseServers();

const MiB = 1024 * 1024;
const locked = "locked";
const versioned = "versioned";
const plain = "plain";
const day = 24 * 60 * 60 * 1000;

describe("S3 Object Lock and versioned buckets on MinIO", () => {
  let minio: MinioServer;
  let proxy: WireProxy;
  let admin: S3Client;
  const stores: ObjectStore[] = [];

  before(async () => {
    minio = await startMinio({ name: "minio-lock" });
    admin = minio.client();
    // Object Lock (which turns versioning on) with a default GOVERNANCE retention of one day,
    // the way a locked-down bucket is created.
    await admin.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
    await admin.send(
      new PutObjectLockConfigurationCommand({
        Bucket: locked,
        ObjectLockConfiguration: {
          ObjectLockEnabled: "Enabled",
          Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 1 } },
        },
      }),
    );
    await admin.send(new CreateBucketCommand({ Bucket: versioned }));
    await admin.send(
      new PutBucketVersioningCommand({ Bucket: versioned, VersioningConfiguration: { Status: "Enabled" } }),
    );
    await admin.send(new CreateBucketCommand({ Bucket: plain }));
    proxy = await startWireProxy(minio.endpoint);
  });
  after(async () => {
    for (const s of stores) await s.close();
    await proxy?.stop();
    await minio?.stop();
  });

  const open = (
    bucket: string,
    credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  ) => {
    const target = parseTarget({
      provider: "s3",
      endpoint: proxy.url,
      bucket,
      usePathStyle: true,
      partSize: 5 * MiB,
    }) as S3Target;
    const store = new S3ObjectStore(target, {
      accessKeyId: credentials?.accessKeyId ?? minio.accessKeyId,
      secretAccessKey: credentials?.secretAccessKey ?? minio.secretAccessKey,
      ...(credentials?.sessionToken === undefined ? {} : { sessionToken: credentials.sessionToken }),
    });
    stores.push(store);
    return store;
  };

  const put = async (store: ObjectStore, key: string, size: number, lock?: WriteLock): Promise<void> => {
    const data = generate(size);
    await store.upload(key, data.source, lock === undefined ? {} : { lock });
  };

  /** Every version and delete marker of `key` (exactly that key) the bucket holds. */
  const versionsOf = async (bucket: string, key: string): Promise<{ versions: number; markers: number }> => {
    const out = await admin.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    return {
      versions: (out.Versions ?? []).filter((v) => v.Key === key).length,
      markers: (out.DeleteMarkers ?? []).filter((v) => v.Key === key).length,
    };
  };

  test("every upload request carries a checksum (CRC32), single PUT and multipart alike", async () => {
    const store = open(locked);
    const from = proxy.records.length;
    await put(store, "wire/small.snap", 1 * MiB);
    await put(store, "wire/large.snap", 12 * MiB);
    const sent = proxy.records.slice(from);
    const puts = sent.filter((r) => r.method === "PUT");
    assert.equal(puts.length, 1 + 3, "one PutObject and three UploadParts");
    for (const r of puts) {
      assert.match(String(r.headers["x-amz-checksum-crc32"] ?? ""), /^[A-Za-z0-9+/]{6}==$/, `${r.url} carries CRC32`);
    }
    const create = sent.find((r) => r.method === "POST" && r.url.includes("?uploads"));
    assert.equal(create?.headers["x-amz-checksum-algorithm"], "CRC32", "CreateMultipartUpload names the algorithm");
    // The completed object has a checksum of its parts' checksums: CompleteMultipartUpload listed them.
    const head = await admin.send(
      new HeadObjectCommand({ Bucket: locked, Key: "wire/large.snap", ChecksumMode: "ENABLED" }),
    );
    assert.match(head.ChecksumCRC32 ?? "", /-3$/, `a composite CRC32 over 3 parts (${head.ChecksumCRC32})`);
  });

  test("HEAD reports the bucket's default retention, and a lock asked for with a legal hold", async () => {
    const store = open(locked);
    await put(store, "head/default.snap", 1024);
    const byDefault = await store.head("head/default.snap");
    assert.equal(byDefault?.lock.mode, "GOVERNANCE");
    const until = byDefault?.lock.retainUntil?.getTime() ?? 0;
    assert.ok(
      Math.abs(until - (Date.now() + day)) < 5 * 60_000,
      `retained for a day (${byDefault?.lock.retainUntil?.toISOString()})`,
    );
    assert.equal(byDefault?.lock.legalHold, false);

    const asked: WriteLock = {
      mode: "GOVERNANCE",
      retainUntil: new Date(Math.ceil((Date.now() + 3 * day) / 1000) * 1000),
      legalHold: true,
    };
    await put(store, "head/held.snap", 6 * MiB, asked);
    const held = await store.head("head/held.snap");
    assert.equal(held?.lock.mode, "GOVERNANCE");
    assert.equal(held?.lock.retainUntil?.toISOString(), asked.retainUntil.toISOString());
    assert.equal(held?.lock.legalHold, true, "the multipart object carries the legal hold");

    const unlocked = await open(plain).head(
      await (async () => {
        await put(open(plain), "head/plain.snap", 1024);
        return "head/plain.snap";
      })(),
    );
    assert.deepEqual(unlocked?.lock, { mode: undefined, retainUntil: undefined, legalHold: false });
  });

  test("retention keeps what a lock holds (untouched, still listed) and says until when", async () => {
    const store = open(locked);
    await put(store, "ret/a.snap", 1024);
    await put(store, "ret/a.snap.json", 100);
    await put(store, "ret/b.snap", 1024, {
      mode: "GOVERNANCE",
      retainUntil: new Date(Math.ceil((Date.now() + day) / 1000) * 1000),
      legalHold: true,
    });
    const result = await deleteUnlocked(store, [["ret/a.snap.json", "ret/a.snap"], ["ret/b.snap"]], new Date());
    assert.deepEqual(result.deleted, []);
    assert.deepEqual(result.failed, []);
    assert.deepEqual(
      result.locked.map((l) => [l.key, l.mode, l.legalHold]),
      [
        ["ret/a.snap.json", "GOVERNANCE", false],
        ["ret/a.snap", "GOVERNANCE", false],
        ["ret/b.snap", "GOVERNANCE", true],
      ],
    );
    for (const key of ["ret/a.snap", "ret/a.snap.json", "ret/b.snap"]) {
      assert.deepEqual(
        await versionsOf(locked, key),
        { versions: 1, markers: 0 },
        `${key} untouched: no delete marker`,
      );
    }
  });

  test("once its lock has ended, an object is deleted with every version: nothing left behind", async () => {
    const store = open(locked);
    const soon = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000);
    await put(store, "expired/a.snap", 1024, { mode: "GOVERNANCE", retainUntil: soon, legalHold: false });
    // Still locked: kept.
    const early = await deleteUnlocked(store, [["expired/a.snap"]], new Date());
    assert.equal(early.locked.length, 1);
    await sleep(soon.getTime() - Date.now() + 1500);
    const result = await deleteUnlocked(store, [["expired/a.snap"]], new Date());
    assert.deepEqual(result.locked, []);
    assert.deepEqual(result.deleted, ["expired/a.snap"]);
    assert.deepEqual(result.versionsKept, []);
    assert.deepEqual(await versionsOf(locked, "expired/a.snap"), { versions: 0, markers: 0 });
  });

  test("a versioned bucket: delete removes every version and the delete marker", async () => {
    const store = open(versioned);
    await put(store, "v/a.snap", 1024);
    await put(store, "v/a.snap", 2048); // a second version of the same key
    await put(store, "v/a.snap.json", 100);
    const result = await store.deleteMany(["v/a.snap", "v/a.snap.json"]);
    assert.deepEqual(result.deleted.sort(), ["v/a.snap", "v/a.snap.json"]);
    assert.deepEqual(result.versionsKept, []);
    assert.deepEqual(await versionsOf(versioned, "v/a.snap"), { versions: 0, markers: 0 });
    assert.deepEqual(await versionsOf(versioned, "v/a.snap.json"), { versions: 0, markers: 0 });
    // An unversioned bucket is unchanged: a plain delete.
    const flat = open(plain);
    await put(flat, "p/a.snap", 1024);
    const plainResult = await flat.deleteMany(["p/a.snap", "p/missing.snap"]);
    assert.deepEqual(plainResult.deleted.sort(), ["p/a.snap", "p/missing.snap"]);
    assert.deepEqual(await versionsOf(plain, "p/a.snap"), { versions: 0, markers: 0 });
  });

  test("an identity that may not remove versions: the key is hidden, and told why and what to do", async () => {
    const creds = await fromTemporaryCredentials({
      params: {
        RoleArn: "arn:minio:iam:::role/unused",
        RoleSessionName: "no-versions",
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: ["s3:*"],
              Resource: [`arn:aws:s3:::${versioned}`, `arn:aws:s3:::${versioned}/*`],
            },
            { Effect: "Deny", Action: ["s3:DeleteObjectVersion"], Resource: [`arn:aws:s3:::${versioned}/*`] },
          ],
        }),
        DurationSeconds: 3600,
      },
      masterCredentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
      clientConfig: { endpoint: minio.endpoint, region: "us-east-1" },
    })();
    const store = open(versioned, {
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      ...(creds.sessionToken === undefined ? {} : { sessionToken: creds.sessionToken }),
    });
    await put(store, "nv/a.snap", 1024);
    const result = await store.deleteMany(["nv/a.snap"]);
    assert.deepEqual(result.deleted, ["nv/a.snap"], "gone from view");
    assert.equal(result.versionsKept.length, 1);
    assert.match(
      result.versionsKept[0]?.reason ?? "",
      /AuthDenied: allow s3:ListBucketVersions and s3:DeleteObjectVersion, or add a lifecycle rule/,
    );
    assert.deepEqual(await versionsOf(versioned, "nv/a.snap"), { versions: 1, markers: 1 });
  });

  test("a lock asked of a bucket without Object Lock fails clearly, and nothing is stored", async () => {
    const store = open(plain);
    const lock: WriteLock = { mode: "COMPLIANCE", retainUntil: new Date(Date.now() + day), legalHold: false };
    for (const [key, size] of [
      ["nolock/small.snap", 1024],
      ["nolock/large.snap", 12 * MiB],
    ] as const) {
      const error = await store.upload(key, Readable.from([randomBytes(size)]), { lock }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(isStorageError(error), `${key}: a StorageError (${String(error)})`);
      assert.equal(error.code, "ObjectLockUnavailable", error.message);
      assert.match(error.message, /target\.objectLock needs a bucket created with Object Lock enabled/);
      assert.equal(await store.head(key), null, `${key}: nothing stored`);
    }
  });
});
