import type { AssignmentConfig, Config, CourseConfig } from '../config/schema.js';
import { UnprocessableError } from '../lib/errors.js';

export interface ResolvedAssignment {
  course: CourseConfig;
  assignment: AssignmentConfig;
  section: string | null;
}

/** What a learner can do when their notebook lost the assignment's metadata (docs/messages.md says why to staff). */
const USE_GIVEN = 'Submit the notebook you were given for the assignment (download it again and copy your work into it if you started from a new notebook).';

/**
 * Finds the configured assignment a notebook's metadata names. Metadata is untrusted text: it
 * only ever selects an entry of the configuration, it is never used as a path.
 */
export function resolveAssignment(config: Pick<Config, 'courses' | 'defaultCourse'>, metadata: Record<string, unknown>): ResolvedAssignment {
  const otter = isRecord(metadata.otter_service) ? metadata.otter_service : undefined;
  const source = otter ?? metadata;
  const where = otter ? 'metadata.otter_service' : 'metadata';
  const assignmentName = text(source.assignment, `${where}.assignment`) ?? (otter ? undefined : text(metadata.lab, 'metadata.lab'));
  if (!assignmentName) {
    throw new UnprocessableError(`This notebook does not say which assignment it is for. ${USE_GIVEN}`);
  }
  const courseName = text(source.course, `${where}.course`) ?? config.defaultCourse ?? (config.courses.length === 1 ? config.courses[0]!.id : undefined);
  if (!courseName) {
    throw new UnprocessableError(`This notebook does not say which course it is for. ${USE_GIVEN}`);
  }
  const course = config.courses.find((c) => c.id === courseName);
  if (!course) throw new UnprocessableError(`This notebook is for the course "${clip(courseName)}", which is not graded here. Check that you are submitting to the right course.`);
  const assignment = course.assignments.find((a) => a.id === assignmentName || a.aliases.includes(assignmentName));
  if (!assignment) {
    throw new UnprocessableError(`This course has no assignment "${clip(assignmentName)}". Check that you are submitting the notebook you were given for the assignment.`);
  }
  return { course, assignment, section: text(source.section, `${where}.section`) ?? assignment.section ?? null };
}

function text(value: unknown, key: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  // the learner is told what to do; `key` names the metadata field for staff reading the logs
  if (typeof value !== 'string') throw new UnprocessableError(`This notebook's assignment details are damaged. ${USE_GIVEN}`, { cause: new Error(`${key} is not text`) });
  return value.trim();
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The assignment a page names (an LTI launch's), with the section from the notebook when it has one. */
export function resolveTarget(config: Pick<Config, 'courses'>, target: { course: string; assignment: string }, metadata: Record<string, unknown>): ResolvedAssignment {
  const course = config.courses.find((c) => c.id === target.course);
  const assignment = course?.assignments.find((a) => a.id === target.assignment);
  if (!course || !assignment) throw new UnprocessableError(`The assignment "${target.assignment}" is not open for submissions here any more. Ask course staff.`);
  const section = typeof metadata.section === 'string' ? metadata.section : (assignment.section ?? null);
  return { course, assignment, section };
}
