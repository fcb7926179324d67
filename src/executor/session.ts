/**
 * What both executor modes do first: find the leader, authenticate, open the store. Kept in
 * one place so backup and restore cannot drift apart in how they reach OpenBao or storage.
 */
import { type AuthConfig, authenticate } from "../openbao/auth.ts";
import type { OpenBaoHttp } from "../openbao/http.ts";
import { findLeader } from "../openbao/leader.ts";
import { loadObjectStore } from "../storage/load.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { readCredentialsDir, secretValues } from "../storage/target.ts";
import type { BackupConfig, RestoreConfig } from "./config.ts";

export async function openStore(config: BackupConfig | RestoreConfig, secrets: string[]): Promise<ObjectStore> {
  const credentials = await readCredentialsDir(config.credentialsDir);
  secrets.push(...secretValues(credentials));
  return loadObjectStore(config.target, credentials);
}

export async function leaderAndToken(
  http: OpenBaoHttp,
  members: readonly string[],
  auth: AuthConfig,
  secrets: string[],
  signal: AbortSignal,
): Promise<{ leader: string; token: string }> {
  const leader = await findLeader(http, members, { signal });
  const token = await authenticate(http, leader, auth, signal);
  secrets.push(token);
  return { leader, token };
}

/** OpenBao's version as the leader reports it (best effort: the manifest records it). */
export async function openBaoVersion(
  http: OpenBaoHttp,
  leader: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  try {
    const health = await http.json<{ version?: string }>(leader, {
      method: "GET",
      path: "sys/health?standbyok=true&perfstandbyok=true",
      timeoutMs: 5000,
      signal,
    });
    return typeof health?.version === "string" ? health.version : undefined;
  } catch {
    return undefined;
  }
}
