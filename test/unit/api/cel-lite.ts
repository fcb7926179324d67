/**
 * A deliberately tiny evaluator for the CEL rules schema.ts puts on *string* fields, so unit
 * tests can ask "would admission accept this value?" without an API server and compare the
 * answer with the run-time parsers. It understands exactly the shapes the schema uses
 * (atoms joined by `&&` and `||`, without parentheses: `self.matches(r"…")`, `self.startsWith("…")`, `self.endsWith("…")`,
 * `self.contains("…")`, each optionally negated, `self != "…"`, `size(self) >= n`,
 * `size(bytes(self)) <= n`) and throws on anything else, so a new rule shape cannot be
 * silently skipped. The real CEL is exercised against kube-apiserver with bad-specs.ts.
 */
import { jsRegExp } from "../../../src/api/patterns.ts";
import type { Schema } from "../../../src/api/schema.ts";

function literal(text: string): string {
  if (text.startsWith('r"')) return text.slice(2, -1);
  return JSON.parse(text) as string;
}

const stringArg = String.raw`(r?"(?:[^"\\]|\\.)*")`;
const atoms: [RegExp, (value: string, m: RegExpExecArray) => boolean][] = [
  [
    new RegExp(`^(!?)self\\.matches\\(${stringArg}\\)$`),
    (v, m) => jsRegExp(literal(m[2] ?? "")).test(v) !== (m[1] === "!"),
  ],
  [
    new RegExp(`^(!?)self\\.startsWith\\(${stringArg}\\)$`),
    (v, m) => v.startsWith(literal(m[2] ?? "")) !== (m[1] === "!"),
  ],
  [new RegExp(`^(!?)self\\.endsWith\\(${stringArg}\\)$`), (v, m) => v.endsWith(literal(m[2] ?? "")) !== (m[1] === "!")],
  [new RegExp(`^(!?)self\\.contains\\(${stringArg}\\)$`), (v, m) => v.includes(literal(m[2] ?? "")) !== (m[1] === "!")],
  [new RegExp(`^self != ${stringArg}$`), (v, m) => v !== literal(m[1] ?? "")],
  [/^size\(self\) >= (\d+)$/, (v, m) => [...v].length >= Number(m[1])],
  [/^size\(bytes\(self\)\) <= (\d+)$/, (v, m) => Buffer.byteLength(v) <= Number(m[1])],
];

function evalAtom(atom: string, value: string): boolean {
  for (const [shape, test] of atoms) {
    const m = shape.exec(atom);
    if (m) return test(value, m);
  }
  throw new Error(`cel-lite: unsupported rule ${JSON.stringify(atom)}`);
}

/** The messages of the rules and constraints a string value breaks on this schema node (empty: admitted). */
export function stringViolations(node: Schema, value: string): string[] {
  if (node.type !== "string") throw new Error("cel-lite: not a string schema");
  const out: string[] = [];
  if (node.maxLength !== undefined && [...value].length > node.maxLength) out.push(`longer than ${node.maxLength}`);
  if (node.minLength !== undefined && [...value].length < node.minLength) out.push(`shorter than ${node.minLength}`);
  if (node.enum !== undefined && !node.enum.includes(value)) out.push(`not one of ${node.enum.join(", ")}`);
  if (node.pattern !== undefined && !jsRegExp(node.pattern).test(value)) out.push(`does not match ${node.pattern}`);
  for (const rule of node["x-kubernetes-validations"] ?? []) {
    // `&&` binds tighter than `||`: a disjunction of conjunctions of atoms.
    const ok = rule.rule
      .split(" || ")
      .some((conjunction) => conjunction.split(" && ").every((atom) => evalAtom(atom.trim(), value)));
    if (!ok) out.push(rule.message);
  }
  return out;
}

/** The schema node at a dotted path below `openAPIV3Schema` (`spec.backup.target.pathPrefix`). */
export function schemaAt(root: Schema, path: string): Schema {
  let node = root;
  for (const part of path.split(".")) {
    const next = part === "[]" ? node.items : node.properties?.[part];
    if (next === undefined) throw new Error(`no schema at ${path} (stopped at ${part})`);
    node = next;
  }
  return node;
}
