/**
 * Durations as people write them in a spec or an environment variable: `168h`, `7d`, `90m`,
 * `30s`, `1h30m`, `1.5h`. The grammar is Go's `time.ParseDuration` (one or more
 * `<number><unit>` terms, units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`) plus `d` for a day of
 * exactly 24 hours (no calendar or DST arithmetic). Unlike Go, a sign is not accepted and the
 * total must be greater than zero unless the caller allows zero: a retention age or a timeout
 * of "nothing" is always a configuration mistake.
 *
 * Arithmetic is exact (BigInt nanoseconds) and bounded by Go's limit (2^63-1 ns, about 292
 * years), so a value OpenBao or Kubernetes tooling accepts never means something else here.
 */
import { ConfigLayerError } from "./coded-error.ts";

const unitNanoseconds: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  "\u00b5s": 1_000n, // µ MICRO SIGN, as Go accepts
  "\u03bcs": 1_000n, // μ GREEK SMALL LETTER MU, as Go accepts
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};

const maxNanoseconds = (1n << 63n) - 1n;
const nanosecondsPerMillisecond = 1_000_000n;

/** One `<number><unit>` term; the sticky flag makes the scan reject anything between terms. */
const term = /(\d+(?:\.\d*)?|\.\d+)([a-zA-Z\u00b5\u03bc]*)/y;

const acceptedForms =
  'use a number followed by a unit (ns, us, ms, s, m, h, d), optionally repeated, e.g. "168h", "7d", "90m", "30s", "1h30m"';

/** A duration that cannot be parsed. `value` is the input exactly as given. */
export class DurationError extends ConfigLayerError<"InvalidDuration"> {
  readonly value: string;
  readonly field: string | undefined;

  constructor(value: string, problem: string, field?: string) {
    super(
      "InvalidDuration",
      `${field ? `${field}: ` : ""}invalid duration ${JSON.stringify(value)}: ${problem}; ${acceptedForms}`,
    );
    this.value = value;
    this.field = field;
  }
}

export interface ParseDurationOptions {
  /** Named in the error message, e.g. `spec.backup.retention.maxAge` or `BACKUP_RETENTION_MAX_AGE`. */
  field?: string;
  /** Accept a zero total (`0s`, `0`). Default false. */
  allowZero?: boolean;
}

/**
 * Parses a duration into milliseconds (fractional when the input has sub-millisecond
 * precision, e.g. `1500us` → 1.5). Surrounding whitespace is ignored. Throws `DurationError`.
 */
export function parseDuration(value: string, options: ParseDurationOptions = {}): number {
  const { field, allowZero = false } = options;
  function fail(problem: string): never {
    throw new DurationError(value, problem, field);
  }

  const text = value.trim();
  if (text === "") fail("it is empty");
  if (text.startsWith("-")) fail("negative durations are not allowed");
  if (text.startsWith("+")) fail("a sign is not allowed");
  // Go's one unitless exception.
  if (text === "0") {
    if (!allowZero) fail("it must be greater than zero");
    return 0;
  }

  let total = 0n;
  let position = 0;
  while (position < text.length) {
    term.lastIndex = position;
    const match = term.exec(text);
    if (!match) fail(`unexpected ${JSON.stringify(text.slice(position, position + 1))} at position ${position + 1}`);
    const [whole, number = "", unit = ""] = match;
    if (unit === "") fail(`missing unit after ${JSON.stringify(number)}`);
    const perUnit = unitNanoseconds[unit];
    if (perUnit === undefined) fail(`unknown unit ${JSON.stringify(unit)}`);
    total += termNanoseconds(number, perUnit);
    if (total > maxNanoseconds) fail("it is too large (the maximum is about 292 years, 106751d)");
    position += whole.length;
  }

  if (total === 0n && !allowZero) fail("it must be greater than zero");
  return Number(total / nanosecondsPerMillisecond) + Number(total % nanosecondsPerMillisecond) / 1e6;
}

/** `<integer>[.<fraction>]` × unit, exactly; fraction digits below a nanosecond are dropped, as Go does. */
function termNanoseconds(number: string, perUnit: bigint): bigint {
  const [integerPart = "", fractionPart = ""] = number.split(".");
  let nanoseconds = BigInt(integerPart === "" ? "0" : integerPart) * perUnit;
  if (fractionPart !== "") {
    const scale = 10n ** BigInt(fractionPart.length);
    nanoseconds += (BigInt(fractionPart) * perUnit) / scale;
  }
  return nanoseconds;
}

const msPerSecond = 1000;
const msPerMinute = 60 * msPerSecond;
const msPerHour = 60 * msPerMinute;
const msPerDay = 24 * msPerHour;

/**
 * Formats milliseconds for people, in the same grammar `parseDuration` reads:
 * 604800000 → `7d`, 5400000 → `1h30m`, 1500 → `1.5s`, 250 → `250ms`, 0 → `0s`.
 * Whole-millisecond values round-trip exactly; sub-millisecond values are shown in `us`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format a non-finite duration (${ms})`);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms === 0) return "0s";
  if (ms < 1) return `${trimFraction((ms * 1000).toFixed(3))}us`;

  let rest = Math.round(ms);
  const days = Math.floor(rest / msPerDay);
  rest -= days * msPerDay;
  const hours = Math.floor(rest / msPerHour);
  rest -= hours * msPerHour;
  const minutes = Math.floor(rest / msPerMinute);
  rest -= minutes * msPerMinute;
  const seconds = Math.floor(rest / msPerSecond);
  const millis = rest - seconds * msPerSecond;

  let out = "";
  if (days > 0) out += `${days}d`;
  if (hours > 0) out += `${hours}h`;
  if (minutes > 0) out += `${minutes}m`;
  if (seconds > 0 || (millis > 0 && out !== "")) {
    out += millis > 0 ? `${seconds}.${String(millis).padStart(3, "0").replace(/0+$/, "")}s` : `${seconds}s`;
  } else if (millis > 0) {
    out += `${millis}ms`;
  }
  return out;
}

function trimFraction(fixed: string): string {
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}
