/**
 * A failed node-tier test's account of the Pods (diagnostics.ts): pure formatting of Pod
 * statuses and of the kubelet's container log files, apart from the world so it can be tested
 * without a node.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1ContainerState, V1ContainerStatus, V1Pod } from "@kubernetes/client-node";

const logTailLines = 120;

export function describePod(pod: V1Pod): string[] {
  const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  const out = [`${name}: ${pod.status?.phase ?? "?"}${pod.status?.reason ? ` (${pod.status.reason})` : ""}`];
  for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    out.push(`  ${describeContainer(status)}`);
  }
  return out;
}

function describeContainer(status: V1ContainerStatus): string {
  const last = status.lastState?.terminated
    ? `; the previous one ${describeState(status.lastState)}`
    : status.restartCount > 0
      ? "; how the previous one ended is not known"
      : "";
  return `${status.name}: ready=${status.ready}, ${status.restartCount} restart(s), ${describeState(status.state)}${last}`;
}

function describeState(state: V1ContainerState | undefined): string {
  if (state?.running) return `running since ${timeOf(state.running.startedAt)}`;
  if (state?.waiting)
    return `waiting (${state.waiting.reason ?? "?"}${state.waiting.message ? `: ${state.waiting.message}` : ""})`;
  const ended = state?.terminated;
  if (ended) {
    const signal = ended.signal ? `, signal ${ended.signal}` : "";
    const message = ended.message ? `: ${ended.message.trim().slice(0, 300)}` : "";
    return `terminated ${ended.reason ?? "?"} (exit ${ended.exitCode}${signal}) at ${timeOf(ended.finishedAt)}${message}`;
  }
  return "no state";
}

function timeOf(time: Date | string | undefined): string {
  return time === undefined ? "?" : time instanceof Date ? time.toISOString() : String(time);
}

/**
 * The last lines of every log file of a namespace's containers, as the kubelet keeps them:
 * `<podLogsDir>/<ns>_<pod>_<uid>/<container>/<restart>.log`, the previous container's beside
 * the current one's.
 */
export function containerLogTails(podLogsDir: string, ns: string): string[] {
  if (!existsSync(podLogsDir)) return [];
  const out: string[] = [];
  for (const podDir of readdirSync(podLogsDir).filter((d) => d.startsWith(`${ns}_`))) {
    for (const container of readdirSync(join(podLogsDir, podDir))) {
      const files = readdirSync(join(podLogsDir, podDir, container))
        .filter((f) => /^\d+\.log$/.test(f))
        .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
      for (const file of files) {
        const path = join(podLogsDir, podDir, container, file);
        const text = readFileSync(path, "utf8").trimEnd().split("\n");
        out.push(
          `--- ${podDir}/${container}/${file}: last ${Math.min(logTailLines, text.length)} of ${text.length} lines ---`,
        );
        out.push(...text.slice(-logTailLines));
      }
    }
  }
  return out;
}
