/**
 * `bao-backup confirm`: is the backup of one Job in storage? The operator runs it when a
 * backup Job disappeared (or its Pod did, with its report) before its result was read — the
 * operator was down longer than the Job's TTL, someone deleted it, the Pod was collected
 * (issue 15, defect 6). Recording that as a failure would call a good backup lost; recording
 * it as a success unseen would call a lost one good. Storage knows.
 *
 * Every backup Job names its key's last part (`BACKUP_KEY_ID`, 8 hex digits); the time part is
 * the run's start, unknown beforehand. So this lists the cluster's prefix once, takes the
 * snapshots of this kind whose key ends in `-<id>.snap`, and reports the newest one that is
 * verified — its manifest exists, parses, names the key and records the size stored now
 * (src/snapshot/catalog.ts, the same reading `list` and `restore --key latest` use). The
 * manifest is written only after the run checked the upload, so it is the run's own proof.
 * The result carries the backup's facts from its manifest, never this run's timings.
 *
 * It never contacts OpenBao and never writes or deletes anything.
 */

import { isVerified, readCatalog } from "../snapshot/catalog.ts";
import { clusterPrefix } from "../snapshot/key.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { BackupConfig } from "./config.ts";
import { failureResult, VerificationError } from "./failure.ts";
import type { ExecutorResult } from "./result.ts";
import { openStore } from "./session.ts";

/** The reason of a run that found no verified backup with the key id (read by src/backup/plan.ts). */
export const backupNotFound = "BackupNotFound";

export interface ConfirmOptions {
  readonly now?: () => Date;
}

export async function runConfirm(
  config: BackupConfig,
  keyId: string,
  options: ConfirmOptions = {},
): Promise<ExecutorResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const secrets: string[] = [];
  let store: ObjectStore | undefined;
  try {
    store = await openStore(config, secrets);
    const location = {
      pathPrefix: config.target.pathPrefix,
      namespace: config.cluster.namespace,
      cluster: config.cluster.name,
    };
    const ours = await readCatalog(store, location, {
      only: (parsed) => parsed.kind === config.kind && parsed.id === keyId,
    });
    const found = ours.find(isVerified);
    if (!found) {
      const seen = ours[0];
      throw new VerificationError(
        backupNotFound,
        seen === undefined
          ? `no ${config.kind} snapshot whose key ends in -${keyId}.snap under ${clusterPrefix(location)} in ${store.location}`
          : `${seen.key} is in ${store.location} but is not a verified backup (${seen.problem ?? "no manifest"})`,
      );
    }
    const manifest = found.manifest;
    return {
      mode: "confirm",
      ok: true,
      key: found.key,
      size: manifest.size,
      sha256: manifest.sha256,
      raftIndex: manifest.raftIndex,
      raftTerm: manifest.raftTerm,
      openbaoVersion: manifest.openbaoVersion ?? undefined,
      created: manifest.created,
      startedAt: started.toISOString(),
      durationMs: now().getTime() - started.getTime(),
    };
  } catch (err) {
    return failureResult("confirm", err, { secrets, key: undefined, started, now: now() });
  } finally {
    await store?.close().catch(() => undefined);
  }
}
