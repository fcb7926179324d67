/**
 * What the operator keeps of each object in its informer caches. With 1,000 clusters the
 * Job and Pod caches hold thousands of objects, and most of each object is never read:
 * `managedFields` (server-side apply bookkeeping, often the largest part), kubectl's
 * last-applied copy of the whole object, and the Job's Pod template and the Pod's spec
 * (containers, volumes, env). The planners read Jobs and Pods through `observeJob` and
 * `executorDone` (jobs/result.ts): metadata (name, labels, annotations, owner references,
 * resourceVersion, deletionTimestamp) and status only.
 *
 * The transforms mutate the object handed to them (a freshly parsed list item or watch
 * event, not shared yet) and return it.
 */
import type { KubeObject } from "../runtime/informer.ts";

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration";

interface Trimmable extends KubeObject {
  metadata?: KubeObject["metadata"] & { managedFields?: unknown; annotations?: Record<string, string> };
  spec?: unknown;
}

/** Drops the metadata no reader uses: `managedFields` and kubectl's last-applied annotation. */
export function trimMetadata<T extends KubeObject>(object: T): T {
  const metadata = (object as Trimmable).metadata;
  if (metadata === undefined) return object;
  delete metadata.managedFields;
  if (metadata.annotations?.[lastApplied] !== undefined) delete metadata.annotations[lastApplied];
  return object;
}

/** For Jobs and Pods: `trimMetadata`, and the spec too (only metadata and status are read). */
export function trimToMetadataAndStatus<T extends KubeObject>(object: T): T {
  trimMetadata(object);
  delete (object as Trimmable).spec;
  return object;
}

interface JobSpecKept {
  activeDeadlineSeconds?: number;
}
interface PodSpecKept {
  containers?: { name: string; resources?: { limits?: Record<string, string> } }[];
}

/** A Job: metadata, status, and the deadline a `DeadlineExceeded` message names. */
export function trimJob<T extends KubeObject>(object: T): T {
  const spec = (object as Trimmable).spec as JobSpecKept | undefined;
  trimToMetadataAndStatus(object);
  if (spec?.activeDeadlineSeconds !== undefined) {
    (object as Trimmable).spec = { activeDeadlineSeconds: spec.activeDeadlineSeconds };
  }
  return object;
}

/** A Pod: metadata, status, and each container's limits (an `OOMKilled` message names them). */
export function trimPod<T extends KubeObject>(object: T): T {
  const spec = (object as Trimmable).spec as PodSpecKept | undefined;
  trimToMetadataAndStatus(object);
  if (spec?.containers) {
    (object as Trimmable).spec = {
      containers: spec.containers.map((c) => ({
        name: c.name,
        ...(c.resources?.limits ? { resources: { limits: { ...c.resources.limits } } } : {}),
      })),
    };
  }
  return object;
}
