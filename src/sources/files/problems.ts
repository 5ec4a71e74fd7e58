/** How a binding problem is shown in logs, `controller validate` and status messages. Pure. */
import type { BindingProblem } from "../../ports/bindingStore.js";

export function formatProblem(p: BindingProblem): string {
  return `${p.source} (document ${p.document}): ${p.field}: ${p.message}`;
}
