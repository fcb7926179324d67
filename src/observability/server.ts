/**
 * The probe and metrics endpoint of the operator process (one plain-HTTP listener):
 * - `GET /healthz` → 200 `ok` whenever the process answers at all (liveness: a wedged event
 *   loop is the failure it detects, by not answering);
 * - `GET /readyz` → 200 `ok` once every readiness check passes (the informers have
 *   synced), else 503 with one line per failing check;
 * - `GET /metrics` → the registry in Prometheus text format.
 *
 * Invariants: it runs on every replica, leader or not, from before the informers start
 * until the very end of shutdown; it never touches the API server; other paths get 404,
 * other methods than GET/HEAD get 405.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { errorFields, type Logger, silentLogger } from "./logger.ts";

/** A named readiness check: `true` when ready, else a short reason. */
export interface ReadinessCheck {
  readonly name: string;
  check(): true | string;
}

export interface HealthServerOptions {
  /** Listen address; default 0.0.0.0 (in a Pod the kubelet probes the Pod IP). */
  readonly host?: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly registry: Registry;
  /** The checks `/readyz` runs, read on every request (the set may grow as informers are added). */
  readonly readiness: () => readonly ReadinessCheck[];
  readonly logger?: Logger;
}

export interface HealthServer {
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const logger = options.logger ?? silentLogger();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics") return send(res, 404, "not found\n");
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "method not allowed\n");
    if (path === "/healthz") return send(res, 200, "ok\n");
    if (path === "/readyz") {
      const failing: string[] = [];
      for (const check of options.readiness()) {
        let result: true | string;
        try {
          result = check.check();
        } catch (err) {
          result = err instanceof Error ? err.message : String(err);
        }
        if (result !== true) failing.push(`${check.name}: ${result}`);
      }
      return failing.length === 0 ? send(res, 200, "ok\n") : send(res, 503, `${failing.join("\n")}\n`);
    }
    const body = await options.registry.metrics();
    return send(res, 200, body, options.registry.contentType);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ ...errorFields(err), path: req.url }, "health server request failed");
      if (!res.headersSent) send(res, 500, "internal error\n");
      else res.destroy();
    });
  });
  // Probes are short; do not let idle keep-alive sockets hold up close().
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const urlHost = host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host;
  logger.info({ address: address.address, port: address.port }, "serving /healthz, /readyz and /metrics");
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
