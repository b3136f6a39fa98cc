import { expect } from 'chai';
import { findResult } from '../../src/grading/container-runner.js';
import { summarise } from '../../src/grading/result.js';
import { InfrastructureError } from '../../src/lib/errors.js';

const nonce = 'a'.repeat(32);
const good = { status: 'graded', message: null, tests: [{ name: 'q1', points: 1, maxPoints: 1, passed: true, hidden: false }], error: null };

describe('findResult', () => {
  it('takes only the line carrying the job nonce', () => {
    const forged = `GOFER-RESULT ${'b'.repeat(32)} ${JSON.stringify({ ...good, tests: [{ ...good.tests[0], points: 100, maxPoints: 100 }] })}`;
    const out = findResult(`${forged}\nnoise\nGOFER-RESULT ${nonce} ${JSON.stringify(good)}\n`, nonce);
    expect(out?.tests[0]?.points).to.equal(1);
  });

  it('finds nothing when no line carries the nonce', () => {
    expect(findResult(`GOFER-RESULT ${'c'.repeat(32)} ${JSON.stringify(good)}\n`, nonce)).to.equal(undefined);
  });

  it('treats an invalid result as an infrastructure failure, not a score', () => {
    const bad = { ...good, status: 'perfect' };
    expect(() => findResult(`GOFER-RESULT ${nonce} ${JSON.stringify(bad)}\n`, nonce)).to.throw(InfrastructureError, /invalid result/);
    expect(() => findResult(`GOFER-RESULT ${nonce} {not json\n`, nonce)).to.throw(InfrastructureError, /not JSON/);
  });
});

describe('the harness timing', () => {
  it('carries the container CPU as a whole number of ms, never negative', () => {
    const timed = { ...good, timing: { kernelStartMs: 400, notebookMs: 20, testsMs: 5, cpuMs: 1234 } };
    expect(findResult(`GOFER-RESULT ${nonce} ${JSON.stringify(timed)}\n`, nonce)?.timing?.cpuMs).to.equal(1234);
    for (const cpuMs of [-1, 1.5, 'fast']) {
      const bad = { ...good, timing: { cpuMs } };
      expect(() => findResult(`GOFER-RESULT ${nonce} ${JSON.stringify(bad)}\n`, nonce), String(cpuMs)).to.throw(InfrastructureError, /invalid result/);
    }
  });
});

describe('summarise', () => {
  it('scores graded results as points over max points', () => {
    const r = summarise('graded', [
      { name: 'a', points: 1, maxPoints: 1, passed: true, hidden: false },
      { name: 'b', points: 0.5, maxPoints: 2, passed: false, hidden: true },
    ], 10);
    expect(r).to.include({ score: 0.5, points: 1.5, maxPoints: 3 });
  });

  it('never scores a result that is not graded', () => {
    expect(summarise('timeout', [], 10, 'too slow')).to.include({ score: 0, points: 0, maxPoints: 0, message: 'too slow' });
  });
});
