/**
 * The CRDs: deploy/crds/ is exactly what src/api/schema.ts generates (nobody edits the YAML by
 * hand), the YAML and the typed client objects both mean the same wire format, and the schema
 * keeps its own rules: bounded strings, lists and maps (CEL cost), messages that name their
 * field, status as a subresource, printer columns that point at real fields.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { dumpYaml, loadAllYaml, loadYaml } from "@kubernetes/client-node";
import {
  type CrdManifest,
  clusterCrd,
  clusterCrdManifest,
  crdFiles,
  crds,
  restoreCrd,
  restoreCrdManifest,
  type Schema,
} from "../../../src/api/schema.ts";
import { badSpecs, goodSpecs } from "./bad-specs.ts";
import { schemaAt, stringViolations } from "./cel-lite.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const manifests: CrdManifest[] = [clusterCrdManifest(), restoreCrdManifest()];

/**
 * YAML → plain JSON. `loadYaml` deserializes known kinds into the client's typed models, so the
 * kind is masked while parsing to see the document exactly as the API server would.
 */
function rawYaml(text: string): unknown {
  const masked = text.replace(/^kind: CustomResourceDefinition$/m, "kind: RawDocument");
  const parsed = loadYaml<Record<string, unknown>>(masked);
  return JSON.parse(JSON.stringify({ ...parsed, kind: "CustomResourceDefinition" }));
}

function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function rootSchema(manifest: CrdManifest): Schema {
  const schema = manifest.spec.versions[0]?.schema.openAPIV3Schema;
  assert.ok(schema);
  return schema;
}

/** Every schema node with its path (`[]` for list items, `{}` for map values). */
function* walk(node: Schema, path: string): Generator<[string, Schema]> {
  yield [path, node];
  for (const [name, child] of Object.entries(node.properties ?? {}))
    yield* walk(child, path ? `${path}.${name}` : name);
  if (node.items) yield* walk(node.items, `${path}.[]`);
  if (node.additionalProperties) yield* walk(node.additionalProperties, `${path}.{}`);
}

describe("deploy/crds", () => {
  test("is up to date with src/api/schema.ts (run `node scripts/generate-crds.ts`)", () => {
    const files = crdFiles();
    assert.deepEqual(
      files.map((f) => f.path),
      ["deploy/crds/openbao.org_openbaoclusters.yaml", "deploy/crds/openbao.org_openbaorestores.yaml"],
    );
    for (const file of files) {
      let onDisk: string;
      try {
        onDisk = readFileSync(join(root, file.path), "utf8");
      } catch {
        assert.fail(`${file.path} is missing: run \`node scripts/generate-crds.ts\``);
      }
      assert.ok(onDisk === file.content, `${file.path} is out of date: run \`node scripts/generate-crds.ts\``);
    }
  });

  test("each file parses back to exactly its manifest", () => {
    for (const [i, file] of crdFiles().entries()) {
      assert.equal(loadAllYaml(file.content).length, 1);
      const parsed = rawYaml(file.content) as { kind: string };
      assert.deepEqual(parsed, plain(manifests[i]));
    }
  });

  test("the typed objects serialize to the same wire format (rules and enums survive `_enum`/`x_kubernetes_*`)", () => {
    for (const [i, crd] of [clusterCrd(), restoreCrd()].entries()) {
      // dumpYaml serializes through the client's ObjectSerializer, as a create request does.
      assert.deepEqual(rawYaml(dumpYaml(crd)), plain(manifests[i]));
    }
    const spec = clusterCrd().spec.versions[0]?.schema?.openAPIV3Schema?.properties?.spec;
    assert.ok(spec?.x_kubernetes_preserve_unknown_fields);
    assert.ok((spec?.x_kubernetes_validations ?? []).length > 0);
    assert.equal(crds().length, 2);
  });
});

describe("schema conventions", () => {
  for (const manifest of manifests) {
    const kind = manifest.spec.names.kind;
    const schema = rootSchema(manifest);

    test(`${kind}: every string, list and map is bounded (CEL cost budget)`, () => {
      for (const [path, node] of walk(schema, "")) {
        if (path === "apiVersion" || path === "kind") continue;
        if (node.type === "string" && node.enum === undefined && node.format !== "date-time") {
          assert.ok(node.maxLength !== undefined, `${path}: string without maxLength`);
        }
        if (node.type === "array") assert.ok(node.maxItems !== undefined, `${path}: list without maxItems`);
        if (node.additionalProperties)
          assert.ok(node.maxProperties !== undefined, `${path}: map without maxProperties`);
      }
    });

    test(`${kind}: every rule's message names a field, and its fieldPath exists`, () => {
      for (const [path, node] of walk(schema, "")) {
        for (const rule of node["x-kubernetes-validations"] ?? []) {
          assert.match(rule.message, /\b(spec|status)(\.\w+|\b)/, `${path}: "${rule.message}" names no field`);
          if (rule.fieldPath !== undefined) {
            assert.doesNotThrow(
              () => schemaAt(node, rule.fieldPath?.slice(1) ?? ""),
              `${path}: fieldPath ${rule.fieldPath}`,
            );
          }
        }
      }
    });

    test(`${kind}: status is a subresource; printer columns point at fields of the schema`, () => {
      const v = manifest.spec.versions[0];
      assert.deepEqual(v?.subresources, { status: {} });
      for (const column of v?.additionalPrinterColumns ?? []) {
        if (column.jsonPath === ".metadata.creationTimestamp") continue;
        assert.doesNotThrow(() => schemaAt(schema, column.jsonPath.slice(1)), column.name);
      }
    });
  }

  test("OpenBaoCluster keeps the lifecycle operator's fields: spec, spec.upgrade, status, status.upgrade", () => {
    const schema = rootSchema(manifests[0] as CrdManifest);
    for (const path of ["spec", "spec.upgrade", "status", "status.upgrade"]) {
      assert.equal(schemaAt(schema, path)["x-kubernetes-preserve-unknown-fields"], true, path);
    }
    // …but nothing under spec.backup is kept unvalidated.
    for (const [path, node] of walk(schemaAt(schema, "spec.backup"), "spec.backup")) {
      assert.notEqual(node["x-kubernetes-preserve-unknown-fields"], true, path);
    }
  });

  test("Secret references have no namespace field", () => {
    for (const manifest of manifests) {
      for (const [path, node] of walk(rootSchema(manifest), "")) {
        if (/SecretRef$/.test(path))
          assert.deepEqual(
            Object.keys(node.properties ?? {}).sort(),
            path.endsWith("tokenSecretRef") ? ["key", "name"] : ["name"],
          );
      }
    }
  });

  test("printer columns: cluster phase, last backup, failures, age; restore cluster, phase, key, age", () => {
    const names = (m: CrdManifest) =>
      (m.spec.versions[0]?.additionalPrinterColumns ?? []).filter((c) => !c.priority).map((c) => c.name);
    assert.deepEqual(names(manifests[0] as CrdManifest), ["Phase", "Last Backup", "Failures", "Age"]);
    assert.deepEqual(names(manifests[1] as CrdManifest), ["Cluster", "Phase", "Key", "Age"]);
  });
});

/** String leaves of an object with their schema paths (`[]` for list items, `{}` for map values). */
function* stringLeaves(value: unknown, path: string, schema: Schema): Generator<[string, Schema, string]> {
  if (typeof value === "string") {
    yield [path, schema, value];
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) if (schema.items) yield* stringLeaves(item, `${path}.[]`, schema.items);
    return;
  }
  if (typeof value === "object" && value !== null) {
    for (const [name, child] of Object.entries(value)) {
      const next = schema.properties?.[name] ?? schema.additionalProperties;
      if (next) yield* stringLeaves(child, `${path}.${name}`, next);
    }
  }
}

describe("admission tables (bad-specs.ts)", () => {
  const schemas = {
    OpenBaoCluster: rootSchema(manifests[0] as CrdManifest),
    OpenBaoRestore: rootSchema(manifests[1] as CrdManifest),
  };

  test("names are unique, fields exist in the schema", () => {
    const names = [...goodSpecs.map((g) => g.object.metadata.name), ...badSpecs.map((b) => b.object.metadata.name)];
    assert.equal(new Set(names).size, names.length);
    for (const bad of badSpecs) {
      if (bad.fieldValidation === "Strict") continue; // the point: the field does not exist
      for (const field of [bad.field, ...(bad.alsoNamed ?? [])]) {
        const path = field.replace(/\[\d+\]/g, ".[]");
        assert.doesNotThrow(() => schemaAt(schemas[bad.object.kind], path), `${bad.name}: ${field}`);
      }
    }
  });

  test("a case that must name several fields has a rule whose message names them all", () => {
    const messages = Object.values(schemas).flatMap((schema) =>
      [...walk(schema, "")].flatMap(([, node]) => (node["x-kubernetes-validations"] ?? []).map((r) => r.message)),
    );
    const several = badSpecs.filter((bad) => (bad.alsoNamed ?? []).length > 0);
    assert.ok(several.length > 0);
    for (const bad of several) {
      const fields = [bad.field, ...(bad.alsoNamed ?? [])];
      assert.ok(
        messages.some((m) => fields.every((f) => m.includes(f))),
        `${bad.name}: no rule message names ${fields.join(" and ")}`,
      );
    }
  });

  test("good specs break no string rule", () => {
    for (const good of goodSpecs) {
      const schema = schemas[good.object.kind];
      for (const [path, node, value] of stringLeaves(good.object.spec, "spec", schemaAt(schema, "spec"))) {
        if (node.type !== "string") continue;
        assert.deepEqual(stringViolations(node, value), [], `${good.name}: ${path}`);
      }
    }
  });

  test("a bad string value is refused by the rules of the field it names", () => {
    // Fields that object-level rules report on (roleArn for gcs…): their value alone is fine.
    const reportedByParent = new Set<string>();
    for (const schema of Object.values(schemas)) {
      for (const [path, node] of walk(schema, "")) {
        for (const rule of node["x-kubernetes-validations"] ?? []) {
          // At the root (path ""), the fieldPath's leading "." is not part of the field's name.
          if (rule.fieldPath !== undefined) reportedByParent.add(`${path}${rule.fieldPath}`.replace(/^\./, ""));
        }
      }
    }
    let checked = 0;
    for (const bad of badSpecs) {
      // Also skipped: a duplicate in a set (`[1]`) is refused by the list, not by the value.
      const field = bad.field.replace(/\[\d+\]/g, ".[]");
      if (bad.updates || reportedByParent.has(field) || /\[[1-9]\d*\]/.test(bad.field)) continue;
      const schema = schemas[bad.object.kind];
      for (const [path, node, value] of stringLeaves(bad.object.spec, "spec", schemaAt(schema, "spec"))) {
        if (path !== bad.field.replace(/\[\d+\]/g, ".[]") || node.type !== "string") continue;
        assert.notDeepEqual(stringViolations(node, value), [], `${bad.name}: ${path} ${JSON.stringify(value)}`);
        checked += 1;
      }
    }
    assert.ok(checked >= 30, `only ${checked} string cases checked`);
  });
});
