/**
 * How auth-setup recognises what it created, so that a re-run may change it and nothing else:
 *
 * - the JWT auth mount: its `description` starts with `bao-backup auth-setup` (or is exactly
 *   the description earlier versions wrote, `bao-backup: Kubernetes ServiceAccount tokens`);
 * - a policy: a line `# Managed by bao-backup auth-setup` in its text (an HCL comment, kept
 *   by OpenBao as written);
 * - a role: roles carry no free text, so a role is auth-setup's when it grants exactly one
 *   policy and that policy carries the marker (or is adopted in the same run).
 *
 * Deleting the marker hands the item back: auth-setup then refuses to change it.
 */

export const mountDescription = "bao-backup auth-setup: Kubernetes ServiceAccount tokens of backup and restore Jobs";
const legacyMountDescription = "bao-backup: Kubernetes ServiceAccount tokens";

export function isOurMount(description: unknown): boolean {
  return (
    typeof description === "string" &&
    (description.startsWith("bao-backup auth-setup") || description === legacyMountDescription)
  );
}

export const policyMarker =
  "# Managed by bao-backup auth-setup: it rewrites this policy when it runs; delete this line to stop that.";

export function isOurPolicy(text: string | undefined): boolean {
  return text !== undefined && /^#\s*Managed by bao-backup auth-setup\b/m.test(text);
}

export const backupRules = `path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}\n`;

/**
 * With `--canary-path <mount>/<path>` (spec.backup.drill.canaryPath): the backup role also
 * writes the canary before each snapshot, and — in a drill's restored copy, where the same role
 * logs in — reads it back and counts mounts and auth methods (docs/drills.md).
 */
export function backupRulesWithCanary(canary: { mount: string; path: string } | undefined): string {
  if (canary === undefined) return backupRules;
  return (
    `${backupRules}\n` +
    `path "${canary.mount}/data/${canary.path}" {\n  capabilities = ["create", "update", "read"]\n}\n\n` +
    `path "sys/mounts" {\n  capabilities = ["read"]\n}\n\n` +
    `path "sys/auth" {\n  capabilities = ["read"]\n}\n`
  );
}
export const restoreRules =
  `path "sys/storage/raft/snapshot" {\n  capabilities = ["update"]\n}\n\n` +
  `path "sys/storage/raft/snapshot-force" {\n  capabilities = ["update"]\n}\n`;

/** The policy text auth-setup writes: the marker, then the rules. */
export const markedPolicy = (rules: string): string => `${policyMarker}\n${rules}`;

/** The rule lines of a policy, without comments, blank lines or spacing differences. */
export function ruleLines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#") && !line.startsWith("//"));
}

/** Whether two policies grant the same (comments and spacing aside). */
export function sameRules(a: string, b: string): boolean {
  const squash = (text: string): string => ruleLines(text).join("").replace(/\s+/g, "");
  return squash(a) === squash(b);
}
