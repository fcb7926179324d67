/**
 * A minimal JSON-over-HTTPS helper for fixtures (initialising servers, seeding data,
 * reading results back). It verifies TLS against the given CA. Product code has its own
 * client in src/; fixtures deliberately do not depend on the code under test.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, request } from "node:https";
import type { AddressInfo } from "node:net";

export interface JsonResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly text: string;
}

export interface JsonRequest {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  readonly caPem: string;
  readonly timeoutMs?: number;
}

export function httpsJson<T = unknown>(url: string, options: JsonRequest): Promise<JsonResponse<T>> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        ca: options.caPem,
        headers: {
          ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}),
          ...options.headers,
        },
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = text.length > 0 ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: body as T, text });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${options.timeoutMs ?? 10_000}ms: ${url}`)));
    req.on("error", reject);
    req.end(payload);
  });
}

export interface HttpsFixtureServer {
  /** `https://127.0.0.1:<port>` */
  readonly address: string;
  stop(): Promise<void>;
}

/**
 * A small HTTPS server on loopback with a certificate from a test CA, for tests that need an
 * endpoint to misbehave on purpose (an OpenBao that answers HTML, redirects, never ends).
 */
/** `host`: the address to listen on (a node's bridge gateway, for Pods); 127.0.0.1 by default. */
export async function serveHttps(
  cert: { readonly certPem: string; readonly keyPem: string },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host = "127.0.0.1",
): Promise<HttpsFixtureServer> {
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, handler);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `https://${host}:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
