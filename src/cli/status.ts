/**
 * `bao-backup status [cluster]`: a human summary of what the operator recorded for one
 * cluster (or every cluster in the namespace): `status.backup`, the backup conditions, the
 * operation lock, a pending manual trigger and the next window.
 */
import { Annotation, Condition } from "../api/constants.ts";
import type { Condition as ConditionValue, DrillStatus, LastDrill, OpenBaoCluster } from "../api/types.ts";
import { nextWindowAfter, parseSchedule } from "../backup/schedule.ts";
import { exitCodes } from "./exit-codes.ts";
import {
  getCluster,
  humanAge,
  humanBytes,
  kubeFlags,
  listClusters,
  openKube,
  outputFlags,
  outputFormat,
  parseFlags,
  printJson,
  reportFailure,
} from "./shared.ts";

const help = `Usage: bao-backup status [cluster] [-n namespace] [--kubeconfig file] [-o json]

Summarises backups of one OpenBaoCluster, or of every cluster in the namespace: schedule and
next window, last backup, last failure, the ${Condition.BackingUp} / ${Condition.BackupHealthy} /
${Condition.PreUpgradeSnapshotReady} conditions, the operation lock and a pending manual trigger.

  --kubeconfig <file>      default: $KUBECONFIG, then ~/.kube/config
  -n, --namespace <ns>     default: the kubeconfig context's namespace, else "default"
  -o, --output json|text
  -h, --help

Exit codes: 0 shown (whatever the health), 1 configuration (no such cluster, kubeconfig
unusable), 2 Kubernetes auth (401/403).
`;

export interface ClusterSummary {
  name: string;
  namespace: string;
  phase: string | null;
  backupConfigured: boolean;
  schedule: string | null;
  timeZone: string | null;
  suspended: boolean;
  nextWindow: string | null;
  scheduleProblem: string | null;
  pendingTrigger: string | null;
  backup: Record<string, unknown>;
  conditions: ConditionValue[];
  operationLock: Record<string, unknown> | null;
}

export function summarise(cluster: OpenBaoCluster, now: Date): ClusterSummary {
  const spec = cluster.spec?.backup;
  const status = cluster.status ?? {};
  let nextWindow: string | null = status.backup?.nextScheduledBackup ?? null;
  let scheduleProblem: string | null = null;
  if (spec && !spec.suspend) {
    try {
      const schedule = parseSchedule(spec.schedule, spec.timeZone ?? "UTC");
      if (nextWindow === null || Date.parse(nextWindow) < now.getTime()) {
        nextWindow = nextWindowAfter(schedule, now)?.toISOString() ?? null;
      }
    } catch (err) {
      scheduleProblem = err instanceof Error ? err.message : String(err);
      nextWindow = null;
    }
  }
  if (spec?.suspend) nextWindow = null;
  const ours = new Set<string>([
    Condition.BackingUp,
    Condition.BackupHealthy,
    Condition.PreUpgradeSnapshotReady,
    Condition.RestoreVerified,
    Condition.DestinationsHealthy,
  ]);
  return {
    name: cluster.metadata.name ?? "",
    namespace: cluster.metadata.namespace ?? "",
    phase: status.phase ?? null,
    backupConfigured: spec !== undefined,
    schedule: spec?.schedule ?? null,
    timeZone: spec ? (spec.timeZone ?? "UTC") : null,
    suspended: spec?.suspend === true,
    nextWindow,
    scheduleProblem,
    pendingTrigger: cluster.metadata.annotations?.[Annotation.TriggerBackup] ?? null,
    backup: { ...(status.backup ?? {}) },
    conditions: (status.conditions ?? []).filter((c) => ours.has(c.type)),
    operationLock: status.operationLock ? { ...status.operationLock } : null,
  };
}

function when(iso: unknown, now: Date): string {
  if (typeof iso !== "string") return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const delta = now.getTime() - t;
  return delta >= 0 ? `${iso} (${humanAge(delta)} ago)` : `${iso} (in ${humanAge(-delta)})`;
}

function render(s: ClusterSummary, now: Date): string {
  const lines: string[] = [`${s.namespace}/${s.name}${s.phase ? ` (phase ${s.phase})` : ""}`];
  const row = (label: string, value: string): void => {
    lines.push(`  ${label.padEnd(20)}${value}`);
  };
  if (!s.backupConfigured) {
    row("backups", "not configured (no spec.backup)");
    return lines.join("\n");
  }
  row("schedule", `${s.schedule} (${s.timeZone})${s.suspended ? ", SUSPENDED" : ""}`);
  row("next window", s.scheduleProblem ? `none: ${s.scheduleProblem}` : s.nextWindow ? when(s.nextWindow, now) : "-");
  if (s.pendingTrigger) row("manual trigger", `pending since ${s.pendingTrigger}`);
  const b = s.backup;
  if (typeof b.lastBackupTime === "string") {
    row("last backup", when(b.lastBackupTime, now));
    row("  key", String(b.lastBackupName ?? "-"));
    const size = typeof b.lastBackupSize === "number" ? humanBytes(b.lastBackupSize) : "-";
    row(
      "  size",
      `${size}, took ${String(b.lastBackupDuration ?? "-")}, raft index ${String(b.lastBackupRaftIndex ?? "-")}`,
    );
  } else row("last backup", "none yet");
  if (typeof b.lastAttemptTime === "string") row("last attempt", when(b.lastAttemptTime, now));
  const failures = typeof b.consecutiveFailures === "number" ? b.consecutiveFailures : 0;
  row("failures in a row", String(failures));
  if (typeof b.lastFailureReason === "string") {
    row("last failure", `${b.lastFailureReason} at ${when(b.lastFailureTime, now)}`);
    if (typeof b.lastFailureMessage === "string") row("", b.lastFailureMessage);
  }
  if (typeof b.lastRetentionDeleted === "number") row("retention deleted", String(b.lastRetentionDeleted));
  const current = b.currentJob as { name?: string; type?: string } | null | undefined;
  if (current?.name) row("running job", `${current.name} (${current.type ?? "?"})`);
  const pre = b.preUpgrade as { targetVersion?: string; phase?: string; attempts?: number } | undefined;
  if (pre) row("pre-upgrade", `${pre.phase ?? "?"} for ${pre.targetVersion ?? "?"} (attempt ${pre.attempts ?? 0})`);
  // Read back from JSON (`-o json` prints the same object): typed as the status declares it.
  const d = b.drill as DrillStatus | undefined;
  if (d) {
    row("next drill", d.nextScheduledDrill ? when(d.nextScheduledDrill, now) : "-");
    if (d.currentJob?.name) row("running drill", `${d.currentJob.name} (${d.currentJob.type})`);
  }
  const last = b.lastDrill as LastDrill | undefined;
  if (last) {
    const proved = last.outcome === "failed" ? `FAILED (${last.reason ?? "?"})` : last.outcome;
    row("last drill", `${proved} at ${when(last.time, now)}${last.duration ? `, took ${last.duration}` : ""}`);
    if (last.key) row("  key", last.key);
    row("", last.message);
  }
  const lock = s.operationLock;
  row(
    "operation lock",
    lock
      ? `${String(lock.operation)} held by ${String(lock.holder)} since ${when(lock.acquiredAt, now)}${typeof lock.message === "string" ? `: ${lock.message}` : ""}`
      : "free",
  );
  if (s.conditions.length === 0) row("conditions", "none yet");
  for (const c of s.conditions) row(c.type, `${c.status} ${c.reason}${c.message ? `: ${c.message}` : ""}`);
  return lines.join("\n");
}

export async function statusCommand(argv: readonly string[]): Promise<number> {
  try {
    const args = parseFlags(argv, { ...kubeFlags, ...outputFlags }, 1);
    if (args.values.help === true) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const format = outputFormat(args);
    const kube = openKube(args);
    const name = args.positionals[0];
    const clusters = name === undefined ? await listClusters(kube) : [await getCluster(kube, name)];
    const now = new Date();
    const summaries = clusters.map((c) => summarise(c, now));
    if (format === "json") {
      printJson({ namespace: kube.namespace, clusters: summaries });
    } else if (summaries.length === 0) {
      process.stdout.write(`No OpenBaoClusters in namespace ${kube.namespace}.\n`);
    } else {
      process.stdout.write(`${summaries.map((s) => render(s, now)).join("\n\n")}\n`);
    }
    return exitCodes.ok;
  } catch (err) {
    return reportFailure("status", err);
  }
}
