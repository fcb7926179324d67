/**
 * auth-setup's flags, checked before anything is contacted: every bad value is a UsageError
 * (exit 1) that names the flag and the fix.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { defaultJwtAudience } from "../../api/constants.ts";
import { type CanaryLocation, CanaryLocationError, parseCanaryLocation } from "../../drill/canary.ts";
import {
  type FlagSpecs,
  kubeFlags,
  type OutputFormat,
  outputFlags,
  type ParsedArgs,
  str,
  UsageError,
} from "../shared.ts";

export const authSetupFlags: FlagSpecs = {
  ...kubeFlags,
  ...outputFlags,
  cluster: { type: "string" },
  address: { type: "string" },
  "ca-file": { type: "string" },
  "tls-server-name": { type: "string" },
  "token-file": { type: "string" },
  "jwt-validation": { type: "string" },
  "jwt-validation-pubkey-file": { type: "string" },
  "jwks-url": { type: "string" },
  "jwks-ca-file": { type: "string" },
  issuer: { type: "string" },
  path: { type: "string" },
  audience: { type: "string" },
  "backup-role": { type: "string" },
  "restore-role": { type: "string" },
  "backup-policy": { type: "string" },
  "restore-policy": { type: "string" },
  "canary-path": { type: "string" },
  "token-ttl": { type: "string" },
  adopt: { type: "string", multiple: true },
  "dry-run": { type: "boolean" },
};

export type ValidationMode = "auto" | "jwks" | "pubkeys";

export interface Names {
  readonly backupRole: string;
  readonly restoreRole: string;
  readonly backupPolicy: string;
  readonly restorePolicy: string;
}

export interface Settings {
  readonly format: OutputFormat;
  readonly cluster: string;
  readonly namespace: string;
  readonly address: string;
  readonly caPem: string | undefined;
  readonly serverName: string | undefined;
  readonly token: string;
  readonly mount: string;
  readonly audience: string;
  readonly names: Names;
  readonly ttlSeconds: number;
  readonly validation: ValidationMode;
  /** PEM public keys from --jwt-validation-pubkey-file. */
  readonly keyFileKeys: readonly string[] | undefined;
  readonly jwksUrl: string | undefined;
  readonly jwksCaPem: string | undefined;
  readonly issuer: string | undefined;
  /** --kubeconfig or KUBECONFIG is set: the API server can be asked for its issuer and keys. */
  readonly kubeconfig: boolean;
  /** The --adopt items as written (`mount:<path>`, `policy:<name>`, `role:<name>`). */
  readonly adopt: readonly string[];
  /** --canary-path (spec.backup.drill.canaryPath): the backup policy also covers drills' canary. */
  readonly canary: CanaryLocation | undefined;
  readonly dryRun: boolean;
}

function readText(flag: string, file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    throw new UsageError(`${flag} ${file} cannot be read; give ${what}`);
  }
}

function readPem(flag: string, file: string, what: string): string {
  const pem = readText(flag, file, what);
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`${flag} ${file} holds no PEM certificate`);
  return pem;
}

function splitPems(text: string, file: string): string[] {
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (pems.length === 0) {
    throw new UsageError(`--jwt-validation-pubkey-file ${file} holds no "BEGIN PUBLIC KEY" PEM block`);
  }
  return pems.map((p) => `${p.trim()}\n`);
}

function ttlSeconds(value: string): number {
  const match = /^(\d+)(s|m|h)?$/.exec(value);
  if (!match)
    throw new UsageError(`--token-ttl must be a duration like 1h, 30m or 3600s, got ${JSON.stringify(value)}`);
  const n = Number(match[1]);
  const unit = match[2] ?? "s";
  return n * (unit === "h" ? 3600 : unit === "m" ? 60 : 1);
}

/** OpenBao stores role and policy names in lower case; a name given otherwise would not read back. */
function name(flag: string, value: string, kind: "role" | "policy"): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(value)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(value)} is not a ${kind} name; use letters, digits, "-", "_" and "."`,
    );
  }
  if (value !== value.toLowerCase()) {
    throw new UsageError(
      `${flag} ${JSON.stringify(value)}: OpenBao keeps ${kind} names in lower case; write ${JSON.stringify(value.toLowerCase())}`,
    );
  }
  if (kind === "policy" && (value === "root" || value === "default")) {
    throw new UsageError(`${flag} ${value}: "${value}" is OpenBao's own policy; choose another name`);
  }
  return value;
}

/** `--adopt a,b --adopt c` → [a, b, c], each `mount:`, `policy:` or `role:` + a name. */
function adoptItems(args: ParsedArgs): string[] {
  const raw = args.values.adopt;
  const values = Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : [];
  const items = values.flatMap((v) => v.split(",")).map((v) => v.trim());
  for (const item of items) {
    if (!/^(mount|policy|role):[^:\s]+$/.test(item)) {
      throw new UsageError(
        `--adopt ${JSON.stringify(item)} is not an item; name each thing to take over as mount:<path>, policy:<name> or role:<name>, e.g. --adopt mount:jwt,policy:backup`,
      );
    }
  }
  return [...new Set(items)];
}

function token(args: ParsedArgs): string {
  const tokenFile = str(args, "token-file");
  let value: string | undefined;
  if (tokenFile) {
    value = readText("--token-file", tokenFile, "a file holding the admin token").trim();
    if (!value) throw new UsageError(`--token-file ${tokenFile} is empty`);
  } else value = process.env.BAO_TOKEN?.trim() || undefined;
  if (!value) {
    throw new UsageError(
      "an admin token is required: --token-file <file> or the BAO_TOKEN environment variable (not a flag value, which would land in shell history)",
    );
  }
  return value;
}

function address(args: ParsedArgs): { address: string; https: boolean } {
  const value = str(args, "address") ?? process.env.BAO_ADDR;
  if (!value)
    throw new UsageError("--address is required (or BAO_ADDR): OpenBao's API URL, e.g. https://bao.example:8200");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--address ${JSON.stringify(value)} is not an http(s) URL; write https://host:8200`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new UsageError(`--address ${JSON.stringify(value)} is not an http(s) URL; write https://host:8200`);
  }
  return { address: value, https: url.protocol === "https:" };
}

function serverName(args: ParsedArgs, https: boolean): string | undefined {
  const value = str(args, "tls-server-name") ?? (process.env.BAO_TLS_SERVER_NAME?.trim() || undefined);
  if (value === undefined) return undefined;
  if (!https) {
    throw new UsageError(`--tls-server-name ${value} needs an https:// --address (there is no TLS over http://)`);
  }
  if (isIP(value.replace(/^\[|\]$/g, "")) !== 0) {
    throw new UsageError(
      `--tls-server-name ${value} is an IP address; it takes the DNS name in OpenBao's certificate (e.g. bao.openbao.svc). An IP in the certificate is matched against --address already`,
    );
  }
  if (
    !/^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
      value,
    )
  ) {
    throw new UsageError(
      `--tls-server-name ${JSON.stringify(value)} is not a DNS name; give the name in OpenBao's certificate, e.g. bao.openbao.svc (no scheme or port)`,
    );
  }
  return value;
}

function jwksUrl(args: ParsedArgs): string | undefined {
  const value = str(args, "jwks-url");
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(
      `--jwks-url ${JSON.stringify(value)} is not a URL; e.g. https://kubernetes.default.svc/openid/v1/jwks`,
    );
  }
  if (url.protocol !== "https:") {
    throw new UsageError(`--jwks-url ${value} must be https:// (signing keys fetched over plain HTTP could be forged)`);
  }
  return value;
}

function validationMode(args: ParsedArgs): ValidationMode {
  const value = str(args, "jwt-validation") ?? "auto";
  if (value === "auto" || value === "jwks" || value === "pubkeys") return value;
  throw new UsageError(`--jwt-validation must be auto, jwks or pubkeys, got ${JSON.stringify(value)}`);
}

export function settingsFrom(args: ParsedArgs, format: OutputFormat): Settings {
  const cluster = args.positionals[0] ?? str(args, "cluster");
  if (!cluster) throw new UsageError("<cluster> is required: the OpenBaoCluster whose Jobs will log in");
  const namespace = str(args, "namespace");
  if (!namespace) throw new UsageError("--namespace (-n) is required: the namespace of the OpenBaoCluster");
  const { address: addr, https } = address(args);
  const caFile = str(args, "ca-file") ?? process.env.BAO_CACERT;
  const caPem = caFile ? readPem("--ca-file", caFile, "the PEM CA of OpenBao's TLS") : undefined;
  const tlsName = serverName(args, https);
  const adminToken = token(args);

  const mount = (str(args, "path") ?? "jwt").replace(/^\/+|\/+$/g, "");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.\-/]*$/.test(mount) || mount.includes("..") || mount.startsWith("auth/")) {
    throw new UsageError(`--path ${JSON.stringify(mount)} is not an auth mount path like "jwt" (without "auth/")`);
  }
  const names: Names = {
    backupRole: name("--backup-role", str(args, "backup-role") ?? "backup", "role"),
    restoreRole: name("--restore-role", str(args, "restore-role") ?? "restore", "role"),
    backupPolicy: name("--backup-policy", str(args, "backup-policy") ?? "backup", "policy"),
    restorePolicy: name("--restore-policy", str(args, "restore-policy") ?? "restore", "policy"),
  };
  if (names.backupRole === names.restoreRole) {
    throw new UsageError(`--backup-role and --restore-role are both ${names.backupRole}; give them different names`);
  }
  if (names.backupPolicy === names.restorePolicy) {
    throw new UsageError(
      `--backup-policy and --restore-policy are both ${names.backupPolicy}; give them different names (they grant different things)`,
    );
  }

  const canaryText = str(args, "canary-path");
  let canary: CanaryLocation | undefined;
  try {
    canary = canaryText === undefined ? undefined : parseCanaryLocation(canaryText);
  } catch (err) {
    if (!(err instanceof CanaryLocationError)) throw err;
    throw new UsageError(`--canary-path: ${err.message}`);
  }

  let validation = validationMode(args);
  const keyFile = str(args, "jwt-validation-pubkey-file");
  const url = jwksUrl(args);
  const jwksCaFile = str(args, "jwks-ca-file");
  const kubeconfig = str(args, "kubeconfig") !== undefined || Boolean(process.env.KUBECONFIG);
  if (keyFile && url) {
    throw new UsageError(
      "--jwt-validation-pubkey-file and --jwks-url are two ways to check tokens; give one (--jwks-url lets OpenBao follow key rotation)",
    );
  }
  if (url && validation === "pubkeys") {
    throw new UsageError("--jwks-url contradicts --jwt-validation pubkeys; drop one of them");
  }
  if (keyFile && validation === "jwks") {
    throw new UsageError("--jwt-validation-pubkey-file contradicts --jwt-validation jwks; drop one of them");
  }
  if (url) validation = "jwks";
  if (keyFile) validation = "pubkeys";
  if (jwksCaFile && validation === "pubkeys") {
    throw new UsageError("--jwks-ca-file only applies with --jwks-url or --jwt-validation jwks");
  }
  if (validation === "jwks" && !url && !kubeconfig) {
    throw new UsageError(
      "--jwt-validation jwks needs --jwks-url <url of the API server's keys> or --kubeconfig (to read the API server's jwks_uri)",
    );
  }
  if (validation !== "jwks" && !keyFile && !kubeconfig) {
    throw new UsageError(
      "the key that signs ServiceAccount tokens is required: --kubeconfig to discover it from the API server, --jwt-validation-pubkey-file <pem>, or --jwks-url <url> for OpenBao to fetch it",
    );
  }
  const keyFileKeys = keyFile
    ? splitPems(readText("--jwt-validation-pubkey-file", keyFile, "the PEM public key(s)"), keyFile)
    : undefined;
  const jwksCaPem = jwksCaFile ? readPem("--jwks-ca-file", jwksCaFile, "the PEM CA of the JWKS URL") : undefined;

  return {
    format,
    cluster,
    namespace,
    address: addr,
    caPem,
    serverName: tlsName,
    token: adminToken,
    mount,
    audience: str(args, "audience") ?? defaultJwtAudience,
    names,
    ttlSeconds: ttlSeconds(str(args, "token-ttl") ?? "1h"),
    validation,
    keyFileKeys,
    jwksUrl: url,
    jwksCaPem,
    issuer: str(args, "issuer"),
    kubeconfig,
    canary,
    adopt: adoptItems(args),
    dryRun: args.values["dry-run"] === true,
  };
}
