#!/usr/bin/env node
/**
 * `bao-backup`: one executable for the operator, the executor and the operations CLI.
 * This file only routes; each subcommand lives in its own module.
 */
import { commands, findCommand } from "./commands.ts";
import { exitCodes } from "./exit-codes.ts";
import { version } from "./version.ts";

export function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => {
    const note = c.run ? "" : " (not available yet)";
    return `  ${c.name.padEnd(width)}  ${c.summary}${note}`;
  });
  return [
    "Usage: bao-backup <command> [options]",
    "",
    "Durability for OpenBao on Kubernetes: Raft snapshots streamed to S3, GCS or Azure Blob.",
    "",
    "Commands:",
    ...lines,
    "",
    "Options:",
    "  -h, --help     show this help (or `bao-backup <command> --help`)",
    "  -v, --version  print the version",
    "",
  ].join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    process.stdout.write(usage());
    return first === undefined ? exitCodes.config : exitCodes.ok;
  }
  if (first === "-v" || first === "--version") {
    process.stdout.write(`${version}\n`);
    return exitCodes.ok;
  }
  const command = findCommand(first);
  if (!command) {
    process.stderr.write(`bao-backup: unknown command "${first}". Run \`bao-backup --help\` for the list.\n`);
    return exitCodes.config;
  }
  if (!command.run) {
    process.stderr.write(`bao-backup ${command.name}: not available yet in version ${version}.\n`);
    return exitCodes.config;
  }
  return command.run(rest);
}

// Run only when executed, not when imported by tests.
if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
