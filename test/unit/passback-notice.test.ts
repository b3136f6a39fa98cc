import { expect } from 'chai';
import type { PassbackView } from '../../src/passback/outbox.js';
import { passbackNotice, platformNotice } from '../../src/passback/notice.js';

const RECEIVED = Date.parse('2026-12-01T10:00:00Z');
function view(over: Partial<PassbackView>): PassbackView {
  return {
    id: 1,
    submissionId: 's1',
    resultId: 1,
    owner: 'ada',
    course: '8x',
    assignment: 'lab01',
    score: 0.5,
    gradedAt: RECEIVED + 1000,
    receivedAt: RECEIVED,
    attempts: 0,
    status: 'pending',
    nextAttemptAt: RECEIVED,
    lastError: null,
    sentAt: null,
    createdAt: RECEIVED,
    ...over,
  };
}

describe('passbackNotice (an outbox row in words for course staff)', () => {
  it('a sent score says when, and what edX does with a 0 and with a late one', () => {
    const sent = passbackNotice(view({ status: 'sent', sentAt: Date.parse('2026-12-01T10:00:05Z') }));
    expect(sent).to.deep.equal({ state: 'sent', sentences: ['Sent to the platform at 2026-12-01T10:00:05.000Z.'] });
    const zero = passbackNotice(view({ status: 'sent', score: 0, lastError: 'edX said: fine' }));
    expect(zero.sentences).to.deep.equal(['Sent to the platform.', 'edX said: fine', 'edX stores a score of 0 but does not show it in its gradebook (an edX bug): the grade there stays empty.']);
    const late = passbackNotice(view({ status: 'sent' }), { due: new Date(RECEIVED - 1) });
    expect(late.sentences[1]).to.match(/^Received after the due date/);
    expect(passbackNotice(view({ status: 'sent' }), { due: new Date(RECEIVED) }).sentences).to.have.length(1);
    expect(passbackNotice(view({ status: 'sent' }), undefined, RECEIVED - 1).sentences[1]).to.match(/^Received after the due date/);
  });

  it('pending is sending at first and retrying after a failed attempt', () => {
    expect(passbackNotice(view({ status: 'pending' }))).to.deep.equal({ state: 'sending', sentences: [] });
    expect(passbackNotice(view({ status: 'sending' }))).to.deep.equal({ state: 'sending', sentences: ['Being sent now.'] });
    const retrying = passbackNotice(view({ status: 'pending', attempts: 2, nextAttemptAt: Date.parse('2026-12-01T11:00:00Z'), lastError: 'edX answered 503' }));
    expect(retrying).to.deep.equal({ state: 'retrying', sentences: ['Attempt 2 failed; next attempt at 2026-12-01T11:00:00.000Z.', 'edX answered 503'] });
  });

  it('waiting, not sent and failed carry the reason, with a default when none is stored', () => {
    expect(passbackNotice(view({ status: 'waiting' })).sentences).to.deep.equal(['Waiting for the learner or the assignment to be known on the platform.']);
    expect(passbackNotice(view({ status: 'waiting', lastError: 'no launch yet' })).sentences).to.deep.equal(['no launch yet']);
    expect(passbackNotice(view({ status: 'superseded', lastError: 'newer' }))).to.deep.equal({ state: 'not sent', sentences: ['newer'] });
    expect(passbackNotice(view({ status: 'late' }))).to.deep.equal({ state: 'not sent', sentences: [] });
    expect(passbackNotice(view({ status: 'failed' }))).to.deep.equal({ state: 'failed', sentences: ['The platform refused it.'] });
    expect(passbackNotice(view({ status: 'failed', lastError: '403 forbidden' })).sentences).to.deep.equal(['403 forbidden']);
  });
});

describe('platformNotice (what edX will do with grades, from the line item)', () => {
  it('is certain about a weight of 0, unsure past the due date, silent otherwise', () => {
    expect(platformNotice({ scoreMaximum: 0, endAt: null }, RECEIVED)?.certain).to.equal(true);
    const past = platformNotice({ scoreMaximum: 1, endAt: RECEIVED - 1 }, RECEIVED);
    expect(past?.certain).to.equal(false);
    expect(past?.sentence).to.include(new Date(RECEIVED - 1).toISOString());
    expect(platformNotice({ scoreMaximum: 1, endAt: RECEIVED }, RECEIVED)).to.equal(null);
    expect(platformNotice({ scoreMaximum: 1, endAt: null }, RECEIVED)).to.equal(null);
  });
});
