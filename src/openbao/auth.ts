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
