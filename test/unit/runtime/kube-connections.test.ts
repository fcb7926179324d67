/**
 * The typed clients and `Watch` of @kubernetes/client-node get their undici dispatcher from
 * `applySecurityAuthentication`; `shareConnections` makes that one dispatcher (one pool of
 * kept-alive connections) per TLS setting. No server is needed: the dispatcher is chosen
 * before any connection is made.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
import { shareConnections } from "../../../src/runtime/kube-connections.ts";

const pem = (label: string): string =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(label.repeat(40)).toString("base64")}\n-----END CERTIFICATE-----\n`;

function kubeConfig(ca: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:6443", caData: Buffer.from(ca).toString("base64") }],
    users: [{ name: "u", token: "not-a-real-token" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

async function dispatcherOf(kc: KubeConfig): Promise<unknown> {
  const context = new RequestContext("https://127.0.0.1:6443/api/v1/namespaces", HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  const dispatcher = context.getDispatcher();
  assert.ok(dispatcher !== undefined, "a TLS kubeconfig gets a dispatcher");
  return dispatcher;
}

describe("shareConnections", () => {
  test("the client alone builds a new dispatcher (a new connection) for every request", async () => {
    const kc = kubeConfig(pem("a"));
    assert.notEqual(await dispatcherOf(kc), await dispatcherOf(kc));
  });

  test("shared: every request of one KubeConfig gets the same dispatcher", async () => {
    const kc = shareConnections(kubeConfig(pem("a")));
    const first = await dispatcherOf(kc);
    for (let i = 0; i < 5; i++) assert.equal(await dispatcherOf(kc), first);
    assert.equal(shareConnections(kc), kc, "idempotent");
    assert.equal(await dispatcherOf(kc), first);
  });

  test("different TLS material (a rotated CA or client certificate) gets a new dispatcher", async () => {
    const kc = shareConnections(kubeConfig(pem("a")));
    const first = await dispatcherOf(kc);
    const cluster = kc.getCurrentCluster();
    assert.ok(cluster);
    kc.loadFromOptions({
      clusters: [{ ...cluster, caData: Buffer.from(pem("b")).toString("base64") }],
      users: kc.getUsers(),
      contexts: kc.getContexts(),
      currentContext: kc.getCurrentContext(),
    });
    const second = await dispatcherOf(kc);
    assert.notEqual(second, first);
    assert.equal(await dispatcherOf(kc), second);
  });
});
