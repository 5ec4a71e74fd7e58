/**
 * Kubernetes Events (core/v1) for notable transitions of a ServiceBinding
 * (Ready gained/lost, invalid spec, cleanup finished). Best effort: a failed
 * event is logged at debug level and never blocks or fails a reconcile.
 */
import { randomBytes } from "node:crypto";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import type { KubeClient, KubeObject } from "../../clients/kubernetes/kubeClient.js";

export type EventType = "Normal" | "Warning";

export interface EventRecorder {
  record(obj: KubeObject, type: EventType, reason: string, message: string): void;
}

export interface EventRecorderOptions {
  readonly client: KubeClient;
  readonly logger: Logger;
  /** reportingInstance: this replica's identity. */
  readonly instance: string;
  readonly component?: string;
}

export function createEventRecorder(opts: EventRecorderOptions): EventRecorder {
  const component = opts.component ?? "dockbind-controller";
  return {
    record(obj, type, reason, message) {
      const ns = obj.metadata.namespace ?? "default";
      const now = new Date().toISOString();
      const body = {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `${obj.metadata.name}.${Date.now().toString(16)}${randomBytes(3).toString("hex")}`, namespace: ns },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace: ns,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component },
        reportingComponent: `dockbind.io/${component}`,
        reportingInstance: opts.instance.slice(0, 128),
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
      opts.client.request("POST", `/api/v1/namespaces/${ns}/events`, { body, timeoutMs: 10_000 }).then(
        () => {
          opts.logger.debug("event recorded", { binding: `${ns}/${obj.metadata.name}`, reason });
        },
        (err: unknown) => {
          opts.logger.debug("cannot record event", { binding: `${ns}/${obj.metadata.name}`, reason, error: errorMessage(err) });
        },
      );
    },
  };
}
