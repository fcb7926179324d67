/**
 * The three real storage servers as benchmark sinks (MinIO, fake-gcs-server, Azurite — the
 * same servers and start-up code the test suite uses), described by a plain object that a
 * child process can receive as JSON, plus the raw (non-SDK) HTTP paths into each: one signed
 * S3 PUT/GET (SigV4, UNSIGNED-PAYLOAD), an Azure Put Blob / Get Blob with a SAS, and a GCS
 * media upload / alt=media download. These are baseline (a)'s "rawest path".
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DeleteObjectsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { startAzurite } from "../test/servers/azurite.ts";
import { startFakeGcs } from "../test/servers/fake-gcs.ts";
import { startMinio } from "../test/servers/minio.ts";
import { scratchDir } from "../test/servers/process.ts";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type IssuedCertificate,
  issueCertificate,
} from "../test/servers/tls.ts";

// The raw paths live in raw.ts, which a baseline client process can load without every SDK.
export { type RawRequest, rawRequest } from "./raw.ts";

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
  /** The sink's CA when it serves HTTPS (`sink-tls=on`, MinIO only). */
  readonly caPem?: string;
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

export interface SinkOptions {
  /** MinIO over HTTPS with a CA made for the run, as AWS S3 always is (the others stay on HTTP). */
  readonly tls?: boolean | undefined;
}

export async function startSink(provider: Provider, options: SinkOptions = {}): Promise<Sink> {
  switch (provider) {
    case "s3": {
      let tls: { readonly ca: CertificateAuthority; readonly cert: IssuedCertificate } | undefined;
      if (options.tls) {
        const ca = createCertificateAuthority(scratchDir("bench-minio-ca"), "bench MinIO CA");
        tls = { ca, cert: issueCertificate(ca, "bench-minio") };
      }
      const minio = await startMinio({ name: "bench-minio", ...(tls === undefined ? {} : { tls }) });
      await minio.createBucket(bucket);
      const s3 = minio.client();
      const info: SinkInfo = {
        provider,
        endpoint: minio.endpoint,
        bucket,
        accessKeyId: minio.accessKeyId,
        secretAccessKey: minio.secretAccessKey,
        ...(tls === undefined ? {} : { caPem: tls.ca.certPem }),
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
            ...(tls === undefined ? {} : { caCert: tls.ca.certPem }),
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
