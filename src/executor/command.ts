/**
 * The `backup` and `restore` subcommands: load the configuration, run, report through the
 * termination message and one human line, and exit with the category code.
 */
import { exitCodes } from "../cli/exit-codes.ts";
import { runBackup } from "./backup.ts";
import { loadBackupConfig, loadRestoreConfig, terminationMessageTarget } from "./config.ts";
import { failureResult, stoppedBySignal } from "./failure.ts";
import { outsideKubernetes, restoreFlags } from "./help.ts";
import { checkRequiredSecrets } from "./required-secrets.ts";
import { runRestore } from "./restore.ts";
import { type ExecutorResult, humanLine, writeTerminationMessage } from "./result.ts";
import { settingsHelp } from "./settings.ts";

function help(mode: "backup" | "restore"): string {
  const what =
    mode === "backup"
      ? "Streams one Raft snapshot from the OpenBao leader into object storage, verifies it, writes its manifest and applies retention."
      : `Streams a stored snapshot (BACKUP_KEY) into OpenBao after checking it against its manifest. ${restoreFlags}`;
  return `Usage: bao-backup ${mode} [--option value]...\n\n${what}\n\n${outsideKubernetes}\n\nEvery option can also be given as the environment variable shown.\n\n${settingsHelp()}\n\nExit codes: 0 ok, 1 configuration, 2 auth, 3 leader discovery, 4 snapshot, 5 storage, 6 verification.\n`;
}

export async function executorCommand(mode: "backup" | "restore", argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(help(mode));
    return exitCodes.ok;
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error("terminated by signal"));
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const started = new Date();
  let result: ExecutorResult;
  const termination = terminationMessageTarget(process.env, argv);
  try {
    const options = { signal: controller.signal };
    // The Job's Secret volumes are optional: an empty one is a missing Secret, named at once.
    checkRequiredSecrets(process.env);
    result =
      mode === "backup"
        ? await runBackup(loadBackupConfig(process.env, argv), options)
        : await runRestore(loadRestoreConfig(process.env, argv), options);
  } catch (err) {
    result = failureResult(mode, err, { secrets: [], key: undefined, started, now: new Date() });
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
  if (!result.ok && controller.signal.aborted) result = stoppedBySignal(result);
  const writeProblem = writeTerminationMessage(termination.path, result, { onlyIfExists: !termination.explicit });
  const line = humanLine(result);
  if (result.ok) process.stdout.write(`${line}\n`);
  else process.stderr.write(`${line}\n`);
  if (writeProblem) process.stderr.write(`${writeProblem}\n`);
  return result.ok ? exitCodes.ok : result.exitCode;
}
