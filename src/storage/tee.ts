/**
 * One stream read once, written to several destinations: `tee(source, n)` returns `n` branches
 * that each yield every chunk of `source`, the same Buffer objects (no copies).
 *
 * Backpressure: the next chunk is pulled from the source only when every live branch has taken
 * the previous one, so the source goes at the pace of the slowest destination and memory stays
 * at what each destination's own upload buffers (≈ destinations × partSize × (concurrency + 1)),
 * plus one chunk.
 *
 * A branch whose consumer stops — it called `return()` (a destroyed Readable does), or the caller
 * says so with `detach(i)` when its upload failed — is detached: the others go on without
 * waiting for it. A source failure reaches
 * every live branch as that same error, so each upload takes its own failure path and leaves
 * nothing behind. When every branch has detached, the source is closed (`return()`).
 */

interface Waiter {
  resolve: (result: IteratorResult<Uint8Array>) => void;
  reject: (err: unknown) => void;
}

export interface Tee {
  readonly branches: readonly AsyncIterable<Uint8Array>[];
  /**
   * Stops feeding branch `i`: for a consumer that failed without closing its iterator (an upload
   * that rejected), so that the others do not wait for it.
   */
  detach(i: number): void;
}

export function tee(source: AsyncIterable<Uint8Array>, n: number): Tee {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`tee needs at least one branch, got ${n}`);
  const iterator = source[Symbol.asyncIterator]();
  /** Per branch: the chunk it has not taken yet (undefined once taken), and whether it is live. */
  const pending: (Uint8Array | undefined)[] = new Array(n).fill(undefined);
  const live: boolean[] = new Array(n).fill(true);
  const waiters: (Waiter | undefined)[] = new Array(n).fill(undefined);
  let pulling = false;
  let done = false;
  let failure: { error: unknown } | undefined;

  const settleWaiters = (): void => {
    for (let i = 0; i < n; i++) {
      const waiter = waiters[i];
      if (waiter === undefined) continue;
      const chunk = pending[i];
      if (chunk !== undefined) {
        pending[i] = undefined;
        waiters[i] = undefined;
        waiter.resolve({ value: chunk, done: false });
      } else if (failure !== undefined) {
        waiters[i] = undefined;
        waiter.reject(failure.error);
      } else if (done) {
        waiters[i] = undefined;
        waiter.resolve({ value: undefined, done: true });
      }
    }
  };

  /** Pulls the next chunk once every live branch has taken the last one. */
  const maybePull = (): void => {
    if (pulling || done || failure !== undefined) return;
    for (let i = 0; i < n; i++) if (live[i] && pending[i] !== undefined) return;
    if (!live.some((l) => l)) return;
    pulling = true;
    iterator.next().then(
      (result) => {
        pulling = false;
        if (result.done) done = true;
        else for (let i = 0; i < n; i++) if (live[i]) pending[i] = result.value;
        settleWaiters();
        if (waiters.some((w) => w !== undefined)) maybePull();
      },
      (err: unknown) => {
        pulling = false;
        failure = { error: err };
        settleWaiters();
      },
    );
  };

  const detach = (i: number): void => {
    if (!live[i]) return;
    live[i] = false;
    pending[i] = undefined;
    const waiter = waiters[i];
    waiters[i] = undefined;
    waiter?.resolve({ value: undefined, done: true });
    if (!live.some((l) => l)) {
      if (!done && failure === undefined) void iterator.return?.().catch(() => undefined);
      return;
    }
    maybePull();
  };

  const branch = (i: number): AsyncIterable<Uint8Array> => ({
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      return {
        next(): Promise<IteratorResult<Uint8Array>> {
          if (!live[i]) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve, reject) => {
            waiters[i] = { resolve, reject };
            settleWaiters();
            maybePull();
          });
        },
        return(): Promise<IteratorResult<Uint8Array>> {
          detach(i);
          return Promise.resolve({ value: undefined, done: true });
        },
        throw(err: unknown): Promise<IteratorResult<Uint8Array>> {
          detach(i);
          return Promise.reject(err);
        },
      };
    },
  });

  return { branches: Array.from({ length: n }, (_, i) => branch(i)), detach };
}
