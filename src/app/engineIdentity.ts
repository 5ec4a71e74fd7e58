/**
 * The Docker engine ID of one endpoint (`docker info` .ID), written into every
 * registration made from it (`dockbind_engine`, see domain/ownership.ts).
 * Unknown until the engine first answered; until then the registrar computes
 * nothing (exactly as while its container cache is not synced), so no
 * registration is ever written or judged without the engine's identity.
 */
import type Dockerode from "dockerode";
import { isIdentityValue } from "../domain/ownership.js";
import { backoffDelay, sleep, type BackoffOptions } from "../runtime/backoff.js";
import { errorMessage, type Logger } from "../runtime/logger.js";

/** `docker info` .ID, validated (it goes into Consul meta and status). Rejects when the engine does not answer. */
export async function engineId(docker: Pick<Dockerode, "info">): Promise<string> {
  const info = (await docker.info()) as { ID?: unknown };
  if (typeof info.ID !== "string" || !isIdentityValue(info.ID)) throw new Error("docker info returned no usable engine ID");
  return info.ID;
}

export interface EngineIdentityOptions {
  readonly docker: Pick<Dockerode, "info">;
  readonly logger: Logger;
  readonly backoff: BackoffOptions;
  /** Called when the ID becomes known or changes (the engine was replaced behind the same address). */
  readonly onChange?: (id: string) => void;
}

export class EngineIdentity {
  private current: string | undefined;

  constructor(private readonly o: EngineIdentityOptions) {}

  /** The engine ID; undefined until the engine answered once. */
  id(): string | undefined {
    return this.current;
  }

  /** Reads the ID until it is known or `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    for (let attempt = 0; !signal.aborted && this.current === undefined; attempt++) {
      if (await this.refresh()) return;
      await sleep(backoffDelay(attempt, this.o.backoff), signal);
    }
  }

  /** Re-reads the ID (after each full resync: a replaced engine has another). True when known. Never rejects. */
  async refresh(): Promise<boolean> {
    try {
      const id = await engineId(this.o.docker);
      if (id !== this.current) {
        if (this.current !== undefined)
          this.o.logger.warn("Docker engine ID changed; registrations of the previous engine are now another controller's", {
            previous: this.current,
            engine: id,
          });
        this.current = id;
        this.o.onChange?.(id);
      }
      return true;
    } catch (err) {
      this.o.logger.warn("cannot read the Docker engine ID", { error: errorMessage(err) });
      return false;
    }
  }
}
