/**
 * The executor's configuration surface: every setting has an environment variable (the
 * contract with the Job the operator builds, SPEC §4) and an equivalent command-line flag
 * for use outside Kubernetes. Flags win over the environment.
 *
 * The paths where a Job mounts things (`defaultPaths`) are not settings' defaults: each is
 * used only when its setting is not given, and only if it exists — so on a workstation,
 * with nothing mounted, a missing CA means the system CAs, a missing credentials directory
 * the provider's own credential chain, a missing token file an error naming the flag, and
 * no termination message is written unless asked for.
 */
import { ConfigLayerError } from "../util/coded-error.ts";

export interface Setting {
  readonly env: string;
  readonly flag: string;
  readonly help: string;
  readonly default?: string;
}

/** Where the operator's Job mounts things; each path can be overridden (see the module comment). */
export const defaultPaths = {
  credentialsDir: "/etc/bao-backup/storage",
  tokenFile: "/etc/bao-backup/openbao-token/token",
  jwtTokenFile: "/var/run/secrets/openbao/token",
  caFile: "/etc/bao-backup/openbao-tls/ca.crt",
  terminationMessage: "/dev/termination-log",
} as const;

export const settings = [
  // Cluster and members
  { env: "CLUSTER_NAME", flag: "cluster", help: "OpenBaoCluster name" },
  { env: "CLUSTER_NAMESPACE", flag: "namespace", help: "namespace of the cluster" },
  { env: "CLUSTER_REPLICAS", flag: "replicas", help: "member count, for default member addresses", default: "1" },
  { env: "STATEFULSET_NAME", flag: "statefulset", help: "StatefulSet name; default: the cluster name" },
  { env: "BACKUP_OPENBAO_ADDRESSES", flag: "openbao-addresses", help: "comma-separated member API URLs" },
  {
    env: "BACKUP_CA_FILE",
    flag: "ca-file",
    help: `CA of OpenBao's TLS (default ${defaultPaths.caFile} when it exists, else the system CAs)`,
  },
  // Auth
  { env: "BACKUP_AUTH_METHOD", flag: "auth-method", help: "jwt | token", default: "jwt" },
  { env: "BACKUP_JWT_AUTH_ROLE", flag: "jwt-role", help: "JWT auth role" },
  { env: "BACKUP_JWT_AUTH_PATH", flag: "jwt-path", help: "JWT auth mount path", default: "jwt" },
  {
    env: "BACKUP_JWT_TOKEN_FILE",
    flag: "jwt-token-file",
    help: `projected ServiceAccount token (default ${defaultPaths.jwtTokenFile})`,
  },
  {
    env: "BACKUP_TOKEN_FILE",
    flag: "token-file",
    help: `file holding a static OpenBao token for --auth-method token (default: the environment variable BAO_TOKEN, else ${defaultPaths.tokenFile})`,
  },
  // Storage target
  { env: "BACKUP_PROVIDER", flag: "provider", help: "s3 | gcs | azure", default: "s3" },
  { env: "BACKUP_BUCKET", flag: "bucket", help: "bucket (Azure: container unless --azure-container)" },
  { env: "BACKUP_ENDPOINT", flag: "endpoint", help: "custom storage endpoint URL" },
  { env: "BACKUP_PATH_PREFIX", flag: "path-prefix", help: "key prefix inside the bucket", default: "" },
  { env: "BACKUP_REGION", flag: "region", help: "S3 region", default: "us-east-1" },
  { env: "BACKUP_USE_PATH_STYLE", flag: "use-path-style", help: "S3 path-style addressing", default: "false" },
  { env: "BACKUP_ROLE_ARN", flag: "role-arn", help: "S3 web identity role" },
  { env: "BACKUP_GCS_PROJECT", flag: "gcs-project", help: "GCS project" },
  { env: "BACKUP_AZURE_STORAGE_ACCOUNT", flag: "azure-storage-account", help: "Azure storage account" },
  { env: "BACKUP_AZURE_CONTAINER", flag: "azure-container", help: "Azure container (overrides bucket)" },
  {
    env: "BACKUP_SSE",
    flag: "sse",
    help: "S3 server-side encryption of what a backup writes: AES256 (SSE-S3) or aws:kms (SSE-KMS); checked on the stored objects after upload",
  },
  {
    env: "BACKUP_SSE_KMS_KEY_ID",
    flag: "sse-kms-key-id",
    help: "with --sse aws:kms: the KMS key id, ARN or alias (MinIO: the key name); default the store's default key",
  },
  {
    env: "BACKUP_GCS_KMS_KEY_NAME",
    flag: "gcs-kms-key-name",
    help: "GCS customer-managed key of what a backup writes: projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>",
  },
  {
    env: "BACKUP_AZURE_ENCRYPTION_SCOPE",
    flag: "azure-encryption-scope",
    help: "Azure encryption scope of what a backup writes",
  },
  {
    env: "BACKUP_OBJECT_LOCK_MODE",
    flag: "object-lock-mode",
    help: "S3 Object Lock on what a backup writes: GOVERNANCE or COMPLIANCE, retained until creation + BACKUP_RETENTION_MAX_AGE (required with it) + BACKUP_OBJECT_LOCK_GRACE; the bucket must have Object Lock enabled; checked on the stored objects after upload",
  },
  {
    env: "BACKUP_OBJECT_LOCK_GRACE",
    flag: "object-lock-grace",
    help: "with --object-lock-mode: how much longer than retention.maxAge each object stays locked",
    default: "24h",
  },
  {
    env: "BACKUP_OBJECT_LOCK_PRE_UPGRADE_LEGAL_HOLD",
    flag: "object-lock-pre-upgrade-legal-hold",
    help: "with --object-lock-mode: put a legal hold on pre-upgrade snapshots (BACKUP_TYPE pre-upgrade) and their manifests; a person lifts it",
    default: "false",
  },
  {
    env: "BACKUP_PART_SIZE",
    flag: "part-size",
    help: "bytes per upload part (min 5 MiB)",
    default: String(10 * 1024 * 1024),
  },
  { env: "BACKUP_CONCURRENCY", flag: "concurrency", help: "parts in flight, 1–16", default: "3" },
  {
    env: "BACKUP_SIZE_HINT",
    flag: "size-hint",
    help: "expected snapshot size in bytes, not a promise (the operator passes the last backup's size × 2): the part size is raised so that this size fits the provider's part limit; a snapshot that still outgrows partSize × that limit fails early with StorageTooLarge",
  },
  {
    env: "BACKUP_INSECURE_SKIP_VERIFY",
    flag: "insecure-skip-verify",
    help: "skip storage TLS verification",
    default: "false",
  },
  {
    env: "BACKUP_CREDENTIALS_DIR",
    flag: "credentials-dir",
    help: `directory of storage credentials, one file per key, named like the keys of the credentials Secret (default ${defaultPaths.credentialsDir}): s3 accessKeyId and secretAccessKey, optional sessionToken and region; gcs credentials.json (a service-account key); azure accountKey (with --azure-storage-account) or connectionString; any provider optional caCert (PEM CA of the storage endpoint); absent: the provider's own credential chain (AWS_* variables or profile, GOOGLE_APPLICATION_CREDENTIALS or gcloud, Azure environment or CLI)`,
  },
  // What to do
  { env: "BACKUP_TYPE", flag: "type", help: "scheduled | pre-upgrade", default: "scheduled" },
  {
    env: "BACKUP_KEY_ID",
    flag: "key-id",
    help: "8 lower-case hex digits the new snapshot's key ends in (default: random); the operator passes the Job's openbao.org/key-id, which confirm looks for",
  },
  {
    env: "BACKUP_KEY",
    flag: "key",
    help: "object key to restore, or latest: the newest verified backup of the source cluster",
  },
  {
    env: "BACKUP_SOURCE_CLUSTER",
    flag: "source-cluster",
    help: "with --key latest: the cluster whose backups to choose from (default: --cluster)",
  },
  {
    env: "BACKUP_SOURCE_NAMESPACE",
    flag: "source-namespace",
    help: "with --key latest: that cluster's namespace (default: --namespace)",
  },
  { env: "BACKUP_FORCE", flag: "force", help: "restore with snapshot-force", default: "false" },
  {
    env: "BACKUP_EXPECT_SEALED",
    flag: "expect-sealed",
    help: "with --force: done once OpenBao applied the snapshot and sealed itself (a snapshot of another cluster); unseal it with that cluster's keys",
    default: "false",
  },
  {
    env: "BACKUP_CANARY_PATH",
    flag: "canary-path",
    help: "a KV version 2 location (<mount>/<path>, e.g. secret/openbao-backup/canary) the backup writes a new random canary to just before the snapshot, for restore drills (docs/drills.md); the manifest records its version and SHA-256, never the value. A write that fails leaves the backup without a canary and says so (canaryProblem)",
  },
  {
    env: "BACKUP_TARGET_NAME",
    flag: "target-name",
    help: "the name of the main target among several destinations (in results, status and messages)",
    default: "primary",
  },
  {
    env: "BACKUP_ADDITIONAL_TARGETS",
    flag: "additional-targets",
    help: 'more destinations written from the same snapshot stream, a JSON array of {"name", "target" (the fields of spec.backup.target, no credentials), "credentialsDir"}; each gets its own checks, manifest and retention',
  },
  {
    env: "BACKUP_SUCCESS_POLICY",
    flag: "success-policy",
    help: "with additional targets, what makes the run a success: All (every destination stored and verified), AtLeastOne, or Primary (the main target; the others are reported)",
    default: "All",
  },
  { env: "BACKUP_RETENTION_MAX_COUNT", flag: "retention-max-count", help: "keep at most N backups" },
  { env: "BACKUP_RETENTION_MAX_AGE", flag: "retention-max-age", help: "delete backups older than (168h, 7d)" },
  {
    env: "BACKUP_TERMINATION_MESSAGE_PATH",
    flag: "termination-message-path",
    help: `file for the JSON result line (default ${defaultPaths.terminationMessage}, written only when it exists)`,
  },
] as const satisfies readonly Setting[];

export type SettingName = (typeof settings)[number]["env"];

/** A command line that cannot be used (an unknown option, a stray argument, a refused request). */
export class UsageError extends ConfigLayerError<"InvalidUsage"> {
  constructor(message: string) {
    super("InvalidUsage", message);
  }
}

/**
 * Resolves every setting from flags (`--bucket x` or `--bucket=x`; a bare boolean flag
 * means "true") over the environment over defaults. Unknown flags are errors.
 */
export function resolveSettings(env: NodeJS.ProcessEnv, argv: readonly string[]): Map<SettingName, string> {
  const byFlag = new Map<string, (typeof settings)[number]>(settings.map((s) => [s.flag, s]));
  const fromFlags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument "${arg}"; settings are given as --name value`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const setting = byFlag.get(name);
    if (!setting) throw new UsageError(`unknown option --${name}; see --help for the list`);
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !(argv[i + 1] ?? "").startsWith("--")) value = argv[++i] ?? "";
    else value = "true";
    fromFlags.set(setting.env, value);
  }
  const out = new Map<SettingName, string>();
  for (const s of settings) {
    const value = fromFlags.get(s.env) ?? env[s.env] ?? ("default" in s ? s.default : undefined);
    if (value !== undefined) out.set(s.env, value);
  }
  return out;
}

export function settingsHelp(): string {
  const width = Math.max(...settings.map((s) => s.flag.length));
  return settings
    .map(
      (s) =>
        `  --${s.flag.padEnd(width)}  ${s.env}: ${s.help}${"default" in s && s.default ? ` (default ${s.default})` : ""}`,
    )
    .join("\n");
}
