/**
 * Kubernetes Events for every decision (SPEC §3 visibility). Messages come from planners
 * that only ever put redacted text in them; they are cut to the API's 1 KiB limit here.
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Api } from "@kubernetes/client-node";
import { apiVersion, clusterNames } from "../api/constants.ts";
import type { OpenBaoCluster } from "../api/types.ts";
import type { Logger } from "../observability/logger.ts";

export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly uid?: string | undefined;
}

export interface EventRecorder {
  record(object: InvolvedObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
}

export const reportingComponent = "openbao-backup";

export function eventRecorder(core: CoreV1Api, instance: string): EventRecorder {
  return {
    async record(object, type, reason, message) {
      const now = new Date();
      await core.createNamespacedEvent({
        namespace: object.namespace,
        body: {
          metadata: {
            name: `${object.name.slice(0, 200)}.${randomBytes(6).toString("hex")}`,
            namespace: object.namespace,
          },
          involvedObject: {
            apiVersion: object.apiVersion,
            kind: object.kind,
            name: object.name,
            namespace: object.namespace,
            ...(object.uid ? { uid: object.uid } : {}),
          },
          type,
          reason,
          message: message.slice(0, 1024),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: reportingComponent },
          reportingComponent,
          reportingInstance: instance,
        },
      });
    },
  };
}

/** An OpenBaoCluster as the object its Events are about. */
export function clusterInvolved(cluster: OpenBaoCluster): InvolvedObject {
  return {
    apiVersion,
    kind: clusterNames.kind,
    name: cluster.metadata.name ?? "",
    namespace: cluster.metadata.namespace ?? "",
    uid: cluster.metadata.uid,
  };
}

/**
 * Logs and records a planner's Events about one cluster, in their order. An Event that cannot
 * be written is logged and never fails the pass: the decision it reports has been made.
 */
export async function recordClusterEvents(
  recorder: EventRecorder,
  log: Logger,
  cluster: OpenBaoCluster,
  events: readonly { readonly type: "Normal" | "Warning"; readonly reason: string; readonly message: string }[],
): Promise<void> {
  const involved = clusterInvolved(cluster);
  for (const event of events) {
    log.info({ cluster: involved.name, namespace: involved.namespace, reason: event.reason }, event.message);
    await recorder.record(involved, event.type, event.reason, event.message).catch((err: unknown) => {
      log.warn({ err: String(err) }, "could not record an event");
    });
  }
}
