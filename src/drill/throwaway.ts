/**
 * The throwaway OpenBao, as a drill talks to it: one `bao server`, Raft storage on a scratch
 * directory, loopback only, uninitialised when the drill starts. Everything here is a single
 * API call or a parse of its answer; the sequence and the decisions are in drill.ts and
 * outcome.ts.
 *
 * `sys/seal-status` is the one window that stays open after a snapshot of another cluster was
 * applied (see drill.ts for what else is observable): it answers 200 with the *restored*
 * seal configuration, or — when the restored configuration is of another seal type than the
 * server's own seal stanza — 500 with `barrier seal type of "<restored>" does not match
 * expected|loaded type of "<configured>"`. `parseSealStatus` reads both.
 */
import { OpenBaoError } from "../openbao/errors.ts";
import { errorForStatus, type OpenBaoHttp, openBaoErrors, readCapped } from "../openbao/http.ts";

export interface SealStatus {
  /** `shamir`, or the auto-unseal's type (`transit`, `awskms`, …). */
  readonly type: string;
  readonly initialized: boolean;
  readonly sealed: boolean;
  /** Unseal threshold and shares of the seal configuration in storage (`t`, `n`). */
  readonly threshold: number;
  readonly shares: number;
  readonly progress: number;
}

export type SealObservation =
  | { readonly kind: "status"; readonly status: SealStatus }
  /** The restored seal configuration is of another type than the server's seal stanza. */
  | { readonly kind: "foreign-seal"; readonly restored: string; readonly configured: string };

const foreignSeal = /barrier seal type of "([^"]{1,64})" does not match (?:expected|loaded) type of "([^"]{1,64})"/;

const count = (value: unknown): number => (typeof value === "number" && Number.isSafeInteger(value) ? value : 0);

/** Reads an answer of `GET sys/seal-status`; anything else is an `OpenBaoError` BadResponse. */
export function parseSealStatus(httpStatus: number, text: string, address: string): SealObservation {
  if (httpStatus === 200) {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new OpenBaoError("BadResponse", `${address} answered sys/seal-status with something that is not JSON`, {
        address,
      });
    }
    if (typeof body.type !== "string" || typeof body.sealed !== "boolean" || typeof body.initialized !== "boolean") {
      throw new OpenBaoError(
        "BadResponse",
        `${address} answered sys/seal-status without type, sealed and initialized`,
        {
          address,
        },
      );
    }
    return {
      kind: "status",
      status: {
        type: body.type,
        initialized: body.initialized,
        sealed: body.sealed,
        threshold: count(body.t),
        shares: count(body.n),
        progress: count(body.progress),
      },
    };
  }
  // OpenBao's words, not the raw JSON (whose quotes are escaped).
  const mismatch = foreignSeal.exec(openBaoErrors(text));
  if (mismatch?.[1] !== undefined && mismatch[2] !== undefined) {
    return { kind: "foreign-seal", restored: mismatch[1], configured: mismatch[2] };
  }
  throw errorForStatus(httpStatus, text, address, "sys/seal-status", "BadResponse");
}

/** `GET sys/leader`, the fields a drill uses. */
export interface LeaderFacts {
  readonly isSelf: boolean;
  /** Unset (or Go's zero time) while the node is not active. */
  readonly activeTime: string | undefined;
  readonly appliedIndex: number;
  readonly committedIndex: number;
}

const zeroTime = "0001-01-01T00:00:00Z";

/** One throwaway OpenBao and the calls a drill makes to it. */
export class Throwaway {
  readonly address: string;
  readonly #http: OpenBaoHttp;
  readonly #signal: AbortSignal;

  constructor(http: OpenBaoHttp, address: string, signal: AbortSignal) {
    this.#http = http;
    this.address = address;
    this.#signal = signal;
  }

  /**
   * `sys/seal-status`. While OpenBao applies a snapshot it answers only once done (it holds
   * its state lock for ≥ 5 s), hence the long default timeout.
   */
  async sealStatus(timeoutMs = 60_000): Promise<SealObservation> {
    const res = await this.#http.request(this.address, {
      method: "GET",
      path: "sys/seal-status",
      timeoutMs,
      signal: this.#signal,
    });
    const text = await readCapped(res, 64 * 1024, this.address);
    return parseSealStatus(res.statusCode ?? 0, text, this.address);
  }

  /** `sys/leader`; undefined while OpenBao cannot answer it (sealed: 503). */
  async leader(): Promise<LeaderFacts | undefined> {
    const res = await this.#http.request(this.address, {
      method: "GET",
      path: "sys/leader",
      timeoutMs: 60_000,
      signal: this.#signal,
    });
    const text = await readCapped(res, 64 * 1024, this.address);
    if (res.statusCode !== 200) return undefined;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const activeTime =
      typeof body.active_time === "string" && body.active_time !== zeroTime ? body.active_time : undefined;
    return {
      isSelf: body.is_self === true,
      activeTime,
      appliedIndex: count(body.raft_applied_index),
      committedIndex: count(body.raft_committed_index),
    };
  }

  /** `sys/health`'s cluster id once the data is open (unauthenticated). */
  async clusterId(): Promise<string | undefined> {
    const res = await this.#http.request(this.address, {
      method: "GET",
      path: "sys/health",
      timeoutMs: 15_000,
      signal: this.#signal,
    });
    const text = await readCapped(res, 64 * 1024, this.address);
    try {
      const id = (JSON.parse(text) as { cluster_id?: unknown }).cluster_id;
      return typeof id === "string" && id !== "" ? id : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * `sys/init` with one share: a Shamir throwaway gets one unseal key, an auto-unseal one a
   * recovery key (discarded: the drill never needs it). The root token is only good until the
   * snapshot replaces the throwaway's data; both are secrets, kept in memory only.
   */
  async initialise(autoUnseal: boolean): Promise<{ rootToken: string; unsealKey: string | undefined }> {
    const answer = await this.#http.json<{ root_token?: unknown; keys_base64?: unknown }>(this.address, {
      method: "POST",
      path: "sys/init",
      json: autoUnseal ? { recovery_shares: 1, recovery_threshold: 1 } : { secret_shares: 1, secret_threshold: 1 },
      timeoutMs: 60_000,
      signal: this.#signal,
    });
    const rootToken = answer?.root_token;
    const keys = answer?.keys_base64;
    const unsealKey = Array.isArray(keys) && typeof keys[0] === "string" ? keys[0] : undefined;
    if (typeof rootToken !== "string" || rootToken === "" || (!autoUnseal && unsealKey === undefined)) {
      throw new OpenBaoError("BadResponse", `${this.address} answered sys/init without a root token and key`, {
        address: this.address,
      });
    }
    return { rootToken, unsealKey };
  }

  /**
   * Submits unseal keys in order (after resetting any progress) until OpenBao reports unsealed.
   * `refused` carries OpenBao's words (never a key); `short` means every key was taken and the
   * threshold still not reached.
   */
  async unseal(
    keys: readonly string[],
  ): Promise<
    { readonly result: "unsealed" } | { readonly result: "refused"; readonly detail: string } | ShortOfThreshold
  > {
    await this.#unsealCall({ reset: true });
    let last: SealStatus | undefined;
    for (const key of keys) {
      const answer = await this.#unsealCall({ key });
      if (answer.status !== 200)
        return { result: "refused", detail: openBaoErrors(answer.text) || `HTTP ${answer.status}` };
      const observed = parseSealStatus(answer.status, answer.text, this.address);
      if (observed.kind !== "status") return { result: "refused", detail: "the seal types do not match" };
      last = observed.status;
      if (!last.sealed) return { result: "unsealed" };
    }
    return { result: "short", given: keys.length, threshold: last?.threshold ?? 0 };
  }

  async #unsealCall(json: unknown): Promise<{ status: number; text: string }> {
    const res = await this.#http.request(this.address, {
      method: "POST",
      path: "sys/unseal",
      json,
      timeoutMs: 60_000,
      signal: this.#signal,
    });
    return { status: res.statusCode ?? 0, text: await readCapped(res, 64 * 1024, this.address) };
  }
}

export interface ShortOfThreshold {
  readonly result: "short";
  readonly given: number;
  readonly threshold: number;
}
