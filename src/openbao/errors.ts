/**
 * Errors from talking to OpenBao. Each has a stable `code` the executor maps to an exit
 * category (SPEC §4) and a message that names the member and the fix; tokens and JWTs
 * never appear in them (see `redact`).
 */
export type OpenBaoErrorCode =
  /** Connection refused, DNS, TLS handshake, timeout. */
  | "Unreachable"
  /** Login refused or the token is not accepted. */
  | "AuthFailed"
  /** Authenticated, but the policy does not allow the call. */
  | "PermissionDenied"
  /** No member reports itself (or a listed member) as the active node. */
  | "NoLeader"
  /** The snapshot could not be read completely (HTTP error, dropped stream). */
  | "SnapshotFailed"
  /** OpenBao refused or failed to apply a snapshot. */
  | "RestoreFailed"
  /** The answer was not what the API promises (HTML, redirect, oversized, not JSON). */
  | "BadResponse";

export class OpenBaoError extends Error {
  readonly code: OpenBaoErrorCode;
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The member the call went to. */
  readonly address: string | undefined;

  constructor(
    code: OpenBaoErrorCode,
    message: string,
    options: { cause?: unknown; status?: number | undefined; address?: string | undefined } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OpenBaoError";
    this.code = code;
    this.status = options.status;
    this.address = options.address;
  }
}

export { redact } from "../util/redact.ts";
