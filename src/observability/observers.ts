/**
 * Maps the framework's observer hooks (workqueue, controller loop, Consul
 * client, Docker watcher, renderer, LB driver) onto the metrics, the liveness
 * monitor and the LB activity record. This is the only place metrics are
 * recorded: reconcilers and actuators stay free of metrics code.
 * Every observer method is cheap and never throws.
 */
import type { LoadBalancerDriver } from "../actuators/lb/driver.js";
import type { RendererObserver } from "../reconcilers/renderer.js";
import type { ControllerObserver, ReconcileOutcome } from "../runtime/controller.js";
import { errorMessage } from "../runtime/logger.js";
import type { QueueObserver } from "../runtime/workqueue.js";
import type { DockerWatcherObserver } from "../sources/docker/dockerWatcher.js";
import type { LoopMonitor } from "./liveness.js";
import type { Metrics } from "./metrics.js";
import type { ConsulObserver } from "../ports/consul.js";

/** controller-runtime's `result` label for each reconcile outcome (terminal errors count as errors). */
const RESULT_LABEL: Readonly<Record<ReconcileOutcome, string>> = {
  success: "success",
  requeue: "requeue_after",
  error: "error",
  terminal: "error",
};

export function queueObserver(m: Metrics, loops: LoopMonitor): QueueObserver {
  return {
    onAdd: (name) => {
      m.workqueueAdds.inc({ name });
    },
    onDepth: (name, depth) => {
      m.workqueueDepth.set({ name }, depth);
      loops.depth(name, depth);
    },
    onQueueLatency: (name, seconds) => {
      m.workqueueQueueDuration.observe({ name }, seconds);
      loops.taken(name);
    },
    onWorkDuration: (name, seconds) => {
      m.workqueueWorkDuration.observe({ name }, seconds);
    },
    onRetry: (name) => {
      m.workqueueRetries.inc({ name });
    },
  };
}

export function controllerObserver(m: Metrics, loops: LoopMonitor): ControllerObserver {
  return {
    onReconcileStart: (controller, key) => {
      loops.reconcileStarted(controller, key);
    },
    onReconcile: (controller, outcome, seconds, _reason, key) => {
      loops.reconcileFinished(controller, key);
      m.reconcileTotal.inc({ controller, result: RESULT_LABEL[outcome] });
      m.reconcileTime.observe({ controller }, seconds);
      if (outcome === "error" || outcome === "terminal") m.reconcileErrors.inc({ controller });
      if (outcome === "terminal") m.terminalReconcileErrors.inc({ controller });
    },
  };
}

export function consulObserver(m: Metrics): ConsulObserver {
  return {
    onWrite: (kind, ok) => {
      m.consulWrites.inc({ kind, result: ok ? "success" : "error" });
    },
  };
}

/** Docker actions are a small fixed vocabulary; anything odd is folded into "other" (bounded cardinality). */
export function dockerActionLabel(action: string): string {
  return /^[a-z_]{1,32}$/.test(action) ? action : "other";
}

export function dockerObserver(m: Metrics): DockerWatcherObserver {
  return {
    onEvent: (action) => {
      m.dockerEvents.inc({ action: dockerActionLabel(action) });
    },
    onReconnect: () => {
      m.dockerReconnects.inc();
    },
    onStall: () => {
      m.watchRestarts.inc({ source: "docker", reason: "stalled" });
    },
  };
}

export function rendererObserver(m: Metrics, now: () => number = Date.now): RendererObserver {
  return {
    onRender: (key, result) => {
      m.lbRenders.inc({ result });
      if (result !== "error") m.recordLbSuccess(key, now());
    },
  };
}

export interface LbActivityEntry {
  /** ISO time. */
  readonly at: string;
  readonly ok: boolean;
  /** The failure message (nginx's stderr, trimmed by the driver); absent on success. */
  readonly message?: string;
}

/** Last validation and reload of the load balancer (one nginx: a reload applies every file). */
export class LbActivity {
  lastValidation: LbActivityEntry | undefined;
  lastReload: LbActivityEntry | undefined;
}

/**
 * Wraps a driver so every `nginx -t` (candidate or live) counts in
 * dockbind_lb_validations_total and every reload in dockbind_lb_reloads_total.
 * Behaviour of the wrapped driver is unchanged: results and errors pass through.
 */
export function observeDriver(inner: LoadBalancerDriver, m: Metrics, activity: LbActivity): LoadBalancerDriver {
  const track = async <T>(what: "validation" | "reload", fn: () => Promise<T>): Promise<T> => {
    const counter = what === "reload" ? m.lbReloads : m.lbValidations;
    const at = new Date().toISOString();
    try {
      const result = await fn();
      counter.inc({ result: "success" });
      if (what === "reload") activity.lastReload = { at, ok: true };
      else activity.lastValidation = { at, ok: true };
      return result;
    } catch (err) {
      counter.inc({ result: "error" });
      const entry = { at, ok: false, message: errorMessage(err) };
      if (what === "reload") activity.lastReload = entry;
      else activity.lastValidation = entry;
      throw err;
    }
  };
  return {
    kind: inner.kind,
    validateCandidate: (path) => track("validation", () => inner.validateCandidate(path)),
    validateLive: () => track("validation", () => inner.validateLive()),
    reload: () => track("reload", () => inner.reload()),
  };
}
