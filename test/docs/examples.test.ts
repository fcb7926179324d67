/**
 * Issue 7, docs: every example in README.md and docs/**\/*.md is exercised.
 *
 * Each fenced block is exactly one of:
 * - a ```yaml block of whole Kubernetes objects (OpenBaoCluster, OpenBaoRestore, Secret, …):
 *   applied to the real kube-apiserver with the CRDs installed, server-side dry-run
 *   (`dryRun=All`) and strict field validation;
 * - a ```yaml block marked `<!-- fragment -->` (e.g. a `target:` snippet): placed into a
 *   minimal OpenBaoCluster at the level its keys belong to (the object, `spec`,
 *   `spec.backup` or `spec.backup.target`, decided from the CRD schema) and dry-run likewise;
 * - a shell block whose every command is `bao-backup <sub> …`: the subcommand's `--help` must
 *   succeed and name every flag the command uses (also for inline `bao-backup …` code spans);
 * - a block marked `<!-- not-run: reason -->` (other tools: kubectl, helm, bao, gcloud, IAM
 *   JSON, PromQL, diagrams), which may not contain a `bao-backup` command;
 * - a shell block marked `<!-- run-by: <test file> [role] -->`: run literally by that test
 *   (e.g. the workstation disaster recovery, test/docs/workstation-restore.test.ts), which
 *   must exist; its `bao-backup` commands are checked against `--help` here as well.
 * Any other block fails the test, so a new example cannot go unexercised.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
// js-yaml is the YAML parser of @kubernetes/client-node (a runtime dependency). Its own
// `loadAllYaml` would pass each object through the client's model serializer, which drops
// fields it does not know; the raw documents are what a user would apply.
import { loadAll } from "js-yaml";
import { clusterCrdManifest, crds, type Schema } from "../../src/api/schema.ts";
import { projectRoot } from "../servers/catalog.ts";
import { type KubeHandle, kubePost, startKube } from "../servers/kube.ts";
import { superviseServers } from "../servers/process.ts";

superviseServers();

type JsonObject = Record<string, unknown>;

interface Block {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly body: string;
  /** The HTML comment right before the fence (blank lines allowed in between), without `<!--`/`-->`. */
  readonly marker: string | undefined;
}

interface Example {
  readonly where: string;
  readonly object: JsonObject;
}

const shellLanguages = new Set(["sh", "bash", "shell", "console"]);
const fragmentNamespace = "docs-examples";

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function markdownFiles(): string[] {
  const out = [join(projectRoot, "README.md")];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".md")) out.push(path);
    }
  };
  walk(join(projectRoot, "docs"));
  return out.sort();
}

/** Fenced blocks and the prose outside them. */
function parseMarkdown(file: string): { blocks: Block[]; prose: string[] } {
  const lines = readFileSync(file, "utf8").split("\n");
  const blocks: Block[] = [];
  const prose: string[] = [];
  const name = relative(projectRoot, file);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const open = /^```\s*([A-Za-z0-9_-]*)\s*$/.exec(line);
    if (!open) {
      prose.push(line);
      continue;
    }
    let marker: string | undefined;
    for (let j = i - 1; j >= 0; j--) {
      const before = (lines[j] ?? "").trim();
      if (before === "") continue;
      const comment = /^<!--\s*(.*?)\s*-->$/.exec(before);
      if (comment) marker = comment[1];
      break;
    }
    const body: string[] = [];
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? "")) body.push(lines[end++] ?? "");
    assert.ok(end < lines.length, `${name}:${i + 1}: the fence is never closed`);
    blocks.push({ file: name, line: i + 1, lang: open[1] ?? "", body: body.join("\n"), marker });
    i = end;
  }
  return { blocks, prose };
}

// ── bao-backup command lines ───────────────────────────────────────────────────────────────

/** Splits a command line like a shell would for our purposes: quotes and `<placeholders>` are one word. */
function words(command: string): string[] {
  const out: string[] = [];
  let current = "";
  let quote: string | undefined;
  let angle = false;
  for (const ch of command) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else current += ch;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "<") {
      angle = true;
      current += ch;
    } else if (ch === ">") {
      angle = false;
      current += ch;
    } else if (/\s/.test(ch) && !angle) {
      if (current !== "") out.push(current);
      current = "";
    } else current += ch;
  }
  assert.equal(quote, undefined, `unterminated quote in: ${command}`);
  if (current !== "") out.push(current);
  return out;
}

/** The logical command lines of a shell block: continuations joined, comments removed. */
function commandLines(body: string): string[] {
  const joined = body.replace(/\\\n/g, " ");
  return joined
    .split("\n")
    .map((line) => line.replace(/(^|\s)#.*$/, "").trim())
    .filter((line) => line !== "");
}

interface Command {
  readonly where: string;
  readonly text: string;
  readonly sub: string;
  readonly flags: readonly string[];
}

function parseCommand(where: string, text: string): Command {
  const [program, sub, ...rest] = words(text);
  assert.equal(program, "bao-backup", `${where}: not a bao-backup command: ${text}`);
  assert.ok(sub !== undefined && /^[a-z][a-z-]*$/.test(sub), `${where}: no subcommand in: ${text}`);
  const flags = rest.filter((w) => w.startsWith("-")).map((w) => w.split("=", 1)[0] ?? w);
  return { where, text, sub, flags };
}

const helpCache = new Map<string, string>();
function helpOf(sub: string): string {
  const cached = helpCache.get(sub);
  if (cached !== undefined) return cached;
  const run = spawnSync(process.execPath, [join(projectRoot, "src", "cli", "main.ts"), sub, "--help"], {
    cwd: projectRoot,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `bao-backup ${sub} --help exits ${run.status}: ${run.stderr}`);
  assert.match(run.stdout, new RegExp(`Usage: bao-backup ${sub}\\b`), `bao-backup ${sub} --help prints its usage`);
  helpCache.set(sub, run.stdout);
  return run.stdout;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// ── the Kubernetes side ────────────────────────────────────────────────────────────────────

const resources: Readonly<Record<string, { prefix: string; plural: string }>> = {
  Secret: { prefix: "/api/v1", plural: "secrets" },
  ServiceAccount: { prefix: "/api/v1", plural: "serviceaccounts" },
  ConfigMap: { prefix: "/api/v1", plural: "configmaps" },
  OpenBaoCluster: { prefix: "/apis/openbao.org/v1alpha1", plural: "openbaoclusters" },
  OpenBaoRestore: { prefix: "/apis/openbao.org/v1alpha1", plural: "openbaorestores" },
};

function wholeObjects(block: Block): Example[] {
  const docs = loadAll(block.body).filter((d) => d !== null && d !== undefined);
  assert.ok(docs.length > 0, `${block.file}:${block.line}: an empty yaml block`);
  return docs.map((doc, i) => {
    const where = `${block.file}:${block.line}${docs.length > 1 ? ` (document ${i + 1})` : ""}`;
    assert.ok(isObject(doc), `${where}: not a YAML mapping`);
    const kind = doc.kind;
    assert.ok(
      typeof doc.apiVersion === "string" && typeof kind === "string" && isObject(doc.metadata),
      `${where}: not a whole Kubernetes object (apiVersion, kind, metadata); mark a fragment with <!-- fragment -->`,
    );
    assert.ok(resources[kind], `${where}: test/docs/examples.test.ts does not know where ${kind} is served`);
    assert.equal(typeof doc.metadata.namespace, "string", `${where}: give the example a namespace`);
    return { where, object: doc };
  });
}

/** Property names of an object schema. */
function propertiesOf(schema: Schema | undefined): Set<string> {
  return new Set(Object.keys(schema?.properties ?? {}));
}

const clusterSchema = clusterCrdManifest().spec.versions[0]?.schema.openAPIV3Schema;
const specSchema = clusterSchema?.properties?.spec;
const backupSchema = specSchema?.properties?.backup;
const targetSchemaOfBackup = backupSchema?.properties?.target;
/** Where a fragment can sit, shallowest first: its keys decide. */
const levels: readonly { path: readonly string[]; keys: Set<string> }[] = [
  { path: [], keys: new Set(["metadata", "spec"]) },
  { path: ["spec"], keys: propertiesOf(specSchema) },
  { path: ["spec", "backup"], keys: propertiesOf(backupSchema) },
  { path: ["spec", "backup", "target"], keys: propertiesOf(targetSchemaOfBackup) },
];

function baseCluster(name: string): JsonObject {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name, namespace: fragmentNamespace },
    spec: {
      replicas: 3,
      backup: { schedule: "@daily", jwtAuthRole: "backup", target: { bucket: "docs-examples" } },
    },
  };
}

/**
 * Deep merge of `over` into `base`. A `target` is replaced whole (a fragment's target is a
 * complete one), and a fragment's `tokenSecretRef` replaces the base's `jwtAuthRole`.
 */
function merge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  if ("tokenSecretRef" in over) delete out.jwtAuthRole;
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = key !== "target" && isObject(current) && isObject(value) ? merge(current, value) : value;
  }
  return out;
}

function fragmentObject(block: Block, index: number): Example {
  const where = `${block.file}:${block.line} (fragment)`;
  assert.equal(block.lang, "yaml", `${where}: only yaml blocks can be fragments`);
  const docs = loadAll(block.body);
  assert.equal(docs.length, 1, `${where}: one YAML document per fragment`);
  const [fragment] = docs;
  assert.ok(isObject(fragment), `${where}: not a YAML mapping`);
  const keys = Object.keys(fragment);
  const level = levels.find((l) => keys.length > 0 && keys.every((k) => l.keys.has(k)));
  assert.ok(level, `${where}: keys ${keys.join(", ")} belong to no level of an OpenBaoCluster`);
  let wrapped: JsonObject = fragment;
  for (const key of [...level.path].reverse()) wrapped = { [key]: wrapped };
  const object = merge(baseCluster(`docs-fragment-${index}`), wrapped);
  if (isObject(object.metadata)) object.metadata = { ...object.metadata, namespace: fragmentNamespace };
  return { where, object };
}

function dryRun(kube: KubeHandle, object: JsonObject): Promise<{ status: number; body: string }> {
  const kind = String(object.kind);
  const where = resources[kind];
  if (!where) throw new Error(`unknown kind ${kind}`);
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const url = `${where.prefix}/namespaces/${String(metadata.namespace)}/${where.plural}?dryRun=All&fieldValidation=Strict`;
  return kubePost(kube, url, object);
}

// ── the examples ───────────────────────────────────────────────────────────────────────────

const files = markdownFiles();
const parsed = files.map(parseMarkdown);
const blocks = parsed.flatMap((p) => p.blocks);

const objects: Example[] = [];
const fragments: Example[] = [];
const commands: Command[] = [];
const notRun: Block[] = [];
const uncovered: string[] = [];

for (const block of blocks) {
  const where = `${block.file}:${block.line}`;
  const marker = block.marker;
  const runBy = marker === undefined ? undefined : /^run-by:\s*(\S+)/.exec(marker)?.[1];
  if (marker !== undefined && /^not-run:\s*\S/.test(marker)) {
    notRun.push(block);
  } else if (runBy !== undefined) {
    if (!shellLanguages.has(block.lang) || !existsSync(join(projectRoot, runBy))) {
      uncovered.push(`${where}: <!-- run-by: ${runBy} --> needs a shell block and an existing test file`);
    }
    for (const line of commandLines(block.body)) {
      if (line.startsWith("bao-backup ")) commands.push(parseCommand(where, line));
    }
  } else if (marker === "fragment") {
    fragments.push(fragmentObject(block, fragments.length + 1));
  } else if (marker !== undefined) {
    uncovered.push(
      `${where}: unknown marker <!-- ${marker} --> (use "fragment", "not-run: <reason>" or "run-by: <test file>")`,
    );
  } else if (block.lang === "yaml") {
    objects.push(...wholeObjects(block));
  } else if (shellLanguages.has(block.lang)) {
    for (const line of commandLines(block.body)) {
      if (line.startsWith("bao-backup ")) commands.push(parseCommand(where, line));
      else uncovered.push(`${where}: "${line}" is not a bao-backup command; mark the block <!-- not-run: reason -->`);
    }
  } else {
    uncovered.push(`${where}: a \`\`\`${block.lang} block that no test exercises; mark it <!-- not-run: reason -->`);
  }
}
for (const [i, p] of parsed.entries()) {
  const file = relative(projectRoot, files[i] ?? "");
  for (const match of p.prose.join("\n").matchAll(/`(bao-backup [a-z][^`]*)`/g)) {
    const text = match[1] ?? "";
    // Inline mentions such as `bao-backup list` or `bao-backup verify <key>`.
    commands.push(parseCommand(`${file} (inline)`, text));
  }
}

describe("documentation examples", () => {
  test("every fenced block is exercised, or marked not-run with a reason", () => {
    assert.ok(files.length >= 9, `README.md and the docs pages: ${files.map((f) => relative(projectRoot, f))}`);
    assert.deepEqual(uncovered, []);
    for (const block of notRun) {
      for (const line of commandLines(block.body)) {
        assert.ok(
          !line.startsWith("bao-backup "),
          `${block.file}:${block.line}: a not-run block hides a bao-backup command: ${line}`,
        );
      }
    }
    assert.ok(objects.length >= 15, `whole objects: ${objects.length}`);
    assert.ok(fragments.length >= 8, `fragments: ${fragments.length}`);
    assert.ok(commands.length >= 15, `bao-backup commands: ${commands.length}`);
  });

  test("every bao-backup command shown names a subcommand and only flags its --help lists", () => {
    const main = spawnSync(process.execPath, [join(projectRoot, "src", "cli", "main.ts"), "--help"], {
      cwd: projectRoot,
      encoding: "utf8",
    });
    assert.equal(main.status, 0);
    const problems: string[] = [];
    for (const command of commands) {
      if (!new RegExp(`^  ${escapeRegExp(command.sub)} `, "m").test(main.stdout)) {
        problems.push(`${command.where}: unknown subcommand in: ${command.text}`);
        continue;
      }
      const help = helpOf(command.sub);
      for (const flag of command.flags) {
        if (flag === "--help" || flag === "-h") continue;
        if (!new RegExp(`(^|[\\s,(\\[])${escapeRegExp(flag)}(?=$|[\\s,)\\]=])`, "m").test(help)) {
          problems.push(`${command.where}: ${flag} is not in \`bao-backup ${command.sub} --help\`: ${command.text}`);
        }
      }
    }
    assert.deepEqual(problems, []);
    const subs = new Set(commands.map((c) => c.sub));
    for (const sub of ["operator", "backup", "list", "verify", "trigger", "status", "prune", "auth-setup"]) {
      assert.ok(subs.has(sub), `the docs show bao-backup ${sub}`);
    }
  });

  describe("against the real kube-apiserver (server-side dry-run, strict field validation)", () => {
    let kube: KubeHandle | undefined;
    const api = (): KubeHandle => {
      assert.ok(kube, "kube-apiserver started");
      return kube;
    };

    before(async () => {
      kube = await startKube({ name: "docs-kube" });
      await kube.installCrds(crds());
      const namespaces = new Set([fragmentNamespace]);
      for (const { object } of objects) {
        if (isObject(object.metadata) && typeof object.metadata.namespace === "string") {
          namespaces.add(object.metadata.namespace);
        }
      }
      for (const ns of namespaces) await kube.createNamespace(ns);
    });

    after(async () => {
      await kube?.stop();
    });

    test("the dry-run refuses what the CRDs refuse (the checks below can fail)", async () => {
      const tooSmall = merge(baseCluster("docs-negative"), {
        spec: { backup: { target: { bucket: "b", partSize: 1024 } } },
      });
      const invalid = await dryRun(api(), tooSmall);
      assert.equal(invalid.status, 422, invalid.body);
      const misspelt = merge(baseCluster("docs-negative"), { spec: { backup: { target: { bukket: "b" } } } });
      const unknown = await dryRun(api(), misspelt);
      assert.equal(unknown.status, 400, unknown.body);
      assert.match(unknown.body, /bukket/);
    });

    test("every whole object in the docs is accepted", async () => {
      const problems: string[] = [];
      for (const { where, object } of objects) {
        const res = await dryRun(api(), object);
        if (res.status !== 201 && res.status !== 200) problems.push(`${where}: HTTP ${res.status} ${res.body}`);
      }
      assert.deepEqual(problems, []);
    });

    test("every fragment, inside a minimal OpenBaoCluster, is accepted", async () => {
      const problems: string[] = [];
      for (const { where, object } of fragments) {
        const res = await dryRun(api(), object);
        if (res.status !== 201 && res.status !== 200) {
          problems.push(`${where}: HTTP ${res.status} ${res.body}\n${JSON.stringify(object)}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  });
});
