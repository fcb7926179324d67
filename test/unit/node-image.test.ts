/**
 * The node tier (test/node) cannot build the Dockerfile: there is no Docker daemon and no
 * registry. It writes the product's image itself from `runtimeImage` (test/node/image.ts).
 * This test keeps the two in step. It parses the Dockerfile's `runtime` stage and checks that it
 * agrees with `runtimeImage` on the base, USER, WORKDIR, ENV, ENTRYPOINT, CMD, EXPOSE and LABEL.
 * Every COPY destination must be in the layout, and the deps stage must install what the node
 * image installs. A change on either side fails here; the last test edits a copy of the
 * Dockerfile to show it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { describe, test } from "node:test";
import { imageNodeFlags } from "../../src/cli/node-flags.ts";
import { type RuntimeImage, runtimeImage } from "../node/image.ts";

const projectRoot = join(import.meta.dirname, "..", "..");
const dockerfile = readFileSync(join(projectRoot, "Dockerfile"), "utf8");

// ── a Dockerfile parser: just the instructions and forms this project's Dockerfile uses ─────────

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/**
 * Logical instructions: comment lines (also inside a continuation, as BuildKit drops them) and
 * blank lines dropped, `\` line continuations joined.
 */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split("\n").forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith("#") || (trimmed === "" && pending === undefined)) return;
    const continues = /\\\s*$/.test(raw);
    const part = continues ? raw.replace(/\\\s*$/, "") : raw;
    pending = pending === undefined ? { text: part, line: index + 1 } : { ...pending, text: `${pending.text} ${part}` };
    if (continues) return;
    const match = /^\s*(\S+)\s*(.*)$/s.exec(pending.text);
    if (match?.[1] !== undefined && match[2] !== undefined) {
      out.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: pending.line });
    }
    pending = undefined;
  });
  if (pending !== undefined) throw new Error(`Dockerfile ends inside a continuation (line ${pending.line})`);
  return out;
}

/** Shell-like words: whitespace-separated, with "…" and '…' quoting and \ escapes. */
function words(text: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) word = (word ?? "") + text.charAt(++i);
      else word = (word ?? "") + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= "";
    } else if (c === "\\" && i + 1 < text.length) {
      word = (word ?? "") + text.charAt(++i);
    } else if (/\s/.test(c)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote !== undefined) throw new Error(`unterminated quote in: ${text}`);
  if (word !== undefined) out.push(word);
  return out;
}

/** ENTRYPOINT/CMD/COPY arguments: the JSON-array (exec) form, else `undefined`. */
function jsonForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    if (Array.isArray(parsed) && parsed.every((p): p is string => typeof p === "string")) return parsed;
  } catch {
    // Not valid JSON: Docker then treats it as the shell form.
  }
  return undefined;
}

/** ENTRYPOINT/CMD as the image config records them: the exec form as is, the shell form via /bin/sh -c. */
function command(args: string): string[] {
  return jsonForm(args) ?? ["/bin/sh", "-c", args];
}

/** ENV/LABEL `key=value …` pairs, or the legacy single `key value` form. */
function pairs(args: string): [string, string][] {
  const list = words(args);
  const [first, ...rest] = list;
  if (first !== undefined && !first.includes("=")) return [[first, rest.join(" ")]];
  return list.map((w): [string, string] => {
    const eq = w.indexOf("=");
    if (eq <= 0) throw new Error(`expected key=value, got ${w}`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** `$NAME` and `${NAME}` from the ARGs given before the first FROM. */
function substitute(text: string, args: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const value = args.get(braced ?? bare ?? "");
    if (value === undefined) throw new Error(`undefined build argument in ${whole}`);
    return value;
  });
}

interface Copy {
  readonly from: string | undefined;
  readonly sources: readonly string[];
  /** Where each source lands in the image: a destination ending in "/" takes the source's name. */
  readonly targets: readonly string[];
}

interface Stage {
  readonly name: string | undefined;
  readonly base: string;
  readonly user: string | undefined;
  readonly workdir: string;
  readonly env: readonly [string, string][];
  readonly labels: Readonly<Record<string, string>>;
  readonly exposed: readonly string[];
  readonly entrypoint: readonly string[] | undefined;
  readonly cmd: readonly string[] | undefined;
  readonly copies: readonly Copy[];
  readonly runs: readonly string[];
}

function stages(text: string): Stage[] {
  const globalArgs = new Map<string, string>();
  const out: Stage[] = [];
  type Mutable<T> = { -readonly [K in keyof T]: T[K] };
  let stage: Mutable<Stage> | undefined;
  for (const { keyword, args, line } of instructions(text)) {
    if (keyword === "FROM") {
      const [base, as, name, ...extra] = words(args).filter((w) => !w.startsWith("--platform="));
      const named = as === undefined || (as.toUpperCase() === "AS" && name !== undefined);
      if (base === undefined || !named || extra.length > 0) throw new Error(`line ${line}: cannot read FROM ${args}`);
      stage = {
        name,
        base: substitute(base, globalArgs),
        user: undefined,
        workdir: "/",
        env: [],
        labels: {},
        exposed: [],
        entrypoint: undefined,
        cmd: undefined,
        copies: [],
        runs: [],
      };
      out.push(stage);
      continue;
    }
    if (stage === undefined) {
      if (keyword !== "ARG") throw new Error(`line ${line}: ${keyword} before the first FROM`);
      const [key, value] = words(args)[0]?.split("=") ?? [];
      if (key !== undefined && value !== undefined) globalArgs.set(key, value);
      continue;
    }
    switch (keyword) {
      case "USER":
        stage.user = args;
        break;
      case "WORKDIR":
        stage.workdir = posix.resolve(stage.workdir, args);
        break;
      case "ENV":
        for (const [key, value] of pairs(args)) stage.env = [...stage.env.filter(([k]) => k !== key), [key, value]];
        break;
      case "LABEL":
        stage.labels = { ...stage.labels, ...Object.fromEntries(pairs(args)) };
        break;
      case "EXPOSE":
        stage.exposed = [...stage.exposed, ...words(args).map((p) => (p.includes("/") ? p : `${p}/tcp`))];
        break;
      case "ENTRYPOINT":
        stage.entrypoint = command(args);
        stage.cmd = undefined; // Docker drops an inherited CMD when ENTRYPOINT is set
        break;
      case "CMD":
        stage.cmd = command(args);
        break;
      case "RUN":
        stage.runs = [...stage.runs, args];
        break;
      case "COPY": {
        // Leading --flags, then the paths in the JSON-array or the whitespace-separated form.
        const split = /^((?:--\S+\s+)*)(.*)$/s.exec(args);
        const flags = words(split?.[1] ?? "");
        const rest = split?.[2] ?? "";
        const paths = jsonForm(rest) ?? words(rest);
        const dest = paths.at(-1);
        const sources = paths.slice(0, -1);
        if (dest === undefined || sources.length === 0) throw new Error(`line ${line}: cannot read COPY ${args}`);
        const absolute = posix.resolve(stage.workdir, dest);
        const targets = dest.endsWith("/")
          ? sources.map((s) => posix.join(absolute, posix.basename(s)))
          : sources.length === 1
            ? [absolute]
            : assert.fail(`line ${line}: several sources need a destination ending in /`);
        const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
        stage.copies = [...stage.copies, { from, sources, targets }];
        break;
      }
      default:
        break;
    }
  }
  return out;
}

function stage(text: string, name: string): Stage {
  const found = stages(text).find((s) => s.name === name);
  if (!found) throw new Error(`the Dockerfile has no stage named ${name}`);
  return found;
}

/**
 * Every way the Dockerfile's runtime stage and `image` disagree, as readable lines; empty
 * when they agree.
 */
function disagreements(text: string, image: RuntimeImage): string[] {
  const problems: string[] = [];
  const check = (what: string, dockerfileSays: unknown, imageSays: unknown): void => {
    try {
      assert.deepEqual(imageSays, dockerfileSays);
    } catch {
      problems.push(`${what}: Dockerfile ${JSON.stringify(dockerfileSays)}, runtimeImage ${JSON.stringify(imageSays)}`);
    }
  };
  const runtime = stage(text, "runtime");
  const { config, layout } = image;

  check("FROM", runtime.base, image.base.image);
  check("USER", runtime.user, config.User);
  check("WORKDIR", runtime.workdir, config.WorkingDir);
  // The stage's ENV lines extend (or override) the base image's Env.
  const env = new Map(image.base.env.map((e): [string, string] => [e.slice(0, e.indexOf("=")), e]));
  for (const [key, value] of runtime.env) env.set(key, `${key}=${value}`);
  check("ENV", [...env.values()], config.Env);
  check("ENTRYPOINT", runtime.entrypoint, config.Entrypoint);
  check("CMD", runtime.cmd, config.Cmd);
  check("EXPOSE", Object.fromEntries(runtime.exposed.map((p) => [p, {}])), config.ExposedPorts);
  check("LABEL", runtime.labels, config.Labels);
  check("ENTRYPOINT[0] is the layout's node", runtime.entrypoint?.[0], layout.node);

  // Where each COPY lands, and what it brings: the layout names the same paths.
  const copied = runtime.copies.flatMap((c) => c.targets.map((t) => ({ target: t, from: c.from })));
  check(
    "COPY destinations",
    copied.map((c) => c.target).sort(),
    [layout.dist, layout.nodeModules, layout.packageJson].sort(),
  );
  const fromStage = (target: string): string | undefined => copied.find((c) => c.target === target)?.from;
  check("node_modules comes from the deps stage", fromStage(layout.nodeModules), "deps");
  check("dist comes from the build stage", fromStage(layout.dist), "build");
  check("package.json comes from the build context", fromStage(layout.packageJson), undefined);
  const entryScript = runtime.entrypoint?.find((a) => a.endsWith(".js"));
  check("the entry script is under dist", entryScript?.startsWith(`${layout.dist}/`), true);

  // The deps stage installs production dependencies exactly as the node image does.
  const installs = stage(text, "deps").runs.map((r) => words(r).filter((w) => !w.startsWith("--mount=")));
  check("deps stage install", installs, [[...image.productionInstall]]);
  return problems;
}

// ── tests ────────────────────────────────────────────────────────────────────────────────────────

describe("the Dockerfile parser", () => {
  test("joins continuations, skips comments inside them, and reads both command forms", () => {
    const text = [
      "# syntax=docker/dockerfile:1",
      "ARG V=7",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile build-argument syntax
      "FROM base:${V} AS one",
      'LABEL a="x y" \\',
      "  # a comment inside the continuation",
      "      b=z",
      "WORKDIR /w",
      "WORKDIR sub",
      'ENV K1=v1 K2="two words"',
      "ENV K1 replaced value",
      "EXPOSE 80 53/udp",
      'ENTRYPOINT ["/bin/x", "--flag"]',
      "CMD echo hi",
      "COPY --from=other --chown=0:0 /src/a ./a",
      "COPY f1 f2 ./",
      'COPY ["g h", "/abs/"]',
    ].join("\n");
    const one = stage(text, "one");
    assert.equal(one.base, "base:7");
    assert.deepEqual(one.labels, { a: "x y", b: "z" });
    assert.equal(one.workdir, "/w/sub");
    assert.deepEqual(one.env, [
      ["K2", "two words"],
      ["K1", "replaced value"],
    ]);
    assert.deepEqual(one.exposed, ["80/tcp", "53/udp"]);
    assert.deepEqual(one.entrypoint, ["/bin/x", "--flag"]);
    assert.deepEqual(one.cmd, ["/bin/sh", "-c", "echo hi"]);
    assert.deepEqual(
      one.copies.map((c) => [c.from, c.targets]),
      [
        ["other", ["/w/sub/a"]],
        [undefined, ["/w/sub/f1", "/w/sub/f2"]],
        [undefined, ["/abs/g h"]],
      ],
    );
  });
});

describe("the node tier's product image follows the Dockerfile", () => {
  test("the runtime stage reads as expected", () => {
    // Guards the parser against reading the real file vacuously (every field found, exactly).
    const runtime = stage(dockerfile, "runtime");
    assert.equal(runtime.base, "gcr.io/distroless/nodejs24-debian12:nonroot");
    assert.equal(runtime.user, "65532:65532");
    assert.equal(runtime.workdir, "/app");
    assert.deepEqual(runtime.env, [["NODE_ENV", "production"]]);
    assert.deepEqual(runtime.exposed, ["8080/tcp"]);
    assert.deepEqual(runtime.entrypoint, ["/nodejs/bin/node", ...imageNodeFlags, "/app/dist/cli/main.js"]);
    assert.deepEqual(runtime.cmd, ["--help"]);
    assert.deepEqual(runtime.copies.flatMap((c) => c.targets).sort(), [
      "/app/dist",
      "/app/node_modules",
      "/app/package.json",
    ]);
  });

  test("runtimeImage agrees with the runtime stage", () => {
    assert.deepEqual(disagreements(dockerfile, runtimeImage), []);
  });

  test("the image's Node major version is the Dockerfile's and the project's", () => {
    const nodeVersion = /^ARG NODE_VERSION=(\d+)$/m.exec(dockerfile)?.[1];
    assert.equal(runtimeImage.base.image, `gcr.io/distroless/nodejs${nodeVersion}-debian12:nonroot`);
    const pkg: unknown = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8"));
    const range = (pkg as { devDependencies?: Record<string, string> }).devDependencies?.node;
    assert.equal(/^\^?(\d+)\./.exec(range ?? "")?.[1], nodeVersion, "the `node` devDependency goes into the image");
  });

  test("a change on either side is caught", () => {
    const edits: [string, string, string][] = [
      ["USER 65532:65532", "USER 0:0", "USER"],
      ['CMD ["--help"]', 'CMD ["operator"]', "CMD"],
      ["--enable-source-maps", "--no-warnings", "ENTRYPOINT"],
      ["WORKDIR /app", "WORKDIR /srv", "WORKDIR"],
      ["ENV NODE_ENV=production", "ENV NODE_ENV=production TZ=UTC", "ENV"],
      ["EXPOSE 8080", "EXPOSE 8080 9090", "EXPOSE"],
      ["COPY --chown=0:0 package.json ./", "COPY --chown=0:0 package.json ./etc/", "COPY destinations"],
      ["npm ci --omit=dev --ignore-scripts", "npm ci --ignore-scripts", "deps stage install"],
      ['licenses="MPL-2.0"', 'licenses="Apache-2.0"', "LABEL"],
    ];
    for (const [from, to, what] of edits) {
      assert.ok(dockerfile.includes(from), `the Dockerfile no longer contains ${from}: update this test`);
      const problems = disagreements(dockerfile.replace(from, to), runtimeImage);
      assert.ok(
        problems.some((p) => p.startsWith(what)),
        `editing ${from} → ${to} should break ${what}: ${problems.join("; ")}`,
      );
    }
    const changed: RuntimeImage = {
      ...runtimeImage,
      config: { ...runtimeImage.config, User: "65532" },
      layout: { ...runtimeImage.layout, nodeModules: "/app/lib/node_modules" },
    };
    assert.deepEqual(
      disagreements(dockerfile, changed).map((p) => p.slice(0, p.indexOf(":"))),
      ["USER", "COPY destinations", "node_modules comes from the deps stage"],
    );
  });
});
