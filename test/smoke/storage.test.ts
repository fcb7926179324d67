/**
 * Proves the storage fixtures run the real servers: one object written and read back on
 * MinIO, fake-gcs-server and Azurite with each provider's official SDK, never with the code
 * under test.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { type AzuriteServer, startAzurite } from "../servers/azurite.ts";
import { type FakeGcsServer, startFakeGcs } from "../servers/fake-gcs.ts";
import { type MinioServer, startMinio } from "../servers/minio.ts";
import { startTogether, superviseServers } from "../servers/process.ts";

superviseServers();

const body = `smoke ${new Date().toISOString()} ${Math.random()}`;

describe("storage servers", () => {
  let minio: MinioServer;
  let gcs: FakeGcsServer;
  let azurite: AzuriteServer;
  before(async () => {
    [minio, gcs, azurite] = await startTogether([startMinio(), startFakeGcs(), startAzurite({ inMemory: true })]);
  });
  after(async () => {
    await Promise.all([minio?.stop(), gcs?.stop(), azurite?.stop()]);
  });

  test("MinIO stores and returns an object (SigV4-signed, @aws-sdk/client-s3)", async () => {
    await minio.createBucket("smoke");
    const s3 = minio.client();
    await s3.send(new PutObjectCommand({ Bucket: "smoke", Key: "hello.txt", Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "smoke", Key: "hello.txt" }));
    assert.equal(await got.Body?.transformToString(), body);
  });

  test("fake-gcs-server stores and returns an object (@google-cloud/storage, resumable upload)", async () => {
    await gcs.createBucket("smoke");
    const file = gcs.storage().bucket("smoke").file("hello.txt");
    await file.save(body, { resumable: true });
    const [metadata] = await file.getMetadata();
    assert.equal(Number(metadata.size), Buffer.byteLength(body));
    const [contents] = await file.download();
    assert.equal(contents.toString(), body);
  });

  test("Azurite stores and returns a blob (shared-key signed, @azure/storage-blob)", async () => {
    await azurite.createContainer("smoke");
    const blob = azurite.client().getContainerClient("smoke").getBlockBlobClient("hello.txt");
    await blob.upload(body, Buffer.byteLength(body));
    assert.equal((await blob.downloadToBuffer()).toString(), body);
  });
});
