/**
 * A small deterministic YAML writer for the generated CRDs: block mappings and sequences in
 * insertion order, two-space indent, and the plainest safe style for each string (plain,
 * then single-quoted, which keeps CEL's backslashes literal, then JSON's double-quoted
 * form, which YAML 1.2 reads as is). Only JSON data is accepted: the output parses back to
 * exactly the input (tested), in any YAML 1.1 or 1.2 reader.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Words that a YAML 1.1 reader (still common in Kubernetes tooling) would read as booleans or null. */
const specialWords = /^(y|yes|n|no|true|false|on|off|null|~)$/i;
const plainSafe = /^[A-Za-z][A-Za-z0-9 _.,/()=+-]*[A-Za-z0-9_.)]$|^[A-Za-z]$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters force the escaped style
const needsEscapes = /[\u0000-\u001f\u007f-\u009f\u2028\u2029']/;

function scalar(value: string | number | boolean | null): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`YAML: cannot write the number ${value}`);
    return String(value);
  }
  if (plainSafe.test(value) && !specialWords.test(value)) return value;
  if (!needsEscapes.test(value) && value !== "" && value.trim() === value) return `'${value}'`;
  return JSON.stringify(value)
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function key(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$.\-/]*$/.test(name) && !specialWords.test(name) ? name : JSON.stringify(name);
}

function isObject(value: JsonValue): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function lines(value: JsonValue, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isObject(item) && Object.keys(item).length > 0) {
        const nested: string[] = [];
        lines(item, `${indent}  `, nested);
        const [first = "", ...rest] = nested;
        out.push(`${indent}- ${first.slice(indent.length + 2)}`, ...rest);
      } else if (Array.isArray(item) && item.length > 0) {
        out.push(`${indent}-`);
        lines(item, `${indent}  `, out);
      } else {
        out.push(`${indent}- ${inline(item)}`);
      }
    }
    return;
  }
  if (!isObject(value)) throw new TypeError("YAML: a document must be a mapping or a sequence");
  for (const [name, child] of Object.entries(value)) {
    if (isObject(child) && Object.keys(child).length > 0) {
      out.push(`${indent}${key(name)}:`);
      lines(child, `${indent}  `, out);
    } else if (Array.isArray(child) && child.length > 0) {
      out.push(`${indent}${key(name)}:`);
      lines(child, `${indent}  `, out);
    } else {
      out.push(`${indent}${key(name)}: ${inline(child)}`);
    }
  }
}

/** A scalar or an empty collection, on one line. */
function inline(value: JsonValue): string {
  if (Array.isArray(value)) return "[]";
  if (isObject(value)) return "{}";
  return scalar(value);
}

/** One YAML document (no `---`), ending in a newline. */
export function toYaml(value: JsonValue): string {
  const out: string[] = [];
  lines(value, "", out);
  return `${out.join("\n")}\n`;
}

/** Several documents separated by `---`. */
export function toYamlDocuments(values: readonly JsonValue[]): string {
  return values.map((value) => `---\n${toYaml(value)}`).join("");
}
