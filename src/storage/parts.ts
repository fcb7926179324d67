/**
 * Part-size planning, the same rule for every provider with its own limits (SPEC §2
 * `target.partSize`, §5 trap 4):
 * - the configured size is used as given, rounded up to the provider's granularity;
 * - when the size is known and would need more parts than the provider allows, the part size
 *   is raised (to a whole MiB) so it fits;
 * - when the size is unknown, the upload is refused with a clear error *before* the stream
 *   passes `partSize × maxParts` bytes (see `maxBytes`), not after a part is rejected.
 */
import { StorageError } from "./errors.ts";
import type { Provider } from "./target.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface PartLimits {
  /** Most parts (S3 parts, Azure blocks) one object may have; Infinity when unlimited. */
  readonly maxParts: number;
  /** Largest part the provider accepts. */
  readonly maxPartSize: number;
  /** Part sizes must be a multiple of this (GCS resumable chunks: 256 KiB). */
  readonly granularity: number;
}

export const partLimits: Readonly<Record<Provider, PartLimits>> = {
  // S3 multipart: 10,000 parts of at most 5 GiB.
  s3: { maxParts: 10_000, maxPartSize: 5 * GiB, granularity: 1 },
  // GCS resumable upload: chunks are a multiple of 256 KiB; no part count limit (5 TiB objects).
  gcs: { maxParts: Number.POSITIVE_INFINITY, maxPartSize: 5 * 1024 * GiB, granularity: 256 * KiB },
  // Azure block blob: 50,000 blocks of at most 4000 MiB.
  azure: { maxParts: 50_000, maxPartSize: 4000 * MiB, granularity: 1 },
};

export interface PartPlan {
  /** Bytes per part for this upload. */
  readonly partSize: number;
  /** The stream is refused once it exceeds this many bytes (Infinity when unlimited). */
  readonly maxBytes: number;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(bytes % GiB === 0 ? 0 : 1)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(bytes % MiB === 0 ? 0 : 1)} MiB`;
  return `${bytes} bytes`;
}

export function planParts(provider: Provider, configuredPartSize: number, contentLength?: number): PartPlan {
  const limits = partLimits[provider];
  let partSize = roundUp(configuredPartSize, limits.granularity);
  if (contentLength !== undefined && Math.ceil(contentLength / partSize) > limits.maxParts) {
    partSize = roundUp(roundUp(Math.ceil(contentLength / limits.maxParts), MiB), limits.granularity);
  }
  if (partSize > limits.maxPartSize) {
    throw new StorageError(
      "TooLarge",
      `${provider} upload of ${formatBytes(contentLength ?? partSize)} needs parts of ${formatBytes(partSize)}, ` +
        `more than the ${formatBytes(limits.maxPartSize)} ${provider} accepts`,
      { provider, operation: "upload" },
    );
  }
  return { partSize, maxBytes: partSize * limits.maxParts };
}

/** The error for a stream of unknown size that reached `plan.maxBytes`. */
export function tooManyPartsError(provider: Provider, plan: PartPlan, key: string): StorageError {
  const { maxParts } = partLimits[provider];
  return new StorageError(
    "TooLarge",
    `${provider} upload ${key}: the stream passed ${formatBytes(plan.maxBytes)} ` +
      `(${maxParts.toLocaleString("en-US")} parts of ${formatBytes(plan.partSize)}, the most one ${provider} object can have) ` +
      "before it ended; raise target.partSize so that partSize × " +
      `${maxParts.toLocaleString("en-US")} exceeds the largest snapshot`,
    { provider, operation: "upload", key },
  );
}
