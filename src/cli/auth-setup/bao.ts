/**
 * auth-setup's reads and writes against OpenBao with the admin token, and errors that name
 * the flag to fix (token, permissions, TLS name). The token never appears in a message.
 */
import { OpenBaoError } from "../../openbao/errors.ts";
import type { OpenBaoHttp } from "../../openbao/http.ts";

export interface Bao {
  readonly http: OpenBaoHttp;
  readonly address: string;
  readonly token: string;
}

/** One write auth-setup makes; the body never holds a secret (keys and CAs are public). */
export interface Write {
  readonly method: "POST";
  readonly path: string;
  readonly body: Readonly<Record<string, unknown>>;
}

export async function read<T>(bao: Bao, path: string): Promise<T | undefined> {
  try {
    return await bao.http.json<T>(bao.address, { method: "GET", path, token: bao.token });
  } catch (err) {
    if (err instanceof OpenBaoError && err.status === 404) return undefined;
    throw explain(err);
  }
}

export async function write(bao: Bao, w: Write): Promise<void> {
  try {
    await bao.http.json(bao.address, { method: w.method, path: w.path, token: bao.token, json: w.body });
  } catch (err) {
    throw explain(err);
  }
}

function causeCode(err: unknown): string | undefined {
  const cause = err instanceof Error ? err.cause : undefined;
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

/** Adds the fix to OpenBao's answer: the admin token, its permissions, or the TLS flags. */
export function explain(err: unknown): unknown {
  if (!(err instanceof OpenBaoError)) return err;
  const options = { status: err.status, address: err.address };
  if (err.code === "PermissionDenied") {
    return new OpenBaoError(
      "PermissionDenied",
      `${err.message.replace(/; check the policy.*$/, "")}; the admin token (--token-file / BAO_TOKEN) needs sudo on sys/auth and write on sys/policies and auth/<path>`,
      options,
    );
  }
  if (/permission denied|invalid token/i.test(err.message)) {
    return new OpenBaoError("AuthFailed", `${err.message}; check the admin token (--token-file / BAO_TOKEN)`, options);
  }
  if (err.code === "Unreachable") {
    const code = causeCode(err);
    const message = err.message.replace(/; check that the CA in the TLS Secret.*$/, "");
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
      return new OpenBaoError(
        "Unreachable",
        `${message}; OpenBao's certificate does not name the host of --address: pass --tls-server-name <a DNS name in the certificate, e.g. bao.openbao.svc> (for a port-forward to 127.0.0.1)`,
        options,
      );
    }
    if (code?.startsWith("ERR_TLS") || /certificate|self.signed/i.test(message)) {
      return new OpenBaoError(
        "Unreachable",
        `${message}; pass --ca-file <the CA that signed OpenBao's certificate> (or BAO_CACERT)`,
        options,
      );
    }
    return new OpenBaoError("Unreachable", `${message}; check --address`, options);
  }
  return err;
}
