import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';
import type { EnqueueOutcome, PassbackOutbox } from '../../passback/outbox.js';
import { ResultStore } from '../../grading/result-store.js';
import type { GradingResult } from '../../grading/result.js';
import { GradingJobsTable } from '../../submissions/grading-jobs.js';
import { standing } from '../../submissions/standing.js';
import { SubmissionStore } from '../../submissions/store.js';
import type { AssignmentPolicy } from '../../passback/policy.js';

export type StaffActionKind = 'regrade' | 'regrade_all' | 'resend' | 'override' | 'excuse' | 'clear_override';

export interface StaffAction {
  id: number;
  course: string;
  kind: StaffActionKind;
  actorSub: string;
  actorName: string | null;
  assignment: string | null;
  owner: string | null;
  submissionId: string | null;
  count: number;
  reason: string | null;
  createdAt: number;
}

export type NewStaffAction = Omit<StaffAction, 'id'>;

export interface GradeOverride {
  resultId: number;
  submissionId: string;
  kind: 'override' | 'excuse';
  score: number;
  reason: string;
  actionId: number;
  createdAt: number;
  /** When staff cleared it (or set another grade over it); null while it stands. */
  clearedAt: number | null;
}

/** What clearing an override did: the submission whose grade now counts is queued for the platform (null: none counts, nothing is sent). */
export interface ClearOutcome {
  actionId: number;
  counting: string | null;
  passback: EnqueueOutcome | null;
}

/**
 * The staff audit log (every action with who did it) and the grades staff set by hand. A grade
 * set by hand is a result like a graded one (a grading job done at once, no tests), so the
 * submission shows it and the outbox sends it to the platform like any grade.
 */
export class StaffActions {
  private readonly jobs: GradingJobsTable;
  private readonly results: ResultStore;
  private readonly submissions: SubmissionStore;
  constructor(private readonly db: Db) {
    this.jobs = new GradingJobsTable(db);
    this.results = new ResultStore(db);
    this.submissions = new SubmissionStore(db);
  }

  async record(a: NewStaffAction, trx: Knex | Knex.Transaction = this.db): Promise<number> {
    const [row] = await trx('staff_actions')
      .insert({ course: a.course, kind: a.kind, actor_sub: a.actorSub, actor_name: a.actorName, assignment: a.assignment, owner: a.owner, submission_id: a.submissionId, count: a.count, reason: a.reason, created_at: a.createdAt })
      .returning('id');
    return Number(typeof row === 'object' ? (row as { id: number }).id : row);
  }

  /** A course's actions, newest first; of one learner when `owner` is given. */
  async list(course: string, opts: { owner?: string; limit: number }): Promise<StaffAction[]> {
    const q = this.db('staff_actions').where({ course }).orderBy('id', 'desc').limit(opts.limit);
    if (opts.owner) q.where({ owner: opts.owner });
    return ((await q) as Array<Record<string, unknown>>).map((r) => ({
      id: Number(r.id),
      course: String(r.course),
      kind: r.kind as StaffActionKind,
      actorSub: String(r.actor_sub),
      actorName: (r.actor_name as string | null) ?? null,
      assignment: (r.assignment as string | null) ?? null,
      owner: (r.owner as string | null) ?? null,
      submissionId: (r.submission_id as string | null) ?? null,
      count: Number(r.count),
      reason: (r.reason as string | null) ?? null,
      createdAt: Number(r.created_at),
    }));
  }

  /**
   * Sets a submission's grade by hand (an override with a score, or an excuse with full points),
   * records the action, and queues the grade for the platform in the same transaction. It is sent
   * whatever the assignment's `select` and lateness rules say: staff decided it.
   */
  async setGrade(
    a: { submissionId: string; kind: 'override' | 'excuse'; score: number; reason: string; actorSub: string; actorName: string | null; now: number },
    outbox: PassbackOutbox,
  ): Promise<{ actionId: number; passback: EnqueueOutcome }> {
    return this.db.transaction(async (trx) => {
      const s = await this.submissions.getIn(trx, a.submissionId);
      if (!s) throw new Error(`submission ${a.submissionId} is missing`);
      const actionId = await this.record({ course: s.course, kind: a.kind, actorSub: a.actorSub, actorName: a.actorName, assignment: s.assignment, owner: s.owner, submissionId: a.submissionId, count: 1, reason: a.reason, createdAt: a.now }, trx);
      // a new grade by hand replaces the one standing
      await trx('grade_overrides').where({ submission_id: a.submissionId }).whereNull('cleared_at').update({ cleared_at: a.now, cleared_action_id: actionId });
      const jobId = await this.jobs.addDoneIn(trx, { submissionId: a.submissionId, owner: s.owner, course: s.course, assignment: s.assignment, now: a.now });
      const message = `${a.kind === 'excuse' ? 'Excused' : 'Grade set'} by ${a.actorName ?? a.actorSub}: ${a.reason}`;
      const result: GradingResult = { status: 'graded', score: a.score, points: a.score, maxPoints: 1, tests: [], durationMs: 0, message };
      const resultId = await this.results.insert(trx, { submissionId: a.submissionId, jobId, result, now: a.now, producer: { worker: 'staff', engine: null } });
      await this.submissions.recordResult(trx, a.submissionId, result, a.now);
      await trx('grade_overrides').insert({ submission_id: a.submissionId, result_id: resultId, action_id: actionId, kind: a.kind, score: a.score, reason: a.reason, created_at: a.now });
      const passback = await outbox.enqueue(
        trx,
        { submissionId: a.submissionId, resultId, owner: s.owner, course: s.course, assignment: s.assignment, score: a.score, gradedAt: a.now, receivedAt: s.receivedAt, policy: { select: 'latest', late: 'accept' }, decided: true },
        a.now,
      );
      return { actionId, passback };
    });
  }

  /**
   * Clears the standing override of a submission: the action is recorded, the submission takes
   * back its newest grader's result (or is graded again when it has none), and the grade that now
   * counts for the learner's assignment under its `select` and lateness rules is queued for the
   * platform, replacing the override there. Undefined when no override of it stands.
   */
  async clearOverride(
    a: { submissionId: string; reason: string; actorSub: string; actorName: string | null; now: number; maxAttempts: number },
    policy: Pick<AssignmentPolicy, 'points' | 'select' | 'due' | 'late'>,
    outbox: PassbackOutbox,
  ): Promise<ClearOutcome | undefined> {
    return this.db.transaction(async (trx) => {
      const s = await this.submissions.getIn(trx, a.submissionId);
      if (!s) return undefined;
      const standingOverride = await trx('grade_overrides').where({ submission_id: a.submissionId }).whereNull('cleared_at').first();
      if (!standingOverride) return undefined;
      const actionId = await this.record({ course: s.course, kind: 'clear_override', actorSub: a.actorSub, actorName: a.actorName, assignment: s.assignment, owner: s.owner, submissionId: a.submissionId, count: 1, reason: a.reason, createdAt: a.now }, trx);
      await trx('grade_overrides').where({ submission_id: a.submissionId }).whereNull('cleared_at').update({ cleared_at: a.now, cleared_action_id: actionId });
      const own = (await trx('results')
        .where({ submission_id: a.submissionId })
        .whereNotIn('id', trx('grade_overrides').select('result_id').where({ submission_id: a.submissionId }))
        .orderBy('id', 'desc')
        .first()) as Record<string, unknown> | undefined;
      if (own) {
        const result: GradingResult = { status: own.status as GradingResult['status'], score: Number(own.score), points: Number(own.points), maxPoints: Number(own.max_points), tests: [], durationMs: Number(own.duration_ms), ...(own.message ? { message: String(own.message) } : {}) };
        await this.submissions.recordResult(trx, a.submissionId, result, Number(own.created_at));
      } else {
        // never graded by a grader (staff set its grade over a failure): graded now
        await trx('submissions').where({ id: a.submissionId }).update({ status: 'queued', score: null, points: null, max_points: null, message: null });
        await this.jobs.addIn(trx, [{ submissionId: a.submissionId, owner: s.owner, course: s.course, assignment: s.assignment, maxAttempts: a.maxAttempts, now: a.now }]);
      }
      const all = await this.submissions.listIn(trx, { owner: s.owner, course: s.course, assignment: s.assignment });
      const cleared = all.find((x) => x.id === a.submissionId)!;
      const counting = standing(cleared, all, policy).countingSubmission;
      if (!counting) return { actionId, counting: null, passback: null };
      const c = all.find((x) => x.id === counting)!;
      const resultId = await this.countingResult(trx, counting);
      const passback = await outbox.enqueue(
        trx,
        { submissionId: c.id, resultId, owner: c.owner, course: c.course, assignment: c.assignment, score: c.score ?? 0, gradedAt: a.now, receivedAt: c.receivedAt, policy: { select: 'latest', late: 'accept' }, decided: true },
        a.now,
      );
      return { actionId, counting, passback };
    });
  }

  /** The result a submission's grade is: its standing override's, else its newest grader's. */
  private async countingResult(trx: Knex.Transaction, submissionId: string): Promise<number> {
    const o = await trx('grade_overrides').select('result_id').where({ submission_id: submissionId }).whereNull('cleared_at').first();
    if (o) return Number(o.result_id);
    const r = await trx('results').select('id').where({ submission_id: submissionId }).whereNotIn('id', trx('grade_overrides').select('result_id').where({ submission_id: submissionId })).orderBy('id', 'desc').first();
    return Number(r.id);
  }

  /** The hand-set grades among these submissions (standing and cleared), by result. */
  async overrides(submissionIds: string[]): Promise<Map<number, GradeOverride>> {
    if (!submissionIds.length) return new Map();
    const rows = (await this.db('grade_overrides').whereIn('submission_id', submissionIds).orderBy('id')) as Array<Record<string, unknown>>;
    return new Map(
      rows.map((r) => [
        Number(r.result_id),
        {
          resultId: Number(r.result_id),
          submissionId: String(r.submission_id),
          kind: r.kind as 'override' | 'excuse',
          score: Number(r.score),
          reason: String(r.reason),
          actionId: Number(r.action_id),
          createdAt: Number(r.created_at),
          clearedAt: r.cleared_at === null || r.cleared_at === undefined ? null : Number(r.cleared_at),
        },
      ]),
    );
  }
}
