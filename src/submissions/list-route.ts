import { findAssignment } from '../config/courses.js';
import type { Request, Response } from 'express';
import { STATUSES } from '../grading/result.js';
import { gradeOf } from '../grading/scale.js';
import { InputError } from '../lib/errors.js';
import { identify, isInstructor, type IntakeDeps } from './routes.js';

const LIST_STATUSES = ['queued', 'grading', ...STATUSES, 'failed'];
const MAX_PER_PAGE = 500;

/**
 * `GET /api/v1/submissions?course=&assignment=&learner=&status=&page=&per_page=`: submissions,
 * newest first, one page at a time, each with its passback state. An instructor of `course` (or
 * an admin) sees every learner of it; anyone else sees only their own submissions, and naming
 * another learner is refused.
 */
export function listSubmissions(deps: IntakeDeps): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    const who = await identify(req, deps);
    const one = (name: string): string | undefined => {
      const v = req.query[name];
      if (v === undefined || v === '') return undefined;
      if (typeof v !== 'string') throw new InputError(`Give "${name}" once.`);
      return v.slice(0, 200);
    };
    const course = one('course');
    const assignment = one('assignment');
    const learner = one('learner');
    const status = one('status');
    if (course && !deps.config.courses.some((c) => c.id === course)) throw new InputError(`There is no course "${course}".`);
    if (status && !LIST_STATUSES.includes(status)) throw new InputError(`"status" must be one of ${LIST_STATUSES.join(', ')}; got "${status}".`);
    const number = (name: string, dflt: number, max: number): number => {
      const v = one(name) ?? String(dflt);
      if (!/^[1-9][0-9]{0,6}$/.test(v) || Number(v) > max) throw new InputError(`"${name}" must be a whole number from 1 to ${max}; got "${v}".`);
      return Number(v);
    };
    const page = number('page', 1, 1_000_000);
    const perPage = number('per_page', 50, MAX_PER_PAGE);
    const instructor = course !== undefined && isInstructor(who, course, deps.config);
    if (learner && learner !== who.name && !instructor) {
      throw new InputError(course ? `Only instructors of ${course} may list another learner's submissions.` : "Name the course (course=…) to list another learner's submissions as its instructor.");
    }
    const owner = instructor ? learner : who.name;
    const { total, rows } = await deps.submissions.page({ ...(course ? { course } : {}), ...(assignment ? { assignment } : {}), ...(owner ? { owner } : {}), ...(status ? { status } : {}) }, perPage, (page - 1) * perPage);
    const states = deps.passbacks ? await deps.passbacks.bySubmission(rows.map((r) => r.id)) : new Map();
    const points = (c: string, a: string) => findAssignment(deps.config, c, a)?.assignment.points ?? 1;
    const next = page * perPage < total ? new URLSearchParams({ ...(req.query as Record<string, string>), page: String(page + 1), per_page: String(perPage) }).toString() : null;
    res.json({
      total,
      page,
      perPage,
      next: next ? `/api/v1/submissions?${next}` : null,
      submissions: rows.map((s) => {
        const pb = states.get(s.id);
        return {
          id: s.id,
          owner: s.owner,
          course: s.course,
          assignment: s.assignment,
          status: s.status,
          score: s.score,
          grade: s.status === 'graded' && s.score !== null ? gradeOf(s.score, points(s.course, s.assignment)) : null,
          receivedAt: new Date(s.receivedAt).toISOString(),
          gradedAt: s.gradedAt === null ? null : new Date(s.gradedAt).toISOString(),
          url: `/api/v1/submissions/${s.id}`,
          passback: pb ? { status: pb.status, sentAt: pb.sentAt === null ? null : new Date(pb.sentAt).toISOString(), detail: pb.lastError } : null,
        };
      }),
    });
  };
}
