/**
 * Writes the CustomResourceDefinitions in `deploy/crds/` and the Helm chart's copy in
 * `deploy/chart/crds/` from `src/api/schema.ts`, the one source of truth. `--check` writes nothing and exits 1 when a file is missing or differs
 * (test/unit/api/schema.test.ts makes the same check).
 *
 *   node scripts/generate-crds.ts [--check]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crdFiles } from "../src/api/schema.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
let stale = 0;

// Helm installs CRDs only from the chart's own crds/ directory, hence the second copy.
const outputs = crdFiles().flatMap((file) => [file, { ...file, path: join("deploy/chart/crds", basename(file.path)) }]);

for (const file of outputs) {
  const target = join(root, file.path);
  let current: string | undefined;
  try {
    current = readFileSync(target, "utf8");
  } catch {
    current = undefined;
  }
  if (current === file.content) {
    process.stdout.write(`${file.path}: up to date\n`);
    continue;
  }
  if (check) {
    stale += 1;
    process.stdout.write(`${file.path}: ${current === undefined ? "missing" : "out of date"}\n`);
    continue;
  }
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, file.content);
  process.stdout.write(`${file.path}: written\n`);
}

if (stale > 0) {
  process.stderr.write("CRDs are out of date: run `node scripts/generate-crds.ts`\n");
  process.exitCode = 1;
}
