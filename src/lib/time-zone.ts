import { html, type Html } from './html.js';

/**
 * Times in a course's time zone (an IANA name such as Europe/Paris; UTC when a course names none):
 * as people read them on the pages and in the CSV, and due dates written without an offset read
 * in it. Only Intl: the zone rules are the ones Node was built with.
 */

export const DEFAULT_TIME_ZONE = 'UTC';

/** True for a time zone name Intl knows (IANA names, UTC). */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The wall clock in `zone` at `ms`: year, month (1-12), day, hour (0-23), minute, second. */
function wallClock(ms: number, zone: string): [number, number, number, number, number, number] {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formats.set(zone, f);
  }
  const parts = f.formatToParts(ms);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return [get('year'), get('month'), get('day'), get('hour'), get('minute'), get('second')];
}

/** How far `zone` is ahead of UTC at `ms`, in ms. */
export function offsetMs(ms: number, zone: string): number {
  const [y, mo, d, h, mi, s] = wallClock(ms, zone);
  return Date.UTC(y, mo - 1, d, h, mi, s) - Math.floor(ms / 1000) * 1000;
}

const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');

/** "+01:00", "-05:00", "+00:00". */
export function offsetText(ms: number, zone: string): string {
  const minutes = Math.round(offsetMs(ms, zone) / 60_000);
  return `${minutes < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
}

/** "2026-12-04 10:15" on the wall clock of `zone`. */
export function localText(ms: number, zone: string): string {
  const [y, mo, d, h, mi] = wallClock(ms, zone);
  return `${pad(y, 4)}-${pad(mo)}-${pad(d)} ${pad(h)}:${pad(mi)}`;
}

/**
 * A time for people, with its zone named: `<time datetime="…Z">2026-12-04 10:15 Europe/Paris</time>`;
 * nothing for null. `fixed`: the learner page's script keeps it in this zone (the course chose it)
 * instead of rewriting it in the reader's local time.
 */
export function timeHtml(ms: number | null, zone: string = DEFAULT_TIME_ZONE, opts: { fixed?: boolean } = {}): Html {
  if (ms === null) return html``;
  return html`<time datetime="${new Date(ms).toISOString()}"${opts.fixed ? html` data-fixed="1"` : html``}>${localText(ms, zone)} ${zone}</time>`;
}

/** The instant the wall clock of `zone` reads this date and time (a time a clock change skips is read with the offset after it). */
export function fromWallClock(y: number, mo: number, d: number, h: number, mi: number, s: number, zone: string): number {
  const guess = Date.UTC(y, mo - 1, d, h, mi, s);
  const at = guess - offsetMs(guess, zone);
  // a clock change between the guess and the answer: the offset in force at the answer decides
  return guess - offsetMs(at, zone);
}

const WALL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/;
const WITH_OFFSET = /(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * A due date as the configuration writes it: with an offset or Z ("2026-12-10T23:59:00Z",
 * "…+01:00") it is that instant; without one ("2026-12-10 23:59", "2026-12-10T23:59",
 * "2026-12-10", midnight) it is read on the wall clock of the course's zone. Undefined when it is
 * not a date.
 */
export function parseDue(value: string | Date, zone: string): Date | undefined {
  if (value instanceof Date) return isNaN(value.getTime()) ? undefined : value;
  const text = value.trim();
  const m = WALL.exec(text);
  if (m) {
    const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
    const check = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
    if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
    return new Date(fromWallClock(y, mo, d, h, mi, s, zone));
  }
  if (!WITH_OFFSET.test(text) || !/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const at = new Date(text);
  return isNaN(at.getTime()) ? undefined : at;
}
