/** Escapes text for HTML; every value put into a page goes through here. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Gofer</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd}
.status-graded{color:#176f2c}.status-failed,.status-timeout,.status-out_of_memory,.status-kernel_died,.status-invalid_notebook{color:#a4262c}
pre{background:#f6f6f6;padding:.5rem;white-space:pre-wrap}
</style></head><body>
<h1>${esc(title)}</h1>
${body}
</body></html>`;
}
