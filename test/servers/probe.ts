import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/** The HTTP status a URL answers with (any status), for readiness checks; TLS verified against `caPem`. */
export function probe(url: string, caPem?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = url.startsWith("https:")
      ? httpsRequest(url, { ca: caPem, timeout: 2000 })
      : httpRequest(url, { timeout: 2000 });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
