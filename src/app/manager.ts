/**
 * The controller manager: wires sources -> workqueues -> reconcilers ->
 * actuators. The binding source is pluggable (files for --docker-only,
 * Kubernetes for cluster mode); everything else is shared.
 *
 *   FileBindingSource ─┐                     ┌─> RegistrarReconciler ─> Consul agent
 *   DockerWatcher ─────┼─> registrar queue ──┘
 *                      │
 *   HealthWatcher ─────┴─> renderer queue ───> RendererReconciler ─> nginx files + reload
 *
 * Runs until `signal` aborts, then drains and returns. Registrations are left
 * in place on shutdown (a restarted controller finds them converged).
 */
import { createConsulClient } from "../actuators/consul/consulClient.js";
import { LbConfigWriter } from "../actuators/lb/configWriter.js";
import { NginxDriver } from "../actuators/lb/nginxDriver.js";
import type { Config } from "../config/config.js";
import { matchesSelector } from "../domain/selector.js";
import type { ServiceBinding } from "../domain/types.js";
import { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import { BINDING_PREFIX, CONTAINER_PREFIX, ownerKey, RegistrarReconciler } from "../reconcilers/registrar.js";
import { RendererReconciler } from "../reconcilers/renderer.js";
import { runController } from "../runtime/controller.js";
import { errorMessage, type Logger } from "../runtime/logger.js";
import { WorkQueue } from "../runtime/workqueue.js";
import { HealthWatcher, refKey, type ServiceRef } from "../sources/consul/healthWatcher.js";
import { DockerWatcher, type ContainerChange } from "../sources/docker/dockerWatcher.js";
import type { BindingStore } from "../sources/files/bindingStore.js";
import { dockerClient } from "./dockerClient.js";
import { OWNER_META } from "../domain/types.js";

const BACKOFF = { baseMs: 200, maxMs: 60_000 } as const;

/** A binding source the manager can run: the read side plus its watch loop. */
export interface RunnableBindingSource extends BindingStore {
  /** Loads, then watches until `signal` aborts. Never rejects. */
  run(signal: AbortSignal): Promise<void>;
}

/** Builds the binding source; `onChange` must be called with the keys that appeared, changed or vanished. */
export type BindingSourceFactory = (onChange: (keys: readonly string[]) => void) => RunnableBindingSource;

export interface ManagerOptions {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly bindingSource: BindingSourceFactory;
  /** Shared status store (e.g. read by a Kubernetes status writer or the status page). */
  readonly status?: BindingStatusStore;
}

export interface Manager {
  readonly status: BindingStatusStore;
  readonly bindings: BindingStore;
  /** Resolves when the controller has stopped. */
  readonly done: Promise<void>;
}

function serviceRef(b: ServiceBinding): ServiceRef {
  const dc = b.spec.service.datacenter;
  return { service: b.spec.service.name, ...(dc !== undefined ? { dc } : {}) };
}

export function startManager(opts: ManagerOptions): Manager {
  const { config, logger, signal } = opts;
  const status = opts.status ?? new BindingStatusStore();
  const consul = createConsulClient({ url: config.consul.url, ...(config.consul.token !== undefined ? { token: config.consul.token } : {}) });
  const registrarQueue = new WorkQueue({ name: "registrar", backoff: BACKOFF });
  const rendererQueue = new WorkQueue({ name: "renderer", backoff: BACKOFF });

  const lbBindings = (): ServiceBinding[] => bindings.list().filter((b) => b.spec.loadBalancer !== undefined);

  const bindings: RunnableBindingSource = opts.bindingSource((keys) => {
    for (const key of keys) {
      registrarQueue.add(BINDING_PREFIX + key);
      rendererQueue.add(key);
    }
    health.setWanted(lbBindings().map(serviceRef));
  });

  const health = new HealthWatcher({
    consul,
    logger,
    waitMs: 5 * 60_000,
    backoff: BACKOFF,
    debounce: { minMs: config.waitMinMs, maxMs: config.waitMaxMs },
    onChange: (changed) => {
      for (const b of lbBindings()) if (refKey(serviceRef(b)) === changed) rendererQueue.add(`${b.metadata.namespace}/${b.metadata.name}`);
    },
  });

  const enqueueOwned = async (): Promise<void> => {
    try {
      for (const s of await consul.listAgentServices()) {
        if (s.meta[OWNER_META.node] !== config.node) continue;
        const key = ownerKey(s.meta);
        if (key !== undefined) registrarQueue.add(key);
      }
    } catch (err) {
      logger.warn("cannot list owned registrations for garbage collection", { error: errorMessage(err) });
    }
  };

  const docker = new DockerWatcher({
    docker: dockerClient(config.dockerHost),
    logger,
    resyncIntervalMs: config.resyncIntervalMs,
    backoff: BACKOFF,
    onChange: (change: ContainerChange) => {
      for (const b of bindings.list()) {
        const sel = b.spec.backends.selector;
        const hit = [change.before, change.after].some((c) => c !== undefined && matchesSelector(sel, c.labels));
        if (hit) registrarQueue.add(`${BINDING_PREFIX}${b.metadata.namespace}/${b.metadata.name}`);
      }
      if (config.registratorCompat) registrarQueue.add(CONTAINER_PREFIX + change.id);
    },
    onResync: () => {
      for (const b of bindings.list()) registrarQueue.add(`${BINDING_PREFIX}${b.metadata.namespace}/${b.metadata.name}`);
      if (config.registratorCompat) for (const c of docker.list()) registrarQueue.add(CONTAINER_PREFIX + c.id);
      void enqueueOwned();
    },
  });

  const registrar = new RegistrarReconciler({
    bindings,
    containers: docker,
    consul,
    status,
    logger,
    node: config.node,
    hostIP: config.hostIP,
    ...(config.registratorCompat
      ? { compat: { node: config.node, hostIP: config.hostIP, internal: config.registratorInternal, extraTags: [] } }
      : {}),
  });
  const renderer = new RendererReconciler({
    bindings,
    health,
    writer: new LbConfigWriter(new NginxDriver({ nginxBin: config.nginx.bin, args: config.nginx.args })),
    status,
    logger,
    outputDir: config.lbOutputDir,
    templateDir: config.templateDir,
  });

  const rendererResync = setInterval(() => {
    for (const b of lbBindings()) rendererQueue.add(`${b.metadata.namespace}/${b.metadata.name}`);
  }, config.resyncIntervalMs);
  rendererResync.unref();

  const done = (async () => {
    for (const key of await renderer.adoptExisting()) rendererQueue.add(key);
    const sources = [bindings.run(signal), docker.run(signal)];
    const controllers = [
      runController({ name: "registrar", queue: registrarQueue, reconciler: registrar, workers: config.workers, logger }),
      runController({ name: "renderer", queue: rendererQueue, reconciler: renderer, workers: 1, logger }),
    ];
    logger.info("controller started", { mode: config.dockerOnly ? "docker-only" : "kubernetes", node: config.node, consul: config.consul.url });
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else
        signal.addEventListener(
          "abort",
          () => {
            resolve();
          },
          { once: true },
        );
    });
    clearInterval(rendererResync);
    registrarQueue.shutDown();
    rendererQueue.shutDown();
    await health.stop();
    await Promise.all([...sources, ...controllers]);
    logger.info("controller stopped");
  })();
  return { status, bindings, done };
}
