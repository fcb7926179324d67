/**
 * The executor's report outside Kubernetes: the termination message is written only when asked
 * for or where the kubelet created the file, and the human line says what a person must do
 * after a restore that left OpenBao sealed.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  type BackupSuccess,
  humanLine,
  parseResultLine,
  type RestoreSuccess,
  resultLine,
  writeTerminationMessage,
} from "../../../src/executor/result.ts";

const success: RestoreSuccess = {
  mode: "restore",
  ok: true,
  key: "openbao/bao/2026-01-01T00-00-00Z-0a1b2c3d.snap",
  size: 2 * 1024 * 1024,
  sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  durationMs: 1500,
  startedAt: "2026-01-01T00:00:00.000Z",
};

describe("termination message outside a container", () => {
  test("the default path is left alone when it does not exist; an existing or asked-for one is written", () => {
    const dir = mkdtempSync(join(tmpdir(), "term-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const absent = join(dir, "termination-log");
    assert.equal(writeTerminationMessage(absent, success, { onlyIfExists: true }), undefined);
    assert.equal(existsSync(absent), false, "nothing created where nothing was mounted");

    writeFileSync(absent, "");
    assert.equal(writeTerminationMessage(absent, success, { onlyIfExists: true }), undefined);
    assert.equal(parseResultLine(readFileSync(absent, "utf8"))?.key, success.key);

    const asked = join(dir, "result.json");
    assert.equal(writeTerminationMessage(asked, success), undefined);
    assert.equal(parseResultLine(readFileSync(asked, "utf8"))?.ok, true);
    const problem = writeTerminationMessage(join(dir, "missing-dir", "result.json"), success);
    assert.match(problem ?? "", /could not write the termination message to .*missing-dir/);
  });
});

describe("human line of a restore", () => {
  test("says when the key was chosen as the newest verified backup", () => {
    assert.match(humanLine({ ...success, latest: true }), /^restored \S+ \(the newest verified backup\) \(2\.0 MiB/);
    assert.doesNotMatch(humanLine(success), /newest/);
  });

  test("says how to open a restore that left OpenBao sealed", () => {
    assert.match(
      humanLine({ ...success, sealed: true }),
      /OpenBao sealed itself: unseal it with the unseal keys \(or recovery keys \/ KMS key\) of the cluster the snapshot came from$/,
    );
  });

  test("the operator's parser reads the resolved key and ignores the new fields", () => {
    const line = JSON.stringify({ v: 1, ...success, latest: true, sealed: true });
    const parsed = parseResultLine(line);
    assert.equal(parsed?.key, success.key);
    assert.equal(parsed?.ok, true);
  });
});

describe("retention in a backup's report (issue 18)", () => {
  const backup: BackupSuccess = {
    mode: "backup",
    ok: true,
    key: "openbao/bao/2026-01-02T00-00-00Z-0a1b2c3d.snap",
    size: 1024 * 1024,
    sha256: success.sha256,
    durationMs: 2000,
    raftIndex: 42,
    raftTerm: 2,
    openbaoVersion: "2.4.1",
    startedAt: "2026-01-02T00:00:00.000Z",
    retention: { kept: 3, deleted: 1, failed: 0 },
  };
  const orphans = Array.from({ length: 7 }, (_, i) => `openbao/bao/2026-01-01T0${i}-00-00Z-0000000${i}.snap`);

  test("the human line names the snapshots kept without a manifest, at most five", () => {
    assert.match(humanLine(backup), /retention kept 3, deleted 1, failed 0$/);
    const one = humanLine({
      ...backup,
      retention: { kept: 3, deleted: 1, failed: 0, unverified: 1, unverifiedKeys: [orphans[0] ?? ""] },
    });
    assert.match(
      one,
      /retention kept 3, deleted 1, failed 0, kept 1 without a manifest \(not verified, not counted: \S+0{8}\.snap\)$/,
    );
    const many = humanLine({
      ...backup,
      retention: { kept: 3, deleted: 1, failed: 0, unverified: 7, unverifiedKeys: orphans },
    });
    assert.ok(orphans.slice(0, 5).every((k) => many.includes(k)));
    assert.ok(!many.includes(orphans[5] ?? ""));
    assert.match(many, /kept 7 without a manifest .* and 2 more\)$/);
  });

  test("the termination message carries the count, never the keys", () => {
    const line = resultLine({
      ...backup,
      retention: { kept: 3, deleted: 1, failed: 0, unverified: 7, unverifiedKeys: orphans },
    });
    const parsed = JSON.parse(line) as { retention: Record<string, unknown> };
    assert.deepEqual(parsed.retention, { kept: 3, deleted: 1, failed: 0, unverified: 7 });
    assert.equal(parseResultLine(line)?.retentionDeleted, 1);
  });
});
