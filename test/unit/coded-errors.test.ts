/**
 * Every error class of the project is a `CodedError` of one layer, and the two mappings to
 * exit codes — the executor's `classify` (exit code and recorded reason, in backup and in
 * restore mode) and the CLI's `exitCodeOf` — decide by layer and code alone. The expected
 * values below are what both returned before the errors were coded (the `instanceof` chains),
 * recorded from that code, so this table proves the classification did not change. Messages
 * are also the old ones, byte for byte. The two exceptions are marked where they occur.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ScheduleError } from "../../src/backup/schedule.ts";
import { Refused } from "../../src/cli/auth-setup/report.ts";
import { type ExitCode, exitCodes } from "../../src/cli/exit-codes.ts";
import { exitCodeOf, KubeProblem } from "../../src/cli/shared.ts";
import { ConfigError } from "../../src/executor/config.ts";
import { classify, VerificationError } from "../../src/executor/failure.ts";
import { SecretNotFoundError } from "../../src/executor/required-secrets.ts";
import { UsageError } from "../../src/executor/settings.ts";
import { KubeConfigError } from "../../src/kube/config.ts";
import { FlagError } from "../../src/monitor/command.ts";
import { OpenBaoError } from "../../src/openbao/errors.ts";
import { KubeApiError } from "../../src/runtime/kube-http.ts";
import { KeyPartError, ManifestError, RetentionPolicyError, SnapshotArchiveError } from "../../src/snapshot/errors.ts";
import { StorageError, TargetConfigError } from "../../src/storage/errors.ts";
import { type CodedError, isCoded, type Layer } from "../../src/util/coded-error.ts";
import { DurationError } from "../../src/util/duration.ts";

const cause = new Error("the underlying failure");

/** [exit code, reason] as `classify` returns them. */
type Outcome = readonly [ExitCode, string];

interface Row {
  readonly error: CodedError<string>;
  readonly layer: Layer;
  readonly code: string;
  readonly name: string;
  readonly message: string;
  /** Whether the row's error was given `cause` (some constructors take none). */
  readonly withCause: boolean;
  readonly backup: Outcome;
  /** `classify` in restore mode, when it differs from backup mode. */
  readonly restore?: Outcome;
  readonly exitCodeOf: ExitCode;
  /** Fields of the class, checked as given. */
  readonly fields?: Readonly<Record<string, unknown>>;
}

const invalidConfig: Outcome = [exitCodes.config, "InvalidConfig"];
const unexpected: Outcome = [exitCodes.snapshot, "Unexpected"];

const openBaoRows = (
  [
    ["Unreachable", [exitCodes.snapshot, "OpenBaoUnreachable"], exitCodes.leaderDiscovery],
    ["AuthFailed", [exitCodes.auth, "AuthFailed"], exitCodes.auth],
    ["PermissionDenied", [exitCodes.auth, "PermissionDenied"], exitCodes.auth],
    // The CLI maps NoLeader to 4 and Unreachable to 3, the executor the other way round: as before.
    ["NoLeader", [exitCodes.leaderDiscovery, "NoLeader"], exitCodes.snapshot],
    ["SnapshotFailed", [exitCodes.snapshot, "SnapshotFailed"], exitCodes.snapshot],
    ["RestoreFailed", [exitCodes.snapshot, "RestoreFailed"], exitCodes.snapshot],
    ["BadResponse", [exitCodes.snapshot, "BadResponse"], exitCodes.snapshot],
  ] as const
).map(
  ([code, backup, cli]): Row => ({
    error: new OpenBaoError(code, `openbao ${code}`, { cause, status: 500, address: "https://bao-0:8200" }),
    layer: "openbao",
    code,
    name: "OpenBaoError",
    message: `openbao ${code}`,
    withCause: true,
    backup,
    exitCodeOf: cli,
    fields: { status: 500, address: "https://bao-0:8200" },
  }),
);

const storageRows = (
  ["NotFound", "AuthDenied", "Unreachable", "Throttled", "TooLarge", "SizeMismatch", "Aborted", "Other"] as const
).map(
  (code): Row => ({
    error: new StorageError(code, `storage ${code}`, {
      cause,
      provider: "s3",
      operation: "upload",
      key: "k",
      status: 503,
    }),
    layer: "storage",
    code,
    name: "StorageError",
    message: `storage ${code}`,
    withCause: true,
    backup: [exitCodes.storage, `Storage${code}`],
    exitCodeOf: exitCodes.storage,
    fields: { provider: "s3", operation: "upload", key: "k", status: 503 },
  }),
);

const rows: readonly Row[] = [
  // ── configuration ──
  {
    error: new ConfigError("BACKUP_BUCKET", "is required", { cause }),
    layer: "config",
    code: "InvalidConfig",
    name: "ConfigError",
    message: "BACKUP_BUCKET (--bucket): is required",
    withCause: true,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
    fields: { variable: "BACKUP_BUCKET" },
  },
  {
    error: new UsageError("unknown option --x"),
    layer: "config",
    code: "InvalidUsage",
    name: "UsageError",
    message: "unknown option --x",
    withCause: false,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
  },
  {
    // Its name was "UsageError" (the parent set it); now the class's own.
    error: new Refused("refusing to overwrite"),
    layer: "config",
    code: "InvalidUsage",
    name: "Refused",
    message: "refusing to overwrite",
    withCause: false,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
  },
  {
    // Was a plain Error (name "Error"; classify: 4 Unexpected). It never reaches classify or
    // exitCodeOf: monitorCommand catches it and exits 1 itself, which is now also its class's.
    error: new FlagError("--interval (MONITOR_INTERVAL_SECONDS) must be a whole number from 10 to 86400, got 'x'"),
    layer: "config",
    code: "InvalidUsage",
    name: "FlagError",
    message: "--interval (MONITOR_INTERVAL_SECONDS) must be a whole number from 10 to 86400, got 'x'",
    withCause: false,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
  },
  {
    error: new TargetConfigError("target.bucket", "is required"),
    layer: "config",
    code: "InvalidTarget",
    name: "TargetConfigError",
    message: "target.bucket: is required",
    withCause: false,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
    fields: { field: "target.bucket" },
  },
  {
    error: new KeyPartError("pathPrefix", "must not contain .."),
    layer: "config",
    code: "InvalidKeyPart",
    name: "KeyPartError",
    message: "pathPrefix: must not contain ..",
    withCause: false,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
    fields: { field: "pathPrefix" },
  },
  {
    error: new DurationError("7x", 'unknown unit "x"', "spec.maxAge"),
    layer: "config",
    code: "InvalidDuration",
    name: "DurationError",
    message:
      'spec.maxAge: invalid duration "7x": unknown unit "x"; use a number followed by a unit (ns, us, ms, s, m, h, d), optionally repeated, e.g. "168h", "7d", "90m", "30s", "1h30m"',
    withCause: false,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
    fields: { value: "7x", field: "spec.maxAge" },
  },
  {
    error: new RetentionPolicyError("maxCount", "must be at least 1"),
    layer: "config",
    code: "InvalidRetentionPolicy",
    name: "RetentionPolicyError",
    message: "retention.maxCount: must be at least 1",
    withCause: false,
    backup: invalidConfig,
    exitCodeOf: exitCodes.config,
    fields: { field: "maxCount" },
  },
  {
    // The executor never parses a schedule: classify leaves it Unexpected, as it did.
    error: new ScheduleError("spec.backup.schedule", "* *", "is not a cron expression"),
    layer: "config",
    code: "InvalidSchedule",
    name: "ScheduleError",
    message: 'spec.backup.schedule: "* *" is not a cron expression',
    withCause: false,
    backup: unexpected,
    exitCodeOf: exitCodes.config,
    fields: { field: "spec.backup.schedule", value: "* *" },
  },
  {
    error: new SecretNotFoundError("tls-secret", "Secret tls-secret is missing"),
    layer: "config",
    code: "SecretNotFound",
    name: "SecretNotFoundError",
    message: "Secret tls-secret is missing",
    withCause: false,
    backup: [exitCodes.config, "SecretNotFound"],
    exitCodeOf: exitCodes.config,
    fields: { secret: "tls-secret" },
  },
  // ── snapshot ──
  {
    error: new ManifestError("not JSON", { field: "sha256", cause }),
    layer: "snapshot",
    code: "ManifestInvalid",
    name: "ManifestError",
    message: 'manifest field "sha256": not JSON',
    withCause: true,
    backup: [exitCodes.verification, "ManifestInvalid"],
    exitCodeOf: exitCodes.verification,
    fields: { field: "sha256" },
  },
  {
    error: new SnapshotArchiveError("SnapshotCorrupt", "gzip", "not gzip", { cause }),
    layer: "snapshot",
    code: "SnapshotCorrupt",
    name: "SnapshotArchiveError",
    message: "corrupt snapshot: not gzip",
    withCause: true,
    backup: [exitCodes.snapshot, "SnapshotCorrupt"],
    restore: [exitCodes.verification, "SnapshotCorrupt"],
    exitCodeOf: exitCodes.verification,
    fields: { problem: "gzip", file: undefined },
  },
  {
    error: new SnapshotArchiveError("SnapshotTruncated", "tar", "cut short", { file: "state.bin" }),
    layer: "snapshot",
    code: "SnapshotTruncated",
    name: "SnapshotArchiveError",
    message: "truncated snapshot: cut short",
    withCause: false,
    backup: [exitCodes.snapshot, "SnapshotTruncated"],
    restore: [exitCodes.verification, "SnapshotTruncated"],
    exitCodeOf: exitCodes.verification,
    fields: { problem: "tar", file: "state.bin" },
  },
  // ── verification ──
  {
    error: new VerificationError("SizeMismatch", "sizes differ", { cause }),
    layer: "verification",
    code: "SizeMismatch",
    name: "VerificationError",
    message: "sizes differ",
    withCause: true,
    backup: [exitCodes.verification, "SizeMismatch"],
    exitCodeOf: exitCodes.verification,
    fields: { reason: "SizeMismatch" },
  },
  {
    error: new VerificationError("ChecksumMismatch", "sums differ"),
    layer: "verification",
    code: "ChecksumMismatch",
    name: "VerificationError",
    message: "sums differ",
    withCause: false,
    backup: [exitCodes.verification, "ChecksumMismatch"],
    exitCodeOf: exitCodes.verification,
    fields: { reason: "ChecksumMismatch" },
  },
  // ── OpenBao, storage ──
  ...openBaoRows,
  ...storageRows,
  // ── Kubernetes: classify has no case for them (Unexpected); exitCodeOf uses a KubeProblem's ──
  {
    error: new KubeProblem(exitCodes.auth, "forbidden (403)", { cause }),
    layer: "kube",
    code: "KubeAccessDenied",
    name: "KubeProblem",
    message: "forbidden (403)",
    withCause: true,
    backup: unexpected,
    exitCodeOf: exitCodes.auth,
    fields: { exitCode: exitCodes.auth },
  },
  {
    error: new KubeProblem(exitCodes.config, "not found (404)", { cause }),
    layer: "kube",
    code: "KubeMisconfigured",
    name: "KubeProblem",
    message: "not found (404)",
    withCause: true,
    backup: unexpected,
    exitCodeOf: exitCodes.config,
    fields: { exitCode: exitCodes.config },
  },
  {
    error: new KubeConfigError("/nope", "ENOENT", { cause }),
    layer: "kube",
    code: "InvalidKubeconfig",
    name: "KubeConfigError",
    message: "cannot load the kubeconfig /nope (ENOENT)",
    withCause: true,
    backup: unexpected,
    exitCodeOf: exitCodes.snapshot,
    fields: { where: "/nope", reason: "ENOENT" },
  },
  {
    error: new KubeApiError("GET /api: 500", { statusCode: 500, reason: "InternalError", cause }),
    layer: "kube",
    code: "KubeApiFailed",
    name: "KubeApiError",
    message: "GET /api: 500",
    withCause: true,
    backup: unexpected,
    exitCodeOf: exitCodes.snapshot,
    fields: { statusCode: 500, reason: "InternalError" },
  },
  {
    // A coded error no case claims still meets the signal fallback.
    error: new KubeApiError("GET /api: terminated by signal"),
    layer: "kube",
    code: "KubeApiFailed",
    name: "KubeApiError",
    message: "GET /api: terminated by signal",
    withCause: false,
    backup: [exitCodes.snapshot, "Terminated"],
    exitCodeOf: exitCodes.snapshot,
    fields: { statusCode: undefined, reason: undefined },
  },
];

describe("coded errors", () => {
  for (const row of rows) {
    const label = `${row.name} ${row.code}`;

    test(`${label}: layer, code, name, message, fields and cause`, () => {
      const { error } = row;
      assert.ok(error instanceof Error);
      assert.ok(isCoded(error));
      assert.equal(error.layer, row.layer);
      assert.equal(error.code, row.code);
      assert.equal(error.name, row.name);
      assert.equal(error.message, row.message);
      for (const [field, value] of Object.entries(row.fields ?? {})) {
        assert.equal((error as unknown as Record<string, unknown>)[field], value, field);
      }
      if (row.withCause) assert.equal(error.cause, cause);
      else assert.ok(!("cause" in error), "no cause was given, none is set");
    });

    test(`${label}: classify and exitCodeOf`, () => {
      const backup = classify(row.error, [], "backup");
      assert.deepEqual([backup.exitCode, backup.reason], row.backup);
      assert.equal(backup.message, row.message);
      const restore = classify(row.error, [], "restore");
      assert.deepEqual([restore.exitCode, restore.reason], row.restore ?? row.backup);
      assert.equal(exitCodeOf(row.error), row.exitCodeOf);
    });
  }

  test("every layer has a row", () => {
    const layers: readonly Layer[] = ["config", "openbao", "storage", "snapshot", "verification", "kube"];
    assert.deepEqual(new Set(rows.map((r) => r.layer)), new Set(layers));
  });

  test("a message passes through redact", () => {
    const error = new ConfigError("BACKUP_BUCKET", "s3cr3t-value is not a bucket name");
    assert.equal(
      classify(error, ["s3cr3t-value"]).message,
      "BACKUP_BUCKET (--bucket): [redacted] is not a bucket name",
    );
  });
});

describe("uncoded errors", () => {
  const uncoded: readonly [string, unknown, Outcome][] = [
    ["an AbortError", Object.assign(new Error("aborted"), { name: "AbortError" }), [exitCodes.snapshot, "Terminated"]],
    ["a signal", new Error("child terminated by signal SIGTERM"), [exitCodes.snapshot, "Terminated"]],
    ["a plain Error", new Error("boom"), unexpected],
    ["a string", "boom", unexpected],
  ];
  for (const [label, error, outcome] of uncoded) {
    test(`${label} is not coded and classifies as before`, () => {
      assert.equal(isCoded(error), false);
      for (const mode of ["backup", "restore"] as const) {
        const result = classify(error, [], mode);
        assert.deepEqual([result.exitCode, result.reason], outcome);
      }
      assert.equal(exitCodeOf(error), exitCodes.snapshot);
    });
  }
});
