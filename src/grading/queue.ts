import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import { isPostgres, writeTransaction } from '../db/knex.js';
import type { Logger } from '../lib/logger.js';
import type { GradingResult } from './result.js';

/** What a learner reads when grading failed for good: no paths, sockets or error codes (those are in the job's last_error and the log). */
export const FAILED_MESSAGE = 'Gofer could not grade this submission. Your work is kept: submit again later, or ask course staff.';

/** Who produced a result: the worker (host/pid/loop) and the engine it graded on. */
export interface Producer {
  worker: string;
  engine: string;
}

/** An assignment a worker cannot grade (its configuration lacks it): that worker claims none of its jobs. */
export interface AssignmentKey {
  course: string;
  assignment: string;
}

/** Jobs ready now apart from jobs in back-off after a failure, and how long the oldest ready one has waited. */
export interface Backlog {
  waiting: number;
  backoff: number;
  running: number;
  oldestWaitingMs: number | null;
}

/** Runs inside the transaction that records a result (the passback outbox hooks in here). */
export type OnRecorded = (trx: Knex.Transaction, recorded: { submissionId: string; resultId: number; result: GradingResult; now: number }) => Promise<void>;

/** The PostgreSQL advisory lock claims take turns on (an arbitrary number of Gofer's own). */
const CLAIM_LOCK = 0x6f6665;

/** What a learner is told when the course's set-up (not their notebook) stopped grading. */
export const SETUP_PROBLEM = "Gofer could not grade this submission because of a problem in the course's set-up. Course staff have been told; your work is kept.";

interface ClaimedRow {
  id: number;
  submission_id: string;
  attempts: number;
  max_attempts: number;
}

export interface ClaimedJob {
  id: number;
  submissionId: string;
  attempts: number;
  maxAttempts: number;
}

/**
 * Grading jobs in the database: claimed with a lease, renewed while grading, completed together
 * with the result in one transaction. A worker that dies loses its lease and the job is claimed
 * again; a worker that lost its lease cannot record a result.
 */
export class JobQueue {
  constructor(
    private readonly db: Db,
    private readonly opts: { retryDelayMs: number; maxRunningPerLearner?: number; onRecorded?: OnRecorded; log?: Logger; maxEngineFailures?: number },
  ) {}

  /**
   * Atomically takes the next due job (or one whose lease expired) for this worker, fairly:
   * learners take turns (the one whose job was claimed longest ago, or never, goes first; then
   * their oldest due job), and a learner with `maxRunningPerLearner` jobs running waits for one
   * to end, so one learner's many slow notebooks never hold every worker. The assignments in
   * `skip` (ones this worker cannot grade) are left for other workers.
   */
  async claim(workerId: string, now: number, leaseMs: number, skip: AssignmentKey[] = []): Promise<ClaimedJob | undefined> {
    for (;;) {
      const row = await this.claimNext(workerId, now, leaseMs, skip);
      if (!row) return undefined;
      const job = { id: Number(row.id), submissionId: row.submission_id, attempts: Number(row.attempts), maxAttempts: Number(row.max_attempts) };
      if (job.attempts > job.maxAttempts) {
        // Only a job whose workers kept dying gets here (a failure that throws is retried below).
        await this.fail(job.id, workerId, `grading was interrupted ${job.maxAttempts} times (the grading process died)`, now);
        continue;
      }
      await this.db('submissions').where({ id: job.submissionId }).update({ status: 'grading' });
      return job;
    }
  }

  /**
   * One claiming statement. On PostgreSQL, claims take turns on a transaction lock first: two
   * claims that ran side by side would each count a learner's running jobs before the other's
   * commit and together exceed the cap. (SQLite runs one writing statement at a time.)
   */
  private async claimNext(workerId: string, now: number, leaseMs: number, skip: AssignmentKey[]): Promise<ClaimedRow | undefined> {
    const skipped = skip.length ? `AND NOT (${skip.map(() => '(s.course = ? AND s.assignment = ?)').join(' OR ')})` : '';
    const statement = async (q: Db | Knex.Transaction): Promise<ClaimedRow | undefined> => {
      const result = await q.raw(
        `UPDATE grading_jobs
            SET status = 'running', locked_by = ?, locked_until = ?, attempts = attempts + 1, claimed_at = ?, updated_at = ?
          WHERE id = (SELECT j.id FROM grading_jobs j JOIN submissions s ON s.id = j.submission_id
                       WHERE ((j.status = 'queued' AND j.run_at <= ?) OR (j.status = 'running' AND j.locked_until < ?))
                         AND (SELECT COUNT(*) FROM grading_jobs r
                               WHERE r.owner = j.owner AND r.status = 'running' AND r.locked_until >= ?) < ?
                         ${skipped}
                       ORDER BY (SELECT COALESCE(MAX(c.claimed_at), 0) FROM grading_jobs c WHERE c.owner = j.owner), j.run_at, j.id
                       LIMIT 1 ${isPostgres(this.db) ? 'FOR UPDATE OF j SKIP LOCKED' : ''})
          RETURNING id, submission_id, attempts, max_attempts`,
        [workerId, now + leaseMs, now, now, now, now, now, this.opts.maxRunningPerLearner ?? 1, ...skip.flatMap((k) => [k.course, k.assignment])],
      );
      return (Array.isArray(result) ? result[0] : result.rows[0]) as ClaimedRow | undefined;
    };
    if (!isPostgres(this.db)) return statement(this.db);
    return this.db.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(?)', [CLAIM_LOCK]);
      return statement(trx);
    });
  }

  /** Extends the lease; false when this worker no longer holds the job. */
  async renew(jobId: number, workerId: string, until: number): Promise<boolean> {
    const n = await this.db('grading_jobs').where({ id: jobId, locked_by: workerId, status: 'running' }).update({ locked_until: until });
    return n === 1;
  }

  /** Records the result and finishes the job in one transaction; false when the lease was lost. */
  async complete(jobId: number, workerId: string, submissionId: string, result: GradingResult, now: number, producer?: Producer): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const n = await trx('grading_jobs')
        .where({ id: jobId, locked_by: workerId, status: 'running' })
        .update({ status: 'done', locked_by: null, locked_until: null, updated_at: now });
      if (n !== 1) return false;
      const [inserted] = await trx('results')
        .insert({
          submission_id: submissionId,
          job_id: jobId,
          status: result.status,
          score: result.score,
          points: result.points,
          max_points: result.maxPoints,
          message: result.message ?? null,
          duration_ms: Math.round(result.durationMs),
          created_at: now,
          worker: producer?.worker ?? workerId,
          engine: producer?.engine ?? null,
        })
        .returning('id');
      const resultId = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
      if (result.tests.length) {
        await trx.batchInsert(
          'result_tests',
          result.tests.map((t, position) => ({
            result_id: resultId,
            position,
            name: t.name,
            points: t.points,
            max_points: t.maxPoints,
            passed: t.passed,
            hidden: t.hidden,
            message: t.message ?? null,
          })),
          100,
        );
      }
      await trx('submissions').where({ id: submissionId }).update({
        status: result.status,
        score: result.status === 'graded' ? result.score : null,
        points: result.status === 'graded' ? result.points : null,
        max_points: result.status === 'graded' ? result.maxPoints : null,
        message: result.message ?? null,
        graded_at: now,
      });
      await this.opts.onRecorded?.(trx, { submissionId, resultId: Number(resultId), result, now });
      return true;
    });
  }

  /**
   * An infrastructure failure: try again later with exponential back-off, or, after the last
   * attempt, mark the submission failed with the reason. Never a score.
   */
  async retryOrFail(job: ClaimedJob, workerId: string, reason: string, now: number): Promise<'retry' | 'failed'> {
    if (job.attempts >= job.maxAttempts) {
      await this.fail(job.id, workerId, reason, now);
      return 'failed';
    }
    const base = this.opts.retryDelayMs * 2 ** (job.attempts - 1);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    await this.db('grading_jobs')
      .where({ id: job.id, locked_by: workerId })
      .update({ status: 'queued', locked_by: null, locked_until: null, run_at: now + delay, last_error: reason, updated_at: now });
    await this.db('submissions').where({ id: job.submissionId }).update({ status: 'queued' });
    return 'retry';
  }

  /**
   * An instructor's mistake (a ConfigError: tests that cannot be used, an assignment no longer
   * configured): no retry can help, so the job fails now. The reason is for staff (the job's
   * last error, `problem`); the learner is told only that the course's set-up must be fixed.
   */
  async failForStaff(job: ClaimedJob, workerId: string, reason: string, now: number): Promise<void> {
    await this.fail(job.id, workerId, reason, now, SETUP_PROBLEM);
  }

  /**
   * Gives a job back untouched (shutdown, a host that cannot grade it, an engine failure): ready
   * at once for any worker, in the place in line it had before this claim (its claim time is
   * cleared and its run_at kept, so it is not queued behind every learner who waits); the
   * attempt does not count.
   */
  async release(jobId: number, workerId: string, now: number, reason?: string): Promise<void> {
    const job = await this.db('grading_jobs').select('submission_id').where({ id: jobId, locked_by: workerId }).first();
    if (!job) return;
    await this.db('grading_jobs')
      .where({ id: jobId, locked_by: workerId })
      .update({
        status: 'queued',
        locked_by: null,
        locked_until: null,
        claimed_at: null,
        attempts: this.db.raw('attempts - 1'),
        updated_at: now,
        ...(reason ? { last_error: reason } : {}),
      });
    await this.db('submissions').where({ id: job.submission_id }).update({ status: 'queued' });
  }

  /**
   * The engine failed under the job: give it back at once, for a healthy host, without counting
   * the attempt. Only a job under which engines keep failing (it may be what breaks them) is
   * then treated as an ordinary failure, so it cannot circle forever.
   */
  async engineFailed(job: ClaimedJob, workerId: string, reason: string, now: number): Promise<'released' | 'retry' | 'failed'> {
    const row = await this.db('grading_jobs').select('engine_failures').where({ id: job.id, locked_by: workerId }).first();
    if (!row) return 'released';
    const failures = Number(row.engine_failures) + 1;
    if (failures > (this.opts.maxEngineFailures ?? 10)) return this.retryOrFail(job, workerId, `${reason} (the engine failed under this job ${failures} times)`, now);
    await this.db('grading_jobs').where({ id: job.id, locked_by: workerId }).update({ engine_failures: failures });
    await this.release(job.id, workerId, now, reason);
    return 'released';
  }

  /** Fails the job for good: the reason goes to the job row and the error log (someone must look), never to the learner. */
  private async fail(jobId: number, workerId: string, reason: string, now: number, learnerMessage = FAILED_MESSAGE): Promise<void> {
    const submissionId = await writeTransaction(this.db, async (trx) => {
      const job = await trx('grading_jobs').select('submission_id').where({ id: jobId }).first();
      await trx('grading_jobs').where({ id: jobId, locked_by: workerId }).update({ status: 'failed', locked_by: null, locked_until: null, last_error: reason, updated_at: now });
      await trx('submissions').where({ id: job.submission_id }).update({ status: 'failed', message: learnerMessage, graded_at: now });
      return job.submission_id as string;
    });
    this.opts.log?.error('grading failed for good', { job: jobId, submission: submissionId, reason });
  }

  /** Counts by status, for health pages and tests. */
  async counts(): Promise<Record<string, number>> {
    const rows = await this.db('grading_jobs').select('status').count({ n: '*' }).groupBy('status');
    return Object.fromEntries((rows as Array<{ status: string; n: number | string }>).map((r) => [r.status, Number(r.n)]));
  }

  /** Waiting, in back-off and running jobs, and the age of the oldest waiting one (for /health). */
  async backlog(now: number): Promise<Backlog> {
    const row = (await this.db('grading_jobs')
      .where({ status: 'queued' })
      .orWhere({ status: 'running' })
      .select(
        this.db.raw("SUM(CASE WHEN status = 'queued' AND run_at <= ? THEN 1 ELSE 0 END) AS waiting", [now]),
        this.db.raw("SUM(CASE WHEN status = 'queued' AND run_at > ? THEN 1 ELSE 0 END) AS backoff", [now]),
        this.db.raw("SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running"),
        this.db.raw("MIN(CASE WHEN status = 'queued' AND run_at <= ? THEN created_at END) AS oldest", [now]),
      )
      .first()) as { waiting: unknown; backoff: unknown; running: unknown; oldest: unknown };
    return {
      waiting: Number(row.waiting ?? 0),
      backoff: Number(row.backoff ?? 0),
      running: Number(row.running ?? 0),
      oldestWaitingMs: row.oldest === null || row.oldest === undefined ? null : now - Number(row.oldest),
    };
  }
}
