import { expect } from 'chai';
import { scoreGiven, settle, worst, type PairOutcome, type SettlementPolicy } from '../../src/passback/outcome.js';

const policy: SettlementPolicy = { maxAttempts: 3, retryDelayMs: 1000, maxRetryDelayMs: 60_000, waitingRecheckMs: 600_000, random: () => 0.5 };
const delivered: PairOutcome = { kind: 'delivered', status: 200 };
const superseded: PairOutcome = { kind: 'superseded', status: 422, detail: 'a newer score is there' };
const retry: PairOutcome = { kind: 'retry', status: 503, detail: 'busy' };
const waiting: PairOutcome = { kind: 'waiting', detail: 'no launch yet' };
const failed: PairOutcome = { kind: 'failed', status: 400, detail: 'refused' };
const late: PairOutcome = { kind: 'late', detail: 'after the due date' };

describe('passback outcome: worst', () => {
  it('takes the most pressing pair: retry over waiting over failed over late over superseded over delivered', () => {
    expect(worst([delivered, superseded, late, failed, waiting, retry])).to.equal(retry);
    expect(worst([delivered, superseded, late, failed, waiting])).to.equal(waiting);
    expect(worst([delivered, late, failed])).to.equal(failed);
    expect(worst([delivered, late])).to.equal(late);
    expect(worst([delivered])).to.equal(delivered);
  });

  it('a 404 (gone) weighs like a retry, and the first of equals wins', () => {
    const gone: PairOutcome = { kind: 'gone', status: 404, detail: 'no line item' };
    expect(worst([gone, retry])).to.equal(gone);
    expect(worst([retry, gone])).to.equal(retry);
  });

  it('some pairs delivered and the rest superseded: delivered, noting why the others were not', () => {
    expect(worst([superseded, delivered])).to.deep.equal({ kind: 'delivered', status: 200, note: 'a newer score is there' });
    expect(worst([superseded])).to.equal(superseded);
  });

  it('refuses an empty list (a row always has a pair when it is sent)', () => {
    expect(() => worst([])).to.throw('worst of no outcomes');
  });
});

describe('passback outcome: settle', () => {
  it('maps final outcomes to their transition', () => {
    expect(settle(delivered, 0, 1000, policy)).to.deep.equal({ kind: 'sent', note: null });
    expect(settle({ kind: 'delivered', status: 200, note: 'already there' }, 0, 1000, policy)).to.deep.equal({ kind: 'sent', note: 'already there' });
    expect(settle(superseded, 0, 1000, policy)).to.deep.equal({ kind: 'superseded', reason: 'a newer score is there' });
    expect(settle(late, 0, 1000, policy)).to.deep.equal({ kind: 'late', reason: 'after the due date' });
    expect(settle(waiting, 2, 1000, policy)).to.deep.equal({ kind: 'waiting', reason: 'no launch yet', recheckAt: 601_000 });
  });

  it('a failure decided without asking the platform (status 0) is not an attempt', () => {
    expect(settle(failed, 0, 1000, policy)).to.deep.equal({ kind: 'failed', reason: 'refused', attempted: true });
    expect(settle({ kind: 'failed', status: 0, detail: 'not configured' }, 0, 1000, policy)).to.deep.equal({ kind: 'failed', reason: 'not configured', attempted: false });
  });

  it('retries with a growing back-off, honours Retry-After, and gives up at the last attempt', () => {
    expect(settle(retry, 0, 1000, policy)).to.deep.equal({ kind: 'retry', reason: 'busy', at: 2000, attempt: 1 });
    expect(settle(retry, 1, 1000, policy)).to.deep.equal({ kind: 'retry', reason: 'busy', at: 3000, attempt: 2 });
    expect(settle({ ...retry, retryAfterMs: 30_000 }, 0, 1000, policy)).to.deep.equal({ kind: 'retry', reason: 'busy', at: 31_000, attempt: 1 });
    expect(settle(retry, 2, 1000, policy)).to.deep.equal({ kind: 'failed', reason: 'Gave up after 3 attempts: busy', attempted: true });
    expect(settle({ kind: 'gone', status: 404, detail: 'gone' }, 2, 1000, policy)).to.deep.equal({ kind: 'failed', reason: 'Gave up after 3 attempts: gone', attempted: true });
  });
});

describe('passback outcome: scoreGiven', () => {
  it('scales the fraction to the points, to six places', () => {
    expect(scoreGiven(0.5, 3)).to.equal(1.5);
    expect(scoreGiven(1 / 3, 1)).to.equal(0.333333);
    expect(scoreGiven(0, 10)).to.equal(0);
  });
});
