import { expect } from 'chai';
import { PassbackActions } from '../../src/passback/actions.js';
import type { PassbackView } from '../../src/passback/outbox.js';

const T = Date.parse('2026-12-01T10:00:00Z');
function row(id: number, submissionId: string, over: Partial<PassbackView> = {}): PassbackView {
  return {
    id,
    submissionId,
    resultId: id,
    owner: 'ada',
    course: '8x',
    assignment: 'lab01',
    score: 1,
    gradedAt: T,
    receivedAt: T,
    attempts: 0,
    status: 'pending',
    nextAttemptAt: T,
    lastError: null,
    sentAt: null,
    createdAt: T,
    ...over,
  };
}

/** An outbox holding rows in memory: only what PassbackActions uses. */
function fakeOutbox(rows: PassbackView[]) {
  const requeued: Array<{ ids: number[]; now: number }> = [];
  return {
    requeued,
    bySubmission: async (ids: string[]) => new Map(rows.filter((r) => ids.includes(r.submissionId)).map((r) => [r.submissionId, r])),
    requeue: async (ids: number[], now: number) => {
      requeued.push({ ids, now });
      return rows.filter((r) => ids.includes(r.id) && r.status === 'failed').length;
    },
  };
}

describe('PassbackActions (what the pages do with passback)', () => {
  const clock = { now: () => T + 5000 };

  it("states: each submission's status, with the staff sentences as detail (due date from the policy)", async () => {
    const outbox = fakeOutbox([row(1, 's1', { status: 'sent', sentAt: T, receivedAt: T + 10 }), row(2, 's2', { status: 'failed', lastError: 'edX said 403' }), row(3, 's3', { status: 'pending' })]);
    const actions = new PassbackActions({ outbox, policy: () => ({ points: 1, select: 'latest', late: 'accept', label: 'lab01', due: new Date(T) }), clock, onRequeued: () => undefined });
    const states = await actions.states(['s1', 's2', 's3', 'unknown']);
    expect([...states.keys()]).to.deep.equal(['s1', 's2', 's3']);
    expect(states.get('s1')?.status).to.equal('sent');
    expect(states.get('s1')?.detail).to.match(/^Sent to the platform at 2026-12-01T10:00:00\.000Z\. Received after the due date/);
    expect(states.get('s2')).to.deep.equal({ status: 'failed', detail: 'edX said 403' });
    expect(states.get('s3')).to.deep.equal({ status: 'pending', detail: null });
  });

  it("resend: requeues the submission's row at the clock's time and wakes the dispatcher; false when nothing was requeued", async () => {
    const outbox = fakeOutbox([row(7, 's7', { status: 'failed' }), row(8, 's8', { status: 'sent' })]);
    let woken = 0;
    const actions = new PassbackActions({ outbox, policy: () => undefined, clock, onRequeued: () => woken++ });
    expect(await actions.resend('s7')).to.equal(true);
    expect(outbox.requeued).to.deep.equal([{ ids: [7], now: T + 5000 }]);
    expect(await actions.resend('s8')).to.equal(false);
    expect(await actions.resend('none')).to.equal(false);
    expect(outbox.requeued).to.have.length(2);
    expect(woken).to.equal(3);
  });
});
