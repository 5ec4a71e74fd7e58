/**
 * The pipeline's long-running parts as Runnables, in start order (a runtime
 * Manager stops them in reverse): status-page attachment, health watcher,
 * binding source, each Docker endpoint's watchers, Consul agent monitor and
 * token follower, renderer resync, registrar and renderer controllers. Every
 * one needs leadership (only the leader reads sources and writes anything).
 * Controllers stop first (their queues shut down, in-flight reconciles
 * finish), then the sources feeding them, then the health watcher.
 */
import type { Runnable } from "../runtime/manager.js";
import { aborted } from "../runtime/manager.js";
import { controllerRunnable } from "../runtime/controller.js";
import { decodeRendererRequest, encodeRendererRequest, keyed } from "../runtime/requests.js";
import { watchTlsFiles } from "../sources/files/tlsFiles.js";
import { watchOutputDirs } from "../sources/lb/outputWatch.js";
import type { Components } from "./components.js";
import { reportingReconciler } from "./reconciledReport.js";

/** `loadBalancer.tls` file poll period: bounds how long a renewed certificate waits before it is validated and loaded. */
const TLS_POLL_MS = 1000;
/** The same poll while no binding has tls: it only has to notice that one gained it. */
const TLS_IDLE_POLL_MS = 5000;

/** Re-renders bindings whose TLS files changed (renewed, replaced, broken or fixed). */
function tlsFilesRunnable(c: Components): Runnable {
  const { config, logger } = c.opts;
  return leader("tls-files", (signal) =>
    watchTlsFiles(
      {
        bindings: c.bindings,
        dir: config.tlsDir,
        intervalMs: TLS_POLL_MS,
        idleIntervalMs: TLS_IDLE_POLL_MS,
        onChange: (keys) => {
          logger.info("TLS files changed; re-rendering", { bindings: keys.join(",") });
          c.renderRouter.bindingsChanged(keys);
        },
      },
      signal,
    ),
  );
}

/** Generated files changed on disk (edited or deleted by hand, or this controller's own writes): their bindings are rendered again. */
function outputFilesRunnable(c: Components): Runnable {
  const { config, logger } = c.opts;
  return leader("lb-output-watch", (signal) =>
    watchOutputDirs(
      {
        dirs: [config.lbOutputDir, config.nginxStreamDir, config.haproxy.outputDir],
        logger,
        onChange: (paths) => {
          const keys = [...new Set(paths.map((p) => c.renderer.ownerOf(p)).filter((k): k is string => k !== undefined))];
          if (keys.length === 0) return;
          logger.debug("generated files changed on disk; re-rendering", { bindings: keys.join(",") });
          c.renderRouter.bindingsChanged(keys);
        },
      },
      signal,
    ),
  );
}

/** A runnable that needs leadership; `start` runs until its signal aborts. */
function leader(name: string, start: (signal: AbortSignal) => Promise<void>): Runnable {
  return { name, needsLeadership: true, start };
}

/** Makes the stores visible to /metrics, /readyz and /api/status while leading; logs "controller stopped" last. */
function telemetryRunnable(c: Components): Runnable {
  const { config, logger } = c.opts;
  return leader("telemetry", async (signal) => {
    c.telemetry.captureLogs(logger);
    c.telemetry.attach({
      mode: config.dockerOnly ? "docker-only" : "kubernetes",
      node: config.node,
      instance: config.instanceId,
      endpoints: c.endpoints.map((p) => ({
        node: p.node,
        hostIP: p.hostIP,
        containers: p.docker,
        swarm: p.swarmView,
        identity: () => p.identity(),
        conflicts: () => p.conflicts.list(),
      })),
      bindings: c.bindings,
      status: c.status,
      containers: c.containers,
      health: c.health,
      consul: c.consul,
      controllers: [
        { name: "registrar", workers: config.workers },
        { name: "renderer", workers: 1 },
      ],
    });
    await aborted(signal);
    logger.info("controller stopped");
  });
}

/** Consul agent liveness monitor and (with --consul-token-file) token follower. */
function consulRunnables(c: Components): Runnable[] {
  const { logger, consulToken } = c.opts;
  const monitor = leader("consul-agent-monitor", (signal) => c.agentMonitor.run(signal));
  if (consulToken === undefined) return [monitor];
  // A rotated token: every owned registration is rewritten with it (the agent syncs each service with the token it
  // was registered with), and what waits in error backoff (403s of a revoked token) retries now.
  const token = leader("consul-token", async (signal) => {
    const unsubscribe = consulToken.onChange(() => {
      logger.info("consul token changed; re-registering owned services with it and retrying what failed");
      for (const p of c.endpoints) p.rewriteAll();
      void c.handlers.sweepOtherAgents();
      c.health.kick();
    });
    await aborted(signal);
    unsubscribe();
  });
  return [monitor, token];
}

/** The runnables of a built pipeline, in start order. */
export function pipelineRunnables(c: Components): Runnable[] {
  const { config, logger, onReconciled } = c.opts;
  const health = leader("health-watcher", async (signal) => {
    await aborted(signal);
    await c.health.stop();
  });
  const resync = leader("renderer-resync", async (signal) => {
    const timer = setInterval(() => {
      c.renderRouter.allRendered();
    }, config.resyncIntervalMs);
    await aborted(signal);
    clearInterval(timer);
  });
  const renderer = keyed(
    decodeRendererRequest,
    reportingReconciler("renderer", c.renderer, (r) => r.binding, c.bindings, onReconciled),
  );
  // Generated files found on disk are adopted (and queued) before the first render.
  const adopt = async (): Promise<void> => {
    for (const binding of await c.renderer.adoptExisting()) c.rendererQueue.add(encodeRendererRequest({ kind: "render", binding }));
    logger.info("controller started", {
      mode: config.dockerOnly ? "docker-only" : "kubernetes",
      node: config.node,
      dockerEndpoints: c.endpoints.map((p) => p.node),
      consul: config.consul.url,
    });
  };
  return [
    telemetryRunnable(c),
    health,
    leader("binding-source", (signal) => c.bindings.run(signal)),
    ...c.endpoints.flatMap((p) => p.runnables()),
    ...consulRunnables(c),
    resync,
    tlsFilesRunnable(c),
    outputFilesRunnable(c),
    controllerRunnable({
      name: "registrar",
      queue: c.registrarQueue,
      reconciler: c.registrar,
      workers: config.workers,
      logger,
      observer: c.telemetry.controllerObserver,
    }),
    controllerRunnable({ name: "renderer", queue: c.rendererQueue, reconciler: renderer, workers: 1, logger, observer: c.telemetry.controllerObserver }, adopt),
  ];
}
