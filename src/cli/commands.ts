import { executorCommand } from "../executor/command.ts";
import { operatorCommand } from "../operator/command.ts";
import { authSetupCommand } from "./auth-setup.ts";
import { listCommand } from "./list.ts";
import { pruneCommand } from "./prune.ts";
import { statusCommand } from "./status.ts";
import { triggerCommand } from "./trigger.ts";
import { verifyCommand } from "./verify.ts";

/**
 * The table of `bao-backup` subcommands. Each entry names what it does for people; a
 * command whose capability has not landed yet says so plainly and exits non-zero, so a
 * script can never mistake a missing feature for a success.
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
    run: (argv) => operatorCommand(argv),
  },
  {
    name: "backup",
    summary: "executor: stream one Raft snapshot into object storage",
    run: (argv) => executorCommand("backup", argv),
  },
  {
    name: "restore",
    summary: "executor: stream one stored snapshot back into OpenBao",
    run: (argv) => executorCommand("restore", argv),
  },
  {
    name: "list",
    summary: "list a cluster's backups (key, size, age, raft index, verified)",
    run: (argv) => listCommand(argv),
  },
  {
    name: "verify",
    summary: "download a backup and check its archive and manifest checksums",
    run: (argv) => verifyCommand(argv),
  },
  { name: "trigger", summary: "request one manual backup of a cluster", run: (argv) => triggerCommand(argv) },
  {
    name: "status",
    summary: "summarise backup status, conditions, lock and next window",
    run: (argv) => statusCommand(argv),
  },
  {
    name: "prune",
    summary: "show (--dry-run) or apply what retention would delete and why",
    run: (argv) => pruneCommand(argv),
  },
  {
    name: "auth-setup",
    summary: "configure OpenBao JWT auth, policies and roles for backups",
    run: (argv) => authSetupCommand(argv),
  },
];

export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name);
}
