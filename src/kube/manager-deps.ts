/**
 * What both managers (src/backup/controller.ts, src/restore/controller.ts) act through: the
 * clusters and StatefulSets they read from caches, the API clients they write with, events,
 * logs and the clock, and the settings of the executor Jobs they create. Each manager's own
 * deps add its caches and metrics.
 */
import type { BatchV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { OpenBaoCluster } from "../api/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { TrimmedStatefulSet } from "../readiness/statefulset.ts";
import type { EventRecorder } from "./events.ts";
import type { Cache } from "./objects.ts";

export interface ManagerDeps {
  readonly clusters: Cache<OpenBaoCluster>;
  /** StatefulSets, trimmed (readiness/statefulset.ts): readiness and member addresses of clusters no lifecycle operator manages. */
  readonly statefulSets?: Cache<TrimmedStatefulSet> | undefined;
  readonly custom: CustomObjectsApi;
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;
  readonly events: EventRecorder;
  readonly log: Logger;
  readonly now: () => Date;
  /** The operator's own image: the executor image unless the spec names one. */
  readonly image: string;
  /** Audience of the projected token for OpenBao's JWT auth (operator env OPENBAO_JWT_AUDIENCE). */
  readonly jwtAudience: string;
  /** `ttlSecondsAfterFinished` of the Jobs (operator `--job-ttl`); the builder's default when absent. */
  readonly jobTtlSeconds?: number | undefined;
}
