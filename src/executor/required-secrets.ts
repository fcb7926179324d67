/**
 * The Secrets a Job's volumes should hold. The operator's Job builder lists them in
 * BACKUP_REQUIRED_SECRETS as `<role>=<secret>,…`, the role naming the setting whose path the
 * volume backs: `tls` → BACKUP_CA_FILE, `token` → BACKUP_TOKEN_FILE, `storage` →
 * BACKUP_CREDENTIALS_DIR (paths stay in their own settings, where they are set and read once).
 *
 * Those volumes are optional, so a missing Secret — or one without the key the volume projects
 * — starts the Pod with an empty directory instead of holding it in ContainerCreating until the
 * Job's deadline. This check turns that into an immediate, named failure (`SecretNotFound`),
 * before anything else runs. It matters most where the operator may not read Secrets to check
 * beforehand (the chart grants that only in the namespaces it is told).
 */
import { existsSync, readdirSync } from "node:fs";
import { ConfigLayerError } from "../util/coded-error.ts";

export class SecretNotFoundError extends ConfigLayerError<"SecretNotFound"> {
  /** The Secret's name. */
  readonly secret: string;
  constructor(secret: string, message: string) {
    super("SecretNotFound", message);
    this.secret = secret;
  }
}

export type SecretRole = "tls" | "token" | "storage" | "unseal-keys";

export interface RequiredSecret {
  readonly role: SecretRole;
  readonly secret: string;
}

const roles: Readonly<Record<SecretRole, { readonly variable: string; readonly kind: "file" | "dir" }>> = {
  tls: { variable: "BACKUP_CA_FILE", kind: "file" },
  token: { variable: "BACKUP_TOKEN_FILE", kind: "file" },
  storage: { variable: "BACKUP_CREDENTIALS_DIR", kind: "dir" },
  // A drill's spec.backup.drill.unsealKeysSecretRef: missing, the drill would only prove "loaded".
  "unseal-keys": { variable: "DRILL_UNSEAL_KEYS_DIR", kind: "dir" },
};

function isRole(value: string): value is SecretRole {
  return Object.hasOwn(roles, value);
}

/** Parses `tls=a,storage=b`; unknown roles and empty halves are ignored (never from the operator). */
export function parseRequiredSecrets(value: string | undefined): RequiredSecret[] {
  return (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .flatMap((entry) => {
      const at = entry.indexOf("=");
      const role = entry.slice(0, at);
      const secret = entry.slice(at + 1);
      return at > 0 && secret !== "" && isRole(role) ? [{ role, secret }] : [];
    });
}

/** A projected Secret volume holds its keys as visible files; `..data` and friends are the kubelet's. */
export function holdsKeys(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => !name.startsWith("."));
  } catch {
    return false;
  }
}

/** Throws SecretNotFoundError for the first required Secret whose file or directory is empty. */
export function checkRequiredSecrets(env: NodeJS.ProcessEnv): void {
  const namespace = env.CLUSTER_NAMESPACE;
  for (const { role, secret } of parseRequiredSecrets(env.BACKUP_REQUIRED_SECRETS)) {
    const { variable, kind } = roles[role];
    const path = env[variable];
    if (path === undefined || path === "") continue; // nothing mounted for it: nothing to check
    if (kind === "file" ? existsSync(path) : holdsKeys(path)) continue;
    const where = namespace ? ` in namespace ${namespace}` : "";
    throw new SecretNotFoundError(
      secret,
      `Secret ${secret} does not exist${where}, or lacks the key this Job needs (${variable} ${path} is missing): create it, or fix the reference in the OpenBaoCluster or OpenBaoRestore`,
    );
  }
}
