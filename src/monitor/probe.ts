/**
 * One reading of a cluster's backups from its bucket, independent of the operator: the newest
 * verified backup exactly as `bao-backup list` and `restore --key latest` see it
 * (src/snapshot/catalog.ts — one reading of the store for all three), read with the
 * credentials the cluster's own `spec.backup.target` names.
 *
 * Nothing here trusts `status`: a leader that is gone, wedged or wrong cannot make a stale
 * bucket look fresh. Failures are returned, never thrown, with a message that names what to
 * fix and carries no secret value.
 */
import type { OpenBaoCluster } from "../api/types.ts";
import { newestVerified, readCatalog } from "../snapshot/catalog.ts";
import {
  credentialsFromSecretData,
  type ObjectStore,
  parseTarget,
  redact,
  type StorageCredentials,
  secretValues,
  type Target,
  TargetConfigError,
} from "../storage/index.ts";

export type ProbeFailureReason = "InvalidTarget" | "SecretNotFound" | "SecretForbidden" | "StorageError" | "Timeout";

export type ProbeResult =
  | {
      readonly ok: true;
      /** When the newest verified backup was taken (its manifest's `created`); undefined: none stored. */
      readonly newestVerified: Date | undefined;
      /** Snapshot objects of the cluster in the store, verified or not. */
      readonly stored: number;
    }
  | { readonly ok: false; readonly reason: ProbeFailureReason; readonly message: string };

/** A Secret's `data`; undefined when it does not exist. Throws what the API throws otherwise. */
export type SecretReader = (namespace: string, name: string) => Promise<Readonly<Record<string, string>> | undefined>;

export interface ProbeDeps {
  readonly readSecret: SecretReader;
  readonly openStore: (target: Target, credentials: StorageCredentials) => Promise<ObjectStore>;
  readonly isForbidden: (err: unknown) => boolean;
  /** Upper bound of one probe (listing and manifests). */
  readonly timeoutMs: number;
}

export async function probeCluster(cluster: OpenBaoCluster, deps: ProbeDeps): Promise<ProbeResult> {
  const namespace = cluster.metadata.namespace ?? "";
  const name = cluster.metadata.name ?? "";
  const spec = cluster.spec?.backup;
  if (!spec) return { ok: false, reason: "InvalidTarget", message: "spec.backup is not set" };

  let target: Target;
  try {
    target = parseTarget(spec.target);
  } catch (err) {
    if (err instanceof TargetConfigError) {
      return { ok: false, reason: "InvalidTarget", message: `spec.backup.${err.field}: ${err.message}` };
    }
    throw err;
  }

  let credentials: StorageCredentials = {};
  const secretName = spec.target.credentialsSecretRef?.name;
  if (secretName) {
    try {
      const data = await deps.readSecret(namespace, secretName);
      if (data === undefined) {
        return {
          ok: false,
          reason: "SecretNotFound",
          message: `the credentials Secret ${namespace}/${secretName} (spec.backup.target.credentialsSecretRef) does not exist`,
        };
      }
      credentials = credentialsFromSecretData(data);
    } catch (err) {
      if (!deps.isForbidden(err)) throw err;
      return {
        ok: false,
        reason: "SecretForbidden",
        message: `the monitor may not read the Secret ${namespace}/${secretName}: add ${namespace} to the chart's rbac.secretReadNamespaces`,
      };
    }
  }

  const secrets = secretValues(credentials);
  let store: ObjectStore | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const reading = (async () => {
      store = await deps.openStore(target, credentials);
      return readCatalog(store, { pathPrefix: target.pathPrefix, namespace, cluster: name });
    })();
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), deps.timeoutMs);
    });
    const entries = await Promise.race([reading, timeout]);
    if (entries === "timeout") {
      reading.catch(() => undefined); // settles later; its outcome no longer matters
      return {
        ok: false,
        reason: "Timeout",
        message: `reading ${target.bucket} took longer than ${Math.round(deps.timeoutMs / 1000)} s`,
      };
    }
    const newest = newestVerified(entries);
    return {
      ok: true,
      newestVerified: newest ? new Date(Date.parse(newest.manifest.created)) : undefined,
      stored: entries.length,
    };
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: "StorageError", message: redact(text, secrets) };
  } finally {
    clearTimeout(timer);
    await (store as ObjectStore | undefined)?.close().catch(() => undefined);
  }
}
