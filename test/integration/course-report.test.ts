import { expect } from 'chai';
import type { Config } from '../../src/config/schema.js';
import type { Db } from '../../src/db/knex.js';
import { CourseReport } from '../../src/web/staff/report.js';
import { ENGINES, freshDb } from '../helpers/databases.js';

type Course = Config['courses'][number];

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 1, 9);
const course = {
  id: 'c',
  contexts: [],
  instructors: [],
  assignments: [
    { id: 'late1', points: 4, select: 'latest', late: 'accept', due: new Date(T0 + 2 * HOUR), tests: 't', files: [] },
    { id: 'best1', points: 2, select: 'best', late: 'accept', tests: 't', files: [] },
  ],
} as unknown as Course;

/** Seeds one submission; graded ones get a result with per-test rows and a passback. */
async function seed(db: Db, s: { id: string; owner: string; assignment: string; at: number; status: string; score?: number; tests?: boolean[]; passback?: string; course?: string }): Promise<void> {
  await db('submissions').insert({ id: s.id, owner: s.owner, course: s.course ?? 'c', assignment: s.assignment, received_at: s.at, sha256: s.id.padEnd(64, '0'), status: s.status, score: s.score ?? null, graded_at: s.score === undefined ? null : s.at + 1000 });
  await db('submission_notebooks').insert({ submission_id: s.id, notebook: '{}' });
  const [job] = await db('grading_jobs').insert({ submission_id: s.id, owner: s.owner, status: 'done', attempts: 1, max_attempts: 3, run_at: s.at, created_at: s.at, updated_at: s.at }).returning('id');
  if (s.score === undefined) return;
  const jobId = Number(typeof job === 'object' ? (job as { id: number }).id : job);
  const [result] = await db('results').insert({ submission_id: s.id, job_id: jobId, status: 'graded', score: s.score, points: s.score, max_points: 1, duration_ms: 10, created_at: s.at }).returning('id');
  const resultId = Number(typeof result === 'object' ? (result as { id: number }).id : result);
  await db('result_tests').insert((s.tests ?? []).map((passed, i) => ({ result_id: resultId, position: i, name: `q${i + 1}`, points: passed ? 1 : 0, max_points: 1, passed, hidden: i === 1 })));
  if (s.passback) await db('passbacks').insert({ submission_id: s.id, result_id: resultId, owner: s.owner, course: s.course ?? 'c', assignment: s.assignment, score: s.score, graded_at: s.at, status: s.passback, next_attempt_at: s.at, created_at: s.at });
}

for (const engine of ENGINES) {
  describe(`CourseReport: counts, chart data and the grades table from the database (${engine})`, () => {
    let db: Db;
    let drop: () => Promise<void>;
    let report: CourseReport;

    before(async () => {
      ({ db, drop } = await freshDb(engine));
      report = new CourseReport(db);
      await db('identities').insert([
        { issuer: 'i', sub: 's1', client_id: 'x', deployment_id: 'd', hub_user: 'u1', name: 'Zoe Zed', email: 'zoe@example.edu', roles: '[]', updated_at: 0 },
        { issuer: 'i', sub: 's2', client_id: 'x', deployment_id: 'd', hub_user: 'u2', name: 'Al Ant', email: 'al@example.edu', roles: '[]', updated_at: 0 },
      ]);
      // late1 (latest counts): u1 graded 0.5 then graded 1.0 after the due date; u2 graded 0.25 then a timeout; u3 queued
      await seed(db, { id: 'a1', owner: 'u1', assignment: 'late1', at: T0, status: 'graded', score: 0.5, tests: [true, false], passback: 'superseded' });
      await seed(db, { id: 'a2', owner: 'u1', assignment: 'late1', at: T0 + 3 * HOUR, status: 'graded', score: 1, tests: [true, true], passback: 'sent' });
      await seed(db, { id: 'a3', owner: 'u2', assignment: 'late1', at: T0 + HOUR, status: 'graded', score: 0.25, tests: [false, false], passback: 'failed' });
      await seed(db, { id: 'a4', owner: 'u2', assignment: 'late1', at: T0 + HOUR + 60_000, status: 'timeout' });
      await seed(db, { id: 'a5', owner: 'u3', assignment: 'late1', at: T0 + HOUR + 120_000, status: 'queued' });
      // best1 (best counts): u1 0.9 then 0.4
      await seed(db, { id: 'b1', owner: 'u1', assignment: 'best1', at: T0, status: 'graded', score: 0.9, tests: [true], passback: 'sent' });
      await seed(db, { id: 'b2', owner: 'u1', assignment: 'best1', at: T0 + HOUR, status: 'graded', score: 0.4, tests: [false] });
      // another course's submission never shows
      await seed(db, { id: 'x1', owner: 'u1', assignment: 'late1', at: T0, status: 'graded', score: 0, tests: [false, false], course: 'other' });
    });
    after(() => drop?.());

    it('counts submissions by outcome and passbacks by state, per assignment', async () => {
      const counts = await report.counts(course);
      expect(counts.find((c) => c.assignment === 'late1')).to.deep.equal({
        assignment: 'late1', submitted: 5, learners: 3, graded: 3, failed: 1, waiting: 1,
        passback: { sent: 1, waiting: 0, refused: 1, late: 0, superseded: 1 },
      });
      expect(counts.find((c) => c.assignment === 'best1')).to.include({ submitted: 2, learners: 1, graded: 2 });
    });

    it('bins the counting scores, rates each test over counting results, and counts arrivals per hour', async () => {
      // counting: u1 a2 (1.0), u2 a3 (0.25: the timeout does not hide it), u3 none graded
      expect(await report.scoreBins(course, 'late1')).to.deep.equal([0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
      expect(await report.scoreBins(course, 'best1')).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
      expect(await report.testPassRates(course, 'late1')).to.deep.equal([
        { name: 'q1', passed: 1, total: 2 },
        { name: 'q2', passed: 1, total: 2 },
      ]);
      const arrivals = await report.arrivals(course, 'late1');
      expect(arrivals.bucket).to.equal(HOUR);
      const h = T0 / HOUR;
      expect(arrivals.counts.sort((a, b) => a.bucket - b.bucket)).to.deep.equal([
        { bucket: h, n: 1 },
        { bucket: h + 1, n: 3 },
        { bucket: h + 3, n: 1 },
      ]);
    });

    it('pages, sorts and filters the grades table in the database, with names and emails', async () => {
      const all = await report.grades(course, {}, 'learner', false, 10, 0);
      expect(all.total).to.equal(4);
      expect(all.rows.map((r) => [r.name ?? r.owner, r.assignment, r.submission])).to.deep.equal([
        ['Al Ant', 'late1', 'a3'],
        ['u3', 'late1', 'a5'],
        ['Zoe Zed', 'best1', 'b1'],
        ['Zoe Zed', 'late1', 'a2'],
      ]);
      expect(all.rows[0]).to.include({ email: 'al@example.edu', passback: 'failed', late: false });
      expect(all.rows[3]).to.include({ late: true, passback: 'sent', score: 1 });
      const second = await report.grades(course, {}, 'learner', false, 2, 2);
      expect(second.total).to.equal(4);
      expect(second.rows.map((r) => r.submission)).to.deep.equal(['b1', 'a2']);
      const byScore = await report.grades(course, {}, 'score', true, 10, 0);
      expect(byScore.rows.map((r) => r.submission)).to.deep.equal(['a2', 'b1', 'a3', 'a5']);
      expect((await report.grades(course, { late: true }, 'learner', false, 10, 0)).rows.map((r) => r.submission)).to.deep.equal(['a2']);
      expect((await report.grades(course, { status: 'waiting' }, 'learner', false, 10, 0)).rows.map((r) => r.submission)).to.deep.equal(['a5']);
      expect((await report.grades(course, { passback: 'refused' }, 'learner', false, 10, 0)).rows.map((r) => r.submission)).to.deep.equal(['a3']);
      expect((await report.grades(course, { passback: 'none' }, 'learner', false, 10, 0)).rows.map((r) => r.submission)).to.deep.equal(['a5']);
      expect((await report.grades(course, { learner: 'ZOE@', assignment: 'best1' }, 'learner', false, 10, 0)).rows.map((r) => r.submission)).to.deep.equal(['b1']);
      expect((await report.grades(course, { learner: '%' }, 'learner', false, 10, 0)).total).to.equal(0);
    });
  });
}
