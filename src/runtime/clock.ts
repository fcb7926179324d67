/**
 * Time as the runtime sees it. Every timer in `src/runtime` (work-queue delays, backoff,
 * leader-election renewals) goes through a `Clock`, so unit tests drive them with a fake
 * clock instead of waiting.
 *
 * Invariants:
 * - `now()` is milliseconds since the epoch (what `Date.now()` returns).
 * - A timer fires at most once, never before `now() >= at` by the clock's own reckoning
 *   (`systemClock` re-arms when Node fires a timer early or the delay exceeds Node's
 *   2^31−1 ms limit), and never after `cancel()`.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once, `delayMs` from now (≤ 0: on the next turn of the event loop). */
  setTimer(fn: () => void, delayMs: number): Timer;
}

export interface Timer {
  cancel(): void;
}

/** Node's `setTimeout` only takes 32-bit delays; longer ones are split. */
const maxNodeDelayMs = 2_147_483_647;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, delayMs) {
    const at = Date.now() + Math.max(0, delayMs);
    let handle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const remaining = at - Date.now();
      handle = setTimeout(
        () => {
          if (Date.now() < at) arm();
          else {
            handle = undefined;
            fn();
          }
        },
        Math.min(Math.max(0, remaining), maxNodeDelayMs),
      );
    };
    arm();
    return {
      cancel() {
        if (handle !== undefined) clearTimeout(handle);
        handle = undefined;
      },
    };
  },
};

/**
 * Resolves after `delayMs` on `clock`, or at once when `signal` aborts (it never rejects:
 * callers check `signal.aborted` afterwards).
 */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = (): void => {
      timer.cancel();
      resolve();
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
