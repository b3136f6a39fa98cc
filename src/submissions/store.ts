import type { Db } from '../db/knex.js';
import { isPostgres } from '../db/knex.js';
import type { GradingResult, TestResult } from '../grading/result.js';

export type SubmissionStatus = 'queued' | 'grading' | GradingResult['status'] | 'failed';

export interface Submission {
  id: string;
  owner: string;
  course: string;
  assignment: string;
  section: string | null;
  receivedAt: number;
  sha256: string;
  status: SubmissionStatus;
  score: number | null;
  points: number | null;
  maxPoints: number | null;
  message: string | null;
  gradedAt: number | null;
}

export interface NewSubmission {
  id: string;
  owner: string;
  course: string;
  assignment: string;
  section: string | null;
  notebook: string;
  sha256: string;
}

export type CreateOutcome =
  | { kind: 'created'; id: string }
  | { kind: 'duplicate'; id: string }
  | { kind: 'rate_limited'; retryAfterSeconds: number };

interface Row {
  id: string;
  owner: string;
  course: string;
  assignment: string;
  section: string | null;
  received_at: string | number;
  sha256: string;
  status: SubmissionStatus;
  score: number | null;
  points: number | null;
  max_points: number | null;
  message: string | null;
  graded_at: string | number | null;
}

const COLUMNS = ['id', 'owner', 'course', 'assignment', 'section', 'received_at', 'sha256', 'status', 'score', 'points', 'max_points', 'message', 'graded_at'];

/** Submissions and their grading jobs, created together in one transaction. */
export class SubmissionStore {
  constructor(private readonly db: Db) {}

  /**
   * Stores a submission and its grading job in one transaction, unless the same learner sent the
   * identical notebook for the same assignment within `duplicateWindowMs` (then that one is
   * returned), or sent more than `perMinute` submissions in the last minute.
   */
  async create(sub: NewSubmission, opts: { now: number; duplicateWindowMs: number; perMinute: number; maxAttempts: number }): Promise<CreateOutcome> {
    return this.db.transaction(async (trx) => {
      // one learner's submissions are decided one at a time (SQLite: a single writer anyway)
      if (isPostgres(this.db)) await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [sub.owner]);
      const same = await trx('submissions')
        .select('id')
        .where({ owner: sub.owner, course: sub.course, assignment: sub.assignment, sha256: sub.sha256 })
        .andWhere('received_at', '>=', opts.now - opts.duplicateWindowMs)
        .orderBy('received_at', 'desc')
        .first();
      if (same) return { kind: 'duplicate', id: same.id as string };
      const recent = await trx('submissions')
        .select('received_at')
        .where({ owner: sub.owner })
        .andWhere('received_at', '>', opts.now - 60_000)
        .orderBy('received_at', 'asc');
      if (recent.length >= opts.perMinute) {
        const oldest = Number(recent[0]!.received_at);
        return { kind: 'rate_limited', retryAfterSeconds: Math.max(1, Math.ceil((oldest + 60_000 - opts.now) / 1000)) };
      }
      await trx('submissions').insert({
        id: sub.id,
        owner: sub.owner,
        course: sub.course,
        assignment: sub.assignment,
        section: sub.section,
        received_at: opts.now,
        notebook: sub.notebook,
        sha256: sub.sha256,
        status: 'queued',
      });
      await trx('grading_jobs').insert({
        submission_id: sub.id,
        status: 'queued',
        attempts: 0,
        max_attempts: opts.maxAttempts,
        run_at: opts.now,
        created_at: opts.now,
        updated_at: opts.now,
      });
      return { kind: 'created', id: sub.id };
    });
  }

  /** Grades a stored submission again (instructor action): a new grading job, a new result. */
  async regrade(id: string, now: number, maxAttempts: number): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const n = await trx('submissions').where({ id }).update({ status: 'queued' });
      if (n !== 1) return false;
      await trx('grading_jobs').insert({ submission_id: id, status: 'queued', attempts: 0, max_attempts: maxAttempts, run_at: now, created_at: now, updated_at: now });
      return true;
    });
  }

  async get(id: string): Promise<Submission | undefined> {
    const row = (await this.db('submissions').select(COLUMNS).where({ id }).first()) as Row | undefined;
    return row && toSubmission(row);
  }

  async notebook(id: string): Promise<string | undefined> {
    const row = await this.db('submissions').select('notebook').where({ id }).first();
    return row?.notebook as string | undefined;
  }

  /** Per-test detail of the submission's latest result. */
  async tests(id: string): Promise<TestResult[]> {
    const latest = await this.db('results').select('id').where({ submission_id: id }).orderBy('id', 'desc').first();
    if (!latest) return [];
    const rows = await this.db('result_tests').where({ result_id: latest.id }).orderBy('position');
    return rows.map((r) => ({
      name: r.name,
      points: r.points,
      maxPoints: r.max_points,
      passed: Boolean(r.passed),
      hidden: Boolean(r.hidden),
      ...(r.message ? { message: r.message } : {}),
    }));
  }

  async list(filter: { course?: string; assignment?: string; owner?: string } = {}): Promise<Submission[]> {
    const q = this.db('submissions').select(COLUMNS).orderBy([{ column: 'received_at' }, { column: 'id' }]);
    if (filter.course) q.where('course', filter.course);
    if (filter.assignment) q.where('assignment', filter.assignment);
    if (filter.owner) q.where('owner', filter.owner);
    return ((await q) as Row[]).map(toSubmission);
  }
}

function toSubmission(r: Row): Submission {
  return {
    id: r.id,
    owner: r.owner,
    course: r.course,
    assignment: r.assignment,
    section: r.section,
    receivedAt: Number(r.received_at),
    sha256: r.sha256,
    status: r.status,
    score: r.score,
    points: r.points,
    maxPoints: r.max_points,
    message: r.message,
    gradedAt: r.graded_at === null ? null : Number(r.graded_at),
  };
}
