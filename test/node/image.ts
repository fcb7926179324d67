/**
 * The container images of the `node` test tier, built from this checkout with no Docker daemon
 * and no registry. A real kubelet + containerd run the product's own image there, so the image
 * has to exist on the machine: this file assembles each root filesystem in a directory, tars it
 * into one uncompressed layer and writes an OCI image-layout archive by hand (sha256, config,
 * manifest, index.json). `ctr -n k8s.io images import <archive>` then names the image from the
 * index's `io.containerd.image.name` annotation, and since the tags are not `latest` the
 * kubelet's default pull policy (IfNotPresent) uses it as is.
 *
 * - `localhost/openbao-backup:node-test`: the product, shaped like the Dockerfile's `runtime`
 *   stage (`runtimeImage` below; test/unit/node-image.test.ts keeps the two in step). In place
 *   of the distroless base: the project's own Node 24 binary, the host libraries it links, and
 *   the few files of the base this program touches (passwd/group, the CA bundle, /tmp).
 * - `localhost/openbao-backup/openbao:2.4.0`: the cached OpenBao server binary (static Go).
 * - `localhost/openbao-backup/pause:1`: the pod sandbox, test/node/pause.c built static.
 *
 * The product image is rebuilt on every call (dist/ and package-lock.json change under it, and
 * it takes 15–25 s); the other two are reused from `outDir` while their inputs hash the same.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { constants, createReadStream, existsSync } from "node:fs";
import {
  access,
  chmod,
  chown,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { delimiter, dirname, join, posix } from "node:path";
import { pipeline } from "node:stream/promises";
import { imageNodeFlags } from "../../src/cli/node-flags.ts";
import { projectRoot, serverBinary } from "../servers/catalog.ts";

/** The `config` object of an OCI image configuration (field names as the spec spells them). */
export interface ImageConfig {
  readonly User?: string;
  readonly WorkingDir?: string;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly ExposedPorts?: Readonly<Record<string, Readonly<Record<string, never>>>>;
  readonly Labels?: Readonly<Record<string, string>>;
}

/** What the Dockerfile's runtime stage produces: its base, its config and where its files go. */
export interface RuntimeImage {
  /** The stage's FROM, with ARG NODE_VERSION resolved, and what that base contributes. */
  readonly base: {
    readonly image: string;
    /** The base image's own Env, which the stage's ENV lines extend. */
    readonly env: readonly string[];
  };
  readonly config: Required<ImageConfig>;
  readonly layout: {
    /** The Node.js binary, provided by the distroless base. */
    readonly node: string;
    /** `COPY --from=build /src/dist ./dist`: the compiled JavaScript. */
    readonly dist: string;
    /** `COPY --from=deps /src/node_modules ./node_modules`: production dependencies only. */
    readonly nodeModules: string;
    /** `COPY package.json ./`: carries "type": "module", which dist/ needs. */
    readonly packageJson: string;
  };
  /** The deps stage's install command, without npm's output options. */
  readonly productionInstall: readonly string[];
}

const distrolessEnv = [
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  // Set by distroless's static base, which every distroless image (nodejs included) builds on.
  "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
] as const;

export const runtimeImage: RuntimeImage = {
  base: { image: "gcr.io/distroless/nodejs24-debian12:nonroot", env: distrolessEnv },
  config: {
    User: "65532:65532",
    WorkingDir: "/app",
    Env: [...distrolessEnv, "NODE_ENV=production"],
    Entrypoint: ["/nodejs/bin/node", ...imageNodeFlags, "/app/dist/cli/main.js"],
    Cmd: ["--help"],
    ExposedPorts: { "8080/tcp": {} },
    Labels: {
      "org.opencontainers.image.title": "openbao-backup",
      "org.opencontainers.image.description":
        "Scheduled OpenBao Raft snapshots to S3, GCS or Azure Blob: operator and executor",
      "org.opencontainers.image.licenses": "MPL-2.0",
      "org.opencontainers.image.source": "https://github.com/openbao/openbao-backup",
    },
  },
  layout: {
    node: "/nodejs/bin/node",
    dist: "/app/dist",
    nodeModules: "/app/node_modules",
    packageJson: "/app/package.json",
  },
  productionInstall: ["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"],
};

export const imageNames = {
  product: "localhost/openbao-backup:node-test",
  openbao: "localhost/openbao-backup/openbao:2.4.0",
  pause: "localhost/openbao-backup/pause:1",
} as const;

export interface BuiltImage {
  /** The full reference containerd records on import. */
  readonly name: string;
  /** The OCI image-layout tar, for `ctr -n k8s.io images import`. */
  readonly archive: string;
  /** The manifest digest ("sha256:…"), which containerd reports as the image's target. */
  readonly digest: string;
}

export interface BuildOptions {
  /** Where the archives go (created if missing); also holds the reusable ones. */
  readonly outDir: string;
  /** Progress lines, e.g. `[node] image …: 274 MiB layer in 21 s`. */
  readonly say?: (line: string) => void;
}

/** Builds the three images the node tier imports. */
export async function buildImages(
  options: BuildOptions,
): Promise<{ product: BuiltImage; openbao: BuiltImage; pause: BuiltImage }> {
  const pause = await buildPauseImage(options);
  const openbao = await buildOpenBaoImage(options);
  const product = await buildProductImage(options);
  return { product, openbao, pause };
}

/** The product's runtime image, from dist/ (the caller has run `npm run build`) and the lockfile. */
export async function buildProductImage(options: BuildOptions): Promise<BuiltImage> {
  const name = imageNames.product;
  const { layout } = runtimeImage;
  const dist = join(projectRoot, "dist");
  if (!existsSync(join(dist, "cli", "main.js"))) {
    throw new Error(`${dist} has no cli/main.js: run \`npm run build\` before building ${name}`);
  }
  const nodeLink = join(projectRoot, "node_modules", "node", "bin", "node");
  if (!existsSync(nodeLink)) throw new Error(`${nodeLink} is missing: run \`npm ci\` (the \`node\` devDependency)`);
  const node = await realpath(nodeLink);

  return withWorkDir(options.outDir, async (work) => {
    const started = Date.now();
    options.say?.(`[node] image ${name}: building (production npm ci, rootfs, layer)…`);

    // Production dependencies, installed fresh from the lockfile as the Dockerfile's deps stage does.
    const deps = join(work, "deps");
    await mkdir(deps);
    await copyFile(join(projectRoot, "package.json"), join(deps, "package.json"));
    await copyFile(join(projectRoot, "package-lock.json"), join(deps, "package-lock.json"));
    const [, ...installArgs] = runtimeImage.productionInstall;
    const npmBesideNode = join(dirname(process.execPath), "npm");
    await run(existsSync(npmBesideNode) ? npmBesideNode : "npm", [...installArgs, "--prefer-offline"], {
      cwd: deps,
      // npm's `#!/usr/bin/env node` then finds this Node 24, not an older system node.
      env: { ...process.env, PATH: [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter) },
    });

    const rootfs = await emptyRootfs(work);
    const inRootfs = (path: string): string => join(rootfs, path);
    await mkdir(dirname(inRootfs(layout.node)), { recursive: true });
    // The project's Node binary without its debug symbols (distroless ships a stripped one too).
    if (await onPath("strip")) await run("strip", ["-o", inRootfs(layout.node), node]);
    else await copyFile(node, inRootfs(layout.node));
    await chmod(inRootfs(layout.node), 0o755);
    for (const lib of await sharedLibraries(node)) {
      await mkdir(dirname(inRootfs(lib)), { recursive: true });
      await copyFile(lib, inRootfs(lib)); // copyFile follows symlinks: the library itself lands there
    }
    await writeUsers(rootfs, [
      { name: "root", uid: 0, gid: 0, home: "/root" },
      { name: "nonroot", uid: 65532, gid: 65532, home: "/home/nonroot" },
    ]);
    await copyCaCertificates(rootfs);
    await mkdir(inRootfs("/home/nonroot"), { recursive: true });
    const owned = [{ path: "/home/nonroot", uid: 65532, gid: 65532 }];
    await mkdir(dirname(inRootfs(layout.dist)), { recursive: true });
    await cp(dist, inRootfs(layout.dist), { recursive: true });
    await copyFile(join(projectRoot, "package.json"), inRootfs(layout.packageJson));
    await rename(join(deps, "node_modules"), inRootfs(layout.nodeModules));

    const archive = join(options.outDir, "openbao-backup.tar");
    const written = await writeOciArchive({ rootfs, owned, archive, name, config: runtimeImage.config, work });
    say(options, name, written.layerBytes, started);
    return { name, archive, digest: written.digest };
  });
}

/** OpenBao, from the server cache (`npm run servers` builds it): a static binary as /bin/bao. */
export async function buildOpenBaoImage(options: BuildOptions): Promise<BuiltImage> {
  const name = imageNames.openbao;
  const bao = serverBinary("openbao");
  const user = { name: "openbao", uid: 100, gid: 1000, home: "/openbao" };
  const config: ImageConfig = {
    User: `${user.uid}:${user.gid}`,
    WorkingDir: "/openbao",
    // HOME: `bao server -dev` keeps its root token in ~/.bao-token.
    Env: [distrolessEnv[0], `HOME=${user.home}`],
    Entrypoint: ["/bin/bao"],
    Cmd: ["server", "-dev"],
    ExposedPorts: { "8200/tcp": {}, "8201/tcp": {} },
  };
  const archive = join(options.outDir, "openbao.tar");
  const key = await inputKey(name, config, [bao]);
  return cachedImage(options, { name, archive, key }, async (work) => {
    const rootfs = await emptyRootfs(work);
    await mkdir(join(rootfs, "bin"));
    await copyFile(bao, join(rootfs, "bin", "bao"));
    await chmod(join(rootfs, "bin", "bao"), 0o755);
    await writeUsers(rootfs, [{ name: "root", uid: 0, gid: 0, home: "/root" }, user]);
    await copyCaCertificates(rootfs);
    await mkdir(join(rootfs, "openbao"));
    const owned = [{ path: "/openbao", uid: user.uid, gid: user.gid }];
    return writeOciArchive({ rootfs, owned, archive, name, config, work });
  });
}

/** The pod sandbox image: test/node/pause.c, compiled static, as /pause. */
export async function buildPauseImage(options: BuildOptions): Promise<BuiltImage> {
  const name = imageNames.pause;
  const source = join(import.meta.dirname, "pause.c");
  const config: ImageConfig = { User: "65535:65535", Entrypoint: ["/pause"] };
  const archive = join(options.outDir, "pause.tar");
  const key = await inputKey(name, config, [source]);
  return cachedImage(options, { name, archive, key }, async (work) => {
    const rootfs = await emptyRootfs(work);
    await run("gcc", ["-static", "-Os", "-s", "-o", join(rootfs, "pause"), source]);
    return writeOciArchive({ rootfs, owned: [], archive, name, config, work });
  });
}

// ── the OCI image-layout archive ─────────────────────────────────────────────────────────────

const mediaTypes = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

interface ArchiveRequest {
  readonly rootfs: string;
  /** Paths (in the image) that belong to a non-root user; everything else is root's. */
  readonly owned: readonly { readonly path: string; readonly uid: number; readonly gid: number }[];
  readonly archive: string;
  readonly name: string;
  readonly config: ImageConfig;
  /** Scratch space on the archive's file system. */
  readonly work: string;
}

/**
 * Writes `rootfs` as a single-layer OCI image-layout tar: oci-layout, index.json and
 * blobs/sha256/{layer, config, manifest}. The layer is sorted with every mtime at 0, so the
 * same tree gives the same digest.
 */
async function writeOciArchive(request: ArchiveRequest): Promise<{ digest: string; layerBytes: number }> {
  const { rootfs, archive, name, config, work } = request;
  const layoutDir = join(work, "oci");
  const blobs = join(layoutDir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  for (const part of config.Entrypoint ?? []) {
    if (part.startsWith("/") && !existsSync(join(rootfs, part))) {
      throw new Error(`${name}: the entrypoint's ${part} is not in the image`);
    }
  }

  // Ownership: everything this process wrote is its own, i.e. root's when it runs as root (as
  // the node tier does), and chown gives the few non-root paths their owner. Without root,
  // tar records root for every file instead and those paths stay root's.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) for (const { path, uid, gid } of request.owned) await chown(join(rootfs, path), uid, gid);
  const owner = asRoot ? [] : ["--owner=0", "--group=0"];
  const layerFile = join(layoutDir, "layer.tar");
  await run("tar", ["--sort=name", ...owner, "--numeric-owner", "--mtime=@0", "-C", rootfs, "-cf", layerFile, "."]);
  const layer: Descriptor = { mediaType: mediaTypes.layer, ...(await fileDigest(layerFile)) };
  await rename(layerFile, join(blobs, hex(layer.digest)));

  const epoch = new Date(0).toISOString();
  const configBlob = await writeBlob(blobs, mediaTypes.config, {
    created: epoch,
    architecture: ociArchitecture(),
    os: "linux",
    config,
    rootfs: { type: "layers", diff_ids: [layer.digest] },
    history: [{ created: epoch, created_by: "test/node/image.ts" }],
  });
  const manifest = await writeBlob(blobs, mediaTypes.manifest, {
    schemaVersion: 2,
    mediaType: mediaTypes.manifest,
    config: configBlob,
    layers: [layer],
  });
  const index = {
    schemaVersion: 2,
    mediaType: mediaTypes.index,
    manifests: [
      {
        ...manifest,
        platform: { architecture: ociArchitecture(), os: "linux" },
        annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": tagOf(name) },
      },
    ],
  };
  await writeFile(join(layoutDir, "index.json"), JSON.stringify(index));
  await writeFile(join(layoutDir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));

  const partial = join(work, "archive.tar");
  const fixed = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0"];
  await run("tar", [...fixed, "-C", layoutDir, "-cf", partial, "oci-layout", "index.json", "blobs"]);
  await rename(partial, archive);
  return { digest: manifest.digest, layerBytes: layer.size };
}

async function writeBlob(dir: string, mediaType: string, value: object): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  await writeFile(join(dir, hex(digest)), bytes);
  return { mediaType, digest, size: bytes.length };
}

/** Streams a file through sha256 (layers are hundreds of MiB: never read whole). */
async function fileDigest(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return { digest: `sha256:${hash.digest("hex")}`, size: (await stat(path)).size };
}

function hex(digest: string): string {
  return digest.slice("sha256:".length);
}

/** The tag of a reference: after the last ":" that follows the last "/" (a registry port is not one). */
function tagOf(name: string): string {
  const colon = name.lastIndexOf(":");
  if (colon < name.lastIndexOf("/") || colon < 0) throw new Error(`image name ${name} has no tag`);
  return name.slice(colon + 1);
}

const ociArchitectures: Readonly<Record<string, string>> = { x64: "amd64", arm64: "arm64" };

function ociArchitecture(): string {
  const arch = ociArchitectures[process.arch];
  if (!arch) throw new Error(`no OCI architecture for ${process.arch}`);
  return arch;
}

// ── root file systems ────────────────────────────────────────────────────────────────────────

/** A fresh rootfs directory with the world-writable, sticky /tmp every image here needs. */
async function emptyRootfs(work: string): Promise<string> {
  const rootfs = join(work, "rootfs");
  await mkdir(join(rootfs, "tmp"), { recursive: true });
  await chmod(rootfs, 0o755);
  await chmod(join(rootfs, "tmp"), 0o1777);
  return rootfs;
}

interface User {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

async function writeUsers(rootfs: string, users: readonly User[]): Promise<void> {
  await mkdir(join(rootfs, "etc"), { recursive: true });
  const passwd = users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home}:/sbin/nologin\n`);
  const group = users.map((u) => `${u.name}:x:${u.gid}:\n`);
  await writeFile(join(rootfs, "etc", "passwd"), passwd.join(""), { mode: 0o644 });
  await writeFile(join(rootfs, "etc", "group"), group.join(""), { mode: 0o644 });
}

/** The host's CA bundle, where distroless keeps it (and SSL_CERT_FILE points), if the host has one. */
async function copyCaCertificates(rootfs: string): Promise<void> {
  const bundle = "/etc/ssl/certs/ca-certificates.crt";
  if (!existsSync(bundle)) return;
  await mkdir(join(rootfs, dirname(bundle)), { recursive: true });
  await copyFile(bundle, join(rootfs, bundle));
}

/** The absolute paths `ldd` lists for a dynamic executable, the loader included. */
async function sharedLibraries(executable: string): Promise<string[]> {
  const out = await run("ldd", [executable]);
  const missing = out.split("\n").filter((line) => line.includes("not found"));
  if (missing.length > 0) throw new Error(`${executable} needs libraries this host lacks:\n${missing.join("\n")}`);
  const paths = new Set<string>();
  for (const match of out.matchAll(/\/[^\s()]+/g)) paths.add(posix.normalize(match[0]));
  if (paths.size === 0) throw new Error(`ldd found no libraries for ${executable}:\n${out}`);
  return [...paths].sort();
}

// ── reuse, scratch space, processes ──────────────────────────────────────────────────────────

/** The key a reusable image is cached by: its name, config, the writer's shape and its inputs' bytes. */
async function inputKey(name: string, config: ImageConfig, files: readonly string[]): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify({ writer: 1, name, config, arch: ociArchitecture() }));
  for (const file of files) hash.update((await fileDigest(file)).digest);
  return hash.digest("hex");
}

interface CacheRecord {
  readonly key: string;
  readonly name: string;
  readonly digest: string;
}

function isCacheRecord(value: unknown): value is CacheRecord {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.key === "string" && typeof record.name === "string" && typeof record.digest === "string";
}

/** Reuses `archive` when its record says it was built from `key`; otherwise builds and records it. */
async function cachedImage(
  options: BuildOptions,
  target: { readonly name: string; readonly archive: string; readonly key: string },
  build: (work: string) => Promise<{ digest: string; layerBytes: number }>,
): Promise<BuiltImage> {
  const { name, archive, key } = target;
  const recordPath = `${archive}.json`;
  if (existsSync(archive) && existsSync(recordPath)) {
    let record: unknown;
    try {
      record = JSON.parse(await readFile(recordPath, "utf8"));
    } catch {
      record = undefined; // a torn record: build again
    }
    if (isCacheRecord(record) && record.key === key && record.name === name) {
      options.say?.(`[node] image ${name}: reused ${archive}`);
      return { name, archive, digest: record.digest };
    }
  }
  return withWorkDir(options.outDir, async (work) => {
    const started = Date.now();
    const { digest, layerBytes } = await build(work);
    const record: CacheRecord = { key, name, digest };
    await writeFile(recordPath, `${JSON.stringify(record)}\n`);
    say(options, name, layerBytes, started);
    return { name, archive, digest };
  });
}

/** Runs `fn` in a scratch directory inside `outDir` (same file system: renames are cheap and atomic). */
async function withWorkDir<T>(outDir: string, fn: (work: string) => Promise<T>): Promise<T> {
  await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(join(outDir, ".work-"));
  try {
    return await fn(work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function say(options: BuildOptions, name: string, layerBytes: number, started: number): void {
  const mib = Math.round(layerBytes / 2 ** 20);
  const seconds = Math.round((Date.now() - started) / 1000);
  options.say?.(`[node] image ${name}: ${mib} MiB layer in ${seconds} s`);
}

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Runs a command to completion; resolves with its stdout, rejects with the end of its output. */
function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    let tail = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout.push(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString());
      else reject(new Error(`${command} ${args.join(" ")} failed (${signal ?? `exit ${code}`}):\n${tail}`));
    });
  });
}
