import { html, unsafeRaw, type Html } from './html.js';

const STYLE = unsafeRaw(`body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd}
.status-graded{color:#176f2c}.status-failed,.status-timeout,.status-out_of_memory,.status-kernel_died,.status-invalid_notebook{color:#a4262c}
pre{background:#f6f6f6;padding:.5rem;white-space:pre-wrap}`);

/** The shell of every page Gofer (and its dev platform) serves: the title is text, the body markup. */
export function page(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Gofer</title>
<style>
${STYLE}
</style></head><body>
<h1>${title}</h1>
${body}
</body></html>`.toString();
}

/** A page that only says one thing (a refusal, an error). */
export function messagePage(title: string, message: string): string {
  return page(title, html`<p>${message}</p>`);
}
