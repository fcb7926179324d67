/**
 * What a restore-drill Job's Pod has beyond an executor Job's (src/drill/manager/ asks for it,
 * executor-job.ts assembles it): a throwaway OpenBao beside the executor, and nothing of it
 * reachable from outside the Pod.
 *
 * - `drill-prepare` (init container, the executor image) writes the throwaway's fixed
 *   configuration into the scratch emptyDir (src/drill/prepare.ts);
 * - `openbao` (a native sidecar: an init container with `restartPolicy: Always`) runs
 *   `bao server` on it — Raft on the emptyDir, listening on 127.0.0.1:8200 only. The kubelet
 *   starts it before the executor and stops it when the executor has finished, so the Job
 *   completes as the executor says. Its data dies with the Pod;
 * - the executor runs `bao-backup drill` against http://127.0.0.1:8200, with the unseal keys
 *   Secret (opt-in) mounted in its container only; the auto-unseal stanza Secret (opt-in) is
 *   mounted in the throwaway's only.
 *
 * Both containers run as the Pod's non-root user with a read-only root filesystem, no
 * capabilities and no privilege escalation; the throwaway's only writable path is the scratch volume.
 */
import type { V1Container, V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { ExecutorResourcesSpec } from "../api/types.ts";
import { drillScratch } from "../drill/prepare.ts";

export const drillMountPaths = {
  scratch: drillScratch.dir,
  unsealKeys: "/etc/bao-backup/unseal-keys",
  seal: "/etc/bao-drill/seal",
} as const;

/** The file of `sealConfigSecretRef` holding the `seal "…" { … }` stanza. */
export const sealConfigKey = "seal.hcl";
export const throwawayContainerName = "openbao";
export const prepareContainerName = "drill-prepare";

export interface DrillPodInput {
  /** The throwaway OpenBao's image (the cluster's version unless spec.backup.drill.image). */
  readonly openbaoImage: string;
  /** The backup to drill, or `latest`. */
  readonly key: string;
  readonly unsealKeysSecret?: string | undefined;
  readonly sealConfigSecret?: string | undefined;
  readonly canaryPath?: string | undefined;
  readonly openbaoResources?: ExecutorResourcesSpec | undefined;
  /** The size of the cluster's last backup (`status.backup.lastBackupSize`): the throwaway's requests follow it. */
  readonly snapshotSize?: number | undefined;
}

const MiB = 1024 * 1024;
/** The throwaway at rest: a fresh single-node OpenBao. */
const throwawayBaseBytes = 256 * MiB;
/**
 * Memory per snapshot byte while OpenBao applies a snapshot: it holds a whole batch of restored
 * entries in one transaction (physical/raft/snapshot.go), and maps its database file. Measured
 * (BENCHMARKS.md, restore drills): a 1 GiB snapshot of 512 KiB values peaked at 4.1–4.3 GiB
 * (3.1 GiB heap + 1.1 GiB mapped), a 274 MiB one of 4 KiB values at 1.1–1.3 GiB.
 */
const throwawayBytesPerSnapshotByte = 4.5;
/** Disk per snapshot byte: the Raft database plus the temp file the upload is spooled to (1030 + 1025 MiB for 1 GiB). */
const throwawayDiskPerSnapshotByte = 2.1;

/**
 * The throwaway's requests: what a fresh OpenBao needs, plus what applying a snapshot of the
 * last backup's size takes, so the scheduler places the drill Pod on a node that has it (a
 * request, never a limit: a limit too low is an OOM kill in the middle of a drill). The user's
 * `spec.backup.drill.openbaoResources` win.
 */
export function throwawayRequests(snapshotSize: number | undefined): { memory: string; "ephemeral-storage"?: string } {
  const size = snapshotSize !== undefined && Number.isSafeInteger(snapshotSize) && snapshotSize > 0 ? snapshotSize : 0;
  const memory = `${Math.ceil((throwawayBaseBytes + size * throwawayBytesPerSnapshotByte) / MiB)}Mi`;
  if (size === 0) return { memory };
  return { memory, "ephemeral-storage": `${Math.ceil((64 * MiB + size * throwawayDiskPerSnapshotByte) / MiB)}Mi` };
}

/** The parts executor-job.ts adds to a drill Job's Pod. */
export interface DrillPodParts {
  readonly volumes: V1Volume[];
  /** Mounts of the executor container. */
  readonly executorMounts: V1VolumeMount[];
  /** `<role>=<secret>` entries for BACKUP_REQUIRED_SECRETS (src/executor/required-secrets.ts). */
  readonly required: string[];
  readonly env: V1EnvVar[];
  readonly initContainers: (executor: Pick<V1Container, "image">) => V1Container[];
}

export function drillPodParts(input: DrillPodInput): DrillPodParts {
  const volumes: V1Volume[] = [{ name: "drill-scratch", emptyDir: {} }];
  const executorMounts: V1VolumeMount[] = [];
  const throwawayMounts: V1VolumeMount[] = [{ name: "drill-scratch", mountPath: drillMountPaths.scratch }];
  const required: string[] = [];
  const env: V1EnvVar[] = [
    { name: "DRILL_OPENBAO_ADDR", value: `http://127.0.0.1:${drillScratch.apiPort}` },
    { name: "BACKUP_KEY", value: input.key },
  ];
  if (input.unsealKeysSecret !== undefined) {
    volumes.push({ name: "drill-unseal-keys", secret: { secretName: input.unsealKeysSecret, optional: true } });
    executorMounts.push({ name: "drill-unseal-keys", mountPath: drillMountPaths.unsealKeys, readOnly: true });
    required.push(`unseal-keys=${input.unsealKeysSecret}`);
    env.push({ name: "DRILL_UNSEAL_KEYS_DIR", value: drillMountPaths.unsealKeys });
  }
  const configs = [`-config=${drillMountPaths.scratch}/${drillScratch.config}`];
  if (input.sealConfigSecret !== undefined) {
    // Not optional: without its stanza the throwaway would start Shamir-sealed and the drill
    // would prove only "loaded" where "verified" was asked for; a missing Secret holds the Pod
    // in ContainerCreating, which the Job's deadline and the Pod's events report.
    volumes.push({ name: "drill-seal", secret: { secretName: input.sealConfigSecret } });
    throwawayMounts.push({ name: "drill-seal", mountPath: drillMountPaths.seal, readOnly: true });
    configs.push(`-config=${drillMountPaths.seal}/${sealConfigKey}`);
  }
  // A canary can be read only from restored data the drill can open: without key material the
  // drill proves "loaded" (backups still write the canary, for a later drill with keys).
  const opens = input.unsealKeysSecret !== undefined || input.sealConfigSecret !== undefined;
  if (input.canaryPath !== undefined && opens) env.push({ name: "DRILL_CANARY_PATH", value: input.canaryPath });

  const hardened = {
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  };
  const openbaoResources = input.openbaoResources;
  return {
    volumes,
    executorMounts,
    required,
    env,
    initContainers: (executor) => [
      {
        name: prepareContainerName,
        image: executor.image,
        args: ["drill-prepare", "--dir", drillMountPaths.scratch],
        volumeMounts: [{ name: "drill-scratch", mountPath: drillMountPaths.scratch }],
        resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "256Mi" } },
        securityContext: hardened,
      },
      {
        name: throwawayContainerName,
        image: input.openbaoImage,
        // `bao` itself, not the image's entrypoint script: no shell, no chown, no su-exec.
        command: ["bao"],
        args: ["server", ...configs],
        restartPolicy: "Always",
        env: [
          { name: "HOME", value: drillMountPaths.scratch },
          // snapshot-force spools the snapshot to a temp file before applying it.
          { name: "TMPDIR", value: `${drillMountPaths.scratch}/${drillScratch.tmp}` },
          // The CLI inside this container (kubectl exec … bao status) talks to the throwaway.
          { name: "BAO_ADDR", value: `http://127.0.0.1:${drillScratch.apiPort}` },
        ],
        volumeMounts: throwawayMounts,
        resources: {
          requests: {
            ...throwawayRequests(input.snapshotSize),
            cpu: openbaoResources?.requests?.cpu ?? "100m",
            ...(openbaoResources?.requests?.memory ? { memory: openbaoResources.requests.memory } : {}),
          },
          ...(openbaoResources?.limits ? { limits: { ...openbaoResources.limits } } : {}),
        },
        securityContext: hardened,
      },
    ],
  };
}
