/**
 * Smoke test: the Kubernetes fixture is a real etcd + kube-apiserver. TokenRequest issues
 * a JWT for audience openbao-internal, signed by the key whose public half OpenBao's JWT
 * auth will trust, and CRDs installed through `installCrds` are served at once.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPublicKey, verify } from "node:crypto";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  CoreV1Api,
  CustomObjectsApi,
  dumpYaml,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { type KubeHandle, kubeGet, openbaoAudience, startKube } from "../servers/kube.ts";
import { superviseServers } from "../servers/process.ts";

superviseServers();

interface JwtParts {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly signedPart: string;
  readonly signature: Buffer;
}

function decodeJwt(token: string): JwtParts {
  const [header, payload, signature, ...rest] = token.split(".");
  assert.ok(header && payload && signature && rest.length === 0, "a JWT has three parts");
  const json = (part: string): Record<string, unknown> =>
    JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
  return {
    header: json(header),
    payload: json(payload),
    signedPart: `${header}.${payload}`,
    signature: Buffer.from(signature, "base64url"),
  };
}

/** Commands of the child processes of this test process still alive (`ps --ppid`). */
function childCommands(): string[] {
  try {
    return execFileSync("ps", ["-o", "comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean);
  } catch {
    return []; // ps exits 1 when there is no such process
  }
}

const widgetCrd: V1CustomResourceDefinition = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.smoke.openbao-backup.test" },
  spec: {
    group: "smoke.openbao-backup.test",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", properties: { size: { type: "integer", minimum: 1 } }, required: ["size"] },
            },
          },
        },
      },
    ],
  },
};

describe("kube-apiserver + etcd", { timeout: 180_000 }, () => {
  let kube: KubeHandle;
  const namespace = "smoke";
  const serviceAccount = "openbao-backup";

  before(async () => {
    kube = await startKube();
    process.stdout.write(
      `# kube-apiserver ready at ${kube.server}: etcd ${kube.startup.etcdMs} ms, ` +
        `apiserver ${kube.startup.apiServerMs} ms, total ${kube.startup.totalMs} ms\n`,
    );
  });

  after(async () => {
    if (!kube) return;
    const pids = [kube.apiServer.child.pid, kube.etcd.process.child.pid];
    const dirs = [kube.etcd.dataDir, kube.kubeConfigPath];
    await kube.stop();
    assert.ok(!kube.apiServer.running && !kube.etcd.process.running, "both processes exited");
    for (const pid of pids) {
      assert.ok(pid !== undefined);
      assert.throws(() => process.kill(pid, 0), { code: "ESRCH" }, `process ${pid} is gone`);
    }
    const leftovers = childCommands().filter((command) => /etcd|kube-apiserver/.test(command));
    assert.deepEqual(leftovers, [], "no etcd or kube-apiserver child process remains");
    for (const dir of dirs) assert.ok(!existsSync(dir), `${dir} removed`);
  });

  it("serves the core API with RBAC bootstrapped, to the kubeconfig written on disk", async () => {
    const fromFile = new KubeConfig();
    fromFile.loadFromFile(kube.kubeConfigPath);
    const core = fromFile.makeApiClient(CoreV1Api);
    const defaultNs = await core.readNamespace({ name: "default" });
    assert.equal(defaultNs.metadata?.name, "default");
    const rbac = fromFile.makeApiClient(RbacAuthorizationV1Api);
    const clusterAdmin = await rbac.readClusterRole({ name: "cluster-admin" });
    assert.deepEqual(clusterAdmin.rules?.[0]?.verbs, ["*"]);
    const version = await fetchVersion();
    // major/minor come from the source tree; gitVersion only from build-time -ldflags.
    assert.deepEqual([version.major, version.minor], ["1", "36"]);
  });

  it("issues a TokenRequest token for openbao-internal, verifiable with the public key", async () => {
    await kube.createNamespace(namespace);
    await kube.createServiceAccount(namespace, serviceAccount);
    const core = kube.kubeConfig.makeApiClient(CoreV1Api);
    const sa = await core.readNamespacedServiceAccount({ name: serviceAccount, namespace });
    const uid = sa.metadata?.uid;
    assert.ok(uid);

    const { token, expirationTimestamp } = await kube.requestToken(namespace, serviceAccount, openbaoAudience, 600);
    const jwt = decodeJwt(token);
    assert.equal(jwt.header.alg, "RS256");
    assert.equal(typeof jwt.header.kid, "string");

    const claims = jwt.payload;
    assert.equal(claims.iss, kube.issuer);
    assert.equal(claims.iss, "https://kubernetes.default.svc");
    assert.deepEqual(claims.aud, [openbaoAudience]);
    assert.equal(claims.sub, `system:serviceaccount:${namespace}:${serviceAccount}`);
    assert.deepEqual(claims["kubernetes.io"], {
      namespace,
      serviceaccount: { name: serviceAccount, uid },
    });
    assert.equal(typeof claims.exp, "number");
    assert.equal(claims.exp, Math.floor(expirationTimestamp.getTime() / 1000));
    const now = Date.now() / 1000;
    assert.ok(typeof claims.exp === "number" && claims.exp > now + 500 && claims.exp < now + 700, "about 600 s");

    const publicKey = createPublicKey(kube.serviceAccountPublicKeyPem);
    assert.ok(verify("RSA-SHA256", Buffer.from(jwt.signedPart), publicKey, jwt.signature), "signature verifies");
    const tampered = Buffer.from(jwt.signedPart.replace(/.$/, (c) => (c === "A" ? "B" : "A")));
    assert.ok(!verify("RSA-SHA256", tampered, publicKey, jwt.signature), "a changed payload does not verify");
  });

  it("authenticates ServiceAccount tokens by audience and enforces RBAC", async () => {
    const code = (err: unknown): number | undefined => (err as { code?: number }).code;
    const clientFor = async (audience: string): Promise<CoreV1Api> => {
      const { token } = await kube.requestToken(namespace, serviceAccount, audience);
      return kube.kubeConfigForToken(token).makeApiClient(CoreV1Api);
    };
    // Authenticated (an API audience) but without a Role: forbidden.
    for (const audience of kube.apiAudiences) {
      await assert.rejects((await clientFor(audience)).listNamespacedSecret({ namespace }), (err) => code(err) === 403);
    }
    // A token for OpenBao's audience is not accepted by the API server at all.
    await assert.rejects(
      (await clientFor("openbao-internal")).listNamespacedSecret({ namespace }),
      (err) => code(err) === 401,
    );
  });

  it("installs a CRD that is served at once, and stores its objects", async () => {
    await kube.installCrds([widgetCrd]);
    const custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
    const group = widgetCrd.spec.group;
    await custom.createNamespacedCustomObject({
      group,
      version: "v1",
      namespace,
      plural: "widgets",
      body: { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w1" }, spec: { size: 3 } },
    });
    const read = (await custom.getNamespacedCustomObject({
      group,
      version: "v1",
      namespace,
      plural: "widgets",
      name: "w1",
    })) as { metadata?: { uid?: string }; spec?: { size?: number } };
    assert.equal(read.spec?.size, 3);
    assert.ok(read.metadata?.uid);
    // The schema is enforced by the server.
    await assert.rejects(
      custom.createNamespacedCustomObject({
        group,
        version: "v1",
        namespace,
        plural: "widgets",
        body: { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w2" }, spec: { size: 0 } },
      }),
      (err: unknown) => (err as { code?: number }).code === 422,
    );
    // Installing the same CRD again (as YAML this time) replaces it and returns once served.
    await kube.installCrds([`# widgets\n---\n${dumpYaml(widgetCrd)}---\n`]);
  });

  async function fetchVersion(): Promise<{ major?: string; minor?: string }> {
    const res = await kubeGet(kube.kubeConfig, "/version");
    assert.equal(res.status, 200);
    return JSON.parse(res.body) as { major?: string; minor?: string };
  }
});
