import { expect } from 'chai';
import { classifyFailure, retryAfterMs } from '../../src/passback/ags-client.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

describe('retryAfterMs (a Retry-After header)', () => {
  it('reads seconds, fractions of them and HTTP dates', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '120' }), NOW)).to.equal(120_000);
    expect(retryAfterMs(new Headers({ 'retry-after': ' 1.5 ' }), NOW)).to.equal(1500);
    expect(retryAfterMs(new Headers({ 'retry-after': 'Tue, 01 Dec 2026 12:00:30 GMT' }), NOW)).to.equal(30_000);
  });

  it('gives 0 for a date already past, and nothing for no header or an unreadable one', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': 'Tue, 01 Dec 2026 11:00:00 GMT' }), NOW)).to.equal(0);
    expect(retryAfterMs(new Headers(), NOW)).to.equal(undefined);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }), NOW)).to.equal(undefined);
  });
});

describe("classifyFailure (a platform answer that is not the line item's verdict)", () => {
  it('retries timeouts, throttling and server trouble, with the wait the platform asks for', () => {
    expect(classifyFailure(429, new Headers({ 'retry-after': '7' }), 'slow down', NOW)).to.deep.equal({ kind: 'retry', status: 429, detail: 'slow down', retryAfterMs: 7000 });
    expect(classifyFailure(408, new Headers(), 'timeout', NOW)).to.deep.equal({ kind: 'retry', status: 408, detail: 'timeout' });
    expect(classifyFailure(500, new Headers(), 'oops', NOW)).to.deep.equal({ kind: 'retry', status: 500, detail: 'oops' });
    expect(classifyFailure(503, new Headers({ 'retry-after': 'Tue, 01 Dec 2026 12:01:00 GMT' }), 'down', NOW)).to.deep.include({ kind: 'retry', retryAfterMs: 60_000 });
  });

  it('takes other refusals as final', () => {
    for (const status of [400, 401, 403, 409, 422]) {
      expect(classifyFailure(status, new Headers({ 'retry-after': '7' }), 'no', NOW)).to.deep.equal({ kind: 'failed', status, detail: 'no' });
    }
  });
});
