import { expect } from 'chai';
import type { TestResult } from '../../src/grading/result.js';
import type { Submission } from '../../src/submissions/store.js';
import { HIDDEN_TESTS, learnerView, type AssignmentFacts, type PassbackState } from '../../src/web/learner-view.js';

const T0 = Date.parse('2026-12-01T10:00:00Z');

function sub(id: string, over: Partial<Submission> = {}): Submission {
  return {
    id,
    owner: 'ada',
    course: '8x',
    assignment: 'lab01',
    section: null,
    receivedAt: T0,
    sha256: id.repeat(64).slice(0, 64),
    status: 'graded',
    score: 1,
    points: 3,
    maxPoints: 3,
    message: null,
    gradedAt: T0 + 5000,
    ...over,
  };
}

const facts = (over: Partial<AssignmentFacts> = {}) => (): AssignmentFacts => ({ points: 3, select: 'best', limitSeconds: 60, due: undefined, late: 'accept', ...over });
const tests: TestResult[] = [
  { name: 'q1', points: 1, maxPoints: 1, passed: true, hidden: false },
  { name: 'q2', points: 0, maxPoints: 2, passed: false, hidden: false, message: '<script>alert(1)</script>' },
  { name: 'q3', points: 1, maxPoints: 1, passed: true, hidden: true, message: 'hidden detail' },
];
const states = (entries: Array<[string, string]>) => new Map<string, PassbackState>(entries.map(([id, status]) => [id, { status, detail: null }]));

describe('the learner view', () => {
  it('writes grades on the assignment scale, each test with its weight, hidden ones withheld, learner text escaped', () => {
    const v = learnerView([{ sub: sub('a', { score: 0.5 }), tests, startedAt: undefined }], facts(), null, { now: T0, showAssignment: false });
    const s = v.submissions[0]!;
    expect(s.grade).to.deep.equal({ given: 1.5, maximum: 3, text: '1.5 / 3 points (50%)' });
    expect(s.html).to.include('Each test&#39;s weight is shown, out of 4 test points.');
    expect(s.html).to.include('weight 2/4').and.include(`<li class="hidden-tests">${HIDDEN_TESTS}</li>`);
    // nothing of the hidden test but that the score includes hidden tests: not its name, result or output
    expect(s.html).not.to.include('hidden detail').and.not.include('q3');
    expect(s.html.match(/<li class="(passed|failed)">/g)).to.have.length(2);
    expect(s.html).to.include('&lt;script&gt;alert(1)&lt;/script&gt;').and.not.include('<script>');
    expect(v.announce).to.equal('Submission 1: 1.5 / 3 points (50%).');
  });

  it('says when tests count equally', () => {
    const equal = tests.map((t) => ({ ...t, maxPoints: 1 }));
    const v = learnerView([{ sub: sub('a'), tests: equal, startedAt: undefined }], facts(), null, { now: T0, showAssignment: false });
    expect(v.submissions[0]!.html).to.include('The tests count equally.');
  });

  it('shows grading with its elapsed time and limit, and is not done', () => {
    const v = learnerView([{ sub: sub('a', { status: 'grading', score: null, gradedAt: null }), tests: [], startedAt: T0 + 1000 }], facts(), null, { now: T0 + 13_000, showAssignment: false });
    expect(v.done).to.equal(false);
    expect(v.submissions[0]!.step).to.equal('grading');
    expect(v.submissions[0]!.html).to.include('(0:12 elapsed, limit 1:00)');
    expect(v.announce).to.equal('Submission 1: grading (time limit 1:00).');
  });

  it('says why a grade is not sent to edX, and what the gradebook will show, as edX computes it', () => {
    const inputs = [
      { sub: sub('a', { receivedAt: T0, score: 1 }), tests: [], startedAt: undefined },
      { sub: sub('b', { receivedAt: T0 + 1, score: 0.5 }), tests: [], startedAt: undefined },
    ];
    // the component's weight in edX is 6: edX shows 1 × 6
    const v = learnerView(inputs, facts(), { weight: 6, endAt: null, states: states([['a', 'sent']]) }, { now: T0, showAssignment: false });
    expect(v.submissions.map((s) => s.edx)).to.deep.equal(['not sent to edX: your best so far is 3 / 3 points (100%)', 'sent to edX']);
    expect(v.edxTotal).to.equal("edX's gradebook will show 6 / 6 points (100%): submission 1 counts (your best graded).");
    const zero = learnerView([{ sub: sub('z', { score: 0 }), tests: [], startedAt: undefined }], facts({ select: 'latest' }), { weight: 3, endAt: T0 - 1, states: states([['z', 'sent']]) }, {
      now: T0,
      showAssignment: false,
    });
    expect(zero.submissions[0]!.edx).to.equal('sent to edX; edX does not record 0, so its gradebook shows nothing for it; past due: edX records it only if the component accepts grades past due');
    expect(zero.edxTotal).to.equal("edX's gradebook shows nothing for this assignment: submission 1 scored 0, and edX does not record 0.");
    const late = learnerView([{ sub: sub('l'), tests: [], startedAt: undefined }], facts({ late: 'reject' }), { weight: 3, endAt: null, states: states([['l', 'late']]) }, { now: T0, showAssignment: false });
    expect(late.submissions[0]!.edx).to.equal('not sent to edX: past due (received after the deadline, and late work is not accepted)');
    expect(late.edxTotal).to.equal('edX has no grade from Gofer for this assignment yet.');
  });
});
