/**
 * The storage layer's entry point: open the store a `target` describes.
 *
 *   const target = parseTarget(spec.backup.target);
 *   const store = openObjectStore(target, await readCredentialsDir(dir));
 */
import { AzureObjectStore } from "./azure/store.ts";
import { GcsObjectStore } from "./gcs/store.ts";
import type { ObjectStore } from "./object-store.ts";
import { S3ObjectStore } from "./s3/store.ts";
import type { StorageCredentials, Target } from "./target.ts";

export * from "./errors.ts";
export type * from "./object-store.ts";
export { partLimits, planParts } from "./parts.ts";
export * from "./target.ts";

export interface OpenOptions {
  /** S3 `roleArn`: the projected token file; default `AWS_WEB_IDENTITY_TOKEN_FILE`. */
  readonly webIdentityTokenFile?: string;
}

/** Throws `TargetConfigError` when the credentials cannot work with the target. */
export function openObjectStore(
  target: Target,
  credentials: StorageCredentials,
  options: OpenOptions = {},
): ObjectStore {
  switch (target.provider) {
    case "s3":
      return new S3ObjectStore(target, credentials, options);
    case "gcs":
      return new GcsObjectStore(target, credentials);
    case "azure":
      return new AzureObjectStore(target, credentials);
  }
}
