/**
 * ObjectStore on Azure Blob Storage (`@azure/storage-blob` + `@azure/identity`) and Azurite.
 *
 * Uploads are block uploads (blocks.ts): blocks of `partSize` are staged in parallel and the
 * blob appears only when the block list is committed after the last one, so a failed upload
 * leaves no blob (staged blocks are discarded by the service after a week).
 *
 * `target.encryption.encryptionScope` goes on every staged block and on the block list;
 * `head` reads the scope Azure reports (Azurite ignores and omits it).
 *
 * Credentials: `connectionString`, or `accountKey` with `azure.storageAccount`, or — when the
 * Secret has neither — DefaultAzureCredential: workload identity (AKS webhook env) or the
 * managed identity of the node.
 */

import type { Readable } from "node:stream";
import type { TokenCredential } from "@azure/identity";
import { DefaultAzureCredential } from "@azure/identity";
import {
  type AnonymousCredential,
  BlobServiceClient,
  type ContainerClient,
  newPipeline,
  type RequestPolicyFactory,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { azureScopeType, nameRequestedKey } from "../encryption.ts";
import {
  type ErrorFacts,
  errorMapper,
  field,
  messageOf,
  numberField,
  redact,
  stringField,
  systemErrno,
  TargetConfigError,
} from "../errors.ts";
import type {
  AbortIncompleteResult,
  DeleteManyResult,
  ObjectHead,
  ObjectInfo,
  ObjectStore,
  StoredLock,
  StoreOptions,
  UploadOptions,
  UploadResult,
} from "../object-store.ts";
import { type PartLimits, partLimits } from "../parts.ts";
import { deleteEach, guardDownload } from "../streams.ts";
import { type AzureTarget, type StorageCredentials, secretValues } from "../target.ts";
import { type Agents, createAgents, tlsSettings } from "../tls.ts";
import { uploadObject } from "../upload.ts";
import { uploadBlocks } from "./blocks.ts";

const pageSize = 1000;
/** A base64 string of whole 4-character groups (Azure account keys are 64 bytes → 88 characters). */
const base64Key =
  /^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$|^(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$/;

export type AzureCredentialMode = "connection-string" | "account-key" | "default-azure-credential";

export function azureCredentialMode(credentials: StorageCredentials): AzureCredentialMode {
  if (credentials.connectionString !== undefined && credentials.accountKey !== undefined) {
    throw new TargetConfigError(
      "credentials.connectionString",
      "and credentials.accountKey are both set; keep one of them in the Secret",
    );
  }
  if (credentials.connectionString !== undefined) return "connection-string";
  if (credentials.accountKey !== undefined) {
    // Shared Key signing takes the key as base64; anything else would only fail at the first
    // upload as "access denied", after the snapshot stream was opened. Fail here, naming it.
    if (!base64Key.test(credentials.accountKey)) {
      throw new TargetConfigError(
        "credentials.accountKey",
        "is not a base64 storage account key; copy key1 or key2 from the storage account's Access keys page " +
          "(or `az storage account keys list`)",
      );
    }
    return "account-key";
  }
  return "default-azure-credential";
}

/**
 * The blob service URL for an account: the public one, or a custom endpoint. An endpoint
 * whose host does not name the account (Azurite, an IP) gets the account as its first path
 * segment, the way the emulator and Azure Stack address accounts.
 */
export function azureServiceUrl(account: string, endpoint: string | undefined): string {
  if (endpoint === undefined) return `https://${account}.blob.core.windows.net`;
  const url = new URL(endpoint);
  if (url.pathname !== "/" && url.pathname !== "") return endpoint;
  if (url.hostname.startsWith(`${account}.`)) return endpoint;
  return `${endpoint}/${account}`;
}

export function azureErrorFacts(err: unknown): ErrorFacts {
  const name = stringField(err, "name");
  const code = stringField(err, "code");
  // DefaultAzureCredential fails with one error per credential it tried; say what each said.
  const tried = field(err, "errors");
  const detail = Array.isArray(tried)
    ? tried.map((e) => messageOf(e)?.split("\n")[0]?.slice(0, 120)).join("; ")
    : messageOf(err);
  return {
    status: numberField(err, "statusCode"),
    code: code ?? (name === "Error" || name === "RestError" ? undefined : name),
    errno: systemErrno(err),
    detail,
  };
}

/** Sends every request of the pipeline through the store's agents (custom CA, skip verify). */
function agentPolicy(agents: Agents): RequestPolicyFactory {
  return {
    create: (next) => ({
      sendRequest: (request) => {
        request.agent = agents.for(request.url);
        return next.sendRequest(request);
      },
    }),
  };
}

interface ResolvedCredential {
  url: string;
  credential: StorageSharedKeyCredential | AnonymousCredential | TokenCredential;
}

function resolveCredential(
  target: AzureTarget,
  credentials: StorageCredentials,
  secrets: string[],
): ResolvedCredential {
  const account = target.azure.storageAccount;
  switch (azureCredentialMode(credentials)) {
    case "connection-string": {
      let parsed: BlobServiceClient;
      try {
        parsed = BlobServiceClient.fromConnectionString(credentials.connectionString ?? "");
      } catch (err) {
        throw new TargetConfigError(
          "credentials.connectionString",
          `is not a usable Azure Storage connection string (${redact(messageOf(err) ?? "unparsable", secrets)}); ` +
            "copy it from the storage account's Access keys page",
        );
      }
      if (target.endpoint === undefined) return { url: parsed.url, credential: parsed.credential };
      // A custom endpoint wins over the connection string's; a SAS in it is kept.
      const name = parsed.credential instanceof StorageSharedKeyCredential ? parsed.credential.accountName : account;
      return {
        url: azureServiceUrl(name, target.endpoint) + new URL(parsed.url).search,
        credential: parsed.credential,
      };
    }
    case "account-key":
      return {
        url: azureServiceUrl(account, target.endpoint),
        credential: new StorageSharedKeyCredential(account, credentials.accountKey ?? ""),
      };
    default: {
      const url = azureServiceUrl(account, target.endpoint);
      if (!url.startsWith("https:")) {
        throw new TargetConfigError(
          "target.endpoint",
          "must be https:// for managed or workload identity (Azure sends bearer tokens over TLS only); " +
            "use https, or put accountKey or connectionString in the credentials Secret",
        );
      }
      return { url, credential: new DefaultAzureCredential() };
    }
  }
}

/**
 * A blob-level immutability policy (version-level WORM) and legal hold, as Get Blob Properties
 * reports them. A container-level policy is not reported per blob: its deletes fail, and are
 * reported as failures.
 */
export function azureLock(props: {
  immutabilityPolicyMode?: string | undefined;
  immutabilityPolicyExpiresOn?: Date | undefined;
  legalHold?: boolean | undefined;
}): StoredLock {
  return {
    mode: props.immutabilityPolicyMode,
    retainUntil: props.immutabilityPolicyExpiresOn,
    legalHold: props.legalHold === true,
  };
}

export class AzureObjectStore implements ObjectStore {
  readonly provider = "azure";
  readonly location: string;
  readonly #target: AzureTarget;
  readonly #limits: PartLimits;
  readonly #container: ContainerClient;
  readonly #agents: Agents;
  readonly #error: ReturnType<typeof errorMapper>;

  constructor(target: AzureTarget, credentials: StorageCredentials, options: StoreOptions = {}) {
    this.#target = target;
    this.#limits = options.partLimits ?? partLimits.azure;
    this.location = `azure://${target.azure.storageAccount}/${target.bucket}`;
    const secrets = secretValues(credentials);
    this.#error = errorMapper("azure", this.location, secrets, azureErrorFacts);
    const { url, credential } = resolveCredential(target, credentials, secrets);
    this.#agents = createAgents(tlsSettings(target, credentials), target.concurrency + 4);
    const pipeline = newPipeline(credential, {
      // Quick on a dead endpoint (three tries within seconds), patient enough for a busy one.
      retryOptions: { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 4_000 },
    });
    pipeline.factories.push(agentPolicy(this.#agents));
    this.#container = new BlobServiceClient(url, pipeline).getContainerClient(target.bucket);
  }

  upload(key: string, source: AsyncIterable<Uint8Array>, options: UploadOptions = {}): Promise<UploadResult> {
    const blob = this.#container.getBlockBlobClient(key);
    return uploadObject({
      provider: "azure",
      key,
      source,
      options,
      configuredPartSize: this.#target.partSize,
      limits: this.#limits,
      sendChunks: (chunks, plan, metadata) =>
        uploadBlocks(chunks, {
          blob,
          partSize: plan.partSize,
          concurrency: this.#target.concurrency,
          metadata,
          ...(options.contentType === undefined ? {} : { blobHTTPHeaders: { blobContentType: options.contentType } }),
          ...(this.#target.encryption === undefined
            ? {}
            : { encryptionScope: this.#target.encryption.encryptionScope }),
        }),
      discard: () => this.delete(key),
      toError: (err) => nameRequestedKey(this.#error("upload", key, err), this.#target),
    });
  }

  async head(key: string): Promise<ObjectHead | null> {
    try {
      const props = await this.#container.getBlobClient(key).getProperties();
      return {
        key,
        size: props.contentLength ?? 0,
        lastModified: props.lastModified ?? new Date(0),
        metadata: props.metadata ?? {},
        contentType: props.contentType,
        encryption:
          props.encryptionScope === undefined || props.encryptionScope === ""
            ? { type: undefined, key: undefined }
            : { type: azureScopeType, key: props.encryptionScope },
        lock: azureLock(props),
      };
    } catch (err) {
      const error = this.#error("head", key, err);
      if (error.code === "NotFound" && stringField(err, "code") !== "ContainerNotFound") return null;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    try {
      for await (const page of this.#container.listBlobsFlat({ prefix }).byPage({ maxPageSize: pageSize })) {
        for (const item of page.segment.blobItems) {
          yield {
            key: item.name,
            size: item.properties.contentLength ?? 0,
            lastModified: item.properties.lastModified,
          };
        }
      }
    } catch (err) {
      throw this.#error("list", prefix, err);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#container.getBlobClient(key).deleteIfExists();
    } catch (err) {
      throw this.#error("delete", key, err);
    }
  }

  deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    return deleteEach(
      keys,
      this.#target.concurrency,
      (key) => this.delete(key),
      (err, key) => this.#error("delete", key, err),
    );
  }

  async download(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      const res = await this.#container.getBlobClient(key).download(0, undefined, {
        maxRetryRequests: 3,
        ...(options.signal === undefined ? {} : { abortSignal: options.signal }),
      });
      const body = res.readableStreamBody;
      if (body === undefined) throw new TypeError("download returned no stream body");
      return guardDownload(body, (err) => this.#error("download", key, err), options.signal);
    } catch (err) {
      throw this.#error("download", key, err);
    }
  }

  /** Azure discards uncommitted blocks by itself after a week, and they cannot be aborted. */
  async abortIncompleteUploads(): Promise<AbortIncompleteResult> {
    return { aborted: 0, failed: 0 };
  }

  async close(): Promise<void> {
    this.#agents.destroy();
  }
}
