/**
 * Keep-alive connections for the typed API clients and the client's `Watch`.
 *
 * `@kubernetes/client-node` (2.x) builds a new undici `Agent` for every request whose
 * kubeconfig carries TLS material (a CA, a client certificate): `applySecurityAuthentication`
 * calls its private `createDispatcher` each time, and nothing caches the result. Every API
 * request then opens its own TCP + TLS connection, and the idle socket lingers until undici's
 * keep-alive timer closes it. Under a burst (1,000 backups on one cron minute) that is a
 * full TLS handshake per request on both ends, and hundreds of idle sockets.
 *
 * `shareConnections` makes one KubeConfig hand out one dispatcher per distinct TLS setting
 * (CA, client certificate and key, server name, verification): the same agent, hence a pool
 * of kept-alive connections, for every request. A rotated client certificate file (re-read by
 * the client on every request) yields different options and so a fresh agent; the previous
 * one is closed once its requests have finished. Bearer tokens travel in headers and are not
 * part of the key.
 *
 * If a later client version renames or caches this itself, the override is skipped (the
 * unit test `kube-connections.test.ts` then fails, so the upgrade is noticed).
 */
import { createHash } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";

interface Closable {
  close?: () => Promise<void>;
}

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;

interface DispatcherFactory {
  createDispatcher?: CreateDispatcher;
  createDispatcherOptions?: (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;
}

const shared = new WeakSet<KubeConfig>();

/** A fingerprint of dispatcher options (Buffers serialise by content through their toJSON). */
function fingerprint(options: unknown): string {
  return createHash("sha256").update(JSON.stringify(options)).digest("hex");
}

/** Makes `kubeConfig`'s API clients and watches reuse connections (see the module doc). Idempotent. */
export function shareConnections(kubeConfig: KubeConfig): KubeConfig {
  if (shared.has(kubeConfig)) return kubeConfig;
  const factory = kubeConfig as unknown as DispatcherFactory;
  const original = factory.createDispatcher;
  const describe = factory.createDispatcherOptions;
  if (typeof original !== "function" || typeof describe !== "function") return kubeConfig;
  let current: { key: string; dispatcher: unknown } | undefined;
  factory.createDispatcher = (cluster, agentOptions) => {
    const key = fingerprint(describe.call(kubeConfig, cluster, agentOptions));
    if (current?.key === key) return current.dispatcher;
    const previous = current?.dispatcher as Closable | undefined;
    const dispatcher = original.call(kubeConfig, cluster, agentOptions);
    current = { key, dispatcher };
    // Requests in flight on the old agent finish; close() then ends its idle sockets.
    void previous?.close?.().catch(() => undefined);
    return dispatcher;
  };
  shared.add(kubeConfig);
  return kubeConfig;
}
