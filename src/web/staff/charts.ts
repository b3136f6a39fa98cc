import { DEFAULT_TIME_ZONE, localText } from '../../lib/time-zone.js';
import { html, type Html } from '../../lib/html.js';

/**
 * Server-rendered SVG bar charts for the staff overview: readable without JavaScript, printable,
 * and each followed by a table that says the same in words (the text alternative). Every bar is a
 * `<rect class="bar">` carrying its label and value (`data-label`, `data-value`), which is also
 * how the tests read a chart.
 */
export interface Bar {
  label: string;
  value: number;
  /** Shown in the tooltip and the table instead of the bare value. */
  text?: string;
}

export interface ChartOptions {
  id: string;
  title: string;
  /** What a value counts ("learners", "% passing"). */
  unit: string;
  /** Values are drawn against this maximum (default: the largest value). */
  max?: number;
  /** A vertical marker after the bar at this index (e.g. the due date), with its label. */
  marker?: { after: number; label: string };
}

const W = 640;
const H = 200;
const PAD = { left: 40, right: 10, top: 14, bottom: 46 };

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** A bar chart as an SVG figure followed by its data table. */
export function barChart(bars: readonly Bar[], o: ChartOptions): Html {
  const max = Math.max(o.max ?? 0, ...bars.map((b) => b.value), 1);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = bars.length ? plotW / bars.length : plotW;
  const barW = Math.max(1, slot * 0.8);
  const labelEvery = Math.max(1, Math.ceil(bars.length / 12));
  const rects = bars.map((b, i) => {
    const h = (b.value / max) * plotH;
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const y = PAD.top + plotH - h;
    return html`<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" data-label="${b.label}" data-value="${b.value}"><title>${b.label}: ${b.text ?? `${fmt(b.value)} ${o.unit}`}</title></rect>
${i % labelEvery === 0 && html`<text x="${(x + barW / 2).toFixed(1)}" y="${H - PAD.bottom + 14}" text-anchor="middle" font-size="10">${b.label}</text>`}`;
  });
  const marker = o.marker && bars.length ? PAD.left + (o.marker.after + 1) * slot : null;
  const titleId = `${o.id}-title`;
  return html`<figure class="chart" id="${o.id}">
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="${titleId}">
<title id="${titleId}">${o.title}</title>
<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${W - PAD.right}" y2="${PAD.top + plotH}" stroke="#555"/>
<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + plotH}" stroke="#555"/>
<text x="${PAD.left - 4}" y="${PAD.top + 4}" text-anchor="end" font-size="10">${fmt(max)}</text>
<text x="${PAD.left - 4}" y="${PAD.top + plotH}" text-anchor="end" font-size="10">0</text>
<g fill="#3b6ea5">${rects}</g>
${marker !== null && html`<line class="marker" x1="${marker.toFixed(1)}" y1="${PAD.top}" x2="${marker.toFixed(1)}" y2="${PAD.top + plotH}" stroke="#a4262c" stroke-dasharray="4 3"/><text x="${(marker + 3).toFixed(1)}" y="${PAD.top + 8}" font-size="10" fill="#a4262c">${o.marker!.label}</text>`}
${bars.length === 0 && html`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12">No data yet</text>`}
</svg>
<figcaption>${o.title}</figcaption>
<details><summary>The data as a table</summary><table class="chart-data"><thead><tr><th scope="col">${o.title}</th><th scope="col">${o.unit}</th></tr></thead>
<tbody>${bars.map((b) => html`<tr><td>${b.label}</td><td>${b.text ?? fmt(b.value)}</td></tr>`)}</tbody></table></details>
</figure>`;
}

/** Scores (fractions 0..1) into ten bins of 10% each (100% falls in the last). */
export function scoreHistogram(scores: readonly number[]): Bar[] {
  const counts = new Array<number>(10).fill(0);
  for (const s of scores) counts[Math.min(9, Math.max(0, Math.floor(s * 10 + 1e-9)))]! += 1;
  return counts.map((value, i) => ({ label: i === 9 ? '90–100%' : `${i * 10}–${i * 10 + 9}%`, value }));
}

/** Per-test pass rates as bars of percent passing. */
export function passRates(tests: ReadonlyArray<{ name: string; passed: number; total: number }>): Bar[] {
  return tests.map((t) => {
    const pct = t.total ? Math.round((t.passed / t.total) * 1000) / 10 : 0;
    return { label: t.name, value: pct, text: `${fmt(pct)}% (${t.passed} of ${t.total})` };
  });
}

/** A time bucket for the submissions-over-time chart: an hour while the span is under three days, else a day. */
export function bucketMs(first: number, last: number): number {
  return last - first < 3 * 86_400_000 ? 3_600_000 : 86_400_000;
}

/**
 * Submissions per bucket from the first to the last (empty buckets included, at most 400), with
 * the due date's bucket as the marker. Hours and the due date are labelled on the wall clock of
 * `zone`; days are UTC days.
 */
export function overTime(counts: ReadonlyArray<{ bucket: number; n: number }>, bucket: number, due?: Date, zone: string = DEFAULT_TIME_ZONE): { bars: Bar[]; marker?: { after: number; label: string } } {
  if (counts.length === 0) return { bars: [] };
  const byBucket = new Map(counts.map((c) => [c.bucket, c.n]));
  const firstB = Math.min(...counts.map((c) => c.bucket));
  const lastB = Math.max(...counts.map((c) => c.bucket));
  const start = Math.max(firstB, lastB - 399);
  const bars: Bar[] = [];
  for (let b = start; b <= lastB; b++) {
    const local = localText(b * bucket, zone);
    bars.push({ label: bucket < 86_400_000 ? `${local.slice(5, 10)} ${local.slice(11, 13)}h${local.slice(14, 16) === '00' ? '' : local.slice(14, 16)}` : new Date(b * bucket).toISOString().slice(0, 10), value: byBucket.get(b) ?? 0 });
  }
  if (!due) return { bars };
  const dueB = Math.floor(due.getTime() / bucket);
  const after = Math.min(Math.max(dueB - start, -1), bars.length - 1);
  return { bars, marker: { after, label: `due ${localText(due.getTime(), zone)} ${zone}` } };
}
