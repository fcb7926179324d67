import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  ConfigError,
  loadBackupConfig,
  loadRestoreConfig,
  terminationMessageTarget,
} from "../../../src/executor/config.ts";
import { classify, stoppedBySignal } from "../../../src/executor/failure.ts";
import { login } from "../../../src/executor/session.ts";
import { resolveSettings, UsageError } from "../../../src/executor/settings.ts";
import { OpenBaoHttp } from "../../../src/openbao/http.ts";

const base = {
  CLUSTER_NAME: "bao",
  CLUSTER_NAMESPACE: "openbao",
  BACKUP_BUCKET: "backups",
  BACKUP_JWT_AUTH_ROLE: "backup",
};

describe("executor configuration", () => {
  test("defaults match the Job the operator builds", () => {
    const c = loadBackupConfig({ ...base, CLUSTER_REPLICAS: "3" }, []);
    assert.deepEqual(c.members, [
      "https://bao-0.bao.openbao.svc:8200",
      "https://bao-1.bao.openbao.svc:8200",
      "https://bao-2.bao.openbao.svc:8200",
    ]);
    assert.deepEqual(c.auth, {
      method: "jwt",
      mountPath: "jwt",
      role: "backup",
      jwtFile: "/var/run/secrets/openbao/token",
    });
    assert.equal(c.target.provider, "s3");
    assert.equal(c.target.partSize, 10 * 1024 * 1024);
    assert.equal(c.target.concurrency, 3);
    assert.equal(c.kind, "scheduled");
    assert.equal(c.retention, undefined);
    // Not asked for: written only where the kubelet created the file (see result.ts).
    assert.deepEqual(c.terminationMessage, { path: "/dev/termination-log", explicit: false });
    assert.equal(c.credentialsDir, "/etc/bao-backup/storage");
    assert.equal(c.membersDerived, true);
    assert.equal(c.staticToken, undefined);
  });

  test("STATEFULSET_NAME changes the member host names", () => {
    const c = loadBackupConfig({ ...base, STATEFULSET_NAME: "bao-sts", CLUSTER_REPLICAS: "1" }, []);
    assert.deepEqual(c.members, ["https://bao-sts-0.bao.openbao.svc:8200"]);
  });

  test("flags override the environment", () => {
    const c = loadBackupConfig(base, ["--bucket", "other", "--part-size=6291456", "--retention-max-age", "7d"]);
    assert.equal(c.target.bucket, "other");
    assert.equal(c.target.partSize, 6291456);
    assert.deepEqual(c.retention, { maxAgeMs: 7 * 24 * 3600 * 1000 });
  });

  test("every mounted path has an env override", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "ca.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const c = loadRestoreConfig(
      {
        ...base,
        BACKUP_KEY: "a/b.snap",
        BACKUP_AUTH_METHOD: "token",
        BACKUP_TOKEN_FILE: join(dir, "token"),
        BACKUP_CREDENTIALS_DIR: join(dir, "creds"),
        BACKUP_CA_FILE: join(dir, "ca.crt"),
        BACKUP_TERMINATION_MESSAGE_PATH: join(dir, "term"),
      },
      [],
    );
    // trap 7: static-token restore reads the path it is given, the same variable as backup.
    assert.deepEqual(c.auth, { method: "token", tokenFile: join(dir, "token") });
    assert.equal(c.credentialsDir, join(dir, "creds"));
    assert.deepEqual(c.terminationMessage, { path: join(dir, "term"), explicit: true });
    assert.match(c.tls.caPem ?? "", /BEGIN CERTIFICATE/);
  });

  const bad: [string, Record<string, string>, string[], RegExp][] = [
    ["missing cluster name", { ...base, CLUSTER_NAME: "" }, [], /^CLUSTER_NAME \(--cluster\): is required/],
    ["bad namespace", { ...base, CLUSTER_NAMESPACE: "Not_A_Namespace" }, [], /^CLUSTER_NAMESPACE/],
    ["missing bucket", { ...base, BACKUP_BUCKET: "" }, [], /^BACKUP_BUCKET .*bucket/],
    ["unknown provider", { ...base, BACKUP_PROVIDER: "ftp" }, [], /^BACKUP_PROVIDER .*s3, gcs, azure/],
    ["part size below 5 MiB", { ...base, BACKUP_PART_SIZE: "1024" }, [], /^BACKUP_PART_SIZE/],
    ["concurrency over 16", { ...base, BACKUP_CONCURRENCY: "17" }, [], /^BACKUP_CONCURRENCY/],
    ["zero size hint", { ...base, BACKUP_SIZE_HINT: "0" }, [], /^BACKUP_SIZE_HINT \(--size-hint\): must be at least 1/],
    ["negative size hint", { ...base, BACKUP_SIZE_HINT: "-5" }, [], /^BACKUP_SIZE_HINT .*whole number/],
    ["size hint with a unit", { ...base, BACKUP_SIZE_HINT: "100Gi" }, [], /^BACKUP_SIZE_HINT .*whole number/],
    ["fractional size hint", { ...base, BACKUP_SIZE_HINT: "1.5e9" }, [], /^BACKUP_SIZE_HINT .*whole number/],
    ["size hint past 2^53", { ...base, BACKUP_SIZE_HINT: "9007199254740993" }, [], /^BACKUP_SIZE_HINT .*at most/],
    ["non-numeric concurrency", { ...base, BACKUP_CONCURRENCY: "three" }, [], /^BACKUP_CONCURRENCY .*whole number/],
    ["pathPrefix with ..", { ...base, BACKUP_PATH_PREFIX: "a/../b" }, [], /^BACKUP_PATH_PREFIX/],
    ["bad duration", { ...base, BACKUP_RETENTION_MAX_AGE: "a week" }, [], /^BACKUP_RETENTION_MAX_AGE/],
    ["zero maxCount", { ...base, BACKUP_RETENTION_MAX_COUNT: "0" }, [], /^BACKUP_RETENTION_MAX_COUNT/],
    ["jwt without role", { ...base, BACKUP_JWT_AUTH_ROLE: "" }, [], /^BACKUP_JWT_AUTH_ROLE/],
    ["unknown auth method", { ...base, BACKUP_AUTH_METHOD: "ldap" }, [], /^BACKUP_AUTH_METHOD/],
    ["bad member address", { ...base, BACKUP_OPENBAO_ADDRESSES: "bao-0:8200" }, [], /^BACKUP_OPENBAO_ADDRESSES/],
    [
      "member at the metadata address",
      { ...base, BACKUP_OPENBAO_ADDRESSES: "https://169.254.169.254:8200" },
      [],
      /^BACKUP_OPENBAO_ADDRESSES .*metadata/,
    ],
    [
      "member written as a decimal IPv4",
      { ...base, BACKUP_OPENBAO_ADDRESSES: "https://bao-0:8200,https://2852039166:8200" },
      [],
      /^BACKUP_OPENBAO_ADDRESSES .*canonical/,
    ],
    [
      "endpoint at a link-local address",
      { ...base, BACKUP_ENDPOINT: "http://[fe80::1]:9000" },
      [],
      /^BACKUP_ENDPOINT .*link-local/,
    ],
    ["bad backup type", { ...base, BACKUP_TYPE: "hourly" }, [], /^BACKUP_TYPE/],
    ["explicit CA path missing", { ...base, BACKUP_CA_FILE: "/nonexistent/ca.crt" }, [], /^BACKUP_CA_FILE/],
    ["endpoint with credentials", { ...base, BACKUP_ENDPOINT: "https://user:pw@s3.example" }, [], /^BACKUP_ENDPOINT/],
    ["unknown SSE type", { ...base, BACKUP_SSE: "aws:kms:dsse" }, [], /^BACKUP_SSE \(--sse\): .*AES256 .*aws:kms/],
    ["KMS key without SSE", { ...base, BACKUP_SSE_KMS_KEY_ID: "k" }, [], /^BACKUP_SSE_KMS_KEY_ID \(--sse-kms-key-id\)/],
    [
      "KMS key with AES256",
      { ...base, BACKUP_SSE: "AES256", BACKUP_SSE_KMS_KEY_ID: "k" },
      [],
      /^BACKUP_SSE_KMS_KEY_ID .*aws:kms only/,
    ],
    ["SSE on gcs", { ...base, BACKUP_PROVIDER: "gcs", BACKUP_SSE: "AES256" }, [], /^BACKUP_SSE .*provider s3 only/],
    [
      "GCS key on s3",
      { ...base, BACKUP_GCS_KMS_KEY_NAME: "projects/p/locations/l/keyRings/r/cryptoKeys/k" },
      [],
      /^BACKUP_GCS_KMS_KEY_NAME \(--gcs-kms-key-name\): .*provider gcs only/,
    ],
    [
      "GCS key version",
      {
        ...base,
        BACKUP_PROVIDER: "gcs",
        BACKUP_GCS_KMS_KEY_NAME: "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2",
      },
      [],
      /^BACKUP_GCS_KMS_KEY_NAME .*key version/,
    ],
    [
      "Azure scope on s3",
      { ...base, BACKUP_AZURE_ENCRYPTION_SCOPE: "scope-1" },
      [],
      /^BACKUP_AZURE_ENCRYPTION_SCOPE \(--azure-encryption-scope\): .*provider azure only/,
    ],
    [
      "Azure scope with upper case",
      {
        ...base,
        BACKUP_PROVIDER: "azure",
        BACKUP_AZURE_STORAGE_ACCOUNT: "acct",
        BACKUP_AZURE_ENCRYPTION_SCOPE: "Scope",
      },
      [],
      /^BACKUP_AZURE_ENCRYPTION_SCOPE .*lower-case/,
    ],
  ];
  for (const [name, env, argv, message] of bad) {
    test(`rejects ${name} with an error naming the variable (exit 1)`, () => {
      assert.throws(
        () => loadBackupConfig(env, argv),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, message);
          assert.equal(classify(err).exitCode, 1);
          return true;
        },
      );
    });
  }

  test("encryption settings: BACKUP_SSE / --sse with the KMS key, the GCS key, the Azure scope", () => {
    assert.equal(loadBackupConfig(base, []).target.encryption, undefined);
    assert.deepEqual(loadBackupConfig({ ...base, BACKUP_SSE: "AES256" }, []).target.encryption, { type: "AES256" });
    assert.deepEqual(
      loadBackupConfig({ ...base, BACKUP_SSE: "aws:kms" }, ["--sse-kms-key-id", "alias/openbao"]).target.encryption,
      { type: "aws:kms", kmsKeyId: "alias/openbao" },
    );
    const gcs = loadBackupConfig(
      { ...base, BACKUP_PROVIDER: "gcs", BACKUP_GCS_KMS_KEY_NAME: "projects/p/locations/l/keyRings/r/cryptoKeys/k" },
      [],
    );
    assert.deepEqual(gcs.target.encryption, { kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" });
    const azure = loadRestoreConfig(
      {
        ...base,
        BACKUP_KEY: "openbao/bao/x.snap",
        BACKUP_PROVIDER: "azure",
        BACKUP_AZURE_STORAGE_ACCOUNT: "acct",
        BACKUP_AZURE_ENCRYPTION_SCOPE: "scope-1",
      },
      [],
    );
    assert.deepEqual(azure.target.encryption, { encryptionScope: "scope-1" }, "a restore Job parses it too");
  });

  test("BACKUP_SIZE_HINT (--size-hint) is optional: bytes the upload's part size is planned for", () => {
    assert.equal(loadBackupConfig(base, []).sizeHint, undefined);
    assert.equal(loadBackupConfig({ ...base, BACKUP_SIZE_HINT: "" }, []).sizeHint, undefined);
    assert.equal(loadBackupConfig({ ...base, BACKUP_SIZE_HINT: " 214748364800 " }, []).sizeHint, 200 * 1024 ** 3);
    assert.equal(loadBackupConfig({ ...base, BACKUP_SIZE_HINT: "5" }, ["--size-hint", "1048576"]).sizeHint, 1048576);
  });

  test("restore requires BACKUP_KEY and refuses a manifest key", () => {
    assert.throws(() => loadRestoreConfig(base, []), /BACKUP_KEY/);
    assert.throws(() => loadRestoreConfig({ ...base, BACKUP_KEY: "a/b.snap.json" }, []), /manifest/);
  });

  test("unknown flags are usage errors (and the result line still goes where the environment says)", () => {
    assert.deepEqual(terminationMessageTarget({ BACKUP_TERMINATION_MESSAGE_PATH: "/tmp/t" }, ["--bukket", "x"]), {
      path: "/tmp/t",
      explicit: true,
    });
    assert.deepEqual(terminationMessageTarget({}, ["--termination-message-path", "./result.json"]), {
      path: "./result.json",
      explicit: true,
    });
    assert.throws(() => resolveSettings({}, ["--bukket", "x"]), UsageError);
    assert.throws(() => resolveSettings({}, ["positional"]), UsageError);
  });
});

describe("executor configuration outside Kubernetes (a workstation restore)", () => {
  const workstation = {
    BACKUP_BUCKET: "backups",
    BACKUP_OPENBAO_ADDRESSES: "http://127.0.0.1:8200",
    BACKUP_AUTH_METHOD: "token",
  };

  test("a restore by key needs neither cluster nor namespace when the members are given", () => {
    const c = loadRestoreConfig({ ...workstation, BACKUP_KEY: "openbao/bao/2026-01-01T00-00-00Z-0a1b2c3d.snap" }, []);
    assert.equal(c.cluster, undefined);
    assert.equal(c.source, undefined);
    assert.deepEqual(c.members, ["http://127.0.0.1:8200"]);
    assert.equal(c.membersDerived, false);
  });

  test("without member addresses the cluster is required to derive them, and the error names both ways", () => {
    assert.throws(
      () => loadRestoreConfig({ BACKUP_BUCKET: "b", BACKUP_AUTH_METHOD: "token", BACKUP_KEY: "a/b.snap" }, []),
      (err: unknown) =>
        err instanceof ConfigError &&
        /^CLUSTER_NAME \(--cluster\): is required: .*--openbao-addresses/.test(err.message),
    );
  });

  test("latest chooses among the backups of --cluster/--namespace, or of --source-cluster/--source-namespace", () => {
    const own = loadRestoreConfig({ ...workstation, BACKUP_KEY: "latest" }, ["--cluster", "bao", "--namespace", "ops"]);
    assert.equal(own.key, "latest");
    assert.deepEqual(own.source, { name: "bao", namespace: "ops" });
    const other = loadRestoreConfig({ ...workstation, CLUSTER_NAME: "bao-new", CLUSTER_NAMESPACE: "ops" }, [
      "--key",
      "latest",
      "--source-cluster",
      "bao-old",
    ]);
    assert.deepEqual(other.cluster, { name: "bao-new", namespace: "ops" });
    assert.deepEqual(other.source, { name: "bao-old", namespace: "ops" });
    const sourceOnly = loadRestoreConfig({ ...workstation, BACKUP_KEY: "latest" }, [
      "--source-cluster=bao-old",
      "--source-namespace=old",
    ]);
    assert.equal(sourceOnly.cluster, undefined);
    assert.deepEqual(sourceOnly.source, { name: "bao-old", namespace: "old" });
  });

  const refused: [string, Record<string, string>, string[], RegExp][] = [
    ["latest without a cluster", { ...workstation, BACKUP_KEY: "latest" }, [], /^CLUSTER_NAME \(--cluster\): .*latest/],
    [
      "latest with a cluster but no namespace",
      { ...workstation, BACKUP_KEY: "latest" },
      ["--cluster", "bao"],
      /^CLUSTER_NAMESPACE \(--namespace\): is required/,
    ],
    [
      "a source cluster without its namespace (and no --namespace)",
      { ...workstation, BACKUP_KEY: "latest" },
      ["--source-cluster", "bao-old"],
      /^BACKUP_SOURCE_NAMESPACE \(--source-namespace\): is required: .*default: --namespace/,
    ],
    [
      "a source cluster that is not a name",
      { ...workstation, BACKUP_KEY: "latest" },
      ["--source-cluster", "Bad_Name", "--source-namespace", "ops"],
      /^BACKUP_SOURCE_CLUSTER \(--source-cluster\): "Bad_Name" is not/,
    ],
    [
      "a source cluster with a full key",
      { ...workstation, BACKUP_KEY: "a/b.snap" },
      ["--source-cluster", "bao"],
      /^BACKUP_SOURCE_CLUSTER \(--source-cluster\): only applies with --key latest/,
    ],
    [
      "--expect-sealed without --force",
      { ...workstation, BACKUP_KEY: "a/b.snap" },
      ["--expect-sealed"],
      /^BACKUP_EXPECT_SEALED \(--expect-sealed\): only applies with --force/,
    ],
    [
      "jwt (the default) without a role: names the static-token way",
      { BACKUP_BUCKET: "b", BACKUP_OPENBAO_ADDRESSES: "http://127.0.0.1:8200", BACKUP_KEY: "a/b.snap" },
      [],
      /^BACKUP_JWT_AUTH_ROLE \(--jwt-role\): .*--auth-method token with --token-file <file> or the environment variable BAO_TOKEN/,
    ],
  ];
  for (const [name, env, argv, message] of refused) {
    test(`refuses ${name}, naming the flag (exit 1)`, () => {
      assert.throws(
        () => loadRestoreConfig(env, argv),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, message);
          assert.equal(classify(err).exitCode, 1);
          return true;
        },
      );
    });
  }

  test("--force --expect-sealed is accepted", () => {
    const c = loadRestoreConfig({ ...workstation, BACKUP_KEY: "a/b.snap" }, ["--force", "--expect-sealed"]);
    assert.equal(c.force, true);
    assert.equal(c.expectSealed, true);
  });

  test("a static token comes from BAO_TOKEN unless a token file is given", () => {
    const fromEnv = loadRestoreConfig({ ...workstation, BACKUP_KEY: "a/b.snap", BAO_TOKEN: " s.from-env \n" }, []);
    assert.equal(fromEnv.staticToken, "s.from-env");
    const fromFile = loadRestoreConfig({ ...workstation, BACKUP_KEY: "a/b.snap", BAO_TOKEN: "s.from-env" }, [
      "--token-file",
      "/tmp/token",
    ]);
    assert.equal(fromFile.staticToken, undefined);
    assert.deepEqual(fromFile.auth, { method: "token", tokenFile: "/tmp/token" });
    // JWT auth never takes BAO_TOKEN.
    const jwt = loadBackupConfig({ ...base, BAO_TOKEN: "s.from-env" }, []);
    assert.equal(jwt.staticToken, undefined);
  });

  test("a missing token file or projected token is a configuration error naming the flags, before any request", async () => {
    const http = new OpenBaoHttp({});
    const signal = new AbortController().signal;
    try {
      const noToken = loadRestoreConfig({ ...workstation, BACKUP_KEY: "a/b.snap" }, []);
      await assert.rejects(login(http, "http://127.0.0.1:1", noToken, signal), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          /^BACKUP_TOKEN_FILE \(--token-file\): no OpenBao token: .*--token-file <file> .*BAO_TOKEN/,
        );
        assert.equal(classify(err).exitCode, 1);
        return true;
      });
      const wrongFile = loadRestoreConfig({ ...workstation, BACKUP_KEY: "a/b.snap" }, [
        "--token-file",
        "/nonexistent/t",
      ]);
      await assert.rejects(
        login(http, "http://127.0.0.1:1", wrongFile, signal),
        /BACKUP_TOKEN_FILE.*\/nonexistent\/t does not exist/,
      );
      const jwt = loadBackupConfig({ ...base, BACKUP_OPENBAO_ADDRESSES: "http://127.0.0.1:8200" }, []);
      await assert.rejects(
        login(http, "http://127.0.0.1:1", jwt, signal),
        /BACKUP_JWT_TOKEN_FILE \(--jwt-token-file\): no projected ServiceAccount token .*--auth-method token/,
      );
      const fromEnv = loadRestoreConfig({ ...workstation, BACKUP_KEY: "a/b.snap", BAO_TOKEN: "s.abc" }, []);
      assert.equal(await login(http, "http://127.0.0.1:1", fromEnv, signal), "s.abc");
    } finally {
      http.close();
    }
  });
});

describe("failure classification", () => {
  test("a SIGTERM abort is reported as Terminated, not as an unexpected snapshot error", () => {
    const aborted = new DOMException("The operation was aborted", "AbortError");
    assert.equal(classify(aborted).reason, "Terminated");
    assert.equal(classify(new Error("terminated by signal")).reason, "Terminated");
  });

  test("an upload aborted by the stop signal is Terminated (exit 4); another failure keeps its reason", () => {
    const base = { mode: "backup" as const, ok: false as const, key: "k", durationMs: 5, startedAt: "t" };
    const aborted = stoppedBySignal({ ...base, exitCode: 5, reason: "StorageAborted", message: "upload aborted" });
    assert.equal(aborted.reason, "Terminated");
    assert.equal(aborted.exitCode, 4);
    assert.match(aborted.message, /^stopped by a signal .*; upload aborted$/);
    const denied = { ...base, exitCode: 5 as const, reason: "StorageAuthDenied", message: "access denied" };
    assert.equal(stoppedBySignal(denied), denied);
  });

  test("secrets given to classify never reach the message", () => {
    const c = classify(new Error("denied for key AKIASECRETVALUE123"), ["AKIASECRETVALUE123"]);
    assert.doesNotMatch(c.message, /AKIASECRETVALUE123/);
  });
});
