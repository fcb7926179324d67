/**
 * A Job whose Secret is missing (its optional volume is empty) fails at once with
 * SecretNotFound, naming the Secret, before any OpenBao or storage call — the real executor
 * process, as the Job runs it. (Nothing else is needed: it stops before the first connection.)
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { projectRoot } from "../servers/catalog.ts";

const dir = mkdtempSync(join(tmpdir(), "required-secrets-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("an empty Secret volume: exit 1, SecretNotFound in the termination message, no connection tried", () => {
  const empty = join(dir, "storage");
  mkdirSync(join(empty, "..data"), { recursive: true });
  const message = join(dir, "termination-log");
  const run = spawnSync(process.execPath, [join(projectRoot, "src", "cli", "main.ts"), "backup"], {
    encoding: "utf8",
    timeout: 60_000,
    env: {
      PATH: process.env.PATH ?? "",
      CLUSTER_NAME: "bao",
      CLUSTER_NAMESPACE: "openbao",
      // Addresses nobody listens on: reaching them would be a bug of this check.
      BACKUP_OPENBAO_ADDRESSES: "https://127.0.0.1:1",
      BACKUP_AUTH_METHOD: "token",
      BACKUP_TOKEN_FILE: join(dir, "missing-token"),
      BACKUP_BUCKET: "b",
      BACKUP_CREDENTIALS_DIR: empty,
      BACKUP_REQUIRED_SECRETS: "storage=s3-credentials",
      BACKUP_TERMINATION_MESSAGE_PATH: message,
    },
  });
  assert.equal(run.status, 1, run.stderr);
  const result = JSON.parse(readFileSync(message, "utf8")) as { ok: boolean; reason: string; message: string };
  assert.equal(result.ok, false);
  assert.equal(result.reason, "SecretNotFound");
  assert.match(result.message, /Secret s3-credentials does not exist in namespace openbao/);
  assert.match(run.stderr, /SecretNotFound/);
});
