/**
 * The S3 client's HTTP handler: the SDK's NodeHttpHandler, except for two kinds of request.
 * - A PUT or POST the SDK marked `Expect: 100-continue` (client.ts: every one with a body)
 *   waits for the store's interim answer before its body is sent (../put-request.ts says
 *   why: a refusal must arrive as the store's answer, not as a broken pipe).
 * - A `GetObject` (the SDK's own `x-id=GetObject` in its query) is sent as signed by the SDK,
 *   but its response is read by http1/stream-get.ts instead of node:http: a restore downloads
 *   gigabytes, and node:http's per-read cost was ≈ 0.4 CPU s/GiB of it (BENCHMARKS.md finding
 *   13). Everything else stays the SDK's: endpoint, signing, retries before the response, and
 *   reading an error answer into its exceptions.
 */
import { NodeHttpHandler, type NodeHttpHandlerOptions } from "@smithy/node-http-handler";
import { streamGet } from "../../http1/stream-get.ts";
import { connectionTimeoutMs, escapeUri, requestTimeoutMs, sendWithContinue } from "../put-request.ts";
import type { Agents } from "../tls.ts";

type SdkRequest = Parameters<NodeHttpHandler["handle"]>[0];
type SdkOptions = Parameters<NodeHttpHandler["handle"]>[1];
type SdkResult = Awaited<ReturnType<NodeHttpHandler["handle"]>>;

export class ContinueAwareHandler extends NodeHttpHandler {
  readonly #agents: Agents;

  constructor(agents: Agents, options: Omit<NodeHttpHandlerOptions, "httpAgent" | "httpsAgent"> = {}) {
    super({
      httpAgent: agents.http,
      httpsAgent: agents.https,
      // Fail fast on a black-holed endpoint; a stalled request is cut after two quiet minutes.
      connectionTimeout: connectionTimeoutMs,
      requestTimeout: requestTimeoutMs,
      ...options,
    });
    this.#agents = agents;
  }

  override async handle(request: SdkRequest, options?: SdkOptions): Promise<SdkResult> {
    if (request.method === "GET" && request.query?.["x-id"] === "GetObject") return this.#download(request, options);
    const { Expect, expect, ...headers } = request.headers;
    const body = bufferOf(request.body);
    const method = request.method === "PUT" || request.method === "POST" ? request.method : undefined;
    if (method === undefined || (Expect ?? expect) !== "100-continue" || body === undefined) {
      return super.handle(request, options);
    }
    const query = queryString(request.query);
    const res = await sendWithContinue(
      this.#agents,
      { protocol: request.protocol, hostname: request.hostname, port: request.port },
      method,
      query === "" ? request.path : `${request.path}?${query}`,
      headers,
      body,
      options?.abortSignal as AbortSignal | undefined,
    );
    const flat: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(",") : value;
    }
    return { response: { statusCode: res.statusCode ?? 0, reason: res.statusMessage, headers: flat, body: res } };
  }

  async #download(request: SdkRequest, options?: SdkOptions): Promise<SdkResult> {
    const query = queryString(request.query);
    const tls = this.#agents.tls;
    const res = await streamGet(
      {
        protocol: request.protocol === "https:" ? "https:" : "http:",
        hostname: request.hostname,
        port: request.port,
        path: query === "" ? request.path : `${request.path}?${query}`,
      },
      {
        headers: request.headers,
        tls: { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca === undefined ? {} : { ca: tls.ca }) },
        signal: options?.abortSignal as AbortSignal | undefined,
        connectTimeoutMs: connectionTimeoutMs,
        headersTimeoutMs: requestTimeoutMs,
        stallTimeoutMs: requestTimeoutMs,
        // A cut body is a network failure, as node:http reports it (ECONNRESET): the storage
        // error says "unreachable", and restore refuses what it did not receive whole.
        bodyError: (problem, cause) =>
          Object.assign(new Error(`the object's body ${problem}`), { code: "ECONNRESET", cause }),
      },
    );
    return { response: { statusCode: res.status, headers: Object.fromEntries(res.headers), body: res.body } };
  }
}

function queryString(query: SdkRequest["query"]): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === null || value === undefined) parts.push(escapeUri(key));
    else for (const one of Array.isArray(value) ? value : [value]) parts.push(`${escapeUri(key)}=${escapeUri(one)}`);
  }
  return parts.join("&");
}

/** A body already in memory, as a Buffer view; undefined for a stream (left to the SDK). */
function bufferOf(body: unknown): Buffer | undefined {
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return undefined;
}
