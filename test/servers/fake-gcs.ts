/**
 * A real fake-gcs-server for tests (the GCS emulator, JSON and upload APIs): on 127.0.0.1
 * (or another host address, e.g. the CNI bridge gateway for Pods), filesystem backend in a
 * scratch directory (memory would hold every test object in the server process), optionally
 * HTTPS with a test certificate.
 *
 * Quirks handled here: `-external-url` must be the address clients use, or resumable upload
 * sessions point at storage.googleapis.com; `-public-host` likewise for media links. Buckets
 * are created through the JSON API; the emulator checks no credentials at all.
 */

import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { Storage } from "@google-cloud/storage";
import { serverBinary } from "./catalog.ts";
import { defaultHost, freePort, hostPort } from "./ports.ts";
import { type ManagedProcess, removeScratch, scratchDir, startProcess, waitFor } from "./process.ts";
import type { CertificateAuthority, IssuedCertificate } from "./tls.ts";

export interface FakeGcsOptions {
  readonly tls?: { readonly ca: CertificateAuthority; readonly cert: IssuedCertificate };
  /** The host address to listen on and to advertise (endpoint, external URL, public host); 127.0.0.1 by default. */
  readonly host?: string;
  readonly name?: string;
}

export interface FakeGcsServer {
  readonly endpoint: string;
  readonly project: string;
  readonly process: ManagedProcess;
  /** A JSON API call (no credentials: the emulator ignores them). */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown; data: Buffer }>;
  createBucket(name: string): Promise<void>;
  /** The official client pointed at the emulator (plain HTTP only). */
  storage(): Storage;
  stop(): Promise<void>;
}

export async function startFakeGcs(options: FakeGcsOptions = {}): Promise<FakeGcsServer> {
  const name = options.name ?? "fake-gcs-server";
  const root = scratchDir(name);
  const host = options.host ?? defaultHost;
  const port = await freePort(host);
  const scheme = options.tls ? "https" : "http";
  const endpoint = `${scheme}://${hostPort(host, port)}`;
  const proc = startProcess({
    name,
    command: serverBinary("fake-gcs-server"),
    args: [
      "-scheme",
      scheme,
      "-host",
      host,
      "-port",
      String(port),
      "-public-host",
      hostPort(host, port),
      "-external-url",
      endpoint,
      "-backend",
      "filesystem",
      "-filesystem-root",
      join(root, "data"),
      "-log-level",
      "warn",
      ...(options.tls
        ? ["-cert-location", options.tls.cert.certPath, "-private-key-location", options.tls.cert.keyPath]
        : []),
    ],
    logDir: root,
  });

  const api: FakeGcsServer["api"] = (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const url = `${endpoint}${path}`;
      const opts = {
        method,
        timeout: 10_000,
        headers: payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {},
      };
      const req = options.tls ? httpsRequest(url, { ...opts, ca: options.tls.ca.certPem }) : httpRequest(url, opts);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const data = Buffer.concat(chunks);
          let parsed: unknown;
          try {
            parsed = JSON.parse(data.toString("utf8"));
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, data });
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url}: timeout`)));
      req.on("error", reject);
      req.end(payload);
    });

  await waitFor(async () => (await api("GET", "/storage/v1/b")).status === 200, {
    what: `${name} to answer on ${endpoint}`,
    processes: [proc],
  });
  const project = `test-${randomBytes(3).toString("hex")}`;
  return {
    endpoint,
    project,
    process: proc,
    api,
    async createBucket(bucket) {
      const res = await api("POST", `/storage/v1/b?project=${project}`, { name: bucket });
      if (res.status !== 200) throw new Error(`create bucket ${bucket} → ${res.status}: ${res.data.toString()}`);
    },
    storage: () => new Storage({ apiEndpoint: endpoint, projectId: project }),
    async stop() {
      await proc.stop();
      removeScratch(root);
    },
  };
}
