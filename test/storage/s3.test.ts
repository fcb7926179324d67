/**
 * S3 against a real MinIO: the ObjectStore contract and TLS, then every S3 credential and
 * addressing mode of SPEC §2 — static keys (with a session token), web identity (`roleArn`
 * + projected token, exchanged by MinIO's own STS), the default chain, region, path-style.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { isStorageError, TargetConfigError } from "../../src/storage/errors.ts";
import { type OpenOptions, openObjectStore } from "../../src/storage/index.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { parseTarget, type StorageCredentials, type TargetSpec } from "../../src/storage/target.ts";
import { scratchDir, superviseServers, waitFor } from "../servers/process.ts";
import { type StorageServer, startStorageServer } from "../servers/storage.ts";
import { storageContract, tlsContract } from "./contract.ts";
import { generate, sha256Of } from "./data.ts";
import { newSigningKey, type OidcIssuer, startOidcIssuer } from "./oidc-issuer.ts";

superviseServers();
storageContract("s3");
tlsContract("s3");

const region = "eu-central-2";
const bucket = "modes";

/** AssumeRoleWithWebIdentity by hand (it is unsigned), independent of the code under test. */
function assumeRole(endpoint: string, roleArn: string, token: string): Promise<StorageCredentials> {
  const query = new URLSearchParams({
    Action: "AssumeRoleWithWebIdentity",
    Version: "2011-06-15",
    RoleArn: roleArn,
    WebIdentityToken: token,
  });
  return new Promise((resolve, reject) => {
    const req = request(`${endpoint}/?${query}`, { method: "POST" }, (res) => {
      let xml = "";
      res.on("data", (c: Buffer) => {
        xml += c.toString();
      });
      res.on("end", () => {
        const pick = (tag: string): string =>
          /<(\w+)>([^<]*)<\/\1>/g.exec(xml.slice(xml.indexOf(`<${tag}>`)))?.[2] ?? "";
        if (res.statusCode !== 200) reject(new Error(`STS ${res.statusCode}: ${xml}`));
        else
          resolve({
            accessKeyId: pick("AccessKeyId"),
            secretAccessKey: pick("SecretAccessKey"),
            sessionToken: pick("SessionToken"),
          });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("s3: credentials, region and addressing modes", () => {
  let idp: OidcIssuer;
  let server: StorageServer;
  let roleArn = "";
  const stores: ObjectStore[] = [];
  const open = (spec: TargetSpec, credentials: StorageCredentials, options: OpenOptions = {}): ObjectStore => {
    const store = openObjectStore(parseTarget(server.target(bucket, { region, ...spec })), credentials, options);
    stores.push(store);
    return store;
  };
  const roundTrip = async (store: ObjectStore, key: string): Promise<void> => {
    const data = generate(64 * 1024);
    await store.upload(key, data.source);
    assert.equal((await sha256Of(await store.download(key))).sha256, data.sha256());
  };

  before(async () => {
    idp = await startOidcIssuer("sts.amazonaws.com");
    server = await startStorageServer("s3", {
      name: "minio-sts",
      minioEnv: {
        MINIO_SITE_REGION: region,
        MINIO_IDENTITY_OPENID_CONFIG_URL: idp.discoveryUrl,
        MINIO_IDENTITY_OPENID_CLIENT_ID: "sts.amazonaws.com",
        MINIO_IDENTITY_OPENID_ROLE_POLICY: "readwrite",
      },
    });
    roleArn = await waitFor(
      async () => /arn:minio:iam:[^:]*::role\/\S+/.exec(readFileSync(server.processes[0]?.logPath ?? "", "utf8"))?.[0],
      { what: "MinIO to print its IAM role ARN", timeoutMs: 10_000 },
    );
    await server.createBucket(bucket);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await server?.stop();
    await idp?.stop();
  });

  test("web identity: roleArn + projected token file, exchanged by the store's STS, reads and writes", async () => {
    const tokenFile = join(scratchDir("token"), "token");
    writeFileSync(tokenFile, idp.token());
    const store = open({ roleArn }, {}, { webIdentityTokenFile: tokenFile });
    await roundTrip(store, "web-identity/object");
  });

  test("web identity with a token the issuer did not sign is AuthDenied, without the token in the error", async () => {
    const tokenFile = join(scratchDir("token"), "token");
    const forged = idp.token({}, newSigningKey());
    writeFileSync(tokenFile, forged);
    const store = open({ roleArn }, {}, { webIdentityTokenFile: tokenFile });
    await assert.rejects(store.head("web-identity/object"), (err) => {
      assert.ok(isStorageError(err), String(err));
      assert.equal(err.code, "AuthDenied", err.message);
      assert.ok(!err.message.includes(forged.split(".")[2] ?? forged));
      return true;
    });
  });

  test("roleArn without a token file is a configuration error naming the field", () => {
    const saved = process.env.AWS_WEB_IDENTITY_TOKEN_FILE;
    delete process.env.AWS_WEB_IDENTITY_TOKEN_FILE;
    try {
      assert.throws(
        () => open({ roleArn }, {}),
        (err) => err instanceof TargetConfigError && err.field === "target.roleArn",
      );
    } finally {
      if (saved !== undefined) process.env.AWS_WEB_IDENTITY_TOKEN_FILE = saved;
    }
  });

  test("static keys with a session token: the token is sent (temporary keys fail without it)", async () => {
    const temporary = await assumeRole(server.endpoint, roleArn, idp.token());
    assert.ok(temporary.sessionToken);
    await roundTrip(open({}, temporary), "session-token/object");
    const withoutToken: StorageCredentials = { ...temporary };
    delete withoutToken.sessionToken;
    await assert.rejects(open({}, withoutToken).head("session-token/object"), (err) => {
      assert.ok(isStorageError(err), String(err));
      assert.equal(err.code, "AuthDenied", err.message);
      const everything = `${err.message}\n${inspect(err, { depth: 6 })}`;
      assert.ok(!everything.includes(temporary.secretAccessKey ?? "-"), "the secret leaked into the error");
      return true;
    });
  });

  test("region: signed for target.region; credentials.region overrides it; a wrong region is refused", async () => {
    await roundTrip(open({ region }, server.credentials), "region/object");
    await roundTrip(open({ region: "us-east-1" }, { ...server.credentials, region }), "region/override");
    await assert.rejects(open({ region: "us-east-1" }, server.credentials).head("region/object"), (err) => {
      assert.ok(isStorageError(err), String(err));
      assert.match(err.message, /region|AuthorizationHeaderMalformed/i);
      return true;
    });
  });

  test("default chain: no Secret and no roleArn uses the environment's credentials", async () => {
    const keys = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"] as const;
    const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
    process.env.AWS_ACCESS_KEY_ID = server.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = server.credentials.secretAccessKey;
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    try {
      await roundTrip(open({}, {}), "default-chain/object");
    } finally {
      for (const k of keys) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  test("default chain with no identity at all is AuthDenied, quickly", async () => {
    const overrides: Record<string, string | undefined> = {
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_ROLE_ARN: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials",
      AWS_CONFIG_FILE: "/nonexistent/config",
      // No instance metadata service here; asking it would only add its timeout.
      AWS_EC2_METADATA_DISABLED: "true",
    };
    const saved = Object.fromEntries(Object.keys(overrides).map((k) => [k, process.env[k]]));
    for (const [k, v] of Object.entries(overrides)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    try {
      const started = performance.now();
      await assert.rejects(open({}, {}).head("default-chain/object"), (err) => {
        assert.ok(isStorageError(err), String(err));
        assert.equal(err.code, "AuthDenied", err.message);
        return true;
      });
      assert.ok(performance.now() - started < 10_000);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test("usePathStyle: path-style addresses the bucket in the path; virtual-hosted style in the host name", async () => {
    const localhost = server.endpoint.replace("127.0.0.1", "localhost");
    await roundTrip(open({ endpoint: localhost, usePathStyle: true }, server.credentials), "path-style/object");
    // This machine resolves no <bucket>.localhost name: the failed lookup shows where the request went.
    await assert.rejects(open({ endpoint: localhost, usePathStyle: false }, server.credentials).head("x"), (err) => {
      assert.ok(isStorageError(err), String(err));
      assert.equal(err.code, "Unreachable", err.message);
      assert.equal((err.cause as { hostname?: string }).hostname, `${bucket}.localhost`);
      return true;
    });
  });
});
