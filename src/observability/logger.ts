/**
 * Structured JSON logs (pino): one line per record on stdout, `level` as a word, ISO `time`,
 * one child logger per controller (`{"controller":"backup"}`) and per informer.
 *
 * Invariants:
 * - Values under secret-ish keys (`redactedKeys`: tokens, passwords, keys, credentials,
 *   authorization headers…) are replaced by `[REDACTED]` at any nesting depth up to
 *   `redactDepth`, whatever object they are logged in. Keys are matched exactly (pino's
 *   redaction is path-based), so both common spellings are listed.
 * - Redaction is a last line of defence: code still never puts a secret into a message
 *   string or an error, which no key-based redaction can catch.
 */
import { pino } from "pino";

export type Logger = pino.Logger;
export type LogLevel = pino.LevelWithSilent;

/** Keys whose values never reach a log line. */
export const redactedKeys: readonly string[] = [
  "token",
  "accessToken",
  "access_token",
  "idToken",
  "id_token",
  "refreshToken",
  "refresh_token",
  "clientToken",
  "client_token",
  "sessionToken",
  "bearerToken",
  "jwt",
  "password",
  "passphrase",
  "secret",
  "secretAccessKey",
  "secret_access_key",
  "accessKeyId",
  "accountKey",
  "connectionString",
  "credentials",
  "privateKey",
  "private_key",
  "keyData",
  "certData",
  "authorization",
  "Authorization",
  "cookie",
  "x-vault-token",
  "X-Vault-Token",
];

/** How deep below the record's top level a redacted key is still found. */
export const redactDepth = 3;

/** pino redaction paths for `redactedKeys` at depths 0…`redactDepth` (`token`, `*.token`, `*.*.token`…). */
export function redactPaths(keys: readonly string[] = redactedKeys, depth = redactDepth): string[] {
  const paths: string[] = [];
  for (const key of keys) {
    const plain = /^[A-Za-z_$][\w$]*$/.test(key);
    for (let level = 0; level <= depth; level++) {
      const wildcards = Array.from({ length: level }, () => "*").join(".");
      if (plain) paths.push(wildcards === "" ? key : `${wildcards}.${key}`);
      else paths.push(`${wildcards}["${key}"]`);
    }
  }
  return paths;
}

export interface LoggerOptions {
  /** Minimum level; `LOG_LEVEL` or "info" by default. */
  readonly level?: LogLevel;
  /** Where lines go; stdout by default (tests pass a stream to read them back). */
  readonly destination?: pino.DestinationStream;
  /** Fields on every line, e.g. `{ component: "operator" }`. */
  readonly base?: Readonly<Record<string, unknown>>;
}

function levelFromEnv(): LogLevel | undefined {
  const value = process.env.LOG_LEVEL;
  const levels: readonly string[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  return value !== undefined && levels.includes(value) ? (value as LogLevel) : undefined;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const config: pino.LoggerOptions = {
    level: options.level ?? levelFromEnv() ?? "info",
    base: { ...(options.base ?? {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: redactPaths(), censor: "[REDACTED]" },
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}

/** The logger of one controller (or informer, or the elector): every line names it. */
export function componentLogger(root: Logger, component: string, name: string): Logger {
  return root.child({ [component]: name });
}

/** A logger that writes nothing: the default of every runtime part when none is given. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** `err` as a log field: message, code and HTTP status, no stack for expected failures. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { error: String(err) };
  const fields: Record<string, unknown> = { error: err.message, errorType: err.name };
  const extra = err as { code?: unknown; statusCode?: unknown; reason?: unknown };
  if (typeof extra.code === "string" || typeof extra.code === "number") fields.errorCode = extra.code;
  if (typeof extra.statusCode === "number") fields.statusCode = extra.statusCode;
  if (typeof extra.reason === "string") fields.reason = extra.reason;
  return fields;
}
