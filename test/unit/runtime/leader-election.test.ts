/**
 * Leader-election timing with a fake clock: the pure decision, then the elector loop over a
 * Lease held in memory with the API server's optimistic-concurrency rule (a write carrying a
 * stale resourceVersion conflicts). The real Lease API is exercised in
 * test/operator/runtime.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decide,
  type ElectionOutcome,
  LeaderElector,
  LeaseConflictError,
  type LeaseRecord,
  type LeaseState,
  type LeaseStore,
  renewDeadlinePassed,
  resolveTimings,
} from "../../../src/runtime/leader-election.ts";
import { FakeClock, settle } from "./fake-clock.ts";

const leaseDurationMs = 3_000;
const renewDeadlineMs = 2_000;
const retryPeriodMs = 1_000;

function held(holder: string, resourceVersion: string, renewTime: number, transitions = 0): LeaseState {
  return {
    resourceVersion,
    record: {
      holderIdentity: holder,
      leaseDurationSeconds: 3,
      acquireTime: renewTime,
      renewTime,
      leaseTransitions: transitions,
    },
  };
}

describe("decide", () => {
  const now = 1_000_000;

  test("no Lease: create it, holding it, with no transitions", () => {
    const { decision } = decide({ current: undefined, observed: undefined, identity: "a", now, leaseDurationMs });
    assert.deepEqual(decision, {
      action: "create",
      record: { holderIdentity: "a", leaseDurationSeconds: 3, acquireTime: now, renewTime: now, leaseTransitions: 0 },
    });
  });

  test("held by another: wait until leaseDuration after this replica first saw the current version", () => {
    const first = decide({ current: held("b", "7", now), observed: undefined, identity: "a", now, leaseDurationMs });
    assert.deepEqual(first.decision, { action: "wait", holder: "b", expiresAt: now + 3_000 });
    // Same version seen again later: the observation keeps its first time.
    const again = decide({
      current: held("b", "7", now),
      observed: first.observed,
      identity: "a",
      now: now + 2_999,
      leaseDurationMs,
    });
    assert.equal(again.decision.action, "wait");
    assert.equal(again.observed?.at, now);
    // …and at the expiry it is taken over, optimistically on that version, one more transition.
    const takeover = decide({
      current: held("b", "7", now, 4),
      observed: again.observed,
      identity: "a",
      now: now + 3_000,
      leaseDurationMs,
    });
    assert.deepEqual(takeover.decision, {
      action: "update",
      resourceVersion: "7",
      record: {
        holderIdentity: "a",
        leaseDurationSeconds: 3,
        acquireTime: now + 3_000,
        renewTime: now + 3_000,
        leaseTransitions: 5,
      },
    });
  });

  test("a renewal by the holder (new resourceVersion) restarts the wait", () => {
    const first = decide({ current: held("b", "7", now), observed: undefined, identity: "a", now, leaseDurationMs });
    const renewed = decide({
      current: held("b", "8", now + 1_000),
      observed: first.observed,
      identity: "a",
      now: now + 2_500,
      leaseDurationMs,
    });
    assert.deepEqual(renewed.decision, { action: "wait", holder: "b", expiresAt: now + 2_500 + 3_000 });
  });

  test("the holder's own timestamps are not trusted: a renewTime far in the past (clock skew) still waits", () => {
    const skewed = held("b", "9", now - 3_600_000);
    const { decision } = decide({ current: skewed, observed: undefined, identity: "a", now, leaseDurationMs });
    assert.equal(decision.action, "wait");
  });

  test("the holder's leaseDurationSeconds decides the wait, not the candidate's setting", () => {
    const current: LeaseState = {
      resourceVersion: "3",
      record: { ...held("b", "3", now).record, leaseDurationSeconds: 60 },
    };
    const { decision } = decide({ current, observed: undefined, identity: "a", now, leaseDurationMs });
    assert.deepEqual(decision, { action: "wait", holder: "b", expiresAt: now + 60_000 });
  });

  test("a released Lease (empty holder) is taken at once", () => {
    const { decision } = decide({
      current: held("", "5", now, 2),
      observed: undefined,
      identity: "a",
      now,
      leaseDurationMs,
    });
    assert.equal(decision.action, "update");
    assert.equal(decision.action === "update" && decision.record.leaseTransitions, 3);
  });

  test("the holder renews: same acquireTime and transitions, new renewTime", () => {
    const current = held("a", "11", now - 5_000, 2);
    const { decision } = decide({ current, observed: undefined, identity: "a", now, leaseDurationMs });
    assert.deepEqual(decision, {
      action: "update",
      resourceVersion: "11",
      record: {
        holderIdentity: "a",
        leaseDurationSeconds: 3,
        acquireTime: now - 5_000,
        renewTime: now,
        leaseTransitions: 2,
      },
    });
  });

  test("renew deadline and timing rules", () => {
    assert.equal(renewDeadlinePassed(1_000, 2_999, 2_000), false);
    assert.equal(renewDeadlinePassed(1_000, 3_000, 2_000), true);
    assert.deepEqual(resolveTimings({ leaseDurationMs, renewDeadlineMs, retryPeriodMs }), {
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
    });
    assert.throws(() => resolveTimings({ leaseDurationMs: 2_000, renewDeadlineMs: 2_000 }), /leaseDurationMs/);
    assert.throws(() => resolveTimings({ renewDeadlineMs: 1_100, retryPeriodMs: 1_000 }), /renewDeadlineMs/);
  });
});

/** One Lease in memory with the API server's rules: create conflicts if it exists, update if the version is stale. */
class MemoryLease {
  state: LeaseState | undefined;
  version = 0;
  /** While true every request fails (API server unreachable). */
  down = false;
  writes: { by: string; holder: string }[] = [];
  reads = 0;

  store(identity: string): LeaseStore {
    const check = (): void => {
      if (this.down) throw new Error("connect ECONNREFUSED");
    };
    return {
      description: "test/lease",
      get: async () => {
        check();
        this.reads++;
        return this.state;
      },
      create: async (record: LeaseRecord) => {
        check();
        if (this.state !== undefined) throw new LeaseConflictError("exists");
        return this.#write(identity, record);
      },
      update: async (record: LeaseRecord, resourceVersion: string) => {
        check();
        if (this.state?.resourceVersion !== resourceVersion) throw new LeaseConflictError("stale");
        return this.#write(identity, record);
      },
    };
  }

  #write(by: string, record: LeaseRecord): LeaseState {
    this.state = { resourceVersion: String(++this.version), record };
    this.writes.push({ by, holder: record.holderIdentity });
    return this.state;
  }
}

interface Candidate {
  readonly elector: LeaderElector;
  readonly abort: AbortController;
  readonly outcome: Promise<ElectionOutcome>;
  readonly log: string[];
  startedAt?: number;
  stoppedAt?: number;
}

function candidate(
  lease: MemoryLease,
  clock: FakeClock,
  identity: string,
  options: { releaseOnCancel?: boolean } = {},
): Candidate {
  const elector = new LeaderElector({
    store: lease.store(identity),
    identity,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    clock,
    random: () => 0.5,
    ...options,
  });
  const abort = new AbortController();
  const log: string[] = [];
  const self: { -readonly [K in keyof Candidate]: Candidate[K] } = {
    elector,
    abort,
    log,
    outcome: Promise.resolve("cancelled"),
  };
  self.outcome = elector.run(abort.signal, {
    onStartedLeading: () => {
      self.startedAt = clock.now();
      log.push("started");
    },
    onStoppedLeading: () => {
      self.stoppedAt = clock.now();
      log.push("stopped");
    },
  });
  return self;
}

describe("LeaderElector with a fake clock", () => {
  test("two candidates: exactly one leads, and keeps leading while it renews", async () => {
    const clock = new FakeClock();
    const lease = new MemoryLease();
    const a = candidate(lease, clock, "a");
    const b = candidate(lease, clock, "b");
    await clock.advance(0);
    for (let t = 0; t < 20; t++) {
      assert.equal(Number(a.elector.isLeader()) + Number(b.elector.isLeader()), 1, `one leader at step ${t}`);
      await clock.advance(500);
    }
    assert.ok(a.elector.isLeader(), "the first to create the Lease keeps it");
    assert.equal(lease.state?.record.holderIdentity, "a");
    assert.equal(b.elector.leader(), "a");
    a.abort.abort();
    b.abort.abort();
    await clock.advance(2_000);
    await Promise.all([a.outcome, b.outcome]);
  });

  test("a leader that stops renewing (crash) is replaced after the lease duration, not before", async () => {
    const clock = new FakeClock();
    const lease = new MemoryLease();
    const a = candidate(lease, clock, "a", { releaseOnCancel: false });
    await clock.advance(0);
    assert.ok(a.elector.isLeader());
    const b = candidate(lease, clock, "b");
    await clock.advance(0);
    // "Crash" a: it stops renewing and does not release.
    const lastRenew = lease.state?.record.renewTime ?? 0;
    a.abort.abort();
    await settle();
    await clock.advance(0);
    assert.equal(await a.outcome, "stopped", "cancelled while leading (release disabled)");
    assert.equal(lease.state?.record.holderIdentity, "a", "not released");
    const crashedAt = clock.now();
    while (!b.elector.isLeader() && clock.now() - crashedAt < 10_000) await clock.advance(100);
    assert.ok(b.elector.isLeader());
    const takeover = (b.startedAt ?? 0) - lastRenew;
    assert.ok(takeover >= leaseDurationMs, `takeover after ${takeover} ms ≥ lease duration`);
    assert.ok(takeover <= leaseDurationMs + retryPeriodMs * 1.2 + 100, `takeover after ${takeover} ms`);
    assert.equal(lease.state?.record.leaseTransitions, 1);
    b.abort.abort();
    await clock.advance(1_000);
    await b.outcome;
  });

  test("graceful stop releases the Lease; the other candidate takes over within one retry period", async () => {
    const clock = new FakeClock();
    const lease = new MemoryLease();
    const a = candidate(lease, clock, "a");
    await clock.advance(0);
    const b = candidate(lease, clock, "b");
    await clock.advance(2_500);
    assert.ok(a.elector.isLeader() && !b.elector.isLeader());
    const stopAt = clock.now();
    a.abort.abort();
    await clock.advance(0);
    assert.equal(await a.outcome, "stopped");
    assert.deepEqual(a.log, ["started", "stopped"]);
    assert.equal(lease.state?.record.holderIdentity, "");
    while (!b.elector.isLeader() && clock.now() - stopAt < 5_000) await clock.advance(50);
    const takeover = (b.startedAt ?? 0) - stopAt;
    assert.ok(takeover <= retryPeriodMs * 1.2, `takeover after ${takeover} ms`);
    b.abort.abort();
    await clock.advance(1_000);
  });

  test("a leader that cannot renew steps down at the renew deadline, before anyone may take over", async () => {
    const clock = new FakeClock();
    const lease = new MemoryLease();
    const a = candidate(lease, clock, "a");
    await clock.advance(0);
    assert.ok(a.elector.isLeader());
    const lastRenew = lease.state?.record.renewTime ?? 0;
    lease.down = true;
    while (a.elector.isLeader() && clock.now() - lastRenew < 10_000) await clock.advance(100);
    assert.equal(await a.outcome, "lost");
    assert.deepEqual(a.log, ["started", "stopped"]);
    const gaveUpAfter = (a.stoppedAt ?? 0) - lastRenew;
    assert.ok(gaveUpAfter >= renewDeadlineMs, `${gaveUpAfter}`);
    assert.ok(gaveUpAfter < leaseDurationMs, `stepped down after ${gaveUpAfter} ms, before the lease could expire`);
  });

  test("the leader renews with one write per period, no read; a write by someone else is read and renewed at once", async () => {
    const clock = new FakeClock();
    const lease = new MemoryLease();
    const a = candidate(lease, clock, "a");
    await clock.advance(0);
    assert.ok(a.elector.isLeader());
    const reads = lease.reads;
    const writes = lease.writes.length;
    for (let i = 0; i < 10; i++) await clock.advance(retryPeriodMs);
    assert.equal(lease.writes.length - writes, 10, "one renewal per retry period");
    assert.equal(lease.reads, reads, "renewals do not read the Lease first");
    // Another writer touches the Lease without taking it (a label, kubectl): the next renewal
    // conflicts, reads the Lease, and renews in the same period.
    const touched = lease.state;
    assert.ok(touched);
    lease.state = { resourceVersion: String(++lease.version), record: touched.record };
    await clock.advance(retryPeriodMs);
    assert.equal(lease.reads, reads + 1);
    assert.equal(lease.writes.length - writes, 11);
    assert.ok(a.elector.isLeader());
    await clock.advance(retryPeriodMs);
    assert.equal(lease.reads, reads + 1, "back to write-only renewals");
    a.abort.abort();
    await clock.advance(1_000);
    assert.equal(await a.outcome, "stopped");
  });

  test("a leader that finds another holder (its Lease was taken) steps down at its next renewal", async () => {
    const clock = new FakeClock();
    const lease = new MemoryLease();
    const a = candidate(lease, clock, "a");
    await clock.advance(0);
    // Someone else overwrites the Lease (e.g. after a long pause of this process).
    lease.state = held("intruder", "999", clock.now());
    await clock.advance(retryPeriodMs);
    assert.equal(a.elector.isLeader(), false);
    assert.equal(await a.outcome, "lost");
    assert.equal(a.elector.leader(), "intruder");
  });

  test("concurrent takeover attempts on one expired Lease: exactly one wins (optimistic writes)", async () => {
    const clock = new FakeClock();
    const lease = new MemoryLease();
    lease.state = held("gone", "1", clock.now());
    const candidates = ["a", "b", "c"].map((id) => candidate(lease, clock, id));
    await clock.advance(leaseDurationMs + retryPeriodMs * 2);
    const leaders = candidates.filter((c) => c.elector.isLeader());
    assert.equal(leaders.length, 1);
    const takeovers = lease.writes.filter((w) => w.holder !== "gone");
    assert.ok(takeovers.length >= 1);
    for (const c of candidates) c.abort.abort();
    await clock.advance(1_000);
  });
});
