/**
 * What both executor modes do first: find the leader, authenticate, open the store. Kept in
 * one place so backup and restore cannot drift apart in how they reach OpenBao or storage.
 */
import { existsSync } from "node:fs";
import { authenticate } from "../openbao/auth.ts";
import { OpenBaoError } from "../openbao/errors.ts";
import type { OpenBaoHttp } from "../openbao/http.ts";
import { findLeader } from "../openbao/leader.ts";
import { loadObjectStore } from "../storage/load.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { readCredentialsDir, secretValues } from "../storage/target.ts";
import { type BackupConfig, ConfigError, type RestoreConfig } from "./config.ts";
import { defaultPaths } from "./settings.ts";

type Config = BackupConfig | RestoreConfig;

/** The store of `config.target` (or of one destination), credentials read from its directory. */
export async function openStore(
  config: Pick<Config, "target" | "credentialsDir">,
  secrets: string[],
): Promise<ObjectStore> {
  const credentials = await readCredentialsDir(config.credentialsDir);
  secrets.push(...secretValues(credentials));
  return loadObjectStore(config.target, credentials);
}

/**
 * A token for `address`: the static token from the environment, else what `authenticate` gets
 * from the token file or a JWT login. A token file or projected token that is not there is
 * a configuration error naming the flags to use instead (a run outside Kubernetes has none
 * of the Job's mounts).
 */
export async function login(
  http: OpenBaoHttp,
  address: string,
  config: Pick<Config, "auth" | "staticToken">,
  signal: AbortSignal,
): Promise<string> {
  const { auth } = config;
  if (auth.method === "token") {
    if (config.staticToken !== undefined) return config.staticToken;
    if (!existsSync(auth.tokenFile)) {
      throw new ConfigError(
        "BACKUP_TOKEN_FILE",
        auth.tokenFile === defaultPaths.tokenFile
          ? `no OpenBao token: ${auth.tokenFile} (where a Job mounts it) does not exist; give the token with --token-file <file> or the environment variable BAO_TOKEN`
          : `${auth.tokenFile} does not exist; give a file holding the OpenBao token, or set BAO_TOKEN instead of --token-file`,
      );
    }
  } else if (!existsSync(auth.jwtFile)) {
    throw new ConfigError(
      "BACKUP_JWT_TOKEN_FILE",
      auth.jwtFile === defaultPaths.jwtTokenFile
        ? `no projected ServiceAccount token at ${auth.jwtFile} (not running in a Kubernetes Pod?); outside Kubernetes use --auth-method token with --token-file <file> or the environment variable BAO_TOKEN`
        : `${auth.jwtFile} does not exist; give the file holding the JWT to log in with`,
    );
  }
  return authenticate(http, address, auth, signal);
}

export async function leaderAndToken(
  http: OpenBaoHttp,
  config: Pick<Config, "members" | "membersDerived" | "auth" | "staticToken">,
  secrets: string[],
  signal: AbortSignal,
): Promise<{ leader: string; token: string }> {
  if (config.staticToken !== undefined) secrets.push(config.staticToken);
  let leader: string;
  try {
    leader = await findLeader(http, config.members, { signal });
  } catch (err) {
    if (err instanceof OpenBaoError && err.code === "NoLeader" && config.membersDerived) {
      // The derived names resolve only inside the cluster's Kubernetes network.
      throw new OpenBaoError(
        "NoLeader",
        `${err.message}; these are the in-cluster addresses derived from CLUSTER_NAME and CLUSTER_REPLICAS — outside Kubernetes give the members with --openbao-addresses (BACKUP_OPENBAO_ADDRESSES)`,
        { cause: err },
      );
    }
    throw err;
  }
  const token = await login(http, leader, config, signal);
  secrets.push(token);
  return { leader, token };
}

/** What the manifest records about the cluster a snapshot comes from (each best effort). */
export interface ClusterFacts {
  readonly version: string | undefined;
  readonly clusterId: string | undefined;
  readonly sealType: string | undefined;
}

/**
 * OpenBao's version and cluster id as the leader's `sys/health` reports them, and its seal
 * type from `sys/seal-status` (both unauthenticated). Never fails: an unknown fact is
 * undefined and the manifest records null.
 */
export async function clusterFacts(http: OpenBaoHttp, leader: string, signal: AbortSignal): Promise<ClusterFacts> {
  const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);
  const [health, seal] = await Promise.all([
    http
      .json<{ version?: unknown; cluster_id?: unknown }>(leader, {
        method: "GET",
        path: "sys/health?standbyok=true&perfstandbyok=true",
        timeoutMs: 5000,
        signal,
      })
      .catch(() => undefined),
    http
      .json<{ type?: unknown; cluster_id?: unknown }>(leader, {
        method: "GET",
        path: "sys/seal-status",
        timeoutMs: 5000,
        signal,
      })
      .catch(() => undefined),
  ]);
  return {
    version: text(health?.version),
    clusterId: text(health?.cluster_id) ?? text(seal?.cluster_id),
    sealType: text(seal?.type),
  };
}
