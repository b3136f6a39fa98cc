/**
 * ISO 8601 the way edX (Django REST framework) reads and writes it. edX stores score timestamps
 * with microseconds and compares them exactly, so a JavaScript Date (milliseconds) would make
 * two different timestamps look equal; times here are epoch microseconds.
 */

// Django's datetime pattern: fraction up to 6 digits kept, up to 6 more ignored; date-only allowed.
const ISO = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,6})\d{0,6})?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/** Epoch microseconds, or null when the text is not a date-time Django would accept. Naive times are UTC. */
export function parseIsoMicros(text: string): number | null {
  const m = ISO.exec(text.trim());
  if (!m) return null;
  const [y, mo, d, h = '0', mi = '0', s = '0', frac = '', tz = 'Z'] = m.slice(1) as string[];
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return null;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 31 February over into March; Django refuses it.
  if (new Date(ms).getUTCDate() !== day) return null;
  let offsetMinutes = 0;
  if (tz && tz !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
  }
  const micros = Number((frac + '000000').slice(0, 6));
  return (ms - offsetMinutes * 60_000) * 1000 + micros;
}

/** `2026-03-01T12:00:00.123400Z`, fraction only when non-zero, as DRF renders a UTC datetime. */
export function formatIsoMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const rest = micros - ms * 1000;
  const base = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const fraction = (ms % 1000) * 1000 + rest;
  return base.slice(0, 19) + (fraction ? '.' + String(fraction).padStart(6, '0') : '') + 'Z';
}

export function formatIsoMillis(ms: number): string {
  return formatIsoMicros(ms * 1000);
}
