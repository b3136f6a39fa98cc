import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import { isPostgres, writeTransaction } from '../db/knex.js';
import type { GradingResult, TestResult } from '../grading/result.js';
import { ResultStore } from '../grading/result-store.js';
import { GradingJobsTable } from './grading-jobs.js';

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

export interface CreateOptions {
  now: number;
  duplicateWindowMs: number;
  perMinute: number;
  maxAttempts: number;
}

interface PendingCreate {
  sub: NewSubmission;
  opts: CreateOptions;
  resolve: (o: CreateOutcome) => void;
  reject: (err: unknown) => void;
}

/** Submissions committed in one transaction at most. */
const MAX_GROUP = 64;

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

/**
 * Only a submission without a standing override: a grade staff set by hand stays its grade (status,
 * score, message) through regrades and new results until staff clear it.
 */
function notOverridden(q: Knex.QueryBuilder): Knex.QueryBuilder {
  return q.whereNotExists(function () {
    void this.select(1).from('grade_overrides as o').whereRaw('o.submission_id = submissions.id').whereNull('o.cleared_at');
  });
}

const COLUMNS = ['id', 'owner', 'course', 'assignment', 'section', 'received_at', 'sha256', 'status', 'score', 'points', 'max_points', 'message', 'graded_at'];

/**
 * The `submissions` and `submission_notebooks` tables. A submission is stored with its grading
 * job (kept by GradingJobsTable) in one transaction; its results are kept by ResultStore.
 */
export class SubmissionStore {
  private readonly jobs: GradingJobsTable;
  private readonly results: ResultStore;

  constructor(private readonly db: Db) {
    this.jobs = new GradingJobsTable(db);
    this.results = new ResultStore(db);
  }

  /**
   * Stores a submission and its grading job in one transaction, unless the same learner sent the
   * identical notebook for the same assignment within `duplicateWindowMs` (then that one is
   * returned), or sent more than `perMinute` submissions in the last minute. Resolves only after
   * the commit, so an acknowledgement always means stored.
   *
   * Submissions that arrive while a commit is under way are committed together in the next
   * transaction (group commit): one disk sync for many learners at a deadline, each still
   * answered with its own outcome.
   */
  create(sub: NewSubmission, opts: CreateOptions): Promise<CreateOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ sub, opts, resolve, reject });
      void this.commitWaiting();
    });
  }

  private readonly waiting: PendingCreate[] = [];
  private committing = false;

  private async commitWaiting(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      while (this.waiting.length) {
        const batch = this.waiting.splice(0, MAX_GROUP);
        try {
          const outcomes = await this.decide(batch);
          batch.forEach((b, i) => b.resolve(outcomes[i]!));
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err);
            continue;
          }
          // a failing group: decide each submission alone, so one bad one fails only itself
          for (const b of batch) await this.decide([b]).then(([outcome]) => b.resolve(outcome!), b.reject);
        }
      }
    } finally {
      this.committing = false;
    }
  }

  /** Decides and stores a group in one transaction. */
  private decide(batch: PendingCreate[]): Promise<CreateOutcome[]> {
    return writeTransaction(this.db, async (trx) => {
      // one learner's submissions are decided one at a time; owners locked in one order (no deadlocks)
      if (isPostgres(this.db)) {
        for (const owner of [...new Set(batch.map((b) => b.sub.owner))].sort()) await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [owner]);
      }
      return this.createGroupIn(trx, batch);
    });
  }

  /**
   * Decides a group with a fixed number of statements: each submission in arrival order, the
   * identical notebook again within the window being a duplicate and one over the per-minute
   * limit refused; the new ones inserted together. What is read stays small however busy the
   * learners are: the recent rows with the group's notebooks (by the owner/sha256 index), and
   * one count per learner. The minute is counted back from the group's first arrival, which can
   * count a submission a few milliseconds older than a later arrival's minute.
   */
  private async createGroupIn(trx: Knex.Transaction, batch: PendingCreate[]): Promise<CreateOutcome[]> {
    const owners = [...new Set(batch.map((b) => b.sub.owner))];
    const sameSince = Math.min(...batch.map((b) => b.opts.now - b.opts.duplicateWindowMs));
    const same: Array<{ id: string; owner: string; course: string; assignment: string; sha256: string; receivedAt: number }> = (
      await trx('submissions')
        .select('id', 'owner', 'course', 'assignment', 'sha256', 'received_at')
        .whereIn('owner', owners)
        .whereIn('sha256', [...new Set(batch.map((b) => b.sub.sha256))])
        .andWhere('received_at', '>=', sameSince)
    ).map((r) => ({ id: r.id, owner: r.owner, course: r.course, assignment: r.assignment, sha256: r.sha256, receivedAt: Number(r.received_at) }));
    const minuteSince = Math.min(...batch.map((b) => b.opts.now)) - 60_000;
    const counted = (await trx('submissions')
      .select('owner')
      .count({ n: '*' })
      .min({ oldest: 'received_at' })
      .whereIn('owner', owners)
      .andWhere('received_at', '>', minuteSince)
      .groupBy('owner')) as Array<{ owner: string; n: number | string; oldest: number | string }>;
    const lastMinute = new Map(counted.map((r) => [r.owner, { n: Number(r.n), oldest: Number(r.oldest) }]));

    const outcomes: CreateOutcome[] = [];
    const created: Array<Pick<PendingCreate, 'sub' | 'opts'>> = [];
    for (const { sub, opts } of batch) {
      const earlier = same
        .filter((r) => r.owner === sub.owner && r.course === sub.course && r.assignment === sub.assignment && r.sha256 === sub.sha256 && r.receivedAt >= opts.now - opts.duplicateWindowMs)
        .sort((a, b) => b.receivedAt - a.receivedAt)[0];
      if (earlier) {
        outcomes.push({ kind: 'duplicate', id: earlier.id });
        continue;
      }
      const minute = lastMinute.get(sub.owner) ?? { n: 0, oldest: opts.now };
      if (minute.n >= opts.perMinute) {
        outcomes.push({ kind: 'rate_limited', retryAfterSeconds: Math.max(1, Math.ceil((minute.oldest + 60_000 - opts.now) / 1000)) });
        continue;
      }
      same.push({ id: sub.id, owner: sub.owner, course: sub.course, assignment: sub.assignment, sha256: sub.sha256, receivedAt: opts.now });
      lastMinute.set(sub.owner, { n: minute.n + 1, oldest: Math.min(minute.oldest, opts.now) });
      created.push({ sub, opts });
      outcomes.push({ kind: 'created', id: sub.id });
    }
    if (created.length) {
      // one statement per table: each statement is a round trip through a busy event loop
      await trx('submissions').insert(created.map(({ sub, opts }) => submissionRow(sub, opts)));
      await trx('submission_notebooks').insert(created.map(({ sub }) => notebookRow(sub)));
      await this.jobs.addIn(
        trx,
        created.map(({ sub, opts }) => ({ submissionId: sub.id, owner: sub.owner, course: sub.course, assignment: sub.assignment, maxAttempts: opts.maxAttempts, now: opts.now })),
      );
    }
    return outcomes;
  }

  /** Grades a stored submission again (instructor action): a new grading job, a new result. */
  async regrade(id: string, now: number, maxAttempts: number): Promise<boolean> {
    return writeTransaction(this.db, async (trx) => {
      const sub = await trx<Row>('submissions').select('owner', 'course', 'assignment').where({ id }).first();
      if (!sub) return false;
      await this.setStatus(trx, id, 'queued');
      await this.jobs.addIn(trx, [{ submissionId: id, owner: sub.owner, course: sub.course, assignment: sub.assignment, maxAttempts, now }]);
      return true;
    });
  }

  async get(id: string): Promise<Submission | undefined> {
    return this.getIn(this.db, id);
  }

  /** `get` inside a transaction. */
  async getIn(q: Db | Knex.Transaction, id: string): Promise<Submission | undefined> {
    const row = (await q('submissions').select(COLUMNS).where({ id }).first()) as Row | undefined;
    return row && toSubmission(row);
  }

  async notebook(id: string): Promise<string | undefined> {
    const row = await this.db<{ submission_id: string; notebook: string }>('submission_notebooks').select('notebook').where({ submission_id: id }).first();
    return row?.notebook;
  }

  /** Queued again, or being graded (the grading job's lease moved). */
  async setStatus(trx: Knex.Transaction, id: string, status: 'queued' | 'grading'): Promise<void> {
    await notOverridden(trx('submissions').where({ id })).update({ status });
  }

  /**
   * The grade of a finished job, in the transaction recording its result. False when a standing
   * override keeps the submission's grade (the result is kept, but neither counts nor is sent).
   */
  async recordResult(trx: Knex.Transaction, id: string, result: GradingResult, now: number): Promise<boolean> {
    const graded = result.status === 'graded';
    const n = await notOverridden(trx('submissions').where({ id })).update({
        status: result.status,
        score: graded ? result.score : null,
        points: graded ? result.points : null,
        max_points: graded ? result.maxPoints : null,
        message: result.message ?? null,
        graded_at: now,
      });
    return n > 0;
  }

  /** Grading failed for good: the learner reads `message` (unless a standing override keeps the grade). */
  async recordFailure(trx: Knex.Transaction, id: string, message: string, now: number): Promise<void> {
    await notOverridden(trx('submissions').where({ id })).update({ status: 'failed', message, graded_at: now });
  }

  /** Why the submission's latest grading job last failed (for staff), or null. */
  problem(id: string): Promise<string | null> {
    return this.jobs.lastError(id);
  }

  /** When the running grading job of each submission was claimed (for "grading, 0:12 elapsed"). */
  gradingStarted(ids: string[]): Promise<Map<string, number>> {
    return this.jobs.runningSince(ids);
  }

  /** Per-test detail of the submission's latest result. */
  tests(id: string): Promise<TestResult[]> {
    return this.results.tests(id);
  }

  /** `tests` of many submissions at once, by submission. */
  testsOf(ids: string[]): Promise<Map<string, TestResult[]>> {
    return this.results.testsOf(ids);
  }

  async list(filter: { course?: string; assignment?: string; owner?: string } = {}): Promise<Submission[]> {
    return this.listIn(this.db, filter);
  }

  /** `list` inside a transaction. */
  async listIn(db: Db | Knex.Transaction, filter: { course?: string; assignment?: string; owner?: string } = {}): Promise<Submission[]> {
    const q = db('submissions').select(COLUMNS).orderBy([{ column: 'received_at' }, { column: 'id' }]);
    if (filter.course) q.where('course', filter.course);
    if (filter.assignment) q.where('assignment', filter.assignment);
    if (filter.owner) q.where('owner', filter.owner);
    return ((await q) as Row[]).map(toSubmission);
  }

  /** Grades many stored submissions again (an instructor's regrade of an assignment) in one transaction; returns how many. */
  async regradeMany(ids: string[], now: number, maxAttempts: number): Promise<number> {
    if (!ids.length) return 0;
    return writeTransaction(this.db, async (trx) => {
      let n = 0;
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await trx<Row>('submissions').select('id', 'owner', 'course', 'assignment').whereIn('id', ids.slice(i, i + 500));
        if (!rows.length) continue;
        await notOverridden(trx('submissions').whereIn('id', rows.map((r) => r.id))).update({ status: 'queued' });
        await this.jobs.addIn(trx, rows.map((r) => ({ submissionId: r.id, owner: r.owner, course: r.course, assignment: r.assignment, maxAttempts, now })));
        n += rows.length;
      }
      return n;
    });
  }

  /** One page of submissions, newest first (received, then id), and how many match in all. */
  async page(filter: { course?: string; assignment?: string; owner?: string; status?: string }, limit: number, offset: number): Promise<{ total: number; rows: Submission[] }> {
    const q = this.db('submissions');
    if (filter.course) q.where('course', filter.course);
    if (filter.assignment) q.where('assignment', filter.assignment);
    if (filter.owner) q.where('owner', filter.owner);
    if (filter.status) q.where('status', filter.status);
    const total = Number(((await q.clone().count({ n: '*' }).first()) as { n: number | string } | undefined)?.n ?? 0);
    const rows = (await q.select(COLUMNS).orderBy([{ column: 'received_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit).offset(offset)) as Row[];
    return { total, rows: rows.map(toSubmission) };
  }
}

function submissionRow(sub: NewSubmission, opts: CreateOptions): Record<string, unknown> {
  return {
    id: sub.id,
    owner: sub.owner,
    course: sub.course,
    assignment: sub.assignment,
    section: sub.section,
    received_at: opts.now,
    sha256: sub.sha256,
    status: 'queued',
  };
}

function notebookRow(sub: NewSubmission): Record<string, unknown> {
  return { submission_id: sub.id, notebook: sub.notebook };
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
