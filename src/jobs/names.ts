/**
 * Deterministic names for the Jobs the operator creates (SPEC §3, §5 trap 8), and label values
 * for names that may be too long for a label.
 *
 *   backup-<cluster>-<yyyymmdd-hhmmss>          scheduled and manual backups (UTC window / request time)
 *   pre-upgrade-<cluster>-<hash(version)>-<n>   pre-upgrade snapshot n (1–3) for one target version
 *   restore-<restore>-<uid[0:8]>                one per OpenBaoRestore object
 *   confirm-<backup Job>                        looks for a lost backup Job's snapshot in storage
 *
 * Every name is a DNS label of at most 63 characters, for any valid object name up to 253.
 * The same input always gives the same name, so a restarted operator finds the Job it made
 * (and AlreadyExists turns a duplicate create into a no-op: at most one Job per window).
 *
 * Shortening rule: the object name is used as it is when it is a DNS label short enough
 * to leave the fixed parts room, i.e. strictly shorter than the room (`budget`). Otherwise it
 * becomes its first characters (dots → hyphens) + `-` + 8 hex digits of the SHA-256 of the
 * full name, exactly `budget` characters long. A shortened part never equals an unshortened
 * one (their lengths differ), and two shortened parts differ unless 32-bit hashes collide.
 */
import { createHash } from "node:crypto";
import { limits } from "../api/constants.ts";

const hashLength = 8;
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** 8 hex digits of the SHA-256 of `text`. */
export function shortHash(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, hashLength);
}

/**
 * `name` if it is a DNS label shorter than `budget`, else a `budget`-long DNS-label fragment:
 * the sanitized start of `name`, `-`, and its short hash.
 */
export function fitName(name: string, budget: number): string {
  if (budget < hashLength + 2) throw new RangeError(`fitName: a budget of ${budget} leaves no room for the hash`);
  if (name.length < budget && dnsLabel.test(name)) return name;
  const start = name
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, budget - hashLength - 1);
  return `${start}-${shortHash(name)}`;
}

/** `yyyymmdd-hhmmss` in UTC. */
export function formatJobTimestamp(time: Date): string {
  if (!Number.isFinite(time.getTime())) throw new RangeError("formatJobTimestamp: invalid date");
  const iso = time.toISOString(); // 2025-03-04T05:06:07.890Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

function compose(prefix: string, name: string, suffix: string): string {
  const budget = limits.maxJobNameLength - prefix.length - suffix.length - 2;
  return `${prefix}-${fitName(name, budget)}-${suffix}`;
}

/**
 * `backup-<cluster>-<yyyymmdd-hhmmss>`: the window's time for a scheduled backup, the request's
 * time for a manual one (sub-second part dropped). Clusters up to 39 characters appear whole.
 */
export function backupJobName(cluster: string, time: Date): string {
  return compose("backup", cluster, formatJobTimestamp(time));
}

/**
 * `drill-<cluster>-<yyyymmdd-hhmmss>`: a restore drill, named after its cron window (scheduled)
 * or the request's second (manual), like backup Jobs.
 */
export function drillJobName(cluster: string, time: Date): string {
  return compose("drill", cluster, formatJobTimestamp(time));
}

/**
 * `pre-upgrade-<cluster>-<8 hex of the target version>-<attempt>`: one name per attempt and
 * target version, so a retry after a failure is a new Job and a restart finds the current one.
 * The version is hashed because versions may contain characters names cannot (`+build`).
 */
export function preUpgradeJobName(cluster: string, targetVersion: string, attempt: number): string {
  if (!Number.isSafeInteger(attempt) || attempt < 1 || attempt > 99) {
    throw new RangeError(`preUpgradeJobName: attempt must be 1–99, got ${attempt}`);
  }
  return compose("pre-upgrade", cluster, `${shortHash(targetVersion)}-${attempt}`);
}

/**
 * `restore-<name>-<first 8 characters of the UID>`: the UID keeps a re-created OpenBaoRestore of
 * the same name from adopting the previous one's Job.
 */
export function restoreJobName(restore: { metadata: { name: string; uid: string } }): string {
  const uid = restore.metadata.uid.toLowerCase().replace(/[^a-z0-9]/g, "");
  if (uid.length < hashLength) throw new RangeError("restoreJobName: the OpenBaoRestore has no UID yet");
  return compose("restore", restore.metadata.name, uid.slice(0, hashLength));
}

/**
 * A label value standing for an object name (`openbao.org/cluster`): the name itself up to 62
 * characters, else shortened as above to exactly 63. Select with it; confirm with the owner
 * reference or the full-name annotation.
 */
export function labelValue(name: string): string {
  const budget = limits.maxLabelValueLength;
  if (name.length < budget && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) return name;
  return fitName(name, budget);
}

/**
 * `confirm-<backup Job name>` (shortened like the others): the one Job that looks in storage
 * for the backup of a Job that disappeared before its result was read.
 */
export function confirmJobName(backupJob: string): string {
  const budget = limits.maxJobNameLength - "confirm-".length;
  return `confirm-${fitName(backupJob, budget)}`;
}

/**
 * The 8 hex digits a backup Job's snapshot key ends in: derived from the Job's namespace, name
 * and owner, so the same Job always names the same id and storage can be searched for it.
 */
export function backupKeyId(namespace: string, jobName: string, ownerUid: string): string {
  return shortHash(`${namespace}/${jobName}/${ownerUid}`);
}
