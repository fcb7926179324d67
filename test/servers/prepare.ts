/**
 * Builds or installs every server the tests use, into the cache of catalog.ts, printing
 * progress while it works. Already-built servers are reused. Run: `npm run servers`.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { ensureNodeRuntime } from "../node/runtime.ts";
import { azuriteEntry, binaryPath, cacheRoot, type ServerSpec, servers, wrapperDir } from "./catalog.ts";

const goEnv = {
  ...process.env,
  CGO_ENABLED: "0",
  // Wrapper modules resolve their go.sum entries on first build; later builds are exact.
  GOFLAGS: "-mod=mod -trimpath",
  // OpenBao's go-kms-wrapping wrapper modules are not in the public checksum database
  // (lookups answer 404); the proxy still serves them and our committed go.sum pins them.
  GONOSUMDB: "github.com/openbao",
};

function log(line: string): void {
  process.stdout.write(`[servers] ${line}\n`);
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const keep = (chunk: Buffer): void => {
      tail = (tail + chunk.toString()).slice(-8000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    // A cold build of kube-apiserver takes many minutes: say that it is still alive.
    const ticker = setInterval(() => {
      const s = Math.round((Date.now() - started) / 1000);
      log(`  … still building ${label} (${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s)`);
    }, 30_000);
    child.on("error", (err) => {
      clearInterval(ticker);
      reject(err);
    });
    child.on("close", (code) => {
      clearInterval(ticker);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code} in ${cwd}:\n${tail}`));
    });
  });
}

async function build(spec: ServerSpec): Promise<void> {
  const target = binaryPath(spec);
  if (existsSync(target)) {
    log(`${spec.label}: cached at ${target}`);
    return;
  }
  const started = Date.now();
  log(`${spec.label}: building (first run only; cached afterwards)…`);
  mkdirSync(join(cacheRoot, "tmp"), { recursive: true });
  const staging = mkdtempSync(join(cacheRoot, "tmp", `${spec.name}-`));
  try {
    const out = join(staging, spec.binary);
    if (spec.recipe.kind === "wrapper") {
      const ldflags = spec.recipe.ldflags ? ["-ldflags", spec.recipe.ldflags.join(" ")] : [];
      const tags = spec.recipe.tags ? ["-tags", spec.recipe.tags.join(",")] : [];
      // `-o dir/` writes each package's binary under its own name: one link per command,
      // one module graph and build cache for all of them.
      const output = spec.recipe.pkgs.length > 1 ? `${staging}/` : out;
      await run(
        "go",
        ["build", ...ldflags, ...tags, "-o", output, ...spec.recipe.pkgs],
        wrapperDir({ ...spec, recipe: spec.recipe }),
        goEnv,
        spec.label,
      );
    } else {
      await run(
        "go",
        ["install", `${spec.recipe.module}@${spec.recipe.version}`],
        staging,
        { ...goEnv, GOBIN: staging, GOFLAGS: "-trimpath" },
        spec.label,
      );
      const installed = join(staging, spec.recipe.module.split("/").pop() ?? spec.binary);
      if (installed !== out) renameSync(installed, out);
    }
    // Publish atomically so an interrupted build never leaves a half-written binary cached:
    // the named binary is what `existsSync(target)` checks, so it moves last.
    mkdirSync(dirname(target), { recursive: true });
    for (const file of readdirSync(staging))
      if (file !== spec.binary) renameSync(join(staging, file), join(dirname(target), file));
    renameSync(out, target);
    log(`${spec.label}: built in ${Math.round((Date.now() - started) / 1000)}s → ${target}`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Prepares every server, or only the named ones (`node test/servers/prepare.ts minio`). */
export async function prepareServers(only: readonly string[] = []): Promise<void> {
  const started = Date.now();
  log(`cache: ${cacheRoot}`);
  for (const spec of servers) {
    if (only.length === 0 || only.includes(spec.name)) await build(spec);
  }
  if (!existsSync(azuriteEntry())) throw new Error("azurite is missing from node_modules: run `npm ci` first");
  log("Azurite: from node_modules (npm devDependency)");
  if (only.length === 0) await ensureNodeRuntime(log);
  log(`all servers ready in ${Math.round((Date.now() - started) / 1000)}s`);
}

if (import.meta.main) {
  await prepareServers(process.argv.slice(2));
}
