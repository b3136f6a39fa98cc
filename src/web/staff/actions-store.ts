import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';
import type { EnqueueOutcome, PassbackOutbox } from '../../passback/outbox.js';

export type StaffActionKind = 'regrade' | 'regrade_all' | 'resend' | 'override' | 'excuse';

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
}

/**
 * The staff audit log (every action with who did it) and the grades staff set by hand. A grade
 * set by hand is a result like a graded one (a grading job done at once, no tests), so the
 * submission shows it and the outbox sends it to the platform like any grade.
 */
export class StaffActions {
  constructor(private readonly db: Db) {}

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
      const s = (await trx('submissions').select('owner', 'course', 'assignment', 'received_at').where({ id: a.submissionId }).first()) as
        | { owner: string; course: string; assignment: string; received_at: number | string }
        | undefined;
      if (!s) throw new Error(`submission ${a.submissionId} is missing`);
      const actionId = await this.record({ course: s.course, kind: a.kind, actorSub: a.actorSub, actorName: a.actorName, assignment: s.assignment, owner: s.owner, submissionId: a.submissionId, count: 1, reason: a.reason, createdAt: a.now }, trx);
      const [job] = await trx('grading_jobs')
        .insert({ submission_id: a.submissionId, owner: s.owner, status: 'done', attempts: 0, max_attempts: 0, run_at: a.now, created_at: a.now, updated_at: a.now })
        .returning('id');
      const jobId = Number(typeof job === 'object' ? (job as { id: number }).id : job);
      const message = `${a.kind === 'excuse' ? 'Excused' : 'Grade set'} by ${a.actorName ?? a.actorSub}: ${a.reason}`;
      const [result] = await trx('results')
        .insert({ submission_id: a.submissionId, job_id: jobId, status: 'graded', score: a.score, points: a.score, max_points: 1, message, duration_ms: 0, created_at: a.now, worker: 'staff' })
        .returning('id');
      const resultId = Number(typeof result === 'object' ? (result as { id: number }).id : result);
      await trx('submissions').where({ id: a.submissionId }).update({ status: 'graded', score: a.score, points: a.score, max_points: 1, message, graded_at: a.now });
      await trx('grade_overrides').insert({ submission_id: a.submissionId, result_id: resultId, action_id: actionId, kind: a.kind, score: a.score, reason: a.reason, created_at: a.now });
      const passback = await outbox.enqueue(
        trx,
        { submissionId: a.submissionId, resultId, owner: s.owner, course: s.course, assignment: s.assignment, score: a.score, gradedAt: a.now, receivedAt: Number(s.received_at), policy: { select: 'latest', late: 'accept' } },
        a.now,
      );
      return { actionId, passback };
    });
  }

  /** The hand-set grades among these submissions, by result. */
  async overrides(submissionIds: string[]): Promise<Map<number, GradeOverride>> {
    if (!submissionIds.length) return new Map();
    const rows = (await this.db('grade_overrides').whereIn('submission_id', submissionIds)) as Array<Record<string, unknown>>;
    return new Map(rows.map((r) => [Number(r.result_id), { resultId: Number(r.result_id), submissionId: String(r.submission_id), kind: r.kind as 'override' | 'excuse', score: Number(r.score), reason: String(r.reason), actionId: Number(r.action_id) }]));
  }
}
