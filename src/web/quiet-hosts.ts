import type { Heartbeat, HeartbeatStore } from '../grading/heartbeats.js';
import { html, type Html } from '../lib/html.js';

/** A worker process that missed this many heartbeats in a row has gone quiet. */
export const QUIET_AFTER_BEATS = 3;
/** Rows older than this are of long-gone processes, not hosts to look at today (as /health lists). */
const LISTED_MS = 24 * 3600 * 1000;

/**
 * Worker processes whose last heartbeat is older than `QUIET_AFTER_BEATS` heartbeat intervals:
 * the host, its process or its connection to the database may be down. A process that stops
 * cleanly removes its row, so only one that went quiet is listed.
 */
export async function quietHosts(heartbeats: HeartbeatStore, now: number, heartbeatMs: number): Promise<Heartbeat[]> {
  const quietMs = QUIET_AFTER_BEATS * heartbeatMs;
  return (await heartbeats.list(now, LISTED_MS)).filter((h) => now - h.seenAt > quietMs);
}

/** The staff page's list of quiet hosts, with each one's engine and last-seen time; nothing when every host beats. */
export function quietHostsHtml(hosts: Heartbeat[], now: number): Html {
  if (!hosts.length) return html``;
  const rows = hosts.map(
    (h) => html`<tr class="quiet-host"><td>${h.id}</td><td>${h.engine}</td><td>${h.engineState}</td>
<td><time datetime="${new Date(h.seenAt).toISOString()}">${new Date(h.seenAt).toISOString()}</time> (${Math.round((now - h.seenAt) / 1000)} s ago)</td></tr>`,
  );
  return html`<section id="quiet-hosts"><h2>Grading hosts that went quiet</h2>
<p>These worker processes have stopped sending their heartbeat: check the host, its <code>gofer worker</code> process and its Docker engine.</p>
<table><thead><tr><th>Worker</th><th>Engine</th><th>Engine state when last seen</th><th>Last seen</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}
