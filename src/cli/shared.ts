/**
 * What the operations subcommands (list, verify, trigger, status, prune, auth-setup) share:
 * flag parsing, the storage target (from the executor's own settings contract, or from an
 * OpenBaoCluster read through a kubeconfig), the Kubernetes client, and one mapping from
 * errors to the exit codes of exit-codes.ts. Nothing here prints a secret: every message
 * passes through `redact` with the credentials' secret values.
 */
import { parseArgs } from "node:util";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { clusterNames, group, version } from "../api/constants.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import { loadBackupConfig } from "../executor/config.ts";
import { classify, layered, VerificationError } from "../executor/failure.ts";
import { defaultPaths, settings, UsageError } from "../executor/settings.ts";
import { KubeConfigError, KubeLayerError, loadKubeConfig } from "../kube/config.ts";
import { apiStatus } from "../kube/errors.ts";
import { redact } from "../openbao/errors.ts";
import { normalizePathPrefix } from "../snapshot/key.ts";
import {
  credentialsFromSecretData,
  type ObjectStore,
  openObjectStore,
  parseTarget,
  readCredentialsDir,
  type StorageCredentials,
  secretValues,
  type Target,
  type TargetSpec,
} from "../storage/index.ts";
import { type ExitCode, exitCodes } from "./exit-codes.ts";

export { UsageError };

/** A flag of one subcommand: `string` takes a value, `boolean` does not. */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  /** A string flag that may also be given bare, meaning "true" (as the executor accepts). */
  readonly bareTrue?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface ParsedArgs {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: string[];
}

export function parseFlags(argv: readonly string[], specs: FlagSpecs, maxPositionals: number): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  const args = argv.map((arg, i) => {
    const spec = arg.startsWith("--") ? specs[arg.slice(2)] : undefined;
    const next = argv[i + 1];
    return spec?.bareTrue && (next === undefined || !/^(true|false|1|0)$/i.test(next)) ? `${arg}=true` : arg;
  });
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(
        Object.entries(specs).map(([name, s]) => [
          name,
          { type: s.type, ...(s.short ? { short: s.short } : {}), ...(s.multiple ? { multiple: true } : {}) },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const text = err instanceof Error ? err.message.split(". ")[0] : String(err);
    throw new UsageError(`${text}; see --help for the options`);
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals.slice(maxPositionals).join(" ");
    throw new UsageError(`unexpected argument "${extra}"; see --help`);
  }
  return {
    values: parsed.values as Record<string, string | boolean | string[] | undefined>,
    positionals: parsed.positionals,
  };
}

export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  if (typeof v === "string") return v.trim() === "" ? undefined : v.trim();
  return undefined;
}

export function bool(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

// ── output ──────────────────────────────────────────────────────────────────────────────────

export type OutputFormat = "text" | "json";

export const outputFlags: FlagSpecs = { output: { type: "string", short: "o" }, help: { type: "boolean", short: "h" } };

export function outputFormat(args: ParsedArgs): OutputFormat {
  const value = str(args, "output") ?? "text";
  if (value === "json") return "json";
  if (value === "text" || value === "table" || value === "wide") return "text";
  throw new UsageError(`--output must be json or text, got ${JSON.stringify(value)}`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns with two spaces between them; the header is upper case. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export function humanBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** `3d4h`, `12m`, `40s`: the two largest units, for ages in tables. */
export function humanAge(ms: number): string {
  if (ms < 0) return "in the future";
  const s = Math.floor(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(s / 86400), "d"],
    [Math.floor((s % 86400) / 3600), "h"],
    [Math.floor((s % 3600) / 60), "m"],
    [s % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first === -1) return "0s";
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join("");
}

// ── errors → exit codes ─────────────────────────────────────────────────────────────────────

/** The exit codes a `KubeProblem` can carry. */
export type KubeProblemExitCode = typeof exitCodes.config | typeof exitCodes.auth;

/**
 * Thrown for a Kubernetes-side problem, with the exit code it maps to: `KubeAccessDenied`
 * (exit 2) when the API server refused the credentials or RBAC forbids the call, otherwise
 * `KubeMisconfigured` (exit 1).
 */
export class KubeProblem extends KubeLayerError<"KubeAccessDenied" | "KubeMisconfigured"> {
  readonly exitCode: KubeProblemExitCode;
  constructor(exitCode: KubeProblemExitCode, message: string, options?: { cause?: unknown }) {
    super(exitCode === exitCodes.auth ? "KubeAccessDenied" : "KubeMisconfigured", message, options);
    this.exitCode = exitCode;
  }
}

/** A check that failed after the bytes were read (verify): exit 6. */
export { VerificationError };

/**
 * The CLI's exit code, by layer then code. Unlike the executor's `classify` (which it falls
 * back to, as for a restore): an unreachable OpenBao is exit 3 (the CLI has not found a
 * member yet), an invalid schedule is exit 1, and a `KubeProblem` is the exit code it names.
 */
export function exitCodeOf(err: unknown): ExitCode {
  const coded = layered(err);
  switch (coded?.layer) {
    case "kube":
      switch (coded.code) {
        case "KubeAccessDenied":
          return exitCodes.auth;
        case "KubeMisconfigured":
          return exitCodes.config;
      }
      // The kubeconfig loader's and the raw API client's errors: as the executor's classify.
      break;
    case "config":
      return exitCodes.config;
    case "openbao":
      switch (coded.code) {
        case "AuthFailed":
        case "PermissionDenied":
          return exitCodes.auth;
        case "Unreachable":
          return exitCodes.leaderDiscovery;
        default:
          return exitCodes.snapshot;
      }
    case "storage":
      return exitCodes.storage;
    default:
      break;
  }
  return classify(err, [], "restore").exitCode;
}

/** Prints `bao-backup <command>: <message>` (redacted) and returns the exit code. */
export function reportFailure(command: string, err: unknown, secrets: readonly string[] = []): ExitCode {
  const message = redact(err instanceof Error ? err.message : String(err), secrets);
  process.stderr.write(`bao-backup ${command}: ${message}\n`);
  return exitCodeOf(err);
}

// ── Kubernetes ──────────────────────────────────────────────────────────────────────────────

export const kubeFlags: FlagSpecs = {
  kubeconfig: { type: "string" },
  namespace: { type: "string", short: "n" },
};

export interface Kube {
  readonly config: KubeConfig;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  /** The namespace: `--namespace`, else the kubeconfig context's, else `default`. */
  readonly namespace: string;
  readonly server: string;
}

/** `--kubeconfig`, else `KUBECONFIG`, else the default locations (~/.kube/config, in-cluster). */
export function openKube(args: ParsedArgs): Kube {
  const path = str(args, "kubeconfig") ?? process.env.KUBECONFIG;
  let config: KubeConfig;
  try {
    config = loadKubeConfig(path);
  } catch (err) {
    if (!(err instanceof KubeConfigError)) throw err;
    throw new KubeProblem(exitCodes.config, `${err.message}; pass --kubeconfig <file>`);
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) {
    throw new KubeProblem(
      exitCodes.config,
      `the kubeconfig ${path ?? "(default)"} has no current cluster; pass --kubeconfig <file> or set its current-context`,
    );
  }
  const contextNamespace = config.getContextObject(config.getCurrentContext())?.namespace;
  return {
    config,
    custom: config.makeApiClient(CustomObjectsApi),
    core: config.makeApiClient(CoreV1Api),
    namespace: str(args, "namespace") ?? contextNamespace ?? "default",
    server: cluster.server,
  };
}

/** Turns a failed Kubernetes call into a `KubeProblem` that says what to fix. */
export function kubeError(kube: Kube, what: string, err: unknown): KubeProblem {
  const status = apiStatus(err);
  if (status === 401) {
    return new KubeProblem(
      exitCodes.auth,
      `${what}: the Kubernetes API at ${kube.server} refused the kubeconfig's credentials (401); refresh them or pass another --kubeconfig`,
      { cause: err },
    );
  }
  if (status === 403) {
    return new KubeProblem(
      exitCodes.auth,
      `${what}: forbidden (403) by RBAC at ${kube.server}; the kubeconfig's user needs access to ${clusterNames.plural}.${group}`,
      { cause: err },
    );
  }
  if (status === 404) {
    return new KubeProblem(exitCodes.config, `${what}: not found (404); check the name and --namespace`, {
      cause: err,
    });
  }
  if (status !== undefined) {
    const body = (err as { body?: unknown }).body;
    const detail = typeof body === "string" ? (tryMessage(body) ?? "") : "";
    return new KubeProblem(
      exitCodes.config,
      `${what}: the Kubernetes API answered ${status}${detail ? `: ${detail}` : ""}`,
      {
        cause: err,
      },
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new KubeProblem(
    exitCodes.config,
    `${what}: cannot reach the Kubernetes API at ${kube.server} (${message}); check --kubeconfig`,
    { cause: err },
  );
}

function tryMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === "string" ? parsed.message : undefined;
  } catch {
    return undefined;
  }
}

export async function getCluster(kube: Kube, name: string): Promise<OpenBaoCluster> {
  try {
    return (await kube.custom.getNamespacedCustomObject({
      group,
      version,
      namespace: kube.namespace,
      plural: clusterNames.plural,
      name,
    })) as OpenBaoCluster;
  } catch (err) {
    if (apiStatus(err) === 404) {
      throw new KubeProblem(
        exitCodes.config,
        `OpenBaoCluster ${kube.namespace}/${name} does not exist; check the name and --namespace (-n)`,
        { cause: err },
      );
    }
    throw kubeError(kube, `reading OpenBaoCluster ${kube.namespace}/${name}`, err);
  }
}

export async function listClusters(kube: Kube): Promise<OpenBaoCluster[]> {
  try {
    const list = (await kube.custom.listNamespacedCustomObject({
      group,
      version,
      namespace: kube.namespace,
      plural: clusterNames.plural,
    })) as { items?: OpenBaoCluster[] };
    return list.items ?? [];
  } catch (err) {
    throw kubeError(kube, `listing OpenBaoClusters in ${kube.namespace}`, err);
  }
}

// ── the storage target ──────────────────────────────────────────────────────────────────────

/** The executor's settings that describe where a cluster's backups are (settings.ts). */
const storageFlagNames = [
  "cluster",
  "provider",
  "bucket",
  "endpoint",
  "path-prefix",
  "region",
  "use-path-style",
  "role-arn",
  "gcs-project",
  "azure-storage-account",
  "azure-container",
  "sse",
  "sse-kms-key-id",
  "gcs-kms-key-name",
  "azure-encryption-scope",
  "insecure-skip-verify",
  "credentials-dir",
] as const;

/** Flags that are only meaningful without `--kubeconfig` (the cluster's spec gives them then). */
const targetOnlyFlags = storageFlagNames.filter((f) => f !== "cluster" && f !== "credentials-dir");

export const storageFlags: FlagSpecs = {
  ...Object.fromEntries(
    storageFlagNames.map((name) => [
      name,
      { type: "string", bareTrue: name === "use-path-style" || name === "insecure-skip-verify" } as FlagSpec,
    ]),
  ),
  ...kubeFlags,
};

export const storageHelp = `Where the backups are — either storage settings (the executor's own; each flag can also be
given as its environment variable):
${settings
  .filter((s) => (storageFlagNames as readonly string[]).includes(s.flag) || s.flag === "namespace")
  .map(
    (s) =>
      `  --${s.flag.padEnd(22)} ${s.env}: ${s.help}${"default" in s && s.default ? ` (default ${s.default})` : ""}`,
  )
  .join("\n")}
or the OpenBaoCluster itself:
  --kubeconfig <file>      read spec.backup.target of --cluster in --namespace (-n); the storage
                           credentials come from --credentials-dir when given, else from the
                           Secret named by target.credentialsSecretRef (read with the kubeconfig).`;

export interface Located {
  readonly store: ObjectStore;
  readonly target: Target;
  readonly namespace: string;
  readonly cluster: string;
  /** Secret values to redact from any message. */
  readonly secrets: string[];
  /** The OpenBaoCluster, when the target came from it. */
  readonly resource: OpenBaoCluster | undefined;
}

/**
 * Opens the store holding one cluster's backups. With `--kubeconfig`, from the cluster's
 * `spec.backup.target`; otherwise from the executor's storage settings (flags over env).
 * `clusterName` (a positional) wins over `--cluster` / `CLUSTER_NAME`.
 */
export async function locate(
  args: ParsedArgs,
  clusterName?: string,
  options: { clusterOptional?: boolean } = {},
): Promise<Located> {
  const kubeconfig = str(args, "kubeconfig");
  if (kubeconfig !== undefined) return locateFromCluster(args, clusterName);
  const argv: string[] = [];
  for (const flag of storageFlagNames) {
    const v = str(args, flag);
    if (v !== undefined) argv.push(`--${flag}=${v}`);
  }
  const namespace = str(args, "namespace");
  if (namespace !== undefined) argv.push(`--namespace=${namespace}`);
  if (clusterName !== undefined) argv.push(`--cluster=${clusterName}`);
  // `verify` takes a full key: the cluster only names a prefix, which it does not need.
  if (options.clusterOptional && !str(args, "cluster") && !process.env.CLUSTER_NAME) argv.push("--cluster=unused");
  if (options.clusterOptional && !namespace && !process.env.CLUSTER_NAMESPACE) argv.push("--namespace=unused");
  // Only the target matters here: OpenBao auth, CA and retention settings are not read.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BACKUP_AUTH_METHOD: "token",
    BACKUP_CA_FILE: defaultPaths.caFile,
    BACKUP_OPENBAO_ADDRESSES: "",
    BACKUP_RETENTION_MAX_COUNT: "",
    BACKUP_RETENTION_MAX_AGE: "",
    BACKUP_TYPE: "scheduled",
  };
  const config = loadBackupConfig(env, argv);
  const secrets: string[] = [];
  const credentials = await readCredentialsDir(config.credentialsDir);
  secrets.push(...secretValues(credentials));
  return {
    store: openObjectStore(config.target, credentials),
    target: config.target,
    namespace: config.cluster.namespace,
    cluster: config.cluster.name,
    secrets,
    resource: undefined,
  };
}

async function locateFromCluster(args: ParsedArgs, clusterName?: string): Promise<Located> {
  for (const flag of targetOnlyFlags) {
    if (str(args, flag) !== undefined) {
      throw new UsageError(
        `--${flag} cannot be combined with --kubeconfig: the target comes from the cluster's spec.backup.target; drop one of them`,
      );
    }
  }
  const name = clusterName ?? str(args, "cluster") ?? process.env.CLUSTER_NAME;
  if (!name) throw new UsageError("--cluster is required: the OpenBaoCluster whose backups to use");
  const kube = openKube(args);
  const resource = await getCluster(kube, name);
  const spec = resource.spec?.backup?.target;
  if (!spec) {
    throw new KubeProblem(
      exitCodes.config,
      `OpenBaoCluster ${kube.namespace}/${name} has no spec.backup.target; give the storage settings as flags instead of --kubeconfig`,
    );
  }
  let target: Target;
  try {
    const parsed = parseTarget(spec as TargetSpec);
    target = { ...parsed, pathPrefix: normalizePathPrefix(parsed.pathPrefix) };
  } catch (err) {
    const coded = layered(err);
    if (coded?.layer === "config" && (coded.code === "InvalidTarget" || coded.code === "InvalidKeyPart")) {
      throw new KubeProblem(exitCodes.config, `OpenBaoCluster ${kube.namespace}/${name} spec.backup.${coded.message}`, {
        cause: err,
      });
    }
    throw err;
  }
  const dir = str(args, "credentials-dir");
  let credentials: StorageCredentials = {};
  if (dir !== undefined) credentials = await readCredentialsDir(dir);
  else if (spec.credentialsSecretRef?.name) {
    credentials = await readCredentialsSecret(kube, spec.credentialsSecretRef.name);
  }
  const secrets = secretValues(credentials);
  return {
    store: openObjectStore(target, credentials),
    target,
    namespace: kube.namespace,
    cluster: name,
    secrets,
    resource,
  };
}

async function readCredentialsSecret(kube: Kube, name: string): Promise<StorageCredentials> {
  let data: Record<string, string>;
  try {
    const secret = await kube.core.readNamespacedSecret({ name, namespace: kube.namespace });
    data = secret.data ?? {};
  } catch (err) {
    if (apiStatus(err) === 404) {
      throw new KubeProblem(
        exitCodes.config,
        `the credentials Secret ${kube.namespace}/${name} (target.credentialsSecretRef) does not exist; create it or pass --credentials-dir`,
        { cause: err },
      );
    }
    throw kubeError(kube, `reading the credentials Secret ${kube.namespace}/${name}`, err);
  }
  return credentialsFromSecretData(data);
}

/** Closes the store, never failing the command because of it. */
export async function closeQuietly(store: ObjectStore | undefined): Promise<void> {
  await store?.close().catch(() => undefined);
}
