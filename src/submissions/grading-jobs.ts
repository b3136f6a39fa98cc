import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import { isPostgres } from '../db/knex.js';
import type { AssignmentKey, Backlog } from '../grading/jobs.js';
import { LeaseQueue } from '../lib/lease-queue.js';

/** queued: due at run_at · running: leased to a worker · done · failed. */
export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

interface JobRow {
  id: number;
  submission_id: string;
  owner: string;
  course: string | null;
  assignment: string | null;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  engine_failures: number;
  run_at: number | string;
  locked_by: string | null;
  locked_until: number | string | null;
  claimed_at: number | string | null;
  last_error: string | null;
  created_at: number | string;
  updated_at: number | string;
}

/** A job to add for a stored submission. */
export interface NewJob {
  submissionId: string;
  owner: string;
  course: string;
  assignment: string;
  maxAttempts: number;
  now: number;
}

/** A job leased to a worker. */
export interface LeasedJob {
  id: number;
  submissionId: string;
  attempts: number;
  maxAttempts: number;
  /** When the job was added (its submission's arrival, or the regrade's). */
  queuedAt: number;
}

/** The PostgreSQL advisory lock claims take turns on (an arbitrary number of Gofer's own). */
const CLAIM_LOCK = 0x6f6665;

const lease = new LeaseQueue({ table: 'grading_jobs', leased: 'running', ready: 'queued', dueColumn: 'run_at' });

/**
 * The `grading_jobs` table: every statement on it. A job is added with its submission, leased to
 * one worker at a time, and ends done or failed; each transition is guarded by the lease.
 */
export class GradingJobsTable {
  constructor(private readonly db: Db) {}

  /** Adds jobs inside the transaction storing their submissions (or a regrade). */
  async addIn(trx: Knex.Transaction, jobs: NewJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await trx<JobRow>('grading_jobs').insert(
      jobs.map((j) => ({
        submission_id: j.submissionId,
        owner: j.owner,
        course: j.course,
        assignment: j.assignment,
        status: 'queued' as const,
        attempts: 0,
        max_attempts: j.maxAttempts,
        run_at: j.now,
        created_at: j.now,
        updated_at: j.now,
      })),
    );
  }

  /** Adds a job already done (a grade staff set by hand, which nothing grades); returns its id. */
  async addDoneIn(trx: Knex.Transaction, job: Omit<NewJob, 'maxAttempts'>): Promise<number> {
    const [row] = await trx<JobRow>('grading_jobs')
      .insert({ submission_id: job.submissionId, owner: job.owner, course: job.course, assignment: job.assignment, status: 'done', attempts: 0, max_attempts: 0, run_at: job.now, created_at: job.now, updated_at: job.now })
      .returning('id');
    return Number(typeof row === 'object' ? (row as { id: number }).id : row);
  }

  /** When the running job of each of these submissions was claimed. */
  async runningSince(submissionIds: string[]): Promise<Map<string, number>> {
    if (!submissionIds.length) return new Map();
    const rows = await this.db<JobRow>('grading_jobs').select('submission_id', 'claimed_at').whereIn('submission_id', submissionIds).where({ status: 'running' }).whereNotNull('claimed_at');
    return new Map(rows.map((r) => [r.submission_id, Number(r.claimed_at)]));
  }

  /** Why the submission's latest job last failed (for staff), or null. */
  async lastError(submissionId: string): Promise<string | null> {
    const row = await this.db<JobRow>('grading_jobs').select('last_error').where({ submission_id: submissionId }).orderBy('id', 'desc').first();
    return row?.last_error ?? null;
  }

  /**
   * Leases the next due job (or one whose lease expired) to `workerId`, fairly: learners take
   * turns (the one whose job was claimed longest ago, or never, goes first; then their oldest due
   * job), and a learner with `maxRunning` jobs running waits for one to end. Jobs of the
   * assignments in `skip` are left for other workers. One statement; on PostgreSQL, `trx` must
   * hold the claim lock (`lockClaims`), or two claims side by side would each count a learner's
   * running jobs before the other's commit and together exceed the cap.
   */
  async claimNext(trx: Knex.Transaction, workerId: string, now: number, leaseMs: number, maxRunning: number, skip: AssignmentKey[]): Promise<LeasedJob | undefined> {
    const skipped = skip.length ? `AND NOT (${skip.map(() => '(j.course = ? AND j.assignment = ?)').join(' OR ')})` : '';
    const [row] = await lease.claim(
      trx,
      workerId,
      now + leaseMs,
      {
        sql: `SELECT j.id FROM grading_jobs j
               WHERE ((j.status = 'queued' AND j.run_at <= ?) OR (j.status = 'running' AND j.locked_until < ?))
                 AND (SELECT COUNT(*) FROM grading_jobs r WHERE r.owner = j.owner AND r.status = 'running' AND r.locked_until >= ?) < ?
                 ${skipped}
               ORDER BY (SELECT COALESCE(MAX(c.claimed_at), 0) FROM grading_jobs c WHERE c.owner = j.owner), j.run_at, j.id
               LIMIT 1 ${isPostgres(this.db) ? 'FOR UPDATE OF j SKIP LOCKED' : ''}`,
        bindings: [now, now, now, maxRunning, ...skip.flatMap((k) => [k.course, k.assignment])],
      },
      ['id', 'submission_id', 'attempts', 'max_attempts', 'created_at'],
      { sql: 'attempts = attempts + 1, claimed_at = ?, updated_at = ?', bindings: [now, now] },
    );
    if (!row) return undefined;
    return { id: Number(row.id), submissionId: String(row.submission_id), attempts: Number(row.attempts), maxAttempts: Number(row.max_attempts), queuedAt: Number(row.created_at) };
  }

  /** Claims take turns on PostgreSQL (see claimNext); SQLite runs one writer at a time anyway. */
  async lockClaims(trx: Knex.Transaction): Promise<void> {
    if (isPostgres(this.db)) await trx.raw('SELECT pg_advisory_xact_lock(?)', [CLAIM_LOCK]);
  }

  /** Extends the lease; false when `workerId` no longer holds the job. */
  renew(jobId: number, workerId: string, until: number): Promise<boolean> {
    return lease.renew(this.db, jobId, workerId, until);
  }

  /** Done (its result is recorded in the same transaction); false when the lease was lost. */
  done(trx: Knex.Transaction, jobId: number, workerId: string, now: number): Promise<boolean> {
    return lease.finish(trx, jobId, workerId, { status: 'done', updated_at: now });
  }

  /** Failed for good with `reason` (for staff); false when the lease was lost. */
  failed(trx: Knex.Transaction, jobId: number, workerId: string, reason: string, now: number): Promise<boolean> {
    return lease.finish(trx, jobId, workerId, { status: 'failed', last_error: reason, updated_at: now });
  }

  /** Due again at `at` after a failure; false when the lease was lost. */
  retryAt(trx: Knex.Transaction, jobId: number, workerId: string, at: number, reason: string, now: number): Promise<boolean> {
    return lease.retryAt(trx, jobId, workerId, at, { last_error: reason, updated_at: now });
  }

  /**
   * Given back untouched and claimable at once by any worker, in its old place: the attempt does
   * not count, and the claim is forgotten (the learner's turn is not spent). `engineFailure`: the engine failed
   * under it (counted apart). False when the lease was lost.
   */
  release(trx: Knex.Transaction, jobId: number, workerId: string, now: number, o: { reason?: string; engineFailure?: boolean } = {}): Promise<boolean> {
    return lease.release(trx, jobId, workerId, {
      attempts: trx.raw('attempts - 1'),
      claimed_at: null,
      updated_at: now,
      ...(o.reason ? { last_error: o.reason } : {}),
      ...(o.engineFailure ? { engine_failures: trx.raw('engine_failures + 1') } : {}),
    });
  }

  /** The job's submission and engine failures so far, while `workerId` holds it. */
  async held(q: Db | Knex.Transaction, jobId: number, workerId: string): Promise<{ submissionId: string; engineFailures: number } | undefined> {
    const row = await q<JobRow>('grading_jobs').select('submission_id', 'engine_failures').where({ id: jobId, locked_by: workerId, status: 'running' }).first();
    return row && { submissionId: row.submission_id, engineFailures: Number(row.engine_failures) };
  }

  /** Counts by status, for health pages and tests. */
  async counts(): Promise<Record<string, number>> {
    const rows = (await this.db<JobRow>('grading_jobs').select('status').count({ n: '*' }).groupBy('status')) as Array<{ status: string; n: number | string }>;
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
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
