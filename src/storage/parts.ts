/**
 * Part-size planning, the same rule for every provider with its own limits (SPEC §2
 * `target.partSize`, §5 trap 4):
 * - the configured size is used as given, rounded up to the provider's granularity;
 * - when the size is known (`contentLength`), or expected (`sizeHint`: the operator passes
 *   the last backup's size with headroom), and would need more parts than the provider
 *   allows, the part size is raised (to a whole MiB, then the granularity) so it fits;
 * - a stream is refused with a clear error *before* it passes `partSize × maxParts` bytes
 *   (see `maxBytes`), not after a part is rejected: a stream without a size, or one that
 *   outgrew its hint.
 */
import { StorageError } from "./errors.ts";
import type { Provider } from "./target.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

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

/** What is known of an upload's size before it starts. */
export interface PlanSizes {
  /** The exact size (UploadOptions.contentLength); wins over `sizeHint`. */
  readonly contentLength?: number | undefined;
  /** The expected size, not a promise (UploadOptions.sizeHint). */
  readonly sizeHint?: number | undefined;
}

export interface PartPlan {
  /** Bytes per part for this upload. */
  readonly partSize: number;
  /** The stream is refused once it exceeds this many bytes (Infinity when unlimited). */
  readonly maxBytes: number;
  /** The size hint the plan was made for (absent with none, or when contentLength was known). */
  readonly sizeHint?: number | undefined;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

export function formatBytes(bytes: number): string {
  if (bytes >= TiB) return `${(bytes / TiB).toFixed(bytes % TiB === 0 ? 0 : 1)} TiB`;
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(bytes % GiB === 0 ? 0 : 1)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(bytes % MiB === 0 ? 0 : 1)} MiB`;
  return `${bytes} bytes`;
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

/**
 * The part size for one upload and the size past which its stream is refused.
 * `limits` is the provider's (`partLimits`); a test may lower them to cross them with a small
 * object (StoreOptions.partLimits).
 */
export function planParts(
  provider: Provider,
  configuredPartSize: number,
  sizes: PlanSizes = {},
  limits: PartLimits = partLimits[provider],
): PartPlan {
  const { contentLength, sizeHint } = sizes;
  if (sizeHint !== undefined && !(Number.isSafeInteger(sizeHint) && sizeHint > 0)) {
    throw new TypeError(`sizeHint must be a positive whole number of bytes, got ${String(sizeHint)}`);
  }
  const hinted = contentLength === undefined ? sizeHint : undefined;
  const expected = contentLength ?? hinted;
  let partSize = roundUp(configuredPartSize, limits.granularity);
  if (expected !== undefined && Math.ceil(expected / partSize) > limits.maxParts) {
    // The smallest whole-MiB size (then a multiple of the granularity) that fits `expected`.
    partSize = roundUp(roundUp(Math.ceil(expected / limits.maxParts), MiB), limits.granularity);
  }
  if (partSize > limits.maxPartSize) {
    const what =
      contentLength !== undefined
        ? `upload of ${formatBytes(contentLength)}`
        : hinted !== undefined
          ? `upload expected to be ${formatBytes(hinted)} (size hint)`
          : "upload";
    throw new StorageError(
      "TooLarge",
      `${provider} ${what} needs parts of ${formatBytes(partSize)}, ` +
        `more than the ${formatBytes(limits.maxPartSize)} ${provider} accepts` +
        (Number.isFinite(limits.maxParts) ? ` (${count(limits.maxParts)} parts at most)` : ""),
      { provider, operation: "upload" },
    );
  }
  return {
    partSize,
    maxBytes: partSize * limits.maxParts,
    ...(hinted === undefined ? {} : { sizeHint: hinted }),
  };
}

/** The error for a stream that reached `plan.maxBytes` (no size given, or more than its hint). */
export function tooManyPartsError(provider: Provider, plan: PartPlan, key: string): StorageError {
  const maxParts = count(plan.maxBytes / plan.partSize);
  const planned =
    plan.sizeHint === undefined
      ? ""
      : `; the part size was planned for the expected ${formatBytes(plan.sizeHint)} (size hint), ` +
        "and the snapshot outgrew it";
  return new StorageError(
    "TooLarge",
    `${provider} upload ${key}: the stream passed ${formatBytes(plan.maxBytes)} ` +
      `(${maxParts} parts of ${formatBytes(plan.partSize)}, the most one ${provider} object can have) ` +
      `before it ended${planned}; raise target.partSize so that partSize × ${maxParts} exceeds the largest snapshot`,
    { provider, operation: "upload", key },
  );
}
