/**
 * One real storage server per provider, seen the way the executor tests need it: the env
 * and credential files that point the executor at it, and official-SDK access to check
 * what was really stored (never the product's own storage code, so assertions are
 * independent of the code under test).
 */
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { startAzurite } from "../servers/azurite.ts";
import { startFakeGcs } from "../servers/fake-gcs.ts";
import { startMinio } from "../servers/minio.ts";

export type ProviderName = "s3" | "gcs" | "azure";
export const allProviders: readonly ProviderName[] = ["s3", "gcs", "azure"];

export interface TargetUnderTest {
  readonly provider: ProviderName;
  readonly bucket: string;
  /** Port of the real server, for a fault-injecting proxy in front of it. */
  readonly port: number;
  /** Executor env for this target; pass another endpoint to go through a proxy. */
  env(endpoint?: string): Record<string, string>;
  /** Files of the credentials Secret. */
  readonly credentials: Record<string, string>;
  keys(prefix?: string): Promise<string[]>;
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, body: Buffer): Promise<void>;
  /** Multipart uploads / uncommitted state left open (S3); 0 where the provider has none visible. */
  openUploads(): Promise<number>;
  stop(): Promise<void>;
}

const bucket = "backups";

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export interface TargetOptions {
  /** The host address the storage server listens on and its endpoint names; 127.0.0.1 by default. */
  readonly host?: string;
}

export async function startTarget(provider: ProviderName, options: TargetOptions = {}): Promise<TargetUnderTest> {
  const at = options.host ? { host: options.host } : {};
  switch (provider) {
    case "s3": {
      const minio = await startMinio(at);
      await minio.createBucket(bucket);
      const s3 = minio.client();
      return {
        provider,
        bucket,
        port: Number(new URL(minio.endpoint).port),
        credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
        env: (endpoint = minio.endpoint) => ({
          BACKUP_PROVIDER: "s3",
          BACKUP_ENDPOINT: endpoint,
          BACKUP_BUCKET: bucket,
          BACKUP_USE_PATH_STYLE: "true",
        }),
        async keys(prefix = "") {
          const keys: string[] = [];
          let token: string | undefined;
          do {
            const page = await s3.send(
              new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
            );
            for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
          } while (token);
          return keys.sort();
        },
        async get(key) {
          try {
            const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
            return collect(out.Body as AsyncIterable<Uint8Array>);
          } catch (err) {
            if ((err as { name?: string }).name === "NoSuchKey") return undefined;
            throw err;
          }
        },
        async put(key, body) {
          await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        },
        async openUploads() {
          const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          return out.Uploads?.length ?? 0;
        },
        stop: () => minio.stop(),
      };
    }
    case "gcs": {
      const fake = await startFakeGcs(at);
      await fake.createBucket(bucket);
      const storage = new Storage({ apiEndpoint: fake.endpoint, projectId: fake.project });
      const b = storage.bucket(bucket);
      return {
        provider,
        bucket,
        port: Number(new URL(fake.endpoint).port),
        credentials: {},
        env: (endpoint = fake.endpoint) => ({
          BACKUP_PROVIDER: "gcs",
          BACKUP_ENDPOINT: endpoint,
          BACKUP_BUCKET: bucket,
          BACKUP_GCS_PROJECT: fake.project,
        }),
        async keys(prefix = "") {
          const [files] = await b.getFiles({ prefix, autoPaginate: true });
          return files.map((f) => f.name).sort();
        },
        async get(key) {
          const [exists] = await b.file(key).exists();
          if (!exists) return undefined;
          const [data] = await b.file(key).download();
          return data;
        },
        async put(key, body) {
          await b.file(key).save(body, { resumable: false });
        },
        openUploads: async () => 0,
        stop: () => fake.stop(),
      };
    }
    case "azure": {
      const azurite = await startAzurite({ inMemory: true, ...at });
      await azurite.createContainer(bucket);
      const container = azurite.client().getContainerClient(bucket);
      return {
        provider,
        bucket,
        port: Number(new URL(azurite.endpoint).port),
        credentials: { accountKey: azurite.accountKey },
        env: (endpoint = azurite.endpoint) => ({
          BACKUP_PROVIDER: "azure",
          BACKUP_ENDPOINT: endpoint,
          BACKUP_BUCKET: bucket,
          BACKUP_AZURE_STORAGE_ACCOUNT: azurite.account,
        }),
        async keys(prefix = "") {
          const keys: string[] = [];
          for await (const blob of container.listBlobsFlat({ prefix })) keys.push(blob.name);
          return keys.sort();
        },
        async get(key) {
          const blob = container.getBlobClient(key);
          if (!(await blob.exists())) return undefined;
          return blob.downloadToBuffer();
        },
        async put(key, body) {
          await container.getBlockBlobClient(key).uploadData(body);
        },
        openUploads: async () => 0,
        stop: () => azurite.stop(),
      };
    }
  }
}

/** A cluster's `spec.backup.target` pointing at a started target (credentials Secrets `s3-credentials` / `azure-credentials`). */
export function clusterTarget(provider: ProviderName, target: TargetUnderTest): Record<string, unknown> {
  const env = target.env();
  switch (provider) {
    case "s3":
      return {
        provider,
        endpoint: env.BACKUP_ENDPOINT,
        bucket: env.BACKUP_BUCKET,
        usePathStyle: true,
        credentialsSecretRef: { name: "s3-credentials" },
      };
    case "gcs":
      return {
        provider,
        endpoint: env.BACKUP_ENDPOINT,
        bucket: env.BACKUP_BUCKET,
        gcs: { project: env.BACKUP_GCS_PROJECT },
      };
    case "azure":
      return {
        provider,
        endpoint: env.BACKUP_ENDPOINT,
        bucket: env.BACKUP_BUCKET,
        azure: { storageAccount: env.BACKUP_AZURE_STORAGE_ACCOUNT },
        credentialsSecretRef: { name: "azure-credentials" },
      };
  }
}
