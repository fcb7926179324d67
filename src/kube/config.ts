/**
 * Loading a kubeconfig: `path` (a flag or KUBECONFIG), else the default locations
 * (~/.kube/config, then the in-cluster ServiceAccount). One home for the operator, the
 * monitor and the CLI; each words the failure for its own reader.
 *
 * Also the home of the Kubernetes layer's error base (util/coded-error.ts).
 */
import { KubeConfig } from "@kubernetes/client-node";
import { CodedError } from "../util/coded-error.ts";

export type KubeErrorCode =
  /** The kubeconfig cannot be loaded (`KubeConfigError`). */
  | "InvalidKubeconfig"
  /** A raw API call failed: an HTTP error status, no answer, a bad body (`KubeApiError`). */
  | "KubeApiFailed"
  /** The API server refused the credentials or RBAC forbids the call (`KubeProblem`, exit 2). */
  | "KubeAccessDenied"
  /** Anything else the CLI cannot work with on the Kubernetes side (`KubeProblem`, exit 1). */
  | "KubeMisconfigured";

/** The Kubernetes layer: the kubeconfig, the API server, the objects read from it. */
export abstract class KubeLayerError<Code extends KubeErrorCode = KubeErrorCode> extends CodedError<Code> {
  readonly layer = "kube";
}

export class KubeConfigError extends KubeLayerError<"InvalidKubeconfig"> {
  /** The file tried, or "(default)". */
  readonly where: string;
  /** Why, short: an errno code or the loader's message. */
  readonly reason: string;
  constructor(where: string, reason: string, options?: ErrorOptions) {
    super("InvalidKubeconfig", `cannot load the kubeconfig ${where} (${reason})`, options);
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
