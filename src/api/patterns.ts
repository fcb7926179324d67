/**
 * Regular expressions shared by the CRD schema (CEL `matches()` and OpenAPI `pattern`, both
 * RE2) and the TypeScript code that checks the same values at run time (JavaScript RegExp).
 * Every pattern here is written in the common subset of the two dialects: no look-around, no
 * back-references, no `\x{…}`, no named groups, and `(?i:…)` only as a scoped group. Tests
 * run each one through JavaScript against tables of accepted and rejected values, and compare
 * it with the run-time checks it mirrors (`parseSchedule`, `normalizePathPrefix`,
 * `parseTarget`, `parseDuration`), so admission and run time agree.
 *
 * Where admission is stricter than run time (e.g. a duration with a leading `.`), the value was
 * never one the seeds documented; where run time is stricter (a step larger than the field's
 * range, a time zone that is not in the tz database, a schedule that never fires), CEL cannot
 * express the check and the operator reports it in a condition.
 */

// ── cron ────────────────────────────────────────────────────────────────────────────────────

const step = "/[1-9][0-9]?";

// One field: a comma list of `*`, `*/n`, `v`, `v-v`, `v-v/n`, with `value` the field's values.
function cronField(value: string): string {
  const item = `(\\*(${step})?|(${value})(-(${value})(${step})?)?)`;
  return `${item}(,${item})*`;
}

const minute = "[0-5]?[0-9]";
const hour = "[01]?[0-9]|2[0-3]";
const dayOfMonth = "0?[1-9]|[12][0-9]|3[01]";
const month = "0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)";
const dayOfWeek = "[0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)";

/** The nicknames accepted besides five fields (`@annually` and `@midnight` as robfig/cron has them). */
export const cronNicknames = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"] as const;

/**
 * A standard five-field cron expression (minute hour day-of-month month day-of-week; names for
 * months and weekdays; `7` is Sunday too) or a nickname. No seconds field, no `?`, `L`, `W`
 * or `#`: what Kubernetes CronJob users already write.
 */
export const cronSchedulePattern =
  `^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)` +
  `|(${cronField(minute)}) +(${cronField(hour)}) +(${cronField(dayOfMonth)}) +(${cronField(month)}) +(${cronField(dayOfWeek)}))$`;

/**
 * An IANA time zone name's shape (`UTC`, `Europe/Berlin`, `America/Argentina/Buenos_Aires`,
 * `Etc/GMT+5`, `EST5EDT`). Whether the name exists in the tz database cannot be checked by
 * CEL; `parseSchedule` checks it against the runtime's database.
 */
export const timeZonePattern = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";

// ── durations ───────────────────────────────────────────────────────────────────────────────

/** `168h`, `7d`, `90m`, `1h30m`, `1.5h`: Go durations plus `d`, as `parseDuration` reads them. */
export const durationPattern = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h|d))+$";

/** A duration made only of zeros (`0s`, `0h0m`), which `parseDuration` refuses. */
export const zeroDurationPattern = "^(0+(\\.0+)?(ns|us|µs|μs|ms|s|m|h|d))+$";

// ── object storage ──────────────────────────────────────────────────────────────────────────

/** C0 and C1 control characters (`normalizePathPrefix` refuses them). */
export const controlCharacterPattern = "[\\x00-\\x1f\\x7f-\\x9f]";

/** A `.` or `..` segment of a `/`-separated path. */
export const dotSegmentPattern = "(^|/)\\.\\.?(/|$)";

/** An empty segment (`//`) before another segment; trailing slashes alone are trimmed, not refused. */
export const emptySegmentPattern = "//+[^/]";

/**
 * `http(s)://host[:port][/path]`, no credentials, query or fragment (mirrors `parseTarget`).
 * The host is an ASCII DNS name or a bracketed IPv6 literal: no `%`-escapes, no non-ASCII
 * (IDNA maps full-width digits and `。` to an IPv4 address) and no trailing dot, so the host
 * the rules below look at is the host a URL parser connects to.
 */
export const endpointPattern =
  "^https?://([A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[^\\s?#]*)?$";

/** The end of an endpoint's host: a port, a path or nothing. */
const hostEnd = "([:/].*)?$";

/**
 * Endpoints whose host is link-local or a cloud metadata service: 169.254.0.0/16 (AWS, GCP,
 * Azure, OpenStack metadata at 169.254.169.254), fe80::/10, AWS's fd00:ec2::/32 (metadata,
 * DNS, time), Alibaba's 100.100.100.200, and the metadata host names. A Job that sends
 * credentials or a snapshot there would hand them to the node's metadata service.
 */
export const linkLocalEndpointPattern =
  "^https?://(169\\.254\\.[0-9]+\\.[0-9]+|100\\.100\\.100\\.200" +
  "|(?i:metadata|metadata\\.google\\.internal|instance-data|instance-data\\.ec2\\.internal)" +
  "|\\[(?i:fe[89ab][0-9a-f]:[0-9a-f:.]*|fd00:0?ec2:[0-9a-f:.]*)\\])" +
  hostEnd;

/**
 * An endpoint whose host a URL parser reads as an IPv4 address: its last label is a number
 * (decimal, `0x` hex or octal), which WHATWG URL (Node's `fetch`) turns into an address —
 * `2852039166`, `0xA9FEA9FE`, `0251.0376.0251.0376` and `169.254.43518` all mean 169.254.169.254.
 */
export const numericHostEndpointPattern = `^https?://([A-Za-z0-9_-]+\\.)*(0[xX][0-9A-Fa-f]*|[0-9]+)${hostEnd}`;

const octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

/** An endpoint whose host is an IPv4 address in the one canonical form: four decimal octets, no leading zeros. */
export const canonicalIPv4EndpointPattern = `^https?://${octet}(\\.${octet}){3}${hostEnd}`;

/**
 * An IPv6 literal that is an IPv4-mapped address (`[::ffff:169.254.169.254]`,
 * `[::ffff:a9fe:a9fe]`, `[0:0:0:0:0:ffff:…]`) or written with a dotted IPv4 tail
 * (`[::1.2.3.4]`): a dual-stack socket connects to the IPv4 address, so it must be written as one.
 */
export const embeddedIPv4EndpointPattern = `^https?://\\[([0:]*:(?i:ffff):[0-9A-Fa-f:.]*|[0-9A-Fa-f:]*\\.[0-9.]*)\\]${hostEnd}`;

/** A bucket or container name: no `/` (folders go in pathPrefix), no spaces. Azure's `$root`/`$web` allowed. */
export const bucketPattern = "^\\$?[A-Za-z0-9][A-Za-z0-9._-]*$";

/** Azure container names: lower case, digits and single hyphens, or the special `$root` / `$web`. */
export const azureContainerPattern = "^([a-z0-9]+(-[a-z0-9]+)*|\\$root|\\$web)$";

/** Azure storage account names: 3–24 lower-case letters and digits. */
export const azureStorageAccountPattern = "^[a-z0-9]{3,24}$";

/** A GCP project ID (6–30 characters), or a legacy domain-scoped one (`example.com:project`). */
export const gcsProjectPattern = "^[a-z][a-z0-9.:-]*[a-z0-9]$";

/**
 * An SSE-KMS key for S3: a key id, key ARN, alias (`alias/<name>`) or alias ARN on AWS, a key
 * name on S3-compatible stores (MinIO's KMS). No spaces, no control characters.
 */
export const s3KmsKeyIdPattern = "^[A-Za-z0-9][A-Za-z0-9:/_.+=@-]*$";

/** A Cloud KMS key for GCS (CMEK): `projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`, no version. */
export const gcsKmsKeyNamePattern =
  "^projects/[A-Za-z0-9_.:-]+/locations/[A-Za-z0-9_-]+/keyRings/[A-Za-z0-9_-]+/cryptoKeys/[A-Za-z0-9_-]+$";

/** An Azure encryption scope: 3–63 lower-case letters, digits and single hyphens (length checked separately). */
export const azureEncryptionScopePattern = "^[a-z0-9]+(-[a-z0-9]+)*$";

/** An AWS region, or any similar token for S3-compatible stores. */
export const regionPattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$";

/** An IAM role ARN in any partition. */
export const roleArnPattern = "^arn:[a-z][a-z0-9-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$";

// ── Kubernetes names ────────────────────────────────────────────────────────────────────────

/** A DNS-1123 subdomain: the name of a Secret, an OpenBaoCluster, … (at most 253, checked separately). */
export const dnsSubdomainPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/** A DNS-1123 label (at most 63, checked separately). */
export const dnsLabelPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A destination's name (`spec.backup.additionalTargets[].name`, `primary`): a DNS label of at most this many characters. */
export const maxDestinationNameLength = 40;

/** A key of a Secret's data. */
export const secretKeyPattern = "^[-._a-zA-Z0-9]+$";

/** A label or annotation key: optional DNS-subdomain prefix and `/`, then a name of at most 63. */
export const qualifiedNamePattern =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";

/** A label value (at most 63, checked separately), possibly empty. */
export const labelValuePattern = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/** The `reason` of a metav1.Condition. */
export const conditionReasonPattern = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

/** The `type` of a metav1.Condition. */
export const conditionTypePattern =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";

// ── OpenBao ─────────────────────────────────────────────────────────────────────────────────

/** An OpenBao auth role name. */
export const openbaoRoleNamePattern = "^[A-Za-z0-9_.@-]+$";

/** An auth mount path without `auth/` or surrounding slashes: `jwt`, `k8s/jwt`. */
export const openbaoMountPathPattern = "^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$";

/** A semantic version, optionally with a leading `v`: `2.4.1`, `v2.5.0-rc.1`. */
export const versionPattern = "^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$";

/** A lower-case SHA-256 hex digest. */
export const sha256Pattern = "^[0-9a-f]{64}$";

/** A short failure code (`SnapshotFailed`, `DeadlineExceeded`). */
export const reasonCodePattern = "^[A-Za-z][A-Za-z0-9]*$";

/** Any whitespace (image references contain none). */
export const whitespacePattern = "\\s";

/**
 * A JavaScript RegExp for one of the patterns above. `(?i:…)` groups are modifiers, which
 * Node 24's V8 supports, so the same source works in both dialects.
 */
export function jsRegExp(pattern: string): RegExp {
  return new RegExp(pattern, "u");
}

/**
 * `spec.backup.drill.canaryPath`: a KV v2 `<mount>/<path>` (at least two segments, no `.` or
 * `..` segment; src/drill/canary.ts parses the same). RE2 has no look-ahead, so the dot
 * segments are `dotSegmentPattern`'s job.
 */
export const canaryLocationPattern = "^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$";
