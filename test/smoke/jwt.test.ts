/**
 * Proves the two real servers trust each other the way the product needs: a token issued
 * by kube-apiserver's TokenRequest API for audience `openbao-internal` logs in to OpenBao's
 * JWT auth (validated with the API server's public key), and only for the bound
 * namespace + ServiceAccount; the executor backs up and restores with it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { clusterEnv, mounts, runExecutor, runRestore } from "../executor/harness.ts";
import { startTarget, type TargetUnderTest } from "../executor/targets.ts";
import { type KubeHandle, startKube } from "../servers/kube.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers } from "../servers/process.ts";

superviseServers();

describe("kube-apiserver tokens → OpenBao JWT auth", () => {
  let kube: KubeHandle;
  let bao: OpenBaoCluster;
  let target: TargetUnderTest;
  before(async () => {
    kube = await startKube();
    [bao, target] = await startTogether([
      startOpenBao({
        nodes: 1,
        jwtValidationPubkeys: [kube.serviceAccountPublicKeyPem],
        jwtIssuer: kube.issuer,
        backupServiceAccount: { namespace: "openbao", name: "bao-backup" },
        restoreServiceAccount: { namespace: "openbao", name: "bao-restore" },
      }),
      startTarget("s3"),
    ]);
    await kube.createNamespace("openbao");
    await kube.createServiceAccount("openbao", "bao-backup");
    await kube.createServiceAccount("openbao", "bao-restore");
    await kube.createServiceAccount("openbao", "someone-else");
  });
  after(async () => {
    await Promise.all([bao?.stop(), target?.stop(), kube?.stop()]);
  });

  const login = (role: string, jwt: string) =>
    bao.api<{ auth?: { policies?: string[] } }>("POST", "auth/jwt/login", { role, jwt }, { token: "" });

  test("a TokenRequest token for openbao-internal logs in as the bound ServiceAccount", async () => {
    const { token } = await kube.requestToken("openbao", "bao-backup", "openbao-internal");
    const res = await login("backup", token);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.auth?.policies?.includes("backup"));
  });

  test("another ServiceAccount, or another audience, is refused", async () => {
    // OpenBao answers a claim or audience mismatch with 400 and no token.
    const other = await kube.requestToken("openbao", "someone-else", "openbao-internal");
    const otherLogin = await login("backup", other.token);
    assert.equal(otherLogin.status, 400);
    assert.match(otherLogin.text, /claim/);
    assert.equal(otherLogin.body.auth, undefined);
    const wrongAudience = await kube.requestToken("openbao", "bao-backup", kube.issuer);
    const audienceLogin = await login("backup", wrongAudience.token);
    assert.equal(audienceLogin.status, 400);
    assert.match(audienceLogin.text, /aud/);
  });

  test("the executor backs up and restores with projected-style JWTs; a refused JWT exits 2", async () => {
    const backupJwt = (await kube.requestToken("openbao", "bao-backup", "openbao-internal")).token;
    const env = (jwt: string, role: string) => ({
      ...clusterEnv(bao),
      ...target.env(),
      ...mounts({ cluster: bao, credentials: target.credentials, jwt }).env,
      BACKUP_JWT_AUTH_ROLE: role,
    });
    const backup = await runExecutor("backup", env(backupJwt, "backup"));
    assert.equal(backup.code, 0, backup.stderr + backup.raw);
    const restoreJwt = (await kube.requestToken("openbao", "bao-restore", "openbao-internal")).token;
    const restore = await runRestore(bao, {
      ...env(restoreJwt, "restore"),
      BACKUP_KEY: String(backup.result?.key),
    });
    assert.equal(restore.code, 0, restore.stderr + restore.raw);
    const refused = await runExecutor("backup", env(restoreJwt, "backup"));
    assert.equal(refused.code, 2, refused.stderr);
    assert.doesNotMatch(refused.raw + refused.stderr + refused.stdout, /eyJ[A-Za-z0-9_-]{10,}/, "no JWT in any output");
  });
});
