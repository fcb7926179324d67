import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { observeSchedule } from "../../../src/api/predicates.ts";
import {
  countWindows,
  dueWindow,
  isBackupStale,
  lastWindowAtOrBefore,
  maxCountedWindows,
  nextWindowAfter,
  parseSchedule,
  ScheduleError,
} from "../../../src/backup/schedule.ts";

const at = (iso: string): Date => new Date(iso);
const iso = (d: Date | null | undefined): string | null => d?.toISOString() ?? null;

describe("parseSchedule", () => {
  test("accepts five fields and nicknames, UTC by default", () => {
    for (const expression of ["* * * * *", "0 3 * * *", "@daily", "*/15 0-6/2 1,15 JAN-jun mon-FRI"]) {
      const schedule = parseSchedule(expression);
      assert.equal(schedule.expression, expression);
      assert.equal(schedule.timeZone, "UTC");
    }
  });

  const errors: [string, string, string, RegExp][] = [
    ["not cron", "every day", "UTC", /^spec\.backup\.schedule: "every day" must be five cron fields/],
    ["seconds field", "0 0 3 * * *", "UTC", /^spec\.backup\.schedule: /],
    ["Quartz ?", "0 0 ? * *", "UTC", /^spec\.backup\.schedule: /],
    [
      "step beyond the range",
      "*/90 * * * *",
      "UTC",
      /^spec\.backup\.schedule: "\*\/90 \* \* \* \*" is not a valid cron schedule: .*step/i,
    ],
    ["backwards range", "5-1 * * * *", "UTC", /^spec\.backup\.schedule: .*is not a valid cron schedule/],
    ["never fires", "0 0 31 2 *", "UTC", /^spec\.backup\.schedule: "0 0 31 2 \*" never fires/],
    [
      "unknown zone",
      "0 3 * * *",
      "Mars/Phobos",
      /^spec\.backup\.timeZone: "Mars\/Phobos" is not a time zone of the IANA tz database/,
    ],
    ["Local", "0 3 * * *", "Local", /^spec\.backup\.timeZone: /],
    ["an offset", "0 3 * * *", "+02:00", /^spec\.backup\.timeZone: /],
  ];
  for (const [name, expression, timeZone, message] of errors) {
    test(`refuses ${name}, naming the field`, () => {
      assert.throws(
        () => parseSchedule(expression, timeZone),
        (err: unknown) => {
          assert.ok(err instanceof ScheduleError);
          assert.equal(err.code, "InvalidSchedule");
          assert.match(err.message, message);
          assert.equal(
            err.field,
            message.source.includes("timeZone") ? "spec.backup.timeZone" : "spec.backup.schedule",
          );
          return true;
        },
      );
    });
  }

  test("a leap-day schedule fires (every four years is still a schedule)", () => {
    const schedule = parseSchedule("0 0 29 2 *");
    assert.equal(iso(nextWindowAfter(schedule, at("2025-01-01T00:00:00Z"))), "2028-02-29T00:00:00.000Z");
  });
});

describe("lastWindowAtOrBefore / nextWindowAfter", () => {
  const hourly = parseSchedule("0 * * * *");
  const cases: [string, string, string, string][] = [
    ["between windows", "2025-03-04T10:30:00Z", "2025-03-04T10:00:00.000Z", "2025-03-04T11:00:00.000Z"],
    [
      "exactly on a window: it is the last, not the next",
      "2025-03-04T10:00:00Z",
      "2025-03-04T10:00:00.000Z",
      "2025-03-04T11:00:00.000Z",
    ],
    [
      "a millisecond before a window",
      "2025-03-04T09:59:59.999Z",
      "2025-03-04T09:00:00.000Z",
      "2025-03-04T10:00:00.000Z",
    ],
    [
      "a millisecond after a window",
      "2025-03-04T10:00:00.001Z",
      "2025-03-04T10:00:00.000Z",
      "2025-03-04T11:00:00.000Z",
    ],
  ];
  for (const [name, now, last, next] of cases) {
    test(name, () => {
      assert.equal(iso(lastWindowAtOrBefore(hourly, at(now))), last);
      assert.equal(iso(nextWindowAfter(hourly, at(now))), next);
    });
  }
});

describe("dueWindow", () => {
  const everyMinute = parseSchedule("* * * * *");
  const daily3 = parseSchedule("0 3 * * *");
  const hourly = parseSchedule("0 * * * *");

  type Case = {
    name: string;
    schedule: ReturnType<typeof parseSchedule>;
    now: string;
    observed: string;
    lastAttempt?: string;
    want: { window: string; skipped: number } | null;
    next: string | null;
  };
  const cases: Case[] = [
    {
      name: "* * * * *: a new cluster waits for the next minute",
      schedule: everyMinute,
      observed: "2025-03-04T10:00:30Z",
      now: "2025-03-04T10:00:45Z",
      want: null,
      next: "2025-03-04T10:01:00.000Z",
    },
    {
      name: "* * * * *: the next minute is due exactly on time",
      schedule: everyMinute,
      observed: "2025-03-04T10:00:30Z",
      now: "2025-03-04T10:01:00Z",
      want: { window: "2025-03-04T10:01:00.000Z", skipped: 0 },
      next: "2025-03-04T10:02:00.000Z",
    },
    {
      name: "* * * * *: at most once per window, however many reconciles",
      schedule: everyMinute,
      observed: "2025-03-04T10:00:30Z",
      lastAttempt: "2025-03-04T10:01:00Z",
      now: "2025-03-04T10:01:59.999Z",
      want: null,
      next: "2025-03-04T10:02:00.000Z",
    },
    {
      name: "* * * * *: the following window",
      schedule: everyMinute,
      observed: "2025-03-04T10:00:30Z",
      lastAttempt: "2025-03-04T10:01:00Z",
      now: "2025-03-04T10:02:05Z",
      want: { window: "2025-03-04T10:02:00.000Z", skipped: 0 },
      next: "2025-03-04T10:03:00.000Z",
    },
    {
      name: "a cluster created just before a window gets that window",
      schedule: daily3,
      observed: "2025-03-04T02:59:59Z",
      now: "2025-03-04T03:00:00Z",
      want: { window: "2025-03-04T03:00:00.000Z", skipped: 0 },
      next: "2025-03-05T03:00:00.000Z",
    },
    {
      name: "a cluster created on the window's instant does not back up immediately",
      schedule: daily3,
      observed: "2025-03-04T03:00:00Z",
      now: "2025-03-04T03:00:00Z",
      want: null,
      next: "2025-03-05T03:00:00.000Z",
    },
    {
      name: "a cluster created after today's window waits for tomorrow",
      schedule: daily3,
      observed: "2025-03-04T03:00:10Z",
      now: "2025-03-04T09:00:00Z",
      want: null,
      next: "2025-03-05T03:00:00.000Z",
    },
    {
      name: "catch-up: 3 missed windows (10:00, 11:00, 12:00) collapse into one run for the latest",
      schedule: hourly,
      observed: "2025-03-01T00:00:00Z",
      lastAttempt: "2025-03-04T09:00:00Z",
      now: "2025-03-04T12:30:00Z",
      want: { window: "2025-03-04T12:00:00.000Z", skipped: 2 },
      next: "2025-03-04T13:00:00.000Z",
    },
    {
      name: "catch-up: once it ran, nothing else is due for the collapsed windows",
      schedule: hourly,
      observed: "2025-03-01T00:00:00Z",
      lastAttempt: "2025-03-04T12:00:00Z",
      now: "2025-03-04T12:31:00Z",
      want: null,
      next: "2025-03-04T13:00:00.000Z",
    },
    {
      name: "catch-up is counted from the observation when nothing was attempted yet",
      schedule: hourly,
      observed: "2025-03-04T08:30:00Z",
      now: "2025-03-04T11:15:00Z",
      want: { window: "2025-03-04T11:00:00.000Z", skipped: 2 },
      next: "2025-03-04T12:00:00.000Z",
    },
    {
      name: "a last attempt in the future (clock skew) is never repeated",
      schedule: hourly,
      observed: "2025-03-01T00:00:00Z",
      lastAttempt: "2025-03-04T13:00:00Z",
      now: "2025-03-04T12:30:00Z",
      want: null,
      next: "2025-03-04T13:00:00.000Z",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const decision = dueWindow({
        schedule: c.schedule,
        now: at(c.now),
        scheduleObservedAt: at(c.observed),
        lastAttemptScheduledTime: c.lastAttempt === undefined ? undefined : at(c.lastAttempt),
      });
      assert.equal(iso(decision.next), c.next);
      if (c.want === null) {
        assert.equal(decision.due, false);
      } else {
        assert.ok(decision.due);
        assert.equal(iso(decision.window), c.want.window);
        assert.equal(decision.skippedWindows, c.want.skipped);
      }
    });
  }

  test("is pure: the same input gives the same answer", () => {
    const input = { schedule: hourly, now: at("2025-03-04T12:30:00Z"), scheduleObservedAt: at("2025-03-04T00:00:00Z") };
    assert.deepEqual(dueWindow(input), dueWindow(input));
  });

  test("skipped windows are counted up to a cap (a month offline with * * * * *)", () => {
    const decision = dueWindow({
      schedule: everyMinute,
      now: at("2025-04-04T00:00:30Z"),
      scheduleObservedAt: at("2025-03-04T00:00:00Z"),
      lastAttemptScheduledTime: at("2025-03-04T00:00:00Z"),
    });
    assert.ok(decision.due);
    assert.equal(iso(decision.window), "2025-04-04T00:00:00.000Z");
    assert.equal(decision.skippedWindows, maxCountedWindows - 1);
  });

  test("a changed schedule is recomputed at once and does not back up immediately", () => {
    // Daily at 03:00 until 10:30, then changed to hourly.
    const now = at("2025-03-04T10:30:00Z");
    const before = observeSchedule({ schedule: "0 3 * * *" }, undefined, at("2025-03-01T00:00:00Z")).observed;
    const { observed, changed } = observeSchedule({ schedule: "0 * * * *" }, before, now);
    assert.ok(changed);
    assert.equal(observed.observedTime, "2025-03-04T10:30:00Z");
    const lastAttemptScheduledTime = at("2025-03-04T03:00:00Z");
    const schedule = parseSchedule(observed.schedule, observed.timeZone);

    const right = dueWindow({ schedule, now, lastAttemptScheduledTime, scheduleObservedAt: at(observed.observedTime) });
    assert.equal(right.due, false);
    assert.equal(iso(right.next), "2025-03-04T11:00:00.000Z");

    // Without the reset, the new schedule's 10:00 window would look missed and run at once.
    const wrong = dueWindow({ schedule, now, lastAttemptScheduledTime, scheduleObservedAt: at(before.observedTime) });
    assert.ok(wrong.due);

    const atEleven = dueWindow({
      schedule,
      now: at("2025-03-04T11:00:00Z"),
      lastAttemptScheduledTime,
      scheduleObservedAt: at(observed.observedTime),
    });
    assert.ok(atEleven.due);
    assert.equal(iso(atEleven.window), "2025-03-04T11:00:00.000Z");
    assert.equal(atEleven.skippedWindows, 0);
  });
});

describe("time zones and DST (Europe/Berlin, 2025: spring 30 March 02:00→03:00, autumn 26 October 03:00→02:00)", () => {
  test("@daily is local midnight, 23 h apart across spring and 25 h across autumn", () => {
    const daily = parseSchedule("@daily", "Europe/Berlin");
    const spring: string[] = [];
    let t = at("2025-03-29T12:00:00Z");
    for (let i = 0; i < 3; i += 1) {
      const next = nextWindowAfter(daily, t);
      assert.ok(next);
      spring.push(next.toISOString());
      t = next;
    }
    assert.deepEqual(spring, ["2025-03-29T23:00:00.000Z", "2025-03-30T22:00:00.000Z", "2025-03-31T22:00:00.000Z"]);
    assert.equal(iso(nextWindowAfter(daily, at("2025-10-26T12:00:00Z"))), "2025-10-26T23:00:00.000Z");
    assert.equal(iso(lastWindowAtOrBefore(daily, at("2025-10-26T12:00:00Z"))), "2025-10-25T22:00:00.000Z");
  });

  test("@daily across the spring change: exactly one run for the day after", () => {
    const daily = parseSchedule("@daily", "Europe/Berlin");
    const observed = at("2025-03-01T00:00:00Z");
    const decision = dueWindow({
      schedule: daily,
      now: at("2025-03-30T22:00:05Z"),
      scheduleObservedAt: observed,
      lastAttemptScheduledTime: at("2025-03-29T23:00:00Z"),
    });
    assert.ok(decision.due);
    assert.equal(iso(decision.window), "2025-03-30T22:00:00.000Z");
    assert.equal(decision.skippedWindows, 0);
    assert.equal(iso(decision.next), "2025-03-31T22:00:00.000Z");
  });

  test("a fixed time inside the spring gap (02:30) runs right after the gap, once", () => {
    const schedule = parseSchedule("30 2 * * *", "Europe/Berlin");
    assert.equal(iso(nextWindowAfter(schedule, at("2025-03-29T12:00:00Z"))), "2025-03-30T01:00:00.000Z");
    assert.equal(countWindows(schedule, at("2025-03-29T12:00:00Z"), at("2025-03-31T12:00:00Z")), 2);
  });

  test("a fixed time repeated in autumn (02:30 twice) runs once", () => {
    const schedule = parseSchedule("30 2 * * *", "Europe/Berlin");
    assert.equal(iso(nextWindowAfter(schedule, at("2025-10-25T12:00:00Z"))), "2025-10-26T00:30:00.000Z");
    assert.equal(countWindows(schedule, at("2025-10-25T12:00:00Z"), at("2025-10-27T12:00:00Z")), 2);
  });

  test("an interval schedule fires on both passes of the repeated hour, each instant once", () => {
    const schedule = parseSchedule("*/30 * * * *", "Europe/Berlin");
    const windows: string[] = [];
    let t = at("2025-10-26T00:00:00Z");
    for (;;) {
      const next = nextWindowAfter(schedule, t);
      if (next === null || next > at("2025-10-26T02:00:00Z")) break;
      windows.push(next.toISOString());
      t = next;
    }
    assert.deepEqual(windows, [
      "2025-10-26T00:30:00.000Z",
      "2025-10-26T01:00:00.000Z",
      "2025-10-26T01:30:00.000Z",
      "2025-10-26T02:00:00.000Z",
    ]);
  });

  test("the same cron in another zone gives other instants", () => {
    const utc = parseSchedule("0 3 * * *");
    const ny = parseSchedule("0 3 * * *", "America/New_York");
    assert.equal(iso(nextWindowAfter(utc, at("2025-07-01T00:00:00Z"))), "2025-07-01T03:00:00.000Z");
    assert.equal(iso(nextWindowAfter(ny, at("2025-07-01T00:00:00Z"))), "2025-07-01T07:00:00.000Z");
  });
});

describe("isBackupStale (BackupHealthy: older than two schedule intervals)", () => {
  const hourly = parseSchedule("0 * * * *");
  const cases: [string, string, string, boolean][] = [
    ["one window since the last good backup", "2025-03-04T10:00:30Z", "2025-03-04T11:59:59Z", false],
    ["two windows since: stale", "2025-03-04T10:00:30Z", "2025-03-04T12:00:00Z", true],
    ["just backed up", "2025-03-04T12:00:40Z", "2025-03-04T12:01:00Z", false],
  ];
  for (const [name, since, now, stale] of cases) {
    test(name, () => assert.equal(isBackupStale(hourly, at(since), at(now)), stale));
  }

  test("weekdays only: a weekend is not staleness", () => {
    const weekdays = parseSchedule("0 3 * * 1-5");
    // Friday 03:00:30 → Monday 02:59 has no window; Monday 03:00 is one.
    assert.equal(isBackupStale(weekdays, at("2025-03-07T03:00:30Z"), at("2025-03-10T03:30:00Z")), false);
    assert.equal(isBackupStale(weekdays, at("2025-03-07T03:00:30Z"), at("2025-03-11T03:00:00Z")), true);
  });
});
