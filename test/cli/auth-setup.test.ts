/**
 * Issue 14 point 5: `auth-setup` is safe on a shared OpenBao — against a real OpenBao and the
 * real kube-apiserver:
 * - someone else's JWT mount, policy and roles: refused, each named with what differs and the
 *   --adopt item, and nothing changes (read back byte for byte, policy versions included);
 * - --adopt changes only what it names; custom policy and role names; re-runs are unchanged;
 * - --dry-run prints every write and makes none, and the writes it prints are the ones a real
 *   run makes;
 * - --tls-server-name through a port-forward to 127.0.0.1, OpenBao's certificate naming only
 *   bao.openbao.svc;
 * - the API server's signing keys rotating (the real API server restarted with a new key, as
 *   the Kubernetes procedure does): a jwks_url mount follows by itself; a fixed-keys mount
 *   needs the documented re-run, which updates the mount auth-setup created without --adopt.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect } from "node:tls";
import { KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { httpsJson } from "../servers/https-json.ts";
import { type KubeHandle, kubeGet, startKube } from "../servers/kube.ts";
import { type OpenBaoCluster as BaoServer, startOpenBao } from "../servers/openbao.ts";
import {
  type ManagedProcess,
  scratchDir,
  startProcess,
  startTogether,
  superviseServers,
  waitFor,
} from "../servers/process.ts";
import { TcpProxy } from "../servers/tcp-proxy.ts";
import type { CertificateAuthority } from "../servers/tls.ts";
import { type CliRun, json, runCli, show } from "./run.ts";

superviseServers();

const ns = "openbao";
/** Someone else's policy named "backup": it grants more than snapshots. */
const othersBackupPolicy = `# team A: CI reads its secrets and takes snapshots
path "secret/data/team-a/*" {
  capabilities = ["read"]
}
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}
`;

interface Snapshot {
  readonly mount: unknown;
  readonly config: unknown;
  readonly policies: Record<string, unknown>;
  readonly roles: Record<string, unknown>;
}

describe("auth-setup on a shared OpenBao", () => {
  let kube: KubeHandle;
  let bao: BaoServer;
  let tlsBao: BaoServer;
  let dir: string;
  let kubeconfig: string;
  let caFile: string;
  let tokenFile: string;
  let rotated: ManagedProcess | undefined;

  before(async () => {
    [kube, bao, tlsBao] = await startTogether([startKube(), startOpenBao({ nodes: 1 }), startOpenBao({ nodes: 1 })]);
    dir = scratchDir("cli-auth-setup");
    kubeconfig = join(dir, "admin.kubeconfig");
    writeFileSync(kubeconfig, kube.kubeConfig.exportConfig());
    caFile = join(dir, "bao-ca.crt");
    writeFileSync(caFile, bao.caPem);
    tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${bao.rootToken}\n`);
    await kube.createNamespace(ns);
    await kube.createServiceAccount(ns, "bao-backup");
    await kube.createServiceAccount(ns, "bao-restore");
    // The fixture's OpenBao already has JWT auth at jwt/ (its own key), policies backup and
    // restore and roles backup and restore bound to default/backup and default/restore, none
    // made by auth-setup. Another team describes the mount and widens the backup policy.
    await bao.call("POST", "sys/auth/jwt/tune", { description: "team A: CI pipelines" });
    await bao.call("POST", "sys/policies/acl/backup", { policy: othersBackupPolicy });
  });
  after(async () => {
    await rotated?.stop();
    await Promise.all([bao?.stop(), tlsBao?.stop(), kube?.stop()]);
  });

  /** Runs auth-setup against `bao` with the admin token in a file; no run may print it. */
  const run = async (args: readonly string[], target: BaoServer = bao): Promise<CliRun> => {
    const result = await runCli(
      [
        "auth-setup",
        "bao",
        "-n",
        ns,
        "--address",
        target.addresses[0] ?? "",
        "--ca-file",
        caFile,
        "--token-file",
        tokenFile,
        ...args,
      ],
      {},
    );
    assert.doesNotMatch(
      result.stdout + result.stderr,
      new RegExp(target.rootToken),
      "the admin token is never printed",
    );
    return result;
  };
  const k = (): string[] => ["--kubeconfig", kubeconfig];

  const data = async (path: string): Promise<unknown> => {
    const res = await bao.api<{ data?: unknown }>("GET", path);
    return res.status === 404 ? undefined : res.body.data;
  };
  /** What the other team has, exactly as OpenBao reports it (policies with version and modified time). */
  const snapshot = async (): Promise<Snapshot> => {
    const auth = await bao.call<{ data: Record<string, unknown> }>("GET", "sys/auth");
    return {
      mount: auth.data["jwt/"],
      config: await data("auth/jwt/config"),
      policies: { backup: await data("sys/policies/acl/backup"), restore: await data("sys/policies/acl/restore") },
      roles: { backup: await data("auth/jwt/role/backup"), restore: await data("auth/jwt/role/restore") },
    };
  };
  const login = (path: string, role: string, jwt: string) =>
    bao.api<{ auth?: { policies?: string[] } }>("POST", `auth/${path}/login`, { role, jwt }, { token: "" });
  const backupJwt = async (): Promise<string> => (await kube.requestToken(ns, "bao-backup", "openbao-internal")).token;

  const custom = ["--backup-policy", "bao-backup", "--restore-policy", "bao-restore"];

  test("someone else's mount, policy and roles: refused, each named with what differs and the flag; nothing changes", async () => {
    const before = await snapshot();
    const refused = await run(k());
    assert.equal(refused.code, 1, show(refused));
    const err = refused.stderr;
    assert.match(err, /refusing to overwrite what auth-setup did not create; nothing was changed/);
    assert.match(
      err,
      /auth\/jwt\/config: the config of the JWT auth mount auth\/jwt\/ \(its description "team A: CI pipelines"/,
    );
    assert.match(err, /jwt_validation_pubkeys: 1 key\(s\) sha256:[0-9a-f]{16} → 1 key\(s\) sha256:[0-9a-f]{16}/);
    assert.match(err, /bound_issuer: "" → "https:\/\/kubernetes\.default\.svc"/);
    assert.match(err, /--adopt mount:jwt; or --path <another mount path>/);
    assert.match(err, /sys\/policies\/acl\/backup: the policy backup/);
    assert.match(err, /− path "secret\/data\/team-a\/\*" \{ capabilities = \["read"\] \}\n/);
    assert.doesNotMatch(err, /[−+] path "sys\/storage\/raft\/snapshot"/, "the block both grant is not a difference");
    assert.match(err, /--adopt policy:backup; or --backup-policy <another name>/);
    assert.match(
      err,
      /auth\/jwt\/role\/backup: the role backup \(it grants backup, not one policy with the auth-setup marker\)/,
    );
    assert.match(
      err,
      /bound_claims: \{"\/kubernetes\.io\/namespace":"default".*→ \{"\/kubernetes\.io\/namespace":"openbao"/,
    );
    assert.match(err, /--adopt role:backup; or --backup-role <another name>/);
    assert.match(err, /auth\/jwt\/role\/restore: the role restore/);
    assert.doesNotMatch(err, /sys\/policies\/acl\/restore/, "the restore policy grants the same: nothing to overwrite");
    const asJson = await run([...k(), "-o", "json"]);
    assert.equal(asJson.code, 1, show(asJson));
    const out = json<{ refused: { path: string; adopt: string; differences: string[] }[]; changed: number }>(asJson);
    assert.deepEqual(
      out.refused.map((c) => [c.path, c.adopt]),
      [
        ["auth/jwt/config", "mount:jwt"],
        ["sys/policies/acl/backup", "policy:backup"],
        ["auth/jwt/role/backup", "role:backup"],
        ["auth/jwt/role/restore", "role:restore"],
      ],
    );
    // A dry run refuses the same way; adopting one item still writes nothing while others conflict.
    assert.equal((await run([...k(), "--dry-run"])).code, 1);
    const partly = await run([...k(), "--adopt", "policy:backup"]);
    assert.equal(partly.code, 1, show(partly));
    assert.doesNotMatch(partly.stderr, /sys\/policies\/acl\/backup/);
    assert.deepEqual(await snapshot(), before, "byte for byte what the other team had");
    const policy = (await bao.call<{ data: { policy: string } }>("GET", "sys/policies/acl/backup")).data.policy;
    assert.equal(policy, othersBackupPolicy);
  });

  test("--adopt changes only what it names; custom policy and role names; a re-run is unchanged", async () => {
    const before = await snapshot();
    const names = [...custom, "--backup-role", "bao-backup", "--restore-role", "bao-restore"];
    const adopted = await run([...k(), ...names, "--adopt", "mount:jwt"]);
    assert.equal(adopted.code, 0, show(adopted));
    assert.match(adopted.stdout, /adopted\s+auth\/jwt\/ \(JWT auth\)/);
    assert.match(
      adopted.stdout,
      /updated\s+auth\/jwt\/config \(validation keys, issuer https:\/\/kubernetes\.default\.svc\)/,
    );
    assert.match(adopted.stdout, /created\s+policy bao-backup/);
    assert.match(
      adopted.stdout,
      /created\s+role bao-backup \(openbao\/bao-backup, audience openbao-internal, policy bao-backup\)/,
    );
    assert.match(
      adopted.stdout,
      /created\s+role bao-restore \(openbao\/bao-restore, audience openbao-internal, policy bao-restore\)/,
    );
    const after = await snapshot();
    assert.deepEqual(after.policies, before.policies, "the other team's policies: untouched");
    assert.deepEqual(after.roles, before.roles, "the other team's roles: untouched");
    const mount = after.mount as { description: string; uuid: string };
    assert.equal(mount.uuid, (before.mount as { uuid: string }).uuid, "the same mount, adopted");
    assert.match(mount.description, /^bao-backup auth-setup/, "adopted: marked as auth-setup's");
    const policy = (await bao.call<{ data: { policy: string } }>("GET", "sys/policies/acl/bao-backup")).data.policy;
    assert.match(policy, /^# Managed by bao-backup auth-setup/);
    const ok = await login("jwt", "bao-backup", await backupJwt());
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.auth?.policies?.sort(), ["bao-backup", "default"]);

    // Again, with no --adopt: everything is auth-setup's now, and nothing is written.
    const versions = async () => [
      ((await data("sys/policies/acl/bao-backup")) as { version: number; modified: string }).modified,
      ((await data("sys/policies/acl/bao-restore")) as { version: number; modified: string }).modified,
    ];
    const stamped = await versions();
    const again = await run([...k(), ...names]);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /OpenBao was already configured: unchanged/);
    assert.deepEqual(await versions(), stamped, "no policy was rewritten");

    // Adopt a single role: the other team's role "backup" now grants bao-backup to our Job;
    // its policy "backup" stays theirs, byte for byte.
    const role = await run([...k(), ...names.slice(0, 4), "--backup-role", "backup", "--adopt", "role:backup"]);
    assert.equal(role.code, 1, show(role));
    assert.match(role.stderr, /auth\/jwt\/role\/restore/, "the restore role is not named: still refused");
    const roleOnly = await run([
      ...k(),
      ...names.slice(0, 4),
      "--backup-role",
      "backup",
      "--restore-role",
      "bao-restore",
      "--adopt",
      "role:backup",
    ]);
    assert.equal(roleOnly.code, 0, show(roleOnly));
    assert.match(roleOnly.stdout, /adopted\s+role backup \(openbao\/bao-backup/);
    assert.match(roleOnly.stdout, /unchanged\s+role bao-restore/);
    const backupRole = (await data("auth/jwt/role/backup")) as { token_policies: string[] };
    assert.deepEqual(backupRole.token_policies, ["bao-backup"]);
    assert.deepEqual((await snapshot()).policies, before.policies);
    assert.deepEqual((await snapshot()).roles.restore, before.roles.restore);
    // The adopted role grants a marked policy: a later change needs no --adopt.
    const ttl = await run([
      ...k(),
      ...names.slice(0, 4),
      "--backup-role",
      "backup",
      "--restore-role",
      "bao-restore",
      "--token-ttl",
      "30m",
    ]);
    assert.equal(ttl.code, 0, show(ttl));
    assert.match(ttl.stdout, /updated\s+role backup/);
    assert.match(ttl.stdout, /updated\s+role bao-restore/);
  });

  test("--canary-path: the backup policy also covers restore drills' canary; a run without it takes that back", async () => {
    const names = [...custom, "--backup-role", "bao-backup", "--restore-role", "bao-restore"];
    const policyText = async () =>
      (await bao.call<{ data: { policy: string } }>("GET", "sys/policies/acl/bao-backup")).data.policy;
    const withCanary = await run([...k(), ...names, "--canary-path", "secret/openbao-backup/canary"]);
    assert.equal(withCanary.code, 0, show(withCanary));
    assert.match(withCanary.stdout, /updated\s+policy bao-backup/);
    const policy = await policyText();
    assert.match(
      policy,
      /path "secret\/data\/openbao-backup\/canary" \{\s*capabilities = \["create", "update", "read"\]/,
    );
    assert.match(policy, /path "sys\/mounts" \{\s*capabilities = \["read"\]/);
    assert.match(policy, /path "sys\/auth" \{\s*capabilities = \["read"\]/);
    assert.match(policy, /path "sys\/storage\/raft\/snapshot" \{\s*capabilities = \["read"\]/);
    const bad = await run([...k(), ...names, "--canary-path", "canary"]);
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stderr, /--canary-path: /);
    const without = await run([...k(), ...names]);
    assert.equal(without.code, 0, show(without));
    assert.match(without.stdout, /updated\s+policy bao-backup/);
    assert.doesNotMatch(await policyText(), /canary/);
  });

  test("--dry-run prints every write (method, path, body) and makes none; a real run makes exactly those", async () => {
    const names = ["--backup-policy", "dry-backup", "--restore-policy", "dry-restore"];
    const args = [...k(), "--path", "dry", ...names, "--backup-role", "dry-backup", "--restore-role", "dry-restore"];
    const dry = await run([...args, "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    assert.match(dry.stdout, /^dry run: nothing was written to https:\/\/127\.0\.0\.1:\d+\./);
    assert.match(dry.stdout, /would create\s+auth\/dry\/ \(JWT auth\)/);
    assert.match(dry.stdout, /would create\s+policy dry-backup/);
    assert.match(dry.stdout, /The 6 write\(s\) auth-setup would make, in order:/);
    assert.match(dry.stdout, /POST \/v1\/sys\/auth\/dry \{"type":"jwt","description":"bao-backup auth-setup: /);
    assert.match(dry.stdout, /POST \/v1\/auth\/dry\/config \{"jwt_validation_pubkeys":\["-----BEGIN PUBLIC KEY-----/);
    assert.match(
      dry.stdout,
      /POST \/v1\/sys\/policies\/acl\/dry-backup \{"policy":"# Managed by bao-backup auth-setup: /,
    );
    assert.match(dry.stdout, /POST \/v1\/auth\/dry\/role\/dry-backup \{"role_type":"jwt"/);
    assert.match(dry.stdout, /POST \/v1\/auth\/dry\/role\/dry-restore \{/);
    const plan = json<{ dryRun: boolean; writes: { method: string; path: string; body: Record<string, unknown> }[] }>(
      await run([...args, "--dry-run", "-o", "json"]),
    );
    assert.equal(plan.dryRun, true);
    assert.deepEqual(
      plan.writes.map((w) => `${w.method} ${w.path}`),
      [
        "POST /v1/sys/auth/dry",
        "POST /v1/auth/dry/config",
        "POST /v1/sys/policies/acl/dry-backup",
        "POST /v1/sys/policies/acl/dry-restore",
        "POST /v1/auth/dry/role/dry-backup",
        "POST /v1/auth/dry/role/dry-restore",
      ],
    );
    const auth = await bao.call<{ data: Record<string, unknown> }>("GET", "sys/auth");
    assert.equal(auth.data["dry/"], undefined, "no mount was made");
    assert.equal(await data("sys/policies/acl/dry-backup"), undefined, "no policy was written");

    const real = await run(args);
    assert.equal(real.code, 0, show(real));
    const config = (await data("auth/dry/config")) as { jwt_validation_pubkeys: string[]; bound_issuer: string };
    const planned = plan.writes[1]?.body as { jwt_validation_pubkeys: string[]; bound_issuer: string };
    assert.deepEqual(
      config.jwt_validation_pubkeys.map((key) => key.trim()),
      planned.jwt_validation_pubkeys.map((key) => key.trim()),
    );
    assert.equal(config.bound_issuer, planned.bound_issuer);
    const policy = (await data("sys/policies/acl/dry-backup")) as { policy: string };
    assert.equal(policy.policy, plan.writes[2]?.body.policy);
    const role = (await data("auth/dry/role/dry-backup")) as Record<string, unknown>;
    for (const [field, value] of Object.entries(plan.writes[4]?.body ?? {})) {
      if (field !== "bound_claims_type") assert.deepEqual(role[field], value, field);
    }

    // A dry run of an adoption shows the marking write as well, and changes nothing either.
    await bao.call("POST", "sys/auth/team-b", { type: "jwt", description: "team B" });
    await bao.call("POST", "auth/team-b/config", { jwt_validation_pubkeys: [kube.serviceAccountPublicKeyPem] });
    const teamB = async () => [
      (await bao.call<{ data: Record<string, unknown> }>("GET", "sys/auth")).data["team-b/"],
      await data("auth/team-b/config"),
    ];
    const untouched = await teamB();
    const adopt = await run([...k(), "--path", "team-b", ...names, "--adopt", "mount:team-b", "--dry-run"]);
    assert.equal(adopt.code, 0, show(adopt));
    assert.match(adopt.stdout, /would adopt\s+auth\/team-b\/ \(JWT auth\)/);
    assert.match(adopt.stdout, /would update\s+auth\/team-b\/config/);
    assert.match(adopt.stdout, /POST \/v1\/sys\/auth\/team-b\/tune \{"description":"bao-backup auth-setup: /);
    assert.match(adopt.stdout, /POST \/v1\/auth\/team-b\/config \{"jwt_validation_pubkeys":/);
    assert.deepEqual(await teamB(), untouched);
  });

  test("bad input names the flag and the fix (exit 1)", async () => {
    const cases: [readonly string[], RegExp][] = [
      [
        ["--adopt", "jwt-mount"],
        /--adopt "jwt-mount" is not an item; name each thing to take over as mount:<path>, policy:<name> or role:<name>/,
      ],
      [
        ["--adopt", "policy:someone-elses"],
        /--adopt policy:someone-elses: not something this run manages; it can adopt mount:jwt, policy:backup/,
      ],
      [["--backup-role", "Backup"], /--backup-role "Backup": OpenBao keeps role names in lower case; write "backup"/],
      [["--backup-policy", "root"], /--backup-policy root: "root" is OpenBao's own policy/],
      [["--backup-policy", "same", "--restore-policy", "same"], /--backup-policy and --restore-policy are both same/],
      [
        ["--jwks-url", "http://127.0.0.1/openid/v1/jwks"],
        /--jwks-url http:\/\/127\.0\.0\.1\/openid\/v1\/jwks must be https:\/\//,
      ],
      [["--jwt-validation", "oidc"], /--jwt-validation must be auto, jwks or pubkeys/],
      [["--jwks-url", "https://x/jwks", "--jwt-validation-pubkey-file", "k.pem"], /give one/],
      [["--tls-server-name", "127.0.0.1"], /--tls-server-name 127\.0\.0\.1 is an IP address/],
      [
        ["--tls-server-name", "https://bao.openbao.svc:8200"],
        /--tls-server-name "https:\/\/bao\.openbao\.svc:8200" is not a DNS name/,
      ],
    ];
    for (const [flags, message] of cases) {
      const result = await run([...k(), ...flags]);
      assert.equal(result.code, 1, `${flags.join(" ")}: ${show(result)}`);
      assert.match(result.stderr, message, flags.join(" "));
    }
    const plain = await runCli(
      [
        "auth-setup",
        "bao",
        "-n",
        ns,
        "--address",
        "http://127.0.0.1:8200",
        "--tls-server-name",
        "bao.openbao.svc",
        ...k(),
      ],
      { BAO_TOKEN: bao.rootToken },
    );
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /--tls-server-name bao\.openbao\.svc needs an https:\/\/ --address/);
  });

  test("--tls-server-name: through a port-forward on 127.0.0.1 to an OpenBao whose certificate names only bao.openbao.svc", async () => {
    const name = "bao.openbao.svc";
    const node = tlsBao.nodes[0];
    assert.ok(node);
    // Reissue the node's certificate with one DNS SAN (no IP, no localhost) and let OpenBao
    // reload it (SIGHUP), as a certificate for the in-cluster Service name would be.
    const cert = dnsOnlyCertificate(tlsBao.ca, name);
    writeFileSync(join(tlsBao.dir, "tls", `${node.nodeId}.crt`), cert.certPem);
    writeFileSync(join(tlsBao.dir, "tls", `${node.nodeId}.key`), cert.keyPem);
    tlsBao.kill(0, "SIGHUP");
    await waitFor(async () => (await servedNames(node.apiPort, tlsBao.caPem, name)) === `DNS:${name}`, {
      what: "OpenBao serving the DNS-only certificate",
      timeoutMs: 30_000,
      processes: tlsBao.processes,
    });
    const forward = await new TcpProxy(node.apiPort).start();
    try {
      const tlsCa = join(dir, "tls-bao-ca.crt");
      writeFileSync(tlsCa, tlsBao.caPem);
      const tlsToken = join(dir, "tls-token");
      writeFileSync(tlsToken, tlsBao.rootToken);
      const keyFile = join(dir, "sa.pub");
      writeFileSync(keyFile, kube.serviceAccountPublicKeyPem);
      const base = [
        "auth-setup",
        "bao",
        "-n",
        ns,
        "--address",
        `https://127.0.0.1:${forward.port}`,
        "--ca-file",
        tlsCa,
        "--token-file",
        tlsToken,
        "--jwt-validation-pubkey-file",
        keyFile,
        "--path",
        "k8s",
      ];
      const without = await runCli(base);
      assert.equal(without.code, 3, show(without));
      assert.match(without.stderr, /ERR_TLS_CERT_ALTNAME_INVALID/);
      assert.match(without.stderr, /pass --tls-server-name <a DNS name in the certificate, e.g\. bao\.openbao\.svc>/);
      const wrong = await runCli([...base, "--tls-server-name", "other.openbao.svc"]);
      assert.equal(wrong.code, 3, show(wrong));
      assert.match(wrong.stderr, /--tls-server-name/);

      const through = await runCli([...base, "--tls-server-name", name]);
      assert.equal(through.code, 0, show(through));
      assert.match(through.stdout, /created\s+auth\/k8s\/ \(JWT auth\)/);
      assert.match(through.stdout, /created\s+role restore/);
      assert.ok(
        !(through.stdout + through.stderr + without.stderr).includes(tlsBao.rootToken),
        "the root token is never printed",
      );
      // The environment variable of the bao CLI works the same; a re-run is unchanged.
      const again = await runCli(base, { BAO_TLS_SERVER_NAME: name });
      assert.equal(again.code, 0, show(again));
      assert.match(again.stdout, /already configured: unchanged/);
    } finally {
      await forward.stop();
    }
  });

  test("auto without anonymous access to the API server's keys: fixed keys, and the output says why and what to do", async () => {
    const args = [...k(), "--path", "auto-keys", ...custom];
    const dry = await run([...args, "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    assert.match(
      dry.stdout,
      /validation: fixed keys, as the API server's JWKS at https:\/\/127\.0\.0\.1:\d+\/openid\/v1\/jwks is not served to anonymous clients \(403\), and OpenBao fetches without credentials \(to let it follow key rotation: kubectl create clusterrolebinding .*--group=system:unauthenticated\); after the API server's signing keys rotate, run auth-setup again \(it updates the keys of the mount it created\)/,
    );
    const made = await run(args);
    assert.equal(made.code, 0, show(made));
    assert.match(
      made.stdout,
      /created\s+auth\/auto-keys\/config \(validation keys, issuer https:\/\/kubernetes\.default\.svc\)/,
    );
    const config = (await data("auth/auto-keys/config")) as { jwt_validation_pubkeys: string[]; jwks_url: string };
    assert.equal(config.jwt_validation_pubkeys.length, 1);
    assert.equal(config.jwks_url, "");
    // Asking for jwks explicitly is refused before anything is written, naming the binding.
    const jwks = await run([...k(), "--path", "never", ...custom, "--jwt-validation", "jwks"]);
    assert.equal(jwks.code, 1, show(jwks));
    assert.match(jwks.stderr, /refuses anonymous clients \(403\), and OpenBao fetches it without credentials/);
    assert.equal((await bao.call<{ data: Record<string, unknown> }>("GET", "sys/auth")).data["never/"], undefined);
  });

  test("the API server's signing keys rotate: a jwks_url mount follows by itself; a fixed-keys mount after the documented re-run, without --adopt", async () => {
    // What the Kubernetes docs prescribe for OIDC discovery by relying parties: anonymous
    // clients may read the discovery document and the JWKS (public keys only).
    await kube.kubeConfig.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: "service-account-issuer-discovery-unauthenticated" },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "system:service-account-issuer-discovery",
        },
        subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:unauthenticated" }],
      },
    });
    const jwksArgs = [...k(), "--path", "rot-jwks", ...custom];
    const keysArgs = [...k(), "--path", "rot-keys", ...custom, "--jwt-validation", "pubkeys"];
    await waitFor(
      async () => (await httpsJson(`${kube.server}/openid/v1/jwks`, { caPem: kube.caPem })).status === 200,
      { what: "the JWKS served to anonymous clients", timeoutMs: 20_000 },
    );
    const follows = await run(jwksArgs);
    assert.equal(follows.code, 0, show(follows));
    assert.match(
      follows.stdout,
      /created\s+auth\/rot-jwks\/config \(jwks_url https:\/\/127\.0\.0\.1:\d+\/openid\/v1\/jwks, issuer https:\/\/kubernetes\.default\.svc\)/,
    );
    assert.match(
      follows.stdout,
      /validation: OpenBao fetches the signing keys from .* itself .*so a key rotation needs no re-run/,
    );
    const jwksConfig = (await data("auth/rot-jwks/config")) as {
      jwks_ca_pem: string;
      jwt_validation_pubkeys: string[];
    };
    assert.equal(
      jwksConfig.jwks_ca_pem.trim(),
      kube.caPem.trim(),
      "the kubeconfig's CA, for OpenBao to verify the API server",
    );
    assert.deepEqual(jwksConfig.jwt_validation_pubkeys, []);
    const fixed = await run(keysArgs);
    assert.equal(fixed.code, 0, show(fixed));
    assert.match(fixed.stdout, /created\s+auth\/rot-keys\/config \(validation keys/);
    const oldJwt = await backupJwt();
    for (const path of ["rot-jwks", "rot-keys"]) {
      const res = await login(path, "backup", oldJwt);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
    }

    // Rotation, as the Kubernetes procedure does it: the API server restarts signing with a
    // new key, still accepting (and publishing) the old public key.
    const next = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    writeFileSync(join(dir, "sa-next.pub"), next.publicKey);
    writeFileSync(join(dir, "sa-next.key"), next.privateKey, { mode: 0o600 });
    const [command, ...args] = kube.apiServer.child.spawnargs;
    assert.ok(command);
    await kube.apiServer.stop();
    rotated = startProcess({
      name: "kube-apiserver-rotated",
      command,
      args: [
        ...args,
        // A list flag: the new public key is added to the old one; the signing key is replaced.
        `--service-account-key-file=${join(dir, "sa-next.pub")}`,
        `--service-account-signing-key-file=${join(dir, "sa-next.key")}`,
      ],
    });
    const server = rotated;
    await waitFor(async () => (await kubeGet(kube.kubeConfig, "/readyz").catch(() => ({ status: 0 }))).status === 200, {
      what: "kube-apiserver restarted with the new signing key",
      timeoutMs: 90_000,
      processes: [server],
    });
    const newJwt = await backupJwt();

    const viaJwks = await login("rot-jwks", "backup", newJwt);
    assert.equal(viaJwks.status, 200, `jwks_url: OpenBao fetched the new key itself: ${viaJwks.text}`);
    const stale = await login("rot-keys", "backup", newJwt);
    assert.equal(stale.status, 400, "fixed keys: the new key is unknown until auth-setup runs again");

    const rerun = await run(keysArgs);
    assert.equal(rerun.code, 0, show(rerun));
    assert.match(rerun.stdout, /updated\s+auth\/rot-keys\/config \(validation keys/);
    assert.match(rerun.stdout, /unchanged\s+role backup/);
    assert.equal((await login("rot-keys", "backup", newJwt)).status, 200);
    assert.equal((await login("rot-keys", "backup", oldJwt)).status, 200, "the old key is still listed");
    const config = (await data("auth/rot-keys/config")) as { jwt_validation_pubkeys: string[] };
    assert.equal(config.jwt_validation_pubkeys.length, 2);
    assert.match((await run(keysArgs)).stdout, /already configured: unchanged/);
    assert.match((await run(jwksArgs)).stdout, /already configured: unchanged/, "nothing to do for the jwks mount");
  });

  test("auto, when OpenBao cannot fetch the JWKS auth-setup could: the current keys instead, said so", async () => {
    // This machine trusts the API server's CA system-wide (NODE_EXTRA_CA_CERTS) and the
    // kubeconfig names no CA, so auth-setup reaches the JWKS with the system CAs and passes no
    // jwks_ca_pem; OpenBao does not trust that CA, and refuses the URL when the config is written.
    const noCa = new KubeConfig();
    noCa.loadFromOptions({
      clusters: [{ name: "test", server: kube.server, skipTLSVerify: false }],
      users: [
        {
          name: "admin",
          certData: Buffer.from(kube.admin.certPem).toString("base64"),
          keyData: Buffer.from(kube.admin.keyPem).toString("base64"),
        },
      ],
      contexts: [{ name: "admin@test", cluster: "test", user: "admin" }],
      currentContext: "admin@test",
    });
    const noCaKubeconfig = join(dir, "no-ca.kubeconfig");
    writeFileSync(noCaKubeconfig, noCa.exportConfig());
    const kubeCa = join(dir, "kube-ca.crt");
    writeFileSync(kubeCa, kube.caPem);
    const args = [
      "auth-setup",
      "bao",
      "-n",
      ns,
      "--address",
      bao.addresses[0] ?? "",
      "--ca-file",
      caFile,
      "--token-file",
      tokenFile,
      "--kubeconfig",
      noCaKubeconfig,
      "--path",
      "fallback",
      ...custom,
    ];
    const env = { NODE_EXTRA_CA_CERTS: kubeCa };
    const dry = await runCli([...args, "--dry-run"], env);
    assert.equal(dry.code, 0, show(dry));
    assert.match(
      dry.stdout,
      /would create\s+auth\/fallback\/config \(jwks_url https:\/\/127\.0\.0\.1:\d+\/openid\/v1\/jwks/,
    );
    assert.match(
      dry.stdout,
      /should it be unable to fetch it, auth-setup writes the API server's current keys instead/,
    );
    const made = await runCli(args, env);
    assert.equal(made.code, 0, show(made));
    assert.match(
      made.stdout,
      /created\s+auth\/fallback\/config \(validation keys, issuer https:\/\/kubernetes\.default\.svc\)/,
    );
    assert.match(made.stdout, /validation: fixed keys \(see below\)/);
    assert.match(
      made.stdout,
      /OpenBao could not fetch https:\/\/127\.0\.0\.1:\d+\/openid\/v1\/jwks itself \(it answered: .*error checking jwks URL\), so auth-setup configured fixed keys instead/,
    );
    const config = (await data("auth/fallback/config")) as { jwt_validation_pubkeys: string[]; jwks_url: string };
    assert.equal(config.jwks_url, "");
    assert.equal(config.jwt_validation_pubkeys.length, 2, "both keys the rotated API server lists");
    const again = await runCli(args, env);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /unchanged\s+auth\/fallback\/config \(validation keys/);
    assert.equal((await login("fallback", "backup", await backupJwt())).status, 200);
  });

  test("--jwks-url OpenBao cannot fetch: refused by OpenBao at write time, reported with the fix and what was written", async () => {
    const result = await run([
      ...k(),
      "--path",
      "unreachable-jwks",
      ...custom,
      "--jwks-url",
      "https://127.0.0.1:9/openid/v1/jwks",
    ]);
    assert.equal(result.code, 1, show(result));
    assert.match(result.stderr, /OpenBao could not fetch the JWKS at https:\/\/127\.0\.0\.1:9\/openid\/v1\/jwks/);
    assert.match(
      result.stderr,
      /or use --jwt-validation pubkeys\. Written before this: created auth\/unreachable-jwks\/ \(JWT auth\)\./,
    );
    // The mount it made is auth-setup's: a run with fixed keys completes it without --adopt.
    const fixed = await run([...k(), "--path", "unreachable-jwks", ...custom, "--jwt-validation", "pubkeys"]);
    assert.equal(fixed.code, 0, show(fixed));
    assert.match(fixed.stdout, /unchanged\s+auth\/unreachable-jwks\/ \(JWT auth\)/);
    assert.match(fixed.stdout, /created\s+auth\/unreachable-jwks\/config/);
  });
});

/** A certificate for `dnsName` only (no IP, no localhost), signed by `ca`. */
function dnsOnlyCertificate(ca: CertificateAuthority, dnsName: string): { certPem: string; keyPem: string } {
  const work = scratchDir("dns-only-cert");
  const openssl = (args: readonly string[]): void => {
    execFileSync("openssl", args, { cwd: work, stdio: ["ignore", "ignore", "pipe"] });
  };
  writeFileSync(
    join(work, "ext"),
    `subjectAltName=DNS:${dnsName}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem"]);
  openssl(["req", "-new", "-key", "key.pem", "-subj", `/CN=${dnsName}`, "-out", "csr.pem"]);
  openssl([
    "x509",
    "-req",
    "-in",
    "csr.pem",
    "-CA",
    ca.certPath,
    "-CAkey",
    ca.keyPath,
    "-CAcreateserial",
    "-CAserial",
    join(work, "serial"),
    "-days",
    "2",
    "-sha256",
    "-extfile",
    "ext",
    "-out",
    "cert.pem",
  ]);
  return { certPem: readFileSync(join(work, "cert.pem"), "utf8"), keyPem: readFileSync(join(work, "key.pem"), "utf8") };
}

/** The subjectAltName of the certificate served on 127.0.0.1:`port` (no name check). */
function servedNames(port: number, caPem: string, servername: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, ca: caPem, servername, rejectUnauthorized: false }, () => {
      const names = socket.getPeerCertificate().subjectaltname;
      socket.end();
      resolve(names);
    });
    socket.on("error", () => resolve(undefined));
  });
}
