/**
 * Turns resolved settings (settings.ts) into a typed, validated executor configuration.
 * Every error names the environment variable (and flag) to fix; nothing here reads a
 * secret's value except the OpenBao CA, which is public.
 */
import { existsSync, readFileSync } from "node:fs";
import type { AuthConfig } from "../openbao/auth.ts";
import type { TlsSettings } from "../openbao/http.ts";
import { KeyPartError, RetentionPolicyError } from "../snapshot/errors.ts";
import type { SnapshotKind } from "../snapshot/key.ts";
import { normalizePathPrefix } from "../snapshot/key.ts";
import { type RetentionPolicy, validateRetentionPolicy } from "../snapshot/retention.ts";
// Direct imports, not storage/index.ts: that module loads every provider SDK, and a Job needs one.
import { TargetConfigError } from "../storage/errors.ts";
import { endpointHostProblem, parseTarget, type Target, type TargetSpec } from "../storage/target.ts";
import { DurationError, parseDuration } from "../util/duration.ts";
import { defaultPaths, resolveSettings, type SettingName, settings } from "./settings.ts";

export class ConfigError extends Error {
  /** The environment variable to fix. */
  readonly variable: string;
  constructor(variable: string, message: string, options?: { cause?: unknown }) {
    const flag = settings.find((s) => s.env === variable)?.flag;
    super(`${variable}${flag ? ` (--${flag})` : ""}: ${message}`, options);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

export interface ClusterRef {
  readonly name: string;
  readonly namespace: string;
}

interface CommonConfig {
  readonly cluster: ClusterRef;
  readonly members: readonly string[];
  readonly tls: TlsSettings;
  readonly auth: AuthConfig;
  readonly target: Target;
  readonly credentialsDir: string;
  readonly terminationMessagePath: string;
}

export interface BackupConfig extends CommonConfig {
  readonly mode: "backup";
  readonly kind: SnapshotKind;
  readonly retention: RetentionPolicy | undefined;
}

export interface RestoreConfig extends CommonConfig {
  readonly mode: "restore";
  readonly key: string;
  readonly force: boolean;
}

type Settings = Map<SettingName, string>;

function required(s: Settings, name: SettingName, what: string): string {
  const value = s.get(name)?.trim();
  if (!value) throw new ConfigError(name, `is required: ${what}`);
  return value;
}

function optional(s: Settings, name: SettingName): string | undefined {
  const value = s.get(name)?.trim();
  return value ? value : undefined;
}

function boolean(s: Settings, name: SettingName): boolean {
  const value = (s.get(name) ?? "false").trim().toLowerCase();
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0" || value === "") return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(value)}`);
}

function integer(s: Settings, name: SettingName, min: number): number | undefined {
  const raw = optional(s, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(name, `must be at least ${min}, got ${raw}`);
  return value;
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function members(s: Settings, cluster: ClusterRef): string[] {
  const explicit = optional(s, "BACKUP_OPENBAO_ADDRESSES");
  if (explicit) {
    const list = explicit
      .split(",")
      .map((a) => a.trim())
      .filter((a) => a !== "");
    for (const address of list) {
      let url: URL;
      try {
        url = new URL(address);
      } catch {
        throw new ConfigError(
          "BACKUP_OPENBAO_ADDRESSES",
          `${JSON.stringify(address)} is not a URL; write https://host:8200`,
        );
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        throw new ConfigError("BACKUP_OPENBAO_ADDRESSES", `${JSON.stringify(address)} must start with https://`);
      }
      // The same host policy as admission: a spec that bypassed it still never sends a token
      // to a metadata service or to a host written so that it reads as another one.
      const problem = endpointHostProblem(address, url);
      if (problem !== undefined)
        throw new ConfigError("BACKUP_OPENBAO_ADDRESSES", `${JSON.stringify(address)} ${problem}`);
    }
    if (list.length === 0) throw new ConfigError("BACKUP_OPENBAO_ADDRESSES", "lists no address");
    return list;
  }
  const replicas = integer(s, "CLUSTER_REPLICAS", 1) ?? 1;
  const sts = optional(s, "STATEFULSET_NAME") ?? cluster.name;
  return Array.from(
    { length: replicas },
    (_, i) => `https://${sts}-${i}.${cluster.name}.${cluster.namespace}.svc:8200`,
  );
}

function tls(s: Settings): TlsSettings {
  const path = s.get("BACKUP_CA_FILE") ?? defaultPaths.caFile;
  if (!existsSync(path)) {
    // Only the default location may be absent: then the system CAs verify OpenBao.
    if (path !== defaultPaths.caFile)
      throw new ConfigError("BACKUP_CA_FILE", `${path} does not exist; mount the CA there`);
    return {};
  }
  const caPem = readFileSync(path, "utf8");
  if (!caPem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError(
      "BACKUP_CA_FILE",
      `${path} holds no PEM certificate; the TLS Secret's ca.crt must be a PEM CA`,
    );
  }
  return { caPem };
}

function auth(s: Settings): AuthConfig {
  const method = (s.get("BACKUP_AUTH_METHOD") ?? "jwt").trim();
  if (method === "token") return { method: "token", tokenFile: s.get("BACKUP_TOKEN_FILE") ?? defaultPaths.tokenFile };
  if (method !== "jwt")
    throw new ConfigError("BACKUP_AUTH_METHOD", `must be jwt or token, got ${JSON.stringify(method)}`);
  const mountPath = (s.get("BACKUP_JWT_AUTH_PATH") ?? "jwt").trim().replace(/^\/+|\/+$/g, "");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.\-/]*$/.test(mountPath) || mountPath.includes("..")) {
    throw new ConfigError("BACKUP_JWT_AUTH_PATH", `${JSON.stringify(mountPath)} is not an auth mount path like "jwt"`);
  }
  return {
    method: "jwt",
    mountPath,
    role: required(s, "BACKUP_JWT_AUTH_ROLE", "the JWT auth role to log in as (or set BACKUP_AUTH_METHOD=token)"),
    jwtFile: s.get("BACKUP_JWT_TOKEN_FILE") ?? defaultPaths.jwtTokenFile,
  };
}

const targetVariables: Record<string, SettingName> = {
  provider: "BACKUP_PROVIDER",
  endpoint: "BACKUP_ENDPOINT",
  bucket: "BACKUP_BUCKET",
  pathPrefix: "BACKUP_PATH_PREFIX",
  region: "BACKUP_REGION",
  usePathStyle: "BACKUP_USE_PATH_STYLE",
  roleArn: "BACKUP_ROLE_ARN",
  "gcs.project": "BACKUP_GCS_PROJECT",
  "azure.storageAccount": "BACKUP_AZURE_STORAGE_ACCOUNT",
  "azure.container": "BACKUP_AZURE_CONTAINER",
  partSize: "BACKUP_PART_SIZE",
  concurrency: "BACKUP_CONCURRENCY",
  insecureSkipVerify: "BACKUP_INSECURE_SKIP_VERIFY",
};

function target(s: Settings): Target {
  const provider = optional(s, "BACKUP_PROVIDER") ?? "s3";
  const spec: TargetSpec = {
    provider,
    endpoint: optional(s, "BACKUP_ENDPOINT"),
    bucket: optional(s, "BACKUP_BUCKET"),
    pathPrefix: optional(s, "BACKUP_PATH_PREFIX"),
    partSize: integer(s, "BACKUP_PART_SIZE", 1),
    concurrency: integer(s, "BACKUP_CONCURRENCY", 1),
    insecureSkipVerify: boolean(s, "BACKUP_INSECURE_SKIP_VERIFY"),
    ...(provider === "s3"
      ? {
          region: optional(s, "BACKUP_REGION"),
          usePathStyle: boolean(s, "BACKUP_USE_PATH_STYLE"),
          roleArn: optional(s, "BACKUP_ROLE_ARN"),
        }
      : {}),
    ...(provider === "gcs" ? { gcs: { project: optional(s, "BACKUP_GCS_PROJECT") } } : {}),
    ...(provider === "azure"
      ? {
          azure: {
            storageAccount: optional(s, "BACKUP_AZURE_STORAGE_ACCOUNT"),
            container: optional(s, "BACKUP_AZURE_CONTAINER"),
          },
        }
      : {}),
  };
  try {
    const parsed = parseTarget(spec);
    return { ...parsed, pathPrefix: normalizePathPrefix(parsed.pathPrefix) };
  } catch (err) {
    if (err instanceof TargetConfigError) {
      const field = err.field.replace(/^target\./, "");
      throw new ConfigError(targetVariables[field] ?? "BACKUP_PROVIDER", err.message, { cause: err });
    }
    if (err instanceof KeyPartError) throw new ConfigError("BACKUP_PATH_PREFIX", err.message, { cause: err });
    throw err;
  }
}

function retention(s: Settings): RetentionPolicy | undefined {
  const maxCount = integer(s, "BACKUP_RETENTION_MAX_COUNT", 1);
  const rawAge = optional(s, "BACKUP_RETENTION_MAX_AGE");
  let maxAgeMs: number | undefined;
  if (rawAge !== undefined) {
    try {
      maxAgeMs = parseDuration(rawAge, { field: "BACKUP_RETENTION_MAX_AGE" });
    } catch (err) {
      if (err instanceof DurationError) throw new ConfigError("BACKUP_RETENTION_MAX_AGE", err.message, { cause: err });
      throw err;
    }
  }
  if (maxCount === undefined && maxAgeMs === undefined) return undefined;
  const policy: RetentionPolicy = {
    ...(maxCount !== undefined ? { maxCount } : {}),
    ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
  };
  try {
    validateRetentionPolicy(policy);
  } catch (err) {
    if (err instanceof RetentionPolicyError)
      throw new ConfigError("BACKUP_RETENTION_MAX_COUNT", err.message, { cause: err });
    throw err;
  }
  return policy;
}

function common(s: Settings): CommonConfig {
  const name = required(s, "CLUSTER_NAME", "the OpenBaoCluster name");
  const namespace = required(s, "CLUSTER_NAMESPACE", "the cluster's namespace");
  if (!dnsLabel.test(namespace))
    throw new ConfigError("CLUSTER_NAMESPACE", `${JSON.stringify(namespace)} is not a namespace name`);
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
    throw new ConfigError("CLUSTER_NAME", `${JSON.stringify(name)} is not a Kubernetes object name`);
  }
  const cluster = { name, namespace };
  return {
    cluster,
    members: members(s, cluster),
    tls: tls(s),
    auth: auth(s),
    target: target(s),
    credentialsDir: s.get("BACKUP_CREDENTIALS_DIR") ?? defaultPaths.credentialsDir,
    terminationMessagePath: s.get("BACKUP_TERMINATION_MESSAGE_PATH") ?? defaultPaths.terminationMessage,
  };
}

export function loadBackupConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): BackupConfig {
  const s = resolveSettings(env, argv);
  const kind = (s.get("BACKUP_TYPE") ?? "scheduled").trim();
  if (kind !== "scheduled" && kind !== "pre-upgrade") {
    throw new ConfigError("BACKUP_TYPE", `must be scheduled or pre-upgrade, got ${JSON.stringify(kind)}`);
  }
  return { mode: "backup", ...common(s), kind, retention: retention(s) };
}

export function loadRestoreConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): RestoreConfig {
  const s = resolveSettings(env, argv);
  const key = required(s, "BACKUP_KEY", "the object key of the snapshot to restore");
  if (key.endsWith(".json")) throw new ConfigError("BACKUP_KEY", "names a manifest; give the .snap key it describes");
  return { mode: "restore", ...common(s), key, force: boolean(s, "BACKUP_FORCE") };
}
