/**
 * Where OpenBao gets the keys that verify ServiceAccount tokens, decided before anything is
 * written:
 *
 * - `jwks`: OpenBao fetches them itself from the API server's JWKS (`jwks_url`, with the CA
 *   in `jwks_ca_pem`), so a rotation of the API server's signing keys needs no re-run. It
 *   fetches without credentials: the API server must serve its JWKS to anonymous clients.
 * - `pubkeys`: fixed `jwt_validation_pubkeys`; after a rotation auth-setup must run again
 *   (it updates the mount it created without any --adopt).
 *
 * `auto` (the default with --kubeconfig) chooses jwks when the API server's discovery
 * document names a `jwks_uri` that answers an anonymous GET with keys, else pubkeys; and if
 * OpenBao itself cannot fetch that URL when the config is written, auth-setup writes the keys
 * instead (the `fallback`).
 */
import { createPublicKey, type JsonWebKey } from "node:crypto";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { exitCodes } from "../exit-codes.ts";
import { KubeProblem, openKube, type ParsedArgs } from "../shared.ts";
import type { Settings } from "./settings.ts";

export interface JwtConfig {
  readonly mode: "jwks" | "pubkeys";
  /** The whole of auth/<path>/config as auth-setup writes it (a write replaces every field). */
  readonly body: Readonly<Record<string, unknown>>;
  /** For the output: "validation keys, issuer …" or "jwks_url …, issuer …". */
  readonly label: string;
}

export interface Signing {
  readonly primary: JwtConfig;
  /** `auto` only: what to write when OpenBao cannot fetch the primary's jwks_url. */
  readonly fallback: JwtConfig | undefined;
  /** Why this way, in one sentence, for the output. */
  readonly reason: string;
}

interface Discovered {
  readonly issuer: string;
  readonly keys: string[];
  readonly jwksUri: string | undefined;
  /** The CA the kubeconfig trusts for the API server, if it names one. */
  readonly caPem: string | undefined;
}

type Probe =
  | { readonly ok: true; readonly caPem: string | undefined }
  | { readonly ok: false; readonly status: number | undefined; readonly detail: string };

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

const errText = (err: unknown): string => {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
};

async function discover(args: ParsedArgs): Promise<Discovered> {
  const kube = openKube(args);
  const options: RequestOptions = {};
  await kube.config.applyToHTTPSOptions(options);
  const get = async (path: string): Promise<unknown> => {
    let res: { status: number; body: string };
    try {
      res = await rawGet(options, `${kube.server.replace(/\/+$/, "")}${path}`);
    } catch (err) {
      throw new KubeProblem(
        exitCodes.config,
        `cannot reach the Kubernetes API at ${kube.server} for ${path} (${errText(err)}); check --kubeconfig`,
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
    try {
      return JSON.parse(res.body) as unknown;
    } catch {
      throw new KubeProblem(exitCodes.config, `the Kubernetes API answered ${path} with something that is not JSON`);
    }
  };
  const configuration = (await get("/.well-known/openid-configuration")) as { issuer?: unknown; jwks_uri?: unknown };
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
  const ca = options.ca;
  const caPem = typeof ca === "string" ? ca : Buffer.isBuffer(ca) ? ca.toString("utf8") : undefined;
  return {
    issuer: configuration.issuer,
    keys,
    jwksUri: typeof configuration.jwks_uri === "string" ? configuration.jwks_uri : undefined,
    caPem,
  };
}

/**
 * GETs a JWKS the way OpenBao will: without any credentials, trusting `cas` in turn (a CA
 * PEM, or `undefined` for the system CAs). Succeeds on a 200 listing at least one key.
 */
async function probe(url: string, cas: readonly (string | undefined)[]): Promise<Probe> {
  let last: Probe = { ok: false, status: undefined, detail: "not tried" };
  for (const ca of cas) {
    let res: { status: number; body: string };
    try {
      res = await rawGet(ca === undefined ? {} : { ca }, url);
    } catch (err) {
      last = { ok: false, status: undefined, detail: errText(err) };
      const code = (err as { code?: unknown }).code;
      const tls = (typeof code === "string" && code.startsWith("ERR_TLS")) || /certificate/i.test(errText(err));
      if (tls) continue;
      return last;
    }
    if (res.status !== 200) return { ok: false, status: res.status, detail: `HTTP ${res.status}` };
    try {
      const keys = (JSON.parse(res.body) as { keys?: unknown }).keys;
      if (Array.isArray(keys) && keys.length > 0) return { ok: true, caPem: ca };
    } catch {
      // not JSON: below
    }
    return { ok: false, status: res.status, detail: "the answer lists no keys" };
  }
  return last;
}

const issuerLabel = (issuer: string | undefined): string => `issuer ${issuer ?? "any"}`;

function pubkeys(keys: readonly string[], issuer: string | undefined): JwtConfig {
  return {
    mode: "pubkeys",
    body: { jwt_validation_pubkeys: [...keys], bound_issuer: issuer ?? "" },
    label: `validation keys, ${issuerLabel(issuer)}`,
  };
}

function jwks(url: string, caPem: string | undefined, issuer: string | undefined): JwtConfig {
  return {
    mode: "jwks",
    body: { jwks_url: url, jwks_ca_pem: caPem ?? "", bound_issuer: issuer ?? "" },
    label: `jwks_url ${url}, ${issuerLabel(issuer)}`,
  };
}

/** What lets anonymous clients (OpenBao) read the API server's discovery document and JWKS. */
const anonymousBinding =
  "kubectl create clusterrolebinding service-account-issuer-discovery-unauthenticated --clusterrole=system:service-account-issuer-discovery --group=system:unauthenticated";

export async function chooseSigning(settings: Settings, args: ParsedArgs): Promise<Signing> {
  if (settings.keyFileKeys) {
    return {
      primary: pubkeys(settings.keyFileKeys, settings.issuer),
      fallback: undefined,
      reason:
        "fixed keys from --jwt-validation-pubkey-file; after the API server's signing keys rotate, run auth-setup again with the new keys",
    };
  }
  const found = settings.kubeconfig ? await discover(args) : undefined;
  const issuer = settings.issuer ?? found?.issuer;
  const rerun =
    "after the API server's signing keys rotate, run auth-setup again (it updates the keys of the mount it created)";
  if (settings.validation === "pubkeys") {
    if (!found) throw new Error("unreachable: pubkeys without keys"); // settings.ts requires a source
    return {
      primary: pubkeys(found.keys, issuer),
      fallback: undefined,
      reason: `fixed keys (--jwt-validation pubkeys); ${rerun}`,
    };
  }
  if (settings.validation === "jwks") {
    const url = settings.jwksUrl ?? found?.jwksUri;
    if (!url) {
      throw new KubeProblem(
        exitCodes.config,
        "the API server's OpenID configuration names no jwks_uri; pass --jwks-url <url of its keys>",
      );
    }
    const cas = settings.jwksCaPem ? [settings.jwksCaPem] : found?.caPem ? [found.caPem, undefined] : [undefined];
    const result = await probe(url, cas);
    if (!result.ok && (result.status === 401 || result.status === 403)) {
      throw new KubeProblem(
        exitCodes.config,
        `the JWKS at ${url} refuses anonymous clients (${result.status}), and OpenBao fetches it without credentials: let anonymous clients read it (${anonymousBinding}), or use --jwt-validation pubkeys`,
      );
    }
    return {
      primary: jwks(url, result.ok ? result.caPem : cas[0], issuer),
      fallback: undefined,
      reason: result.ok
        ? `OpenBao fetches the signing keys from ${url} itself, so a key rotation needs no re-run`
        : `OpenBao fetches the signing keys from ${url} itself (auth-setup could not fetch it from here: ${result.detail}; OpenBao checks it when the config is written)`,
    };
  }
  // auto: --kubeconfig without a key file (settings.ts), so `found` is there.
  if (!found) throw new Error("unreachable: auto without --kubeconfig");
  if (!found.jwksUri) {
    return {
      primary: pubkeys(found.keys, issuer),
      fallback: undefined,
      reason: `fixed keys, as the API server's discovery document names no jwks_uri; ${rerun}`,
    };
  }
  const result = await probe(found.jwksUri, found.caPem ? [found.caPem, undefined] : [undefined]);
  if (!result.ok) {
    const why =
      result.status === 401 || result.status === 403
        ? `is not served to anonymous clients (${result.status}), and OpenBao fetches without credentials (to let it follow key rotation: ${anonymousBinding})`
        : `could not be fetched (${result.detail})`;
    return {
      primary: pubkeys(found.keys, issuer),
      fallback: undefined,
      reason: `fixed keys, as the API server's JWKS at ${found.jwksUri} ${why}; ${rerun}`,
    };
  }
  return {
    primary: jwks(found.jwksUri, result.caPem, issuer),
    fallback: pubkeys(found.keys, issuer),
    reason: `OpenBao fetches the signing keys from ${found.jwksUri} itself (the API server serves them to anonymous clients), so a key rotation needs no re-run`,
  };
}
