/**
 * Pure logic of the storage layer, no servers: target parsing and defaults, the credentials
 * directory, error classification and redaction, and which credentials and endpoints each
 * provider selects. Part planning is in test/unit/storage/parts.test.ts.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { azureCredentialMode, azureServiceUrl } from "../../src/storage/azure/store.ts";
import { classify, redact, TargetConfigError } from "../../src/storage/errors.ts";
import { gcsSendsCredentials, parseGcsCredentials } from "../../src/storage/gcs/store.ts";
import { s3CredentialMode, stsEndpointFor } from "../../src/storage/s3/client.ts";
import {
  parseTarget,
  readCredentialsDir,
  type S3Target,
  secretValues,
  type TargetSpec,
} from "../../src/storage/target.ts";
import { scratchDir } from "../servers/process.ts";

const MiB = 1024 * 1024;

function configError(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TargetConfigError, `expected TargetConfigError, got ${String(err)}`);
    assert.equal(err.field, field);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe("parseTarget", () => {
  test("applies SPEC §2 defaults: provider s3, region us-east-1, 10 MiB parts, 3 in flight", () => {
    const t = parseTarget({ bucket: "backups" });
    assert.deepEqual(t, {
      provider: "s3",
      endpoint: undefined,
      bucket: "backups",
      pathPrefix: "",
      partSize: 10 * MiB,
      concurrency: 3,
      insecureSkipVerify: false,
      region: "us-east-1",
      usePathStyle: false,
      roleArn: undefined,
      encryption: undefined,
      objectLock: undefined,
    });
  });

  test("keeps every S3 field", () => {
    const t = parseTarget({
      provider: "s3",
      endpoint: "https://minio.example:9000/",
      bucket: "b",
      pathPrefix: "clusters/a",
      region: "eu-west-1",
      usePathStyle: true,
      roleArn: "arn:aws:iam::123456789012:role/backup",
      partSize: 20 * MiB,
      concurrency: 16,
      insecureSkipVerify: true,
    }) as S3Target;
    assert.equal(t.endpoint, "https://minio.example:9000");
    assert.equal(t.region, "eu-west-1");
    assert.equal(t.usePathStyle, true);
    assert.equal(t.roleArn, "arn:aws:iam::123456789012:role/backup");
    assert.equal(t.partSize, 20 * MiB);
    assert.equal(t.concurrency, 16);
    assert.equal(t.insecureSkipVerify, true);
  });

  test("azure.container overrides bucket; storageAccount is required", () => {
    const t = parseTarget({ provider: "azure", bucket: "b", azure: { storageAccount: "acct", container: "c" } });
    assert.equal(t.bucket, "c");
    assert.equal(t.provider === "azure" && t.azure.storageAccount, "acct");
    assert.equal(parseTarget({ provider: "azure", azure: { storageAccount: "a", container: "c" } }).bucket, "c");
    assert.equal(parseTarget({ provider: "azure", bucket: "b", azure: { storageAccount: "a" } }).bucket, "b");
    configError(() => parseTarget({ provider: "azure", bucket: "b" }), "target.azure.storageAccount");
  });

  test("gcs.project is optional", () => {
    const t = parseTarget({ provider: "gcs", bucket: "b", gcs: { project: "p" } });
    assert.equal(t.provider === "gcs" && t.gcs.project, "p");
    assert.equal(parseTarget({ provider: "gcs", bucket: "b" }).provider, "gcs");
  });

  test("encryption: each provider's own fields", () => {
    const s3 = (encryption: TargetSpec["encryption"]) =>
      (parseTarget({ bucket: "b", encryption }) as S3Target).encryption;
    assert.deepEqual(s3({ type: "AES256" }), { type: "AES256" });
    assert.deepEqual(s3({ type: "aws:kms" }), { type: "aws:kms", kmsKeyId: undefined });
    assert.deepEqual(s3({ type: "aws:kms", kmsKeyId: " alias/openbao " }), {
      type: "aws:kms",
      kmsKeyId: "alias/openbao",
    });
    assert.deepEqual(
      s3({ type: "aws:kms", kmsKeyId: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }),
      { type: "aws:kms", kmsKeyId: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" },
    );
    assert.equal(s3(undefined), undefined);
    const gcs = parseTarget({
      provider: "gcs",
      bucket: "b",
      encryption: { kmsKeyName: "projects/p-1/locations/europe-west1/keyRings/r/cryptoKeys/k" },
    });
    assert.deepEqual(gcs.encryption, { kmsKeyName: "projects/p-1/locations/europe-west1/keyRings/r/cryptoKeys/k" });
    const azure = parseTarget({
      provider: "azure",
      bucket: "b",
      azure: { storageAccount: "a" },
      encryption: { encryptionScope: "backup-scope" },
    });
    assert.deepEqual(azure.encryption, { encryptionScope: "backup-scope" });
    assert.equal(parseTarget({ provider: "gcs", bucket: "b" }).encryption, undefined);
  });

  const invalid: [string, TargetSpec, string, RegExp][] = [
    [
      "encryption type unknown",
      { bucket: "b", encryption: { type: "aws:kms:dsse" } },
      "target.encryption.type",
      /AES256 \(SSE-S3\) or aws:kms/,
    ],
    [
      "encryption with nothing in it (s3)",
      { bucket: "b", encryption: {} },
      "target.encryption.type",
      /required for provider s3/,
    ],
    [
      "kmsKeyId without a type",
      { bucket: "b", encryption: { kmsKeyId: "k" } },
      "target.encryption.kmsKeyId",
      /type aws:kms/,
    ],
    [
      "kmsKeyId with AES256",
      { bucket: "b", encryption: { type: "AES256", kmsKeyId: "k" } },
      "target.encryption.kmsKeyId",
      /aws:kms only/,
    ],
    [
      "kmsKeyId with a space",
      { bucket: "b", encryption: { type: "aws:kms", kmsKeyId: "my key" } },
      "target.encryption.kmsKeyId",
      /no spaces/,
    ],
    [
      "kmsKeyName on s3",
      { bucket: "b", encryption: { kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" } },
      "target.encryption.kmsKeyName",
      /provider gcs only/,
    ],
    [
      "encryptionScope on s3",
      { bucket: "b", encryption: { type: "AES256", encryptionScope: "s-1" } },
      "target.encryption.encryptionScope",
      /provider azure only/,
    ],
    [
      "type on gcs",
      { provider: "gcs", bucket: "b", encryption: { type: "AES256" } },
      "target.encryption.type",
      /provider s3 only/,
    ],
    [
      "encryption with nothing in it (gcs)",
      { provider: "gcs", bucket: "b", encryption: {} },
      "target.encryption.kmsKeyName",
      /required for provider gcs/,
    ],
    [
      "kmsKeyName with a version",
      {
        provider: "gcs",
        bucket: "b",
        encryption: { kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1" },
      },
      "target.encryption.kmsKeyName",
      /key version/,
    ],
    [
      "kmsKeyName not a key",
      { provider: "gcs", bucket: "b", encryption: { kmsKeyName: "my-key" } },
      "target.encryption.kmsKeyName",
      /projects\/<project>/,
    ],
    [
      "kmsKeyId on azure",
      { provider: "azure", bucket: "b", azure: { storageAccount: "a" }, encryption: { kmsKeyId: "k" } },
      "target.encryption.kmsKeyId",
      /provider s3 only/,
    ],
    [
      "encryptionScope upper case",
      { provider: "azure", bucket: "b", azure: { storageAccount: "a" }, encryption: { encryptionScope: "Backup" } },
      "target.encryption.encryptionScope",
      /lower-case/,
    ],
    [
      "encryptionScope too short",
      { provider: "azure", bucket: "b", azure: { storageAccount: "a" }, encryption: { encryptionScope: "ab" } },
      "target.encryption.encryptionScope",
      /3 to 63/,
    ],
    [
      "encryption with nothing in it (azure)",
      { provider: "azure", bucket: "b", azure: { storageAccount: "a" }, encryption: {} },
      "target.encryption.encryptionScope",
      /required for provider azure/,
    ],
    ["unknown provider", { provider: "ftp", bucket: "b" }, "target.provider", /s3, gcs, azure/],
    ["no bucket", {}, "target.bucket", /required/],
    ["bucket with a slash", { bucket: "a/b" }, "target.bucket", /pathPrefix/],
    ["partSize below 5 MiB", { bucket: "b", partSize: 5 * MiB - 1 }, "target.partSize", /between 5242880/],
    ["partSize not whole", { bucket: "b", partSize: 6 * MiB + 0.5 }, "target.partSize", /whole number/],
    ["partSize above S3's 5 GiB", { bucket: "b", partSize: 6 * 1024 * MiB }, "target.partSize", /between/],
    [
      "partSize above Azure's 4000 MiB",
      { provider: "azure", bucket: "b", azure: { storageAccount: "a" }, partSize: 4001 * MiB },
      "target.partSize",
      /between/,
    ],
    ["concurrency 0", { bucket: "b", concurrency: 0 }, "target.concurrency", /between 1 and 16/],
    ["concurrency 17", { bucket: "b", concurrency: 17 }, "target.concurrency", /between 1 and 16/],
    ["endpoint not a URL", { bucket: "b", endpoint: "minio:9000" }, "target.endpoint", /https?:\/\//],
    ["endpoint with credentials", { bucket: "b", endpoint: "https://u:p@h" }, "target.endpoint", /credentials Secret/],
    ["roleArn not an ARN", { bucket: "b", roleArn: "backup" }, "target.roleArn", /arn:aws:iam/],
    ["roleArn on gcs", { provider: "gcs", bucket: "b", roleArn: "arn:x" }, "target.roleArn", /provider s3 only/],
    ["azure block on s3", { bucket: "b", azure: { storageAccount: "a" } }, "target.azure", /provider azure only/],
    [
      "insecureSkipVerify as a string",
      { bucket: "b", insecureSkipVerify: "true" as unknown as boolean },
      "target.insecureSkipVerify",
      /true or false/,
    ],
  ];
  for (const [name, spec, field, message] of invalid) {
    test(`rejects ${name}, naming ${field}`, () => configError(() => parseTarget(spec), field, message));
  }
});

describe("readCredentialsDir", () => {
  test("returns only the keys present, trimming single-line values and keeping PEM/JSON", async () => {
    const dir = scratchDir("creds");
    writeFileSync(join(dir, "accessKeyId"), "AKIA123\n");
    writeFileSync(join(dir, "secretAccessKey"), "  s3cr3t-value \n");
    writeFileSync(join(dir, "caCert"), "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n");
    writeFileSync(join(dir, "credentials.json"), '{"type":"service_account"}\n');
    writeFileSync(join(dir, "sessionToken"), "\n");
    mkdirSync(join(dir, "..data"));
    const creds = await readCredentialsDir(dir);
    assert.deepEqual(creds, {
      accessKeyId: "AKIA123",
      secretAccessKey: "s3cr3t-value",
      caCert: "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n",
      credentialsJson: '{"type":"service_account"}\n',
    });
  });

  test("a missing directory means no Secret (ambient identity)", async () => {
    assert.deepEqual(await readCredentialsDir("/nonexistent/openbao-backup/creds"), {});
  });

  test("secretValues lists what must never be printed, including parts of a connection string", () => {
    const secrets = secretValues({
      accessKeyId: "AKIAPUBLIC",
      secretAccessKey: "sek-ret-1",
      connectionString: "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFy==;EndpointSuffix=x",
      credentialsJson: '{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\nMIIE\\n"}',
    });
    assert.ok(secrets.includes("sek-ret-1"));
    assert.ok(secrets.includes("Zm9vYmFy=="));
    assert.ok(secrets.includes("-----BEGIN PRIVATE KEY-----\nMIIE\n"));
    assert.ok(!secrets.includes("AKIAPUBLIC"), "an access key id is an identifier, not a secret");
  });
});

describe("error classification", () => {
  const cases: [string, Parameters<typeof classify>[0], string][] = [
    ["S3 missing key", { status: 404, code: "NoSuchKey" }, "NotFound"],
    ["HEAD 404 without body", { status: 404 }, "NotFound"],
    ["S3 wrong secret", { status: 403, code: "SignatureDoesNotMatch" }, "AuthDenied"],
    ["S3 unknown key id", { status: 403, code: "InvalidAccessKeyId" }, "AuthDenied"],
    ["no AWS credentials at all", { code: "CredentialsProviderError" }, "AuthDenied"],
    ["Azure wrong key", { status: 403, code: "AuthorizationFailure" }, "AuthDenied"],
    ["no Azure identity", { code: "CredentialUnavailableError" }, "AuthDenied"],
    ["Google token endpoint refuses the key", { status: 400, code: "invalid_grant" }, "AuthDenied"],
    ["no ADC", { code: "NoApplicationDefaultCredentials" }, "AuthDenied"],
    ["S3 SlowDown", { status: 503, code: "SlowDown" }, "Throttled"],
    ["HTTP 429", { status: 429 }, "Throttled"],
    ["Azure ServerBusy", { status: 503, code: "ServerBusy" }, "Throttled"],
    ["connection refused", { errno: "ECONNREFUSED" }, "Unreachable"],
    ["DNS", { errno: "ENOTFOUND" }, "Unreachable"],
    ["untrusted certificate", { errno: "SELF_SIGNED_CERT_IN_CHAIN" }, "Unreachable"],
    ["Azure send error", { code: "REQUEST_SEND_ERROR" }, "Unreachable"],
    ["server error", { status: 500, code: "InternalError" }, "Other"],
    ["MinIO unknown KMS key", { status: 404, code: "kms:KeyNotFound" }, "EncryptionKeyUnusable"],
    ["AWS unknown KMS key", { status: 400, code: "KMS.NotFoundException" }, "EncryptionKeyUnusable"],
    ["AWS disabled KMS key", { status: 400, code: "KMS.DisabledException" }, "EncryptionKeyUnusable"],
    ["Azure encryption scope", { status: 409, code: "EncryptionScopeDisabled" }, "EncryptionKeyUnusable"],
  ];
  for (const [name, facts, expected] of cases) {
    test(`${name} → ${expected}`, () => assert.equal(classify(facts), expected));
  }

  test("redact removes every secret occurrence", () => {
    assert.equal(redact("key=abcd1234 again abcd1234", ["abcd1234", "xy"]), "key=[redacted] again [redacted]");
  });
});

describe("credential and endpoint selection", () => {
  const s3 = parseTarget({ bucket: "b" }) as S3Target;
  const s3Role = parseTarget({ bucket: "b", roleArn: "arn:aws:iam::1:role/r" }) as S3Target;

  test("S3: keys win, then roleArn (web identity), then the default chain", () => {
    assert.equal(s3CredentialMode(s3Role, { accessKeyId: "a", secretAccessKey: "s" }), "static");
    assert.equal(s3CredentialMode(s3Role, {}), "web-identity");
    assert.equal(s3CredentialMode(s3, {}), "default-chain");
    assert.equal(s3CredentialMode(s3, { caCert: "pem", region: "eu-west-1" }), "default-chain");
    configError(() => s3CredentialMode(s3, { accessKeyId: "a" }), "credentials.secretAccessKey");
    configError(() => s3CredentialMode(s3, { secretAccessKey: "s" }), "credentials.accessKeyId");
  });

  test("S3 web identity goes to AWS STS for AWS endpoints, to the store for S3-compatible ones", () => {
    assert.equal(stsEndpointFor(undefined), undefined);
    assert.equal(stsEndpointFor("https://s3.amazonaws.com"), undefined);
    assert.equal(stsEndpointFor("https://s3.eu-west-1.amazonaws.com"), undefined);
    assert.equal(stsEndpointFor("http://minio.minio:9000"), "http://minio.minio:9000");
  });

  test("GCS sends credentials to Google endpoints only", () => {
    assert.equal(gcsSendsCredentials(undefined), true);
    assert.equal(gcsSendsCredentials("https://storage.googleapis.com"), true);
    assert.equal(gcsSendsCredentials("https://storage-xyz.p.googleapis.com"), true);
    assert.equal(gcsSendsCredentials("http://127.0.0.1:4443"), false);
  });

  test("GCS credentials.json errors never quote the file", () => {
    const secret = '{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\nSECRETMATERIAL';
    assert.throws(
      () => parseGcsCredentials(secret),
      (err: unknown) => err instanceof TargetConfigError && !err.message.includes("SECRETMATERIAL"),
    );
    configError(() => parseGcsCredentials('{"private_key":"x"}'), "credentials.credentials.json", /"type"/);
    assert.equal(parseGcsCredentials(undefined), undefined);
  });

  test("Azure: connection string or account key, else DefaultAzureCredential; both is an error", () => {
    assert.equal(azureCredentialMode({ connectionString: "x" }), "connection-string");
    assert.equal(azureCredentialMode({ accountKey: Buffer.alloc(64, 7).toString("base64") }), "account-key");
    configError(() => azureCredentialMode({ accountKey: "not base64: a password?" }), "credentials.accountKey");
    configError(() => azureCredentialMode({ accountKey: "abc" }), "credentials.accountKey");
    assert.equal(azureCredentialMode({ caCert: "pem" }), "default-azure-credential");
    configError(
      () => azureCredentialMode({ connectionString: "x", accountKey: "a2V5" }),
      "credentials.connectionString",
    );
  });

  test("Azure service URL: public, custom host, or emulator with the account as first path segment", () => {
    assert.equal(azureServiceUrl("acct", undefined), "https://acct.blob.core.windows.net");
    assert.equal(
      azureServiceUrl("acct", "https://acct.privatelink.blob.core.windows.net"),
      "https://acct.privatelink.blob.core.windows.net",
    );
    assert.equal(azureServiceUrl("acct", "http://127.0.0.1:10000"), "http://127.0.0.1:10000/acct");
    assert.equal(azureServiceUrl("acct", "http://azurite:10000/acct"), "http://azurite:10000/acct");
  });
});
