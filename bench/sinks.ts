/**
 * The three real storage servers as benchmark sinks (MinIO, fake-gcs-server, Azurite — the
 * same servers and start-up code the test suite uses), described by a plain object that a
 * child process can receive as JSON, plus the raw (non-SDK) HTTP paths into each: one signed
 * S3 PUT/GET (SigV4, UNSIGNED-PAYLOAD), an Azure Put Blob / Get Blob with a SAS, and a GCS
 * media upload / alt=media download. These are baseline (a)'s "rawest path".
 */
import { createHash, createHmac } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DeleteObjectsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { BlobSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from "@azure/storage-blob";
import { Storage } from "@google-cloud/storage";
import { SignatureV4 } from "@smithy/signature-v4";
import { startAzurite } from "../test/servers/azurite.ts";
import { startFakeGcs } from "../test/servers/fake-gcs.ts";
import { startMinio } from "../test/servers/minio.ts";
import { scratchDir } from "../test/servers/process.ts";

export type Provider = "s3" | "gcs" | "azure";

/** Everything a client needs to reach a sink; JSON-serialisable. */
export interface SinkInfo {
  readonly provider: Provider;
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  readonly account?: string;
  readonly accountKey?: string;
  readonly project?: string;
}

export interface Sink {
  readonly info: SinkInfo;
  /** Executor env for this sink (provider, endpoint, bucket, credentials directory). */
  readonly env: Record<string, string>;
  /** Removes every object (keeps the disk small between sizes). */
  clear(): Promise<void>;
  stop(): Promise<void>;
}

const bucket = "bench";

function credentialsDir(files: Record<string, string>): string {
  const dir = join(scratchDir("bench-credentials"), "storage");
  mkdirSync(dir);
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), value);
  return dir;
}

export async function startSink(provider: Provider): Promise<Sink> {
  switch (provider) {
    case "s3": {
      const minio = await startMinio({ name: "bench-minio" });
      await minio.createBucket(bucket);
      const s3 = minio.client();
      const info: SinkInfo = {
        provider,
        endpoint: minio.endpoint,
        bucket,
        accessKeyId: minio.accessKeyId,
        secretAccessKey: minio.secretAccessKey,
      };
      return {
        info,
        env: {
          BACKUP_PROVIDER: "s3",
          BACKUP_ENDPOINT: minio.endpoint,
          BACKUP_BUCKET: bucket,
          BACKUP_USE_PATH_STYLE: "true",
          BACKUP_CREDENTIALS_DIR: credentialsDir({
            accessKeyId: minio.accessKeyId,
            secretAccessKey: minio.secretAccessKey,
          }),
        },
        async clear() {
          const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
          const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
          if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
        },
        stop: () => minio.stop(),
      };
    }
    case "gcs": {
      const fake = await startFakeGcs({ name: "bench-fake-gcs" });
      await fake.createBucket(bucket);
      const storage = new Storage({ apiEndpoint: fake.endpoint, projectId: fake.project });
      return {
        info: { provider, endpoint: fake.endpoint, bucket, project: fake.project },
        env: {
          BACKUP_PROVIDER: "gcs",
          BACKUP_ENDPOINT: fake.endpoint,
          BACKUP_BUCKET: bucket,
          BACKUP_GCS_PROJECT: fake.project,
          BACKUP_CREDENTIALS_DIR: credentialsDir({}),
        },
        async clear() {
          const [files] = await storage.bucket(bucket).getFiles();
          for (const f of files) await f.delete({ ignoreNotFound: true });
        },
        stop: () => fake.stop(),
      };
    }
    case "azure": {
      const azurite = await startAzurite({ inMemory: true, name: "bench-azurite" });
      await azurite.createContainer(bucket);
      const container = azurite.client().getContainerClient(bucket);
      return {
        info: {
          provider,
          endpoint: azurite.endpoint,
          bucket,
          account: azurite.account,
          accountKey: azurite.accountKey,
        },
        env: {
          BACKUP_PROVIDER: "azure",
          BACKUP_ENDPOINT: azurite.endpoint,
          BACKUP_BUCKET: bucket,
          BACKUP_AZURE_STORAGE_ACCOUNT: azurite.account,
          BACKUP_CREDENTIALS_DIR: credentialsDir({ accountKey: azurite.accountKey }),
        },
        async clear() {
          for await (const blob of container.listBlobsFlat()) await container.deleteBlob(blob.name);
        },
        stop: () => azurite.stop(),
      };
    }
  }
}

/** node:crypto as the SHA-256 / HMAC the SigV4 signer wants. */
class Sha256 {
  readonly #secret: Buffer | undefined;
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret =
      secret === undefined
        ? undefined
        : typeof secret === "string"
          ? Buffer.from(secret)
          : ArrayBuffer.isView(secret)
            ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength)
            : Buffer.from(secret);
    this.#hash = this.#fresh();
  }
  #fresh(): ReturnType<typeof createHash> | ReturnType<typeof createHmac> {
    return this.#secret === undefined ? createHash("sha256") : createHmac("sha256", this.#secret);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(
      typeof data === "string"
        ? data
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : new Uint8Array(data),
    );
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
  reset(): void {
    this.#hash = this.#fresh();
  }
}

export interface RawRequest {
  readonly url: string;
  readonly method: "PUT" | "POST" | "GET";
  readonly headers: Record<string, string>;
}

/** The rawest request that stores (`put`) or reads (`get`) one object, without any SDK. */
export async function rawRequest(sink: SinkInfo, op: "put" | "get", key: string, length?: number): Promise<RawRequest> {
  const endpoint = new URL(sink.endpoint);
  switch (sink.provider) {
    case "s3": {
      const signer = new SignatureV4({
        credentials: { accessKeyId: sink.accessKeyId ?? "", secretAccessKey: sink.secretAccessKey ?? "" },
        region: "us-east-1",
        service: "s3",
        sha256: Sha256,
        uriEscapePath: false,
        applyChecksum: false,
      });
      const path = `/${sink.bucket}/${key}`;
      const signed = await signer.sign({
        method: op === "put" ? "PUT" : "GET",
        protocol: endpoint.protocol,
        hostname: endpoint.hostname,
        port: Number(endpoint.port),
        path,
        query: {},
        headers: { host: endpoint.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      });
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(signed.headers)) headers[name] = String(value);
      if (length !== undefined) headers["content-length"] = String(length);
      return { url: `${sink.endpoint}${path}`, method: op === "put" ? "PUT" : "GET", headers };
    }
    case "azure": {
      const credential = new StorageSharedKeyCredential(sink.account ?? "", sink.accountKey ?? "");
      const sas = generateBlobSASQueryParameters(
        {
          containerName: sink.bucket,
          blobName: key,
          permissions: BlobSASPermissions.parse(op === "put" ? "cw" : "r"),
          expiresOn: new Date(Date.now() + 3600_000),
        },
        credential,
      ).toString();
      const headers: Record<string, string> = op === "put" ? { "x-ms-blob-type": "BlockBlob" } : {};
      if (length !== undefined) headers["content-length"] = String(length);
      return {
        url: `${sink.endpoint}/${sink.account}/${sink.bucket}/${key}?${sas}`,
        method: op === "put" ? "PUT" : "GET",
        headers,
      };
    }
    case "gcs": {
      if (op === "put") {
        const headers: Record<string, string> = { "content-type": "application/octet-stream" };
        if (length !== undefined) headers["content-length"] = String(length);
        return {
          url: `${sink.endpoint}/upload/storage/v1/b/${sink.bucket}/o?uploadType=media&name=${encodeURIComponent(key)}`,
          method: "POST",
          headers,
        };
      }
      return {
        url: `${sink.endpoint}/storage/v1/b/${sink.bucket}/o/${encodeURIComponent(key)}?alt=media`,
        method: "GET",
        headers: {},
      };
    }
  }
}
