/**
 * Errors from talking to OpenBao. Each has a stable `code` the executor maps to an exit
 * category (SPEC §4) and a message that names the member and the fix; tokens and JWTs
 * never appear in them (see `redact`). `OpenBaoError` is the base of the OpenBao layer
 * (util/coded-error.ts).
 */
import { CodedError } from "../util/coded-error.ts";

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

export class OpenBaoError extends CodedError<OpenBaoErrorCode> {
  readonly layer = "openbao";
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The member the call went to. */
  readonly address: string | undefined;

  constructor(
    code: OpenBaoErrorCode,
    message: string,
    options: { cause?: unknown; status?: number | undefined; address?: string | undefined } = {},
  ) {
    super(code, message, options);
    this.status = options.status;
    this.address = options.address;
  }
}

/** go-multierror's first line: `1 error occurred:`, `2 errors occurred:`. */
const multiErrorHeader = /^\d+ errors? occurred:$/;

/**
 * One readable line from OpenBao's error text. OpenBao wraps its errors with go-multierror,
 * `"<n> error(s) occurred:\n\t* <first>\n\t* <second>\n\n"`: the count lines go (also those of
 * nested lists), the items are kept in order and joined with "; ", an item's further lines are
 * joined with a space. Any other text only has its line breaks, tabs and runs of spaces made one
 * space. No word of an error is dropped.
 */
export function oneLineError(text: string): string {
  const lines = text.split(/\r?\n/);
  if (!multiErrorHeader.test(lines[0]?.trim() ?? "")) return text.replace(/\s+/g, " ").trim();
  const items: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    const item = /^\*\s+(.*)$/.exec(line);
    const content = (item ? (item[1] ?? "") : line).replace(/\s+/g, " ").trim();
    if (content === "" || multiErrorHeader.test(content)) continue;
    if (item || items.length === 0) items.push(content);
    else items[items.length - 1] += ` ${content}`;
  }
  return items.join("; ");
}

export { redact } from "../util/redact.ts";
