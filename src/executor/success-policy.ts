/**
 * With several destinations, whether a backup run succeeded (`BACKUP_SUCCESS_POLICY`):
 * - `All`: every destination holds a verified copy — the default: a copy that did not land is
 *   a backup that did not happen, as far as the 3-2-1 promise goes.
 * - `AtLeastOne`: one verified copy anywhere is enough.
 * - `Primary`: the main target (the first destination) decides; the others are reported.
 * Whatever the policy, every destination's outcome is in the result, and a failed one in the
 * operator's status, events and metrics: a failed copy is never silent.
 */
import type { SuccessPolicy } from "./config.ts";

export interface CopyOutcome {
  readonly name: string;
  readonly ok: boolean;
}

export interface PolicyDecision {
  readonly ok: boolean;
  /** The outcome that decided a failure (the main target's when it failed, else the first failed). */
  readonly failedBy: CopyOutcome | undefined;
}

export function decide(policy: SuccessPolicy, outcomes: readonly CopyOutcome[]): PolicyDecision {
  const failed = outcomes.filter((o) => !o.ok);
  const primary = outcomes[0];
  const ok =
    policy === "All"
      ? failed.length === 0
      : policy === "AtLeastOne"
        ? failed.length < outcomes.length
        : primary?.ok === true;
  if (ok) return { ok, failedBy: undefined };
  return { ok, failedBy: primary?.ok === false ? primary : failed[0] };
}
