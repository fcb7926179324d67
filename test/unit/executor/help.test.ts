/**
 * Issue 15 defect 8: `bao-backup backup --help` names the files `--credentials-dir` reads, per
 * provider, and those names are exactly the files the executor reads from the directory.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { settingsHelp } from "../../../src/executor/settings.ts";
import { readCredentialsDir } from "../../../src/storage/target.ts";

const files = {
  s3: ["accessKeyId", "secretAccessKey", "sessionToken", "region"],
  gcs: ["credentials.json"],
  azure: ["accountKey", "connectionString"],
  any: ["caCert"],
};

test("--credentials-dir help lists the file names of each provider", () => {
  const line = settingsHelp()
    .split("\n")
    .find((l) => l.includes("--credentials-dir"));
  assert.ok(line, "a --credentials-dir line");
  for (const [provider, names] of Object.entries(files)) {
    if (provider !== "any") assert.match(line, new RegExp(`\\b${provider}\\b`, "i"), provider);
    for (const name of names) assert.ok(line.includes(name), `${provider}: ${name} in ${JSON.stringify(line)}`);
  }
});

test("the listed names are the files readCredentialsDir reads, all of them", async () => {
  const dir = await mkdtemp(join(tmpdir(), "creds-"));
  try {
    const all = Object.values(files).flat();
    for (const name of all) await writeFile(join(dir, name), `value-of-${name}`);
    const read = await readCredentialsDir(dir);
    const values = Object.values(read);
    assert.equal(values.length, all.length, "every listed file is read");
    for (const name of all) assert.ok(values.includes(`value-of-${name}`), name);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
