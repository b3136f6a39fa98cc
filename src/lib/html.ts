/**
 * Auto-escaping HTML templates. Every page is built with the `html` tag: each interpolated value
 * is escaped unless it is itself an `Html` fragment (made by `html` or, for text that is already
 * markup by construction, by `unsafeRaw`). Arrays are joined, and `null`, `undefined` and `false`
 * render nothing, so `${cond && html`…`}` and `${rows.map(...)}` read naturally.
 */
export class Html {
  readonly #markup: string;
  constructor(markup: string) {
    this.#markup = markup;
  }
  toString(): string {
    return this.#markup;
  }
}

export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML text and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(value);
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup that is trusted as is (a constant, or the output of a renderer that escapes itself). */
export function unsafeRaw(markup: string): Html {
  return new Html(markup);
}

/** Joins fragments with a separator (the separator is text, escaped). */
export function joinHtml(parts: readonly HtmlValue[], separator: string): Html {
  return new Html(parts.map(render).join(escapeHtml(separator)));
}
