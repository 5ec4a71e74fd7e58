/**
 * Typed render failures. A RenderError means the *input* cannot be turned into
 * config at all (as opposed to a single bad instance, which is dropped and
 * reported in `RenderResult.rejected`). Retrying with the same input fails the
 * same way: callers should surface it on the binding status, not hot-loop.
 *
 * - TemplateInvalid: the custom mustache template does not parse.
 * - InvalidSpec: a binding-level value (service name, listen address/port,
 *   serverName) fails the safety validators; schema validation should have
 *   caught it earlier, this is the last line of defence.
 */
export type RenderErrorReason = "TemplateInvalid" | "InvalidSpec";

export class RenderError extends Error {
  override readonly name = "RenderError";
  readonly reason: RenderErrorReason;

  constructor(reason: RenderErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}
