/**
 * `bao-backup auth-setup`: configures OpenBao so backup and restore Jobs can log in with their
 * projected ServiceAccount tokens, idempotently, printing what it changed:
 *
 * - JWT auth enabled at `--path` (default `jwt`) when missing;
 * - its config: `jwt_validation_pubkeys` (from `--jwt-validation-pubkey-file`, or discovered
 *   from the API server's `/openid/v1/jwks` through `--kubeconfig`) and `bound_issuer`
 *   (`--issuer`, or the discovered issuer);
 * - policies `backup` (read on sys/storage/raft/snapshot) and `restore` (update on
 *   sys/storage/raft/snapshot and snapshot-force);
 * - roles `backup` and `restore` (`--backup-role`, `--restore-role`) bound to the audience
 *   (`--audience`, default openbao-internal) and, through JSON-pointer `bound_claims`, to the
 *   namespace and ServiceAccount: `<cluster>-backup` for backups and `<cluster>-restore` for
 *   restores, the names the operator gives the Jobs' ServiceAccounts.
 *
 * The admin token is read from `--token-file` or the `BAO_TOKEN` environment variable, never
 * from a flag value (it would land in shell history); it never appears in any output.
 */
import { createPublicKey, type JsonWebKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { defaultJwtAudience } from "../api/constants.ts";
import { backupServiceAccountName } from "../backup/controller.ts";
import { OpenBaoError } from "../openbao/errors.ts";
import { OpenBaoHttp } from "../openbao/http.ts";
import { restoreServiceAccountName } from "../restore/plan.ts";
import { exitCodes } from "./exit-codes.ts";
import {
  KubeProblem,
  kubeFlags,
  openKube,
  outputFlags,
  outputFormat,
  parseFlags,
  printJson,
  reportFailure,
  str,
  UsageError,
} from "./shared.ts";

export const backupPolicy = `path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}\n`;
export const restorePolicy =
  `path "sys/storage/raft/snapshot" {\n  capabilities = ["update"]\n}\n\n` +
  `path "sys/storage/raft/snapshot-force" {\n  capabilities = ["update"]\n}\n`;

const help = `Usage: bao-backup auth-setup <cluster> -n <namespace> --address <url> [options]

Configures OpenBao's JWT auth for backup and restore Jobs, idempotently, and prints what it
changed ("unchanged" when nothing needed to change):
  - enables JWT auth at --path when missing, and sets its validation key and issuer;
  - writes the policies "backup" (read sys/storage/raft/snapshot) and "restore" (update
    sys/storage/raft/snapshot and snapshot-force);
  - writes the roles bound to --audience and to the ServiceAccounts <cluster>-backup and
    <cluster>-restore in <namespace> (the operator's names for backup and restore Jobs).

OpenBao:
  --address <url>                   OpenBao API address (or BAO_ADDR)
  --ca-file <file>                  CA of OpenBao's TLS (or BAO_CACERT); default: system CAs
  --token-file <file>               admin token; or the BAO_TOKEN environment variable.
                                    (There is no --token: a token on the command line would
                                    land in shell history.)
JWT validation (one of):
  --jwt-validation-pubkey-file <f>  PEM public key(s) that sign ServiceAccount tokens
  --kubeconfig <file>               discover them from the API server's /openid/v1/jwks
  --issuer <iss>                    bound_issuer (default: the discovered issuer; none with a key file)
Names:
  -n, --namespace <ns>              namespace of the OpenBaoCluster (required)
  --path <path>                     JWT auth mount path (default jwt)
  --audience <aud>                  bound audience (default ${defaultJwtAudience}, the operator's OPENBAO_JWT_AUDIENCE)
  --backup-role <name>              default backup (spec.backup.jwtAuthRole)
  --restore-role <name>             default restore (OpenBaoRestore spec.jwtAuthRole)
  --token-ttl <duration>            TTL of the tokens the roles issue (default 1h)
  -o, --output json|text
  -h, --help

Exit codes: 0 configured, 1 configuration, 2 the admin token was refused or lacks permission
(or Kubernetes refused the kubeconfig), 3 OpenBao unreachable.
`;

type Action = "created" | "updated" | "unchanged";

interface Change {
  item: string;
  action: Action;
}

interface Ctx {
  readonly http: OpenBaoHttp;
  readonly address: string;
  readonly token: string;
}

async function read<T>(ctx: Ctx, path: string): Promise<T | undefined> {
  try {
    return await ctx.http.json<T>(ctx.address, { method: "GET", path, token: ctx.token });
  } catch (err) {
    if (err instanceof OpenBaoError && err.status === 404) return undefined;
    throw authAware(err);
  }
}

async function write(ctx: Ctx, path: string, body: unknown): Promise<void> {
  try {
    await ctx.http.json(ctx.address, { method: "POST", path, token: ctx.token, json: body });
  } catch (err) {
    throw authAware(err);
  }
}

/** A 400 "permission denied" / invalid token answer is an auth problem too. */
function authAware(err: unknown): unknown {
  if (
    err instanceof OpenBaoError &&
    err.code !== "PermissionDenied" &&
    /permission denied|invalid token/i.test(err.message)
  ) {
    return new OpenBaoError("AuthFailed", `${err.message}; check the admin token (--token-file / BAO_TOKEN)`, {
      status: err.status,
      address: err.address,
    });
  }
  if (err instanceof OpenBaoError && err.code === "PermissionDenied") {
    return new OpenBaoError(
      "PermissionDenied",
      `${err.message.replace(/; check the policy.*$/, "")}; the admin token (--token-file / BAO_TOKEN) needs sudo on sys/auth and write on sys/policies and auth/<path>`,
      { status: err.status, address: err.address },
    );
  }
  return err;
}

const trimKeys = (keys: readonly string[]): string[] => keys.map((k) => k.trim()).sort();

function sameList(a: readonly unknown[] | undefined, b: readonly unknown[]): boolean {
  if (!a || a.length !== b.length) return false;
  const x = [...a].map(String).sort();
  const y = [...b].map(String).sort();
  return x.every((v, i) => v === y[i]);
}

function splitPems(text: string, file: string): string[] {
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (pems.length === 0) {
    throw new UsageError(`--jwt-validation-pubkey-file ${file} holds no "BEGIN PUBLIC KEY" PEM block`);
  }
  return pems.map((p) => `${p.trim()}\n`);
}

function rawGet(options: RequestOptions, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ...options, method: "GET", timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

async function discover(args: Parameters<typeof openKube>[0]): Promise<{ keys: string[]; issuer: string }> {
  const kube = openKube(args);
  const get = async (path: string): Promise<unknown> => {
    const options: RequestOptions = {};
    await kube.config.applyToHTTPSOptions(options);
    let res: { status: number; body: string };
    try {
      res = await rawGet(options, `${kube.server.replace(/\/+$/, "")}${path}`);
    } catch (err) {
      throw new KubeProblem(
        exitCodes.config,
        `cannot reach the Kubernetes API at ${kube.server} for ${path} (${err instanceof Error ? err.message : String(err)}); check --kubeconfig`,
      );
    }
    if (res.status === 401 || res.status === 403) {
      throw new KubeProblem(
        exitCodes.auth,
        `the Kubernetes API refused ${path} (${res.status}); use a kubeconfig allowed to read it, or pass --jwt-validation-pubkey-file`,
      );
    }
    if (res.status !== 200) {
      throw new KubeProblem(
        exitCodes.config,
        `the Kubernetes API answered ${path} with ${res.status}; pass --jwt-validation-pubkey-file instead`,
      );
    }
    return JSON.parse(res.body) as unknown;
  };
  const configuration = (await get("/.well-known/openid-configuration")) as { issuer?: unknown };
  const jwks = (await get("/openid/v1/jwks")) as { keys?: JsonWebKey[] };
  const keys = (jwks.keys ?? []).map((jwk) =>
    createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" }).toString(),
  );
  if (keys.length === 0) {
    throw new KubeProblem(
      exitCodes.config,
      "the API server's /openid/v1/jwks lists no key; pass --jwt-validation-pubkey-file",
    );
  }
  if (typeof configuration.issuer !== "string") {
    throw new KubeProblem(exitCodes.config, "the API server's OpenID configuration names no issuer; pass --issuer");
  }
  return { keys, issuer: configuration.issuer };
}

function ttlSeconds(value: string): number {
  const match = /^(\d+)(s|m|h)?$/.exec(value);
  if (!match)
    throw new UsageError(`--token-ttl must be a duration like 1h, 30m or 3600s, got ${JSON.stringify(value)}`);
  const n = Number(match[1]);
  const unit = match[2] ?? "s";
  return n * (unit === "h" ? 3600 : unit === "m" ? 60 : 1);
}

const nameShape = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export async function authSetupCommand(argv: readonly string[]): Promise<number> {
  const secrets: string[] = [];
  let http: OpenBaoHttp | undefined;
  try {
    const args = parseFlags(
      argv,
      {
        ...kubeFlags,
        ...outputFlags,
        cluster: { type: "string" },
        address: { type: "string" },
        "ca-file": { type: "string" },
        "token-file": { type: "string" },
        "jwt-validation-pubkey-file": { type: "string" },
        issuer: { type: "string" },
        path: { type: "string" },
        audience: { type: "string" },
        "backup-role": { type: "string" },
        "restore-role": { type: "string" },
        "token-ttl": { type: "string" },
      },
      1,
    );
    if (args.values.help === true) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const format = outputFormat(args);
    const cluster = args.positionals[0] ?? str(args, "cluster");
    if (!cluster) throw new UsageError("<cluster> is required: the OpenBaoCluster whose Jobs will log in");
    const namespace = str(args, "namespace");
    if (!namespace) throw new UsageError("--namespace (-n) is required: the namespace of the OpenBaoCluster");
    const address = str(args, "address") ?? process.env.BAO_ADDR;
    if (!address)
      throw new UsageError("--address is required (or BAO_ADDR): OpenBao's API URL, e.g. https://bao.example:8200");
    try {
      const url = new URL(address);
      if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("scheme");
    } catch {
      throw new UsageError(`--address ${JSON.stringify(address)} is not an http(s) URL; write https://host:8200`);
    }
    const caFile = str(args, "ca-file") ?? process.env.BAO_CACERT;
    let caPem: string | undefined;
    if (caFile) {
      try {
        caPem = readFileSync(caFile, "utf8");
      } catch {
        throw new UsageError(`--ca-file ${caFile} cannot be read; give the PEM CA of OpenBao's TLS`);
      }
      if (!caPem.includes("-----BEGIN CERTIFICATE-----"))
        throw new UsageError(`--ca-file ${caFile} holds no PEM certificate`);
    }
    const tokenFile = str(args, "token-file");
    let token: string | undefined;
    if (tokenFile) {
      try {
        token = readFileSync(tokenFile, "utf8").trim();
      } catch {
        throw new UsageError(`--token-file ${tokenFile} cannot be read`);
      }
      if (!token) throw new UsageError(`--token-file ${tokenFile} is empty`);
    } else token = process.env.BAO_TOKEN?.trim() || undefined;
    if (!token) {
      throw new UsageError(
        "an admin token is required: --token-file <file> or the BAO_TOKEN environment variable (not a flag value, which would land in shell history)",
      );
    }
    secrets.push(token);
    const mount = (str(args, "path") ?? "jwt").replace(/^\/+|\/+$/g, "");
    if (!/^[A-Za-z0-9][A-Za-z0-9_.\-/]*$/.test(mount) || mount.includes("..")) {
      throw new UsageError(`--path ${JSON.stringify(mount)} is not an auth mount path like "jwt"`);
    }
    const audience = str(args, "audience") ?? defaultJwtAudience;
    const backupRole = str(args, "backup-role") ?? "backup";
    const restoreRole = str(args, "restore-role") ?? "restore";
    for (const [flag, value] of [
      ["--backup-role", backupRole],
      ["--restore-role", restoreRole],
    ] as const) {
      if (!nameShape.test(value)) throw new UsageError(`${flag} ${JSON.stringify(value)} is not a role name`);
    }
    const ttl = ttlSeconds(str(args, "token-ttl") ?? "1h");

    let keys: string[];
    let issuer = str(args, "issuer");
    const keyFile = str(args, "jwt-validation-pubkey-file");
    if (keyFile) {
      let text: string;
      try {
        text = readFileSync(keyFile, "utf8");
      } catch {
        throw new UsageError(`--jwt-validation-pubkey-file ${keyFile} cannot be read`);
      }
      keys = splitPems(text, keyFile);
    } else if (str(args, "kubeconfig") || process.env.KUBECONFIG) {
      const found = await discover(args);
      keys = found.keys;
      issuer ??= found.issuer;
    } else {
      throw new UsageError(
        "the key that signs ServiceAccount tokens is required: --jwt-validation-pubkey-file <pem>, or --kubeconfig to discover it from the API server",
      );
    }

    http = new OpenBaoHttp({ caPem });
    const ctx: Ctx = { http, address, token };
    const changes: Change[] = [];

    // 1. the auth mount
    const mounts = await read<{ data?: Record<string, { type?: string }> } & Record<string, unknown>>(ctx, "sys/auth");
    const table = (mounts?.data ?? mounts ?? {}) as Record<string, { type?: string } | undefined>;
    const existing = table[`${mount}/`];
    if (existing === undefined) {
      await write(ctx, `sys/auth/${mount}`, {
        type: "jwt",
        description: "bao-backup: Kubernetes ServiceAccount tokens",
      });
      changes.push({ item: `auth/${mount}/ (JWT auth)`, action: "created" });
    } else if (existing.type !== "jwt") {
      throw new UsageError(
        `auth/${mount}/ is already enabled with type ${JSON.stringify(existing.type)}, not jwt; choose another --path`,
      );
    } else changes.push({ item: `auth/${mount}/ (JWT auth)`, action: "unchanged" });

    // 2. its configuration
    const config = await read<{ data?: { jwt_validation_pubkeys?: string[]; bound_issuer?: string } | null }>(
      ctx,
      `auth/${mount}/config`,
    );
    const current = config?.data ?? undefined;
    const wantKeys = trimKeys(keys);
    const configSame =
      current !== undefined &&
      sameList(trimKeys(current.jwt_validation_pubkeys ?? []), wantKeys) &&
      (current.bound_issuer ?? "") === (issuer ?? "");
    if (!configSame) {
      await write(ctx, `auth/${mount}/config`, { jwt_validation_pubkeys: keys, bound_issuer: issuer ?? "" });
    }
    changes.push({
      item: `auth/${mount}/config (validation keys, issuer ${issuer ?? "any"})`,
      action: configSame
        ? "unchanged"
        : current === undefined || !current.jwt_validation_pubkeys
          ? "created"
          : "updated",
    });

    // 3. policies
    for (const [name, policy] of [
      ["backup", backupPolicy],
      ["restore", restorePolicy],
    ] as const) {
      const got = await read<{ data?: { policy?: string } }>(ctx, `sys/policies/acl/${name}`);
      const text = got?.data?.policy;
      if (text?.trim() === policy.trim()) changes.push({ item: `policy ${name}`, action: "unchanged" });
      else {
        await write(ctx, `sys/policies/acl/${name}`, { policy });
        changes.push({ item: `policy ${name}`, action: text === undefined ? "created" : "updated" });
      }
    }

    // 4. roles
    for (const [role, policy, serviceAccount] of [
      [backupRole, "backup", backupServiceAccountName(cluster)],
      [restoreRole, "restore", restoreServiceAccountName(cluster)],
    ] as const) {
      const wanted = {
        role_type: "jwt",
        user_claim: "sub",
        bound_audiences: [audience],
        bound_claims_type: "string",
        bound_claims: {
          "/kubernetes.io/namespace": namespace,
          "/kubernetes.io/serviceaccount/name": serviceAccount,
        },
        token_policies: [policy],
        token_ttl: ttl,
      };
      const got = await read<{ data?: Record<string, unknown> }>(ctx, `auth/${mount}/role/${role}`);
      const d = got?.data;
      const claims = (d?.bound_claims ?? {}) as Record<string, unknown>;
      const same =
        d !== undefined &&
        d.role_type === "jwt" &&
        d.user_claim === "sub" &&
        (d.bound_claims_type ?? "string") === "string" &&
        sameList(d.bound_audiences as unknown[] | undefined, wanted.bound_audiences) &&
        sameList(d.token_policies as unknown[] | undefined, wanted.token_policies) &&
        Number(d.token_ttl) === ttl &&
        Object.keys(claims).length === 2 &&
        Object.entries(wanted.bound_claims).every(([k, v]) => claims[k] === v || sameList(claims[k] as unknown[], [v]));
      if (!same) await write(ctx, `auth/${mount}/role/${role}`, wanted);
      changes.push({
        item: `role ${role} (${namespace}/${serviceAccount}, audience ${audience}, policy ${policy})`,
        action: same ? "unchanged" : d === undefined ? "created" : "updated",
      });
    }

    const changed = changes.filter((c) => c.action !== "unchanged").length;
    if (format === "json") printJson({ address, path: mount, changed, changes });
    else {
      const width = Math.max(...changes.map((c) => c.action.length));
      process.stdout.write(
        `${changes.map((c) => `${c.action.padEnd(width)}  ${c.item}`).join("\n")}\n` +
          (changed === 0
            ? "OpenBao was already configured: unchanged.\n"
            : `${changed} change(s) applied to ${address}. Set spec.backup.jwtAuthRole: ${backupRole}${mount === "jwt" ? "" : ` and jwtAuthPath: ${mount}`} on the OpenBaoCluster.\n`),
      );
    }
    return exitCodes.ok;
  } catch (err) {
    return reportFailure("auth-setup", err, secrets);
  } finally {
    http?.close();
  }
}
