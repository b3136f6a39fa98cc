import { html, type Html } from '../lib/html.js';
import type { PassbackState } from '../passback/actions.js';

/** One test's result as a learner may see it (hidden tests are filtered out before). */
export interface VisibleTest {
  name: string;
  passed: boolean;
  points?: number;
  maxPoints?: number;
  message?: string | null;
}

/** Per-test feedback: the list under a submission, with points when `withPoints`. */
export function testFeedback(tests: readonly VisibleTest[], withPoints: boolean): Html {
  return html`<ul>${tests.map(
    (t) => html`<li>${t.name}: ${t.passed ? 'passed' : 'failed'}${withPoints ? html` (${t.points}/${t.maxPoints})` : ''}${t.message ? html`<pre>${t.message}</pre>` : ''}</li>`,
  )}</ul>`;
}

const PASSBACK_WORDS: Record<string, string> = {
  sent: 'sent to edX',
  pending: 'being sent to edX',
  waiting: 'waiting: launch the assignment from the course (and connect your JupyterHub account) so Gofer can send it',
  superseded: 'not sent: a newer score is already in edX',
  late: 'not sent: submitted after the deadline',
  failed: 'edX refused it; course staff can see why',
};

/**
 * The learner's words for a passback state. `notice` is the platform's standing problem (from
 * platformNotice), which changes what "sent" means.
 */
export function passbackWords(state: PassbackState | undefined, notice: { certain: boolean } | null): string {
  if (!state) return '';
  if (state.status === 'sent' && notice) return notice.certain ? 'sent to edX, which will not record it (see above)' : 'sent to edX, which may not record it (see above)';
  return PASSBACK_WORDS[state.status] ?? state.status;
}

/** The staff's view of a passback state: the status, and why below it. */
export function passbackCell(state: PassbackState | undefined): Html {
  return html`${state?.status ?? ''}${state?.detail ? html`<br><small>${state.detail}</small>` : ''}`;
}
