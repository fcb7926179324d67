/**
 * `openObjectStore` for a process that needs one provider: the provider's module (and its
 * SDK) is imported on use, so a backup Job to S3 never loads the GCS and Azure SDKs — tens of
 * MiB of resident memory each (BENCHMARKS.md, finding 2). Import this module, not index.ts,
 * where start-up memory matters; index.ts's synchronous `openObjectStore` loads all three.
 */
import type { OpenOptions } from "./index.ts";
import type { ObjectStore } from "./object-store.ts";
import type { StorageCredentials, Target } from "./target.ts";

/** Rejects with `TargetConfigError` when the credentials cannot work with the target. */
export async function loadObjectStore(
  target: Target,
  credentials: StorageCredentials,
  options: OpenOptions = {},
): Promise<ObjectStore> {
  switch (target.provider) {
    case "s3": {
      const { S3ObjectStore } = await import("./s3/store.ts");
      return new S3ObjectStore(target, credentials, options);
    }
    case "gcs": {
      const { GcsObjectStore } = await import("./gcs/store.ts");
      return new GcsObjectStore(target, credentials);
    }
    case "azure": {
      const { AzureObjectStore } = await import("./azure/store.ts");
      return new AzureObjectStore(target, credentials);
    }
  }
}
