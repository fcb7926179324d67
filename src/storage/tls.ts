/**
 * Connections to the storage endpoint, built once for every provider (SPEC §5 trap 10: a
 * custom CA must not be ignored by any provider). `caCert` from the credentials Secret is
 * trusted in addition to the default CAs; `insecureSkipVerify` turns verification off for
 * storage connections only. Each store owns its agents and destroys them on `close`.
 */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { getCACertificates } from "node:tls";
import type { StorageCredentials, Target } from "./target.ts";

/**
 * Bytes of an upload body written to a TLS socket at a time (S3 parts: put-request.ts;
 * Azure blocks: azure/blocks.ts), as views, each once the last has left: TLS encrypts a whole
 * write at once and queues the ciphertext, so one 10 MiB write holds a second copy of every
 * part in flight until the store has read it (BENCHMARKS.md, finding 10).
 */
export const tlsWriteSliceBytes = 1024 * 1024;

export interface Agents {
  /** What the HTTPS agent was built with, for a connection made without it (http1/stream-get.ts). */
  readonly tls: TlsSettings;
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
  /** The agent for a URL's scheme. */
  for(url: string): HttpAgent | HttpsAgent;
  destroy(): void;
}

export interface TlsSettings {
  /** Trusted CAs; undefined means Node's defaults. */
  readonly ca: string[] | undefined;
  readonly rejectUnauthorized: boolean;
}

export function tlsSettings(target: Pick<Target, "insecureSkipVerify">, credentials: StorageCredentials): TlsSettings {
  return {
    ca: credentials.caCert === undefined ? undefined : [...getCACertificates("default"), credentials.caCert],
    rejectUnauthorized: !target.insecureSkipVerify,
  };
}

/**
 * Keep-alive agents sized for `concurrency` parts in flight plus a few metadata calls.
 * `maxSockets` also caps what reaches the wire, whatever an SDK's own queue does.
 */
export function createAgents(settings: TlsSettings, maxSockets: number): Agents {
  const http = new HttpAgent({ keepAlive: true, maxSockets });
  const https = new HttpsAgent({
    keepAlive: true,
    maxSockets,
    rejectUnauthorized: settings.rejectUnauthorized,
    ...(settings.ca === undefined ? {} : { ca: settings.ca }),
  });
  return {
    tls: settings,
    http,
    https,
    for: (url) => (url.startsWith("https:") ? https : http),
    destroy: () => {
      http.destroy();
      https.destroy();
    },
  };
}
