/**
 * The real servers the tests run against (TESTING.md), where each comes from, and where
 * its binary is cached. The cache lives outside the work tree, keyed by version, so a
 * second run (or a fresh clone on the same machine) reuses it.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

export const projectRoot: string = join(import.meta.dirname, "..", "..");
const wrappers = join(import.meta.dirname, "go");

export const cacheRoot: string = join(
  process.env.OPENBAO_BACKUP_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "openbao-backup"),
);

export type ServerName =
  | "etcd"
  | "kube-apiserver"
  | "k8s-node"
  | "openbao"
  | "minio"
  | "fake-gcs-server"
  | "helm"
  | "prometheus";

/** How a server binary is produced. */
export type Recipe =
  /**
   * `go build` of `pkgs` inside a wrapper module of ours (test/servers/go/<dir>), one binary
   * per package, named after its last path element. `ldflags` stamp the version a module
   * dependency cannot know (its own release scripts set it), so servers report real versions.
   */
  | {
      readonly kind: "wrapper";
      readonly dir: string;
      readonly pkgs: readonly string[];
      readonly ldflags?: readonly string[];
      /** Go build tags, to leave out what the tests never use (and its build time). */
      readonly tags?: readonly string[];
    }
  /** `go install module@version`: the module builds as published. */
  | { readonly kind: "install"; readonly module: string; readonly version: string };

export interface ServerSpec {
  readonly name: ServerName;
  /** The binary other code asks for; a wrapper with several packages builds them beside it. */
  readonly binary: string;
  readonly recipe: Recipe;
  /** Human version for progress lines. */
  readonly label: string;
}

/** So a Node reports `kubeletVersion: v1.36.3` rather than `v0.0.0-master+$Format:%H$`. */
const kubeVersionFlags = [
  "-X k8s.io/component-base/version.gitVersion=v1.36.3",
  "-X k8s.io/component-base/version.gitMajor=1",
  "-X k8s.io/component-base/version.gitMinor=36",
];

export const servers: readonly ServerSpec[] = [
  {
    name: "etcd",
    binary: "etcd",
    label: "etcd v3.6.16",
    recipe: { kind: "wrapper", dir: "etcd", pkgs: ["go.etcd.io/etcd/server/v3"] },
  },
  {
    name: "openbao",
    binary: "bao",
    label: "OpenBao v2.4.0 (f9407a27fbee)",
    recipe: {
      kind: "wrapper",
      dir: "openbao",
      pkgs: ["github.com/openbao/openbao"],
      // Without these a module build reports the source default (2.0.0-HEAD) in every
      // manifest. Older trees set Version/VersionPrerelease, newer ones derive them from
      // fullVersion: stamping all of them covers both (-X of an absent symbol is a no-op).
      ldflags: [
        "-X github.com/openbao/openbao/version.fullVersion=2.4.0",
        "-X github.com/openbao/openbao/version.Version=2.4.0",
        "-X github.com/openbao/openbao/version.VersionPrerelease=",
        "-X github.com/openbao/openbao/version.GitCommit=f9407a27fbee",
      ],
    },
  },
  {
    name: "kube-apiserver",
    binary: "kube-apiserver",
    label: "kube-apiserver v1.36.3",
    recipe: {
      kind: "wrapper",
      dir: "kube-apiserver",
      pkgs: ["k8s.io/kubernetes/cmd/kube-apiserver"],
      ldflags: kubeVersionFlags,
    },
  },
  {
    // The real node (test/node): built after kube-apiserver so the Go build cache is warm.
    name: "k8s-node",
    binary: "kubelet",
    label: "kubelet, kube-controller-manager, kube-scheduler v1.36.3",
    recipe: {
      kind: "wrapper",
      dir: "k8s-node",
      pkgs: [
        "k8s.io/kubernetes/cmd/kubelet",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler",
      ],
      ldflags: kubeVersionFlags,
    },
  },
  {
    name: "minio",
    binary: "minio",
    label: "MinIO 2026-02-12 (7aac2a2c5b7c)",
    recipe: { kind: "install", module: "github.com/minio/minio", version: "v0.0.0-20260212201848-7aac2a2c5b7c" },
  },
  {
    name: "fake-gcs-server",
    binary: "fake-gcs-server",
    label: "fake-gcs-server v1.56.1",
    recipe: { kind: "install", module: "github.com/fsouza/fake-gcs-server", version: "v1.56.1" },
  },
  {
    name: "helm",
    binary: "helm",
    label: "Helm v3.22.0",
    recipe: { kind: "install", module: "helm.sh/helm/v3/cmd/helm", version: "v3.22.0" },
  },
  {
    // The chart's alert rules are unit-tested with promtool and evaluated by a real
    // Prometheus scraping the operator. Module v0.316.0 is Prometheus v3.16.0; built without
    // the `builtinassets` tag, so the web UI is absent (the HTTP API is all the tests use).
    name: "prometheus",
    binary: "prometheus",
    label: "Prometheus and promtool v3.16.0",
    recipe: {
      kind: "wrapper",
      dir: "prometheus",
      pkgs: ["github.com/prometheus/prometheus/cmd/prometheus", "github.com/prometheus/prometheus/cmd/promtool"],
      // Every service-discovery plugin (AWS, Azure, GCE, Kubernetes' client-go, …) left out:
      // the tests scrape static targets only, and the plugins were most of a 306 s cold build.
      tags: ["remove_all_sd"],
      // A module build reports version "" otherwise (the release's Makefile stamps these).
      ldflags: [
        "-X github.com/prometheus/common/version.Version=3.16.0",
        "-X github.com/prometheus/common/version.Branch=v0.316.0",
        "-X github.com/prometheus/common/version.BuildUser=openbao-backup-test",
        "-X github.com/prometheus/common/version.BuildDate=20261105-15:06:51",
      ],
    },
  },
];

/** A version key: the pinned module version, or the hash of our wrapper's go.mod + go.sum + flags. */
export function cacheKey(spec: ServerSpec): string {
  if (spec.recipe.kind === "install") return spec.recipe.version;
  const hash = createHash("sha256");
  if (spec.recipe.ldflags) hash.update(spec.recipe.ldflags.join(" "));
  if (spec.recipe.tags) hash.update(`tags ${spec.recipe.tags.join(",")}`);
  for (const file of ["go.mod", "go.sum"]) {
    const path = join(wrappers, spec.recipe.dir, file);
    if (existsSync(path)) hash.update(readFileSync(path));
  }
  return hash.digest("hex").slice(0, 16);
}

export function wrapperDir(spec: ServerSpec & { recipe: { kind: "wrapper" } }): string {
  return join(wrappers, spec.recipe.dir);
}

export function binaryPath(spec: ServerSpec): string {
  return join(cacheRoot, "bin", `${spec.name}-${cacheKey(spec)}`, spec.binary);
}

/** The cached binary of a server; `binary` names a sibling built by the same wrapper. */
export function serverBinary(name: ServerName, binary?: string): string {
  const spec = servers.find((s) => s.name === name);
  if (!spec) throw new Error(`unknown server ${name}`);
  const path = binary === undefined ? binaryPath(spec) : join(dirname(binaryPath(spec)), binary);
  if (!existsSync(path)) {
    throw new Error(`${spec.label} is not built yet (${path}); run \`npm run servers\` or \`npm test\`.`);
  }
  return path;
}

/** Azurite is an npm devDependency: its entry point is run with this Node. */
export function azuriteEntry(): string {
  return join(projectRoot, "node_modules", "azurite", "dist", "src", "blob", "main.js");
}
