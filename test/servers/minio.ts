/**
 * A real MinIO server for tests: one drive in a scratch directory, listening on 127.0.0.1
 * (or another host address, e.g. the CNI bridge gateway for Pods), root credentials made for
 * the run, optionally TLS from a test CA (`--certs-dir`) and extra environment (e.g. an
 * OpenID provider for STS). Buckets are created with the official SDK; fixtures never use
 * the code under test.
 *
 * MinIO listens on every loopback address at its API port as well as on `--address`, by
 * design (`getServerListenAddrs` in cmd/server-main.go, "to receive requests from Console"),
 * so with another host its port must be free on 127.0.0.1 too, and 127.0.0.1 answers there.
 */

import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { serverBinary } from "./catalog.ts";
import { defaultHost, freePort, freePortOn, hostPort } from "./ports.ts";
import { probe } from "./probe.ts";
import { type ManagedProcess, removeScratch, scratchDir, startProcess, waitFor } from "./process.ts";
import type { CertificateAuthority, IssuedCertificate } from "./tls.ts";

export interface MinioOptions {
  /** Serve HTTPS with this certificate (issued by `ca` for the host address, see `issueCertificate`). */
  readonly tls?: { readonly ca: CertificateAuthority; readonly cert: IssuedCertificate };
  /** The host address to listen on and to put in `endpoint`; 127.0.0.1 by default. */
  readonly host?: string;
  readonly env?: Record<string, string>;
  readonly name?: string;
}

export interface MinioServer {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly process: ManagedProcess;
  readonly dataDir: string;
  /** An official S3 client with the root credentials (path-style). */
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startMinio(options: MinioOptions = {}): Promise<MinioServer> {
  const name = options.name ?? "minio";
  const root = scratchDir(name);
  const dataDir = join(root, "data");
  const certsDir = join(root, "certs");
  mkdirSync(dataDir);
  mkdirSync(join(certsDir, "CAs"), { recursive: true });
  if (options.tls) {
    copyFileSync(options.tls.cert.certPath, join(certsDir, "public.crt"));
    copyFileSync(options.tls.cert.keyPath, join(certsDir, "private.key"));
  }
  const host = options.host ?? defaultHost;
  const [port, consolePort] = [await freePortOn([host, defaultHost]), await freePort(host)];
  const accessKeyId = `minio-${randomBytes(4).toString("hex")}`;
  const secretAccessKey = randomBytes(24).toString("base64url");
  const proc = startProcess({
    name,
    command: serverBinary("minio"),
    args: [
      "server",
      "--address",
      hostPort(host, port),
      "--console-address",
      hostPort(host, consolePort),
      "--certs-dir",
      certsDir,
      dataDir,
    ],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: root,
      MINIO_ROOT_USER: accessKeyId,
      MINIO_ROOT_PASSWORD: secretAccessKey,
      MINIO_BROWSER: "off",
      MINIO_UPDATE: "off",
      ...options.env,
    },
    logDir: root,
  });
  const scheme = options.tls ? "https" : "http";
  const endpoint = `${scheme}://${hostPort(host, port)}`;
  await waitFor(async () => (await probe(`${endpoint}/minio/health/live`, options.tls?.ca.certPem)) === 200, {
    what: `${name} to answer on ${endpoint}`,
    processes: [proc],
  });

  const clients: S3Client[] = [];
  let admin: S3Client | undefined;
  const client = (): S3Client => {
    const c = new S3Client({
      region: options.env?.MINIO_SITE_REGION ?? "us-east-1",
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      ...(options.tls
        ? { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: options.tls.ca.certPem }) }) }
        : {}),
    });
    clients.push(c);
    return c;
  };
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    process: proc,
    dataDir,
    client,
    async createBucket(bucket) {
      admin ??= client();
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    },
    async stop() {
      for (const c of clients) c.destroy();
      await proc.stop();
      removeScratch(root);
    },
  };
}
