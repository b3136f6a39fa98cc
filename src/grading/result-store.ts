import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import type { GradingResult, TestResult } from './result.js';

/** Who produced a result: the worker (host/pid/loop) and the engine it graded on. */
export interface Producer {
  worker: string;
  engine: string | null;
}

/** A row of the `grades` view: gofer's gradebook.db shape. */
export interface LegacyGrade {
  userid: string;
  grade: number;
  section: string | null;
  lab: string;
  timestamp: string;
}

interface TestRow {
  result_id: number;
  position: number;
  name: string;
  points: number;
  max_points: number;
  passed: boolean | number;
  hidden: boolean | number;
  message: string | null;
}

/** Grading results and their per-test detail (`results`, `result_tests`, and the `grades` view over them). */
export class ResultStore {
  constructor(private readonly db: Db) {}

  /** Records a result inside `trx` (the transaction finishing its job); returns its id. */
  async insert(trx: Knex.Transaction, r: { submissionId: string; jobId: number; result: GradingResult; now: number; producer: Producer }): Promise<number> {
    const { result } = r;
    const [inserted] = await trx('results')
      .insert({
        submission_id: r.submissionId,
        job_id: r.jobId,
        status: result.status,
        score: result.score,
        points: result.points,
        max_points: result.maxPoints,
        message: result.message ?? null,
        duration_ms: Math.round(result.durationMs),
        cpu_ms: result.timing?.cpuMs ?? null,
        created_at: r.now,
        worker: r.producer.worker,
        engine: r.producer.engine,
      })
      .returning('id');
    const resultId = Number(typeof inserted === 'object' ? (inserted as { id: number }).id : inserted);
    if (result.tests.length) {
      await trx.batchInsert<TestRow>(
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
    return resultId;
  }

  /** Per-test detail of the submission's latest result. */
  async tests(submissionId: string): Promise<TestResult[]> {
    const latest = await this.db('results').select('id').where({ submission_id: submissionId }).orderBy('id', 'desc').first();
    if (!latest) return [];
    const rows = await this.db<TestRow>('result_tests').where({ result_id: latest.id }).orderBy('position');
    return rows.map(toTest);
  }

  /** `tests` of many submissions in two queries (a page's worth, not one query a submission). */
  async testsOf(submissionIds: string[]): Promise<Map<string, TestResult[]>> {
    const out = new Map<string, TestResult[]>();
    // SQLite takes at most 999 bound values a statement
    for (let i = 0; i < submissionIds.length; i += 500) {
      const latest = (await this.db('results').whereIn('submission_id', submissionIds.slice(i, i + 500)).groupBy('submission_id').select('submission_id').max({ id: 'id' })) as Array<{ submission_id: string; id: number }>;
      const ofResult = new Map(latest.map((r) => [Number(r.id), r.submission_id]));
      for (let j = 0; j < latest.length; j += 500) {
        const rows = await this.db<TestRow>('result_tests').whereIn('result_id', latest.slice(j, j + 500).map((r) => r.id)).orderBy([{ column: 'result_id' }, { column: 'position' }]);
        for (const row of rows) {
          const sub = ofResult.get(Number(row.result_id))!;
          (out.get(sub) ?? out.set(sub, []).get(sub)!).push(toTest(row));
        }
      }
    }
    return out;
  }

  /** Every graded result as gofer's gradebook.db had it (the `grades` view), optionally for one assignment (lab). */
  async legacyGrades(filter: { assignment?: string } = {}): Promise<LegacyGrade[]> {
    const q = this.db<LegacyGrade>('grades').select('userid', 'grade', 'section', 'lab', 'timestamp').orderBy([{ column: 'timestamp' }, { column: 'userid' }]);
    if (filter.assignment) q.where('lab', filter.assignment);
    return (await q) as LegacyGrade[];
  }
}

function toTest(r: TestRow): TestResult {
  return {
    name: r.name,
    points: r.points,
    maxPoints: r.max_points,
    passed: Boolean(r.passed),
    hidden: Boolean(r.hidden),
    ...(r.message ? { message: r.message } : {}),
  };
}
