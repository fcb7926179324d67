/**
 * The one HTTP path to OpenBao. TLS is verified against the cluster CA unless explicitly
 * disabled; redirects are never followed (a member that redirects elsewhere is an error,
 * not a hint); JSON answers are size-capped so a hostile or broken endpoint cannot make
 * the executor buffer an endless body. Requests go through node:http, except the snapshot
 * download (`streamGet`), whose body is read by stream-get.ts with the same TLS settings.
 */
import type { IncomingMessage } from "node:http";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { FramingError } from "../http1/framing.ts";
import { type StreamedResponse, streamGet, type TlsConnectOptions, targetOf } from "../http1/stream-get.ts";
import { OpenBaoError, oneLineError, redact } from "./errors.ts";

export interface TlsSettings {
  /** PEM of the CA that signed OpenBao's serving certificates; system CAs when absent. */
  readonly caPem?: string | undefined;
  /** Skip verification entirely. Only for explicit opt-in; never the default. */
  readonly insecureSkipVerify?: boolean | undefined;
  /**
   * The name sent as TLS SNI and checked against the certificate instead of the address's
   * host, e.g. `bao.openbao.svc` while the address is a port-forward on 127.0.0.1.
   */
  readonly serverName?: string | undefined;
}

export interface RequestOptions {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  readonly path: string;
  readonly token?: string | undefined;
  readonly json?: unknown;
  readonly body?: Readable | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Time allowed until response headers arrive (and for idle sockets). */
  readonly timeoutMs?: number | undefined;
}

const maxJsonBytes = 1024 * 1024;

/** A connection pool to one set of members with one TLS configuration. */
export class OpenBaoHttp {
  readonly #tls: TlsConnectOptions;
  readonly #https: HttpsAgent;
  readonly #http: HttpAgent;

  constructor(tls: TlsSettings) {
    this.#tls = {
      ...(tls.caPem ? { ca: tls.caPem } : {}),
      ...(tls.serverName ? { servername: tls.serverName } : {}),
      rejectUnauthorized: tls.insecureSkipVerify !== true,
    };
    this.#https = new HttpsAgent({ keepAlive: true, ...this.#tls });
    this.#http = new HttpAgent({ keepAlive: true });
  }

  /** Sends a request and resolves with the response once headers arrive (any status). */
  request(address: string, options: RequestOptions): Promise<IncomingMessage> {
    const url = apiUrl(address, options.path);
    if (url instanceof OpenBaoError) return Promise.reject(url);
    const secure = url.protocol === "https:";
    const payload = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json));
    const headers: Record<string, string> = {};
    if (options.token) headers["x-vault-token"] = options.token;
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    if (options.body) headers["content-type"] = "application/octet-stream";
    const send = secure ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, {
        method: options.method,
        headers,
        agent: secure ? this.#https : this.#http,
        timeout: options.timeoutMs ?? 30_000,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      req.on("timeout", () =>
        req.destroy(
          new OpenBaoError("Unreachable", `no answer from ${address} within ${options.timeoutMs ?? 30_000} ms`),
        ),
      );
      req.on("error", (err) => reject(toUnreachable(err, address)));
      req.on("response", (res) => {
        // Once streaming, the idle timeout no longer applies to the whole body.
        req.setTimeout(0);
        resolve(res);
      });
      if (options.body) {
        options.body.on("error", (err) => req.destroy(err));
        options.body.pipe(req);
      } else {
        req.end(payload);
      }
    });
  }

  /**
   * A GET of a large body (the snapshot) on its own connection; resolves once the head has
   * arrived (any status). The body errors with `bodyError(...)` if it does not arrive whole.
   */
  async streamGet(
    address: string,
    options: {
      readonly path: string;
      readonly token: string;
      readonly signal?: AbortSignal | undefined;
      readonly timeoutMs: number;
      readonly stallTimeoutMs: number;
      readonly bodyError: (problem: string, cause?: unknown) => Error;
    },
  ): Promise<StreamedResponse> {
    const url = apiUrl(address, options.path);
    if (url instanceof OpenBaoError) throw url;
    try {
      return await streamGet(targetOf(url), {
        headers: { "X-Vault-Token": options.token },
        tls: this.#tls,
        signal: options.signal,
        headersTimeoutMs: options.timeoutMs,
        stallTimeoutMs: options.stallTimeoutMs,
        bodyError: options.bodyError,
      });
    } catch (err) {
      if (err instanceof FramingError) {
        throw new OpenBaoError("BadResponse", `${address} answered ${options.path} with ${err.message}`, {
          cause: err,
          address,
        });
      }
      throw toUnreachable(err, address);
    }
  }

  /** A request whose answer is JSON (or empty); non-2xx answers become typed errors. */
  async json<T>(address: string, options: RequestOptions, failure: OpenBaoErrorCodeFor = "BadResponse"): Promise<T> {
    const res = await this.request(address, options);
    const text = await readCapped(res, maxJsonBytes, address);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw errorForStatus(status, text, address, options.path, failure);
    if (text.length === 0) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new OpenBaoError(
        "BadResponse",
        `${address} answered ${options.path} with something that is not JSON (${describeBody(text, res)})`,
        {
          status,
          address,
        },
      );
    }
  }

  close(): void {
    this.#https.destroy();
    this.#http.destroy();
  }
}

type OpenBaoErrorCodeFor = OpenBaoError["code"];

function apiUrl(address: string, path: string): URL | OpenBaoError {
  const url = new URL(`/v1/${path.replace(/^\/+/, "")}`, address);
  if (url.protocol === "https:" || url.protocol === "http:") return url;
  return new OpenBaoError("Unreachable", `OpenBao address ${address} must be an http(s) URL`, { address });
}

function toUnreachable(err: unknown, address: string): OpenBaoError {
  if (err instanceof OpenBaoError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === "AbortError")
    return new OpenBaoError("Unreachable", `request to ${address} was cancelled`, { cause: err, address });
  const code = e?.code ? ` (${e.code})` : "";
  const tlsHint =
    e?.code?.startsWith("ERR_TLS") || /certificate|self.signed|SSL/i.test(String(e?.message))
      ? "; check that the CA in the TLS Secret (ca.crt) signed OpenBao's certificate"
      : "";
  return new OpenBaoError(
    "Unreachable",
    `cannot reach OpenBao at ${address}${code}: ${redact(String(e?.message ?? err))}${tlsHint}`,
    {
      cause: err,
      address,
    },
  );
}

/** Reads a body up to `limit` bytes; a longer body is an error, never buffered whole. */
export function readCapped(res: Readable, limit: number, address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        res.destroy();
        reject(
          new OpenBaoError("BadResponse", `${address} sent an answer larger than ${limit} bytes; refusing to read it`, {
            address,
          }),
        );
        return;
      }
      chunks.push(chunk);
    });
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", (err) => reject(toUnreachable(err, address)));
  });
}

function describeBody(text: string, res: IncomingMessage): string {
  const type = res.headers["content-type"] ?? "no content type";
  return `${type}, ${text.length} bytes`;
}

/** OpenBao's own error strings as one line (`oneLineError`), cut short and redacted. */
export function openBaoErrors(text: string): string {
  try {
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(parsed.errors)) {
      const errors = parsed.errors.map((e) => oneLineError(String(e))).filter((e) => e !== "");
      return redact(errors.join("; ").slice(0, 500));
    }
  } catch {
    // not JSON: fall through
  }
  return /<html|<!doctype/i.test(text) ? "an HTML page" : redact(oneLineError(text.slice(0, 200)));
}

export function errorForStatus(
  status: number,
  text: string,
  address: string,
  path: string,
  failure: OpenBaoErrorCodeFor,
): OpenBaoError {
  // A redirect is never followed: the token would go wherever the Location header says.
  if (status >= 300 && status < 400) {
    return new OpenBaoError(
      "BadResponse",
      `${address} answered ${path} with a redirect (${status}); refusing to follow it`,
      {
        status,
        address,
      },
    );
  }
  const detail = openBaoErrors(text) || "an empty body";
  if (status === 403) {
    return new OpenBaoError(
      "PermissionDenied",
      `${address} denied ${path} (403): ${detail}; check the policy attached to the backup/restore role`,
      {
        status,
        address,
      },
    );
  }
  return new OpenBaoError(failure, `${address} answered ${path} with ${status}: ${detail}`, { status, address });
}
