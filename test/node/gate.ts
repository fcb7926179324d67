/**
 * Whether this run can have a real node, said once per test file: on a machine that cannot
 * (not root, no overlay or bridge, no runtime packages) the `node` tier skips with one line
 * saying why — except in CI (`CI=true`), where a node tier that does not run is a failure.
 */
import { existsSync } from "node:fs";
import { binaryPath, servers } from "../servers/catalog.ts";
import { nodeRuntimeInstalled, nodeUnsupportedReason } from "./runtime.ts";

/** The reason to skip, or false to run. Throws in CI instead of skipping. */
export function nodeTierSkip(): string | false {
  const node = servers.find((s) => s.name === "k8s-node");
  const reason =
    nodeUnsupportedReason() ??
    (nodeRuntimeInstalled()
      ? undefined
      : "containerd, runc or the CNI plugins are not installed (run `npm test` as root)") ??
    (node && existsSync(binaryPath(node)) ? undefined : "kubelet is not built (run `npm run servers`)");
  if (reason === undefined) return false;
  const line = `node tier skipped: ${reason}`;
  if (process.env.CI === "true") throw new Error(`${line} — CI=true requires the node tier to run`);
  process.stdout.write(`${line}\n`);
  return line;
}
