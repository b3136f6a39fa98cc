import { assignmentKey, findAssignment } from '../config/courses.js';
import { zoneOf, type Config } from '../config/schema.js';
import { DEFAULT_TIME_ZONE, localText } from '../lib/time-zone.js';
import type { ResultStore } from '../grading/result-store.js';
import { formatGrade, gradeOf } from '../grading/scale.js';
import type { Submission, SubmissionStore } from '../submissions/store.js';

export interface GradeRow {
  course: string;
  assignment: string;
  learner: string;
  score: number | null;
  /** The grade on the assignment's scale (points out of its configured points), as sent to the platform. */
  grade: number | null;
  /** The assignment's points (what `grade` is out of). */
  outOf: number;
  /** The grade as people read it: "2.5 / 3 points (83%)". */
  gradeText: string;
  points: number | null;
  maxPoints: number | null;
  status: string;
  submittedAt: string;
  gradedAt: string;
  submission: string;
  /** The course's time zone (UTC when it sets none), and the two times on its wall clock ("2026-12-04 10:15"). */
  timeZone: string;
  submittedLocal: string;
  gradedLocal: string;
}

/**
 * One row per learner and assignment. The score is the one the assignment's `select` picks
 * among graded submissions (latest or best); a learner with none graded shows their latest
 * submission's status and no score — a timeout never hides an earlier real grade.
 */
export async function gradeRows(store: SubmissionStore, config: Pick<Config, 'courses'>, filter: { course?: string; assignment?: string }): Promise<GradeRow[]> {
  const subs = await store.list(filter);
  const groups = new Map<string, Submission[]>();
  for (const s of subs) {
    const k = `${assignmentKey(s.course, s.assignment)}\u0000${s.owner}`;
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(s);
  }
  const rows: GradeRow[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const found = findAssignment(config, first.course, first.assignment);
    const assignment = found?.assignment;
    const zone = found ? zoneOf(found.course) : DEFAULT_TIME_ZONE;
    const select = assignment?.select ?? 'latest';
    const outOf = assignment?.points ?? 1;
    const graded = list.filter((s) => s.status === 'graded');
    const chosen = graded.length
      ? select === 'best'
        ? graded.reduce((a, b) => ((b.score ?? 0) > (a.score ?? 0) ? b : a))
        : graded[graded.length - 1]!
      : list[list.length - 1]!;
    rows.push({
      course: chosen.course,
      assignment: chosen.assignment,
      learner: chosen.owner,
      score: chosen.score,
      grade: chosen.score === null ? null : gradeOf(chosen.score, outOf).given,
      outOf,
      gradeText: chosen.score === null ? '' : formatGrade(gradeOf(chosen.score, outOf)),
      points: chosen.points,
      maxPoints: chosen.maxPoints,
      status: chosen.status,
      submittedAt: new Date(chosen.receivedAt).toISOString(),
      gradedAt: chosen.gradedAt === null ? '' : new Date(chosen.gradedAt).toISOString(),
      submission: chosen.id,
      timeZone: zone,
      submittedLocal: localText(chosen.receivedAt, zone),
      gradedLocal: chosen.gradedAt === null ? '' : localText(chosen.gradedAt, zone),
    });
  }
  return rows.sort((a, b) => a.course.localeCompare(b.course) || a.assignment.localeCompare(b.assignment) || a.learner.localeCompare(b.learner));
}

/** A learner's name and email as their launches gave them, by hub name. */
export type People = ReadonlyMap<string, { name: string | null; email: string | null }>;

/** Names and emails by hub name, from the launches' identities (the first identity that has them). */
export function peopleOf(identities: ReadonlyArray<{ hubUser: string | null; name: string | null; email: string | null }>): People {
  const people = new Map<string, { name: string | null; email: string | null }>();
  for (const i of identities) {
    if (!i.hubUser) continue;
    const known = people.get(i.hubUser);
    people.set(i.hubUser, { name: known?.name ?? i.name, email: known?.email ?? i.email });
  }
  return people;
}

export function gradesCsv(rows: GradeRow[], people: People = new Map()): string {
  // later columns come last, so the columns before keep their places: grade and out_of (the
  // assignment's scale), then the learner's name and email from their launches, then the two
  // times on the wall clock of the course's time zone, named
  const header = ['course', 'assignment', 'learner', 'score', 'points', 'max_points', 'status', 'submitted_at', 'graded_at', 'submission', 'grade', 'out_of', 'name', 'email', 'time_zone', 'submitted_local', 'graded_local'];
  const lines = rows.map((r) => {
    const who = people.get(r.learner);
    return [r.course, r.assignment, r.learner, r.score, r.points, r.maxPoints, r.status, r.submittedAt, r.gradedAt, r.submission, r.grade, r.outOf, who?.name ?? null, who?.email ?? null, r.timeZone, r.submittedLocal, r.gradedLocal];
  });
  return toCsv(header, lines);
}

/**
 * gofer's gradebook.db dump: every graded result, `userid,grade,section,lab,timestamp`, read from
 * the `grades` view. That shape has no course, so it filters by assignment (lab) only.
 */
export async function legacyCsv(results: Pick<ResultStore, 'legacyGrades'>, filter: { assignment?: string }): Promise<string> {
  const rows = await results.legacyGrades(filter);
  return toCsv(
    ['userid', 'grade', 'section', 'lab', 'timestamp'],
    rows.map((r) => [r.userid, r.grade, r.section, r.lab, r.timestamp]),
  );
}

function toCsv(header: string[], rows: Array<Array<string | number | null>>): string {
  const cell = (v: string | number | null): string => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    // a leading = + - @ would run as a formula in a spreadsheet
    const safe = /^[=+\-@\t\r]/.test(s) && typeof v === 'string' ? `'${s}` : s;
    return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [header, ...rows].map((r) => r.map(cell).join(',')).join('\n') + '\n';
}
