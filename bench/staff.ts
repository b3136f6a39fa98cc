/**
 * The staff overview at course size, against the old course page's way (every row read).
 *
 *   npm run bench:staff -- [--learners 5000] [--runs 5]
 *
 * Set-up (not timed): a fresh SQLite database with one course and one assignment; per learner an
 * identity, two graded submissions (results with three tests each) and a sent passback.
 * Timed, `--runs` times each, median reported:
 * - overview: what /app/staff asks the database (counts, score bins, per-test pass rates,
 *   arrivals, one page of 50 grade rows and their count);
 * - baseline: gradeRows (src/gradebook/export.ts), which reads every submission of the course,
 *   as the older /app/course page and the CSV do.
 * Reported: ms per run for each (and for the grades page alone), and rows on the page. The exit code is 0 when the bench ran, 1 on an error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../src/config/schema.js';
import { createDb, migrate } from '../src/db/knex.js';
import { gradeRows } from '../src/gradebook/export.js';
import { SubmissionStore } from '../src/submissions/store.js';
import { CourseReport } from '../src/web/staff/report.js';

const { values } = parseArgs({ options: { learners: { type: 'string', default: '5000' }, runs: { type: 'string', default: '5' } } });
const LEARNERS = Number(values.learners);
const RUNS = Number(values.runs);
if (!(LEARNERS > 0) || !(RUNS > 0)) throw new Error('--learners and --runs must be positive numbers');

const course = { id: 'c', contexts: [], instructors: [], assignments: [{ id: 'lab', points: 3, select: 'latest', late: 'accept', due: new Date(Date.UTC(2026, 11, 10)), tests: 't', files: [] }] } as unknown as Config['courses'][number];
const config = { courses: [course] } as unknown as Pick<Config, 'courses'>;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-bench-staff-'));
  const db = createDb({ database: { client: 'sqlite', filename: path.join(dir, 'gofer.sqlite'), pool: 1 }, dataDir: dir });
  try {
    await migrate(db);
    const t0 = Date.UTC(2026, 11, 1);
    const subs = [];
    const jobs = [];
    const results = [];
    const tests = [];
    const passbacks = [];
    const ids = [];
    let n = 0;
    for (let l = 0; l < LEARNERS; l++) {
      ids.push({ issuer: 'i', sub: `s${l}`, client_id: 'x', deployment_id: 'd', hub_user: `u${l}`, name: `Learner ${l}`, email: `u${l}@example.edu`, roles: '[]', updated_at: 0 });
      for (let k = 0; k < 2; k++) {
        n++;
        const id = `sub-${String(n).padStart(8, '0')}`;
        const at = t0 + ((l * 7919 + k * 3_600_000) % (9 * 86_400_000));
        const score = ((l + k) % 11) / 10;
        subs.push({ id, owner: `u${l}`, course: 'c', assignment: 'lab', received_at: at, sha256: id.padEnd(64, '0'), status: 'graded', score, points: score, max_points: 1, graded_at: at + 1000 });
        jobs.push({ id: n, submission_id: id, owner: `u${l}`, status: 'done', attempts: 1, max_attempts: 3, run_at: at, created_at: at, updated_at: at });
        results.push({ id: n, submission_id: id, job_id: n, status: 'graded', score, points: score, max_points: 1, duration_ms: 10, created_at: at });
        for (let t = 0; t < 3; t++) tests.push({ result_id: n, position: t, name: `q${t + 1}`, points: 1, max_points: 1, passed: (l + t) % 3 !== 0, hidden: t === 2 });
        passbacks.push({ submission_id: id, result_id: n, owner: `u${l}`, course: 'c', assignment: 'lab', score, graded_at: at, status: k === 1 ? 'sent' : 'superseded', next_attempt_at: at, created_at: at });
      }
    }
    for (const [table, rows] of [['identities', ids], ['submissions', subs], ['submission_notebooks', subs.map((s) => ({ submission_id: s.id, notebook: '{}' }))], ['grading_jobs', jobs], ['results', results], ['result_tests', tests], ['passbacks', passbacks]] as const) {
      await db.batchInsert(table, rows as unknown as Record<string, unknown>[], 200);
    }
    const report = new CourseReport(db);
    const store = new SubmissionStore(db);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const time = async (f: () => Promise<unknown>): Promise<number> => {
      const start = process.hrtime.bigint();
      await f();
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    let pageRows = 0;
    const overview: number[] = [];
    const baseline: number[] = [];
    const gradesOnly: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      overview.push(
        await time(async () => {
          await report.counts(course);
          await report.scoreBins(course, 'lab');
          await report.testPassRates(course, 'lab');
          await report.arrivals(course, 'lab');
          pageRows = (await report.grades(course, {}, 'learner', false, 50, 0)).rows.length;
        }),
      );
      gradesOnly.push(await time(() => report.grades(course, {}, 'learner', false, 50, 0)));
      baseline.push(await time(() => gradeRows(store, config, { course: 'c' })));
    }
    console.log(`staff overview, ${LEARNERS} learners × 2 submissions (SQLite), median of ${RUNS}:`);
    console.log(`  overview (database-side, one page of ${pageRows} rows): ${median(overview).toFixed(1)} ms`);
    console.log(`  of which the grades page and its count:             ${median(gradesOnly).toFixed(1)} ms`);
    console.log(`  baseline (gradeRows, every row read):                ${median(baseline).toFixed(1)} ms`);
  } finally {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
