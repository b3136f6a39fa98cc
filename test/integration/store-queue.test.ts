import { expect } from 'chai';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb, type Db } from '../../src/db/knex.js';
import { migrationSource } from '../../src/db/migrations.js';
import { gradeRows, gradesCsv, legacyCsv, peopleOf } from '../../src/gradebook/export.js';
import { FAILED_MESSAGE, JobQueue } from '../../src/submissions/job-queue.js';
import { ResultStore } from '../../src/grading/result-store.js';
import type { GradingResult } from '../../src/grading/result.js';
import { SubmissionStore, type NewSubmission } from '../../src/submissions/store.js';
import { ENGINES, freshDb } from '../helpers/databases.js';
import { capturingLogger } from '../helpers/logs.js';

const T0 = 1_780_000_000_000;
const FAIR_QUEUE_MIGRATION = '20261127_004_fair_queue';
const ONE_OWNER_MIGRATION = '20261204_008_one_owner';
const opts = { now: T0, duplicateWindowMs: 120_000, perMinute: 5, maxAttempts: 3 };
let seq = 0;
function sub(owner = 'ada', sha = 'a'.repeat(64), assignment = 'lab01'): NewSubmission {
  return { id: `sub-${++seq}-${Math.random().toString(36).slice(2, 8)}`, owner, course: '8x', assignment, section: '1', notebook: '{"nbformat":4}', sha256: sha };
}
function graded(score: number): GradingResult {
  return {
    status: 'graded',
    score,
    points: score * 2,
    maxPoints: 2,
    durationMs: 1234,
    tests: [
      { name: 'q1', points: score, maxPoints: 1, passed: score === 1, hidden: false, ...(score === 1 ? {} : { message: 'Expected 9' }) },
      { name: 'q2', points: score, maxPoints: 1, passed: score === 1, hidden: true },
    ],
  };
}

for (const engine of ENGINES) {
  describe(`submissions and the grading queue (${engine})`, function () {
    this.timeout(30_000);
    let db: Db;
    let filename: string | undefined;
    let url: string | undefined;
    let drop: () => Promise<void>;
    let store: SubmissionStore;
    let queue: JobQueue;

    beforeEach(async () => {
      ({ db, drop, filename, url } = await freshDb(engine));
      store = new SubmissionStore(db);
      queue = new JobQueue(db, { retryDelayMs: 1000, maxRunningPerLearner: 1 });
    });
    afterEach(async () => drop?.());

    it('stores a submission and its grading job together', async () => {
      const out = await store.create(sub(), opts);
      expect(out.kind).to.equal('created');
      const s = await store.get((out as { id: string }).id);
      expect(s).to.include({ owner: 'ada', course: '8x', assignment: 'lab01', status: 'queued', receivedAt: T0 });
      expect(await queue.counts()).to.deep.equal({ queued: 1 });
    });

    it('treats the identical notebook sent again within the window as the same submission, even concurrently', async () => {
      const outs = await Promise.all(Array.from({ length: 5 }, () => store.create(sub(), opts)));
      expect(outs.filter((o) => o.kind === 'created')).to.have.length(1);
      expect(new Set(outs.map((o) => (o as { id: string }).id)).size).to.equal(1);
      const later = await store.create(sub(), { ...opts, now: T0 + 121_000 });
      expect(later.kind).to.equal('created');
      const other = await store.create(sub('ada', 'b'.repeat(64)), opts);
      expect(other.kind).to.equal('created');
      expect((await store.list()).length).to.equal(3);
    });

    it('fails only the bad submission of a group committed together; the others are stored with their jobs', async () => {
      const first = sub('ada', '1'.repeat(64));
      await store.create(first, opts);
      // a group: the third reuses an id already stored, so the group's insert fails as a whole
      const group = [sub('bob', '2'.repeat(64)), sub('cy', '3'.repeat(64)), { ...sub('dee', '4'.repeat(64)), id: first.id }, sub('eve', '5'.repeat(64))];
      const outs = await Promise.allSettled(group.map((g) => store.create(g, opts)));
      expect(outs.map((o) => o.status)).to.deep.equal(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect((await store.list()).map((s) => s.owner).sort()).to.deep.equal(['ada', 'bob', 'cy', 'eve']);
      expect(await queue.counts()).to.deep.equal({ queued: 4 });
      expect(await store.notebook(group[3]!.id)).to.equal('{"nbformat":4}');
    });

    if (engine === 'sqlite') {
      it('waits its turn when another process writes the same SQLite file, instead of failing', async () => {
        const other = createDb({ database: { client: 'sqlite', filename: filename!, pool: 1 }, dataDir: path.dirname(filename!) });
        let writing = true;
        let otherWrites = 0;
        const writer = (async () => {
          while (writing) {
            await other('api_tokens').insert({ owner: 'cli', token_sha256: `${otherWrites}`.padStart(64, '0'), created_at: T0 });
            otherWrites++;
          }
        })();
        try {
          for (let round = 0; round < 10; round++) {
            const outs = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.create(sub(`u${i}`, `${round}-${i}`.padStart(64, 'f')), { ...opts, perMinute: 1000 })));
            expect(outs.map((o) => (o.status === 'fulfilled' ? o.value.kind : String(o.reason)))).to.deep.equal(Array(10).fill('created'));
          }
        } finally {
          writing = false;
          await writer;
          await other.destroy();
        }
        expect(otherWrites).to.be.above(0);
        expect((await store.list()).length).to.equal(100);
      });
    }

    it('limits submissions per learner per minute, with the seconds to wait', async () => {
      for (let i = 0; i < 5; i++) expect((await store.create(sub('bob', String(i).repeat(64)), { ...opts, now: T0 + i * 1000 })).kind).to.equal('created');
      const limited = await store.create(sub('bob', 'f'.repeat(64)), { ...opts, now: T0 + 10_000 });
      expect(limited).to.deep.equal({ kind: 'rate_limited', retryAfterSeconds: 50 });
      expect((await store.create(sub('carol', 'f'.repeat(64)), { ...opts, now: T0 + 10_000 })).kind).to.equal('created');
    });

    it('hands each job to exactly one of many concurrent claimers', async () => {
      for (let i = 0; i < 20; i++) await store.create(sub(`u${i}`, String(i % 10).repeat(64)), opts);
      const claimed: number[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (;;) {
            const job = await queue.claim(`w${w}`, T0, 60_000);
            if (!job) return;
            claimed.push(job.id);
          }
        }),
      );
      expect(claimed).to.have.length(20);
      expect(new Set(claimed).size).to.equal(20);
    });

    it('takes learners in turn: every waiting learner gets a job before anyone gets another', async () => {
      const fair = new JobQueue(db, { retryDelayMs: 1000, maxRunningPerLearner: 10 });
      for (const [i, owner] of ['ada', 'ada', 'ada', 'bob', 'cy'].entries()) {
        await store.create(sub(owner, String(i).repeat(64)), { ...opts, now: T0 + i });
      }
      const owners: string[] = [];
      for (let i = 0; i < 5; i++) {
        const job = (await fair.claim('w', T0 + 10 + i, 60_000))!;
        owners.push((await store.get(job.submissionId))!.owner);
      }
      expect(owners).to.deep.equal(['ada', 'bob', 'cy', 'ada', 'ada']);
    });

    it("holds a learner's next job while their cap of running jobs is reached, and not other learners' jobs", async () => {
      for (let i = 0; i < 3; i++) await store.create(sub('ada', String(i).repeat(64)), { ...opts, now: T0 + i });
      const first = (await queue.claim('w1', T0 + 10, 60_000))!;
      expect(await queue.claim('w2', T0 + 10, 60_000)).to.equal(undefined);
      const { id: bobs } = (await store.create(sub('bob', 'b'.repeat(64)), { ...opts, now: T0 + 11 })) as { id: string };
      const bobsJob = (await queue.claim('w2', T0 + 12, 60_000))!;
      expect(bobsJob.submissionId).to.equal(bobs);
      await queue.complete(bobsJob.id, 'w2', bobs, graded(1), T0 + 15);
      await queue.complete(first.id, 'w1', first.submissionId, graded(1), T0 + 20);
      const next = (await queue.claim('w1', T0 + 21, 60_000))!;
      expect((await store.get(next.submissionId))!.owner).to.equal('ada');
      expect(await queue.claim('w2', T0 + 22, 60_000)).to.equal(undefined);
      // a worker that died holds its learner's turn only until its lease runs out
      const again = (await queue.claim('w3', T0 + 21 + 60_001, 60_000))!;
      expect(again).to.include({ id: next.id, attempts: 2 });
    });

    it("never lets claimers in two processes together exceed a learner's cap", async () => {
      const other = engine === 'sqlite'
        ? createDb({ database: { client: 'sqlite', filename: filename!, pool: 1 }, dataDir: path.dirname(filename!) })
        : createDb({ database: { client: 'pg', url: url!, pool: 10 }, dataDir: tmpdir() });
      try {
        const learners = Array.from({ length: 12 }, (_, i) => `l${i}`);
        for (let n = 0; n < 4; n++) {
          for (const [i, owner] of learners.entries()) await store.create(sub(owner, `${n}${i}`.padStart(64, '0')), { ...opts, now: T0 + n });
        }
        const queues = [new JobQueue(db, { retryDelayMs: 1000, maxRunningPerLearner: 2 }), new JobQueue(other, { retryDelayMs: 1000, maxRunningPerLearner: 2 })];
        const claimed: number[] = [];
        await Promise.all(
          Array.from({ length: 12 }, async (_, w) => {
            for (;;) {
              const job = await queues[w % 2]!.claim(`w${w}`, T0 + 10, 60_000);
              if (!job) return;
              claimed.push(job.id);
            }
          }),
        );
        const running = (await db('grading_jobs').select('owner').count({ n: '*' }).where({ status: 'running' }).groupBy('owner')) as Array<{ owner: string; n: number | string }>;
        expect(Object.fromEntries(running.map((r) => [r.owner, Number(r.n)]))).to.deep.equal(Object.fromEntries(learners.map((l) => [l, 2])));
        expect(new Set(claimed).size).to.equal(claimed.length);
        expect(claimed).to.have.length(24);
      } finally {
        await other.destroy();
      }
    });

    it("gives the jobs already queued their learner when the fair queue's migration runs", async () => {
      // by name: later migrations (LTI launches, browser sessions) stay applied
      await db.migrate.down({ migrationSource, name: FAIR_QUEUE_MIGRATION });
      expect(await db.schema.hasColumn('grading_jobs', 'owner'), 'the fair queue migration undone').to.equal(false);
      await db('submissions').insert({ id: 's-old', owner: 'ada', course: '8x', assignment: 'lab01', section: null, received_at: T0, sha256: 'a'.repeat(64), status: 'queued' });
      await db('grading_jobs').insert({ submission_id: 's-old', status: 'queued', attempts: 0, max_attempts: 3, run_at: T0, created_at: T0, updated_at: T0 });
      await db.migrate.up({ migrationSource, name: FAIR_QUEUE_MIGRATION });
      expect(await db('grading_jobs').select('owner', 'claimed_at')).to.deep.equal([{ owner: 'ada', claimed_at: null }]);
    });

    it("gives existing jobs their assignment and passbacks their submission's arrival when the one-owner migration runs", async () => {
      await db.migrate.down({ migrationSource, name: ONE_OWNER_MIGRATION });
      expect(await db.schema.hasColumn('passbacks', 'received_at'), 'the migration undone').to.equal(false);
      await db('submissions').insert({ id: 's-old', owner: 'ada', course: '8x', assignment: 'lab01', section: null, received_at: T0, sha256: 'a'.repeat(64), status: 'graded' });
      const [job] = await db('grading_jobs').insert({ submission_id: 's-old', owner: 'ada', status: 'done', attempts: 1, max_attempts: 3, run_at: T0, created_at: T0, updated_at: T0 }).returning('id');
      const jobId = Number(typeof job === 'object' ? job.id : job);
      const [result] = await db('results').insert({ submission_id: 's-old', job_id: jobId, status: 'graded', score: 1, points: 2, max_points: 2, duration_ms: 5, created_at: T0 + 5 }).returning('id');
      const resultId = Number(typeof result === 'object' ? result.id : result);
      await db('passbacks').insert({ submission_id: 's-old', result_id: resultId, owner: 'ada', course: '8x', assignment: 'lab01', score: 1, graded_at: T0 + 5, status: 'pending', attempts: 0, next_attempt_at: T0 + 5, created_at: T0 + 5 });
      await db.migrate.up({ migrationSource, name: ONE_OWNER_MIGRATION });
      expect(await db('grading_jobs').select('course', 'assignment')).to.deep.equal([{ course: '8x', assignment: 'lab01' }]);
      expect((await db('passbacks').select('received_at')).map((r) => Number(r.received_at))).to.deep.equal([T0]);
    });

    it('a worker that lost its lease changes nothing: no retry, no failure, no release resets the submission', async () => {
      const { id } = (await store.create(sub(), opts)) as { id: string };
      const first = (await queue.claim('dead', T0, 60_000))!;
      const second = (await queue.claim('w2', T0 + 61_000, 60_000))!;
      expect(second.id).to.equal(first.id);
      expect(await queue.retryOrFail(first, 'dead', 'boom', T0 + 62_000)).to.equal('lost');
      expect(await queue.retryOrFail({ ...first, attempts: first.maxAttempts }, 'dead', 'boom', T0 + 62_000)).to.equal('lost');
      expect(await queue.engineFailed(first, 'dead', 'engine gone', T0 + 62_000)).to.equal('lost');
      await queue.release(first.id, 'dead', T0 + 62_000);
      expect(await store.get(id)).to.include({ status: 'grading' });
      expect(await db('grading_jobs').select('status', 'locked_by', 'attempts', 'last_error')).to.deep.equal([{ status: 'running', locked_by: 'w2', attempts: 2, last_error: null }]);
      expect(await queue.complete(second.id, 'w2', id, graded(1), T0 + 63_000)).to.equal(true);
      expect(await store.get(id)).to.include({ status: 'graded', score: 1 });
    });

    it("a released job is claimable at once and does not spend its learner's turn", async () => {
      await store.create(sub(), opts);
      await store.create(sub('bob', 'b'.repeat(64)), { ...opts, now: T0 + 1 });
      const job = (await queue.claim('w1', T0 + 10, 60_000))!;
      expect(job.submission.owner).to.equal('ada');
      await queue.release(job.id, 'w1', T0 + 20);
      expect(await db('grading_jobs').where({ id: job.id }).first()).to.include({ status: 'queued', locked_by: null, locked_until: null, claimed_at: null });
      const again = (await queue.claim('w2', T0 + 20, 60_000))!;
      expect(again.id, "ada's released job first: her turn was not spent").to.equal(job.id);
      expect(again.attempts).to.equal(1);
    });

    it('records the result with the job in one transaction, and the legacy grades view shows it', async () => {
      const { id } = (await store.create(sub(), opts)) as { id: string };
      const job = (await queue.claim('w1', T0, 60_000))!;
      expect(job.submissionId).to.equal(id);
      expect(await queue.complete(job.id, 'w1', id, graded(0.5), T0 + 5000)).to.equal(true);
      expect(await store.get(id)).to.include({ status: 'graded', score: 0.5, points: 1, maxPoints: 2, gradedAt: T0 + 5000 });
      expect(await store.tests(id)).to.deep.equal(graded(0.5).tests);
      const rows = await db('grades').select();
      expect(rows).to.deep.equal([{ userid: 'ada', grade: 0.5, section: '1', lab: 'lab01', timestamp: String(Math.floor((T0 + 5000) / 1000)) }]);
      expect(await queue.counts()).to.deep.equal({ done: 1 });
    });

    it("keeps the grading container's CPU with the result, and null when the harness had no figure", async () => {
      const timed = (await store.create(sub('ada'), opts)) as { id: string };
      const untimed = (await store.create(sub('bob', 'b'.repeat(64)), opts)) as { id: string };
      const first = (await queue.claim('w1', T0, 60_000))!;
      const second = (await queue.claim('w2', T0, 60_000))!;
      const byId = new Map([
        [timed.id, { ...graded(1), timing: { kernelStartMs: 300, cpuMs: 1480 } }],
        [untimed.id, graded(1)],
      ]);
      for (const [job, worker] of [[first, 'w1'], [second, 'w2']] as const) {
        expect(await queue.complete(job.id, worker, job.submissionId, byId.get(job.submissionId)!, T0 + 5000)).to.equal(true);
      }
      const rows = await db('results').select('submission_id', 'cpu_ms');
      expect(Object.fromEntries(rows.map((r: { submission_id: string; cpu_ms: number | null }) => [r.submission_id, r.cpu_ms]))).to.deep.equal({ [timed.id]: 1480, [untimed.id]: null });
    });

    it('gives a job whose worker died to another worker after the lease expires; the dead one cannot record', async () => {
      const { id } = (await store.create(sub(), opts)) as { id: string };
      const first = (await queue.claim('dead', T0, 60_000))!;
      expect(await queue.claim('w2', T0 + 59_000, 60_000)).to.equal(undefined);
      const second = (await queue.claim('w2', T0 + 61_000, 60_000))!;
      expect(second.id).to.equal(first.id);
      expect(second.attempts).to.equal(2);
      expect(await queue.renew(first.id, 'dead', T0 + 200_000)).to.equal(false);
      expect(await queue.complete(first.id, 'dead', id, graded(1), T0 + 62_000)).to.equal(false);
      expect(await queue.complete(second.id, 'w2', id, graded(0.5), T0 + 63_000)).to.equal(true);
      expect(await db('results').count({ n: '*' }).first()).to.satisfy((r: { n: number | string }) => Number(r.n) === 1);
    });

    it('retries infrastructure failures with growing back-off, then fails the submission without a score', async () => {
      const logs = capturingLogger();
      queue = new JobQueue(db, { retryDelayMs: 1000, log: logs.log });
      const { id } = (await store.create(sub(), opts)) as { id: string };
      let now = T0;
      const delays: number[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        const job = (await queue.claim('w1', now, 60_000))!;
        expect(job.attempts).to.equal(attempt);
        const outcome = await queue.retryOrFail(job, 'w1', 'The Docker engine does not answer', now);
        if (attempt < 3) {
          expect(outcome).to.equal('retry');
          const row = await db('grading_jobs').where({ id: job.id }).first();
          delays.push(Number(row.run_at) - now);
          expect(await queue.claim('w1', now, 60_000)).to.equal(undefined);
          now = Number(row.run_at);
        } else {
          expect(outcome).to.equal('failed');
        }
      }
      expect(delays[0]).to.be.within(750, 1250);
      expect(delays[1]).to.be.within(1500, 2500);
      const s = await store.get(id);
      expect(s).to.include({ status: 'failed', score: null, points: null });
      // the learner reads a fixed sentence; the reason is the staff's (the job row and the error log)
      expect(s!.message).to.equal(FAILED_MESSAGE);
      expect((await db('grading_jobs').first()).last_error).to.equal('The Docker engine does not answer');
      expect(logs.count('error', /grading failed for good/)).to.equal(1);
      expect(await db('grades').select()).to.deep.equal([]);
    });

    it('gives a job back at shutdown without counting the attempt', async () => {
      await store.create(sub(), opts);
      const job = (await queue.claim('w1', T0, 60_000))!;
      await queue.release(job.id, 'w1', T0 + 1000);
      const again = (await queue.claim('w2', T0 + 1000, 60_000))!;
      expect(again.id).to.equal(job.id);
      expect(again.attempts).to.equal(1);
    });

    it('gives a job back at once without an attempt when the engine failed under it, and bounds how often', async () => {
      const { id } = (await store.create(sub(), opts)) as { id: string };
      queue = new JobQueue(db, { retryDelayMs: 1000, maxEngineFailures: 2 });
      let now = T0;
      for (let i = 0; i < 2; i++) {
        const job = (await queue.claim('w1', now, 60_000))!;
        expect(job.attempts).to.equal(1);
        expect(await queue.engineFailed(job, 'w1', 'The Docker engine did not answer a ping', now)).to.equal('released');
        expect((await store.get(id))!.status).to.equal('queued');
        now += 10;
      }
      // a third engine failure under the same job: an ordinary failure (retry with back-off), not a third free pass
      const job = (await queue.claim('w2', now, 60_000))!;
      expect(job.attempts).to.equal(1);
      expect(await queue.engineFailed(job, 'w2', 'engine gone', now)).to.equal('retry');
      expect(await queue.claim('w3', now, 60_000)).to.equal(undefined);
    });

    it('a job given back after an engine failure keeps its place in line: claimed next, before learners who arrived after it', async () => {
      const { id } = (await store.create(sub('ada', 'a'.repeat(64)), opts)) as { id: string };
      const job = (await queue.claim('w1', T0, 60_000))!;
      // a burst arrives while ada's job is on the engine that dies
      for (const [i, who] of ['bob', 'cy', 'dee'].entries()) await store.create(sub(who, String(i + 1).repeat(64)), { ...opts, now: T0 + 100 + i });
      expect(await queue.engineFailed(job, 'w1', 'The Docker engine did not inspect a grading container', T0 + 500)).to.equal('released');
      const next = (await queue.claim('w2', T0 + 600, 60_000))!;
      expect(next.submissionId, 'the handed-on job, not the newer ones').to.equal(id);
      expect(next.attempts).to.equal(1);
    });

    it('claims nothing of an assignment the worker cannot grade, leaving it to others', async () => {
      await store.create(sub('ada', 'a'.repeat(64), 'lab01'), opts);
      const skip = [{ course: '8x', assignment: 'lab01' }];
      expect(await queue.claim('stale', T0, 60_000, skip)).to.equal(undefined);
      const { id } = (await store.create(sub('bob', 'b'.repeat(64), 'lab02'), opts)) as { id: string };
      expect((await queue.claim('stale', T0, 60_000, skip))!.submissionId).to.equal(id);
      expect((await queue.claim('other', T0, 60_000))!.attempts).to.equal(1);
    });

    it('tells waiting jobs apart from jobs in back-off, with the age of the oldest waiting one', async () => {
      await store.create(sub('ada', 'a'.repeat(64)), opts);
      await store.create(sub('bob', 'b'.repeat(64)), { ...opts, now: T0 + 1000 });
      await store.create(sub('cy', 'c'.repeat(64)), { ...opts, now: T0 + 2000 });
      const job = (await queue.claim('w1', T0 + 3000, 60_000))!;
      await queue.retryOrFail(job, 'w1', 'boom', T0 + 3000);
      expect(await queue.backlog(T0 + 3000)).to.deep.equal({ waiting: 2, backoff: 1, running: 0, oldestWaitingMs: 2000 });
      await queue.claim('w1', T0 + 3000, 60_000);
      expect(await queue.backlog(T0 + 3100)).to.deep.equal({ waiting: 1, backoff: 1, running: 1, oldestWaitingMs: 1100 });
    });

    it('fails a job whose workers keep dying instead of claiming it forever', async () => {
      const { id } = (await store.create(sub(), opts)) as { id: string };
      let now = T0;
      for (let i = 0; i < 3; i++) {
        expect(await queue.claim(`dead${i}`, now, 1000)).to.not.equal(undefined);
        now += 2000;
      }
      expect(await queue.claim('w', now, 1000)).to.equal(undefined);
      expect((await store.get(id))!.status).to.equal('failed');
    });

    it('exports one row per learner and assignment with the latest or best graded score, and the legacy shape', async () => {
      const courses = [{ id: '8x', instructors: [], assignments: [{ id: 'lab01', select: 'best', points: 3 }, { id: 'lab02', select: 'latest', points: 1 }] }] as never;
      let now = T0;
      const grade = async (owner: string, assignment: string, sha: string, result: GradingResult) => {
        const { id } = (await store.create(sub(owner, sha, assignment), { ...opts, now })) as { id: string };
        const job = (await queue.claim('w', now, 60_000))!;
        await queue.complete(job.id, 'w', id, result, now + 1000);
        now += 5000;
      };
      await grade('ada', 'lab01', '1'.repeat(64), graded(1));
      await grade('ada', 'lab01', '2'.repeat(64), graded(0.5)); // best keeps 1
      await grade('ada', 'lab02', '3'.repeat(64), graded(1));
      await grade('ada', 'lab02', '4'.repeat(64), graded(0.5)); // latest is 0.5
      await grade('bob', 'lab01', '5'.repeat(64), { ...graded(0), status: 'timeout', score: 0, tests: [] });
      const rows = await gradeRows(store, { courses }, {});
      expect(rows.map((r) => [r.learner, r.assignment, r.score, r.status])).to.deep.equal([
        ['ada', 'lab01', 1, 'graded'],
        ['bob', 'lab01', null, 'timeout'],
        ['ada', 'lab02', 0.5, 'graded'],
      ]);
      // one scale: the grade is out of the assignment's points
      expect(rows.map((r) => [r.grade, r.outOf, r.gradeText])).to.deep.equal([
        [3, 3, '3 / 3 points (100%)'],
        [null, 3, ''],
        [0.5, 1, '0.5 / 1 point (50%)'],
      ]);
      const people = peopleOf([
        { hubUser: 'ada', name: null, email: 'ada@example.edu' },
        { hubUser: 'ada', name: 'Ada, "the first"', email: 'other@example.edu' },
        { hubUser: null, name: 'nobody', email: null },
      ]);
      const csv = gradesCsv(rows, people).split('\n');
      expect(csv[0]).to.equal('course,assignment,learner,score,points,max_points,status,submitted_at,graded_at,submission,grade,out_of,name,email,time_zone,submitted_local,graded_local');
      // a name comes from the first identity that has one; a comma or a quote in it is quoted
      expect(csv[1]).to.match(/^8x,lab01,ada,1,2,2,graded,.*,3,3,"Ada, ""the first""",ada@example\.edu,UTC,\d{4}-\d{2}-\d{2} \d{2}:\d{2},\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
      expect(csv[2]).to.match(/^8x,lab01,bob,.*,,3,,,UTC,\d{4}-\d{2}-\d{2} \d{2}:\d{2},[^,]*$/);

      const legacy = (await legacyCsv(new ResultStore(db), { assignment: 'lab01' })).trim().split('\n');
      expect(legacy[0]).to.equal('userid,grade,section,lab,timestamp');
      expect(legacy.slice(1).map((l) => l.split(',').slice(0, 4).join(','))).to.deep.equal(['ada,1,1,lab01', 'ada,0.5,1,lab01']);
    });
  });
}
