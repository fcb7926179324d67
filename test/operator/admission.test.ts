/**
 * Issue 5 acceptance: every invalid field in the table of bad specs is rejected at
 * admission by the real kube-apiserver, with a message naming the field; every good spec is
 * accepted and a lifecycle operator's extra fields survive. The table is plain data in
 * test/unit/api/bad-specs.ts, shared with the schema's unit tests.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { crds } from "../../src/api/schema.ts";
import { type KubeHandle, startKube } from "../servers/kube.ts";
import { superviseServers } from "../servers/process.ts";
import { badSpecs, goodSpecs, type ResourceObject } from "../unit/api/bad-specs.ts";

superviseServers();

const namespace = "admission";

interface StatusBody {
  code: number;
  message: string;
  details?: { causes?: { field?: string; message?: string }[] };
}

function statusOf(err: unknown): StatusBody {
  const body = (err as { body?: unknown }).body;
  if (typeof body !== "string") throw err;
  return JSON.parse(body) as StatusBody;
}

function at(object: unknown, path: string): unknown {
  return path
    .split(".")
    .reduce<unknown>((a, k) => (a && typeof a === "object" ? (a as Record<string, unknown>)[k] : undefined), object);
}

describe("admission of OpenBaoCluster and OpenBaoRestore", () => {
  let kube: KubeHandle;
  let api: CustomObjectsApi;
  before(async () => {
    kube = await startKube();
    await kube.installCrds(crds());
    await kube.createNamespace(namespace);
    api = kube.kubeConfig.makeApiClient(CustomObjectsApi);
  });
  after(async () => {
    await kube?.stop();
  });

  const ref = (o: ResourceObject) => ({
    group: "openbao.org",
    version: "v1alpha1",
    namespace,
    plural: o.kind === "OpenBaoCluster" ? "openbaoclusters" : "openbaorestores",
  });
  const create = (o: ResourceObject, fieldValidation?: string) =>
    api.createNamespacedCustomObject({ ...ref(o), body: o, ...(fieldValidation ? { fieldValidation } : {}) });
  const replace = async (o: ResourceObject, status: boolean) => {
    const current = (await api.getNamespacedCustomObject({ ...ref(o), name: o.metadata.name })) as {
      metadata: { resourceVersion: string };
    };
    const body = { ...o, metadata: { ...o.metadata, resourceVersion: current.metadata.resourceVersion } };
    return status
      ? api.replaceNamespacedCustomObjectStatus({ ...ref(o), name: o.metadata.name, body })
      : api.replaceNamespacedCustomObject({ ...ref(o), name: o.metadata.name, body });
  };

  for (const good of goodSpecs) {
    test(`accepts ${good.name}`, async () => {
      const stored = await create(good.object, "Strict");
      for (const path of good.preserved ?? []) assert.notEqual(at(stored, path), undefined, `${path} preserved`);
    });
  }

  for (const bad of badSpecs) {
    test(`rejects ${bad.name}, naming ${bad.field}`, async () => {
      const steps = bad.updates ?? [];
      let rejection: unknown;
      try {
        if (steps.length === 0) await create(bad.object, bad.fieldValidation);
        else {
          await create(bad.object);
          for (const [i, step] of steps.entries()) {
            const last = i === steps.length - 1;
            try {
              await replace(step.object, step.subresource === "status");
            } catch (err) {
              if (!last) throw new Error(`intermediate update ${i} was rejected: ${statusOf(err).message}`);
              throw err;
            }
          }
        }
      } catch (err) {
        rejection = err;
      }
      assert.ok(rejection, "the API server accepted it");
      const status = statusOf(rejection);
      assert.equal(status.code, bad.code ?? 422, status.message);
      const named =
        (status.details?.causes ?? []).some((c) => c.field === bad.field) || status.message.includes(bad.field);
      assert.ok(named, `the rejection names ${bad.field}: ${status.message}`);
      for (const field of bad.alsoNamed ?? []) {
        assert.ok(status.message.includes(field), `the rejection names ${field} too: ${status.message}`);
      }
    });
  }
});
