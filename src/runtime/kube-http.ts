/**
 * Raw JSON GETs against the API server with a KubeConfig's credentials (client certs,
 * bearer token, exec plugin, in-cluster token, proxy agent — all applied by the client's
 * `applyToHTTPSOptions`). The informer lists through this rather than the typed clients
 * because those deserialize timestamps into `Date`s while watch events carry strings: a
 * cache filled from both would hold two shapes of one object. Here every object stays the
 * API server's JSON (`Wire<T>`).
 *
 * Invariants: a non-2xx answer is a `KubeApiError` carrying the HTTP status and the
 * Status `reason`; the body is bounded; the request is aborted by `signal` and by `timeoutMs`.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeLayerError } from "../kube/config.ts";

/** `T` as it travels as JSON: every `Date` of the typed client models is an RFC 3339 string. */
export type Wire<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

export class KubeApiError extends KubeLayerError<"KubeApiFailed"> {
  /** HTTP status of the answer; undefined when there was none (connection error, timeout). */
  readonly statusCode: number | undefined;
  /** `reason` of the returned Status, e.g. "NotFound", "Expired", "Forbidden". */
  readonly reason: string | undefined;

  constructor(message: string, options: { statusCode?: number; reason?: string; cause?: unknown } = {}) {
    super("KubeApiFailed", message, options);
    this.statusCode = options.statusCode;
    this.reason = options.reason;
  }
}

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

const maxBodyBytes = 256 * 1024 * 1024;

/** GET `path` (e.g. `/api/v1/namespaces/x/configmaps`) and parse the JSON answer. */
export async function getJson(
  kc: KubeConfig,
  path: string,
  query: Query = {},
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeApiError("the kubeconfig has no current cluster");
  const url = new URL(cluster.server.replace(/\/+$/, "") + path);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  const requestOptions: RequestOptions = {};
  await kc.applyToHTTPSOptions(requestOptions);
  const send = url.protocol === "http:" ? httpRequest : httpsRequest;
  const what = `GET ${url.pathname}`;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        ...requestOptions,
        method: "GET",
        headers: { ...requestOptions.headers, accept: "application/json" },
        timeout: options.timeoutMs ?? 60_000,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBodyBytes) req.destroy(new KubeApiError(`${what}: answer larger than ${maxBodyBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on("error", (err) => reject(new KubeApiError(`${what}: ${err.message}`, { cause: err })));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = text.length === 0 ? undefined : JSON.parse(text);
          } catch {
            body = undefined;
          }
          if (status >= 200 && status < 300 && body !== undefined) return resolve(body);
          const statusBody = (typeof body === "object" && body !== null ? body : {}) as {
            reason?: unknown;
            message?: unknown;
          };
          const reason = typeof statusBody.reason === "string" ? statusBody.reason : undefined;
          const message = typeof statusBody.message === "string" ? statusBody.message : text.slice(0, 300);
          reject(
            new KubeApiError(`${what}: HTTP ${status}${reason ? ` ${reason}` : ""}: ${message}`, {
              statusCode: status,
              ...(reason === undefined ? {} : { reason }),
            }),
          );
        });
      },
    );
    req.on("timeout", () => req.destroy(new KubeApiError(`${what}: timed out`)));
    req.on("error", (err) =>
      reject(err instanceof KubeApiError ? err : new KubeApiError(`${what}: ${err.message}`, { cause: err })),
    );
    req.end();
  });
}

/** The HTTP status of an error from this module or from the typed client (`ApiException.code`). */
export function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.statusCode;
  if (typeof err !== "object" || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof statusCode === "number") return statusCode;
  return typeof code === "number" ? code : undefined;
}
