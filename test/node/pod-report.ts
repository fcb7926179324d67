/**
 * A failed node-tier test's account of the Pods (diagnostics.ts): pure formatting of Pod
 * statuses and of the kubelet's container log files, apart from the world so it can be tested
 * without a node.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
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

/** Each container's log files of a namespace's Pods, oldest first: `<ns>_<pod>_<uid>/<container>/<restart>.log`. */
function containerLogs(podLogsDir: string, ns: string): { readonly name: string; readonly files: string[] }[] {
  if (!existsSync(podLogsDir)) return [];
  const out: { name: string; files: string[] }[] = [];
  for (const podDir of readdirSync(podLogsDir).filter((d) => d.startsWith(`${ns}_`))) {
    for (const container of readdirSync(join(podLogsDir, podDir))) {
      const files = readdirSync(join(podLogsDir, podDir, container))
        .filter((f) => /^\d+\.log$/.test(f))
        .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
      out.push({ name: `${podDir}/${container}`, files: files.map((f) => join(podLogsDir, podDir, container, f)) });
    }
  }
  return out;
}

function linesOf(path: string): string[] {
  return readFileSync(path, "utf8").trimEnd().split("\n");
}

/**
 * The last lines of every log file of a namespace's containers, as the kubelet keeps them:
 * the previous container's beside the current one's.
 */
export function containerLogTails(podLogsDir: string, ns: string): string[] {
  const out: string[] = [];
  for (const { name, files } of containerLogs(podLogsDir, ns)) {
    for (const path of files) {
      const text = linesOf(path);
      out.push(
        `--- ${name}/${basename(path)}: last ${Math.min(logTailLines, text.length)} of ${text.length} lines ---`,
      );
      out.push(...text.slice(-logTailLines));
    }
  }
  return out;
}

const crashLines = 40;

/**
 * How each restarted container of a namespace's Pods ended, from its log (only logs with a
 * successor are read): a Go program's last words (`panic:`, `fatal error:`) are at the start
 * of its stack dump, not at its end, so the lines from there are shown, else the last ones.
 */
export function crashedContainerLogs(podLogsDir: string, ns: string): string[] {
  const out: string[] = [];
  for (const { name, files } of containerLogs(podLogsDir, ns)) {
    for (const path of files.slice(0, -1)) {
      const text = linesOf(path);
      const panic = text.findIndex((line) => /\b(panic|fatal error):/.test(line));
      out.push(`--- ${name}/${basename(path)} (restarted): ${panic >= 0 ? "from its panic" : "its last lines"} ---`);
      out.push(...(panic >= 0 ? text.slice(panic, panic + crashLines) : text.slice(-20)));
    }
  }
  return out;
}
