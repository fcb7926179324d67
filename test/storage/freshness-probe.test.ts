/**
 * The freshness monitor's reading of a bucket (src/monitor/probe.ts) against the real
 * storage servers: the newest *verified* backup wins (a newer object without a manifest, or
 * whose manifest disagrees, does not count), and every way the reading fails comes back as a
 * reason with a message that names the fix and carries no secret value.
 *
 * The Secret reader is the injection point the monitor command fills with the Kubernetes
 * API; here it returns the Secret's data directly (a missing Secret: undefined, a refused one:
 * a 403 like the API's). Storage is real on every provider.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { OpenBaoCluster } from "../../src/api/types.ts";
import { type ProbeDeps, probeCluster } from "../../src/monitor/probe.ts";
import { buildKey } from "../../src/snapshot/key.ts";
import { serializeManifest } from "../../src/snapshot/manifest.ts";
import { loadObjectStore } from "../../src/storage/load.ts";
import { allProviders, clusterTarget, startTarget, type TargetUnderTest } from "../executor/targets.ts";

const namespace = "openbao";
/** Which providers' test targets name a credentials Secret (decided before any server starts). */
const withSecret: Readonly<Record<string, boolean>> = { s3: true, gcs: false, azure: true };
const cluster = "bao";
const hour = 3_600_000;

function clusterWith(target: Record<string, unknown>): OpenBaoCluster {
  return {
    apiVersion: "openbao.org/v1alpha1",
    kind: "OpenBaoCluster",
    metadata: { name: cluster, namespace },
    spec: { replicas: 1, version: "2.4.0", backup: { schedule: "0 * * * *", jwtAuthRole: "backup", target } },
  } as unknown as OpenBaoCluster;
}

/** A snapshot object, and (when `manifest`) its manifest, taken `hoursAgo`. */
async function store(target: TargetUnderTest, hoursAgo: number, id: string, manifest: boolean | "wrong-size") {
  const created = new Date(Date.now() - hoursAgo * hour);
  const key = buildKey({ pathPrefix: "", namespace, cluster, time: created, kind: "scheduled", random: id });
  const bytes = Buffer.from(`snapshot ${id}`);
  await target.put(key, bytes);
  if (manifest) {
    const text = serializeManifest({
      formatVersion: 1,
      key,
      size: manifest === "wrong-size" ? bytes.length + 1 : bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      raftIndex: 10,
      raftTerm: 2,
      openbaoVersion: "2.4.0",
      created: created.toISOString(),
    });
    await target.put(`${key}.json`, Buffer.from(text));
  }
  return created;
}

for (const provider of allProviders) {
  describe(`freshness probe on ${provider}`, { timeout: 120_000 }, () => {
    let target: TargetUnderTest;
    let secretData: Record<string, string>;
    const deps = (over: Partial<ProbeDeps> = {}): ProbeDeps => ({
      readSecret: async () => secretData,
      openStore: (t, c) => loadObjectStore(t, c),
      isForbidden: (err) => (err as { code?: number }).code === 403,
      timeoutMs: 30_000,
      ...over,
    });
    before(async () => {
      target = await startTarget(provider);
      secretData = Object.fromEntries(
        Object.entries(target.credentials).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
      );
    });
    after(async () => {
      await target?.stop();
    });

    test("an empty bucket reads as none stored; then the newest verified backup wins", async () => {
      const spec = clusterTarget(provider, target);
      const empty = await probeCluster(clusterWith(spec), deps());
      assert.deepEqual(empty, { ok: true, newestVerified: undefined, stored: 0 });

      const verified = await store(target, 3, "0000000a", true);
      await store(target, 2, "0000000b", false); // newer, no manifest
      await store(target, 1, "0000000c", "wrong-size"); // newer, manifest disagrees with the object
      const read = await probeCluster(clusterWith(spec), deps());
      assert.equal(read.ok, true);
      assert.equal(read.ok && read.newestVerified?.toISOString(), verified.toISOString());
      assert.equal(read.ok && read.stored, 3);
    });

    // GCS here is reached without a credentials Secret (the test server takes any identity).
    if (withSecret[provider]) {
      test("a missing or unreadable Secret, a bad target and a storage refusal are reasons, never secrets", async () => {
        const spec = clusterTarget(provider, target);
        const missing = await probeCluster(clusterWith(spec), deps({ readSecret: async () => undefined }));
        assert.equal(missing.ok || missing.reason, "SecretNotFound");
        assert.match(missing.ok ? "" : missing.message, /credentialsSecretRef/);

        const refused = await probeCluster(
          clusterWith(spec),
          deps({
            readSecret: async () => {
              throw Object.assign(new Error("forbidden"), { code: 403 });
            },
          }),
        );
        assert.equal(refused.ok || refused.reason, "SecretForbidden");
        assert.match(refused.ok ? "" : refused.message, /rbac\.secretReadNamespaces/);

        const invalid = await probeCluster(clusterWith({ ...spec, bucket: "" }), deps());
        assert.equal(invalid.ok || invalid.reason, "InvalidTarget");

        // Credentials the server refuses: the error names the problem, not the values.
        const wrongSecret = Buffer.from("wrong-secret-value-0123456789abcdef").toString("base64");
        const wrong = { ...secretData };
        for (const k of ["secretAccessKey", "accountKey"]) {
          if (k in wrong) wrong[k] = Buffer.from(wrongSecret).toString("base64");
        }
        const denied = await probeCluster(clusterWith(spec), deps({ readSecret: async () => wrong }));
        assert.equal(denied.ok || denied.reason, "StorageError");
        assert.ok(!(denied.ok ? "" : denied.message).includes(wrongSecret), "no secret in the message");
      });
    }
  });
}
