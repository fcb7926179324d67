/**
 * Admission and run time agree: for the string fields whose values the operator or executor
 * parses again at run time, the CRD's rules (evaluated by cel-lite from the generated schema)
 * accept exactly what the run-time parser accepts, except for the differences listed here on
 * purpose (what CEL cannot check, or where admission is deliberately stricter).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { clusterCrdManifest, restoreCrdManifest } from "../../../src/api/schema.ts";
import { parseSchedule } from "../../../src/backup/schedule.ts";
import { normalizePathPrefix } from "../../../src/snapshot/key.ts";
import { endpointHostProblem, parseTarget } from "../../../src/storage/target.ts";
import { parseDuration } from "../../../src/util/duration.ts";
import { hostileEndpoints } from "./bad-specs.ts";
import { schemaAt, stringViolations } from "./cel-lite.ts";

const clusterRoot = clusterCrdManifest().spec.versions[0]?.schema.openAPIV3Schema;
const restoreRoot = restoreCrdManifest().spec.versions[0]?.schema.openAPIV3Schema;
assert.ok(clusterRoot && restoreRoot);

function admits(path: string, value: string, root = clusterRoot): boolean {
  assert.ok(root);
  return stringViolations(schemaAt(root, path), value).length === 0;
}

function runs(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

/** `both`: admitted and accepted at run time; `neither`; `runtimeOnly`: admitted, refused at run time (CEL cannot tell); `admissionOnly`: refused at admission although the run-time parser would accept it. */
type Verdict = "both" | "neither" | "runtimeOnly" | "admissionOnly";

function verdict(admitted: boolean, accepted: boolean): Verdict {
  if (admitted && accepted) return "both";
  if (!admitted && !accepted) return "neither";
  return admitted ? "runtimeOnly" : "admissionOnly";
}

function table(
  name: string,
  path: string,
  run: (value: string) => unknown,
  cases: [string, Verdict][],
  root = clusterRoot,
) {
  describe(name, () => {
    for (const [value, expected] of cases) {
      test(`${JSON.stringify(value)} → ${expected}`, () => {
        assert.equal(
          verdict(
            admits(path, value, root),
            runs(() => run(value)),
          ),
          expected,
        );
      });
    }
  });
}

table("spec.backup.schedule ↔ parseSchedule", "spec.backup.schedule", (v) => parseSchedule(v), [
  ["* * * * *", "both"],
  ["0 3 * * *", "both"],
  ["*/15 0-6/2 1,15 JAN-jun mon-FRI", "both"],
  ["0 0 * * 7", "both"],
  ["0 0 1 1 *", "both"],
  ["0 0 29 2 *", "both"],
  ["@hourly", "both"],
  ["@daily", "both"],
  ["@weekly", "both"],
  ["@monthly", "both"],
  ["@yearly", "both"],
  ["@annually", "both"],
  ["@midnight", "both"],
  ["0  3 * * *", "both"],
  ["", "neither"],
  ["@reboot", "neither"],
  ["0 0 3 * * *", "neither"],
  ["0 3 * *", "neither"],
  ["0 0 ? * *", "neither"],
  ["0 0 L * *", "neither"],
  ["0 0 * * 1#2", "neither"],
  ["5/5 * * * *", "neither"],
  ["60 * * * *", "neither"],
  ["0 24 * * *", "neither"],
  ["0 0 0 * *", "neither"],
  ["0 0 * 13 *", "neither"],
  ["0 0 * * 8", "neither"],
  ["*/0 * * * *", "neither"],
  [" 0 3 * * *", "neither"],
  ["0 3 * * * ", "neither"],
  ["0\t3 * * * *", "neither"],
  // What CEL cannot check: steps beyond the field's range, backwards ranges, dates that never come.
  ["*/90 * * * *", "runtimeOnly"],
  ["5-1 * * * *", "runtimeOnly"],
  ["0 0 31 2 *", "runtimeOnly"],
  ["0 0 30 2 *", "runtimeOnly"],
]);

table("spec.backup.timeZone ↔ parseSchedule", "spec.backup.timeZone", (v) => parseSchedule("0 3 * * *", v), [
  ["UTC", "both"],
  ["Europe/Berlin", "both"],
  ["America/Argentina/Buenos_Aires", "both"],
  ["America/New_York", "both"],
  ["Etc/GMT+5", "both"],
  ["EST5EDT", "both"],
  ["Local", "neither"],
  ["", "neither"],
  ["+02:00", "neither"],
  ["Europe Berlin", "neither"],
  ["/Europe/Berlin", "neither"],
  ["Europe/", "neither"],
  // The tz database is not available to CEL.
  ["Mars/Phobos", "runtimeOnly"],
  ["Europe/Atlantis", "runtimeOnly"],
]);

table("spec.backup.retention.maxAge ↔ parseDuration", "spec.backup.retention.maxAge", (v) => parseDuration(v), [
  ["168h", "both"],
  ["7d", "both"],
  ["90m", "both"],
  ["30s", "both"],
  ["1h30m", "both"],
  ["1.5h", "both"],
  ["250ms", "both"],
  ["1500us", "both"],
  ["1500\u00b5s", "both"],
  ["1500\u03bcs", "both"],
  ["0s", "neither"],
  ["0h0m", "neither"],
  ["-1h", "neither"],
  ["7 days", "neither"],
  ["7", "neither"],
  ["", "neither"],
  ["1y", "neither"],
  // Stricter at admission: forms Go accepts but nobody documents.
  [".5h", "admissionOnly"],
  ["5.s", "admissionOnly"],
  [" 7d", "admissionOnly"],
  // Beyond Go's ~292 years: only the exact arithmetic knows.
  ["106752d", "runtimeOnly"],
]);

table("spec.backup.target.pathPrefix ↔ normalizePathPrefix", "spec.backup.target.pathPrefix", normalizePathPrefix, [
  ["", "both"],
  ["backups", "both"],
  ["team-a/openbao/backups", "both"],
  ["a/b/", "both"],
  ["a/b//", "both"],
  ["a..b/c.d", "both"],
  ["ünïcode/ok", "both"],
  ["/backups", "neither"],
  ["/", "neither"],
  ["a//b", "neither"],
  ["a///b/", "neither"],
  ["a/../b", "neither"],
  ["..", "neither"],
  ["./a", "neither"],
  ["a/.", "neither"],
  ["a/./", "neither"],
  ["a\\b", "neither"],
  ["a\u0000b", "neither"],
  ["a\nb", "neither"],
  ["a\u007fb", "neither"],
  ["a\u0085b", "neither"],
  ["x".repeat(512), "both"],
  ["x".repeat(513), "neither"],
  ["é".repeat(256), "both"],
  ["é".repeat(257), "neither"],
]);

table(
  "spec.backup.target.endpoint ↔ parseTarget",
  "spec.backup.target.endpoint",
  (v) => parseTarget({ bucket: "b", endpoint: v }),
  [
    ["https://s3.amazonaws.com", "both"],
    ["http://minio.storage:9000", "both"],
    ["http://127.0.0.1:10000/devstoreaccount1", "both"],
    ["https://[::1]:9000", "both"],
    ["https://s3.example.com/", "both"],
    ["s3.amazonaws.com", "neither"],
    ["ftp://files.example.com", "neither"],
    ["https://user:pw@s3.example.com", "neither"],
    ["https://s3.example.com/?x=1", "neither"],
    ["https://s3.example.com/#x", "neither"],
    ["https://", "neither"],
    ["https://exa mple.com", "neither"],
    // Stricter at admission: the URL parser lower-cases the scheme.
    ["HTTPS://s3.example.com", "admissionOnly"],
    ["http://10.0.0.7:9000", "both"],
    ["http://127.0.0.1:9000", "both"],
    ["https://[2001:db8::10]:9000", "both"],
    ["https://[2001:db8::ffff:1]", "both"],
    ["http://0bao.example.com", "both"],
    ["http://1e100.net", "both"],
    ["http://minio_1:9000", "both"],
    ...hostileEndpoints.map(([, url]): [string, Verdict] => [url, "neither"]),
    // The URL parser rejects these anyway; admission says why first.
    ["http://1.2.3.4.5", "neither"],
    ["http://[FE80::1%25eth0]", "neither"],
  ],
);

describe("hostile endpoints: admission and run time give a reason naming the field and the fix", () => {
  for (const [what, url] of hostileEndpoints) {
    test(`${what}: ${JSON.stringify(url)}`, () => {
      for (const path of ["spec.backup.target.endpoint", "spec.backup.openbaoAddresses.[]"]) {
        const field = path.replace(".[]", "");
        const messages = stringViolations(schemaAt(clusterRoot, path), url);
        assert.ok(messages.length > 0, `${path} admitted ${url}`);
        assert.ok(
          messages.every((m) => m.startsWith(field)),
          `${path}: every message names the field: ${messages.join(" | ")}`,
        );
      }
      assert.ok(
        stringViolations(schemaAt(restoreRoot, "spec.source.target.endpoint"), url).length > 0,
        `OpenBaoRestore spec.source.target.endpoint admitted ${url}`,
      );
      // Run time: the executor's own parsing (a spec that bypassed admission).
      assert.throws(
        () => parseTarget({ bucket: "b", endpoint: url }),
        (err: Error) =>
          /^target\.endpoint/.test(err.message) &&
          /(link-local|metadata|canonical|IPv4-mapped|not a URL)/.test(err.message),
      );
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {
        parsed = undefined;
      }
      if (parsed) assert.ok(endpointHostProblem(url), `endpointHostProblem accepted ${url}`);
    });
  }

  test("run time names what the URL parser would have connected to", () => {
    assert.throws(
      () => parseTarget({ bucket: "b", endpoint: "http://2852039166" }),
      /target\.endpoint.*"2852039166".*"169\.254\.169\.254".*four decimal numbers/,
    );
    assert.throws(
      () => parseTarget({ bucket: "b", endpoint: "http://[fd00:ec2::254]/latest" }),
      /target\.endpoint.*link-local or cloud metadata address \(\[fd00:ec2::254\]\)/,
    );
  });

  test("ordinary addresses pass the host policy", () => {
    for (const url of [
      "https://s3.eu-west-1.amazonaws.com",
      "http://127.0.0.1:9000",
      "http://10.0.0.7:9000",
      "https://[::1]:8200",
      "https://[2001:db8::10]:8200",
      "https://bao-0.bao.vault.svc:8200",
      "http://user@minio:9000",
    ]) {
      assert.equal(endpointHostProblem(url), undefined, url);
    }
  });
});

table(
  "spec.backup.target.roleArn ↔ parseTarget",
  "spec.backup.target.roleArn",
  (v) => parseTarget({ bucket: "b", roleArn: v }),
  [
    ["arn:aws:iam::123456789012:role/backup", "both"],
    ["arn:aws-us-gov:iam::123456789012:role/path/backup", "both"],
    ["backup-role", "neither"],
    // Stricter at admission: the executor only checks the arn: prefix.
    ["arn:aws:s3:::bucket", "admissionOnly"],
  ],
);

table(
  "spec.backup.target.encryption.kmsKeyId ↔ parseTarget",
  "spec.backup.target.encryption.kmsKeyId",
  (v) => parseTarget({ bucket: "b", encryption: { type: "aws:kms", kmsKeyId: v } }),
  [
    ["1234abcd-12ab-34cd-56ef-1234567890ab", "both"],
    ["arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "both"],
    ["alias/openbao-backups", "both"],
    ["arn:aws:kms:eu-west-1:123456789012:alias/openbao-backups", "both"],
    ["minio-key_1", "both"],
    ["my key", "neither"],
    ["/leading-slash", "neither"],
    ["key\nnext", "neither"],
  ],
);

table(
  "spec.backup.target.encryption.kmsKeyName ↔ parseTarget",
  "spec.backup.target.encryption.kmsKeyName",
  (v) => parseTarget({ provider: "gcs", bucket: "b", encryption: { kmsKeyName: v } }),
  [
    ["projects/my-project/locations/europe-west1/keyRings/backups/cryptoKeys/openbao", "both"],
    ["projects/example.com:p/locations/global/keyRings/r_1/cryptoKeys/k-1", "both"],
    ["projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "neither"],
    ["projects/p/locations/l/keyRings/r", "neither"],
    ["openbao", "neither"],
    ["projects/p/locations/l/keyRings/r/cryptoKeys/k/", "neither"],
  ],
);

table(
  "spec.backup.target.encryption.encryptionScope ↔ parseTarget",
  "spec.backup.target.encryption.encryptionScope",
  (v) =>
    parseTarget({ provider: "azure", bucket: "b", azure: { storageAccount: "a" }, encryption: { encryptionScope: v } }),
  [
    ["openbao-backups", "both"],
    ["s01", "both"],
    ["a".repeat(63), "both"],
    ["ab", "neither"],
    ["a".repeat(64), "neither"],
    ["Backups", "neither"],
    ["bad--scope", "neither"],
    ["-scope", "neither"],
  ],
);

table(
  "OpenBaoRestore spec.source.target.encryption.kmsKeyName ↔ parseTarget",
  "spec.source.target.encryption.kmsKeyName",
  (v) => parseTarget({ provider: "gcs", bucket: "b", encryption: { kmsKeyName: v } }),
  [
    ["projects/p/locations/l/keyRings/r/cryptoKeys/k", "both"],
    ["projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3", "neither"],
  ],
  restoreRoot,
);

table(
  "OpenBaoRestore spec.source.target.pathPrefix ↔ normalizePathPrefix",
  "spec.source.target.pathPrefix",
  normalizePathPrefix,
  [
    ["backups", "both"],
    ["../x", "neither"],
  ],
  restoreRoot,
);

describe("cel-lite refuses rule shapes it does not know", () => {
  test("an unknown atom throws instead of passing", () => {
    assert.throws(
      () =>
        stringViolations(
          { type: "string", "x-kubernetes-validations": [{ rule: "self.lowerAscii() == self", message: "m" }] },
          "x",
        ),
      /unsupported rule/,
    );
  });
});
