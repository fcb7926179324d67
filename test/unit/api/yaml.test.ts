import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadAllYaml, loadYaml } from "@kubernetes/client-node";
import { type JsonValue, toYaml, toYamlDocuments } from "../../../src/api/yaml.ts";

// Not a Kubernetes kind, so the client's loader returns the parsed YAML unchanged.
const parse = (text: string): unknown => loadYaml(text);

const awkwardStrings = [
  "",
  "plain",
  "with spaces, commas and (parens)",
  "yes",
  "No",
  "true",
  "FALSE",
  "on",
  "null",
  "~",
  "y",
  "123",
  "1.5",
  "0x10",
  "1e3",
  ".inf",
  "-",
  "- a",
  ": x",
  "a: b",
  "a:b",
  "#x",
  "a #b",
  "'quoted'",
  "it's",
  '"dq"',
  String.raw`back\slash`,
  String.raw`self.matches(r"^[a-z]\d+$")`,
  "tab\there",
  "new\nline",
  "trailing newline\n",
  "\u2028",
  "\u0000nul",
  "\u0085",
  "1500µs",
  "é",
  " leading",
  "trailing ",
  "@at",
  "*star",
  "&anchor",
  "!tag",
  "%percent",
  "`tick",
  "{x}",
  "[x]",
  "?q",
  "|",
  ">",
  "x".repeat(300),
];

describe("toYaml", () => {
  test("every awkward string round-trips, as a value and as a key", () => {
    for (const value of awkwardStrings) {
      assert.deepEqual(parse(toYaml({ value })), { value }, JSON.stringify(value));
      if (value !== "") assert.deepEqual(parse(toYaml({ [value]: 1 })), { [value]: 1 }, `key ${JSON.stringify(value)}`);
    }
    assert.deepEqual(parse(toYaml({ list: awkwardStrings })), { list: awkwardStrings });
  });

  test("numbers, booleans, null, empty and nested collections round-trip", () => {
    const doc: JsonValue = {
      numbers: [0, -1, 1.5, 5368709120, 1e-7],
      flags: [true, false],
      nothing: null,
      emptyMap: {},
      emptyList: [],
      nested: [[1, [2, []]], [{ a: { b: [{ c: "d" }, {}] } }]],
      map: { "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "spec is immutable" }] },
    };
    assert.deepEqual(parse(toYaml(doc)), doc);
  });

  test("is readable: plain where safe, single quotes for CEL, block style", () => {
    const text = toYaml({ a: "plain words", b: 'self.matches(r"^\\d$")', c: ["x", { d: 1, e: 2 }] });
    assert.equal(
      text,
      ["a: plain words", "b: 'self.matches(r\"^\\d$\")'", "c:", "  - x", "  - d: 1", "    e: 2", ""].join("\n"),
    );
  });

  test("is deterministic and refuses what JSON cannot hold", () => {
    const doc = { b: 1, a: [1, 2] };
    assert.equal(toYaml(doc), toYaml(JSON.parse(JSON.stringify(doc)) as JsonValue));
    assert.throws(() => toYaml({ n: Number.NaN }), /NaN/);
    assert.throws(() => toYaml("scalar"), /mapping or a sequence/);
  });

  test("several documents", () => {
    const text = toYamlDocuments([{ a: 1 }, { b: [2] }]);
    assert.deepEqual(loadAllYaml(text), [{ a: 1 }, { b: [2] }]);
  });
});
