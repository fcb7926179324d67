/**
 * Exit codes by failure category (SPEC §4). The operator reads them from terminated Pods,
 * scripts read them from the CLI, so they never change meaning.
 */
export const exitCodes = {
  ok: 0,
  config: 1,
  auth: 2,
  leaderDiscovery: 3,
  snapshot: 4,
  storage: 5,
  verification: 6,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];
