/**
 * Reading the status code of a failed Kubernetes API call (`ApiException` from
 * @kubernetes/client-node carries `code`), so callers branch on meaning, not on text.
 */
export function apiStatus(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "number") return code;
  const status = (err as { statusCode?: unknown }).statusCode;
  return typeof status === "number" ? status : undefined;
}

export const isNotFound = (err: unknown): boolean => apiStatus(err) === 404;
export const isForbidden = (err: unknown): boolean => apiStatus(err) === 403;
export const isConflict = (err: unknown): boolean => apiStatus(err) === 409;
export const isAlreadyExists = (err: unknown): boolean => apiStatus(err) === 409;
