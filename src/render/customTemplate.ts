/**
 * Custom templates: mustache (logic-less: no code execution, no file access,
 * partials are not provided so `{{> x}}` renders ""). Pure and synchronous.
 *
 * HTML escaping is disabled (escape = String) because every value of the view
 * is pre-validated for nginx/haproxy syntax; HTML entities would only corrupt
 * config. Shared by the nginx and haproxy renderers (each passes its own view).
 * Tags are always the default `{{ }}` passed explicitly, so nothing depends on
 * the library's mutable global `Mustache.tags`.
 */
import Mustache from "mustache";
import { RenderError } from "./errors.js";

const TAGS: [string, string] = ["{{", "}}"];

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * @throws RenderError("TemplateInvalid") when the template does not parse
 *         (unclosed tag/section, unopened section, bad delimiter change).
 */
export function renderCustom(template: string, view: object): string {
  try {
    Mustache.parse(template, TAGS);
  } catch (err: unknown) {
    throw new RenderError("TemplateInvalid", `template does not parse: ${message(err)}`, { cause: err });
  }
  try {
    return Mustache.render(template, view, {}, { escape: String, tags: TAGS });
  } catch (err: unknown) {
    throw new RenderError("TemplateInvalid", `template failed to render: ${message(err)}`, { cause: err });
  }
}
