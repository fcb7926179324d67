/**
 * Kubernetes Events for every decision (SPEC §3 visibility). Messages come from planners
 * that only ever put redacted text in them; they are cut to the API's 1 KiB limit here.
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Api } from "@kubernetes/client-node";

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
