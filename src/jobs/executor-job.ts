/**
 * Builds the Kubernetes Job that runs the executor, for backups and restores alike, so the
 * provider and auth wiring exists once (SPEC §3). Every mounted path is also passed as its
 * env override, so the executor never relies on a default that could drift from the mount.
 *
 * The pod: non-root, read-only root filesystem, all capabilities dropped, no privilege
 * escalation, RuntimeDefault seccomp, no automounted API token (only the projected tokens
 * it needs), and a Secret volume only for what the spec uses.
 */
import type {
  V1EnvVar,
  V1Job,
  V1OwnerReference,
  V1ResourceRequirements,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { awsWebIdentityAudience, defaults } from "../api/constants.ts";
import type { ResolvedAdditionalTarget, ResolvedAuth, ResolvedTarget } from "../api/predicates.ts";
import type { ExecutorResourcesSpec } from "../api/types.ts";
import { defaultPaths } from "../executor/settings.ts";
import { planParts } from "../storage/parts.ts";
import { type DrillPodInput, drillPodParts } from "./drill-pod.ts";

export const mountPaths = {
  storage: "/etc/bao-backup/storage",
  openbaoToken: "/etc/bao-backup/openbao-token",
  openbaoTls: "/etc/bao-backup/openbao-tls",
  openbaoJwt: "/var/run/secrets/openbao",
  awsToken: "/var/run/secrets/eks.amazonaws.com/serviceaccount",
} as const;

/**
 * The name of the `roleArn` token volume: the one the EKS Pod Identity webhook
 * (github.com/aws/amazon-eks-pod-identity-webhook, pkg/handler/handler.go) gives its own.
 * The webhook mutates every Pod whose ServiceAccount carries `eks.amazonaws.com/role-arn` and
 * recognises its token by volume NAME, never by path: it adds a volume `aws-iam-token` unless
 * the Pod has one of that name, and, per container, a mount of it at
 * /var/run/secrets/eks.amazonaws.com/serviceaccount unless the container has a mount of that
 * name (`getPodSpecPatch`, `addEnvToContainer`). Under any other name our volume at that path
 * gets a second mount at the same path, the Pod is rejected ("mountPath … must be unique") and
 * the Job never starts. Under this name the webhook leaves the volume and the mount alone, and
 * adds no AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE because ours are set (it only adds
 * missing region / regional-STS variables), so `target.roleArn` is the role used. Recent
 * webhook releases also check that a volume of this name is a projected token with their
 * audience and path `token`, and otherwise leave the whole Pod unmutated — no collision either.
 */
export const awsTokenVolumeName = "aws-iam-token";

/** Projected tokens live one hour; the kubelet refreshes them long before. */
const tokenExpirationSeconds = 3600;
/**
 * Finished Jobs are kept a day by default so results survive a long operator outage
 * (`--job-ttl`, JOB_TTL_SECONDS, chart value `jobTTLSecondsAfterFinished`).
 */
export const defaultJobTtlSeconds = 86_400;
/**
 * The executor's container name: the operator reads the result from this container's
 * terminated state by name (jobs/result.ts), since a sidecar may be listed first.
 */
export const executorContainerName = "executor";
/** The image's non-root user (distroless "nonroot"). */
const runAsUser = 65_532;

export interface ExecutorJobInput {
  /**
   * The executor subcommand: `confirm` looks in storage for the backup of a Job whose result
   * was lost; `drill` restores a backup into a throwaway OpenBao of its own Pod (`drill` below).
   */
  readonly mode: "backup" | "restore" | "confirm" | "drill";
  /** Drill only: the throwaway and the key material (src/jobs/drill-pod.ts). */
  readonly drill?: DrillPodInput | undefined;
  readonly name: string;
  readonly namespace: string;
  readonly owner: V1OwnerReference;
  readonly image: string;
  readonly serviceAccountName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly podAnnotations: Readonly<Record<string, string>>;
  readonly activeDeadlineSeconds: number;
  /** `spec.backup.resources`: over the computed defaults (see `executorResources`). */
  readonly resources?: ExecutorResourcesSpec | undefined;
  /** How long the Job controller keeps the finished Job; `defaultJobTtlSeconds` when absent. */
  readonly ttlSecondsAfterFinished?: number | undefined;
  /** Audience of the projected token for OpenBao's JWT auth (operator env OPENBAO_JWT_AUDIENCE). */
  readonly jwtAudience: string;
  readonly cluster: {
    readonly name: string;
    readonly replicas: number;
    readonly addresses: readonly string[] | undefined;
  };
  readonly auth: ResolvedAuth;
  /** The CA Secret to mount; undefined when every member is `http://` (nothing to verify). */
  readonly tlsSecretName: string | undefined;
  readonly target: ResolvedTarget;
  /**
   * Backup only: more destinations (`spec.backup.additionalTargets`), each with its own
   * credentials Secret mounted at `<storage>-<name>` and passed as BACKUP_ADDITIONAL_TARGETS.
   */
  readonly additionalTargets?: readonly ResolvedAdditionalTarget[] | undefined;
  readonly successPolicy?: "All" | "AtLeastOne" | "Primary" | undefined;
  /** The size the upload is expected to reach (BACKUP_SIZE_HINT): memory follows the part size it raises. */
  readonly sizeHint?: number | undefined;
  /** Mode-specific settings (BACKUP_TYPE, retention, BACKUP_KEY, BACKUP_FORCE…). */
  readonly extraEnv: Readonly<Record<string, string>>;
}

function env(name: string, value: string | number | boolean | undefined): V1EnvVar[] {
  return value === undefined || value === "" ? [] : [{ name, value: String(value) }];
}

/** The `target` block as the executor's environment contract (src/executor/settings.ts). */
export function targetEnv(target: ResolvedTarget): V1EnvVar[] {
  return [
    ...env("BACKUP_PROVIDER", target.provider ?? defaults.provider),
    ...env("BACKUP_ENDPOINT", target.endpoint),
    ...env("BACKUP_BUCKET", target.bucket),
    ...env("BACKUP_PATH_PREFIX", target.pathPrefix),
    ...(target.provider === "s3" || target.provider === undefined
      ? [
          ...env("BACKUP_REGION", target.region),
          ...env("BACKUP_USE_PATH_STYLE", target.usePathStyle),
          ...env("BACKUP_ROLE_ARN", target.roleArn),
        ]
      : []),
    ...(target.provider === "gcs" ? env("BACKUP_GCS_PROJECT", target.gcs?.project) : []),
    ...(target.provider === "azure"
      ? [
          ...env("BACKUP_AZURE_STORAGE_ACCOUNT", target.azure?.storageAccount),
          ...env("BACKUP_AZURE_CONTAINER", target.azure?.container),
        ]
      : []),
    // Every field written is passed, each to its own variable: the executor refuses one that
    // does not belong to the provider rather than writing without the encryption asked for.
    ...env("BACKUP_SSE", target.encryption?.type),
    ...env("BACKUP_SSE_KMS_KEY_ID", target.encryption?.kmsKeyId),
    ...env("BACKUP_GCS_KMS_KEY_NAME", target.encryption?.kmsKeyName),
    ...env("BACKUP_AZURE_ENCRYPTION_SCOPE", target.encryption?.encryptionScope),
    ...(target.objectLock === undefined
      ? []
      : [
          ...env("BACKUP_OBJECT_LOCK_MODE", target.objectLock.mode),
          ...env("BACKUP_OBJECT_LOCK_GRACE", target.objectLock.grace),
          ...env("BACKUP_OBJECT_LOCK_PRE_UPGRADE_LEGAL_HOLD", target.objectLock.preUpgradeLegalHold),
        ]),
    ...env("BACKUP_PART_SIZE", target.partSize),
    ...env("BACKUP_CONCURRENCY", target.concurrency),
    ...env("BACKUP_INSECURE_SKIP_VERIFY", target.insecureSkipVerify),
  ];
}

function roleArnOf(target: ResolvedTarget): string | undefined {
  return target.provider === "s3" || target.provider === undefined ? target.roleArn : undefined;
}

/**
 * Runtime settings of the executor container (BENCHMARKS.md, finding 7). The stream leaves
 * short-lived buffers behind — TLS records, decompressed batches, finished upload parts — whose
 * memory V8 frees when it collects the small objects that own them. With the default young
 * generation such collections were rare in this lean pipeline, and up to 64 MiB of dead buffers
 * waited for an external-memory GC; a 1 MiB young generation collects every few MiB. Measured
 * at 10 MiB × 3 on MinIO in one session: restore growth 69–71 → 21–23 MiB, backup growth
 * 111–115 → 81–94 MiB (256 MiB–1 GiB), throughput the same or better.
 * The image's ENTRYPOINT adds `--initial-old-space-size=64` (src/cli/node-flags.ts, finding
 * 11), which Node does not accept in NODE_OPTIONS.
 */
export const executorRuntimeEnv: Readonly<Record<string, string>> = {
  NODE_OPTIONS: "--max-semi-space-size=1",
};

/**
 * Everything next to the upload buffers: the idle executor (runtime, one SDK, TLS) is
 * ≈ 110 MiB and the stream adds up to ≈ 70 MiB beyond its parts (BENCHMARKS.md). The highest
 * peak measured at the defaults (10 MiB × 3) was 232 MiB, behind a real OpenBao: 10 MiB under
 * the 242 MiB limit a 192 MiB baseline gave, close enough for socket buffers (which a memory
 * cgroup also counts) to get the Job OOM-killed. 256 MiB leaves ≈ 25% headroom there.
 */
const baselineBytes = 256 * 1024 * 1024;

/**
 * The executor holds at most about `partSize × (concurrency + 1)` bytes of upload buffers;
 * one more part of headroom plus Node's baseline keeps large parts from being OOM-killed
 * while small ones stay cheap. Request equals limit, so the scheduler reserves it.
 */
/**
 * The part size and concurrency the executor will upload with: the size hint raises the part
 * size exactly as the executor does (src/storage/parts.ts), and the memory must follow it. A
 * hint no part size can hold leaves the configured one (the upload then fails with TooLarge).
 */
export function uploadSizing(
  target: ResolvedTarget,
  sizeHint: number | undefined,
): Pick<ResolvedTarget, "partSize" | "concurrency"> {
  if (sizeHint === undefined) return target;
  try {
    const { partSize } = planParts(target.provider ?? defaults.provider, target.partSize, { sizeHint });
    return { partSize: Math.max(partSize, target.partSize), concurrency: target.concurrency };
  } catch {
    return target;
  }
}

type Sizing = Pick<ResolvedTarget, "partSize" | "concurrency">;

/** Every destination's upload buffers (one stream teed to all of them) plus the baseline. */
export function executorMemory(targets: Sizing | readonly Sizing[]): string {
  const list: readonly Sizing[] = Array.isArray(targets) ? targets : [targets as Sizing];
  const bytes = list.reduce((sum, t) => sum + t.partSize * (t.concurrency + 2), 0) + baselineBytes;
  return `${Math.ceil(bytes / (1024 * 1024))}Mi`;
}

/**
 * The executor container's resources: the computed memory (request = limit, so the scheduler
 * reserves what the executor can use) and a small CPU request, with the user's values over
 * them. A memory limit given alone is also the request (a request above the limit is invalid);
 * a memory request given alone keeps the computed limit unless it is below the request.
 */
export function executorResources(
  target: Sizing | readonly Sizing[],
  spec: ExecutorResourcesSpec | undefined,
): V1ResourceRequirements {
  const computed = executorMemory(target);
  const limitMemory = spec?.limits?.memory ?? spec?.requests?.memory ?? computed;
  const requestMemory = spec?.requests?.memory ?? spec?.limits?.memory ?? computed;
  const limits: Record<string, string> = {
    memory:
      spec?.limits?.memory === undefined && spec?.requests?.memory !== undefined
        ? larger(spec.requests.memory, computed)
        : limitMemory,
  };
  if (spec?.limits?.cpu !== undefined) limits.cpu = spec.limits.cpu;
  return {
    requests: { cpu: spec?.requests?.cpu ?? "100m", memory: requestMemory },
    limits,
  };
}

/** The larger of two memory quantities (Ki/Mi/Gi/Ti, K/M/G/T, or plain bytes). */
function larger(a: string, b: string): string {
  return memoryBytes(a) >= memoryBytes(b) ? a : b;
}

const memoryUnits: Record<string, number> = {
  "": 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

export function memoryBytes(quantity: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)([kKMGT]i?|)$/.exec(quantity);
  const unit = match ? memoryUnits[match[2] ?? ""] : undefined;
  if (!match || unit === undefined) return Number.NaN;
  return Number(match[1]) * unit;
}

export function buildExecutorJob(input: ExecutorJobInput): V1Job {
  const volumes: V1Volume[] = [];
  const mounts: V1VolumeMount[] = [];
  const vars: V1EnvVar[] = [
    ...env("CLUSTER_NAME", input.cluster.name),
    ...env("CLUSTER_NAMESPACE", input.namespace),
    ...env("CLUSTER_REPLICAS", input.cluster.replicas),
    ...env("BACKUP_OPENBAO_ADDRESSES", input.cluster.addresses?.join(",")),
    ...targetEnv(input.target),
    ...env("BACKUP_TERMINATION_MESSAGE_PATH", defaultPaths.terminationMessage),
    ...Object.entries(executorRuntimeEnv).map(([name, value]) => ({ name, value })),
  ];
  const mount = (name: string, path: string, volume: Omit<V1Volume, "name">): void => {
    volumes.push({ name, ...volume });
    mounts.push({ name, mountPath: path, readOnly: true });
  };
  /**
   * A Secret volume, optional: a missing Secret (or key) must not leave the Pod stuck in
   * ContainerCreating until the deadline — the operator may not be allowed to read Secrets to
   * check beforehand (least privilege). The executor is told which Secret backs which setting
   * (BACKUP_REQUIRED_SECRETS, `<role>=<secret>`) and fails at once with SecretNotFound.
   */
  const required: string[] = [];
  const secretMount = (
    role: "tls" | "token" | "storage",
    name: string,
    path: string,
    secretName: string,
    items?: { key: string; path: string }[],
  ): void => {
    mount(name, path, { secret: { secretName, optional: true, ...(items ? { items } : {}) } });
    required.push(`${role}=${secretName}`);
  };

  if (input.tlsSecretName !== undefined) {
    secretMount("tls", "openbao-tls", mountPaths.openbaoTls, input.tlsSecretName, [
      { key: defaults.tlsCaKey, path: "ca.crt" },
    ]);
    vars.push({ name: "BACKUP_CA_FILE", value: `${mountPaths.openbaoTls}/ca.crt` });
  }

  if (input.target.credentialsSecretRef) {
    secretMount("storage", "storage-credentials", mountPaths.storage, input.target.credentialsSecretRef.name);
  }
  // Always set, so an absent Secret means "ambient identity" rather than a guessed path.
  vars.push({ name: "BACKUP_CREDENTIALS_DIR", value: mountPaths.storage });

  const additional = input.mode === "backup" ? (input.additionalTargets ?? []) : [];
  if (additional.length > 0) {
    const destinations = additional.map((t) => {
      const { name, credentialsSecretRef, ...target } = t;
      const credentialsDir = `${mountPaths.storage}-${name}`;
      if (credentialsSecretRef) {
        // Not in BACKUP_REQUIRED_SECRETS: a missing Secret fails that destination only (the
        // executor names it), and the success policy decides what that means for the Job.
        mount(`storage-${name}`, credentialsDir, { secret: { secretName: credentialsSecretRef.name, optional: true } });
      }
      return {
        name,
        target,
        credentialsDir,
        ...(credentialsSecretRef ? { credentialsSecret: credentialsSecretRef.name } : {}),
      };
    });
    vars.push({ name: "BACKUP_ADDITIONAL_TARGETS", value: JSON.stringify(destinations) });
    if (input.successPolicy !== undefined) vars.push({ name: "BACKUP_SUCCESS_POLICY", value: input.successPolicy });
  }

  if (input.auth.method === "jwt") {
    mount("openbao-jwt", mountPaths.openbaoJwt, {
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: input.jwtAudience,
              expirationSeconds: tokenExpirationSeconds,
              path: "token",
            },
          },
        ],
      },
    });
    vars.push(
      { name: "BACKUP_AUTH_METHOD", value: "jwt" },
      { name: "BACKUP_JWT_AUTH_ROLE", value: input.auth.role },
      { name: "BACKUP_JWT_AUTH_PATH", value: input.auth.path },
      { name: "BACKUP_JWT_TOKEN_FILE", value: `${mountPaths.openbaoJwt}/token` },
    );
  } else {
    secretMount("token", "openbao-token", mountPaths.openbaoToken, input.auth.secretName, [
      { key: input.auth.secretKey, path: "token" },
    ]);
    // Backup and restore read the token from the same mounted path (SPEC §5 trap 7).
    vars.push(
      { name: "BACKUP_AUTH_METHOD", value: "token" },
      { name: "BACKUP_TOKEN_FILE", value: `${mountPaths.openbaoToken}/token` },
    );
  }

  const roleArn = roleArnOf(input.target);
  if (roleArn) {
    // Named, mounted and projected like the EKS webhook's own token (see awsTokenVolumeName),
    // so a ServiceAccount that also carries `eks.amazonaws.com/role-arn` cannot collide.
    mount(awsTokenVolumeName, mountPaths.awsToken, {
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: awsWebIdentityAudience,
              expirationSeconds: tokenExpirationSeconds,
              path: "token",
            },
          },
        ],
      },
    });
    vars.push(
      { name: "AWS_ROLE_ARN", value: roleArn },
      { name: "AWS_WEB_IDENTITY_TOKEN_FILE", value: `${mountPaths.awsToken}/token` },
    );
  }

  const drill = input.mode === "drill" && input.drill ? drillPodParts(input.drill) : undefined;
  if (drill) {
    volumes.push(...drill.volumes);
    mounts.push(...drill.executorMounts);
    required.push(...drill.required);
    vars.push(...drill.env);
  }

  vars.push(...env("BACKUP_REQUIRED_SECRETS", required.join(",")));
  for (const [name, value] of Object.entries(input.extraEnv)) vars.push(...env(name, value));
  const containerSecurity = {
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  };

  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels: { ...input.labels },
      annotations: { ...input.annotations },
      ownerReferences: [input.owner],
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: input.activeDeadlineSeconds,
      ttlSecondsAfterFinished: input.ttlSecondsAfterFinished ?? defaultJobTtlSeconds,
      template: {
        metadata: {
          // User labels first: ours win, so selectors and ownership cannot be overridden.
          labels: { ...input.podLabels, ...input.labels },
          annotations: { ...input.podAnnotations },
        },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: input.serviceAccountName,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser,
            runAsGroup: runAsUser,
            fsGroup: runAsUser,
            seccompProfile: { type: "RuntimeDefault" },
          },
          volumes,
          ...(drill ? { initContainers: drill.initContainers({ image: input.image }) } : {}),
          containers: [
            {
              name: executorContainerName,
              image: input.image,
              args: [input.mode],
              env: vars,
              volumeMounts: mounts,
              terminationMessagePath: defaultPaths.terminationMessage,
              terminationMessagePolicy: "File",
              resources: executorResources(
                [input.target, ...additional].map((t) => uploadSizing(t, input.sizeHint)),
                input.resources,
              ),
              securityContext: containerSecurity,
            },
          ],
        },
      },
    },
  };
}
