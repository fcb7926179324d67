/**
 * The rawest request that stores or reads one object in each sink, without any SDK — baseline
 * (a)'s sink leg: one signed S3 PUT/GET (SigV4, UNSIGNED-PAYLOAD), an Azure Put Blob / Get Blob
 * with a SAS, a GCS media upload / alt=media download. Apart from sinks.ts, and importing the
 * signer and the SAS helper only for their provider, so that a baseline process's peak RSS is
 * its transfer's, not that of every SDK (bench/client.ts).
 */
import { createHash, createHmac } from "node:crypto";
import type { SinkInfo } from "./sinks.ts";

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
      const { SignatureV4 } = await import("@smithy/signature-v4");
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
      const { BlobSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } = await import(
        "@azure/storage-blob"
      );
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
