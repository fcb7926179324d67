import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DurationError, formatDuration, parseDuration } from "../../../src/util/duration.ts";

const second = 1000;
const minute = 60 * second;
const hour = 60 * minute;
const day = 24 * hour;

describe("parseDuration", () => {
  const valid: [string, number][] = [
    ["168h", 168 * hour],
    ["7d", 7 * day],
    ["90m", 90 * minute],
    ["30s", 30 * second],
    ["1h30m", hour + 30 * minute],
    ["1d12h", day + 12 * hour],
    ["2h45m30s", 2 * hour + 45 * minute + 30 * second],
    ["1.5h", 90 * minute],
    [".5s", 500],
    ["5.s", 5 * second],
    ["250ms", 250],
    ["1500us", 1.5],
    ["1500\u00b5s", 1.5],
    ["1500\u03bcs", 1.5],
    ["2000000ns", 2],
    ["30m1h", hour + 30 * minute], // Go accepts terms in any order
    ["  7d\n", 7 * day], // surrounding whitespace from env files
    ["106751d", 106751 * day], // Go's largest whole-day duration
  ];
  for (const [input, expected] of valid) {
    test(`parses ${JSON.stringify(input)}`, () => {
      assert.equal(parseDuration(input), expected);
    });
  }

  const invalid: [string, RegExp][] = [
    ["", /it is empty/],
    ["   ", /it is empty/],
    ["-1h", /negative/],
    ["+1h", /sign/],
    ["10", /missing unit after "10"/],
    ["1h30", /missing unit after "30"/],
    ["h", /unexpected "h"/],
    ["2w", /unknown unit "w"/],
    ["1y", /unknown unit "y"/],
    ["1H", /unknown unit "H"/],
    ["1 h", /missing unit after "1"/],
    ["1h 30m", /unexpected " "/],
    ["1,5h", /missing unit after "1"/],
    ["0", /greater than zero/],
    ["0s", /greater than zero/],
    ["0h0m", /greater than zero/],
    ["106752d", /too large/],
    ["99999999999999999999999h", /too large/],
    ["1e3s", /unknown unit "e"/],
    ["NaNs", /unexpected "N"/],
  ];
  for (const [input, message] of invalid) {
    test(`rejects ${JSON.stringify(input)} naming the value and the accepted forms`, () => {
      assert.throws(
        () => parseDuration(input),
        (error: unknown) => {
          assert.ok(error instanceof DurationError);
          assert.equal(error.code, "InvalidDuration");
          assert.equal(error.value, input);
          assert.match(error.message, message);
          assert.ok(error.message.includes(JSON.stringify(input)), error.message);
          assert.match(error.message, /"168h", "7d", "90m"/);
          return true;
        },
      );
    });
  }

  test("names the field when given one", () => {
    assert.throws(() => parseDuration("7 days", { field: "spec.backup.retention.maxAge" }), {
      message: /^spec\.backup\.retention\.maxAge: invalid duration "7 days"/,
      field: "spec.backup.retention.maxAge",
    });
  });

  test("accepts zero only when allowed", () => {
    assert.equal(parseDuration("0", { allowZero: true }), 0);
    assert.equal(parseDuration("0s", { allowZero: true }), 0);
  });
});

describe("formatDuration", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [7 * day, "7d"],
    [168 * hour, "7d"],
    [90 * minute, "1h30m"],
    [30 * second, "30s"],
    [1500, "1.5s"],
    [250, "250ms"],
    [2 * minute + 500, "2m0.5s"],
    [day + 2 * hour + 3 * minute + 4 * second + 5, "1d2h3m4.005s"],
    [0.5, "500us"],
    [-90 * minute, "-1h30m"],
  ];
  for (const [ms, expected] of cases) {
    test(`formats ${ms} ms as ${expected}`, () => {
      assert.equal(formatDuration(ms), expected);
    });
  }

  test("whole-millisecond values round-trip through parseDuration", () => {
    for (const ms of [1, 999, 1000, 1001, 59_999, 3_600_000, 86_399_999, 7 * day + 1, 123_456_789_012]) {
      assert.equal(parseDuration(formatDuration(ms)), ms, formatDuration(ms));
    }
  });

  test("refuses non-finite values", () => {
    assert.throws(() => formatDuration(Number.POSITIVE_INFINITY), RangeError);
    assert.throws(() => formatDuration(Number.NaN), RangeError);
  });
});
