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
  const present = join(root, "present");
  mkdirSync(join(present, "..data"), { recursive: true });
  writeFileSync(join(present, "..data", "ca.crt"), "pem");
  symlinkSync("..data/ca.crt", join(present, "ca.crt"));
  const empty = join(root, "empty");
  mkdirSync(join(empty, "..data"), { recursive: true });

  test("parses name:dir pairs", () => {
    assert.deepEqual(parseRequiredSecrets("a:/x,b-c.d:/y/z, ,bad,:/n,e:rel"), [
      { secret: "a", dir: "/x" },
      { secret: "b-c.d", dir: "/y/z" },
    ]);
    assert.deepEqual(parseRequiredSecrets(undefined), []);
  });

  test("a volume holding keys passes; none required passes", () => {
    checkRequiredSecrets(`tls:${present}`, "openbao");
    checkRequiredSecrets(undefined, "openbao");
  });

  test("an empty volume (or none at all) names the Secret, the namespace and the fix", () => {
    for (const dir of [empty, join(root, "absent")]) {
      assert.throws(
        () => checkRequiredSecrets(`tls:${present},s3-credentials:${dir}`, "openbao"),
        (err: unknown) =>
          err instanceof SecretNotFoundError &&
          err.secret === "s3-credentials" &&
          /Secret s3-credentials does not exist in namespace openbao/.test(err.message) &&
          /create it, or fix the reference/.test(err.message),
      );
    }
  });
});
