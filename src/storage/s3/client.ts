/**
 * The S3 client for a target: credentials (static keys, web identity, default chain), region,
 * endpoint, path-style, TLS. Checksums are computed only where S3 requires them
 * (`WHEN_REQUIRED`): S3-compatible stores do not all accept the SDK's default CRC32 headers,
 * and the executor hashes the stream itself (SHA-256, manifest).
 */
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
// The web-identity provider the SDK's default chain uses itself. `@aws-sdk/credential-providers`
// re-exports it publicly; it is not a declared dependency yet (see the storage issue's note).
import { fromTokenFile } from "@aws-sdk/credential-providers";
import { messageOf, TargetConfigError } from "../errors.ts";
import type { S3Target, StorageCredentials } from "../target.ts";
import type { Agents } from "../tls.ts";
import { ContinueAwareHandler } from "./continue-handler.ts";

export interface S3ClientOptions {
  /** Projected ServiceAccount token for `roleArn`; default `AWS_WEB_IDENTITY_TOKEN_FILE`. */
  readonly webIdentityTokenFile?: string | undefined;
}

export type S3CredentialMode = "static" | "web-identity" | "default-chain";

/** Which credentials a target + Secret select; pure, for tests and log lines. */
export function s3CredentialMode(target: S3Target, credentials: StorageCredentials): S3CredentialMode {
  const hasId = credentials.accessKeyId !== undefined;
  const hasSecret = credentials.secretAccessKey !== undefined;
  if (hasId !== hasSecret) {
    const missing = hasId ? "secretAccessKey" : "accessKeyId";
    throw new TargetConfigError(
      `credentials.${missing}`,
      "is missing: an S3 credentials Secret needs both accessKeyId and secretAccessKey " +
        "(or neither, to use target.roleArn or the pod's ambient identity)",
    );
  }
  if (hasId) return "static";
  if (target.roleArn !== undefined) return "web-identity";
  if (credentials.sessionToken !== undefined) {
    throw new TargetConfigError("credentials.sessionToken", "is set without accessKeyId and secretAccessKey");
  }
  return "default-chain";
}

/**
 * Where web identity is exchanged for credentials: AWS STS for AWS endpoints, the store's own
 * endpoint for S3-compatible stores (MinIO, Ceph RGW serve STS on the S3 endpoint).
 */
export function stsEndpointFor(endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  const host = new URL(endpoint).hostname;
  return host === "amazonaws.com" || host.endsWith(".amazonaws.com") || host.endsWith(".amazonaws.com.cn")
    ? undefined
    : endpoint;
}

export function createS3Client(
  target: S3Target,
  credentials: StorageCredentials,
  agents: Agents,
  options: S3ClientOptions,
): S3Client {
  const requestHandler = new ContinueAwareHandler(agents);
  const region = credentials.region ?? target.region;
  const mode = s3CredentialMode(target, credentials);
  let identity: S3ClientConfig["credentials"];
  if (mode === "static") {
    identity = {
      accessKeyId: credentials.accessKeyId ?? "",
      secretAccessKey: credentials.secretAccessKey ?? "",
      ...(credentials.sessionToken === undefined ? {} : { sessionToken: credentials.sessionToken }),
    };
  } else if (mode === "web-identity") {
    const tokenFile = options.webIdentityTokenFile ?? process.env.AWS_WEB_IDENTITY_TOKEN_FILE;
    if (tokenFile === undefined || tokenFile === "") {
      throw new TargetConfigError(
        "target.roleArn",
        "needs a projected ServiceAccount token (audience sts.amazonaws.com); " +
          "mount one and point AWS_WEB_IDENTITY_TOKEN_FILE at it",
      );
    }
    const stsEndpoint = stsEndpointFor(target.endpoint);
    const provider = fromTokenFile({
      roleArn: target.roleArn,
      webIdentityTokenFile: tokenFile,
      roleSessionName: "openbao-backup",
      clientConfig: { region, requestHandler, ...(stsEndpoint === undefined ? {} : { endpoint: stsEndpoint }) },
    });
    // STS answers a refused token with codes that say nothing about auth (MinIO: 400
    // InvalidParameterValue); any failure to obtain credentials is an auth failure, unless the
    // cause is a network error (which classification finds in the cause chain first).
    identity = async (props?: Parameters<typeof provider>[0]) => {
      try {
        return await provider(props);
      } catch (err) {
        throw Object.assign(new Error(`web identity for ${target.roleArn} was refused: ${messageOf(err) ?? err}`), {
          name: "WebIdentityRejected",
          cause: err,
        });
      }
    };
  }
  return new S3Client({
    region,
    ...(target.endpoint === undefined ? {} : { endpoint: target.endpoint }),
    forcePathStyle: target.usePathStyle,
    ...(identity === undefined ? {} : { credentials: identity }),
    requestHandler,
    // Every request with a body waits for the store's 100 Continue (../put-request.ts): a refusal
    // then arrives as the store's answer, never as a broken pipe. One round trip per request.
    expectContinueHeader: true,
    maxAttempts: 3,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}
