import { bucketMs } from './charts.js';
import type { Knex } from 'knex';
import type { Config } from '../../config/schema.js';
import type { Db } from '../../db/knex.js';

/** Submission statuses that are a grading outcome other than a grade. */
export const FAILED_STATUSES = ['timeout', 'out_of_memory', 'invalid_notebook', 'kernel_died', 'failed'];
/** Passback statuses that are still on their way. */
export const PASSBACK_WAITING = ['waiting', 'pending', 'sending'];

/** How the grades table can be narrowed. */
export interface GradeFilter {
  assignment?: string;
  /** graded | failed | waiting (queued or grading) */
  status?: 'graded' | 'failed' | 'waiting';
  /** sent | waiting | refused | late | superseded | none */
  passback?: 'sent' | 'waiting' | 'refused' | 'late' | 'superseded' | 'none';
  late?: boolean;
  /** Part of a learner's name, email or account. */
  learner?: string;
}

export const SORTS = { learner: 'LOWER(COALESCE(who.name, c.owner))', assignment: 'c.assignment', score: 'c.score', received: 'c.received_at', status: 'c.status' } as const;
export type Sort = keyof typeof SORTS;

/** One row of the grades table: a learner's counting submission for an assignment. */
export interface GradeLine {
  submission: string;
  owner: string;
  name: string | null;
  email: string | null;
  assignment: string;
  status: string;
  score: number | null;
  receivedAt: number;
  gradedAt: number | null;
  late: boolean;
  passback: string | null;
  passbackDetail: string | null;
}

export interface AssignmentCounts {
  assignment: string;
  submitted: number;
  learners: number;
  graded: number;
  failed: number;
  waiting: number;
  passback: { sent: number; waiting: number; refused: number; late: number; superseded: number };
}

type Course = Config['courses'][number];

/**
 * The course report for staff pages: counts, chart data and the grades table, each answered by
 * the database (grouped, or one page with LIMIT/OFFSET), so no page reads every row. The counting
 * submission of a learner's assignment is the one the assignment's `select` picks among graded
 * ones (the latest, or the best, the earliest of equal bests), else their latest — as the CSV.
 */
export class CourseReport {
  constructor(private readonly db: Db) {}

  /** The counting submissions of a course (one per learner and assignment), as a subquery. */
  private counting(course: Course, assignment?: string): Knex.QueryBuilder {
    const best = course.assignments.filter((a) => a.select === 'best').map((a) => a.id);
    const dues = course.assignments.filter((a) => a.due).map((a) => [a.id, a.due!.getTime()] as const);
    const isBest = best.length ? `s.assignment IN (${best.map(() => '?').join(',')})` : '1=0';
    const lateCase = dues.length ? `CASE ${dues.map(() => 'WHEN s.assignment = ? AND s.received_at > ? THEN 1').join(' ')} ELSE 0 END` : '0';
    const inner = this.db('submissions as s')
      .where('s.course', course.id)
      .select('s.id', 's.owner', 's.assignment', 's.status', 's.score', 's.received_at', 's.graded_at')
      .select(this.db.raw(`${lateCase} AS late`, dues.flatMap(([a, d]) => [a, d])))
      .select(
        this.db.raw(
          `ROW_NUMBER() OVER (PARTITION BY s.assignment, s.owner ORDER BY CASE WHEN s.status = 'graded' THEN 0 ELSE 1 END,
           CASE WHEN s.status = 'graded' AND ${isBest} THEN -s.score ELSE 0 END,
           CASE WHEN ${isBest} THEN s.received_at ELSE -s.received_at END, s.id) AS rn`,
          [...best, ...best],
        ),
      );
    if (assignment) inner.where('s.assignment', assignment);
    return this.db.select('*').from(inner.as('ranked')).where('rn', 1);
  }

  /** Per assignment: submissions by outcome, learners, and passbacks by state. */
  async counts(course: Course): Promise<AssignmentCounts[]> {
    const subs = (await this.db('submissions').where({ course: course.id }).select('assignment', 'status').count({ n: '*' }).groupBy('assignment', 'status')) as Array<{ assignment: string; status: string; n: number | string }>;
    const learners = (await this.db('submissions').where({ course: course.id }).select('assignment').countDistinct({ n: 'owner' }).groupBy('assignment')) as Array<{ assignment: string; n: number | string }>;
    const pbs = (await this.db('passbacks').where({ course: course.id }).select('assignment', 'status').count({ n: '*' }).groupBy('assignment', 'status')) as Array<{ assignment: string; status: string; n: number | string }>;
    const ids = [...new Set([...course.assignments.map((a) => a.id), ...subs.map((s) => s.assignment)])];
    return ids.map((id) => {
      const of = (statuses: string[]) => subs.filter((s) => s.assignment === id && statuses.includes(s.status)).reduce((n, s) => n + Number(s.n), 0);
      const pb = (statuses: string[]) => pbs.filter((s) => s.assignment === id && statuses.includes(s.status)).reduce((n, s) => n + Number(s.n), 0);
      return {
        assignment: id,
        submitted: subs.filter((s) => s.assignment === id).reduce((n, s) => n + Number(s.n), 0),
        learners: Number(learners.find((l) => l.assignment === id)?.n ?? 0),
        graded: of(['graded']),
        failed: of(FAILED_STATUSES),
        waiting: of(['queued', 'grading']),
        passback: { sent: pb(['sent']), waiting: pb(PASSBACK_WAITING), refused: pb(['failed']), late: pb(['late']), superseded: pb(['superseded']) },
      };
    });
  }

  /** Counting graded scores (fractions 0..1) bucketed in tenths: index 0..9 → learners. */
  async scoreBins(course: Course, assignment: string): Promise<number[]> {
    const rows = (await this.db
      .select(this.db.raw('CASE WHEN score >= 1 THEN 9 WHEN score <= 0 THEN 0 ELSE CAST(FLOOR(score * 10 + 0.000000001) AS INTEGER) END AS bin'))
      .count({ n: '*' })
      .from(this.counting(course, assignment).as('c'))
      .where('status', 'graded')
      .groupBy('bin')) as Array<{ bin: number | string; n: number | string }>;
    const bins = new Array<number>(10).fill(0);
    for (const r of rows) bins[Math.min(9, Math.max(0, Number(r.bin)))] = Number(r.n);
    return bins;
  }

  /** Per test (in the notebook's order), how many counting latest results passed it. */
  async testPassRates(course: Course, assignment: string): Promise<Array<{ name: string; passed: number; total: number }>> {
    const latest = this.db('results').select('submission_id').max({ id: 'id' }).groupBy('submission_id').as('lr');
    const rows = (await this.db('result_tests as rt')
      .join(latest, 'lr.id', 'rt.result_id')
      .join(this.counting(course, assignment).as('c'), 'c.id', 'lr.submission_id')
      .select('rt.name')
      .min({ pos: 'rt.position' })
      .select(this.db.raw('SUM(CASE WHEN rt.passed THEN 1 ELSE 0 END) AS passed'))
      .count({ total: '*' })
      .groupBy('rt.name')
      .orderBy('pos')) as Array<{ name: string; passed: number | string; total: number | string }>;
    return rows.map((r) => ({ name: r.name, passed: Number(r.passed), total: Number(r.total) }));
  }

  /** Every submission's arrival, counted per bucket (`bucket` ms; bucket number = time / bucket). */
  async arrivals(course: Course, assignment: string): Promise<{ bucket: number; counts: Array<{ bucket: number; n: number }> }> {
    const span = (await this.db('submissions').where({ course: course.id, assignment }).min({ first: 'received_at' }).max({ last: 'received_at' }).first()) as { first: number | string | null; last: number | string | null } | undefined;
    if (!span || span.first === null || span.last === null) return { bucket: 3_600_000, counts: [] };
    const bucket = bucketMs(Number(span.first), Number(span.last));
    const rows = (await this.db('submissions')
      .where({ course: course.id, assignment })
      .select(this.db.raw(`FLOOR(received_at / ${bucket}) AS b`))
      .count({ n: '*' })
      .groupBy('b')) as Array<{ b: number | string; n: number | string }>;
    return { bucket, counts: rows.map((r) => ({ bucket: Number(r.b), n: Number(r.n) })) };
  }

  /** One page of the grades table, and how many rows match in all. */
  async grades(course: Course, filter: GradeFilter, sort: Sort, desc: boolean, limit: number, offset: number): Promise<{ total: number; rows: GradeLine[] }> {
    const latestPassback = this.db('passbacks').select('submission_id').max({ id: 'id' }).groupBy('submission_id').as('lp');
    const names = this.db('identities').whereNotNull('hub_user').select('hub_user').max({ name: 'name' }).max({ email: 'email' }).groupBy('hub_user').as('who');
    const q = this.counting(course, filter.assignment)
      .clone()
      .as('c');
    const base = this.db
      .from(q)
      .leftJoin(latestPassback, 'lp.submission_id', 'c.id')
      .leftJoin('passbacks as p', 'p.id', 'lp.id')
      .leftJoin(names, 'who.hub_user', 'c.owner');
    if (filter.status === 'graded') base.where('c.status', 'graded');
    if (filter.status === 'failed') base.whereIn('c.status', FAILED_STATUSES);
    if (filter.status === 'waiting') base.whereIn('c.status', ['queued', 'grading']);
    if (filter.passback === 'sent') base.where('p.status', 'sent');
    if (filter.passback === 'waiting') base.whereIn('p.status', PASSBACK_WAITING);
    if (filter.passback === 'refused') base.where('p.status', 'failed');
    if (filter.passback === 'late') base.where('p.status', 'late');
    if (filter.passback === 'superseded') base.where('p.status', 'superseded');
    if (filter.passback === 'none') base.whereNull('p.id');
    if (filter.late !== undefined) base.where('c.late', filter.late ? 1 : 0);
    if (filter.learner) {
      const like = `%${filter.learner.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      base.where((w) => {
        void w
          .whereRaw(`LOWER(c.owner) LIKE ? ESCAPE '\\'`, [like])
          .orWhereRaw(`LOWER(who.name) LIKE ? ESCAPE '\\'`, [like])
          .orWhereRaw(`LOWER(who.email) LIKE ? ESCAPE '\\'`, [like]);
      });
    }
    const total = Number(((await base.clone().count({ n: '*' }).first()) as { n: number | string } | undefined)?.n ?? 0);
    const dir = desc ? 'desc' : 'asc';
    const rows = (await base
      .select('c.id', 'c.owner', 'c.assignment', 'c.status', 'c.score', 'c.received_at', 'c.graded_at', 'c.late', 'who.name', 'who.email', 'p.status as passback', 'p.last_error as passback_detail')
      // the expressions are constants of SORTS, the direction one of two words
      .orderByRaw(`(${SORTS[sort]}) IS NULL, ${SORTS[sort]} ${dir}, ${SORTS.learner}, c.assignment, c.id`)
      .limit(limit)
      .offset(offset)) as Array<Record<string, unknown>>;
    return {
      total,
      rows: rows.map((r) => ({
        submission: String(r.id),
        owner: String(r.owner),
        name: (r.name as string | null) ?? null,
        email: (r.email as string | null) ?? null,
        assignment: String(r.assignment),
        status: String(r.status),
        score: r.score === null ? null : Number(r.score),
        receivedAt: Number(r.received_at),
        gradedAt: r.graded_at === null ? null : Number(r.graded_at),
        late: Number(r.late) === 1,
        passback: (r.passback as string | null) ?? null,
        passbackDetail: (r.passback_detail as string | null) ?? null,
      })),
    };
  }
  /** The counting submission of every learner of an assignment (what "regrade the assignment" regrades). */
  async countingIds(course: Course, assignment: string): Promise<string[]> {
    return ((await this.db.select('id').from(this.counting(course, assignment).as('c')).orderBy('id')) as Array<{ id: string }>).map((r) => r.id);
  }

  /** Of an assignment's submissions, how many wait for grading (a grading job queued or running: a submission whose grade staff set keeps that grade meanwhile). */
  async waitingToGrade(course: Course, assignment: string): Promise<number> {
    const row = (await this.db('grading_jobs').where({ course: course.id, assignment }).whereIn('status', ['queued', 'running']).countDistinct({ n: 'submission_id' }).first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  }

  /** Every result of these submissions, newest first (how long grading took, and its message). */
  async results(submissionIds: string[]): Promise<Array<{ id: number; submissionId: string; status: string; score: number; durationMs: number; message: string | null; createdAt: number; worker: string | null }>> {
    if (!submissionIds.length) return [];
    const rows = (await this.db('results').whereIn('submission_id', submissionIds).orderBy('id', 'desc')) as Array<Record<string, unknown>>;
    return rows.map((r) => ({ id: Number(r.id), submissionId: String(r.submission_id), status: String(r.status), score: Number(r.score), durationMs: Number(r.duration_ms), message: (r.message as string | null) ?? null, createdAt: Number(r.created_at), worker: (r.worker as string | null) ?? null }));
  }

  /** Every passback of these submissions, oldest first, with the platform's last answer. */
  async passbacks(submissionIds: string[]): Promise<Array<{ id: number; submissionId: string; resultId: number; status: string; score: number; attempts: number; lastError: string | null; sentAt: number | null; createdAt: number }>> {
    if (!submissionIds.length) return [];
    const rows = (await this.db('passbacks').whereIn('submission_id', submissionIds).orderBy('id')) as Array<Record<string, unknown>>;
    return rows.map((r) => ({ id: Number(r.id), submissionId: String(r.submission_id), resultId: Number(r.result_id), status: String(r.status), score: Number(r.score), attempts: Number(r.attempts), lastError: (r.last_error as string | null) ?? null, sentAt: r.sent_at === null ? null : Number(r.sent_at), createdAt: Number(r.created_at) }));
  }

  /** A learner's name and email as their launches gave them. */
  async person(owner: string): Promise<{ name: string | null; email: string | null }> {
    const r = (await this.db('identities').where({ hub_user: owner }).max({ name: 'name' }).max({ email: 'email' }).first()) as { name: string | null; email: string | null } | undefined;
    return { name: r?.name ?? null, email: r?.email ?? null };
  }
}
