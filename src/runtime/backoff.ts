/**
 * Exponential backoff, per key: the delay before the n-th retry of a key is
 * `min(baseMs × factor^(n−1), maxMs)`, optionally spread by ±`jitter`.
 *
 * Invariants:
 * - Delays never decrease while a key keeps failing, never exceed `maxMs` (jitter included),
 *   and start again from `baseMs` after `forget(key)`.
 * - Keys are independent: one key failing does not slow another down.
 * - With `jitter` 0 (the default) delays are deterministic, which the unit tests rely on.
 */
export interface BackoffOptions {
  /** Delay before the first retry; default 200 ms. */
  readonly baseMs?: number;
  /** Upper bound; default 300 000 ms (5 min). */
  readonly maxMs?: number;
  /** Growth per failure; default 2. */
  readonly factor?: number;
  /** Fraction in [0, 1): each delay is multiplied by a random value in [1 − jitter, 1 + jitter]. */
  readonly jitter?: number;
  /** Random source for jitter, in [0, 1); `Math.random` by default. */
  readonly random?: () => number;
}

export const defaultBackoff = { baseMs: 200, maxMs: 300_000, factor: 2, jitter: 0 } as const;

/** The delay for the `attempt`-th consecutive failure (1-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const baseMs = options.baseMs ?? defaultBackoff.baseMs;
  const maxMs = options.maxMs ?? defaultBackoff.maxMs;
  const factor = options.factor ?? defaultBackoff.factor;
  const jitter = options.jitter ?? defaultBackoff.jitter;
  const exponent = Math.max(0, attempt - 1);
  // factor^exponent overflows to Infinity for large attempts; min() keeps it bounded.
  let delay = Math.min(baseMs * factor ** exponent, maxMs);
  if (jitter > 0) {
    const random = options.random ?? Math.random;
    delay = Math.min(delay * (1 - jitter + 2 * jitter * random()), maxMs);
  }
  return Math.max(0, Math.round(delay));
}

/** Counts failures per key and turns them into delays. */
export class KeyedBackoff {
  readonly #options: BackoffOptions;
  readonly #failures = new Map<string, number>();

  constructor(options: BackoffOptions = {}) {
    this.#options = options;
  }

  /** Records one more failure of `key` and returns how long to wait before retrying it. */
  next(key: string): number {
    const attempt = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, attempt);
    return backoffDelay(attempt, this.#options);
  }

  /** Consecutive failures recorded for `key` since it was last forgotten. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The key succeeded (or gave up): its next failure starts from `baseMs` again. */
  forget(key: string): void {
    this.#failures.delete(key);
  }
}
