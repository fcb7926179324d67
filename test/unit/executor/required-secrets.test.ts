/**
 * The executor's check of the Job's optional Secret volumes (BACKUP_REQUIRED_SECRETS): a
 * missing Secret is a named failure at once, never a Pod stuck until its deadline.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  checkRequiredSecrets,
  parseRequiredSecrets,
  SecretNotFoundError,
} from "../../../src/executor/required-secrets.ts";

describe("required Secrets of a Job", () => {
  const root = mkdtempSync(join(tmpdir(), "required-secrets-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  // What the kubelet leaves: keys as symlinks into ..data; an absent optional Secret leaves only ..data.
  const tls = join(root, "tls");
  mkdirSync(join(tls, "..data"), { recursive: true });
  writeFileSync(join(tls, "..data", "ca.crt"), "pem");
  symlinkSync("..data/ca.crt", join(tls, "ca.crt"));
  const storage = join(root, "storage");
  mkdirSync(join(storage, "..data"), { recursive: true });
  const env = (required: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    CLUSTER_NAMESPACE: "openbao",
    BACKUP_CA_FILE: join(tls, "ca.crt"),
    BACKUP_CREDENTIALS_DIR: storage,
    BACKUP_REQUIRED_SECRETS: required,
    ...extra,
  });

  test("parses role=secret pairs, ignoring anything else", () => {
    assert.deepEqual(parseRequiredSecrets("tls=a,storage=b-c.d, ,bad,=x,token=,other=y"), [
      { role: "tls", secret: "a" },
      { role: "storage", secret: "b-c.d" },
    ]);
    assert.deepEqual(parseRequiredSecrets(undefined), []);
  });

  test("a present key passes; nothing required passes", () => {
    checkRequiredSecrets(env("tls=bao-tls-ca"));
    checkRequiredSecrets(env(""));
  });

  test("an empty volume, or a missing key file, names the Secret, the namespace and the fix", () => {
    const cases: [string, NodeJS.ProcessEnv][] = [
      ["s3-credentials", env("tls=bao-tls-ca,storage=s3-credentials")],
      ["bao-token", env("token=bao-token", { BACKUP_TOKEN_FILE: join(root, "token", "token") })],
      ["other-ca", env("tls=other-ca", { BACKUP_CA_FILE: join(storage, "ca.crt") })],
      // A drill's unseal keys (spec.backup.drill.unsealKeysSecretRef): missing, the drill would
      // prove only "loaded" where "verified" was asked for.
      ["bao-unseal-keys", env("unseal-keys=bao-unseal-keys", { DRILL_UNSEAL_KEYS_DIR: storage })],
    ];
    for (const [secret, e] of cases) {
      assert.throws(
        () => checkRequiredSecrets(e),
        (err: unknown) =>
          err instanceof SecretNotFoundError &&
          err.secret === secret &&
          new RegExp(`Secret ${secret} does not exist in namespace openbao`).test(err.message) &&
          /create it, or fix the reference/.test(err.message),
        secret,
      );
    }
  });
});
