/**
 * The executor's subcommands — `backup`, `restore`, `confirm` (src/executor/confirm.ts) and
 * `drill` (src/drill/):
 * load the configuration, run, report through the termination message and one human line,
 * and exit with the category code.
 */
import { exitCodes } from "../cli/exit-codes.ts";
import { drillSettingsHelp, loadDrillConfig, splitDrillArgv } from "../drill/config.ts";
import { runDrillMode } from "../drill/run.ts";
import { runBackup } from "./backup.ts";
import { ConfigError, loadBackupConfig, loadRestoreConfig, terminationMessageTarget } from "./config.ts";
import { runConfirm } from "./confirm.ts";
import { failureResult, stoppedBySignal } from "./failure.ts";
import { drillDescription, drillOutsideKubernetes, outsideKubernetes, restoreFlags } from "./help.ts";
import { checkRequiredSecrets } from "./required-secrets.ts";
import { runRestore } from "./restore.ts";
import { type ExecutorResult, humanLine, writeTerminationMessage } from "./result.ts";
import { settingsHelp } from "./settings.ts";

type Mode = "backup" | "restore" | "confirm" | "drill";

const descriptions: Record<Mode, string> = {
  backup:
    "Streams one Raft snapshot from the OpenBao leader into object storage, verifies it, writes its manifest and applies retention.",
  restore: `Streams a stored snapshot (BACKUP_KEY) into OpenBao after checking it against its manifest. ${restoreFlags}`,
  confirm:
    "Looks in storage for the backup of one backup Job whose result was lost: the newest verified snapshot of BACKUP_TYPE whose key ends in -<BACKUP_KEY_ID>.snap (the Job's openbao.org/key-id annotation). Reads only; never contacts OpenBao. Exit 0 and its facts when found; exit 6 (BackupNotFound) when not. The operator runs it before it records such a Job.",
  drill: drillDescription,
};

function help(mode: Mode): string {
  const what = descriptions[mode];
  // A drill has three settings of its own, then takes the key, storage and token like restore.
  const own = mode === "drill" ? `${drillSettingsHelp()}\n\nAnd, as for restore:\n` : "";
  const outside = mode === "drill" ? drillOutsideKubernetes : outsideKubernetes;
  return `Usage: bao-backup ${mode} [--option value]...\n\n${what}\n\n${outside}\n\nEvery option can also be given as the environment variable shown.\n\n${own}${settingsHelp()}\n\nExit codes: 0 ok, 1 configuration, 2 auth, 3 leader discovery, 4 snapshot, 5 storage, 6 verification.\n`;
}

export async function executorCommand(mode: Mode, argv: readonly string[]): Promise<number> {
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
  // The drill's own flags are unknown to the shared settings: leave them out of this look-up.
  const termination = terminationMessageTarget(process.env, mode === "drill" ? splitDrillArgv(argv).rest : argv);
  try {
    const options = { signal: controller.signal };
    // The Job's Secret volumes are optional: an empty one is a missing Secret, named at once.
    checkRequiredSecrets(process.env);
    result = await run(mode, argv, options);
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

async function run(mode: Mode, argv: readonly string[], options: { signal: AbortSignal }): Promise<ExecutorResult> {
  switch (mode) {
    case "backup":
      return runBackup(loadBackupConfig(process.env, argv), options);
    case "restore":
      return runRestore(loadRestoreConfig(process.env, argv), options);
    case "drill":
      return runDrillMode(loadDrillConfig(process.env, argv), options);
    case "confirm": {
      const config = loadBackupConfig(process.env, argv);
      if (config.keyId === undefined) {
        throw new ConfigError(
          "BACKUP_KEY_ID",
          "is required: the 8 hex digits the backup's key ends in (the Job's openbao.org/key-id annotation)",
        );
      }
      return runConfirm(config, config.keyId);
    }
  }
}
