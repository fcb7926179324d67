/**
 * A real Azurite blob service for tests (the npm devDependency, run with this Node): on
 * 127.0.0.1 (or another IPv4 host address, e.g. the CNI bridge gateway for Pods; Azurite
 * takes the account from the path only when the request's host is an IP address or
 * localhost), a fresh workspace folder (or memory), an account name and key made for the run
 * (`AZURITE_ACCOUNTS`), optionally HTTPS with a test CA. Containers are created with the
 * official SDK.
 */

import { randomBytes } from "node:crypto";
import {
  BlobServiceClient,
  newPipeline,
  type StoragePipelineOptions,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { azuriteEntry } from "./catalog.ts";
import { defaultHost, freePort, hostPort } from "./ports.ts";
import { probe } from "./probe.ts";
import { type ManagedProcess, removeScratch, scratchDir, startProcess, waitFor } from "./process.ts";
import type { CertificateAuthority, IssuedCertificate } from "./tls.ts";

export interface AzuriteOptions {
  readonly tls?: { readonly ca: CertificateAuthority; readonly cert: IssuedCertificate };
  /** Keep blobs in memory instead of the workspace folder. */
  readonly inMemory?: boolean;
  readonly name?: string;
  /** The host address to listen on and to put in `endpoint`; 127.0.0.1 by default. */
  readonly host?: string;
}

export interface AzuriteServer {
  /** The service endpoint without the account (`http://host:port`). */
  readonly endpoint: string;
  /** `endpoint/account`: the blob service URL of the account. */
  readonly serviceUrl: string;
  readonly account: string;
  readonly accountKey: string;
  readonly connectionString: string;
  readonly process: ManagedProcess;
  /** An official client with the account key. */
  client(): BlobServiceClient;
  createContainer(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteServer> {
  const name = options.name ?? "azurite";
  const root = scratchDir(name);
  const host = options.host ?? defaultHost;
  const port = await freePort(host);
  const account = `acct${randomBytes(3).toString("hex")}`;
  const accountKey = randomBytes(32).toString("base64");
  const args = [
    azuriteEntry(),
    "--blobHost",
    host,
    "--blobPort",
    String(port),
    ...(options.inMemory ? ["--inMemoryPersistence"] : ["--location", root]),
    "--disableTelemetry",
    "--skipApiVersionCheck",
    "--silent",
    ...(options.tls ? ["--cert", options.tls.cert.certPath, "--key", options.tls.cert.keyPath] : []),
  ];
  const proc = startProcess({
    name,
    command: process.execPath,
    args,
    env: { ...process.env, AZURITE_ACCOUNTS: `${account}:${accountKey}` },
    cwd: root,
    logDir: root,
  });
  const scheme = options.tls ? "https" : "http";
  const endpoint = `${scheme}://${hostPort(host, port)}`;
  const serviceUrl = `${endpoint}/${account}`;
  // Any HTTP answer (403 without credentials) means the service is up.
  await waitFor(async () => (await probe(`${serviceUrl}?comp=list`, options.tls?.ca.certPem)) > 0, {
    what: `${name} to answer on ${endpoint}`,
    processes: [proc],
  });
  const connectionString =
    `DefaultEndpointsProtocol=${scheme};AccountName=${account};AccountKey=${accountKey};` +
    `BlobEndpoint=${serviceUrl};`;
  // `tlsOptions` reaches the SDK's core pipeline although StoragePipelineOptions does not declare it.
  const pipelineOptions = (options.tls ? { tlsOptions: { ca: options.tls.ca.certPem } } : {}) as StoragePipelineOptions;
  const client = (): BlobServiceClient =>
    new BlobServiceClient(
      serviceUrl,
      newPipeline(new StorageSharedKeyCredential(account, accountKey), pipelineOptions),
    );
  return {
    endpoint,
    serviceUrl,
    account,
    accountKey,
    connectionString,
    process: proc,
    client,
    async createContainer(container) {
      await client().getContainerClient(container).create();
    },
    async stop() {
      await proc.stop();
      removeScratch(root);
    },
  };
}
