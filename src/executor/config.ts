/**
 * Turns resolved settings (settings.ts) into a typed, validated executor configuration.
 * Every error names the environment variable (and flag) to fix; nothing here reads a
 * secret's file except the OpenBao CA, which is public. The one secret value taken here is
 * `BAO_TOKEN` (a static token from the environment, for runs outside Kubernetes), which is
 * kept in `staticToken` and never printed.
 */
import { existsSync, readFileSync } from "node:fs";
import { dnsLabelPattern, jsRegExp, maxDestinationNameLength } from "../api/patterns.ts";
import { type CanaryLocation, CanaryLocationError, parseCanaryLocation } from "../drill/canary.ts";
import type { AuthConfig } from "../openbao/auth.ts";
import type { TlsSettings } from "../openbao/http.ts";
import { latestKey } from "../snapshot/catalog.ts";
import { KeyPartError, RetentionPolicyError } from "../snapshot/errors.ts";
import type { SnapshotKind } from "../snapshot/key.ts";
import { normalizePathPrefix } from "../snapshot/key.ts";
import { type RetentionPolicy, validateRetentionPolicy } from "../snapshot/retention.ts";
// Direct imports, not storage/index.ts: that module loads every provider SDK, and a Job needs one.
import { TargetConfigError } from "../storage/errors.ts";
import { endpointHostProblem, parseTarget, type Target, type TargetSpec } from "../storage/target.ts";
import { ConfigLayerError } from "../util/coded-error.ts";
import { DurationError, parseDuration } from "../util/duration.ts";
import { defaultPaths, resolveSettings, type SettingName, settings } from "./settings.ts";

/** An executor setting that cannot be used; the message names the variable and its flag. */
export class ConfigError extends ConfigLayerError<"InvalidConfig"> {
  /** The environment variable to fix. */
  readonly variable: string;
  constructor(variable: string, message: string, options?: { cause?: unknown }) {
    const flag = settings.find((s) => s.env === variable)?.flag;
    super("InvalidConfig", `${variable}${flag ? ` (--${flag})` : ""}: ${message}`, options);
    this.variable = variable;
  }
}

export interface ClusterRef {
  readonly name: string;
  readonly namespace: string;
}

/** Where the JSON result line goes. */
export interface TerminationMessage {
  readonly path: string;
  /**
   * Given by flag or environment (the operator's Job always gives it): written, and a failure
   * to write is reported. Otherwise the default path is written only when it exists (the
   * kubelet creates it in a container; a workstation has none).
   */
  readonly explicit: boolean;
}

interface CommonConfig {
  readonly members: readonly string[];
  /** True when `members` are the in-cluster names derived from CLUSTER_NAME / CLUSTER_REPLICAS. */
  readonly membersDerived: boolean;
  readonly tls: TlsSettings;
  readonly auth: AuthConfig;
  /**
   * A static token taken from `BAO_TOKEN` (token auth without BACKUP_TOKEN_FILE); a secret,
   * never printed. When set, `auth.tokenFile` is not read.
   */
  readonly staticToken: string | undefined;
  readonly target: Target;
  readonly credentialsDir: string;
  readonly terminationMessage: TerminationMessage;
}

/** One place a backup is written to: the main target, or one of `BACKUP_ADDITIONAL_TARGETS`. */
export interface Destination {
  /** Names it in results, status, events and messages: a DNS label. */
  readonly name: string;
  readonly target: Target;
  readonly credentialsDir: string;
  /**
   * The Secret mounted at `credentialsDir` (additional targets from the operator): an empty
   * directory then means that Secret is missing, and that destination fails with SecretNotFound.
   */
  readonly credentialsSecret?: string | undefined;
}

export const successPolicies = ["All", "AtLeastOne", "Primary"] as const;
/** With several destinations, what makes the run a success (src/executor/destinations.ts). */
export type SuccessPolicy = (typeof successPolicies)[number];

export const maxAdditionalTargets = 4;

export interface BackupConfig extends CommonConfig {
  readonly mode: "backup";
  /** Every destination, the main target (`target`, `credentialsDir`) first. */
  readonly destinations: readonly Destination[];
  readonly successPolicy: SuccessPolicy;
  readonly cluster: ClusterRef;
  readonly kind: SnapshotKind;
  readonly retention: RetentionPolicy | undefined;
  /** The 8 hex digits the key ends in (`BACKUP_KEY_ID`); random when absent. */
  readonly keyId: string | undefined;
  /** Expected snapshot size in bytes (`BACKUP_SIZE_HINT`), passed to the upload's part plan. */
  readonly sizeHint: number | undefined;
  /** Where the canary for restore drills is written before the snapshot (`BACKUP_CANARY_PATH`); opt-in. */
  readonly canary: CanaryLocation | undefined;
}

export interface RestoreConfig extends CommonConfig {
  readonly mode: "restore";
  /** The cluster restored into; optional when BACKUP_OPENBAO_ADDRESSES names the members. */
  readonly cluster: ClusterRef | undefined;
  /** An object key, or `latest` (see `source`). */
  readonly key: string;
  /** With `latest`: the cluster whose newest verified backup is restored. */
  readonly source: ClusterRef | undefined;
  readonly force: boolean;
  /** With `force`: a run whose members all sealed after applying the snapshot succeeds. */
  readonly expectSealed: boolean;
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
  if (!Number.isSafeInteger(value))
    throw new ConfigError(name, `must be at most ${Number.MAX_SAFE_INTEGER}, got ${raw}`);
  if (value < min) throw new ConfigError(name, `must be at least ${min}, got ${raw}`);
  return value;
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function members(s: Settings, cluster: ClusterRef | undefined): { members: string[]; derived: boolean } {
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
    return { members: list, derived: false };
  }
  if (cluster === undefined) {
    throw new ConfigError("BACKUP_OPENBAO_ADDRESSES", "is required: the OpenBao member URLs, e.g. https://host:8200");
  }
  const replicas = integer(s, "CLUSTER_REPLICAS", 1) ?? 1;
  const sts = optional(s, "STATEFULSET_NAME") ?? cluster.name;
  return {
    members: Array.from(
      { length: replicas },
      (_, i) => `https://${sts}-${i}.${cluster.name}.${cluster.namespace}.svc:8200`,
    ),
    derived: true,
  };
}

function tls(s: Settings): TlsSettings {
  const path = optional(s, "BACKUP_CA_FILE") ?? defaultPaths.caFile;
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

const tokenHelp = "--auth-method token with --token-file <file> or the environment variable BAO_TOKEN";

function auth(s: Settings, env: NodeJS.ProcessEnv): { auth: AuthConfig; staticToken: string | undefined } {
  const method = (s.get("BACKUP_AUTH_METHOD") ?? "jwt").trim();
  if (method === "token") {
    const file = optional(s, "BACKUP_TOKEN_FILE");
    // A token file given explicitly wins; else BAO_TOKEN (the OpenBao CLI's own variable); else
    // the path where a Job mounts the token Secret.
    const fromEnv = file === undefined ? env.BAO_TOKEN?.trim() || undefined : undefined;
    return { auth: { method: "token", tokenFile: file ?? defaultPaths.tokenFile }, staticToken: fromEnv };
  }
  if (method !== "jwt")
    throw new ConfigError("BACKUP_AUTH_METHOD", `must be jwt or token, got ${JSON.stringify(method)}`);
  const mountPath = (s.get("BACKUP_JWT_AUTH_PATH") ?? "jwt").trim().replace(/^\/+|\/+$/g, "");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.\-/]*$/.test(mountPath) || mountPath.includes("..")) {
    throw new ConfigError("BACKUP_JWT_AUTH_PATH", `${JSON.stringify(mountPath)} is not an auth mount path like "jwt"`);
  }
  return {
    auth: {
      method: "jwt",
      mountPath,
      role: required(s, "BACKUP_JWT_AUTH_ROLE", `the JWT auth role to log in as (or use a static token: ${tokenHelp})`),
      jwtFile: optional(s, "BACKUP_JWT_TOKEN_FILE") ?? defaultPaths.jwtTokenFile,
    },
    staticToken: undefined,
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
  "encryption.type": "BACKUP_SSE",
  "encryption.kmsKeyId": "BACKUP_SSE_KMS_KEY_ID",
  "encryption.kmsKeyName": "BACKUP_GCS_KMS_KEY_NAME",
  "encryption.encryptionScope": "BACKUP_AZURE_ENCRYPTION_SCOPE",
  objectLock: "BACKUP_OBJECT_LOCK_MODE",
  "objectLock.mode": "BACKUP_OBJECT_LOCK_MODE",
  "objectLock.grace": "BACKUP_OBJECT_LOCK_GRACE",
  "objectLock.preUpgradeLegalHold": "BACKUP_OBJECT_LOCK_PRE_UPGRADE_LEGAL_HOLD",
  partSize: "BACKUP_PART_SIZE",
  concurrency: "BACKUP_CONCURRENCY",
  insecureSkipVerify: "BACKUP_INSECURE_SKIP_VERIFY",
};

function checkDestinationName(name: unknown, setting: SettingName, field: string): string {
  if (typeof name !== "string" || name.length > maxDestinationNameLength || !jsRegExp(dnsLabelPattern).test(name)) {
    throw new ConfigError(
      setting,
      `${field} must be a name of at most 40 lower-case letters, digits and "-" (e.g. "offsite"), got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** `BACKUP_ADDITIONAL_TARGETS`: more destinations, each parsed like the main target. */
function additionalTargets(s: Settings, primary: string): Destination[] {
  const raw = optional(s, "BACKUP_ADDITIONAL_TARGETS");
  if (raw === undefined) return [];
  const setting = "BACKUP_ADDITIONAL_TARGETS";
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ConfigError(
      setting,
      'must be a JSON array such as [{"name":"offsite","target":{…},"credentialsDir":"…"}]',
    );
  }
  if (!Array.isArray(value)) throw new ConfigError(setting, "must be a JSON array of destinations");
  if (value.length > maxAdditionalTargets) {
    throw new ConfigError(setting, `names ${value.length} destinations; at most ${maxAdditionalTargets} are allowed`);
  }
  const seen = new Set([primary]);
  return value.map((item: unknown, i): Destination => {
    const at = `[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw new ConfigError(setting, `${at} must be an object with name, target and credentialsDir`);
    }
    const entry = item as Record<string, unknown>;
    const name = checkDestinationName(entry.name, setting, `${at}.name`);
    if (seen.has(name)) {
      throw new ConfigError(
        setting,
        `${at}.name ${JSON.stringify(name)} is used twice (the main target is ${JSON.stringify(primary)}): give each destination its own name`,
      );
    }
    seen.add(name);
    if (typeof entry.target !== "object" || entry.target === null || Array.isArray(entry.target)) {
      throw new ConfigError(setting, `${at}.target must be an object with the fields of spec.backup.target`);
    }
    let parsed: Target;
    try {
      parsed = parseTarget(entry.target as TargetSpec);
    } catch (err) {
      if (err instanceof TargetConfigError)
        throw new ConfigError(setting, `${at} (${name}): ${err.message}`, { cause: err });
      throw err;
    }
    const credentialsDir = entry.credentialsDir;
    if (credentialsDir !== undefined && (typeof credentialsDir !== "string" || credentialsDir === "")) {
      throw new ConfigError(setting, `${at}.credentialsDir must be a directory path`);
    }
    const credentialsSecret = entry.credentialsSecret;
    if (credentialsSecret !== undefined && (typeof credentialsSecret !== "string" || credentialsSecret === "")) {
      throw new ConfigError(setting, `${at}.credentialsSecret must be the name of a Secret`);
    }
    let pathPrefix: string;
    try {
      pathPrefix = normalizePathPrefix(parsed.pathPrefix);
    } catch (err) {
      if (err instanceof KeyPartError)
        throw new ConfigError(setting, `${at} (${name}): target.${err.message}`, { cause: err });
      throw err;
    }
    return {
      name,
      target: { ...parsed, pathPrefix },
      // Absent: the provider's own credential chain, like a main target without a Secret.
      credentialsDir: credentialsDir ?? `${defaultPaths.credentialsDir}-${name}`,
      ...(credentialsSecret === undefined ? {} : { credentialsSecret }),
    };
  });
}

function canaryLocation(s: Settings): CanaryLocation | undefined {
  const raw = optional(s, "BACKUP_CANARY_PATH");
  if (raw === undefined) return undefined;
  try {
    return parseCanaryLocation(raw);
  } catch (err) {
    if (err instanceof CanaryLocationError) throw new ConfigError("BACKUP_CANARY_PATH", err.message, { cause: err });
    throw err;
  }
}

function successPolicy(s: Settings, additional: number): SuccessPolicy {
  const value = optional(s, "BACKUP_SUCCESS_POLICY") ?? "All";
  if (!(successPolicies as readonly string[]).includes(value)) {
    throw new ConfigError(
      "BACKUP_SUCCESS_POLICY",
      `must be ${successPolicies.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  if (additional === 0 && value !== "All") {
    throw new ConfigError(
      "BACKUP_SUCCESS_POLICY",
      "applies with BACKUP_ADDITIONAL_TARGETS only: remove it, or add destinations",
    );
  }
  return value as SuccessPolicy;
}

function target(s: Settings): Target {
  const provider = optional(s, "BACKUP_PROVIDER") ?? "s3";
  // Every encryption setting is passed whatever the provider: one that does not belong to it
  // is refused (naming its variable), never ignored — a backup must not go out unencrypted
  // because the setting was silently dropped.
  const encryption = {
    type: optional(s, "BACKUP_SSE"),
    kmsKeyId: optional(s, "BACKUP_SSE_KMS_KEY_ID"),
    kmsKeyName: optional(s, "BACKUP_GCS_KMS_KEY_NAME"),
    encryptionScope: optional(s, "BACKUP_AZURE_ENCRYPTION_SCOPE"),
  };
  const encryptionGiven = Object.values(encryption).some((v) => v !== undefined);
  // Like encryption: given for any provider, refused where it does not apply.
  const lockMode = optional(s, "BACKUP_OBJECT_LOCK_MODE");
  const objectLock =
    lockMode === undefined
      ? undefined
      : {
          mode: lockMode,
          grace: optional(s, "BACKUP_OBJECT_LOCK_GRACE"),
          preUpgradeLegalHold: boolean(s, "BACKUP_OBJECT_LOCK_PRE_UPGRADE_LEGAL_HOLD"),
        };
  const spec: TargetSpec = {
    provider,
    endpoint: optional(s, "BACKUP_ENDPOINT"),
    bucket: optional(s, "BACKUP_BUCKET"),
    pathPrefix: optional(s, "BACKUP_PATH_PREFIX"),
    partSize: integer(s, "BACKUP_PART_SIZE", 1),
    concurrency: integer(s, "BACKUP_CONCURRENCY", 1),
    insecureSkipVerify: boolean(s, "BACKUP_INSECURE_SKIP_VERIFY"),
    ...(encryptionGiven ? { encryption } : {}),
    ...(objectLock === undefined ? {} : { objectLock }),
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

function clusterRef(
  s: Settings,
  names: { name: SettingName; namespace: SettingName },
  why: { name: string; namespace: string },
): ClusterRef {
  const name = required(s, names.name, why.name);
  const namespace = required(s, names.namespace, why.namespace);
  if (!dnsLabel.test(namespace))
    throw new ConfigError(names.namespace, `${JSON.stringify(namespace)} is not a namespace name`);
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
    throw new ConfigError(names.name, `${JSON.stringify(name)} is not a Kubernetes object name`);
  }
  return { name, namespace };
}

const clusterNames = { name: "CLUSTER_NAME", namespace: "CLUSTER_NAMESPACE" } as const;
const clusterWhy = { name: "the OpenBaoCluster name", namespace: "the cluster's namespace" };

/** Where the JSON result line goes: the explicit setting, else the default path if it exists. */
export function terminationMessageTarget(env: NodeJS.ProcessEnv, argv: readonly string[]): TerminationMessage {
  let value: string | undefined;
  try {
    value = resolveSettings(env, argv).get("BACKUP_TERMINATION_MESSAGE_PATH");
  } catch {
    // A usage error is reported through this very file: fall back to the environment.
    value = env.BACKUP_TERMINATION_MESSAGE_PATH;
  }
  const path = value?.trim();
  return path ? { path, explicit: true } : { path: defaultPaths.terminationMessage, explicit: false };
}

function common(
  s: Settings,
  env: NodeJS.ProcessEnv,
  argv: readonly string[],
  cluster: ClusterRef | undefined,
): CommonConfig {
  const { members: list, derived } = members(s, cluster);
  const { auth: authConfig, staticToken } = auth(s, env);
  return {
    members: list,
    membersDerived: derived,
    tls: tls(s),
    auth: authConfig,
    staticToken,
    target: target(s),
    credentialsDir: optional(s, "BACKUP_CREDENTIALS_DIR") ?? defaultPaths.credentialsDir,
    terminationMessage: terminationMessageTarget(env, argv),
  };
}

export function loadBackupConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): BackupConfig {
  const s = resolveSettings(env, argv);
  const cluster = clusterRef(s, clusterNames, clusterWhy);
  const kind = (s.get("BACKUP_TYPE") ?? "scheduled").trim();
  if (kind !== "scheduled" && kind !== "pre-upgrade") {
    throw new ConfigError("BACKUP_TYPE", `must be scheduled or pre-upgrade, got ${JSON.stringify(kind)}`);
  }
  const keyId = s.get("BACKUP_KEY_ID")?.trim() || undefined;
  if (keyId !== undefined && !/^[0-9a-f]{8}$/.test(keyId)) {
    throw new ConfigError("BACKUP_KEY_ID", `must be exactly 8 lower-case hex digits, got ${JSON.stringify(keyId)}`);
  }
  const sizeHint = integer(s, "BACKUP_SIZE_HINT", 1);
  const shared = common(s, env, argv, cluster);
  const policy = retention(s);
  if (shared.target.provider === "s3" && shared.target.objectLock !== undefined && policy?.maxAgeMs === undefined) {
    throw new ConfigError(
      "BACKUP_OBJECT_LOCK_MODE",
      "needs BACKUP_RETENTION_MAX_AGE (spec.backup.retention.maxAge): each object stays locked for maxAge + grace, so that retention can delete it once it is due; set maxAge, or remove the object lock",
    );
  }
  const primary = checkDestinationName(
    optional(s, "BACKUP_TARGET_NAME") ?? "primary",
    "BACKUP_TARGET_NAME",
    "BACKUP_TARGET_NAME",
  );
  const additional = additionalTargets(s, primary);
  for (const d of additional) {
    if (d.target.provider === "s3" && d.target.objectLock !== undefined && policy?.maxAgeMs === undefined) {
      throw new ConfigError(
        "BACKUP_ADDITIONAL_TARGETS",
        `${d.name}: target.objectLock needs BACKUP_RETENTION_MAX_AGE (spec.backup.retention.maxAge); set maxAge, or remove the object lock`,
      );
    }
  }
  return {
    mode: "backup",
    cluster,
    ...shared,
    destinations: [{ name: primary, target: shared.target, credentialsDir: shared.credentialsDir }, ...additional],
    successPolicy: successPolicy(s, additional.length),
    kind,
    retention: policy,
    keyId,
    sizeHint,
    canary: canaryLocation(s),
  };
}

/**
 * A restore names its snapshot by key, so the cluster it restores into is needed only to
 * derive member addresses (none given) — or, with `latest`, to say whose backups to choose
 * from (`--source-cluster` / `--source-namespace`, defaulting to `--cluster` / `--namespace`).
 */
export function loadRestoreConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): RestoreConfig {
  const s = resolveSettings(env, argv);
  const key = required(s, "BACKUP_KEY", `the object key of the snapshot to restore, or ${latestKey}`);
  if (key.endsWith(".json")) throw new ConfigError("BACKUP_KEY", "names a manifest; give the .snap key it describes");
  const latest = key === latestKey;

  const clusterGiven = optional(s, "CLUSTER_NAME") !== undefined || optional(s, "CLUSTER_NAMESPACE") !== undefined;
  const addressesGiven = optional(s, "BACKUP_OPENBAO_ADDRESSES") !== undefined;
  const sourceGiven =
    optional(s, "BACKUP_SOURCE_CLUSTER") !== undefined || optional(s, "BACKUP_SOURCE_NAMESPACE") !== undefined;
  const cluster =
    clusterGiven || !addressesGiven || (latest && !sourceGiven)
      ? clusterRef(
          s,
          clusterNames,
          addressesGiven
            ? {
                name: "with --key latest, the name of the cluster whose backups to choose from (or --source-cluster)",
                namespace: "with --key latest, that cluster's namespace (or --source-namespace)",
              }
            : {
                name: `${clusterWhy.name}, to derive its member addresses (or give --openbao-addresses)`,
                namespace: `${clusterWhy.namespace}, to derive its member addresses (or give --openbao-addresses)`,
              },
        )
      : undefined;

  let source: ClusterRef | undefined;
  if (latest) {
    // The source defaults to the cluster restored into.
    const sourceSettings = new Map(s);
    const fallback = { BACKUP_SOURCE_CLUSTER: cluster?.name, BACKUP_SOURCE_NAMESPACE: cluster?.namespace } as const;
    for (const [setting, value] of Object.entries(fallback) as [SettingName, string | undefined][]) {
      if (optional(s, setting) === undefined && value !== undefined) sourceSettings.set(setting, value);
    }
    source = clusterRef(
      sourceSettings,
      { name: "BACKUP_SOURCE_CLUSTER", namespace: "BACKUP_SOURCE_NAMESPACE" },
      {
        name: "the cluster whose backups --key latest chooses from (default: --cluster)",
        namespace: "that cluster's namespace (default: --namespace)",
      },
    );
  } else {
    for (const setting of ["BACKUP_SOURCE_CLUSTER", "BACKUP_SOURCE_NAMESPACE"] as const) {
      if (optional(s, setting) !== undefined) {
        throw new ConfigError(setting, `only applies with --key ${latestKey}; a full key already names its cluster`);
      }
    }
  }

  const force = boolean(s, "BACKUP_FORCE");
  const expectSealed = boolean(s, "BACKUP_EXPECT_SEALED");
  if (expectSealed && !force) {
    throw new ConfigError(
      "BACKUP_EXPECT_SEALED",
      "only applies with --force (BACKUP_FORCE=true): only a snapshot of another cluster, restored with snapshot-force, leaves OpenBao sealed",
    );
  }
  return { mode: "restore", cluster, ...common(s, env, argv, cluster), key, source, force, expectSealed };
}
