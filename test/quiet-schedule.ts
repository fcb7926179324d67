/**
 * Schedules for test clusters that must not fire while the tests run, only when triggered.
 *
 * A fixed "quiet" time such as 03:00 UTC fires whenever a run spans it: once in CI a
 * scheduled backup at 03:00 joined a test's manual one, and the test counted two failures
 * where it expected one. These are computed from when the test process started: daily (or
 * weekly, for drills), twelve hours later, in UTC — the operator's default time zone.
 */
const at = new Date(Date.now() + 12 * 60 * 60 * 1000);

/** Daily, twelve hours after the test process started. */
export const quietSchedule = `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;

/** Weekly (the drills' cadence), twelve hours after the test process started. */
export const quietWeeklySchedule = `${at.getUTCMinutes()} ${at.getUTCHours()} * * ${at.getUTCDay()}`;
