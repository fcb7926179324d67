/**
 * Issue 17 (executor side): `bao-backup drill` restores a stored backup into a throwaway
 * OpenBao and proves it restores — against real servers only: a real OpenBao source cluster
 * (Shamir, and auto-unsealed through a second OpenBao's Transit engine), real MinIO, and a real
 * throwaway `bao server` started per drill (test/servers/throwaway-openbao.ts), run through the
 * real executable.
 *
 * `backupWithCanary` runs the real backup with BACKUP_CANARY_PATH: the executor writes the
 * canary just before the snapshot and records it in the manifest. A backup whose token may not
 * write the canary goes on without one and says so.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type CanaryLocation, defaultCanaryLocation, writeCanary } from "../../src/drill/canary.ts";
import { OpenBaoHttp } from "../../src/openbao/http.ts";
import { buildKey } from "../../src/snapshot/key.ts";
import { type ManifestCanary, parseManifest, serializeManifest } from "../../src/snapshot/manifest.ts";
import type { TransitSeal } from "../servers/openbao.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { scratchDir, startTogether, superviseServers } from "../servers/process.ts";
import { startThrowawayOpenBao, type ThrowawayOpenBao } from "../servers/throwaway-openbao.ts";
import { startTransitServer, type TransitServer } from "../servers/transit.ts";
import { type ExecutorRun, mounts, runExecutor, showRun } from "./harness.ts";
import { flipKvVersionValues, repacked, storeWithMatchingManifest } from "./tamper.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

const drillMode = "drill";

const canaryPolicy = `path "secret/data/openbao-backup/canary" {\n  capabilities = ["create", "update"]\n}`;
const drillPolicy = [
  `path "secret/data/openbao-backup/canary" {\n  capabilities = ["read"]\n}`,
  `path "sys/mounts" {\n  capabilities = ["read"]\n}`,
  `path "sys/auth" {\n  capabilities = ["read"]\n}`,
].join("\n");

interface Source {
  readonly cluster: OpenBaoCluster;
  readonly backupToken: string;
  /** Valid in every backup taken after it was made: the drill's token for the restored data. */
  readonly drillToken: string;
}

async function prepareSource(cluster: OpenBaoCluster): Promise<Source> {
  await cluster.call("POST", "sys/policies/acl/canary-writer", { policy: canaryPolicy });
  await cluster.call("POST", "sys/policies/acl/drill", { policy: drillPolicy });
  const token = async (policies: string[]): Promise<string> =>
    (await cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", { policies, ttl: "4h" })).auth
      .client_token;
  return { cluster, backupToken: await token(["backup", "canary-writer"]), drillToken: await token(["drill"]) };
}

/** The canary's current value in the source (for the secret-hygiene checks). */
async function canaryValue(cluster: OpenBaoCluster): Promise<string> {
  return String((await cluster.readSecret(defaultCanaryLocation.path))?.value);
}

async function newCanary(source: Source, location: CanaryLocation = defaultCanaryLocation): Promise<ManifestCanary> {
  const http = new OpenBaoHttp({ caPem: source.cluster.caPem });
  try {
    const leader = source.cluster.addresses[await source.cluster.leaderIndex()] ?? "";
    return await writeCanary(http, leader, source.backupToken, { location, backupKey: "drill-test", now: new Date() });
  } finally {
    http.close();
  }
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

describe("bao-backup drill (real OpenBao, MinIO, throwaway bao server)", () => {
  let target: TargetUnderTest;
  let source: Source;
  let keysDir: string;
  before(async () => {
    const [cluster, started] = await startTogether([startOpenBao({ nodes: 1 }), startTarget("s3")]);
    target = started;
    source = await prepareSource(cluster);
    await cluster.writeSecret("app/config", { greeting: "hello" });
    keysDir = scratchDir("drill-keys");
    writeFileSync(join(keysDir, "key-1"), `${cluster.unsealKey}\n`);
    // What a mounted Secret also holds: the kubelet's own entries, skipped.
    mkdirSync(join(keysDir, "..2026_01_01_00_00_00.000000000"));
  });
  after(async () => {
    await Promise.all([source?.cluster.stop(), target?.stop()]);
  });

  /** A backup of `of` with a canary written just before it (see the module comment). */
  async function backupWithCanary(of: Source): Promise<{ key: string; canary: ManifestCanary; value: string }> {
    const env = {
      ...target.env(),
      ...mounts({ cluster: of.cluster, credentials: target.credentials, token: of.backupToken }).env,
      CLUSTER_NAME: "bao",
      CLUSTER_NAMESPACE: "openbao",
      BACKUP_OPENBAO_ADDRESSES: of.cluster.addresses.join(","),
      BACKUP_CANARY_PATH: "secret/openbao-backup/canary",
    };
    const run = await runExecutor("backup", env);
    assert.equal(run.code, 0, showRun(run));
    assert.equal(run.result?.canaryProblem, undefined, showRun(run));
    const key = String(run.result?.key);
    const value = await canaryValue(of.cluster);
    const manifest = parseManifest(String(await target.get(`${key}.json`)), { expectedKey: key });
    const canary = manifest.canary;
    assert.ok(canary, "the backup recorded its canary in the manifest");
    assert.equal(canary.version, run.result?.canaryVersion);
    assert.equal(
      canary.sha256,
      sha256(Buffer.from(value, "utf8")),
      "the manifest holds the SHA-256 of the value written",
    );
    assert.ok(!(await target.get(`${key}.json`).then(String)).includes(value), "never the value itself");
    return { key, canary, value };
  }

  /** Stores `bytes` under a new key of the source with a manifest that matches them exactly. */
  async function storeTampered(fromKey: string, bytes: Buffer, id: string): Promise<string> {
    const key = buildKey({
      pathPrefix: "",
      namespace: "tampered",
      cluster: "bao",
      time: new Date(),
      kind: "scheduled",
      random: id,
    });
    await storeWithMatchingManifest(target, fromKey, key, bytes);
    return key;
  }

  interface Drill {
    readonly run: ExecutorRun;
    /** The throwaway's sys/seal-status right after the drill. */
    readonly after: { status: number; body: Record<string, unknown> };
  }

  async function drill(
    of: Source,
    env: Record<string, string>,
    options: { seal?: TransitSeal; args?: readonly string[] } = {},
  ): Promise<Drill> {
    const throwaway: ThrowawayOpenBao = await startThrowawayOpenBao(options.seal ? { seal: options.seal } : {});
    try {
      const run = await runExecutor(
        drillMode,
        {
          ...target.env(),
          ...mounts({ cluster: of.cluster, credentials: target.credentials, token: of.drillToken }).env,
          DRILL_OPENBAO_ADDR: throwaway.address,
          ...env,
        },
        { args: options.args ?? [] },
      );
      return { run, after: await throwaway.sealStatus() };
    } finally {
      await throwaway.stop();
    }
  }

  /** No secret value anywhere a drill writes (stdout, stderr, the termination message). */
  function assertNoSecrets(run: ExecutorRun, secrets: readonly string[]): void {
    const output = `${run.stdout}${run.stderr}${run.raw}`;
    for (const secret of secrets) {
      assert.ok(secret.length >= 8, "a real secret to look for");
      assert.ok(!output.includes(secret), `a secret value appears in the drill's output:\n${showRun(run)}`);
    }
  }

  let first: { key: string; canary: ManifestCanary; value: string };

  test("no key material, --key latest: loaded — the throwaway applied it and sealed itself with the backup's seal", async () => {
    first = await backupWithCanary(source);
    const manifest = parseManifest(String(await target.get(`${first.key}.json`)));
    const { run, after } = await drill(source, {
      BACKUP_KEY: "latest",
      CLUSTER_NAME: "bao",
      CLUSTER_NAMESPACE: "openbao",
    });
    assert.equal(run.code, 0, showRun(run));
    assert.equal(run.result?.mode, "drill");
    assert.equal(run.result?.outcome, "loaded");
    assert.equal(run.result?.key, first.key, "the newest verified backup");
    assert.equal(run.result?.latest, true);
    assert.equal(run.result?.raftIndex, manifest.raftIndex);
    assert.equal(run.result?.sealType, "shamir");
    assert.equal(run.result?.sha256, manifest.sha256);
    assert.equal(run.result?.canary, undefined, "nothing is read without key material");
    assert.match(
      run.stdout,
      /^drill loaded \(the newest verified backup\): OpenBao loaded .*\(shamir seal, 1 of 1 keys\)/,
    );
    assert.match(run.stdout, /without key material the data was not opened/);
    // What the drill relied on, seen from outside: sealed, with the backup's seal configuration.
    assert.equal(after.status, 200);
    assert.equal(after.body.sealed, true);
    assert.equal(after.body.initialized, true);
    assert.equal(after.body.type, "shamir");
    assertNoSecrets(run, [source.drillToken, source.cluster.rootToken, source.cluster.unsealKey, first.value]);
  });

  test("Shamir source + unseal keys directory: verified — the canary read back, mounts and auth methods counted", async () => {
    const manifest = parseManifest(String(await target.get(`${first.key}.json`)));
    const { run, after } = await drill(source, {
      BACKUP_KEY: first.key,
      DRILL_UNSEAL_KEYS_DIR: keysDir,
      DRILL_CANARY_PATH: "secret/openbao-backup/canary",
    });
    assert.equal(run.code, 0, showRun(run));
    assert.equal(run.result?.outcome, "verified");
    assert.equal(run.result?.key, first.key);
    assert.equal(run.result?.sealType, "shamir");
    assert.deepEqual(run.result?.canary, { path: "secret/openbao-backup/canary", version: first.canary.version });
    assert.ok(Number(run.result?.restoredIndex) > manifest.raftIndex, "applied past the snapshot's index");
    // cubbyhole, identity, secret, sys; token, jwt — what the source cluster mounts.
    assert.equal(run.result?.secretMounts, 4);
    assert.equal(run.result?.authMethods, 2);
    assert.match(run.stdout, /^drill verified: .*opened it with the unseal keys/);
    assert.match(
      run.stdout,
      /the canary secret\/openbao-backup\/canary reads back as version \d+ exactly as the backup wrote it/,
    );
    assert.equal(after.body.sealed, false, "the throwaway was unsealed by the source cluster's keys");
    assertNoSecrets(run, [source.drillToken, source.cluster.rootToken, source.cluster.unsealKey, first.value]);
  });

  test("a backup token that may not write the canary: the backup goes on without one and says why", async () => {
    const onlyBackup = (
      await source.cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
        policies: ["backup"],
        ttl: "1h",
      })
    ).auth.client_token;
    const run = await runExecutor("backup", {
      ...target.env(),
      ...mounts({ cluster: source.cluster, credentials: target.credentials, token: onlyBackup }).env,
      CLUSTER_NAME: "bao",
      CLUSTER_NAMESPACE: "openbao",
      BACKUP_OPENBAO_ADDRESSES: source.cluster.addresses.join(","),
      BACKUP_CANARY_PATH: "secret/openbao-backup/canary",
    });
    assert.equal(run.code, 0, showRun(run));
    assert.match(String(run.result?.canaryProblem), /could not write the canary secret\/openbao-backup\/canary/);
    assert.match(run.stdout, /WARNING: no canary was written, a drill cannot verify this backup's data/);
    const key = String(run.result?.key);
    const manifest = parseManifest(String(await target.get(`${key}.json`)), { expectedKey: key });
    assert.equal(manifest.canary, undefined, "no canary recorded");
    assert.ok(!showRun(run).includes(onlyBackup), "the token is never printed");
  });

  test("the canary rewritten in the live cluster after the snapshot: the drill still reads the snapshot's own", async () => {
    const later = await newCanary(source);
    assert.ok(later.version > first.canary.version && later.sha256 !== first.canary.sha256);
    const { run } = await drill(source, { BACKUP_KEY: first.key, DRILL_UNSEAL_KEYS_DIR: keysDir });
    assert.equal(run.code, 0, showRun(run));
    assert.equal(run.result?.outcome, "verified");
    assert.deepEqual(run.result?.canary, { path: "secret/openbao-backup/canary", version: first.canary.version });

    // The next backup proves its own canary, not the first one's.
    const second = await backupWithCanary(source);
    const again = await drill(source, { BACKUP_KEY: second.key, DRILL_UNSEAL_KEYS_DIR: keysDir });
    assert.equal(again.run.code, 0, showRun(again.run));
    assert.deepEqual(again.run.result?.canary, {
      path: "secret/openbao-backup/canary",
      version: second.canary.version,
    });
  });

  test("an older snapshot under a manifest that records a later canary: CanaryMismatch", async () => {
    const later = await newCanary(source);
    const bytes = (await target.get(first.key)) ?? Buffer.alloc(0);
    const key = await storeTampered(first.key, bytes, "0000a006");
    const manifest = parseManifest(String(await target.get(`${key}.json`)));
    await target.put(`${key}.json`, Buffer.from(serializeManifest({ ...manifest, canary: later })));
    const { run } = await drill(source, { BACKUP_KEY: key, DRILL_UNSEAL_KEYS_DIR: keysDir });
    assert.equal(run.code, 6, showRun(run));
    assert.equal(run.result?.reason, "CanaryMismatch");
    assert.match(
      String(run.result?.message),
      new RegExp(
        `^the restored canary at secret/openbao-backup/canary is at version ${first.canary.version}, not the version ${later.version} of the one the backup wrote just before taking ${key}`,
      ),
    );
    assertNoSecrets(run, [first.value, await canaryValue(source.cluster)]);
  });

  test("values changed inside the archive, checksums and manifest rewritten: loaded cannot tell, verified fails naming the canary", async () => {
    const original = await target.get(first.key);
    assert.ok(original);
    const tampered = await repacked(original, flipKvVersionValues);
    const key = await storeTampered(first.key, tampered, "0000a001");

    const loaded = await drill(source, { BACKUP_KEY: key });
    assert.equal(loaded.run.code, 0, showRun(loaded.run));
    assert.equal(loaded.run.result?.outcome, "loaded", "snapshot-force skips the sealed checksums: not detectable");

    const { run } = await drill(source, { BACKUP_KEY: key, DRILL_UNSEAL_KEYS_DIR: keysDir });
    assert.equal(run.code, 6, showRun(run));
    assert.equal(run.result?.reason, "RestoredDataUnreadable");
    assert.match(
      String(run.result?.message),
      /the restored data opened, but OpenBao could not read the canary secret\/openbao-backup\/canary \(500: decryption failed.*the restored data does not decrypt or is damaged/,
    );
    assertNoSecrets(run, [source.drillToken, source.cluster.unsealKey, first.value]);
  });

  test("bytes flipped in the object, manifest rewritten to match: SnapshotCorrupt, OpenBao never got a complete snapshot", async () => {
    const bytes = Buffer.from((await target.get(first.key)) ?? Buffer.alloc(0));
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x55;
    const key = await storeTampered(first.key, bytes, "0000a002");
    const { run, after } = await drill(source, { BACKUP_KEY: key, DRILL_UNSEAL_KEYS_DIR: keysDir });
    assert.equal(run.code, 6, showRun(run));
    assert.equal(run.result?.reason, "SnapshotCorrupt");
    assert.match(
      String(run.result?.message),
      new RegExp(`^${key} is not a valid snapshot: corrupt snapshot: .*nothing was restored`),
    );
    // Initialised and unsealed by the drill, but it never applied anything: still its own data.
    assert.equal(after.body.initialized, true);
    assert.equal(after.body.sealed, false);
  });

  test("a truncated object: SnapshotTruncated with a rewritten manifest, SizeMismatch without, the throwaway untouched", async () => {
    const bytes = (await target.get(first.key)) ?? Buffer.alloc(0);
    const cut = bytes.subarray(0, bytes.length - 200);
    const key = await storeTampered(first.key, cut, "0000a003");
    const rewritten = await drill(source, { BACKUP_KEY: key });
    assert.equal(rewritten.run.code, 6, showRun(rewritten.run));
    assert.equal(rewritten.run.result?.reason, "SnapshotTruncated");
    assert.match(String(rewritten.run.result?.message), /is not a valid snapshot: truncated snapshot/);

    await target.put(key, cut.subarray(0, cut.length - 100));
    const plain = await drill(source, { BACKUP_KEY: key });
    assert.equal(plain.run.code, 6, showRun(plain.run));
    assert.equal(plain.run.result?.reason, "SizeMismatch");
    assert.equal(plain.after.body.initialized, false, "checked before the throwaway was even initialised");
  });

  test("unseal keys of another cluster: UnsealRefused, naming the directory, never the key", async () => {
    const dir = scratchDir("drill-wrong-keys");
    const wrong = randomBytes(33).toString("base64");
    writeFileSync(join(dir, "key-1"), wrong);
    const { run } = await drill(source, { BACKUP_KEY: first.key, DRILL_UNSEAL_KEYS_DIR: dir });
    assert.equal(run.code, 6, showRun(run));
    assert.equal(run.result?.reason, "UnsealRefused");
    assert.match(String(run.result?.message), /the unseal keys in DRILL_UNSEAL_KEYS_DIR do not open the restored data/);
    assertNoSecrets(run, [wrong]);
  });

  test("a manifest whose seal type is not the snapshot's: SealTypeMismatch", async () => {
    const bytes = (await target.get(first.key)) ?? Buffer.alloc(0);
    const key = await storeTampered(first.key, bytes, "0000a004");
    const manifest = parseManifest(String(await target.get(`${key}.json`)));
    await target.put(`${key}.json`, Buffer.from(serializeManifest({ ...manifest, sealType: "awskms" })));
    const { run } = await drill(source, { BACKUP_KEY: key });
    assert.equal(run.code, 6, showRun(run));
    assert.equal(run.result?.reason, "SealTypeMismatch");
    assert.match(String(run.result?.message), /the seal configuration in it is shamir and its manifest says awskms/);
  });

  test("pointed at the live cluster (initialised): refused before anything is sent", async () => {
    await source.cluster.writeSecret("app/config", { greeting: "still here" });
    const run = await runExecutor(drillMode, {
      ...target.env(),
      ...mounts({ cluster: source.cluster, credentials: target.credentials, token: source.drillToken }).env,
      DRILL_OPENBAO_ADDR: source.cluster.addresses[0] ?? "",
      BACKUP_KEY: first.key,
      DRILL_UNSEAL_KEYS_DIR: keysDir,
    });
    assert.equal(run.code, 1, showRun(run));
    assert.equal(run.result?.reason, "InvalidConfig");
    assert.match(
      String(run.result?.message),
      /^DRILL_OPENBAO_ADDR \(--openbao-addr\): https:\/\/127\.0\.0\.1:\d+ is an initialised OpenBao/,
    );
    assert.deepEqual(await source.cluster.readSecret("app/config"), { greeting: "still here" });
    assert.equal(await source.cluster.isSealed(0), false);
  });

  describe("a source cluster auto-unsealed through Transit", () => {
    let transit: TransitServer;
    let sealed: Source;
    let backup: { key: string; canary: ManifestCanary; value: string };
    before(async () => {
      transit = await startTransitServer();
      try {
        sealed = await prepareSource(await startOpenBao({ nodes: 1, seal: transit.seal }));
      } catch (err) {
        await transit.stop();
        throw err;
      }
      backup = await backupWithCanary(sealed);
    });
    after(async () => {
      await Promise.all([sealed?.cluster.stop(), transit?.stop()]);
    });

    test("a throwaway with the same Transit seal: verified, the canary read back", async () => {
      const manifest = parseManifest(String(await target.get(`${backup.key}.json`)));
      assert.equal(manifest.sealType, "transit");
      const { run, after } = await drill(
        sealed,
        { BACKUP_KEY: backup.key, DRILL_CANARY_PATH: "secret/openbao-backup/canary" },
        { seal: transit.seal },
      );
      assert.equal(run.code, 0, showRun(run));
      assert.equal(run.result?.outcome, "verified");
      assert.equal(run.result?.sealType, "transit");
      assert.deepEqual(run.result?.canary, { path: "secret/openbao-backup/canary", version: backup.canary.version });
      assert.match(run.stdout, /opened it with its transit auto-unseal/);
      assert.equal(after.body.sealed, false);
      assertNoSecrets(run, [sealed.drillToken, sealed.cluster.rootToken, sealed.cluster.recoveryKey, backup.value]);
    });

    test("a plain throwaway without key material: loaded, the restored seal type read from OpenBao's refusal", async () => {
      const { run, after } = await drill(sealed, { BACKUP_KEY: backup.key });
      assert.equal(run.code, 0, showRun(run));
      assert.equal(run.result?.outcome, "loaded");
      assert.equal(run.result?.sealType, "transit");
      assert.equal(after.status, 500);
      assert.match(
        String(after.body.errors),
        /barrier seal type of "transit" does not match expected type of "shamir"/,
      );
    });

    test("values changed, checksums and manifest rewritten: the same seal lets OpenBao refuse it (SnapshotRefused)", async () => {
      const original = await target.get(backup.key);
      assert.ok(original);
      const key = await storeTampered(backup.key, await repacked(original, flipKvVersionValues), "0000a005");
      const { run, after } = await drill(sealed, { BACKUP_KEY: key }, { seal: transit.seal });
      assert.equal(run.code, 6, showRun(run));
      assert.equal(run.result?.reason, "SnapshotRefused");
      assert.match(
        String(run.result?.message),
        /OpenBao refused .* although its bytes match its manifest: .*hash check failed for \\?"state\.bin\\?".*it was changed afterwards/,
      );
      assert.equal(after.body.sealed, false, "the throwaway kept its own data");
    });
  });
});
