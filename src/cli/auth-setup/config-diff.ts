/**
 * What differs between a JWT auth mount's config as OpenBao reports it and the config
 * auth-setup would write. A config write replaces every field, so every field OpenBao
 * reports is compared (an unset field against its default), and each difference is told in
 * words without secrets: keys and CAs by fingerprint.
 */
import { createHash, createPublicKey } from "node:crypto";

/** The fields of auth/<path>/config and their values when unset (OpenBao v2.4). */
const defaults: Readonly<Record<string, unknown>> = {
  bound_issuer: "",
  default_role: "",
  jwks_ca_pem: "",
  jwks_url: "",
  jwt_supported_algs: [],
  jwt_validation_pubkeys: [],
  namespace_in_state: true,
  oidc_client_id: "",
  oidc_discovery_ca_pem: "",
  oidc_discovery_url: "",
  oidc_response_mode: "",
  oidc_response_types: [],
  override_allowed_server_names: [],
  provider_config: {},
};

const pemFields = new Set(["jwks_ca_pem", "oidc_discovery_ca_pem"]);

function short(hash: string): string {
  return `sha256:${hash.slice(0, 16)}`;
}

/** A public key's fingerprint (of its DER form, so PEM line breaks do not matter). */
function keyPrint(pem: string): string {
  try {
    const der = createPublicKey(pem).export({ type: "spki", format: "der" });
    return short(createHash("sha256").update(der).digest("hex"));
  } catch {
    return short(createHash("sha256").update(pem.trim()).digest("hex"));
  }
}

function normalise(field: string, value: unknown): unknown {
  const v = value ?? defaults[field];
  if (field === "jwt_validation_pubkeys" && Array.isArray(v)) return v.map((k) => keyPrint(String(k))).sort();
  if (typeof v === "string") return v.trim();
  if (Array.isArray(v)) return v.map(String).sort();
  return v;
}

function show(field: string, value: unknown): string {
  if (field === "jwt_validation_pubkeys" && Array.isArray(value)) {
    return value.length === 0 ? "no keys" : `${value.length} key(s) ${value.join(", ")}`;
  }
  if (pemFields.has(field) && typeof value === "string") {
    return value === "" ? "(none)" : `a certificate ${short(createHash("sha256").update(value).digest("hex"))}`;
  }
  return JSON.stringify(value);
}

/** One line per differing field, `field: now → wanted`; empty when the configs are the same. */
export function configDifferences(
  current: Readonly<Record<string, unknown>> | undefined,
  wanted: Readonly<Record<string, unknown>>,
): string[] {
  if (current === undefined) return ["not configured yet"];
  const out: string[] = [];
  for (const field of Object.keys(defaults)) {
    const have = normalise(field, current[field]);
    const want = normalise(field, wanted[field]);
    if (JSON.stringify(have) !== JSON.stringify(want)) {
      out.push(`${field}: ${show(field, have)} → ${show(field, want)}`);
    }
  }
  return out;
}
