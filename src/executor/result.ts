/**
 * How the executor reports: one JSON line to the termination-message path (read by the
 * operator from the Pod's terminated state) and one human line on stdout. Nothing else.
 * Kubernetes keeps at most 4096 bytes of a termination message, so the line is kept well
 * under that: long messages are cut, lists are summarised as counts.
 */
import { existsSync, writeFileSync } from "node:fs";
import { controlCharacterPattern, dnsLabelPattern, jsRegExp, maxDestinationNameLength } from "../api/patterns.ts";
import type { ExitCode } from "../cli/exit-codes.ts";
import type { DrillOutcome } from "../drill/outcome.ts";
import { redact } from "../util/redact.ts";

export const resultFormatVersion = 1;
const maxMessageChars = 1000;

export interface RetentionOutcome {
  /** Verified snapshots kept (with a manifest, or the one just written). */
  readonly kept: number;
  /** Snapshots deleted, verified or not. */
  readonly deleted: number;
  readonly failed: number;
  /**
   * Snapshots without a manifest that retention kept (absent when none): leftovers of failed
   * runs, or a run still writing its manifest. They take no `maxCount` slot.
   */
  readonly unverified?: number;
  /** Their keys, newest first: for the human line only, never in the termination message. */
  readonly unverifiedKeys?: readonly string[];
  /**
   * Snapshots retention would delete but a lock holds (object lock retention or a legal hold,
   * a GCS retention policy or hold, an Azure immutability policy): kept and not a failure;
   * absent when none. `lockedUntil` is the earliest time one of them can go (absent when only
   * legal holds keep them: those never expire by themselves).
   */
  readonly locked?: number;
  readonly lockedUntil?: string;
  /**
   * Snapshots deleted from view whose older versions the store keeps (a versioned bucket where
   * they could not be removed): absent when none. `versionsNote` says why and what to do.
   */
  readonly versionsKept?: number;
  readonly versionsNote?: string;
  /** Set when retention could not run at all (listing failed); the backup still counts. */
  readonly error?: string;
}

/**
 * One destination's outcome, for a run with several (`BACKUP_ADDITIONAL_TARGETS`); the main
 * target first. Messages are cut short: the whole result must fit a termination message.
 */
export interface DestinationReport {
  readonly name: string;
  readonly ok: boolean;
  /** `s3://bucket`, `gcs://bucket`, `azure://account/container`. */
  readonly location: string;
  /** The snapshot key there (the same name under that destination's pathPrefix). */
  readonly key: string;
  readonly reason?: string;
  readonly message?: string;
  readonly retention?: RetentionOutcome;
}

export interface BackupSuccess {
  readonly mode: "backup";
  readonly ok: true;
  readonly key: string;
  readonly size: number;
  readonly sha256: string;
  readonly durationMs: number;
  readonly raftIndex: number;
  readonly raftTerm: number;
  readonly openbaoVersion: string | undefined;
  readonly startedAt: string;
  readonly retention: RetentionOutcome | undefined;
  /** Multipart uploads of earlier failed runs that this run aborted (absent when none). */
  readonly abandonedUploadsAborted?: number;
  /** Every destination's outcome, when there are several; `retention` above is the main target's. */
  readonly destinations?: readonly DestinationReport[];
  /** With BACKUP_CANARY_PATH: the KV version of the canary written before the snapshot. */
  readonly canaryVersion?: number;
  /** With BACKUP_CANARY_PATH: why no canary was written (the backup went on without one). */
  readonly canaryProblem?: string;
}

export interface RestoreSuccess {
  readonly mode: "restore";
  readonly ok: true;
  /** The key restored; with `--key latest`, the key it resolved to. */
  readonly key: string;
  readonly size: number;
  readonly sha256: string;
  readonly durationMs: number;
  readonly startedAt: string;
  /** Present when the key was chosen as the newest verified backup (`--key latest`). */
  readonly latest?: true;
  /**
   * Present with `--expect-sealed`, when OpenBao applied the snapshot and sealed itself: the
   * restored data opens with the unseal keys (or KMS / recovery keys) of the cluster the
   * snapshot came from.
   */
  readonly sealed?: true;
}

/** `confirm`: the backup of a Job whose result was lost, found in storage (src/executor/confirm.ts). */
export interface BackupConfirmed {
  readonly mode: "confirm";
  readonly ok: true;
  readonly key: string;
  /** The backup's facts, from its manifest. */
  readonly size: number;
  readonly sha256: string;
  readonly raftIndex: number;
  readonly raftTerm: number;
  readonly openbaoVersion: string | undefined;
  /** When the backup was taken (its manifest's `created`). */
  readonly created: string;
  /** This run's own start and duration (not the backup's). */
  readonly startedAt: string;
  readonly durationMs: number;
}

/**
 * `drill`: a stored backup restored into a throwaway OpenBao (src/drill/), with what it proved
 * (`outcome`: "loaded" or "verified") and, verified, the canary read back and the counts.
 */
export interface DrillSuccess extends DrillOutcome {
  readonly mode: "drill";
  readonly ok: true;
  /** The backup's size and SHA-256, from its manifest (the drill checked the bytes against both). */
  readonly size: number;
  readonly sha256: string;
  readonly startedAt: string;
  /** Present when the key was chosen as the newest verified backup (`--key latest`). */
  readonly latest?: true;
}

export interface Failure {
  readonly mode: "backup" | "restore" | "confirm" | "drill";
  readonly ok: false;
  readonly exitCode: ExitCode;
  /** Short stable code, e.g. "SnapshotFailed", for status.lastFailureReason. */
  readonly reason: string;
  readonly message: string;
  /** The snapshot key; with `--key latest`, the key it resolved to (undefined if it resolved to none). */
  readonly key: string | undefined;
  readonly durationMs: number;
  readonly startedAt: string;
  /** Backup with several destinations: every destination's outcome (some may have succeeded). */
  readonly destinations?: readonly DestinationReport[];
}

export type ExecutorResult = BackupSuccess | RestoreSuccess | BackupConfirmed | DrillSuccess | Failure;

export function resultLine(result: ExecutorResult): string {
  let shaped: ExecutorResult = result;
  if (result.ok === false && result.message.length > maxMessageChars) {
    shaped = { ...result, message: `${result.message.slice(0, maxMessageChars)}…` };
  } else if (result.ok && result.mode === "backup" && result.retention?.unverifiedKeys !== undefined) {
    // A list of keys could outgrow the 4096 bytes Kubernetes keeps: the count stays, the keys go.
    const { unverifiedKeys: _keys, ...retention } = result.retention;
    shaped = { ...result, retention };
  }
  const line = JSON.stringify({ v: resultFormatVersion, ...shaped });
  if (line.length <= maxLineChars || !("destinations" in shaped) || shaped.destinations === undefined) return line;
  // Several destinations with long messages: their messages go first (the reasons stay), then
  // their retention; the human line on stdout still has everything.
  const lean = shaped.destinations.map(({ message: _m, retention: _r, ...d }) => d);
  return JSON.stringify({ v: resultFormatVersion, ...shaped, destinations: lean });
}

/** Kubernetes keeps 4096 bytes of a termination message; the line stays under it. */
const maxLineChars = 3900;

/** How many unverified keys the human line names before it says how many more there are. */
const maxUnverifiedKeysShown = 5;

function unverifiedText(retention: RetentionOutcome): string {
  if (!retention.unverified) return "";
  const keys = retention.unverifiedKeys ?? [];
  const shown = keys.slice(0, maxUnverifiedKeysShown).join(", ");
  const more = keys.length > maxUnverifiedKeysShown ? ` and ${keys.length - maxUnverifiedKeysShown} more` : "";
  return `, kept ${retention.unverified} without a manifest (not verified, not counted${shown ? `: ${shown}${more}` : ""})`;
}

/** With a canary asked for: its version, or the warning that the backup has none. */
function canaryText(result: BackupSuccess): string {
  if (result.canaryProblem !== undefined) {
    return `; WARNING: no canary was written, a drill cannot verify this backup's data: ${result.canaryProblem}`;
  }
  return result.canaryVersion === undefined ? "" : `; canary version ${result.canaryVersion}`;
}

/** With several destinations: where the backup is, and which destination failed and why. */
function destinationsText(destinations: readonly DestinationReport[] | undefined): string {
  if (destinations === undefined) return "";
  const each = destinations.map((d) =>
    d.ok ? `${d.name} ${d.location} ok` : `${d.name} ${d.location} FAILED (${d.reason ?? "?"}: ${d.message ?? ""})`,
  );
  return `; destinations: ${each.join("; ")}`;
}

function lockedText(retention: RetentionOutcome): string {
  const locked = retention.locked
    ? `, kept ${retention.locked} a lock holds (${retention.lockedUntil ? `the first can go after ${retention.lockedUntil}` : "legal hold"})`
    : "";
  const versions = retention.versionsKept
    ? `, ${retention.versionsKept} deleted but older versions kept (${retention.versionsNote ?? "versioned bucket"})`
    : "";
  return `${locked}${versions}`;
}

export function humanLine(result: ExecutorResult): string {
  const seconds = (result.durationMs / 1000).toFixed(1);
  if (!result.ok)
    return `bao-backup ${result.mode} failed (${result.reason}, exit ${result.exitCode}) after ${seconds}s: ${result.message}`;
  const mib = (result.size / 1024 / 1024).toFixed(1);
  if (result.mode === "confirm") {
    return `found ${result.key} (${mib} MiB, raft index ${result.raftIndex}, sha256 ${result.sha256.slice(0, 12)}…, taken ${result.created}) with its manifest, in ${seconds}s`;
  }
  if (result.mode === "drill") {
    const which = result.latest ? " (the newest verified backup)" : "";
    return `drill ${result.outcome}${which}: ${result.message} (${mib} MiB, sha256 ${result.sha256.slice(0, 12)}…) in ${seconds}s`;
  }
  if (result.mode === "restore") {
    const which = result.latest ? " (the newest verified backup)" : "";
    const sealed = result.sealed
      ? "; OpenBao sealed itself: unseal it with the unseal keys (or recovery keys / KMS key) of the cluster the snapshot came from"
      : "";
    return `restored ${result.key}${which} (${mib} MiB, sha256 ${result.sha256.slice(0, 12)}…) in ${seconds}s${sealed}`;
  }
  const retention = result.retention
    ? `; retention kept ${result.retention.kept}, deleted ${result.retention.deleted}, failed ${result.retention.failed}${lockedText(result.retention)}${unverifiedText(result.retention)}${result.retention.error ? ` (${result.retention.error})` : ""}`
    : "";
  return `backed up ${result.key} (${mib} MiB, raft index ${result.raftIndex}, sha256 ${result.sha256.slice(0, 12)}…) in ${seconds}s${retention}${destinationsText(result.destinations)}${canaryText(result)}`;
}

/**
 * Writes the JSON line; a failure to write it must not mask the run's own outcome. With
 * `onlyIfExists` (the default path, not asked for) nothing is written where the file is not
 * there already: the kubelet creates it in a container, a workstation has none.
 */
export function writeTerminationMessage(
  path: string,
  result: ExecutorResult,
  options: { onlyIfExists?: boolean } = {},
): string | undefined {
  if (options.onlyIfExists === true && !existsSync(path)) return undefined;
  try {
    writeFileSync(path, `${resultLine(result)}\n`);
    return undefined;
  } catch (err) {
    return `could not write the termination message to ${path}: ${(err as Error).message}`;
  }
}

/** What the operator trusts from a termination message: only well-typed fields, bounded. */
export interface ReportedResult {
  readonly ok: boolean;
  readonly key: string | undefined;
  readonly size: number | undefined;
  readonly sha256: string | undefined;
  readonly durationMs: number | undefined;
  readonly raftIndex: number | undefined;
  readonly reason: string | undefined;
  readonly message: string | undefined;
  readonly retentionDeleted: number | undefined;
  readonly retentionFailed: number | undefined;
  /** Retention could not run at all (its listing failed); the backup itself still counts. */
  readonly retentionError?: boolean | undefined;
  /** A backup with several destinations: each one's outcome (names checked, messages sanitized). */
  readonly destinations?: readonly ReportedDestination[] | undefined;
  /** A backup asked to write a canary that could not (sanitized): it went on without one. */
  readonly canaryProblem?: string | undefined;
  /** A drill that passed: what it proved (src/drill/outcome.ts). */
  readonly drill?: ReportedDrill | undefined;
}

/** A drill's proof as the operator records it in `status.backup.lastDrill`. */
export interface ReportedDrill {
  readonly outcome: "loaded" | "verified";
  readonly sealType: string | undefined;
  readonly canaryVersion: number | undefined;
  readonly secretMounts: number | undefined;
  readonly authMethods: number | undefined;
}

function drillOf(o: Record<string, unknown>): ReportedDrill | undefined {
  if (o.mode !== "drill" || o.ok !== true || (o.outcome !== "loaded" && o.outcome !== "verified")) return undefined;
  const canary = typeof o.canary === "object" && o.canary !== null ? (o.canary as Record<string, unknown>) : {};
  return {
    outcome: o.outcome,
    sealType: str(o.sealType, 64, /^[a-z][a-z0-9_-]*$/),
    canaryVersion: count(canary.version),
    secretMounts: count(o.secretMounts),
    authMethods: count(o.authMethods),
  };
}

export interface ReportedDestination {
  readonly name: string;
  readonly ok: boolean;
  readonly location: string | undefined;
  readonly key: string | undefined;
  readonly reason: string | undefined;
  readonly message: string | undefined;
}

const maxReportedDestinations = 5;

function destinationsOf(value: unknown): ReportedDestination[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: ReportedDestination[] = [];
  for (const item of value.slice(0, maxReportedDestinations)) {
    if (typeof item !== "object" || item === null) continue;
    const d = item as Record<string, unknown>;
    const name = str(d.name, maxDestinationNameLength, jsRegExp(dnsLabelPattern));
    if (name === undefined || typeof d.ok !== "boolean") continue;
    const message = sanitizedMessage(d.message);
    out.push({
      name,
      ok: d.ok,
      location: str(d.location, 512, /^(s3|gcs|azure):\/\/[^\s]+$/),
      key: str(d.key, 1024, noControlCharacters),
      reason: str(d.reason, 64, /^[A-Za-z][A-Za-z0-9]*$/),
      message: message === undefined ? undefined : message.slice(0, 300),
    });
  }
  return out.length > 0 ? out : undefined;
}

const maxReadChars = 8192;
/** The longest failure message taken from a termination message (the executor writes at most 1001). */
export const maxReportedMessageChars = 1024;

// C0/C1 controls (ANSI escapes, newlines, NUL) and bidi overrides: nothing that could rewrite a
// terminal line or disguise text in `kubectl describe` output reaches status or an Event.
const unsafeCharacters = new RegExp(`${controlCharacterPattern}|[\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]`, "gu");
const noControlCharacters = new RegExp(`^(?!.*${controlCharacterPattern})`, "su");

function str(value: unknown, max: number, pattern?: RegExp): string | undefined {
  if (typeof value !== "string" || value.length > max) return undefined;
  return pattern && !pattern.test(value) ? undefined : value;
}

/**
 * A failure message from a termination message as it may reach status and Events: controls
 * replaced, anything token- or JWT-shaped redacted (the executor already redacts its own
 * secrets; this guards against any other writer), cut to `maxReportedMessageChars`.
 */
function sanitizedMessage(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const clean = redact(value.replace(unsafeCharacters, " ")).trim();
  if (clean === "") return undefined;
  return clean.length > maxReportedMessageChars ? `${clean.slice(0, maxReportedMessageChars)}…` : clean;
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * Parses a termination message written by the executor. Anything else — empty, huge, not
 * JSON, another program's output, `ok` not a boolean — yields undefined; the operator then
 * records the Job as failed without a readable result and never copies the text. Fields are
 * checked one by one, never trusted wholesale: a field of the wrong type is dropped, unknown
 * fields are ignored, and the one free-text field (`message`) is sanitized and bounded.
 */
export function parseResultLine(text: string | undefined): ReportedResult | undefined {
  if (text === undefined || text.length === 0 || text.length > maxReadChars) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text.trim().split("\n").pop() ?? "");
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  if (typeof o.ok !== "boolean") return undefined;
  const retention =
    typeof o.retention === "object" && o.retention !== null ? (o.retention as Record<string, unknown>) : {};
  return {
    ok: o.ok,
    key: str(o.key, 1024, noControlCharacters),
    size: count(o.size),
    sha256: str(o.sha256, 64, /^[0-9a-f]{64}$/),
    durationMs: count(o.durationMs),
    raftIndex: count(o.raftIndex),
    reason: str(o.reason, 64, /^[A-Za-z][A-Za-z0-9]*$/),
    message: sanitizedMessage(o.message),
    retentionDeleted: count(retention.deleted),
    retentionFailed: count(retention.failed),
    retentionError: typeof retention.error === "string" && retention.error !== "" ? true : undefined,
    destinations: destinationsOf(o.destinations),
    canaryProblem: sanitizedMessage(o.canaryProblem),
    drill: drillOf(o),
  };
}
