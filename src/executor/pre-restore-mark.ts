/**
 * Proof that OpenBao serves the restored data and not the data from before the restore.
 *
 * OpenBao answers the snapshot POST once it has buffered the snapshot and applies it later. A
 * node that restarts in between (OpenBao v2.4.0's autopilot shutdown race crashes exactly
 * there, and a kubelet restarts the container) comes back active with a new `active_time` and
 * a higher Raft index, serving the data from *before*: every sign `awaitRestoreServed` reads
 * looks like a finished restore. So the run marks the state it is about to replace with
 * something the snapshot cannot hold, and afterwards requires the mark to be gone:
 *
 * - a JWT login: the service token it logged in with. It was created after the snapshot was
 *   taken, so the restored token store does not know it (403); if it still works, the old data
 *   is being served.
 * - a static token: a random value written into the token's own cubbyhole (the `default`
 *   policy allows it). A static token may well be in the snapshot, but not this run's value.
 *
 * A batch token (not stored, valid in any copy of the data) or a static token that cannot
 * write its cubbyhole leaves nothing to compare: the run then relies on the signs of
 * `awaitRestoreServed` alone, as it did before this check existed.
 */
import { randomUUID } from "node:crypto";
import { OpenBaoError } from "../openbao/errors.ts";
import { type OpenBaoHttp, readCapped } from "../openbao/http.ts";
import type { RestoreConfig } from "./config.ts";

/** Where a static token's mark goes: its own cubbyhole, under the product's name. */
export const markPath = "cubbyhole/openbao-backup/restore-mark";

export type PreRestoreMark =
  | { readonly kind: "login-token" }
  | { readonly kind: "cubbyhole"; readonly value: string }
  | { readonly kind: "none" };

const timeoutMs = 15_000;

/** `GET auth/token/lookup-self`: the HTTP status and, on 200, the token's type. */
async function lookupSelf(
  http: OpenBaoHttp,
  address: string,
  token: string,
  signal: AbortSignal,
): Promise<{ status: number; type?: string }> {
  const res = await http.request(address, { method: "GET", path: "auth/token/lookup-self", token, timeoutMs, signal });
  const text = await readCapped(res, 64 * 1024, address);
  const status = res.statusCode ?? 0;
  if (status !== 200) return { status };
  const type = (JSON.parse(text) as { data?: { type?: unknown } }).data?.type;
  return typeof type === "string" ? { status, type } : { status };
}

/** Marks the state about to be replaced; called with the token the snapshot is sent with. */
export async function markPreRestoreState(
  http: OpenBaoHttp,
  leader: string,
  token: string,
  auth: RestoreConfig["auth"],
  signal: AbortSignal,
): Promise<PreRestoreMark> {
  const self = await lookupSelf(http, leader, token, signal);
  // A token that cannot look itself up (no default policy), or a batch token (valid in any copy
  // of the data), leaves nothing to compare.
  if (self.status !== 200 || self.type === "batch") return { kind: "none" };
  if (auth.method === "jwt") return { kind: "login-token" };
  const value = randomUUID();
  const res = await http.request(leader, { method: "POST", path: markPath, token, json: { value }, timeoutMs, signal });
  await readCapped(res, 64 * 1024, leader).catch(() => "");
  const status = res.statusCode ?? 0;
  // No cubbyhole access (the default policy grants it): nothing to compare.
  if (status < 200 || status >= 300) return { kind: "none" };
  return { kind: "cubbyhole", value };
}

/**
 * Why the data from before the restore is still served, or undefined when the mark is gone
 * (or there is none). Throws on an answer that settles nothing (a timeout, a 5xx): the caller
 * asks again.
 */
export async function preRestoreStateServed(
  http: OpenBaoHttp,
  active: string,
  token: string,
  mark: PreRestoreMark,
  signal: AbortSignal,
): Promise<string | undefined> {
  if (mark.kind === "none") return undefined;
  const self = await lookupSelf(http, active, token, signal);
  // Unknown to the restored token store: the data it lived in has been replaced.
  if (self.status === 403) return undefined;
  if (self.status !== 200) {
    throw new OpenBaoError("BadResponse", `${active} answered a token lookup with HTTP ${self.status}`, {
      address: active,
    });
  }
  if (mark.kind === "login-token") {
    return "the token this run logged in with before sending the snapshot is still valid, so OpenBao still serves the data from before";
  }
  const res = await http.request(active, { method: "GET", path: markPath, token, timeoutMs, signal });
  const text = await readCapped(res, 64 * 1024, active);
  const status = res.statusCode ?? 0;
  if (status === 404) return undefined;
  if (status !== 200) {
    throw new OpenBaoError("BadResponse", `${active} answered a cubbyhole read with HTTP ${status}`, {
      address: active,
    });
  }
  const stored = (JSON.parse(text) as { data?: { value?: unknown } }).data?.value;
  return stored === mark.value
    ? "the value this run wrote into its token's cubbyhole before sending the snapshot is still there, so OpenBao still serves the data from before"
    : undefined;
}

/** Best effort: a mark left in data that was not replaced is removed again. */
export async function removeMark(
  http: OpenBaoHttp,
  address: string,
  token: string,
  mark: PreRestoreMark,
  signal: AbortSignal,
): Promise<void> {
  if (mark.kind !== "cubbyhole") return;
  await http
    .request(address, { method: "DELETE", path: markPath, token, timeoutMs: 5000, signal })
    .then((res) => readCapped(res, 64 * 1024, address))
    .catch(() => undefined);
}
