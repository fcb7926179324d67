/**
 * The `target` block of `spec.backup` / `OpenBaoRestore.spec.source` (SPEC §2) and the
 * credentials Secret it refers to. `parseTarget` validates a spec and applies the defaults,
 * so every consumer (executor, retention, CLI) sees the same resolved values; errors name
 * the field and the fix.
 *
 * Keys handed to an `ObjectStore` are complete object keys: `pathPrefix` is carried here for
 * the key-naming code (src/snapshot/key.ts), the store itself never adds it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  azureEncryptionScopePattern,
  embeddedIPv4EndpointPattern,
  gcsKmsKeyNamePattern,
  jsRegExp,
  linkLocalEndpointPattern,
  s3KmsKeyIdPattern,
} from "../api/patterns.ts";
import { DurationError, parseDuration } from "../util/duration.ts";
import { TargetConfigError } from "./errors.ts";
import { partLimits } from "./parts.ts";

export const providers = ["s3", "gcs", "azure"] as const;
export type Provider = (typeof providers)[number];

const MiB = 1024 * 1024;
export const defaultPartSize = 10 * MiB;
export const minPartSize = 5 * MiB;
export const defaultConcurrency = 3;
export const maxConcurrency = 16;
export const defaultRegion = "us-east-1";

/** `target` as written in a resource: every field optional, no defaults applied. */
export interface TargetSpec {
  provider?: string;
  endpoint?: string;
  bucket?: string;
  pathPrefix?: string;
  region?: string;
  usePathStyle?: boolean;
  roleArn?: string;
  /** Resolved by the operator into a mounted credentials directory (see `readCredentialsDir`). */
  credentialsSecretRef?: { name: string };
  gcs?: { project?: string };
  azure?: { storageAccount?: string; container?: string };
  /** One provider's fields: S3 `type` (+ `kmsKeyId`), GCS `kmsKeyName`, Azure `encryptionScope`. */
  encryption?: { type?: string; kmsKeyId?: string; kmsKeyName?: string; encryptionScope?: string };
  /** S3 Object Lock on what a backup writes (see `S3ObjectLock`). */
  objectLock?: { mode?: string; grace?: string; preUpgradeLegalHold?: boolean };
  partSize?: number;
  concurrency?: number;
  insecureSkipVerify?: boolean;
}

interface TargetCommon {
  /** Custom endpoint URL (MinIO, fake-gcs-server, Azurite, private endpoints); absent for the provider's own. */
  readonly endpoint: string | undefined;
  /** Bucket (S3, GCS) or container (Azure: `azure.container` when given, else `bucket`). */
  readonly bucket: string;
  readonly pathPrefix: string;
  /** Bytes per part/chunk/block; the store may raise it for one upload (see parts.ts). */
  readonly partSize: number;
  /** Parts in flight at once. */
  readonly concurrency: number;
  readonly insecureSkipVerify: boolean;
}

/** SSE-S3, or SSE-KMS with the named key (else the store's default KMS key). */
export type S3Encryption =
  | { readonly type: "AES256" }
  | { readonly type: "aws:kms"; readonly kmsKeyId: string | undefined };

/**
 * S3 Object Lock on every snapshot and manifest a backup writes: retained in `mode` until its
 * creation + `retention.maxAge` + `grace` — so retention can delete it once it is due and the
 * lock has ended, and nobody (in COMPLIANCE mode, not even the root account) can delete it
 * sooner. Pre-upgrade snapshots also get a legal hold with `preUpgradeLegalHold`: they are
 * rollback points, kept until a person lifts the hold. The bucket must have Object Lock
 * enabled. GCS and Azure: bucket- or container-level retention instead (docs/providers).
 */
export interface S3ObjectLock {
  readonly mode: "GOVERNANCE" | "COMPLIANCE";
  readonly graceMs: number;
  readonly preUpgradeLegalHold: boolean;
}

export const defaultObjectLockGrace = "24h";

export interface S3Target extends TargetCommon {
  readonly provider: "s3";
  readonly region: string;
  readonly usePathStyle: boolean;
  readonly roleArn: string | undefined;
  /** Server-side encryption of every object written; undefined: the bucket's default. */
  readonly encryption: S3Encryption | undefined;
  /** Object Lock of what a backup writes; undefined: only the bucket's default retention, if any. */
  readonly objectLock: S3ObjectLock | undefined;
}

export interface GcsTarget extends TargetCommon {
  readonly provider: "gcs";
  readonly gcs: { readonly project: string | undefined };
  /** Customer-managed encryption key (CMEK) of every object written; undefined: the bucket's default. */
  readonly encryption: { readonly kmsKeyName: string } | undefined;
}

export interface AzureTarget extends TargetCommon {
  readonly provider: "azure";
  readonly azure: { readonly storageAccount: string };
  /** Encryption scope of every blob written; undefined: the account's (or container's) default. */
  readonly encryption: { readonly encryptionScope: string } | undefined;
}

export type Target = S3Target | GcsTarget | AzureTarget;

function fail(field: string, message: string): never {
  throw new TargetConfigError(`target.${field}`, message);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") fail(field, `must be a string, got ${typeof value}`);
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

function optionalBoolean(value: unknown, field: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") fail(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function integerIn(value: unknown, field: string, fallback: number, min: number, max: number, unit: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    fail(field, `must be a whole number of ${unit}, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) fail(field, `must be between ${min} and ${max} ${unit}, got ${value}`);
  return value;
}

/** The host as written in `value` (brackets kept for IPv6), before any URL parsing. */
function writtenHost(value: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#@]*@)?(\[[^\]/?#]*\]|[^/:?#]*)/.exec(value)?.[1] ?? "";
}

/**
 * Why an endpoint URL's host must not be used, or undefined. The same policy as the CRD's
 * rules (patterns.ts), checked on what the URL parser (and so `fetch`) will actually connect
 * to: the host must be written the way the parser reads it (no decimal/hex/octal/shortened
 * IPv4, no `%`-escapes, no IDNA-mapped characters, no trailing dot), must not be link-local
 * or a cloud metadata service, and must not be an IPv4-mapped IPv6 literal. Used for
 * `target.endpoint` here and for OpenBao member addresses (BACKUP_OPENBAO_ADDRESSES).
 */
export function endpointHostProblem(value: string, url: URL = new URL(value)): string | undefined {
  const written = writtenHost(value);
  const host = url.hostname;
  if (written.toLowerCase() !== host || host.endsWith(".")) {
    return `writes its host as ${JSON.stringify(written)}, which is read as ${JSON.stringify(host)}: write the host in its canonical form (an IPv4 address as four decimal numbers such as 10.0.0.7, a DNS name without a trailing dot)`;
  }
  const canonical = `${url.protocol}//${host}`;
  if (jsRegExp(linkLocalEndpointPattern).test(canonical)) {
    return `must not point at a link-local or cloud metadata address (${host}): the Job would send its credentials there; use the address of the storage or OpenBao service`;
  }
  if (jsRegExp(embeddedIPv4EndpointPattern).test(canonical)) {
    return `must not be an IPv4-mapped IPv6 address (${host}): write the IPv4 address as four decimal numbers`;
  }
  return undefined;
}

function checkEndpoint(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail("endpoint", `${JSON.stringify(value)} is not a URL; write it as https://host[:port]`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    fail("endpoint", `must start with https:// or http://, got ${JSON.stringify(value)}`);
  }
  if (url.username !== "" || url.password !== "") {
    fail("endpoint", "must not contain credentials; put them in the credentials Secret");
  }
  if (url.search !== "" || url.hash !== "") fail("endpoint", "must not contain a query or fragment");
  const problem = endpointHostProblem(value, url);
  if (problem !== undefined) fail("endpoint", problem);
  return value.replace(/\/+$/, "");
}

function checkBucket(value: string | undefined, field: string, what: string): string {
  if (value === undefined) fail(field, `is required: the ${what} backups are written to`);
  if (value.includes("/")) fail(field, `must be a ${what} name without "/"; put folders in target.pathPrefix`);
  return value;
}

/** Validates a `target` spec and applies the defaults of SPEC §2. */
export function parseTarget(spec: TargetSpec): Target {
  const provider = optionalString(spec.provider, "provider") ?? "s3";
  if (!(providers as readonly string[]).includes(provider)) {
    fail("provider", `must be one of ${providers.join(", ")}, got ${JSON.stringify(provider)}`);
  }
  const limits = partLimits[provider as Provider];
  const maxPart = Math.min(limits.maxPartSize, Number.MAX_SAFE_INTEGER);
  const common = {
    endpoint: checkEndpoint(optionalString(spec.endpoint, "endpoint")),
    pathPrefix: optionalString(spec.pathPrefix, "pathPrefix") ?? "",
    partSize: integerIn(spec.partSize, "partSize", defaultPartSize, minPartSize, maxPart, "bytes"),
    concurrency: integerIn(spec.concurrency, "concurrency", defaultConcurrency, 1, maxConcurrency, "parts"),
    insecureSkipVerify: optionalBoolean(spec.insecureSkipVerify, "insecureSkipVerify"),
  };
  const bucket = optionalString(spec.bucket, "bucket");
  const onlyFor = (field: string, value: unknown, owner: Provider): void => {
    if (value !== undefined && value !== null && value !== "" && provider !== owner) {
      fail(field, `applies to provider ${owner} only; remove it for provider ${provider}`);
    }
  };
  onlyFor("roleArn", spec.roleArn, "s3");
  if (spec.objectLock !== undefined && spec.objectLock !== null && provider !== "s3") {
    fail(
      "objectLock",
      `applies to provider s3 only; on ${provider === "gcs" ? "GCS use a bucket retention policy" : "Azure use a container immutability policy"} instead (retention then reports what it holds), and remove target.objectLock`,
    );
  }
  onlyFor("gcs", spec.gcs, "gcs");
  onlyFor("azure", spec.azure, "azure");
  const encryption = {
    type: optionalString(spec.encryption?.type, "encryption.type"),
    kmsKeyId: optionalString(spec.encryption?.kmsKeyId, "encryption.kmsKeyId"),
    kmsKeyName: optionalString(spec.encryption?.kmsKeyName, "encryption.kmsKeyName"),
    encryptionScope: optionalString(spec.encryption?.encryptionScope, "encryption.encryptionScope"),
  };
  onlyFor("encryption.type", encryption.type, "s3");
  onlyFor("encryption.kmsKeyId", encryption.kmsKeyId, "s3");
  onlyFor("encryption.kmsKeyName", encryption.kmsKeyName, "gcs");
  onlyFor("encryption.encryptionScope", encryption.encryptionScope, "azure");
  // An `encryption` block that asks for nothing would silently mean "the bucket's default".
  const encryptionGiven = spec.encryption !== undefined && spec.encryption !== null;

  switch (provider) {
    case "gcs":
      return {
        provider,
        ...common,
        bucket: checkBucket(bucket, "bucket", "bucket"),
        gcs: { project: optionalString(spec.gcs?.project, "gcs.project") },
        encryption: gcsEncryption(encryption.kmsKeyName, encryptionGiven),
      };
    case "azure": {
      const container = optionalString(spec.azure?.container, "azure.container") ?? bucket;
      const storageAccount = optionalString(spec.azure?.storageAccount, "azure.storageAccount");
      if (storageAccount === undefined) {
        fail("azure.storageAccount", "is required for provider azure: the storage account name");
      }
      return {
        provider,
        ...common,
        bucket: checkBucket(container, "bucket", "container (set target.bucket or target.azure.container)"),
        azure: { storageAccount },
        encryption: azureEncryption(encryption.encryptionScope, encryptionGiven),
      };
    }
    default: {
      const roleArn = optionalString(spec.roleArn, "roleArn");
      if (roleArn !== undefined && !roleArn.startsWith("arn:")) {
        fail("roleArn", `must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got ${JSON.stringify(roleArn)}`);
      }
      return {
        provider: "s3",
        ...common,
        bucket: checkBucket(bucket, "bucket", "bucket"),
        region: optionalString(spec.region, "region") ?? defaultRegion,
        usePathStyle: optionalBoolean(spec.usePathStyle, "usePathStyle"),
        roleArn,
        encryption: s3Encryption(encryption.type, encryption.kmsKeyId, encryptionGiven),
        objectLock: s3ObjectLock(spec.objectLock),
      };
    }
  }
}

function s3ObjectLock(spec: TargetSpec["objectLock"] | null): S3ObjectLock | undefined {
  if (spec === undefined || spec === null) return undefined;
  const mode = optionalString(spec.mode, "objectLock.mode");
  if (mode !== "GOVERNANCE" && mode !== "COMPLIANCE") {
    fail(
      "objectLock.mode",
      `must be GOVERNANCE (a person with s3:BypassGovernanceRetention can still delete) or COMPLIANCE (nobody can until it ends), got ${JSON.stringify(mode ?? "")}`,
    );
  }
  const grace = optionalString(spec.grace, "objectLock.grace") ?? defaultObjectLockGrace;
  let graceMs: number;
  try {
    graceMs = parseDuration(grace, { allowZero: true });
  } catch (err) {
    if (err instanceof DurationError) fail("objectLock.grace", err.message);
    throw err;
  }
  return {
    mode,
    graceMs,
    preUpgradeLegalHold: optionalBoolean(spec.preUpgradeLegalHold, "objectLock.preUpgradeLegalHold"),
  };
}

function s3Encryption(
  type: string | undefined,
  kmsKeyId: string | undefined,
  given: boolean,
): S3Encryption | undefined {
  if (type === undefined) {
    if (kmsKeyId !== undefined) {
      fail("encryption.kmsKeyId", "needs target.encryption.type aws:kms (SSE-KMS); add it, or remove kmsKeyId");
    }
    if (given) fail("encryption.type", "is required for provider s3: AES256 (SSE-S3) or aws:kms (SSE-KMS)");
    return undefined;
  }
  if (type === "AES256") {
    if (kmsKeyId !== undefined) {
      fail("encryption.kmsKeyId", "applies to type aws:kms only; set type aws:kms, or remove kmsKeyId for AES256");
    }
    return { type };
  }
  if (type !== "aws:kms") {
    fail("encryption.type", `must be AES256 (SSE-S3) or aws:kms (SSE-KMS), got ${JSON.stringify(type)}`);
  }
  if (kmsKeyId !== undefined && !jsRegExp(s3KmsKeyIdPattern).test(kmsKeyId)) {
    fail(
      "encryption.kmsKeyId",
      `must be a KMS key id, key ARN or alias such as "alias/openbao-backups" (no spaces), got ${JSON.stringify(kmsKeyId)}`,
    );
  }
  return { type, kmsKeyId };
}

function gcsEncryption(kmsKeyName: string | undefined, given: boolean): GcsTarget["encryption"] {
  if (kmsKeyName === undefined) {
    if (given) {
      fail(
        "encryption.kmsKeyName",
        "is required for provider gcs: the Cloud KMS key, projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>",
      );
    }
    return undefined;
  }
  if (kmsKeyName.includes("/cryptoKeyVersions/")) {
    fail(
      "encryption.kmsKeyName",
      "names a key version: give the key itself (…/cryptoKeys/<key>); GCS encrypts with its primary version",
    );
  }
  if (!jsRegExp(gcsKmsKeyNamePattern).test(kmsKeyName)) {
    fail(
      "encryption.kmsKeyName",
      `must be a Cloud KMS key, projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>, got ${JSON.stringify(kmsKeyName)}`,
    );
  }
  return { kmsKeyName };
}

function azureEncryption(encryptionScope: string | undefined, given: boolean): AzureTarget["encryption"] {
  if (encryptionScope === undefined) {
    if (given) {
      fail("encryption.encryptionScope", "is required for provider azure: the storage account's encryption scope");
    }
    return undefined;
  }
  if (
    !jsRegExp(azureEncryptionScopePattern).test(encryptionScope) ||
    encryptionScope.length < 3 ||
    encryptionScope.length > 63
  ) {
    fail(
      "encryption.encryptionScope",
      `must be 3 to 63 lower-case letters, digits and single hyphens, got ${JSON.stringify(encryptionScope)}`,
    );
  }
  return { encryptionScope };
}

/**
 * What a mounted credentials Secret holds: one file per key (SPEC §2). Only keys that exist
 * (and are not empty) are set. Values are secrets: never log this object.
 */
export interface StorageCredentials {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Overrides `target.region` for S3. */
  region?: string;
  /** PEM bundle trusted for the storage endpoint, in addition to the default CAs. */
  caCert?: string;
  /** Raw `credentials.json` (a GCS service-account key, or any ADC JSON). */
  credentialsJson?: string;
  accountKey?: string;
  connectionString?: string;
}

/** Secret key name → field. Keys are file names in the mounted Secret. */
const credentialFiles = {
  accessKeyId: "accessKeyId",
  secretAccessKey: "secretAccessKey",
  sessionToken: "sessionToken",
  region: "region",
  caCert: "caCert",
  credentialsJson: "credentials.json",
  accountKey: "accountKey",
  connectionString: "connectionString",
} as const satisfies Record<keyof StorageCredentials, string>;

/**
 * Reads a mounted credentials Secret. A missing directory means "no Secret" (ambient
 * identity); a missing or empty file means "key not set". Single-line values are trimmed
 * (a `kubectl create secret --from-file` value often ends in a newline); PEM and JSON are kept.
 */
export async function readCredentialsDir(dir: string): Promise<StorageCredentials> {
  const out: StorageCredentials = {};
  for (const [name, file] of Object.entries(credentialFiles) as [keyof StorageCredentials, string][]) {
    let text: string;
    try {
      text = await readFile(join(dir, file), "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue;
      throw new TargetConfigError(`credentials.${file}`, `cannot be read from ${dir}: ${code ?? "unknown error"}`);
    }
    setCredential(out, name, text);
  }
  return out;
}

/**
 * The same credentials from a Secret's `data` (base64 values, keyed like the mounted files),
 * for processes that read the Secret through the API (the CLI, the freshness monitor).
 */
export function credentialsFromSecretData(data: Readonly<Record<string, string>> | undefined): StorageCredentials {
  const out: StorageCredentials = {};
  for (const [name, key] of Object.entries(credentialFiles) as [keyof StorageCredentials, string][]) {
    const raw = data?.[key];
    if (raw !== undefined) setCredential(out, name, Buffer.from(raw, "base64").toString("utf8"));
  }
  return out;
}

/** Single-line values are trimmed; PEM and JSON are kept as written; empty means "not set". */
function setCredential(out: StorageCredentials, name: keyof StorageCredentials, text: string): void {
  const value = name === "caCert" || name === "credentialsJson" ? text : text.trim();
  if (value.trim() !== "") out[name] = value;
}

/** The secret values among the credentials, for `redact`. */
export function secretValues(credentials: StorageCredentials): string[] {
  const secrets = [credentials.secretAccessKey, credentials.sessionToken, credentials.accountKey];
  if (credentials.connectionString !== undefined) {
    secrets.push(credentials.connectionString);
    for (const part of credentials.connectionString.split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0 && /^(AccountKey|SharedAccessSignature)$/i.test(part.slice(0, eq).trim())) {
        secrets.push(part.slice(eq + 1).trim());
      }
    }
  }
  if (credentials.credentialsJson !== undefined) {
    secrets.push(credentials.credentialsJson.trim());
    for (const name of ["private_key", "private_key_id", "client_secret", "refresh_token"]) {
      const match = new RegExp(`"${name}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(credentials.credentialsJson);
      if (match?.[1] !== undefined) {
        secrets.push(match[1]);
        // The PEM body as it appears once the JSON escapes are decoded.
        secrets.push(match[1].replace(/\\n/g, "\n"));
      }
    }
  }
  return secrets.filter((s): s is string => s !== undefined && s.length >= 4);
}
