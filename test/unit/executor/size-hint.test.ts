/**
 * Issue 18 item 4: BACKUP_SIZE_HINT reaches the snapshot upload. `runBackup` runs for real
 * against a loopback server playing the OpenBao leader; the S3 store is the real one. A hint
 * larger than any S3 object can be (10,000 parts of 5 GiB) makes the upload's part plan
 * refuse it before a byte is sent, so the storage endpoint is never contacted: the run fails
 * with StorageTooLarge naming the hint, which only the hint can cause. The part-size
 * arithmetic itself is in test/unit/storage/parts.test.ts, a real upload in
 * test/storage/size-hint.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runBackup } from "../../../src/executor/backup.ts";
import { loadBackupConfig } from "../../../src/executor/config.ts";
import { partLimits } from "../../../src/storage/parts.ts";

describe("BACKUP_SIZE_HINT reaches the snapshot upload", () => {
  let server: Server;
  let address = "";
  const requests: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const json = (body: unknown): void => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.url?.startsWith("/v1/sys/leader")) json({ ha_enabled: true, is_self: true });
      else if (req.url?.startsWith("/v1/sys/health")) json({ version: "2.3.1", cluster_id: "c" });
      else if (req.url?.startsWith("/v1/sys/seal-status")) json({ type: "shamir" });
      else if (req.url?.startsWith("/v1/sys/storage/raft/snapshot")) {
        // A body that never ends: only the upload's own refusal can end this run.
        res.writeHead(200, { "content-type": "application/gzip" });
        res.write(Buffer.alloc(64 * 1024));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test(
    "a hint no S3 object can hold fails the upload with StorageTooLarge naming it",
    { timeout: 30_000 },
    async () => {
      const credentials = mkdtempSync(join(tmpdir(), "size-hint-"));
      after(() => rmSync(credentials, { recursive: true, force: true }));
      writeFileSync(join(credentials, "accessKeyId"), "AKIATEST");
      writeFileSync(join(credentials, "secretAccessKey"), "not-a-real-secret");
      const { maxParts, maxPartSize } = partLimits.s3;
      const config = loadBackupConfig(
        {
          CLUSTER_NAME: "bao",
          CLUSTER_NAMESPACE: "openbao",
          BACKUP_OPENBAO_ADDRESSES: address,
          BACKUP_AUTH_METHOD: "token",
          BAO_TOKEN: "s.test-token",
          BACKUP_BUCKET: "backups",
          // Nothing listens here: the run must end before the store is ever contacted.
          BACKUP_ENDPOINT: "http://127.0.0.1:9",
          BACKUP_USE_PATH_STYLE: "true",
          BACKUP_CREDENTIALS_DIR: credentials,
          BACKUP_SIZE_HINT: String(maxParts * maxPartSize + 1),
        },
        [],
      );
      assert.equal(config.sizeHint, maxParts * maxPartSize + 1);
      // Without the hint the upload would wait on the endless snapshot: the deadline ends it then.
      const result = await runBackup(config, { signal: AbortSignal.timeout(10_000) });
      assert.equal(result.ok, false, JSON.stringify(result));
      assert.ok(!result.ok);
      assert.equal(result.reason, "StorageTooLarge", result.message);
      assert.match(result.message, /s3 upload expected to be 48\.8 TiB \(size hint\) needs parts of 5\.0 GiB/);
      assert.ok(
        requests.some((r) => r.startsWith("GET /v1/sys/storage/raft/snapshot")),
        `the snapshot was requested: ${requests.join(", ")}`,
      );
    },
  );
});
