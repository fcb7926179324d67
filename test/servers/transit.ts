/**
 * A Transit auto-unseal for tests: a real single-node OpenBao (test/servers/openbao.ts) with the
 * Transit engine at `transit/`, one key, and a token whose policy allows only what a seal does
 * with that key (encrypt, decrypt, and the token's own lookup and renewal through the default
 * policy). Give `seal` to `startOpenBao({ seal })` or to a throwaway (throwaway-openbao.ts):
 * every server configured with it opens what any other one sealed — the key material a
 * verified restore drill of an auto-unsealed cluster needs.
 */
import { type OpenBaoCluster, startOpenBao, type TransitSeal } from "./openbao.ts";

export interface TransitServer {
  readonly cluster: OpenBaoCluster;
  readonly seal: TransitSeal;
  stop(): Promise<void>;
}

export async function startTransitServer(
  options: {
    keyName?: string /** Where it listens; 127.0.0.1 by default (a node's Pods need the bridge gateway). */;
    host?: string;
  } = {},
): Promise<TransitServer> {
  const keyName = options.keyName ?? "autounseal";
  const cluster = await startOpenBao({ nodes: 1, ...(options.host === undefined ? {} : { host: options.host }) });
  try {
    await cluster.call("POST", "sys/mounts/transit", { type: "transit" });
    await cluster.call("POST", `transit/keys/${keyName}`, {});
    await cluster.call("POST", "sys/policies/acl/autounseal", {
      policy: [
        `path "transit/encrypt/${keyName}" {\n  capabilities = ["update"]\n}`,
        `path "transit/decrypt/${keyName}" {\n  capabilities = ["update"]\n}`,
      ].join("\n"),
    });
    // Periodic: the seal renews it for as long as the servers using it run.
    const token = await cluster.call<{ auth: { client_token: string } }>("POST", "auth/token/create", {
      policies: ["autounseal"],
      period: "24h",
    });
    return {
      cluster,
      seal: {
        address: cluster.addresses[0] ?? "",
        token: token.auth.client_token,
        keyName,
        mountPath: "transit/",
        caPem: cluster.caPem,
      },
      stop: () => cluster.stop(),
    };
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
}
