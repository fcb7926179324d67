/**
 * The table of `bao-backup` subcommands. Each entry names what it does for people; a
 * command whose capability has not landed yet says so plainly and exits non-zero, so a
 * script can never mistake a missing feature for a success.
 *
 * Each command's module is imported only when that command runs: a backup Job then loads
 * neither the Kubernetes client nor the other commands (BENCHMARKS.md, finding 2).
 */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  readonly run?: (argv: readonly string[]) => Promise<number>;
}

export const commands: readonly Command[] = [
  {
    name: "operator",
    summary: "run the control plane: schedule, record and restore snapshots",
    run: async (argv) => (await import("../operator/command.ts")).operatorCommand(argv),
  },
  {
    name: "monitor",
    summary: "measure backup freshness from the buckets, independent of the operator",
    run: async (argv) => (await import("../monitor/command.ts")).monitorCommand(argv),
  },
  {
    name: "backup",
    summary: "executor: stream one Raft snapshot into object storage",
    run: async (argv) => (await import("../executor/command.ts")).executorCommand("backup", argv),
  },
  {
    name: "restore",
    summary: "executor: stream one stored snapshot back into OpenBao",
    run: async (argv) => (await import("../executor/command.ts")).executorCommand("restore", argv),
  },
  {
    name: "confirm",
    summary: "executor: find the stored backup of a Job whose result was lost (by its key id)",
    run: async (argv) => (await import("../executor/command.ts")).executorCommand("confirm", argv),
  },
  {
    name: "drill",
    summary: "executor: restore a stored backup into a throwaway OpenBao and prove it restores",
    run: async (argv) => (await import("../executor/command.ts")).executorCommand("drill", argv),
  },
  {
    name: "drill-prepare",
    summary: "drill Pod init container: write the throwaway OpenBao's configuration",
    run: async (argv) => (await import("../drill/prepare.ts")).drillPrepareCommand(argv),
  },
  {
    name: "list",
    summary: "list a cluster's backups (key, size, age, raft index, verified)",
    run: async (argv) => (await import("./list.ts")).listCommand(argv),
  },
  {
    name: "verify",
    summary: "download a backup and check its archive and manifest checksums",
    run: async (argv) => (await import("./verify.ts")).verifyCommand(argv),
  },
  {
    name: "trigger",
    summary: "request one manual backup of a cluster",
    run: async (argv) => (await import("./trigger.ts")).triggerCommand(argv),
  },
  {
    name: "status",
    summary: "summarise backup status, conditions, lock and next window",
    run: async (argv) => (await import("./status.ts")).statusCommand(argv),
  },
  {
    name: "prune",
    summary: "show (--dry-run) or apply what retention would delete and why",
    run: async (argv) => (await import("./prune.ts")).pruneCommand(argv),
  },
  {
    name: "auth-setup",
    summary: "configure OpenBao JWT auth, policies and roles for backups",
    run: async (argv) => (await import("./auth-setup.ts")).authSetupCommand(argv),
  },
];

export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name);
}
