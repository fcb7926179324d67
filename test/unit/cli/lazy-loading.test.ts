/**
 * The executor's start-up footprint (BENCHMARKS.md, finding 2): `bao-backup` routes without
 * loading any command, a backup loads no Kubernetes client, and a store loads only its own
 * provider's SDK. Each case runs in a fresh Node process that records every module it
 * resolves (module.registerHooks), so a static import slipping back in fails the test.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { projectRoot } from "../../servers/catalog.ts";

const url = (...path: string[]): string => pathToFileURL(join(projectRoot, ...path)).href;

/** Runs `body` (an ES module snippet) in a child process; returns the packages it loaded. */
function packagesLoadedBy(body: string): string[] {
  const script = `
    import { registerHooks } from "node:module";
    const loaded = new Set();
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.add(r.url); return r; } });
    ${body}
    const packages = new Set();
    for (const u of loaded) {
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(u);
      if (m) packages.add(m[1]);
    }
    process.stderr.write("\\n" + JSON.stringify([...packages]) + "\\n");
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stderr.trim().split("\n").at(-1) ?? "[]") as string[];
}

const heavy = ["@kubernetes/client-node", "@aws-sdk/client-s3", "@google-cloud/storage", "@azure/storage-blob"];

test("bao-backup --help loads none of the commands' libraries", () => {
  const packages = packagesLoadedBy(`
    const { main } = await import(${JSON.stringify(url("src", "cli", "main.ts"))});
    process.stdout.write = () => true;
    await main(["--help"]);
  `);
  assert.deepEqual(
    packages.filter((p) => heavy.includes(p)),
    [],
  );
});

test("the executor's commands load neither the Kubernetes client nor any storage SDK before a store opens", () => {
  // A storage SDK is loaded by loadObjectStore for the target's provider only: a static import of
  // storage/index.ts (whose synchronous openObjectStore imports all three) costs ~33 MiB of RSS.
  for (const mode of ["backup", "restore", "confirm", "drill"]) {
    const packages = packagesLoadedBy(`
      const { main } = await import(${JSON.stringify(url("src", "cli", "main.ts"))});
      process.stdout.write = () => true;
      await main([${JSON.stringify(mode)}, "--help"]);
    `);
    assert.deepEqual(
      packages.filter((p) => heavy.includes(p)),
      [],
      `bao-backup ${mode} loaded: ${packages.join(", ")}`,
    );
  }
});

test("loadObjectStore loads only the target's own provider SDK", () => {
  const targets = [
    { spec: { provider: "s3", bucket: "b", endpoint: "http://127.0.0.1:1" }, own: "@aws-sdk/client-s3" },
    { spec: { provider: "gcs", bucket: "b", endpoint: "http://127.0.0.1:1" }, own: "@google-cloud/storage" },
    {
      spec: { provider: "azure", bucket: "b", endpoint: "http://127.0.0.1:1/acct", azure: { storageAccount: "acct" } },
      own: "@azure/storage-blob",
    },
  ];
  const credentials: Record<string, Record<string, string>> = {
    s3: { accessKeyId: "id", secretAccessKey: "secret" },
    gcs: {},
    azure: { accountKey: Buffer.from("key").toString("base64") },
  };
  for (const { spec, own } of targets) {
    const packages = packagesLoadedBy(`
      const { loadObjectStore } = await import(${JSON.stringify(url("src", "storage", "load.ts"))});
      const { parseTarget } = await import(${JSON.stringify(url("src", "storage", "target.ts"))});
      const store = await loadObjectStore(parseTarget(${JSON.stringify(spec)}), ${JSON.stringify(credentials[spec.provider])});
      await store.close();
    `);
    assert.ok(packages.includes(own), `${spec.provider}: ${own} not loaded (${packages.join(", ")})`);
    const others = packages.filter((p) => heavy.includes(p) && p !== own);
    assert.deepEqual(others, [], `${spec.provider} loaded other SDKs`);
  }
});
