/**
 * What a failed node-tier test prints beside the node programs' logs (superviseServers):
 * every Pod's containers — restarts, and how the last one ended (reason, exit code, signal) —
 * and the tail of each operator container's log, a previous container's included, which the
 * kubelet keeps as `<restart>.log` beside the current one until the node is stopped.
 *
 * Why: in one CI run the operator's container died during a test (readiness probes timed out,
 * then "connection refused", then a restart); the kubelet's log said that much, but whether it
 * was the V8 heap limit, a cgroup OOM kill or a crash was lost with the node's state directory.
 */
import { join } from "node:path";
import { afterEach } from "node:test";
import { containerLogTails, crashedContainerLogs, describePod } from "./pod-report.ts";
import { namespace, operatorNamespace, type World } from "./world.ts";

/** Registers the report for the tests of the enclosing `describe`; `world()` may be undefined before `before`. */
export function printPodsOnFailure(world: () => World | undefined): void {
  afterEach(async (t) => {
    // `passed` exists at run time on Node 24; @types/node does not declare it on every context.
    if ((t as { passed?: boolean }).passed !== false) return;
    const current = world();
    if (current === undefined) return;
    let report: string;
    try {
      report = await describePods(current);
    } catch (err) {
      report = `(could not describe the node's Pods: ${err instanceof Error ? err.message : String(err)})\n`;
    }
    process.stderr.write(report);
  });
}

/** The Pods of the operator's and OpenBao's namespaces, the operator's container logs, then crashed containers' last words. */
export async function describePods(world: World): Promise<string> {
  const lines: string[] = ["", "--- Pods on the node ---"];
  for (const ns of [operatorNamespace, namespace]) {
    const pods = (await world.core.listNamespacedPod({ namespace: ns })).items;
    for (const pod of pods) lines.push(...describePod(pod));
  }
  lines.push(...containerLogTails(join(world.node.stateDir, "pod-logs"), operatorNamespace));
  // OpenBao's and the Jobs' containers that were restarted: how they ended (e.g. a Go panic).
  lines.push(...crashedContainerLogs(join(world.node.stateDir, "pod-logs"), namespace));
  return `${lines.join("\n")}\n`;
}
