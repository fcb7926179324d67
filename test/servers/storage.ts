/**
 * One handle per storage provider over the real servers (MinIO, fake-gcs-server, Azurite),
 * so a test suite can run unchanged against each: a `target` spec for a bucket, the right
 * (and wrong) credentials, bucket creation, what a part upload and a listing page look like
 * on the wire, and what the provider can leave open after a failed upload. Everything here
 * uses the official SDKs or plain HTTP, never the code under test.
 */
import { ListMultipartUploadsCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { StorageCredentials, TargetSpec } from "../../src/storage/target.ts";
import { type AzuriteServer, startAzurite } from "./azurite.ts";
import { type FakeGcsServer, startFakeGcs } from "./fake-gcs.ts";
import { type MinioServer, startMinio } from "./minio.ts";
import type { ManagedProcess } from "./process.ts";
import type { CertificateAuthority, IssuedCertificate } from "./tls.ts";

export type StorageProvider = "s3" | "gcs" | "azure";
export const storageProviders: readonly StorageProvider[] = ["s3", "gcs", "azure"];

export interface StorageServerOptions {
  readonly tls?: { readonly ca: CertificateAuthority; readonly cert: IssuedCertificate };
  readonly name?: string;
  /** The host address the server listens on and its endpoint names; 127.0.0.1 by default. */
  readonly host?: string;
  /** Extra environment for MinIO (e.g. an OpenID provider for STS). */
  readonly minioEnv?: Record<string, string>;
}

export interface StorageServer {
  readonly provider: StorageProvider;
  /** The real server's origin (`scheme://host:port`, the host 127.0.0.1 unless asked otherwise). */
  readonly endpoint: string;
  /** A `target` for `bucket` on this server; `overrides.endpoint` (e.g. a proxy) replaces the server's. */
  target(bucket: string, overrides?: TargetSpec): TargetSpec;
  /** Credentials the server accepts (the contents of a credentials Secret). */
  readonly credentials: StorageCredentials;
  /** The same credentials with the secret part replaced; undefined when the server checks none. */
  wrongCredentials(secret: string): StorageCredentials | undefined;
  createBucket(name: string): Promise<void>;
  /** Writes a small object with the official SDK (test setup that does not go through the code under test). */
  putObject(bucket: string, key: string, body: string): Promise<void>;
  /** Whether a request on the wire uploads one part (S3), chunk (GCS) or block (Azure). */
  isPartRequest(method: string, url: string): boolean;
  /** Whether a request on the wire fetches one page of a listing. */
  isListRequest(method: string, url: string): boolean;
  /** Multipart uploads still open under `key`, asked of the server directly (S3 only; others have none to list). */
  openUploads(bucket: string, key: string): Promise<string[]>;
  /** Whether the provider uploads parts of one object in parallel (GCS resumable sessions are sequential). */
  readonly parallelParts: boolean;
  /** Emulator differences from the real service that a test must know about. */
  readonly quirks: {
    /** fake-gcs-server ignores X-Upload-Content-Type, the header GCS takes a resumable upload's type from. */
    readonly dropsUploadContentType: boolean;
  };
  readonly processes: readonly ManagedProcess[];
  stop(): Promise<void>;
}

function s3Handle(minio: MinioServer): StorageServer {
  const admin = minio.client();
  return {
    provider: "s3",
    endpoint: minio.endpoint,
    target: (bucket, overrides = {}) => ({
      provider: "s3",
      endpoint: minio.endpoint,
      bucket,
      usePathStyle: true,
      region: "us-east-1",
      ...overrides,
    }),
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    wrongCredentials: (secret) => ({ accessKeyId: minio.accessKeyId, secretAccessKey: secret }),
    createBucket: (name) => minio.createBucket(name),
    async putObject(bucket, key, body) {
      await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    isPartRequest: (method, url) => method === "PUT" && /[?&]partNumber=/.test(url) && /[?&]uploadId=/.test(url),
    isListRequest: (method, url) => method === "GET" && /[?&]list-type=2/.test(url),
    async openUploads(bucket, key) {
      const out = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
      return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
    },
    parallelParts: true,
    quirks: { dropsUploadContentType: false },
    processes: [minio.process],
    stop: async () => {
      admin.destroy();
      await minio.stop();
    },
  };
}

function gcsHandle(gcs: FakeGcsServer): StorageServer {
  return {
    provider: "gcs",
    endpoint: gcs.endpoint,
    target: (bucket, overrides = {}) => ({
      provider: "gcs",
      endpoint: gcs.endpoint,
      bucket,
      gcs: { project: gcs.project },
      ...overrides,
    }),
    credentials: {},
    wrongCredentials: () => undefined,
    createBucket: (name) => gcs.createBucket(name),
    async putObject(bucket, key, body) {
      await gcs.storage().bucket(bucket).file(key).save(body, { resumable: false });
    },
    // Chunks of a resumable session: PUT …/upload/storage/v1/b/<bucket>/o?…upload_id=…
    isPartRequest: (method, url) => method === "PUT" && url.includes("/upload/") && /[?&]upload_id=/.test(url),
    isListRequest: (method, url) => method === "GET" && /^\/storage\/v1\/b\/[^/]+\/o\?/.test(url),
    // A resumable session is invisible until finalized; the emulator offers no way to list sessions.
    openUploads: async () => [],
    parallelParts: false,
    quirks: { dropsUploadContentType: true },
    processes: [gcs.process],
    stop: () => gcs.stop(),
  };
}

function azureHandle(azurite: AzuriteServer): StorageServer {
  const official = azurite.client();
  const container = (name: string) => official.getContainerClient(name);
  return {
    provider: "azure",
    endpoint: azurite.endpoint,
    target: (bucket, overrides = {}) => ({
      provider: "azure",
      endpoint: azurite.endpoint,
      bucket,
      azure: { storageAccount: azurite.account },
      ...overrides,
    }),
    credentials: { accountKey: azurite.accountKey },
    wrongCredentials: (secret) => ({ accountKey: Buffer.from(secret).toString("base64") }),
    createBucket: (name) => azurite.createContainer(name),
    async putObject(bucket, key, body) {
      await container(bucket).getBlockBlobClient(key).upload(body, Buffer.byteLength(body));
    },
    isPartRequest: (method, url) => method === "PUT" && /[?&]comp=block(&|$)/.test(url),
    isListRequest: (method, url) => method === "GET" && /[?&]comp=list/.test(url) && /[?&]restype=container/.test(url),
    // Staged but uncommitted blocks are not a blob (the service discards them after a week).
    openUploads: async () => [],
    parallelParts: true,
    quirks: { dropsUploadContentType: false },
    processes: [azurite.process],
    stop: () => azurite.stop(),
  };
}

export async function startStorageServer(
  provider: StorageProvider,
  options: StorageServerOptions = {},
): Promise<StorageServer> {
  const common = {
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.name ? { name: options.name } : {}),
    ...(options.host ? { host: options.host } : {}),
  };
  switch (provider) {
    case "s3":
      return s3Handle(await startMinio({ ...common, ...(options.minioEnv ? { env: options.minioEnv } : {}) }));
    case "gcs":
      return gcsHandle(await startFakeGcs(common));
    case "azure":
      return azureHandle(await startAzurite(common));
  }
}

/** All three servers, started in parallel (on `options.host`, 127.0.0.1 by default). */
export async function startStorageServers(
  options: { readonly host?: string } = {},
): Promise<Record<StorageProvider, StorageServer>> {
  const [s3, gcs, azure] = await Promise.all(storageProviders.map((p) => startStorageServer(p, options)));
  if (!s3 || !gcs || !azure) throw new Error("a storage server did not start");
  return { s3, gcs, azure };
}
