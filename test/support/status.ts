/**
 * A running controller's /api/status document, and waits on what it reports
 * (binding conditions, validation problems): assertions on the controller's
 * observable state instead of its log text.
 */
import type { Condition } from "../../src/reconcilers/bindingStatus.js";
import type { StatusDocument } from "../../src/observability/statusModel.js";
import type { ControllerHandle } from "./controller.js";
import { controllerGet } from "./controllerHttp.js";
import { waitFor } from "./wait.js";

/** GET /api/status, parsed; rejects on a non-200 answer. */
export async function controllerStatus(c: ControllerHandle): Promise<StatusDocument> {
  const res = await controllerGet(c, "/api/status");
  if (res.status !== 200) throw new Error(`/api/status: HTTP ${res.status}`);
  return JSON.parse(res.body) as StatusDocument;
}

/** Condition `type` of binding `key` in `doc`, undefined when the binding or the condition is absent. */
export function bindingCondition(doc: StatusDocument, key: string, type: Condition["type"]): Condition | undefined {
  return doc.bindings.find((b) => b.key === key)?.conditions.find((c) => c.type === type);
}

/** Polls /api/status until binding `key`'s condition `type` satisfies `pred`; resolves with that condition. */
export function waitForCondition(
  c: ControllerHandle,
  key: string,
  type: Condition["type"],
  pred: (c: Condition) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<Condition> {
  return waitFor(
    async () => {
      const cond = bindingCondition(await controllerStatus(c), key, type);
      return cond !== undefined && pred(cond) ? cond : undefined;
    },
    { timeoutMs, intervalMs: 200, what },
  );
}

export type StatusProblem = StatusDocument["problems"][number];

/** Polls /api/status until a validation problem satisfies `pred`; resolves with it. */
export function waitForProblem(c: ControllerHandle, pred: (p: StatusProblem) => boolean, what: string, timeoutMs = 30_000): Promise<StatusProblem> {
  return waitFor(async () => (await controllerStatus(c)).problems.find(pred), { timeoutMs, intervalMs: 200, what });
}
