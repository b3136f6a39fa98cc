import { expect } from 'chai';
import type { Db } from '../../src/db/knex.js';
import type { GradingResult } from '../../src/grading/result.js';
import { PassbackOutbox } from '../../src/passback/outbox.js';
import type { AssignmentPolicy } from '../../src/passback/policy.js';
import { JobQueue } from '../../src/submissions/job-queue.js';
import { SubmissionStore } from '../../src/submissions/store.js';
import { StaffActions } from '../../src/web/staff/actions-store.js';
import { ENGINES, freshDb } from '../helpers/databases.js';

const T0 = Date.UTC(2026, 11, 1, 9);
const POLICY: AssignmentPolicy = { points: 3, select: 'best', late: 'accept', label: 'lab01' };
const graded = (score: number): GradingResult => ({ status: 'graded', score, points: score, maxPoints: 1, durationMs: 5, tests: [{ name: 'q1', points: score, maxPoints: 1, passed: score === 1, hidden: false }] });
const staff = { actorSub: 'sub-prof', actorName: 'Grace Hopper' };

/**
 * A grade staff set stands until staff clear it, against the real stores (SQLite and PostgreSQL):
 * a regrade's result is kept but neither becomes the submission's grade nor is queued for the
 * platform; clearing sends the grade that counts, even under `best` below the excuse sent before.
 */
for (const engine of ENGINES) {
  describe(`Grades set by staff stand through regrades until cleared (${engine})`, () => {
    let db: Db;
    let drop: () => Promise<void>;
    let submissions: SubmissionStore;
    let outbox: PassbackOutbox;
    let queue: JobQueue;
    let actions: StaffActions;
    let now = T0;

    before(async () => {
      ({ db, drop } = await freshDb(engine));
      submissions = new SubmissionStore(db);
      outbox = new PassbackOutbox(db);
      queue = new JobQueue(db, { retryDelayMs: 1000, maxRunningPerLearner: 10, passback: { outbox, policy: () => POLICY } });
      actions = new StaffActions(db);
    });
    after(() => drop?.());

    const submit = async (id: string, owner: string) => {
      now += 1000;
      await submissions.create({ id, owner, course: 'c', assignment: 'lab01', section: null, notebook: '{}', sha256: id.padEnd(64, '0') }, { now, duplicateWindowMs: 0, perMinute: 100, maxAttempts: 1 });
    };
    /** Takes the submission's waiting job and ends it with `result` (a grade), or fails it for good (null). */
    const grade = async (id: string, result: GradingResult | null) => {
      now += 1000;
      const job = await queue.claim('w', now, 60_000);
      expect(job?.submissionId).to.equal(id);
      if (result) expect(await queue.complete(job!.id, 'w', id, result, now)).to.equal(true);
      else await queue.failForStaff(job!, 'w', 'tests broken', now);
    };
    const rows = (id: string) => db('passbacks').where({ submission_id: id }).orderBy('id').select('score', 'status', 'result_id');

    it('a regrade under an excuse is kept as a result but changes neither the grade nor what is sent; clearing sends the grade that counts', async () => {
      await submit('s1', 'u1');
      await grade('s1', graded(0.5));
      now += 1000;
      await actions.setGrade({ submissionId: 's1', kind: 'excuse', score: 1, reason: 'medical leave', ...staff, now }, outbox);
      expect((await rows('s1')).map((r) => Number(r.score))).to.deep.equal([0.5, 1]);

      // regraded: 0.2 is recorded, the excuse stays the grade, nothing new is queued
      now += 1000;
      expect(await submissions.regrade('s1', now, 1)).to.equal(true);
      expect((await submissions.get('s1'))!.status, 'the grade stays while it is regraded').to.equal('graded');
      await grade('s1', graded(0.2));
      expect(await submissions.get('s1')).to.include({ status: 'graded', score: 1 });
      expect(Number((await db('results').where({ submission_id: 's1' }).orderBy('id', 'desc').first()).score)).to.equal(0.2);
      expect(await rows('s1')).to.have.length(2);

      // a regrade that fails does not mark an excused submission failed either
      now += 1000;
      await submissions.regrade('s1', now, 1);
      await grade('s1', null);
      expect(await submissions.get('s1')).to.include({ status: 'graded', score: 1 });

      // cleared: the grader's 0.2 is the grade again and is queued, though `best` has sent 1 before
      now += 1000;
      const cleared = await actions.clearOverride({ submissionId: 's1', reason: 'entered for the wrong learner', ...staff, now, maxAttempts: 1 }, POLICY, outbox);
      expect(cleared).to.include({ counting: 's1' });
      expect(cleared!.passback).to.include({ kind: 'enqueued', status: 'pending' });
      expect(await submissions.get('s1')).to.include({ status: 'graded', score: 0.2 });
      const last = (await rows('s1')).at(-1)!;
      expect(Number(last.score)).to.equal(0.2);
      expect(Number(last.result_id)).to.equal(Number((await db('results').where({ submission_id: 's1', score: 0.2 }).first()).id));
      expect(await db('staff_actions').where({ kind: 'clear_override' }).select('actor_name', 'reason', 'submission_id')).to.deep.equal([{ actor_name: 'Grace Hopper', reason: 'entered for the wrong learner', submission_id: 's1' }]);
      // nothing stands any more: a second clear does nothing, and the next regrade counts again
      expect(await actions.clearOverride({ submissionId: 's1', reason: 'again', ...staff, now, maxAttempts: 1 }, POLICY, outbox)).to.equal(undefined);
      await submissions.regrade('s1', now, 1);
      await grade('s1', graded(0.7));
      expect(await submissions.get('s1')).to.include({ score: 0.7 });
    });

    it('a second grade set by hand replaces the first; clearing it leaves none standing', async () => {
      await submit('s2', 'u2');
      await grade('s2', graded(0.4));
      for (const [score, reason] of [[0.5, 'first'], [0.9, 'second']] as const) {
        now += 1000;
        await actions.setGrade({ submissionId: 's2', kind: 'override', score, reason, ...staff, now }, outbox);
      }
      const standing = [...(await actions.overrides(['s2'])).values()].filter((o) => o.clearedAt === null);
      expect(standing.map((o) => o.reason)).to.deep.equal(['second']);
      expect(await submissions.get('s2')).to.include({ score: 0.9 });
      now += 1000;
      await actions.clearOverride({ submissionId: 's2', reason: 'appeal withdrawn', ...staff, now, maxAttempts: 1 }, POLICY, outbox);
      expect([...(await actions.overrides(['s2'])).values()].filter((o) => o.clearedAt === null)).to.deep.equal([]);
      expect(await submissions.get('s2')).to.include({ score: 0.4 });
      // the grader's result was queued once already: that row is sent again, stamped now (the platform keeps the newest)
      const again = await db('passbacks').where({ submission_id: 's2', score: 0.4 }).select('status', 'graded_at', 'attempts');
      expect(again.map((r) => ({ ...r, graded_at: Number(r.graded_at) }))).to.deep.equal([{ status: 'pending', graded_at: now, attempts: 0 }]);
    });

    it("a learner's new submission is new work: graded as usual, and its grade counts under the assignment's rules, the excuse among the grades", async () => {
      await submit('s4', 'u4');
      await grade('s4', graded(0.5));
      now += 1000;
      await actions.setGrade({ submissionId: 's4', kind: 'excuse', score: 1, reason: 'illness', ...staff, now }, outbox);
      await submit('s5', 'u4');
      await grade('s5', graded(0.8));
      expect(await submissions.get('s5')).to.include({ status: 'graded', score: 0.8 });
      expect(await submissions.get('s4')).to.include({ score: 1 });
      // select: best, and the excuse (full points) is the best sent: 0.8 is not sent over it
      expect(await rows('s5')).to.deep.equal([]);
    });

    it('clearing the excuse of a submission no grader graded grades it again, and sends nothing while none counts', async () => {
      await submit('s3', 'u3');
      await grade('s3', null);
      expect((await submissions.get('s3'))!.status).to.equal('failed');
      now += 1000;
      await actions.setGrade({ submissionId: 's3', kind: 'excuse', score: 1, reason: 'tests were broken', ...staff, now }, outbox);
      const before = (await rows('s3')).length;
      now += 1000;
      const cleared = await actions.clearOverride({ submissionId: 's3', reason: 'tests fixed', ...staff, now, maxAttempts: 1 }, POLICY, outbox);
      expect(cleared).to.include({ counting: null, passback: null });
      expect((await submissions.get('s3'))!.status).to.equal('queued');
      expect(await rows('s3')).to.have.length(before);
      await grade('s3', graded(1));
      expect(await submissions.get('s3')).to.include({ status: 'graded', score: 1 });
    });
  });
}
