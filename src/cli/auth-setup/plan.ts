/**
 * Every write auth-setup would make, decided from what OpenBao holds now (state.ts), before
 * any is made. Each item is one of:
 * - missing: created (and marked, see markers.ts);
 * - the same as wanted: left alone;
 * - auth-setup's own (marked): updated;
 * - someone else's and named in --adopt: updated and marked;
 * - someone else's otherwise: a conflict. One conflict and the run writes nothing.
 */
import { backupServiceAccountName } from "../../backup/controller.ts";
import { restoreServiceAccountName } from "../../restore/plan.ts";
import type { Write } from "./bao.ts";
import { configDifferences } from "./config-diff.ts";
import {
  backupRulesWithCanary,
  isOurMount,
  isOurPolicy,
  markedPolicy,
  mountDescription,
  restoreRules,
  ruleLines,
  sameRules,
} from "./markers.ts";
import type { Settings } from "./settings.ts";
import type { JwtConfig } from "./signing.ts";
import type { State } from "./state.ts";

export type Action = "created" | "updated" | "adopted" | "unchanged";

export interface Step {
  readonly kind: "mount" | "config" | "policy" | "role";
  /** What the output calls it. */
  readonly item: string;
  /** Its name for --adopt. */
  readonly adoptName: string;
  readonly action: Action;
  /** Set when the item is not auth-setup's and is left as it is. */
  readonly note?: string;
  readonly writes: readonly Write[];
}

export interface Conflict {
  /** The OpenBao path that would have been overwritten. */
  readonly path: string;
  readonly what: string;
  readonly differences: readonly string[];
  /** The --adopt item that allows it. */
  readonly adopt: string;
  /** The other way out: another name. */
  readonly instead: string;
}

export interface Plan {
  readonly steps: readonly Step[];
  readonly conflicts: readonly Conflict[];
  /** Every name --adopt accepts in this run. */
  readonly adoptNames: readonly string[];
}

const notOurs = "not created by auth-setup; left as it is";

interface RoleSpec {
  readonly role: string;
  readonly policy: string;
  readonly serviceAccount: string;
  readonly flag: string;
}

export function wantedRole(settings: Settings, spec: RoleSpec): Record<string, unknown> {
  return {
    role_type: "jwt",
    user_claim: "sub",
    bound_audiences: [settings.audience],
    bound_claims_type: "string",
    bound_claims: {
      "/kubernetes.io/namespace": settings.namespace,
      "/kubernetes.io/serviceaccount/name": spec.serviceAccount,
    },
    token_policies: [spec.policy],
    token_ttl: settings.ttlSeconds,
  };
}

const sorted = (v: unknown): string => JSON.stringify(Array.isArray(v) ? v.map(String).sort() : (v ?? null));

/** Differences in the fields auth-setup writes (a role write leaves other fields as they are). */
export function roleDifferences(current: Readonly<Record<string, unknown>>, wanted: Record<string, unknown>): string[] {
  const out: string[] = [];
  const same = (field: string, have: unknown, want: unknown, equal: boolean): void => {
    if (!equal) out.push(`${field}: ${JSON.stringify(have ?? null)} → ${JSON.stringify(want)}`);
  };
  same("role_type", current.role_type, wanted.role_type, current.role_type === wanted.role_type);
  same("user_claim", current.user_claim, wanted.user_claim, current.user_claim === wanted.user_claim);
  const claimsType = current.bound_claims_type ?? "string";
  same("bound_claims_type", claimsType, wanted.bound_claims_type, claimsType === wanted.bound_claims_type);
  for (const field of ["bound_audiences", "token_policies"]) {
    same(field, current[field], wanted[field], sorted(current[field]) === sorted(wanted[field]));
  }
  same("token_ttl", current.token_ttl, wanted.token_ttl, Number(current.token_ttl) === wanted.token_ttl);
  const claims = (current.bound_claims ?? {}) as Record<string, unknown>;
  const want = wanted.bound_claims as Record<string, string>;
  const claimsSame =
    typeof claims === "object" &&
    Object.keys(claims).length === Object.keys(want).length &&
    Object.entries(want).every(([k, v]) => claims[k] === v || sorted(claims[k]) === sorted([v]));
  same("bound_claims", current.bound_claims, want, claimsSame);
  return out;
}

/**
 * The rule blocks (`path "…" { … }`, each on one line) only in the current policy (−) and only
 * in auth-setup's (+), comments and spacing aside; lines, for text that is not such blocks.
 */
function policyDifferences(current: string, wanted: string): string[] {
  const units = (text: string): string[] => {
    const rules = ruleLines(text).join(" ");
    const blocks = rules.match(/path\s+"[^"]*"\s*\{[^}]*\}/g) ?? [];
    const rest = blocks.reduce((left, b) => left.replace(b, ""), rules).trim();
    return rest === "" ? blocks.map((b) => b.replace(/\s+/g, " ")) : ruleLines(text);
  };
  const have = units(current);
  const want = units(wanted);
  return [
    ...have.filter((l) => !want.includes(l)).map((l) => `− ${l}`),
    ...want.filter((l) => !have.includes(l)).map((l) => `+ ${l}`),
  ];
}

export function makePlan(settings: Settings, state: State, config: JwtConfig): Plan {
  const { mount, names } = settings;
  const adopt = new Set(settings.adopt);
  const mountName = `mount:${mount}`;
  const steps: Step[] = [];
  const conflicts: Conflict[] = [];
  const mountItem = `auth/${mount}/ (JWT auth)`;
  const configItem = `auth/${mount}/config (${config.label})`;
  const configWrite: Write = { method: "POST", path: `auth/${mount}/config`, body: config.body };

  // 1. the mount and 2. its config
  if (state.mount === undefined) {
    steps.push({
      kind: "mount",
      item: mountItem,
      adoptName: mountName,
      action: "created",
      writes: [{ method: "POST", path: `sys/auth/${mount}`, body: { type: "jwt", description: mountDescription } }],
    });
    steps.push({ kind: "config", item: configItem, adoptName: mountName, action: "created", writes: [configWrite] });
  } else {
    const ours = isOurMount(state.mount.description);
    const adopted = !ours && adopt.has(mountName);
    const differences = configDifferences(state.config, config.body);
    steps.push(
      adopted
        ? {
            kind: "mount",
            item: mountItem,
            adoptName: mountName,
            action: "adopted",
            writes: [{ method: "POST", path: `sys/auth/${mount}/tune`, body: { description: mountDescription } }],
          }
        : {
            kind: "mount",
            item: mountItem,
            adoptName: mountName,
            action: "unchanged",
            ...(ours ? {} : { note: notOurs }),
            writes: [],
          },
    );
    if (differences.length === 0) {
      steps.push({
        kind: "config",
        item: configItem,
        adoptName: mountName,
        action: "unchanged",
        ...(ours || adopted ? {} : { note: notOurs }),
        writes: [],
      });
    } else if (ours || adopted) {
      steps.push({
        kind: "config",
        item: configItem,
        adoptName: mountName,
        action: state.config === undefined ? "created" : "updated",
        writes: [configWrite],
      });
    } else {
      conflicts.push({
        path: `auth/${mount}/config`,
        what: `the config of the JWT auth mount auth/${mount}/ (its description ${JSON.stringify(state.mount.description ?? "")} has no auth-setup marker)`,
        differences,
        adopt: mountName,
        instead: "--path <another mount path> for a mount of auth-setup's own",
      });
    }
  }

  // 3. policies
  const adoptedPolicies = new Set<string>();
  for (const [policy, rules, flag] of [
    [names.backupPolicy, backupRulesWithCanary(settings.canary), "--backup-policy"],
    [names.restorePolicy, restoreRules, "--restore-policy"],
  ] as const) {
    const adoptName = `policy:${policy}`;
    const item = `policy ${policy}`;
    const wanted = markedPolicy(rules);
    const current = state.policies.get(policy);
    const writes: Write[] = [{ method: "POST", path: `sys/policies/acl/${policy}`, body: { policy: wanted } }];
    if (current === undefined) steps.push({ kind: "policy", item, adoptName, action: "created", writes });
    else if (current.trim() === wanted.trim())
      steps.push({ kind: "policy", item, adoptName, action: "unchanged", writes: [] });
    else if (isOurPolicy(current)) steps.push({ kind: "policy", item, adoptName, action: "updated", writes });
    else if (adopt.has(adoptName)) {
      adoptedPolicies.add(policy);
      steps.push({ kind: "policy", item, adoptName, action: "adopted", writes });
    } else if (sameRules(current, rules)) {
      steps.push({
        kind: "policy",
        item,
        adoptName,
        action: "unchanged",
        note: `${notOurs} (it grants the same)`,
        writes: [],
      });
    } else {
      conflicts.push({
        path: `sys/policies/acl/${policy}`,
        what: `the policy ${policy} (no auth-setup marker line)`,
        differences: policyDifferences(current, wanted),
        adopt: adoptName,
        instead: `${flag} <another name>`,
      });
    }
  }

  // 4. roles
  const policyIsOurs = (name: string): boolean => adoptedPolicies.has(name) || isOurPolicy(state.policies.get(name));
  for (const spec of [
    {
      role: names.backupRole,
      policy: names.backupPolicy,
      serviceAccount: backupServiceAccountName(settings.cluster),
      flag: "--backup-role",
    },
    {
      role: names.restoreRole,
      policy: names.restorePolicy,
      serviceAccount: restoreServiceAccountName(settings.cluster),
      flag: "--restore-role",
    },
  ]) {
    const adoptName = `role:${spec.role}`;
    const item = `role ${spec.role} (${settings.namespace}/${spec.serviceAccount}, audience ${settings.audience}, policy ${spec.policy})`;
    const wanted = wantedRole(settings, spec);
    const writes: Write[] = [{ method: "POST", path: `auth/${mount}/role/${spec.role}`, body: wanted }];
    const current = state.roles.get(spec.role);
    if (current === undefined) {
      steps.push({ kind: "role", item, adoptName, action: "created", writes });
      continue;
    }
    const differences = roleDifferences(current, wanted);
    const granted = Array.isArray(current.token_policies) ? current.token_policies.map(String) : [];
    const ours = granted.length === 1 && policyIsOurs(granted[0] ?? "");
    if (differences.length === 0) steps.push({ kind: "role", item, adoptName, action: "unchanged", writes: [] });
    else if (ours) steps.push({ kind: "role", item, adoptName, action: "updated", writes });
    else if (adopt.has(adoptName)) steps.push({ kind: "role", item, adoptName, action: "adopted", writes });
    else {
      conflicts.push({
        path: `auth/${mount}/role/${spec.role}`,
        what: `the role ${spec.role} (it grants ${granted.length === 0 ? "no policy" : granted.join(", ")}, not one policy with the auth-setup marker)`,
        differences,
        adopt: adoptName,
        instead: `${spec.flag} <another name>`,
      });
    }
  }

  return {
    steps,
    conflicts,
    adoptNames: [
      mountName,
      `policy:${names.backupPolicy}`,
      `policy:${names.restorePolicy}`,
      `role:${names.backupRole}`,
      `role:${names.restoreRole}`,
    ],
  };
}
