/**
 * Finds the active node (the Raft leader) among the cluster's members. Only a member of
 * the configured list is ever used: a `leader_address` pointing anywhere else is ignored,
 * so a compromised or misconfigured member cannot redirect the snapshot stream.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { OpenBaoError } from "./errors.ts";
import type { OpenBaoHttp } from "./http.ts";

export interface LeaderStatus {
  readonly ha_enabled?: boolean;
  readonly is_self?: boolean;
  readonly leader_address?: string;
}

export interface RetryPolicy {
  /** Rounds over all members before giving up. */
  readonly attempts: number;
  /** Delay before the second round; doubles each round, capped at `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const defaultLeaderRetry: RetryPolicy = { attempts: 6, baseDelayMs: 500, maxDelayMs: 8000 };

/** Normalises a URL to scheme://host:port so member and leader addresses compare exactly. */
export function origin(address: string): string {
  return new URL(address).origin;
}

/**
 * Pure choice over one round of answers: the member that says it is the leader, else the
 * member the others name as leader, else none.
 */
export function chooseLeader(
  members: readonly string[],
  answers: ReadonlyMap<string, LeaderStatus>,
): string | undefined {
  for (const member of members) {
    if (answers.get(member)?.is_self === true) return member;
  }
  const byOrigin = new Map(members.map((m) => [origin(m), m]));
  for (const answer of answers.values()) {
    if (!answer.leader_address) continue;
    try {
      const named = byOrigin.get(origin(answer.leader_address));
      if (named) return named;
    } catch {
      // not a URL: ignore
    }
  }
  return undefined;
}

export async function findLeader(
  http: OpenBaoHttp,
  members: readonly string[],
  options: { retry?: RetryPolicy; signal?: AbortSignal; onRetry?: (round: number, why: string) => void } = {},
): Promise<string> {
  if (members.length === 0) throw new OpenBaoError("NoLeader", "no OpenBao member addresses configured");
  const retry = options.retry ?? defaultLeaderRetry;
  let lastProblems: string[] = [];
  for (let round = 1; round <= retry.attempts; round++) {
    const answers = new Map<string, LeaderStatus>();
    const problems: string[] = [];
    await Promise.all(
      members.map(async (member) => {
        try {
          const status = await http.json<LeaderStatus>(member, {
            method: "GET",
            path: "sys/leader",
            timeoutMs: 5000,
            signal: options.signal,
          });
          answers.set(member, status ?? {});
          if (!status?.is_self) problems.push(`${member}: standby`);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          // Most messages already start with the member's address; never say it twice.
          problems.push(message.startsWith(member) ? message : `${member}: ${message}`);
        }
      }),
    );
    const leader = chooseLeader(members, answers);
    if (leader) return leader;
    lastProblems = problems.sort();
    if (round < retry.attempts) {
      options.onRetry?.(round, lastProblems.join("; "));
      await sleep(Math.min(retry.baseDelayMs * 2 ** (round - 1), retry.maxDelayMs), undefined, {
        signal: options.signal,
      });
    }
  }
  throw new OpenBaoError(
    "NoLeader",
    `no active OpenBao node among ${members.length} member(s) after ${retry.attempts} attempts: ${lastProblems.join("; ")}${sealedHint(lastProblems, members.length)}`,
  );
}

/** A sealed cluster is the most common reason for no leader; say so plainly when it is the reason. */
export function sealedHint(problems: readonly string[], members: number): string {
  const sealed = problems.filter((problem) => /\bis sealed\b/i.test(problem)).length;
  if (sealed === 0) return "";
  return sealed === members
    ? "; every member is sealed: unseal OpenBao (or fix auto-unseal), then retry"
    : `; ${sealed} of ${members} member(s) sealed`;
}
