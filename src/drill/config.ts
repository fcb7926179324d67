/**
 * `bao-backup drill`'s configuration: its own three settings (`DRILL_*`, below) and, for
 * everything else — the key, storage, the token for the restored data, the CA, the result
 * file — exactly what `bao-backup restore` reads (src/executor/config.ts), so a drill Job and
 * a restore Job are configured alike.
 *
 * What restore reads is loaded by `loadRestoreConfig` itself, with the throwaway as the one
 * member. Three restore settings are refused rather than ignored, because each would mean the
 * person expects something a drill never does: `BACKUP_OPENBAO_ADDRESSES` (a drill never
 * contacts the live cluster), `BACKUP_FORCE` and `BACKUP_EXPECT_SEALED` (a drill chooses the
 * endpoint itself and expects the throwaway to seal when it has no key material).
 *
 * The throwaway's address must be a loopback address: once unsealed it serves a full copy of
 * the cluster's secrets, so it must be reachable only from inside the Pod (or the workstation)
 * that runs it. That alone does not keep the drill away from the live cluster — a port-forward
 * is loopback too — which is why the runner also refuses any OpenBao that is already
 * initialised (src/drill/drill.ts).
 */
import { ConfigError, loadRestoreConfig, type RestoreConfig } from "../executor/config.ts";
import { resolveSettings, type Setting } from "../executor/settings.ts";
import { endpointHostProblem } from "../storage/target.ts";
import { ConfigLayerError } from "../util/coded-error.ts";
import { type CanaryLocation, CanaryLocationError, parseCanaryLocation } from "./canary.ts";

export const drillSettings = [
  {
    env: "DRILL_OPENBAO_ADDR",
    flag: "openbao-addr",
    help: "the throwaway OpenBao to restore into, http(s)://127.0.0.1:<port> (loopback only): a fresh, uninitialised `bao server` with Raft storage on a scratch directory — the drill initialises it and refuses any OpenBao that is already initialised",
  },
  {
    env: "DRILL_UNSEAL_KEYS_DIR",
    flag: "unseal-keys-dir",
    help: "directory of the source cluster's Shamir unseal keys, one key per file as `bao operator init` prints them (a mounted Secret; names starting with . are skipped): the drill unseals the restored data and reads it (outcome verified). A throwaway configured with the source cluster's auto-unseal (e.g. Transit) needs none",
  },
  {
    env: "DRILL_CANARY_PATH",
    flag: "canary-path",
    help: "<mount>/<path> of the KV v2 canary the backup must have written (e.g. secret/openbao-backup/canary): the drill then fails unless its manifest records that canary and the restored data holds exactly it; without it, the drill reads whatever canary the manifest records",
  },
] as const satisfies readonly Setting[];

export type DrillSettingName = (typeof drillSettings)[number]["env"];

/** A drill setting that cannot be used; the message names the variable, its flag and the fix. */
export class DrillConfigError extends ConfigLayerError<"InvalidConfig"> {
  /** The environment variable to fix. */
  readonly variable: string;
  constructor(variable: DrillSettingName, message: string, options?: { cause?: unknown }) {
    const flag = drillSettings.find((s) => s.env === variable)?.flag;
    super("InvalidConfig", `${variable}${flag ? ` (--${flag})` : ""}: ${message}`, options);
    this.variable = variable;
  }
}

export interface DrillConfig {
  readonly mode: "drill";
  /** The throwaway OpenBao's address (loopback). */
  readonly throwaway: string;
  /** Where the Shamir unseal keys are; read when the drill runs (a mounted Secret may change). */
  readonly unsealKeysDir: string | undefined;
  /** With `DRILL_CANARY_PATH`: the canary the backup must have written. */
  readonly canary: CanaryLocation | undefined;
  /**
   * Key, storage, the token for the restored data, TLS (the throwaway's CA) and the result
   * file, as `restore` reads them; its only member is the throwaway.
   */
  readonly restore: RestoreConfig;
}

/**
 * Takes the drill's own flags out of a command line; everything else is left, in order, for
 * the restore settings. Never throws: what is left over is judged by `resolveSettings`.
 */
export function splitDrillArgv(argv: readonly string[]): {
  values: Map<DrillSettingName, string>;
  rest: string[];
} {
  const byFlag = new Map<string, DrillSettingName>(drillSettings.map((s) => [s.flag, s.env]));
  const values = new Map<DrillSettingName, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") ? arg.slice(2, eq === -1 ? undefined : eq) : "";
    const next = argv[i + 1];
    const takesNext = eq === -1 && next !== undefined && !next.startsWith("--");
    const setting = byFlag.get(name);
    if (setting === undefined) {
      rest.push(arg);
      if (arg.startsWith("--") && takesNext) rest.push(argv[++i] ?? "");
      continue;
    }
    if (eq !== -1) values.set(setting, arg.slice(eq + 1));
    else if (takesNext) values.set(setting, argv[++i] ?? "");
    else values.set(setting, "");
  }
  return { values, rest };
}

const loopbackHost = /^(?:127(?:\.\d{1,3}){3}|\[::1\]|localhost)$/;

/** The throwaway's address, checked: an http(s) URL of a loopback host, nothing else in it. */
export function throwawayAddress(value: string | undefined): string {
  const variable = "DRILL_OPENBAO_ADDR";
  if (value === undefined) {
    throw new DrillConfigError(
      variable,
      "is required: the address of the throwaway OpenBao to restore into, e.g. http://127.0.0.1:8200 (start one with `bao server` on an empty Raft directory, see docs/drills.md)",
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DrillConfigError(variable, `${JSON.stringify(value)} is not a URL; write http://127.0.0.1:8200`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new DrillConfigError(variable, `${JSON.stringify(value)} must start with http:// or https://`);
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "" || url.pathname !== "/") {
    throw new DrillConfigError(variable, `${JSON.stringify(value)} must be scheme://host:port and nothing more`);
  }
  const problem = endpointHostProblem(value, url);
  if (problem !== undefined) throw new DrillConfigError(variable, `${JSON.stringify(value)} ${problem}`);
  if (!loopbackHost.test(url.hostname)) {
    throw new DrillConfigError(
      variable,
      `${JSON.stringify(value)} is not a loopback address: the throwaway serves a full copy of the cluster's secrets once unsealed, so it must listen on 127.0.0.1 (or ::1) inside the drill's Pod or on this machine only`,
    );
  }
  return url.origin;
}

/** Restore settings a drill refuses, and why (see the module comment). */
const refused = [
  {
    env: "BACKUP_OPENBAO_ADDRESSES",
    given: (v: string) => v.trim() !== "",
    why: "a drill never contacts the live cluster; give the throwaway with --openbao-addr (DRILL_OPENBAO_ADDR)",
  },
  {
    env: "BACKUP_FORCE",
    given: (v: string) => /^(true|1)$/i.test(v.trim()),
    why: "does not apply to a drill: it restores with snapshot-force unless the throwaway shares the source cluster's auto-unseal",
  },
  {
    env: "BACKUP_EXPECT_SEALED",
    given: (v: string) => /^(true|1)$/i.test(v.trim()),
    why: "does not apply to a drill: without key material it expects the throwaway to seal itself",
  },
] as const;

export function loadDrillConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): DrillConfig {
  const { values, rest } = splitDrillArgv(argv);
  const get = (name: DrillSettingName): string | undefined => {
    const value = (values.get(name) ?? env[name])?.trim();
    return value ? value : undefined;
  };
  const throwaway = throwawayAddress(get("DRILL_OPENBAO_ADDR"));
  const canaryText = get("DRILL_CANARY_PATH");
  let canary: CanaryLocation | undefined;
  try {
    canary = canaryText === undefined ? undefined : parseCanaryLocation(canaryText);
  } catch (err) {
    if (err instanceof CanaryLocationError)
      throw new DrillConfigError("DRILL_CANARY_PATH", err.message, { cause: err });
    throw err;
  }

  const settings = resolveSettings(env, rest);
  for (const setting of refused) {
    const value = settings.get(setting.env);
    if (value !== undefined && setting.given(value)) {
      throw new ConfigError(setting.env, setting.why);
    }
  }
  // A drill without key material needs no token at all, and a workstation drill has no
  // projected ServiceAccount token: the static token (BAO_TOKEN, --token-file) is the default.
  const authGiven = env.BACKUP_AUTH_METHOD !== undefined || rest.some((a) => /^--auth-method(=|$)/.test(a));
  const restore = loadRestoreConfig(
    {
      ...env,
      BACKUP_OPENBAO_ADDRESSES: throwaway,
      ...(authGiven ? {} : { BACKUP_AUTH_METHOD: "token" }),
    },
    rest,
  );
  return { mode: "drill", throwaway, unsealKeysDir: get("DRILL_UNSEAL_KEYS_DIR"), canary, restore };
}

export function drillSettingsHelp(): string {
  const width = Math.max(...drillSettings.map((s) => s.flag.length));
  return drillSettings.map((s) => `  --${s.flag.padEnd(width)}  ${s.env}: ${s.help}`).join("\n");
}
