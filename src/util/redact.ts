/**
 * The one scrubber for text that may reach a log line, an event, a status field or a
 * termination message: every given secret value is replaced, and so is anything shaped
 * like a JWT or an OpenBao token even when nobody listed it (a server may echo one back).
 */
const jwtPattern = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const tokenPattern = /\b(?:hvs|hvb|hvr|s|b|r)\.[A-Za-z0-9_-]{20,}/g;

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  // Listed secrets first: a secret may itself contain something token-shaped.
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  return out.replace(jwtPattern, "[redacted-jwt]").replace(tokenPattern, "[redacted-token]");
}
