/**
 * OpenBao restarted between accepting a snapshot and applying it. It answers the POST once it
 * has buffered the snapshot, logs "shutting down prior to restoring snapshot", and applies it
 * after; a node killed there (OpenBao v2.4.0's autopilot race crashes at that moment, and a
 * kubelet restarts the container) comes back active with a new `active_time` and a higher Raft
 * index, serving the data from before. Every sign the restore waited for then held, and the run
 * reported a success that restored nothing.
 *
 * Here the real executor restores into a real 1-node OpenBao, which is SIGKILLed as soon as it
 * logs that line and restarted: the run must fail `RestoreNotServed` (exit 6) with the data
 * untouched, for a JWT login and for a static token, and leave no mark behind; a restore that
 * is not interrupted must still succeed, also with tokens that leave nothing to compare.
 */
import assert from "node:assert/strict";
import { createSign, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers } from "../servers/process.ts";
import { clusterEnv, type ExecutorRun, mounts, runExecutor, runRestore, showRun } from "./harness.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
const base64url = (value: string | Buffer): string => Buffer.from(value).toString("base64url");

/** A projected ServiceAccount token of default/restore, as the fixture's `restore` role binds it. */
function restoreJwt(): string {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
  const claims = base64url(
    JSON.stringify({
      sub: "system:serviceaccount:default:restore",
      aud: ["openbao-internal"],
      iat: now,
      nbf: now,
      exp: now + 3600,
      "kubernetes.io": { namespace: "default", serviceaccount: { name: "restore" } },
    }),
  );
  const signature = createSign("RSA-SHA256").update(`${header}.${claims}`).sign(keys.privateKey);
  return `${header}.${claims}.${base64url(signature)}`;
}

describe("OpenBao restarted before applying a restore (1-node OpenBao, MinIO, the real executable)", () => {
  let cluster: OpenBaoCluster;
  let target: TargetUnderTest;
  let staticToken: string;
  let key: string;

  type Auth = { token: string } | { jwt: string; role: string };
  const env = (auth: Auth): Record<string, string> => ({
    ...clusterEnv(cluster),
    ...target.env(),
    ...("role" in auth
      ? { ...mounts({ cluster, credentials: target.credentials, jwt: auth.jwt }).env, BACKUP_JWT_AUTH_ROLE: auth.role }
      : mounts({ cluster, credentials: target.credentials, token: auth.token }).env),
  });
  const value = async (): Promise<string | undefined> => (await cluster.readSecret("restart/s"))?.value;

  /** Runs a restore of `key` and kills OpenBao the moment it starts applying the snapshot. */
  const restoreKilledBeforeApplying = async (auth: Auth): Promise<ExecutorRun> => {
    const log = cluster.nodes[0]?.process.logPath ?? "";
    const offset = readFileSync(log).length;
    let ended: ExecutorRun | undefined;
    const run = runExecutor("restore", { ...env(auth), BACKUP_KEY: key }).then((r) => {
      ended = r;
      return r;
    });
    let killed = false;
    for (let waited = 0; waited < 120_000 && !killed && ended === undefined; waited += 20) {
      if (readFileSync(log).subarray(offset).toString("utf8").includes("prior to restoring snapshot")) {
        cluster.kill(0);
        killed = true;
      } else await sleep(20);
    }
    assert.ok(killed, `OpenBao started applying the snapshot: ${ended ? showRun(ended) : "it never did"}`);
    await cluster.restart(0);
    return run;
  };

  before(async () => {
    [cluster, target] = await startTogether([
      startOpenBao({
        nodes: 1,
        jwtValidationPubkeys: [keys.publicKey.export({ type: "spki", format: "pem" }).toString()],
      }),
      startTarget("s3"),
    ]);
    // Created before the snapshot: a static token that the restored data knows too.
    staticToken = (
      await cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
        policies: ["restore"],
        ttl: "6h",
      })
    ).auth.client_token;
    await cluster.writeSecret("restart/s", { value: "before" });
    const backup = await runExecutor("backup", env({ token: cluster.rootToken }));
    assert.equal(backup.code, 0, showRun(backup));
    key = String(backup.result?.key);
  });
  after(async () => {
    await Promise.all([cluster?.stop(), target?.stop()]);
  });

  for (const [name, auth] of [
    ["a JWT login (its token is unknown to the snapshot)", () => ({ jwt: restoreJwt(), role: "restore" })],
    ["a static token the snapshot knows (a mark in its cubbyhole)", () => ({ token: staticToken })],
  ] as const) {
    test(`${name}: RestoreNotServed, nothing restored, no mark left; uninterrupted, it restores`, async () => {
      await cluster.writeSecret("restart/s", { value: "after" });
      const run = await restoreKilledBeforeApplying(auth());
      assert.equal(await value(), "after", "the kill landed before OpenBao applied the snapshot");
      assert.equal(run.code, 6, `a restore that restored nothing is a failure: ${showRun(run)}`);
      assert.equal(run.result?.reason, "RestoreNotServed", showRun(run));
      assert.match(String(run.result?.message), /still (valid|there).*data from before.*run the restore again/);
      const mark = await cluster.api("GET", "cubbyhole/openbao-backup/restore-mark", undefined, {
        token: staticToken,
      });
      assert.equal(mark.status, 404, `no mark left in the data that stayed: ${mark.text}`);

      const again = await runRestore(cluster, { ...env(auth()), BACKUP_KEY: key });
      assert.equal(again.code, 0, `the restore run again succeeds: ${showRun(again)}`);
      assert.equal(await value(), "before", "and restores");
    });
  }

  for (const [name, options] of [
    ["a batch token (valid in any copy of the data)", { type: "batch" }],
    ["a token without the default policy (no cubbyhole, no lookup-self)", { no_default_policy: true }],
  ] as const) {
    test(`${name} leaves nothing to compare: an uninterrupted restore still succeeds`, async () => {
      await cluster.writeSecret("restart/s", { value: "after" });
      const created = await cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
        ...options,
        policies: ["restore"],
        ttl: "1h",
      });
      const run = await runRestore(cluster, { ...env({ token: created.auth.client_token }), BACKUP_KEY: key });
      assert.equal(run.code, 0, showRun(run));
      assert.equal(await value(), "before");
    });
  }
});
