/**
 * Authentication for the executor: a JWT login with the projected ServiceAccount token
 * (recommended: short-lived, rotated by Kubernetes) or a static token read from a file.
 */
import { readFile } from "node:fs/promises";
import { OpenBaoError, redact } from "./errors.ts";
import type { OpenBaoHttp } from "./http.ts";

export interface JwtLogin {
  readonly method: "jwt";
  /** Auth mount path, e.g. "jwt" (no leading or trailing slash). */
  readonly mountPath: string;
  readonly role: string;
  readonly jwtFile: string;
}

export interface StaticToken {
  readonly method: "token";
  readonly tokenFile: string;
}

export type AuthConfig = JwtLogin | StaticToken;

async function readSecretFile(path: string, what: string, env: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new OpenBaoError("AuthFailed", `cannot read the ${what} at ${path} (${code}); mount it there or set ${env}`, {
      cause: err,
    });
  }
  const value = text.trim();
  if (value.length === 0) throw new OpenBaoError("AuthFailed", `the ${what} at ${path} is empty`);
  return value;
}

/** Returns an OpenBao token for the configured method. */
export async function authenticate(
  http: OpenBaoHttp,
  address: string,
  auth: AuthConfig,
  signal?: AbortSignal,
): Promise<string> {
  if (auth.method === "token") return readSecretFile(auth.tokenFile, "OpenBao token file", "BACKUP_TOKEN_FILE");
  const jwt = await readSecretFile(auth.jwtFile, "projected ServiceAccount token", "BACKUP_JWT_TOKEN_FILE");
  const path = `auth/${auth.mountPath}/login`;
  let answer: { auth?: { client_token?: string } } | undefined;
  try {
    answer = await http.json<{ auth?: { client_token?: string } }>(
      address,
      { method: "POST", path, json: { role: auth.role, jwt }, timeoutMs: 15_000, signal },
      "AuthFailed",
    );
  } catch (err) {
    if (err instanceof OpenBaoError && (err.code === "AuthFailed" || err.code === "PermissionDenied")) {
      throw new OpenBaoError(
        "AuthFailed",
        `JWT login as role "${auth.role}" at auth/${auth.mountPath} was refused: ${redact(err.message, [jwt])}; check the role's bound_audiences, bound_claims and the auth method's validation key`,
        { status: err.status, address },
      );
    }
    throw err;
  }
  const token = answer?.auth?.client_token;
  if (!token)
    throw new OpenBaoError("AuthFailed", `JWT login at ${address}/${path} returned no client token`, { address });
  return token;
}

/**
 * OpenBao answers 403 both for a token it does not know (wrong, expired, revoked) and for a call
 * the token's policy does not allow, so a static token's 403 alone cannot say which to fix. Asked
 * after such a 403, `auth/token/lookup-self` (granted by OpenBao's default policy) tells them
 * apart: refused too, the token itself is not valid → `AuthFailed`; answered, it is the policy →
 * the original `PermissionDenied`. Only ever called after the failure, so a valid token without
 * the default policy still backs up as before. JWT logins already fail as `AuthFailed`.
 */
export async function explainDenial(
  http: OpenBaoHttp,
  address: string,
  auth: AuthConfig,
  token: string,
  err: unknown,
  signal?: AbortSignal,
): Promise<unknown> {
  if (auth.method !== "token" || !(err instanceof OpenBaoError) || err.code !== "PermissionDenied") return err;
  try {
    await http.json(address, { method: "GET", path: "auth/token/lookup-self", token, timeoutMs: 15_000, signal });
    return err;
  } catch (lookup) {
    if (!(lookup instanceof OpenBaoError) || lookup.code !== "PermissionDenied") return err;
    return new OpenBaoError(
      "AuthFailed",
      `${address} does not accept the token from BACKUP_TOKEN_FILE (403 on its own auth/token/lookup-self): ` +
        "it is wrong, expired or revoked — or it lacks the default policy; put a valid token with the " +
        "backup or restore policy in the Secret named by tokenSecretRef",
      { status: 403, address, cause: err },
    );
  }
}
