/**
 * The kubelet half of the job runner (see job-runner.ts): turns a created Pod's first
 * container into a local process description. Env is resolved the way the kubelet does
 * (`envFrom`, then `env` with `$(VAR)` expansion, `secretKeyRef` / `configMapKeyRef` with
 * `optional`, `fieldRef`), the volumes the container mounts are materialised in a scratch
 * directory (Secret, ConfigMap, projected — service-account tokens through the real
 * TokenRequest API, bound to the Pod —, downward API, emptyDir), and every env value or
 * argument that names a path under a mount is rewritten to the local directory.
 *
 * Errors the kubelet would retry (a missing Secret, ServiceAccount or key) are thrown as
 * `PodStartRetryable`; anything this runner cannot emulate is a plain Error.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import type {
  CoreV1Api,
  KubeConfig,
  V1ConfigMap,
  V1Container,
  V1DownwardAPIVolumeFile,
  V1KeyToPath,
  V1ObjectFieldSelector,
  V1Pod,
  V1Secret,
  V1Volume,
} from "@kubernetes/client-node";

/** A failure the kubelet retries: the Pod stays Pending with this waiting reason. */
export class PodStartRetryable extends Error {
  /** Container waiting reason: "CreateContainerConfigError" (env) or "ContainerCreating" (volumes). */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = "PodStartRetryable";
    this.reason = reason;
  }
}

export interface PathMapping {
  /** Path inside the container. */
  readonly mountPath: string;
  /** Local path it maps to. */
  readonly localPath: string;
}

export interface PreparedContainer {
  /** The resolved environment, paths already rewritten. */
  readonly env: Record<string, string>;
  /** `command` and `args` with `$(VAR)` expanded and paths rewritten. */
  readonly command: readonly string[] | undefined;
  readonly args: readonly string[] | undefined;
  /** Local file standing for the container's `terminationMessagePath`. */
  readonly terminationMessageFile: string;
  readonly mappings: readonly PathMapping[];
}

export interface PrepareContext {
  readonly core: CoreV1Api;
  readonly kubeConfig: KubeConfig;
  readonly pod: V1Pod;
  readonly container: V1Container;
  /** Empty scratch directory of this Pod attempt. */
  readonly dir: string;
}

const defaultTerminationMessagePath = "/dev/termination-log";
/** What the executor writes to when BACKUP_TERMINATION_MESSAGE_PATH is unset. */
const executorDefaultTerminationPath = "/dev/termination-log";
const kubeRootCaConfigMap = "kube-root-ca.crt";

function statusCode(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "number" ? code : undefined;
  }
  return undefined;
}

/** Expands `$(NAME)` from `lookup` like the kubelet: unknown references stay, `$$` is a `$`. */
export function expandVars(value: string, lookup: (name: string) => string | undefined): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === "$" && value[i + 1] === "$") {
      out += "$";
      i++;
    } else if (ch === "$" && value[i + 1] === "(") {
      const end = value.indexOf(")", i + 2);
      if (end === -1) {
        out += value.slice(i);
        break;
      }
      const name = value.slice(i + 2, end);
      const resolved = lookup(name);
      out += resolved ?? `$(${name})`;
      i = end;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Rewrites a path under one of the mounts (longest mount first) to its local path. */
export function mapPath(value: string, mappings: readonly PathMapping[]): string {
  for (const m of mappings) {
    if (value === m.mountPath) return m.localPath;
    const prefix = m.mountPath.endsWith("/") ? m.mountPath : `${m.mountPath}/`;
    if (value.startsWith(prefix)) return join(m.localPath, value.slice(prefix.length));
  }
  return value;
}

/**
 * A JSON value (BACKUP_ADDITIONAL_TARGETS names each destination's credentials directory) with
 * every string that is a path under a mount rewritten like `mapPath`: a kubelet mounts at the
 * real path, and the process reads it wherever it is named.
 */
export function mapJsonPaths(value: string, mappings: readonly PathMapping[]): string {
  if (!/^\s*[[{]/.test(value)) return value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return value;
  }
  const walk = (node: unknown): unknown => {
    if (typeof node === "string") return mapPath(node, mappings);
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node === "object" && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
    }
    return node;
  };
  return JSON.stringify(walk(parsed));
}

/** Like `mapPath`, also for `--flag=/path` arguments. */
function mapArgument(value: string, mappings: readonly PathMapping[]): string {
  const mapped = mapPath(value, mappings);
  if (mapped !== value) return mapped;
  const eq = value.indexOf("=");
  if (value.startsWith("--") && eq !== -1) return `${value.slice(0, eq + 1)}${mapPath(value.slice(eq + 1), mappings)}`;
  return value;
}

/** Resolves `metadata.name`, `metadata.labels['x']`, `spec.serviceAccountName`… of the Pod. */
export function podField(pod: V1Pod, selector: V1ObjectFieldSelector): string {
  const path = selector.fieldPath;
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (labelOrAnnotation) {
    const map = labelOrAnnotation[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[labelOrAnnotation[2] ?? ""] ?? "";
  }
  const ip = pod.status?.podIP ?? "127.0.0.1";
  const hostIp = pod.status?.hostIP ?? "127.0.0.1";
  switch (path) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "metadata.labels":
      return formatMap(pod.metadata?.labels);
    case "metadata.annotations":
      return formatMap(pod.metadata?.annotations);
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    case "status.podIP":
    case "status.podIPs":
      return ip;
    case "status.hostIP":
    case "status.hostIPs":
      return hostIp;
    default:
      throw new Error(`fieldRef ${path} is not supported by the job runner`);
  }
}

/** The downward API's `key="value"` lines, sorted. */
function formatMap(map: Readonly<Record<string, string>> | undefined): string {
  return Object.entries(map ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join("\n");
}

/** Secrets and ConfigMaps of one Pod start, each read once. */
class ObjectReader {
  readonly #core: CoreV1Api;
  readonly #namespace: string;
  readonly #secrets = new Map<string, V1Secret | undefined>();
  readonly #configMaps = new Map<string, V1ConfigMap | undefined>();

  constructor(core: CoreV1Api, namespace: string) {
    this.#core = core;
    this.#namespace = namespace;
  }

  async secret(name: string): Promise<V1Secret | undefined> {
    if (this.#secrets.has(name)) return this.#secrets.get(name);
    let secret: V1Secret | undefined;
    try {
      secret = await this.#core.readNamespacedSecret({ name, namespace: this.#namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    this.#secrets.set(name, secret);
    return secret;
  }

  async configMap(name: string): Promise<V1ConfigMap | undefined> {
    if (this.#configMaps.has(name)) return this.#configMaps.get(name);
    let configMap: V1ConfigMap | undefined;
    try {
      configMap = await this.#core.readNamespacedConfigMap({ name, namespace: this.#namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    this.#configMaps.set(name, configMap);
    return configMap;
  }
}

/** Secret data (base64) or ConfigMap data (text) / binaryData (base64) as bytes per key. */
function secretBytes(secret: V1Secret): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(secret.data ?? {})) out.set(k, Buffer.from(v, "base64"));
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out.set(k, Buffer.from(v, "utf8"));
  return out;
}

function configMapBytes(configMap: V1ConfigMap): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(configMap.data ?? {})) out.set(k, Buffer.from(v, "utf8"));
  for (const [k, v] of Object.entries(configMap.binaryData ?? {})) out.set(k, Buffer.from(v, "base64"));
  return out;
}

function safeRelative(path: string): string {
  const normal = normalize(path);
  if (normal.startsWith("..") || normal.startsWith("/")) throw new Error(`volume path ${path} escapes its volume`);
  return normal;
}

function writeVolumeFile(dir: string, path: string, data: Buffer | string, mode: number): void {
  const target = join(dir, safeRelative(path));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, data);
  chmodSync(target, mode);
}

/** Writes `items` (or every key) of a Secret/ConfigMap's bytes into `dir`. */
function writeKeys(
  dir: string,
  what: string,
  bytes: Map<string, Buffer>,
  items: readonly V1KeyToPath[] | undefined,
  optional: boolean,
  defaultMode: number,
): void {
  if (!items || items.length === 0) {
    for (const [key, value] of bytes) writeVolumeFile(dir, key, value, defaultMode);
    return;
  }
  for (const item of items) {
    const value = bytes.get(item.key);
    if (value === undefined) {
      if (optional) continue;
      throw new PodStartRetryable("ContainerCreating", `MountVolume.SetUp failed: ${what} has no key "${item.key}"`);
    }
    writeVolumeFile(dir, item.path, value, item.mode ?? defaultMode);
  }
}

function caFromKubeConfig(kc: KubeConfig): string {
  const cluster = kc.getCurrentCluster();
  if (cluster?.caData) return Buffer.from(cluster.caData, "base64").toString("utf8");
  return "";
}

async function materialiseVolume(
  ctx: PrepareContext,
  reader: ObjectReader,
  volume: V1Volume,
  dir: string,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const pod = ctx.pod;
  const namespace = pod.metadata?.namespace ?? "default";
  if (volume.emptyDir) return;
  if (volume.secret) {
    const source = volume.secret;
    const name = source.secretName ?? "";
    const secret = await reader.secret(name);
    if (!secret) {
      if (source.optional) return;
      throw new PodStartRetryable(
        "ContainerCreating",
        `MountVolume.SetUp failed for volume "${volume.name}": secret "${name}" not found`,
      );
    }
    writeKeys(
      dir,
      `secret "${name}"`,
      secretBytes(secret),
      source.items,
      source.optional ?? false,
      source.defaultMode ?? 0o644,
    );
    return;
  }
  if (volume.configMap) {
    const source = volume.configMap;
    const name = source.name ?? "";
    const configMap = await reader.configMap(name);
    if (!configMap) {
      if (source.optional) return;
      throw new PodStartRetryable(
        "ContainerCreating",
        `MountVolume.SetUp failed for volume "${volume.name}": configmap "${name}" not found`,
      );
    }
    writeKeys(
      dir,
      `configmap "${name}"`,
      configMapBytes(configMap),
      source.items,
      source.optional ?? false,
      source.defaultMode ?? 0o644,
    );
    return;
  }
  if (volume.downwardAPI) {
    writeDownward(pod, dir, volume.downwardAPI.items ?? [], volume.downwardAPI.defaultMode ?? 0o644);
    return;
  }
  if (volume.projected) {
    const defaultMode = volume.projected.defaultMode ?? 0o644;
    for (const source of volume.projected.sources ?? []) {
      if (source.secret) {
        const name = source.secret.name ?? "";
        const secret = await reader.secret(name);
        if (!secret) {
          if (source.secret.optional) continue;
          throw new PodStartRetryable(
            "ContainerCreating",
            `MountVolume.SetUp failed for volume "${volume.name}": secret "${name}" not found`,
          );
        }
        writeKeys(
          dir,
          `secret "${name}"`,
          secretBytes(secret),
          source.secret.items,
          source.secret.optional ?? false,
          defaultMode,
        );
      } else if (source.configMap) {
        const name = source.configMap.name ?? "";
        let bytes: Map<string, Buffer> | undefined;
        const configMap = await reader.configMap(name);
        if (configMap) bytes = configMapBytes(configMap);
        else if (name === kubeRootCaConfigMap) {
          // Published by kube-controller-manager, which these tests do not run: same content.
          bytes = new Map([["ca.crt", Buffer.from(caFromKubeConfig(ctx.kubeConfig))]]);
        }
        if (!bytes) {
          if (source.configMap.optional) continue;
          throw new PodStartRetryable(
            "ContainerCreating",
            `MountVolume.SetUp failed for volume "${volume.name}": configmap "${name}" not found`,
          );
        }
        writeKeys(
          dir,
          `configmap "${name}"`,
          bytes,
          source.configMap.items,
          source.configMap.optional ?? false,
          defaultMode,
        );
      } else if (source.downwardAPI) {
        writeDownward(pod, dir, source.downwardAPI.items ?? [], defaultMode);
      } else if (source.serviceAccountToken) {
        const spec = source.serviceAccountToken;
        const serviceAccount = pod.spec?.serviceAccountName ?? "default";
        let token: string | undefined;
        try {
          const response = await ctx.core.createNamespacedServiceAccountToken({
            name: serviceAccount,
            namespace,
            body: {
              spec: {
                audiences: spec.audience ? [spec.audience] : [],
                expirationSeconds: spec.expirationSeconds ?? 3600,
                boundObjectRef: {
                  apiVersion: "v1",
                  kind: "Pod",
                  name: pod.metadata?.name ?? "",
                  uid: pod.metadata?.uid ?? "",
                },
              },
            },
          });
          token = response.status?.token;
        } catch (err) {
          if (statusCode(err) === 404) {
            throw new PodStartRetryable(
              "ContainerCreating",
              `MountVolume.SetUp failed for volume "${volume.name}": serviceaccount "${serviceAccount}" not found`,
            );
          }
          throw err;
        }
        if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
        // The kubelet writes a token 0600 when the Pod sets fsGroup/runAsUser (always, for our Jobs).
        writeVolumeFile(dir, spec.path, token, 0o600);
      } else {
        throw new Error(`volume "${volume.name}": a projected source the job runner does not support`);
      }
    }
    return;
  }
  const kind = Object.keys(volume).find((k) => k !== "name") ?? "unknown";
  throw new Error(`volume "${volume.name}" of type ${kind} is not supported by the job runner`);
}

function writeDownward(pod: V1Pod, dir: string, items: readonly V1DownwardAPIVolumeFile[], defaultMode: number): void {
  for (const item of items) {
    if (!item.fieldRef) throw new Error(`downward API item ${item.path}: only fieldRef is supported`);
    writeVolumeFile(dir, item.path, podField(pod, item.fieldRef), item.mode ?? defaultMode);
  }
}

/** Resolves env, volumes and paths for the Pod's first container (see the module comment). */
export async function prepareContainer(ctx: PrepareContext): Promise<PreparedContainer> {
  const { pod, container, dir } = ctx;
  const reader = new ObjectReader(ctx.core, pod.metadata?.namespace ?? "default");

  // Environment, in kubelet order: envFrom, then env (later entries win), `$(VAR)` from earlier ones.
  const env = new Map<string, string>();
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? "";
    if (source.secretRef) {
      const name = source.secretRef.name ?? "";
      const secret = await reader.secret(name);
      if (!secret) {
        if (source.secretRef.optional) continue;
        throw new PodStartRetryable("CreateContainerConfigError", `secret "${name}" not found`);
      }
      for (const [k, v] of secretBytes(secret)) env.set(`${prefix}${k}`, v.toString("utf8"));
    } else if (source.configMapRef) {
      const name = source.configMapRef.name ?? "";
      const configMap = await reader.configMap(name);
      if (!configMap) {
        if (source.configMapRef.optional) continue;
        throw new PodStartRetryable("CreateContainerConfigError", `configmap "${name}" not found`);
      }
      for (const [k, v] of configMapBytes(configMap)) env.set(`${prefix}${k}`, v.toString("utf8"));
    }
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (!from) {
      env.set(
        variable.name,
        expandVars(variable.value ?? "", (n) => env.get(n)),
      );
    } else if (from.secretKeyRef) {
      const ref = from.secretKeyRef;
      const name = ref.name ?? "";
      const secret = await reader.secret(name);
      const value = secret ? secretBytes(secret).get(ref.key) : undefined;
      if (value === undefined) {
        if (ref.optional) continue;
        throw new PodStartRetryable(
          "CreateContainerConfigError",
          secret ? `couldn't find key ${ref.key} in Secret ${name}` : `secret "${name}" not found`,
        );
      }
      env.set(variable.name, value.toString("utf8"));
    } else if (from.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      const name = ref.name ?? "";
      const configMap = await reader.configMap(name);
      const value = configMap ? configMapBytes(configMap).get(ref.key) : undefined;
      if (value === undefined) {
        if (ref.optional) continue;
        throw new PodStartRetryable(
          "CreateContainerConfigError",
          configMap ? `couldn't find key ${ref.key} in ConfigMap ${name}` : `configmap "${name}" not found`,
        );
      }
      env.set(variable.name, value.toString("utf8"));
    } else if (from.fieldRef) {
      env.set(variable.name, podField(pod, from.fieldRef));
    } else {
      throw new Error(`env ${variable.name}: only value, secretKeyRef, configMapKeyRef and fieldRef are supported`);
    }
  }

  // Volumes this container mounts, each materialised once.
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  const done = new Set<string>();
  const mappings: PathMapping[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.get(mount.name);
    if (!volume) throw new Error(`volumeMount ${mount.mountPath} names no volume "${mount.name}"`);
    const volumeDir = join(dir, "volumes", mount.name);
    if (!done.has(mount.name)) {
      await materialiseVolume(ctx, reader, volume, volumeDir);
      done.add(mount.name);
    }
    const subPath = mount.subPath ?? (mount.subPathExpr ? expandVars(mount.subPathExpr, (n) => env.get(n)) : "");
    mappings.push({
      mountPath: mount.mountPath,
      localPath: subPath ? join(volumeDir, safeRelative(subPath)) : volumeDir,
    });
  }

  // The termination message: a local file where the container's path points.
  const terminationPath = container.terminationMessagePath || defaultTerminationMessagePath;
  const terminationMessageFile = join(dir, "termination-log");
  writeFileSync(terminationMessageFile, "");
  mappings.push({ mountPath: terminationPath, localPath: terminationMessageFile });
  if (terminationPath !== executorDefaultTerminationPath) {
    // Written by an executor that was not told where, and read by nobody (as in a cluster).
    mappings.push({ mountPath: executorDefaultTerminationPath, localPath: join(dir, "unread-termination-log") });
  }
  mappings.sort((a, b) => b.mountPath.length - a.mountPath.length);

  const resolved: Record<string, string> = {};
  for (const [k, v] of env) resolved[k] = mapJsonPaths(mapPath(v, mappings), mappings);
  if (resolved.BACKUP_TERMINATION_MESSAGE_PATH === undefined) {
    resolved.BACKUP_TERMINATION_MESSAGE_PATH = mapPath(executorDefaultTerminationPath, mappings);
  }
  const expandArgs = (list: readonly string[] | undefined): string[] | undefined =>
    list?.map((a) =>
      mapArgument(
        expandVars(a, (n) => env.get(n)),
        mappings,
      ),
    );
  return {
    env: resolved,
    command: expandArgs(container.command),
    args: expandArgs(container.args),
    terminationMessageFile,
    mappings,
  };
}
