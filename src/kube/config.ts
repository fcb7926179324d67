/**
 * Loading a kubeconfig: `path` (a flag or KUBECONFIG), else the default locations
 * (~/.kube/config, then the in-cluster ServiceAccount). One home for the operator, the
 * monitor and the CLI; each words the failure for its own reader.
 */
import { KubeConfig } from "@kubernetes/client-node";

export class KubeConfigError extends Error {
  /** The file tried, or "(default)". */
  readonly where: string;
  /** Why, short: an errno code or the loader's message. */
  readonly reason: string;
  constructor(where: string, reason: string, options?: ErrorOptions) {
    super(`cannot load the kubeconfig ${where} (${reason})`, options);
    this.name = "KubeConfigError";
    this.where = where;
    this.reason = reason;
  }
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const config = new KubeConfig();
  try {
    if (path) config.loadFromFile(path);
    else config.loadFromDefault();
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new KubeConfigError(path ?? "(default)", reason, { cause: err });
  }
  return config;
}
