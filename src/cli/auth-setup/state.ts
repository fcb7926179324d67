/**
 * What OpenBao holds now of everything auth-setup may touch, read before anything is planned
 * or written: the mount at --path, its config, the two policies, the two roles, and any other
 * policy a role grants (to tell whether the role is auth-setup's).
 */
import { UsageError } from "../shared.ts";
import { type Bao, read } from "./bao.ts";
import type { Settings } from "./settings.ts";

export interface MountInfo {
  readonly type: string | undefined;
  readonly description: string | undefined;
}

export interface State {
  /** undefined: nothing is mounted at auth/<path>/. */
  readonly mount: MountInfo | undefined;
  /** The config's data; undefined when the mount is missing or unconfigured. */
  readonly config: Record<string, unknown> | undefined;
  /** Policy text by name (undefined: no such policy), for every policy read. */
  readonly policies: ReadonlyMap<string, string | undefined>;
  /** Role data by name (undefined: no such role). */
  readonly roles: ReadonlyMap<string, Record<string, unknown> | undefined>;
}

type Table = Record<string, { type?: unknown; description?: unknown } | undefined>;

export async function readState(bao: Bao, settings: Settings): Promise<State> {
  const { mount, names } = settings;
  const listing = await read<{ data?: Table } & Table>(bao, "sys/auth");
  const table = (listing?.data ?? listing ?? {}) as Table;
  const entry = table[`${mount}/`];
  const info: MountInfo | undefined = entry
    ? {
        type: typeof entry.type === "string" ? entry.type : undefined,
        description: typeof entry.description === "string" ? entry.description : undefined,
      }
    : undefined;
  if (info && info.type !== "jwt") {
    throw new UsageError(
      `auth/${mount}/ is already enabled with type ${JSON.stringify(info.type)}, not jwt; choose another --path`,
    );
  }

  const policies = new Map<string, string | undefined>();
  const readPolicy = async (name: string): Promise<void> => {
    if (policies.has(name)) return;
    const got = await read<{ data?: { policy?: unknown } }>(bao, `sys/policies/acl/${name}`);
    const text = got?.data?.policy;
    policies.set(name, typeof text === "string" ? text : undefined);
  };
  await readPolicy(names.backupPolicy);
  await readPolicy(names.restorePolicy);

  let config: Record<string, unknown> | undefined;
  const roles = new Map<string, Record<string, unknown> | undefined>();
  if (info) {
    const got = await read<{ data?: Record<string, unknown> | null }>(bao, `auth/${mount}/config`);
    config = got?.data ?? undefined;
    for (const role of [names.backupRole, names.restoreRole]) {
      const data = (await read<{ data?: Record<string, unknown> | null }>(bao, `auth/${mount}/role/${role}`))?.data;
      roles.set(role, data ?? undefined);
      const granted = data?.token_policies;
      if (Array.isArray(granted) && granted.length === 1 && typeof granted[0] === "string") {
        await readPolicy(granted[0]);
      }
    }
  }
  return { mount: info, config, policies, roles };
}
