import type { Clock } from '../lib/clock.js';
import { passbackNotice } from './notice.js';
import type { PassbackOutbox } from './outbox.js';
import type { PolicyLookup } from './policy.js';

/** How a submission's grade stands with the platform, for the pages. */
export interface PassbackState {
  status: string;
  /** The sentences staff read behind the status, or null when there are none. */
  detail: string | null;
}

/**
 * What the pages may do with passback: read each submission's state in words, and send a
 * submission's score again (a staff action). The dispatcher is woken after a resend.
 */
export class PassbackActions {
  constructor(
    private readonly o: {
      outbox: Pick<PassbackOutbox, 'bySubmission' | 'requeue'>;
      policy: PolicyLookup;
      clock: Clock;
      /** Called after a resend was queued (the dispatcher's notify). */
      onRequeued: () => void;
    },
  ) {}

  async states(submissionIds: string[]): Promise<Map<string, PassbackState>> {
    const rows = await this.o.outbox.bySubmission(submissionIds);
    return new Map([...rows].map(([id, v]) => [id, { status: v.status, detail: passbackNotice(v, this.o.policy(v.course, v.assignment)).sentences.join(' ') || null }]));
  }

  /** Queues the submission's latest passback row again; false when it has none to resend. */
  async resend(submissionId: string): Promise<boolean> {
    const row = (await this.o.outbox.bySubmission([submissionId])).get(submissionId);
    const n = row ? await this.o.outbox.requeue([row.id], this.o.clock.now()) : 0;
    this.o.onRequeued();
    return n > 0;
  }
}
