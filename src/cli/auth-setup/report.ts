/**
 * What auth-setup prints: the result of a run, the writes of a dry run, and the refusal that
 * names everything it would have overwritten. Bodies hold no secrets (the admin token is only
 * ever a header); they are still passed through `redact` with it.
 */
import { redact } from "../../openbao/errors.ts";
import { printJson, UsageError } from "../shared.ts";
import type { Write } from "./bao.ts";
import type { Action, Conflict, Step } from "./plan.ts";
import type { Settings } from "./settings.ts";

export interface Outcome {
  readonly item: string;
  readonly action: Action;
  readonly note?: string;
}

/** Refused: something auth-setup did not create would have been overwritten. Exit 1 (code `InvalidUsage`). */
export class Refused extends UsageError {}

export function refusal(conflicts: readonly Conflict[]): Refused {
  const lines = ["refusing to overwrite what auth-setup did not create; nothing was changed:"];
  for (const c of conflicts) {
    lines.push(`  ${c.path}: ${c.what}, differs:`);
    for (const d of c.differences) lines.push(`      ${d}`);
    lines.push(`    to let auth-setup take it over: --adopt ${c.adopt}; or ${c.instead}`);
  }
  lines.push(
    `--adopt hands each named item to auth-setup (it rewrites it and marks it as its own); name only what is meant for the backups, e.g. --adopt ${conflicts.map((c) => c.adopt).join(",")}. --dry-run shows every write first.`,
  );
  return new Refused(lines.join("\n"));
}

export function printRefusal(settings: Settings, conflicts: readonly Conflict[]): void {
  if (settings.format === "json") {
    printJson({ address: settings.address, path: settings.mount, refused: conflicts, changed: 0 });
  }
}

const showWrite = (w: Write, secrets: readonly string[]): string =>
  `${w.method} /v1/${w.path} ${redact(JSON.stringify(w.body), secrets)}`;

function table(rows: readonly Outcome[], dryRun: boolean): string {
  const would: Record<Action, string> = {
    created: "would create",
    updated: "would update",
    adopted: "would adopt",
    unchanged: "unchanged",
  };
  const label = (a: Action): string => (dryRun ? would[a] : a);
  const width = Math.max(...rows.map((r) => label(r.action).length));
  return rows.map((r) => `${label(r.action).padEnd(width)}  ${r.item}${r.note ? ` (${r.note})` : ""}`).join("\n");
}

export function printDryRun(
  settings: Settings,
  steps: readonly Step[],
  validation: string,
  extra: readonly string[],
): void {
  const writes = steps.flatMap((s) => s.writes);
  const secrets = [settings.token];
  if (settings.format === "json") {
    printJson({
      address: settings.address,
      path: settings.mount,
      dryRun: true,
      changes: steps.map((s) => ({ item: s.item, action: s.action, ...(s.note ? { note: s.note } : {}) })),
      writes: writes.map((w) => ({ method: w.method, path: `/v1/${w.path}`, body: w.body })),
      validation,
      notes: extra,
    });
    return;
  }
  const out = [
    `dry run: nothing was written to ${settings.address}.`,
    table(steps, true),
    writes.length === 0
      ? "No writes: OpenBao is already configured."
      : `The ${writes.length} write(s) auth-setup would make, in order:\n${writes.map((w) => `  ${showWrite(w, secrets)}`).join("\n")}`,
    `validation: ${validation}`,
    ...extra,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}

export function printResult(
  settings: Settings,
  outcomes: readonly Outcome[],
  validation: string,
  extra: readonly string[],
): void {
  const changed = outcomes.filter((o) => o.action !== "unchanged").length;
  if (settings.format === "json") {
    printJson({
      address: settings.address,
      path: settings.mount,
      changed,
      changes: outcomes,
      validation,
      notes: extra,
    });
    return;
  }
  const { backupRole } = settings.names;
  const pathHint = settings.mount === "jwt" ? "" : ` and jwtAuthPath: ${settings.mount}`;
  process.stdout.write(
    `${[
      table(outcomes, false),
      `validation: ${validation}`,
      ...extra,
      changed === 0
        ? "OpenBao was already configured: unchanged."
        : `${changed} change(s) applied to ${settings.address}. Set spec.backup.jwtAuthRole: ${backupRole}${pathHint} on the OpenBaoCluster.`,
    ].join("\n")}\n`,
  );
}
