/**
 * `bao-backup prune`: what retention would delete, and why, using the same planner the
 * executor runs after each backup (src/snapshot/retention.ts): only this cluster's scheduled
 * snapshots in the standard key format are candidates, only verified ones (with a manifest)
 * count toward --max-count, the newest verified one is always kept, pre-upgrade snapshots and
 * foreign objects are never touched. Snapshots without a manifest that are kept are listed
 * apart, so a person sees the leftovers of failed runs.
 *
 * Deleting needs an explicit `--yes`: without `--dry-run` or `--yes` nothing happens and the
 * command exits 1, so a mistyped command line never deletes backups.
 */

import { clusterPrefix } from "../snapshot/key.ts";
import {
  deletionGroups,
  type ListedObject,
  planRetention,
  type RetentionPolicy,
  type UnverifiedReason,
  validateRetentionPolicy,
} from "../snapshot/retention.ts";
import { StorageError } from "../storage/index.ts";
import { deleteUnlocked } from "../storage/locks.ts";
import { formatDuration, parseDuration } from "../util/duration.ts";
import { exitCodes } from "./exit-codes.ts";
import {
  bool,
  closeQuietly,
  humanAge,
  type Located,
  locate,
  outputFlags,
  outputFormat,
  type ParsedArgs,
  parseFlags,
  printJson,
  reportFailure,
  storageFlags,
  storageHelp,
  str,
  UsageError,
} from "./shared.ts";

const help = `Usage: bao-backup prune [cluster] (--dry-run | --yes) [--max-count N] [--max-age D] [options]

Applies retention to a cluster's backups, or with --dry-run only shows what it would delete
and why. The policy is --max-count / --max-age when given, else the cluster's
spec.backup.retention (needs --kubeconfig). The newest backup, pre-upgrade snapshots and
objects not in the standard key format are never deleted.

Only verified backups (with a manifest) count toward --max-count. A backup without a manifest
(left by a failed run) takes no slot: it is listed as not verified, and deleted only once it
is older than the newest verified backup and beyond the policy (older than every verified
backup kept, or than --max-age).

  --dry-run                show the plan, delete nothing
  --yes                    delete (required: without --dry-run or --yes nothing happens)
  --max-count N            keep at most N backups
  --max-age D              delete backups older than D (168h, 7d, 90m)

${storageHelp}

Options:
  -o, --output json|text   json for scripts (default text)
  -h, --help

Exit codes: 0 done (or nothing to do), 1 configuration (incl. no policy, or neither --dry-run
nor --yes), 2 Kubernetes auth, 5 storage (listing failed, or a delete failed).
`;

function policyFrom(args: ParsedArgs, located: Located): { policy: RetentionPolicy; source: string } {
  const rawCount = str(args, "max-count");
  const rawAge = str(args, "max-age");
  if (rawCount !== undefined || rawAge !== undefined) {
    const policy: RetentionPolicy = {};
    if (rawCount !== undefined) {
      if (!/^\d+$/.test(rawCount) || Number(rawCount) < 1) {
        throw new UsageError(`--max-count must be a whole number of at least 1, got ${JSON.stringify(rawCount)}`);
      }
      policy.maxCount = Number(rawCount);
    }
    if (rawAge !== undefined) policy.maxAgeMs = parseDuration(rawAge, { field: "--max-age" });
    validateRetentionPolicy(policy);
    return { policy, source: "flags" };
  }
  const retention = located.resource?.spec?.backup?.retention;
  if (!retention) {
    throw new UsageError(
      located.resource
        ? `OpenBaoCluster ${located.namespace}/${located.cluster} has no spec.backup.retention; give --max-count or --max-age`
        : "no retention policy: give --max-count and/or --max-age, or --kubeconfig to use the cluster's spec.backup.retention",
    );
  }
  const policy: RetentionPolicy = {};
  if (retention.maxCount !== undefined) policy.maxCount = retention.maxCount;
  if (retention.maxAge !== undefined) {
    policy.maxAgeMs = parseDuration(retention.maxAge, { field: "spec.backup.retention.maxAge" });
  }
  validateRetentionPolicy(policy);
  return { policy, source: `spec.backup.retention of ${located.namespace}/${located.cluster}` };
}

const unverifiedText: Record<UnverifiedReason, string> = {
  "newer-than-verified": "newer than the newest verified backup (a backup may be writing its manifest now)",
  "no-verified": "there is no verified backup to compare it with",
  "within-policy": "within the policy",
};

function describePolicy(policy: RetentionPolicy): string {
  const parts: string[] = [];
  if (policy.maxCount !== undefined) parts.push(`keep at most ${policy.maxCount}`);
  if (policy.maxAgeMs !== undefined) parts.push(`delete older than ${formatDuration(policy.maxAgeMs)}`);
  return parts.join(", ");
}

export async function pruneCommand(argv: readonly string[]): Promise<number> {
  let located: Located | undefined;
  try {
    const args = parseFlags(
      argv,
      {
        ...storageFlags,
        ...outputFlags,
        "dry-run": { type: "boolean" },
        yes: { type: "boolean", short: "y" },
        "max-count": { type: "string" },
        "max-age": { type: "string" },
      },
      1,
    );
    if (args.values.help === true) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const format = outputFormat(args);
    const dryRun = bool(args, "dry-run");
    if (dryRun && bool(args, "yes")) throw new UsageError("--dry-run and --yes contradict each other; choose one");
    if (!dryRun && !bool(args, "yes")) {
      throw new UsageError("prune deletes backups: add --dry-run to see what would be deleted, or --yes to delete it");
    }
    located = await locate(args, args.positionals[0]);
    const { policy, source } = policyFrom(args, located);
    const location = { pathPrefix: located.target.pathPrefix, namespace: located.namespace, cluster: located.cluster };
    const objects: ListedObject[] = [];
    for await (const info of located.store.list(clusterPrefix(location))) objects.push(info);
    const now = new Date();
    const plan = planRetention(objects, policy, { ...location, justWritten: "", now });

    let deleted: string[] = [];
    let failed: { key: string; error: string }[] = [];
    let locked: { key: string; until: string | null; legalHold: boolean }[] = [];
    let versionsKept: { key: string; reason: string }[] = [];
    if (!dryRun && plan.delete.length > 0) {
      const result = await deleteUnlocked(located.store, deletionGroups(plan), now);
      deleted = result.deleted;
      failed = result.failed.map((f) => ({ key: f.key, error: f.error.message }));
      locked = result.locked.map((l) => ({
        key: l.key,
        until: l.until?.toISOString() ?? null,
        legalHold: l.legalHold,
      }));
      versionsKept = result.versionsKept;
    }

    const reasonText = (reason: "max-count" | "max-age", key: string, unverified: boolean): string => {
      if (reason === "max-count") {
        return unverified
          ? "no manifest, older than every verified backup kept (max-count)"
          : `beyond the ${policy.maxCount} newest (max-count)`;
      }
      const tag = unverified ? "no manifest, " : "";
      const match = /(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z-[0-9a-f]{8}\.snap$/.exec(key);
      const age = match
        ? now.getTime() -
          Date.UTC(
            Number(match[1]),
            Number(match[2]) - 1,
            Number(match[3]),
            Number(match[4]),
            Number(match[5]),
            Number(match[6]),
          )
        : undefined;
      return `${tag}older than ${policy.maxAgeMs === undefined ? "?" : formatDuration(policy.maxAgeMs)}${age === undefined ? "" : ` (age ${humanAge(age)})`} (max-age)`;
    };

    if (format === "json") {
      printJson({
        dryRun,
        policy: { ...policy, source },
        delete: plan.delete,
        keep: plan.keep,
        unverified: plan.unverified,
        ignored: plan.ignored,
        ...(dryRun ? {} : { deleted, failed, locked, versionsKept }),
      });
    } else {
      const out: string[] = [];
      const keptSnapshots = plan.keep.filter((k) => k.object === "snapshot");
      const deletions = plan.delete.filter((d) => d.object === "snapshot");
      out.push(
        `Retention (${describePolicy(policy)}; from ${source}) for ${located.store.location}/${clusterPrefix(location)}`,
      );
      if (deletions.length === 0) out.push("Nothing to delete.");
      else {
        out.push(dryRun ? `Would delete ${deletions.length} backup(s):` : `Deleting ${deletions.length} backup(s):`);
        for (const d of deletions) {
          const withManifest = plan.delete.some((m) => m.object === "manifest" && m.snapshot === d.key);
          out.push(
            `  ${d.key}${withManifest ? " (+ manifest)" : ""}: ${reasonText(d.reason, d.key, d.unverified === true)}`,
          );
        }
      }
      out.push(`Keeping ${keptSnapshots.length} backup(s):`);
      for (const k of keptSnapshots) out.push(`  ${k.key}: ${k.reason}`);
      if (plan.unverified.length > 0) {
        out.push(
          `Keeping ${plan.unverified.length} backup(s) WITHOUT a manifest (not verified, not counted; check with bao-backup verify):`,
        );
        for (const u of plan.unverified) out.push(`  ${u.key}: ${unverifiedText[u.reason]}`);
      }
      if (plan.ignored.length > 0) {
        out.push(`Never touched (${plan.ignored.length}):`);
        for (const i of plan.ignored) out.push(`  ${i.key}: ${i.reason}`);
      }
      if (!dryRun && plan.delete.length > 0) {
        out.push(`Deleted ${deleted.length} object(s)${failed.length > 0 ? `; ${failed.length} FAILED:` : "."}`);
        for (const f of failed) out.push(`  ${f.key}: ${f.error}`);
        if (locked.length > 0) {
          out.push(`Kept ${locked.length} object(s) a lock holds (deleted by the first prune after it ends):`);
          for (const l of locked) {
            out.push(`  ${l.key}: ${l.legalHold ? "legal hold (remove it to delete)" : `locked until ${l.until}`}`);
          }
        }
        if (versionsKept.length > 0) {
          out.push(`Deleted from view, older versions kept (${versionsKept.length}):`);
          for (const v of versionsKept) out.push(`  ${v.key}: ${v.reason}`);
        }
      }
      if (dryRun) out.push("Dry run: nothing was deleted. Run again with --yes to delete.");
      process.stdout.write(`${out.join("\n")}\n`);
    }
    if (failed.length > 0) {
      return reportFailure(
        "prune",
        new StorageError("Other", `${failed.length} delete(s) failed; run prune again to retry`),
        located.secrets,
      );
    }
    return exitCodes.ok;
  } catch (err) {
    return reportFailure("prune", err, located?.secrets);
  } finally {
    await closeQuietly(located?.store);
  }
}
