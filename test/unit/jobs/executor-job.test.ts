/**
 * The executor Job for every provider and auth mode (SPEC §3): the env contract, exactly
 * the volumes that are used, projected tokens with the right audiences, the workload-
 * identity hooks, and the hardened pod. Pure: no servers.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { V1Job } from "@kubernetes/client-node";
import type { ResolvedAuth, ResolvedTarget } from "../../../src/api/predicates.ts";
import { imageNodeFlags } from "../../../src/cli/node-flags.ts";
import { loadBackupConfig } from "../../../src/executor/config.ts";
import {
  buildExecutorJob,
  type ExecutorJobInput,
  executorRuntimeEnv,
  memoryBytes,
} from "../../../src/jobs/executor-job.ts";
import { projectRoot } from "../../servers/catalog.ts";

const jwt: ResolvedAuth = { method: "jwt", role: "backup", path: "jwt" };
const token: ResolvedAuth = { method: "token", secretName: "bao-token", secretKey: "tok" };

function input(
  target: ResolvedTarget,
  auth: ResolvedAuth = jwt,
  extra: Partial<ExecutorJobInput> = {},
): ExecutorJobInput {
  return {
    mode: "backup",
    name: "backup-bao-20261121-030000",
    namespace: "openbao",
    owner: { apiVersion: "openbao.org/v1alpha1", kind: "OpenBaoCluster", name: "bao", uid: "u1", controller: true },
    image: "ghcr.io/example/openbao-backup:0.1.0",
    serviceAccountName: "bao-backup",
    labels: { "app.kubernetes.io/managed-by": "openbao-backup" },
    annotations: {},
    podLabels: {},
    podAnnotations: {},
    activeDeadlineSeconds: 3600,
    jwtAudience: "openbao-internal",
    cluster: { name: "bao", replicas: 3, addresses: undefined },
    auth,
    tlsSecretName: "bao-tls-ca",
    target,
    extraEnv: { BACKUP_TYPE: "scheduled" },
    ...extra,
  };
}

const pod = (job: V1Job) => job.spec?.template.spec;
const container = (job: V1Job) => pod(job)?.containers[0];
const env = (job: V1Job): Record<string, string> =>
  Object.fromEntries((container(job)?.env ?? []).map((e) => [e.name, e.value ?? ""]));
const volumes = (job: V1Job) => Object.fromEntries((pod(job)?.volumes ?? []).map((v) => [v.name, v]));
const mounts = (job: V1Job) =>
  Object.fromEntries((container(job)?.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));

const s3: ResolvedTarget = { provider: "s3", region: "eu-west-1", bucket: "b", partSize: 10485760, concurrency: 3 };

describe("buildExecutorJob", () => {
  test("hardened pod: non-root, read-only root, no capabilities, no API token, backoffLimit 0, deadline", () => {
    const job = buildExecutorJob(input(s3));
    const p = pod(job);
    const c = container(job);
    assert.equal(job.spec?.backoffLimit, 0);
    assert.equal(job.spec?.activeDeadlineSeconds, 3600);
    assert.ok((job.spec?.ttlSecondsAfterFinished ?? 0) > 0);
    assert.equal(p?.restartPolicy, "Never");
    assert.equal(p?.automountServiceAccountToken, false);
    assert.equal(p?.serviceAccountName, "bao-backup");
    assert.equal(p?.securityContext?.runAsNonRoot, true);
    assert.equal(p?.securityContext?.seccompProfile?.type, "RuntimeDefault");
    assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(c?.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(c?.securityContext?.capabilities?.drop, ["ALL"]);
    assert.deepEqual(c?.args, ["backup"]);
    assert.equal(c?.terminationMessagePath, "/dev/termination-log");
    assert.equal(job.metadata?.ownerReferences?.[0]?.uid, "u1");
  });

  test("JWT auth: a projected token with the configured audience, and its path in the env", () => {
    const job = buildExecutorJob(input(s3, jwt, { jwtAudience: "my-audience" }));
    const projected = volumes(job)["openbao-jwt"]?.projected?.sources?.[0]?.serviceAccountToken;
    assert.equal(projected?.audience, "my-audience");
    assert.equal(env(job).BACKUP_AUTH_METHOD, "jwt");
    assert.equal(env(job).BACKUP_JWT_AUTH_ROLE, "backup");
    assert.equal(env(job).BACKUP_JWT_TOKEN_FILE, `${mounts(job)["openbao-jwt"]}/token`);
    assert.equal(volumes(job)["openbao-token"], undefined, "no token Secret volume");
  });

  test("trap 7: static token is mounted from its key and read from the same path backup and restore", () => {
    for (const mode of ["backup", "restore"] as const) {
      const job = buildExecutorJob(input(s3, token, { mode }));
      const secret = volumes(job)["openbao-token"]?.secret;
      assert.equal(secret?.secretName, "bao-token");
      assert.deepEqual(secret?.items, [{ key: "tok", path: "token" }]);
      assert.equal(env(job).BACKUP_TOKEN_FILE, `${mounts(job)["openbao-token"]}/token`);
      assert.equal(volumes(job)["openbao-jwt"], undefined, "no projected OpenBao token");
    }
  });

  test("OpenBao CA from the TLS Secret's ca.crt, path in BACKUP_CA_FILE", () => {
    const job = buildExecutorJob(input(s3));
    assert.deepEqual(volumes(job)["openbao-tls"]?.secret, {
      secretName: "bao-tls-ca",
      optional: true,
      items: [{ key: "ca.crt", path: "ca.crt" }],
    });
    assert.equal(env(job).BACKUP_CA_FILE, `${mounts(job)["openbao-tls"]}/ca.crt`);
  });

  test("Secret volumes are optional and named to the executor, which fails fast on a missing one", () => {
    // Optional: a missing Secret must not hold the Pod in ContainerCreating until the deadline.
    const job = buildExecutorJob(input(s3));
    for (const volume of Object.values(volumes(job))) {
      if (volume?.secret) assert.equal(volume.secret.optional, true, JSON.stringify(volume));
    }
    const required = (env(job).BACKUP_REQUIRED_SECRETS ?? "").split(",");
    assert.ok(required.includes("tls=bao-tls-ca"), required.join(","));
  });

  test("S3 static keys: the credentials Secret is mounted; region, endpoint, path style, part size, concurrency in env", () => {
    const job = buildExecutorJob(
      input({
        ...s3,
        endpoint: "https://minio:9000",
        usePathStyle: true,
        credentialsSecretRef: { name: "s3-creds" },
        partSize: 6291456,
        concurrency: 5,
      }),
    );
    assert.equal(volumes(job)["storage-credentials"]?.secret?.secretName, "s3-creds");
    assert.equal(env(job).BACKUP_CREDENTIALS_DIR, mounts(job)["storage-credentials"]);
    const e = env(job);
    assert.deepEqual(
      [
        e.BACKUP_PROVIDER,
        e.BACKUP_REGION,
        e.BACKUP_ENDPOINT,
        e.BACKUP_USE_PATH_STYLE,
        e.BACKUP_PART_SIZE,
        e.BACKUP_CONCURRENCY,
      ],
      ["s3", "eu-west-1", "https://minio:9000", "true", "6291456", "5"],
    );
  });

  test("S3 IRSA: roleArn projects a token for sts.amazonaws.com and sets the AWS web-identity env", () => {
    const job = buildExecutorJob(input({ ...s3, roleArn: "arn:aws:iam::123456789012:role/backup" }));
    const projected = volumes(job)["aws-iam-token"]?.projected?.sources?.[0]?.serviceAccountToken;
    assert.equal(projected?.audience, "sts.amazonaws.com");
    assert.equal(env(job).AWS_ROLE_ARN, "arn:aws:iam::123456789012:role/backup");
    assert.equal(env(job).AWS_WEB_IDENTITY_TOKEN_FILE, `${mounts(job)["aws-iam-token"]}/token`);
    assert.equal(volumes(job)["storage-credentials"], undefined, "no credentials Secret");
  });

  /*
   * Issue 18: the EKS Pod Identity webhook (aws/amazon-eks-pod-identity-webhook,
   * pkg/handler/handler.go) mutates the Pod when the ServiceAccount carries
   * `eks.amazonaws.com/role-arn`. It adds its volume unless one is NAMED `aws-iam-token` (the
   * current release also wants it projected for its audience with path `token`), a mount at
   * /var/run/secrets/eks.amazonaws.com/serviceaccount unless a mount of that NAME exists, and
   * the web-identity env unless AWS_ROLE_ARN or AWS_WEB_IDENTITY_TOKEN_FILE is set. The real
   * apiserver check is test/operator/irsa-webhook.test.ts.
   */
  const webhookPath = "/var/run/secrets/eks.amazonaws.com/serviceaccount";

  test("S3 IRSA, ServiceAccount with the EKS annotation: the webhook finds its own token and adds nothing", () => {
    for (const mode of ["backup", "restore", "confirm"] as const) {
      const job = buildExecutorJob(input({ ...s3, roleArn: "arn:aws:iam::123456789012:role/backup" }, jwt, { mode }));
      // Skips its volume: one of its name, projected for sts.amazonaws.com at path "token".
      const named = (pod(job)?.volumes ?? []).filter((v) => v.name === "aws-iam-token");
      assert.equal(named.length, 1, mode);
      assert.deepEqual(
        named[0]?.projected?.sources?.map((s) => s.serviceAccountToken),
        [{ audience: "sts.amazonaws.com", expirationSeconds: 3600, path: "token" }],
      );
      // Skips its mount: the container mounts that name, and nothing else, at the webhook's path.
      const atPath = (container(job)?.volumeMounts ?? []).filter((m) => m.mountPath === webhookPath);
      assert.deepEqual(
        atPath.map((m) => m.name),
        ["aws-iam-token"],
        mode,
      );
      // Skips its env: ours point at that token, so target.roleArn is the role used.
      assert.equal(env(job).AWS_ROLE_ARN, "arn:aws:iam::123456789012:role/backup");
      assert.equal(env(job).AWS_WEB_IDENTITY_TOKEN_FILE, `${webhookPath}/token`);
    }
  });

  test("S3 IRSA, ServiceAccount without the annotation: the same Pod (the webhook does nothing)", () => {
    // The Job does not depend on the ServiceAccount's annotations: the webhook is what differs.
    const job = buildExecutorJob(input({ ...s3, roleArn: "arn:aws:iam::123456789012:role/backup" }));
    assert.deepEqual(Object.keys(volumes(job)).sort(), ["aws-iam-token", "openbao-jwt", "openbao-tls"]);
  });

  test("no roleArn: nothing of the webhook's, so an annotated ServiceAccount gets its token injected cleanly", () => {
    const job = buildExecutorJob(input(s3));
    assert.equal(volumes(job)["aws-iam-token"], undefined);
    assert.ok(!(container(job)?.volumeMounts ?? []).some((m) => m.mountPath === webhookPath));
    assert.equal(env(job).AWS_ROLE_ARN, undefined);
    assert.equal(env(job).AWS_WEB_IDENTITY_TOKEN_FILE, undefined);
  });

  test("ambient identity (S3 default chain, GCS ADC, Azure managed identity): no credentials volume at all", () => {
    for (const target of [
      s3,
      { provider: "gcs", bucket: "b", gcs: { project: "p" }, partSize: 10485760, concurrency: 3 },
      { provider: "azure", bucket: "c", azure: { storageAccount: "acct" }, partSize: 10485760, concurrency: 3 },
    ] as ResolvedTarget[]) {
      const job = buildExecutorJob(input(target));
      assert.equal(volumes(job)["storage-credentials"], undefined, target.provider);
      assert.equal(volumes(job)["aws-iam-token"], undefined, target.provider);
    }
  });

  test("GCS key and Azure key / connection string come from the credentials Secret; provider settings in env", () => {
    const gcs = buildExecutorJob(
      input({
        provider: "gcs",
        bucket: "b",
        gcs: { project: "p" },
        credentialsSecretRef: { name: "gcs" },
        partSize: 10485760,
        concurrency: 3,
      }),
    );
    assert.equal(volumes(gcs)["storage-credentials"]?.secret?.secretName, "gcs");
    assert.equal(env(gcs).BACKUP_GCS_PROJECT, "p");
    assert.equal(env(gcs).BACKUP_REGION, undefined, "S3-only settings stay out");
    const azure = buildExecutorJob(
      input({
        provider: "azure",
        bucket: "b",
        azure: { storageAccount: "acct", container: "c" },
        credentialsSecretRef: { name: "az" },
        partSize: 10485760,
        concurrency: 3,
      }),
    );
    assert.equal(volumes(azure)["storage-credentials"]?.secret?.secretName, "az");
    assert.equal(env(azure).BACKUP_AZURE_STORAGE_ACCOUNT, "acct");
    assert.equal(env(azure).BACKUP_AZURE_CONTAINER, "c");
  });

  test("server-side encryption reaches backup, restore and confirm Jobs, each field in its variable, as the executor reads it", () => {
    const targets: [ResolvedTarget, Record<string, string>, unknown][] = [
      [
        { ...s3, encryption: { type: "aws:kms", kmsKeyId: "alias/openbao" } },
        { BACKUP_SSE: "aws:kms", BACKUP_SSE_KMS_KEY_ID: "alias/openbao" },
        { type: "aws:kms", kmsKeyId: "alias/openbao" },
      ],
      [{ ...s3, encryption: { type: "AES256" } }, { BACKUP_SSE: "AES256" }, { type: "AES256" }],
      [
        {
          provider: "gcs",
          bucket: "b",
          encryption: { kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" },
          partSize: 10485760,
          concurrency: 3,
        },
        { BACKUP_GCS_KMS_KEY_NAME: "projects/p/locations/l/keyRings/r/cryptoKeys/k" },
        { kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" },
      ],
      [
        {
          provider: "azure",
          bucket: "b",
          azure: { storageAccount: "acct" },
          encryption: { encryptionScope: "scope-1" },
          partSize: 10485760,
          concurrency: 3,
        },
        { BACKUP_AZURE_ENCRYPTION_SCOPE: "scope-1" },
        { encryptionScope: "scope-1" },
      ],
      [s3, {}, undefined],
    ];
    const names = ["BACKUP_SSE", "BACKUP_SSE_KMS_KEY_ID", "BACKUP_GCS_KMS_KEY_NAME", "BACKUP_AZURE_ENCRYPTION_SCOPE"];
    for (const [target, expected, parsed] of targets) {
      for (const mode of ["backup", "restore", "confirm"] as const) {
        const e = env(buildExecutorJob(input(target, jwt, { mode, tlsSecretName: undefined })));
        const set = Object.fromEntries(names.filter((n) => e[n] !== undefined).map((n) => [n, e[n]]));
        assert.deepEqual(set, expected, `${target.provider} ${mode}`);
        assert.deepEqual(loadBackupConfig(e, []).target.encryption, parsed, `${target.provider} ${mode}: parsed`);
      }
    }
  });

  test("target.objectLock reaches the executor as its three settings, and parses back to the same lock", () => {
    const locked: ResolvedTarget = {
      ...s3,
      objectLock: { mode: "COMPLIANCE", grace: "12h", preUpgradeLegalHold: true },
    };
    const e = env(buildExecutorJob(input(locked, jwt, { mode: "backup" })));
    assert.equal(e.BACKUP_OBJECT_LOCK_MODE, "COMPLIANCE");
    assert.equal(e.BACKUP_OBJECT_LOCK_GRACE, "12h");
    assert.equal(e.BACKUP_OBJECT_LOCK_PRE_UPGRADE_LEGAL_HOLD, "true");
    const parsed = loadBackupConfig({ ...e, BACKUP_RETENTION_MAX_AGE: "30d" }, []).target;
    assert.equal(parsed.provider, "s3");
    assert.deepEqual(parsed.provider === "s3" ? parsed.objectLock : undefined, {
      mode: "COMPLIANCE",
      graceMs: 12 * 3600_000,
      preUpgradeLegalHold: true,
    });
    const none = env(buildExecutorJob(input(s3, jwt, { mode: "backup" })));
    assert.equal(none.BACKUP_OBJECT_LOCK_MODE, undefined);
  });

  test("workload-identity webhooks: pod labels and annotations are copied, ours cannot be overridden", () => {
    const job = buildExecutorJob(
      input(s3, jwt, {
        podLabels: { "azure.workload.identity/use": "true", "app.kubernetes.io/managed-by": "someone-else" },
        podAnnotations: { "example.com/x": "y" },
      }),
    );
    const meta = job.spec?.template.metadata;
    assert.equal(meta?.labels?.["azure.workload.identity/use"], "true");
    assert.equal(meta?.labels?.["app.kubernetes.io/managed-by"], "openbao-backup");
    assert.equal(meta?.annotations?.["example.com/x"], "y");
  });

  test("memory follows partSize × (concurrency + 2) plus Node's baseline, so large parts are not OOM-killed", () => {
    const small = buildExecutorJob(input(s3));
    assert.equal(container(small)?.resources?.limits?.memory, `${10 * 5 + 256}Mi`);
    const large = buildExecutorJob(input({ ...s3, partSize: 512 * 1024 * 1024, concurrency: 4 }));
    assert.equal(container(large)?.resources?.limits?.memory, `${512 * 6 + 256}Mi`);
    assert.equal(container(large)?.resources?.requests?.memory, container(large)?.resources?.limits?.memory);
    // Dead stream buffers are freed every few MiB, not after 64 MiB (BENCHMARKS.md).
    assert.equal(env(small).NODE_OPTIONS, "--max-semi-space-size=1");
  });

  test("docs/install.md states the Job's NODE_OPTIONS and the image's heap flag as they are set", () => {
    const install = readFileSync(join(projectRoot, "docs", "install.md"), "utf8");
    assert.ok(install.includes(`\`NODE_OPTIONS=${executorRuntimeEnv.NODE_OPTIONS}\``), "NODE_OPTIONS");
    const heapFlag = imageNodeFlags.find((flag) => flag.startsWith("--initial-old-space-size="));
    assert.ok(heapFlag, "the image carries the heap flag");
    assert.ok(install.includes(`entrypoint \`${heapFlag}\``), heapFlag);
    // Node refuses it in NODE_OPTIONS (exit 9): it must never move there.
    assert.ok(!executorRuntimeEnv.NODE_OPTIONS?.includes("--initial-old-space-size"));
  });

  test("a size hint that raises the part size raises the memory with it (issue 18: any size)", () => {
    const GiB = 1024 ** 3;
    // 200 GiB on S3 needs parts of ceil(200 GiB / 10,000) → 21 MiB: memory follows.
    const hinted = buildExecutorJob(input(s3, jwt, { sizeHint: 200 * GiB }));
    assert.equal(container(hinted)?.resources?.limits?.memory, `${21 * 5 + 256}Mi`);
    // A hint the configured parts already hold changes nothing; GCS has no part limit.
    assert.equal(container(buildExecutorJob(input(s3, jwt, { sizeHint: GiB })))?.resources?.limits?.memory, "306Mi");
    const gcs: ResolvedTarget = { provider: "gcs", bucket: "b", partSize: 10485760, concurrency: 3 };
    assert.equal(
      container(buildExecutorJob(input(gcs, jwt, { sizeHint: 200 * GiB })))?.resources?.limits?.memory,
      "306Mi",
    );
  });

  test("spec.backup.resources over the computed values: a limit alone is also the request, never request > limit", () => {
    const resources = (spec: ExecutorJobInput["resources"]) =>
      container(buildExecutorJob(input(s3, jwt, { resources: spec })))?.resources;
    assert.deepEqual(resources(undefined), { requests: { cpu: "100m", memory: "306Mi" }, limits: { memory: "306Mi" } });
    assert.deepEqual(resources({ limits: { memory: "1Gi", cpu: "2" } }), {
      requests: { cpu: "100m", memory: "1Gi" },
      limits: { memory: "1Gi", cpu: "2" },
    });
    // A request alone keeps the computed limit while that is larger, and raises it otherwise.
    assert.deepEqual(resources({ requests: { memory: "128Mi", cpu: "500m" } }), {
      requests: { cpu: "500m", memory: "128Mi" },
      limits: { memory: "306Mi" },
    });
    assert.deepEqual(resources({ requests: { memory: "2Gi" } })?.limits, { memory: "2Gi" });
    assert.equal(memoryBytes("1.5Gi"), 1.5 * 1024 ** 3);
    assert.equal(memoryBytes("500M"), 500e6);
    assert.ok(Number.isNaN(memoryBytes("lots")));
  });

  test("finished Jobs are kept a day unless the operator says otherwise (--job-ttl)", () => {
    assert.equal(buildExecutorJob(input(s3)).spec?.ttlSecondsAfterFinished, 86_400);
    assert.equal(buildExecutorJob(input(s3, jwt, { ttlSecondsAfterFinished: 30 })).spec?.ttlSecondsAfterFinished, 30);
  });

  test("explicit member addresses and the replica count reach the executor", () => {
    const job = buildExecutorJob(
      input(s3, jwt, { cluster: { name: "bao", replicas: 3, addresses: ["https://a:8200", "https://b:8200"] } }),
    );
    assert.equal(env(job).BACKUP_OPENBAO_ADDRESSES, "https://a:8200,https://b:8200");
    assert.equal(env(job).CLUSTER_REPLICAS, "3");
  });
});
