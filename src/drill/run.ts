/**
 * `bao-backup drill` as an executor mode: open the store, resolve `latest`, read and check the
 * manifest (as restore does), read the unseal keys, run the drill (drill.ts) and report like
 * every other mode — one result line, typed success or classified failure, secrets redacted.
 */

import { failureResult } from "../executor/failure.ts";
import { readCheckedManifest, resolveLatest } from "../executor/restore.ts";
import type { DrillSuccess, ExecutorResult } from "../executor/result.ts";
import { login, openStore } from "../executor/session.ts";
import { explainDenial } from "../openbao/auth.ts";
import { OpenBaoHttp } from "../openbao/http.ts";
import { latestKey } from "../snapshot/catalog.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { DrillConfig } from "./config.ts";
import { runDrill } from "./drill.ts";
import { readUnsealKeys } from "./keys.ts";

export interface DrillRunOptions {
  readonly now?: () => Date;
  readonly signal?: AbortSignal;
  /** How long the throwaway may take to apply and open the snapshot (drill.ts's default). */
  readonly timeoutMs?: number;
}

export async function runDrillMode(config: DrillConfig, options: DrillRunOptions = {}): Promise<ExecutorResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const controller = new AbortController();
  const forward = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", forward, { once: true });
  const signal = controller.signal;
  const secrets: string[] = [];
  const restore = config.restore;
  const http = new OpenBaoHttp(restore.tls);
  let store: ObjectStore | undefined;
  const latest = restore.key === latestKey;
  let resolved: string | undefined = latest ? undefined : restore.key;
  try {
    // Read before anything moves: a missing or unreadable key directory is a setting to fix.
    const unsealKeys = config.unsealKeysDir === undefined ? [] : await readUnsealKeys(config.unsealKeysDir);
    secrets.push(...unsealKeys);
    store = await openStore(restore, secrets);
    const key = resolved ?? (await resolveLatest(store, restore));
    resolved = key;
    const manifest = await readCheckedManifest(store, key);
    const outcome = await runDrill({
      store,
      key,
      manifest,
      throwaway: { address: config.throwaway, http },
      unsealKeys,
      requiredCanary: config.canary,
      restoredToken: () => login(http, config.throwaway, restore, signal),
      explainDenial: (token, err) => explainDenial(http, config.throwaway, restore.auth, token, err, signal),
      secrets,
      signal,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      now,
    });
    const result: DrillSuccess = {
      mode: "drill",
      ok: true,
      ...outcome,
      size: manifest.size,
      sha256: manifest.sha256,
      durationMs: now().getTime() - started.getTime(),
      startedAt: started.toISOString(),
      ...(latest ? { latest: true as const } : {}),
    };
    return result;
  } catch (err) {
    return failureResult("drill", err, { secrets, key: resolved, started, now: now() });
  } finally {
    options.signal?.removeEventListener("abort", forward);
    http.close();
    await store?.close().catch(() => undefined);
  }
}
