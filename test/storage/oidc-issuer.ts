/**
 * The token-issuing side of web identity for the S3 `roleArn` test: an RSA key made for the
 * run, the OpenID discovery document and JWKS that publish it (static JSON on loopback, the
 * way a kube-apiserver's service-account issuer publishes its keys), and JWTs signed with it
 * in the shape of a projected ServiceAccount token (audience sts.amazonaws.com).
 *
 * It verifies nothing and makes no decision: MinIO's real STS (AssumeRoleWithWebIdentity)
 * fetches these documents, checks the signature, issuer, audience and expiry, and decides.
 */
import { createSign, generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface OidcIssuer {
  readonly issuer: string;
  readonly discoveryUrl: string;
  /** A projected-token-like JWT; `signWith` another key to forge one. */
  token(claims?: Record<string, unknown>, signWith?: KeyObject): string;
  stop(): Promise<void>;
}

const b64url = (value: Buffer | string): string => Buffer.from(value).toString("base64url");

export function newSigningKey(): KeyObject {
  return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
}

export async function startOidcIssuer(audience = "sts.amazonaws.com"): Promise<OidcIssuer> {
  const privateKey = newSigningKey();
  const kid = randomBytes(8).toString("hex");
  const jwk = { ...privateKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" } as Record<string, unknown>;
  for (const secret of ["d", "p", "q", "dp", "dq", "qi"]) delete jwk[secret];
  let issuer = "";
  const server: Server = createServer((req, res) => {
    const documents: Record<string, unknown> = {
      "/.well-known/openid-configuration": {
        issuer,
        jwks_uri: `${issuer}/openid/v1/jwks`,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        scopes_supported: ["openid"],
      },
      "/openid/v1/jwks": { keys: [jwk] },
    };
    const body = documents[req.url ?? ""];
    res.writeHead(body === undefined ? 404 : 200, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { error: "not found" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    token(claims = {}, signWith = privateKey) {
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid }));
      const payload = b64url(
        JSON.stringify({
          iss: issuer,
          aud: [audience],
          sub: "system:serviceaccount:backups:openbao-backup",
          iat: now,
          nbf: now,
          exp: now + 3600,
          ...claims,
        }),
      );
      const signature = createSign("RSA-SHA256").update(`${header}.${payload}`).sign(signWith);
      return `${header}.${payload}.${b64url(signature)}`;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
