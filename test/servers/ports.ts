/**
 * Ports and addresses for the test servers. They listen on 127.0.0.1 unless a test asks for
 * another host address (the `node` tier binds the CNI bridge gateway so Pods reach them), and
 * every URL a handle reports is built from that same host, so a client configured from the
 * handle connects where the server listens.
 */
import { createServer } from "node:net";

/** Where test servers listen unless told otherwise. */
export const defaultHost = "127.0.0.1";

/** A free TCP port on `host` (127.0.0.1 by default), chosen by the kernel. */
export function freePort(host: string = defaultHost): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("no port assigned"));
      });
    });
  });
}

/**
 * A port free on every one of `hosts` at once, for a server that listens on more than the
 * address it is given (MinIO also binds loopback): the kernel picks one on the first host,
 * and it is kept only if the others can bind it too.
 */
export async function freePortOn(hosts: readonly [string, ...string[]]): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort(hosts[0]);
    const others = hosts.slice(1).filter((h) => h !== hosts[0]);
    const free = await Promise.all(others.map((h) => portIsFree(h, port)));
    if (free.every(Boolean)) return port;
    if (attempt >= 20) throw new Error(`no port free on all of ${hosts.join(", ")}`);
  }
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.on("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** `host:port` as a URL authority or listen address: an IPv6 literal goes in brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}
