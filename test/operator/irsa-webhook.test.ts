/**
 * Issue 18: `target.roleArn` together with a ServiceAccount that carries the EKS role
 * annotation. The executor Job projects its own web-identity token; the EKS Pod Identity
 * webhook (github.com/aws/amazon-eks-pod-identity-webhook, pkg/handler/handler.go) mutates
 * every Pod whose ServiceAccount has `eks.amazonaws.com/role-arn`. Both must agree, or the
 * Pod is rejected and every backup dies at `activeDeadlineSeconds`.
 *
 * `eksWebhookPatch` below reproduces the webhook's mutation as a pure function, following its
 * rules as read in handler.go (`getPodSpecPatch`, `findTokenVolume`, `addEnvToContainer`):
 * - nothing happens unless the Pod's ServiceAccount has `eks.amazonaws.com/role-arn`;
 * - the token volume is recognised by its NAME, `aws-iam-token`: absent, it is added (a
 *   projected token, audience `sts.amazonaws.com` unless the ServiceAccount's
 *   `eks.amazonaws.com/audience` says otherwise, path `token`); present, it is left alone.
 *   The current webhook also requires that volume to be a projected token with the same
 *   audience and path, and otherwise does not mutate the Pod at all; older releases
 *   (v1beta1 admission) look at the name only. Both are emulated (`Variant`);
 * - in each container, `AWS_ROLE_ARN` / `AWS_WEB_IDENTITY_TOKEN_FILE` are added unless one is
 *   already set, AWS_REGION / AWS_DEFAULT_REGION and AWS_STS_REGIONAL_ENDPOINTS likewise, and
 *   a mount of `aws-iam-token` at /var/run/secrets/eks.amazonaws.com/serviceaccount is added
 *   unless a mount of that NAME exists; the mount path is never compared.
 *
 * The function serves as a real mutating admission webhook registered with a real
 * kube-apiserver, so the apiserver applies its JSON patch and then validates the Pod as it
 * would on EKS; Pods are created with `dryRun: All` (there is no kubelet). A Pod that mounts
 * another volume at the webhook's path is then rejected for a duplicate mountPath.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type V1Container,
  type V1EnvVar,
  type V1Job,
  type V1Pod,
  type V1Volume,
} from "@kubernetes/client-node";
import type { ResolvedAuth, ResolvedTarget } from "../../src/api/predicates.ts";
import { buildExecutorJob, type ExecutorJobInput } from "../../src/jobs/executor-job.ts";
import { type KubeHandle, startKube } from "../servers/kube.ts";
import { superviseServers, waitFor } from "../servers/process.ts";
import { issueCertificate } from "../servers/tls.ts";

superviseServers();

// ── the webhook's mutation, as a pure function ─────────────────────────────────────────────

const annotationDomain = "eks.amazonaws.com";
const webhookVolumeName = "aws-iam-token";
const webhookMountPath = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
const webhookTokenName = "token";
const defaultAudience = "sts.amazonaws.com";
const defaultTokenExpiration = 86_400;

/** `current`: admission/v1 handler with `findTokenVolume`; `name-only`: older releases. */
type Variant = "current" | "name-only";

interface WebhookFlags {
  readonly variant: Variant;
  /** `--aws-default-region`: EKS sets it, so Pods get AWS_REGION and AWS_DEFAULT_REGION. */
  readonly region: string;
  /** `--sts-regional-endpoint`. */
  readonly regionalSts: boolean;
}

interface PatchOperation {
  readonly op: "add";
  readonly path: string;
  readonly value: unknown;
}

/** The JSON patch the webhook answers for `pod`, or undefined for "allowed, no patch". */
function eksWebhookPatch(
  pod: V1Pod,
  serviceAccountAnnotations: Readonly<Record<string, string>>,
  flags: WebhookFlags,
): PatchOperation[] | undefined {
  const roleArn = serviceAccountAnnotations[`${annotationDomain}/role-arn`];
  if (!roleArn) return undefined;
  const audience = serviceAccountAnnotations[`${annotationDomain}/audience`] ?? defaultAudience;
  const regionalSts =
    serviceAccountAnnotations[`${annotationDomain}/sts-regional-endpoints`] === undefined
      ? flags.regionalSts
      : serviceAccountAnnotations[`${annotationDomain}/sts-regional-endpoints`] === "true";
  const expiration = Number(
    pod.metadata?.annotations?.[`${annotationDomain}/token-expiration`] ??
      serviceAccountAnnotations[`${annotationDomain}/token-expiration`] ??
      defaultTokenExpiration,
  );
  const skip = new Set(
    (pod.metadata?.annotations?.[`${annotationDomain}/skip-containers`] ?? "").split(",").filter(Boolean),
  );
  const spec = pod.spec ?? { containers: [] };

  const existing = (spec.volumes ?? []).find((v) => v.name === webhookVolumeName);
  if (existing && flags.variant === "current") {
    const injected = existing.projected?.sources?.some(
      (s) => s.serviceAccountToken?.audience === audience && s.serviceAccountToken.path === webhookTokenName,
    );
    if (!injected) return undefined; // "volume is reserved for the projected service account token"
  }

  const tokenFile = `${webhookMountPath}/${webhookTokenName}`;
  const mutate = (c: V1Container): V1Container => {
    if (skip.has(c.name)) return c;
    const names = new Set((c.env ?? []).map((e) => e.name));
    const webIdentity = names.has("AWS_ROLE_ARN") || names.has("AWS_WEB_IDENTITY_TOKEN_FILE");
    const region = names.has("AWS_REGION") || names.has("AWS_DEFAULT_REGION");
    const sts = names.has("AWS_STS_REGIONAL_ENDPOINTS");
    if (webIdentity && region && sts) return c;
    const env: V1EnvVar[] = [...(c.env ?? [])];
    if (!sts && regionalSts) env.push({ name: "AWS_STS_REGIONAL_ENDPOINTS", value: "regional" });
    if (!region && flags.region) {
      env.push({ name: "AWS_DEFAULT_REGION", value: flags.region }, { name: "AWS_REGION", value: flags.region });
    }
    if (!webIdentity) {
      env.push({ name: "AWS_ROLE_ARN", value: roleArn }, { name: "AWS_WEB_IDENTITY_TOKEN_FILE", value: tokenFile });
    }
    const mounts = [...(c.volumeMounts ?? [])];
    if (!mounts.some((m) => m.name === webhookVolumeName)) {
      mounts.push({ name: webhookVolumeName, readOnly: true, mountPath: webhookMountPath });
    }
    return { ...c, env, volumeMounts: mounts };
  };

  const patch: PatchOperation[] = [];
  if (!existing) {
    const volume: V1Volume = {
      name: webhookVolumeName,
      projected: {
        sources: [{ serviceAccountToken: { audience, expirationSeconds: expiration, path: webhookTokenName } }],
      },
    };
    patch.push(
      spec.volumes === undefined
        ? { op: "add", path: "/spec/volumes", value: [volume] }
        : { op: "add", path: "/spec/volumes/0", value: volume },
    );
  }
  patch.push({ op: "add", path: "/spec/containers", value: spec.containers.map(mutate) });
  if ((spec.initContainers ?? []).length > 0) {
    patch.push({ op: "add", path: "/spec/initContainers", value: (spec.initContainers ?? []).map(mutate) });
  }
  return patch;
}

/** Applies the patch the way the apiserver does for the operations the webhook emits. */
function applyPatch(pod: V1Pod, patch: readonly PatchOperation[] | undefined): V1Pod {
  const out = structuredClone(pod) as V1Pod & { spec: NonNullable<V1Pod["spec"]> };
  for (const op of patch ?? []) {
    if (op.path === "/spec/volumes") out.spec.volumes = op.value as V1Volume[];
    else if (op.path === "/spec/volumes/0") out.spec.volumes = [op.value as V1Volume, ...(out.spec.volumes ?? [])];
    else if (op.path === "/spec/containers") out.spec.containers = op.value as V1Container[];
    else if (op.path === "/spec/initContainers") out.spec.initContainers = op.value as V1Container[];
    else throw new Error(`unexpected patch path ${op.path}`);
  }
  return out;
}

// ── the executor Pod ───────────────────────────────────────────────────────────────────────

const namespace = "irsa";
const roleArn = "arn:aws:iam::123456789012:role/openbao-backup";
const otherRoleArn = "arn:aws:iam::123456789012:role/someone-else";
const jwt: ResolvedAuth = { method: "jwt", role: "backup", path: "jwt" };
const s3: ResolvedTarget = {
  provider: "s3",
  region: "eu-west-1",
  bucket: "openbao-backups",
  partSize: 10 * 1024 * 1024,
  concurrency: 3,
};

function executorJob(serviceAccountName: string, target: ResolvedTarget, mode: ExecutorJobInput["mode"]): V1Job {
  return buildExecutorJob({
    mode,
    name: `${mode}-bao-20261121-030000`,
    namespace,
    owner: { apiVersion: "openbao.org/v1alpha1", kind: "OpenBaoCluster", name: "bao", uid: "u1", controller: true },
    image: "ghcr.io/example/openbao-backup:0.1.0",
    serviceAccountName,
    labels: { "app.kubernetes.io/managed-by": "openbao-backup" },
    annotations: {},
    podLabels: {},
    podAnnotations: {},
    activeDeadlineSeconds: 3600,
    jwtAudience: "openbao-internal",
    cluster: { name: "bao", replicas: 3, addresses: undefined },
    auth: jwt,
    tlsSecretName: "bao-tls-ca",
    target,
    extraEnv: { BACKUP_TYPE: "scheduled" },
  });
}

/** The Pod the Job controller would create from the Job's template. */
function podOf(job: V1Job): V1Pod {
  const template = job.spec?.template;
  if (!template?.spec) throw new Error("the Job has no pod template");
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { ...template.metadata, name: `${job.metadata?.name}-x7k2p`, namespace },
    spec: structuredClone(template.spec),
  };
}

const envOf = (c: V1Container | undefined): Record<string, string> =>
  Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? ""]));

/** What makes a Pod invalid here: two volumes of one name, two mounts at one path. */
function collisions(pod: V1Pod): string[] {
  const found: string[] = [];
  const names = (pod.spec?.volumes ?? []).map((v) => v.name);
  for (const n of new Set(names)) if (names.filter((x) => x === n).length > 1) found.push(`volume ${n}`);
  for (const c of pod.spec?.containers ?? []) {
    const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
    for (const p of new Set(paths)) if (paths.filter((x) => x === p).length > 1) found.push(`mountPath ${p}`);
  }
  return found;
}

/** Volume names and mounts, without the defaults the apiserver fills in (defaultMode…). */
const layout = (pod: V1Pod) => ({
  volumes: (pod.spec?.volumes ?? []).map((v) => v.name),
  mounts: (pod.spec?.containers[0]?.volumeMounts ?? []).map((m) => `${m.name}:${m.mountPath}`),
});

const eks: WebhookFlags = { variant: "current", region: "eu-west-1", regionalSts: true };
const annotated = { "eks.amazonaws.com/role-arn": roleArn };

describe("the EKS webhook emulation reproduces the webhook's own fixtures", () => {
  // pkg/handler/testdata/rawPodHasForeignTokenVolume.pod.yaml: expectedPatch null.
  test("a volume named aws-iam-token for another audience: no mutation (current)", () => {
    const pod: V1Pod = {
      spec: {
        serviceAccountName: "default",
        containers: [{ name: "app", image: "amazonlinux" }],
        volumes: [
          {
            name: "aws-iam-token",
            projected: {
              sources: [{ serviceAccountToken: { audience: "vault", expirationSeconds: 3600, path: "token" } }],
            },
          },
        ],
      },
    };
    assert.equal(eksWebhookPatch(pod, annotated, { ...eks, region: "", regionalSts: false }), undefined);
  });

  // pkg/handler/testdata/rawPodHasTokenVolume.pod.yaml: the volume is left alone, a container
  // without the env or mount still gets both.
  test("its own token volume already there: only containers are patched", () => {
    const pod: V1Pod = {
      spec: {
        containers: [{ name: "sidecar", image: "amazonlinux" }],
        volumes: [
          {
            name: "aws-iam-token",
            projected: {
              sources: [
                { serviceAccountToken: { audience: defaultAudience, expirationSeconds: 86400, path: "token" } },
              ],
            },
          },
        ],
      },
    };
    const patch = eksWebhookPatch(pod, annotated, { ...eks, region: "", regionalSts: false });
    assert.deepEqual(
      patch?.map((p) => p.path),
      ["/spec/containers"],
    );
    const [sidecar] = applyPatch(pod, patch).spec?.containers ?? [];
    assert.equal(envOf(sidecar).AWS_WEB_IDENTITY_TOKEN_FILE, `${webhookMountPath}/token`);
    assert.deepEqual(sidecar?.volumeMounts, [{ name: "aws-iam-token", readOnly: true, mountPath: webhookMountPath }]);
  });

  test("no role annotation on the ServiceAccount: no mutation", () => {
    assert.equal(eksWebhookPatch(podOf(executorJob("bao-backup", s3, "backup")), {}, eks), undefined);
  });
});

describe("the executor Pod through the EKS webhook (pure)", () => {
  for (const variant of ["current", "name-only"] as const) {
    test(`${variant}: roleArn and the role annotation: nothing collides, our role and token stay`, () => {
      const pod = podOf(executorJob("bao-backup", { ...s3, roleArn }, "backup"));
      const mutated = applyPatch(pod, eksWebhookPatch(pod, { "eks.amazonaws.com/role-arn": otherRoleArn }, eks));
      assert.deepEqual(collisions(mutated), []);
      const env = envOf(mutated.spec?.containers[0]);
      assert.equal(env.AWS_ROLE_ARN, roleArn, "target.roleArn wins over the annotation");
      const mounted = mutated.spec?.containers[0]?.volumeMounts?.filter((m) => m.mountPath === webhookMountPath);
      assert.equal(mounted?.length, 1);
      assert.equal(env.AWS_WEB_IDENTITY_TOKEN_FILE, `${mounted?.[0]?.mountPath}/token`);
    });
  }
});

// ── against a real kube-apiserver ──────────────────────────────────────────────────────────

interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request: { uid: string; namespace: string; object: V1Pod };
}

interface StatusBody {
  code: number;
  message: string;
}

function statusOf(err: unknown): StatusBody {
  const body = (err as { body?: unknown }).body;
  if (typeof body !== "string") throw err;
  return JSON.parse(body) as StatusBody;
}

describe("the executor Pod admitted by a real kube-apiserver with the EKS webhook", () => {
  let kube: KubeHandle;
  let core: CoreV1Api;
  let webhook: Server;
  let flags: WebhookFlags = eks;
  let reviews = 0;

  before(async () => {
    kube = await startKube({ name: "irsa-kube" });
    core = kube.kubeConfig.makeApiClient(CoreV1Api);
    await kube.createNamespace(namespace);

    const cert = issueCertificate(kube.ca, "eks-pod-identity-webhook");
    webhook = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as AdmissionReview;
        const pod = review.request.object;
        // The real webhook reads the ServiceAccount from an informer cache.
        const sa = await core
          .readNamespacedServiceAccount({
            namespace: review.request.namespace,
            name: pod.spec?.serviceAccountName ?? "",
          })
          .catch(() => undefined);
        const patch = eksWebhookPatch(pod, sa?.metadata?.annotations ?? {}, flags);
        reviews++;
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({
            apiVersion: review.apiVersion,
            kind: review.kind,
            response: {
              uid: review.request.uid,
              allowed: true,
              ...(patch
                ? { patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") }
                : {}),
            },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
    const port = (webhook.address() as AddressInfo).port;

    await kube.kubeConfig.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: "pod-identity-webhook" },
        webhooks: [
          {
            name: "iam-for-pods.amazonaws.com",
            clientConfig: {
              url: `https://127.0.0.1:${port}/mutate`,
              caBundle: Buffer.from(kube.caPem).toString("base64"),
            },
            rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
            sideEffects: "None",
            admissionReviewVersions: ["v1"],
            failurePolicy: "Fail",
            reinvocationPolicy: "IfNeeded",
          },
        ],
      },
    });
    // The apiserver picks the configuration up asynchronously: wait until a Pod is mutated.
    await core.createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name: "probe", annotations: annotated } },
    });
    await waitFor(
      async () => {
        const probe = await core.createNamespacedPod({
          namespace,
          dryRun: "All",
          body: {
            metadata: { name: "probe" },
            spec: { serviceAccountName: "probe", containers: [{ name: "c", image: "x" }] },
          },
        });
        return probe.spec?.volumes?.some((v) => v.name === webhookVolumeName);
      },
      { what: "the mutating webhook to be in effect", timeoutMs: 30_000, processes: [kube.apiServer] },
    );
  });
  after(async () => {
    await new Promise((resolve) => webhook?.close(resolve));
    await kube?.stop();
  });

  let accounts = 0;
  async function serviceAccount(annotations: Record<string, string>): Promise<string> {
    const name = `executor-${++accounts}`;
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name, annotations } } });
    return name;
  }

  /** Dry-run create: the webhook mutates, the apiserver validates, nothing is stored. */
  async function admit(pod: V1Pod): Promise<V1Pod> {
    const before = reviews;
    const admitted = await core.createNamespacedPod({ namespace, body: pod, dryRun: "All" });
    assert.ok(reviews > before, "the webhook was called");
    return admitted;
  }

  for (const variant of ["current", "name-only"] as const) {
    for (const mode of ["backup", "restore"] as const) {
      test(`${variant}, ${mode}: roleArn and the EKS role annotation on the ServiceAccount: admitted, one token at the path`, async () => {
        flags = { ...eks, variant };
        const sa = await serviceAccount(annotated);
        const pod = podOf(executorJob(sa, { ...s3, roleArn }, mode));
        let admitted: V1Pod;
        try {
          admitted = await admit(pod);
        } catch (err) {
          assert.fail(`the executor Pod was rejected: ${statusOf(err).message}`);
        }
        const [container] = admitted.spec?.containers ?? [];
        const atPath = container?.volumeMounts?.filter((m) => m.mountPath === webhookMountPath) ?? [];
        assert.equal(atPath.length, 1, JSON.stringify(container?.volumeMounts));
        const volume = admitted.spec?.volumes?.filter((v) => v.name === atPath[0]?.name) ?? [];
        assert.equal(volume.length, 1);
        assert.equal(volume[0]?.projected?.sources?.[0]?.serviceAccountToken?.audience, defaultAudience);
        const env = envOf(container);
        assert.equal(env.AWS_ROLE_ARN, roleArn);
        assert.equal(env.AWS_WEB_IDENTITY_TOKEN_FILE, `${webhookMountPath}/token`);
        assert.equal(
          container?.env?.filter((e) => e.name === "AWS_ROLE_ARN").length,
          1,
          "the webhook added no second AWS_ROLE_ARN",
        );
      });
    }
  }

  test("roleArn and an annotation naming another role: admitted, target.roleArn is the one used", async () => {
    flags = eks;
    const sa = await serviceAccount({ "eks.amazonaws.com/role-arn": otherRoleArn });
    const admitted = await admit(podOf(executorJob(sa, { ...s3, roleArn }, "backup")));
    assert.equal(envOf(admitted.spec?.containers[0]).AWS_ROLE_ARN, roleArn);
  });

  test("roleArn and an annotated audience other than sts.amazonaws.com: admitted, not mutated", async () => {
    flags = eks;
    const sa = await serviceAccount({ ...annotated, "eks.amazonaws.com/audience": "sts.example.com" });
    const pod = podOf(executorJob(sa, { ...s3, roleArn }, "backup"));
    const admitted = await admit(pod);
    assert.deepEqual(layout(admitted), layout(pod));
  });

  test("roleArn, ServiceAccount without the annotation: admitted unchanged", async () => {
    flags = eks;
    const sa = await serviceAccount({});
    const pod = podOf(executorJob(sa, { ...s3, roleArn }, "backup"));
    const admitted = await admit(pod);
    assert.deepEqual(layout(admitted), layout(pod));
    assert.deepEqual(envOf(admitted.spec?.containers[0]), envOf(pod.spec?.containers[0]));
  });

  test("no roleArn, the annotation only (the default chain): the webhook's token is injected, admitted", async () => {
    flags = eks;
    const sa = await serviceAccount(annotated);
    const admitted = await admit(podOf(executorJob(sa, s3, "backup")));
    const env = envOf(admitted.spec?.containers[0]);
    assert.equal(env.AWS_ROLE_ARN, roleArn);
    assert.equal(env.AWS_WEB_IDENTITY_TOKEN_FILE, `${webhookMountPath}/token`);
    assert.ok(admitted.spec?.volumes?.some((v) => v.name === webhookVolumeName));
  });
});
