/**
 * The Secrets a Job's volumes should hold (BACKUP_REQUIRED_SECRETS, set by the operator's Job
 * builder as `<secret>:<mount dir>,…`). Those volumes are optional, so a missing Secret — or
 * one without the key the volume projects — starts the Pod with an empty directory instead of
 * holding it in ContainerCreating until the Job's deadline. This check turns that empty
 * directory into an immediate, named failure (`SecretNotFound`), before anything else runs.
 * It matters most where the operator may not read Secrets to check beforehand (the chart
 * grants that only in the namespaces it is told).
 */
import { readdirSync } from "node:fs";

export class SecretNotFoundError extends Error {
  readonly secret: string;
  constructor(secret: string, message: string) {
    super(message);
    this.name = "SecretNotFoundError";
    this.secret = secret;
  }
}

export interface RequiredSecret {
  readonly secret: string;
  readonly dir: string;
}

/** Parses `name:/dir,name2:/dir2`; entries without both halves are ignored (never from the operator). */
export function parseRequiredSecrets(value: string | undefined): RequiredSecret[] {
  return (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .flatMap((entry) => {
      const at = entry.indexOf(":");
      const secret = entry.slice(0, at);
      const dir = entry.slice(at + 1);
      return at > 0 && dir.startsWith("/") ? [{ secret, dir }] : [];
    });
}

/** A projected Secret volume holds its keys as visible files; `..data` and friends are the kubelet's. */
function holdsKeys(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => !name.startsWith("."));
  } catch {
    return false;
  }
}

/** Throws SecretNotFoundError for the first required Secret whose directory is empty. */
export function checkRequiredSecrets(value: string | undefined, namespace: string | undefined): void {
  for (const { secret, dir } of parseRequiredSecrets(value)) {
    if (holdsKeys(dir)) continue;
    const where = namespace ? ` in namespace ${namespace}` : "";
    throw new SecretNotFoundError(
      secret,
      `Secret ${secret} does not exist${where}, or lacks the key this Job needs (its volume at ${dir} is empty): create it, or fix the reference in the OpenBaoCluster or OpenBaoRestore`,
    );
  }
}
