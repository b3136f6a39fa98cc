import { UnprocessableError } from '../lib/errors.js';
import type { AssignmentConfig, Config, CourseConfig } from './schema.js';

/**
 * The one course/assignment lookup: every module that turns a course id and an assignment id
 * (or alias) into its configuration, or keys a map by the pair, goes through here.
 */

/** A map key for an assignment of a course (ids cannot contain NUL: they are YAML text). */
export function assignmentKey(course: string, assignment: string): string {
  return `${course}\u0000${assignment}`;
}

/** The configured course with this id. */
export function findCourse(config: Pick<Config, 'courses'>, course: string): CourseConfig | undefined {
  return config.courses.find((c) => c.id === course);
}

/** The course's assignment with this id, or with this alias when `aliases` (what notebooks and launches may name). */
export function assignmentOf(course: CourseConfig | undefined, name: string, o: { aliases: boolean }): AssignmentConfig | undefined {
  return course?.assignments.find((a) => a.id === name || (o.aliases && a.aliases.includes(name)));
}

/** The configured assignment `assignment` (an id, as submissions store it) of course `course`. */
export function findAssignment(config: Pick<Config, 'courses'>, course: string, assignment: string): { course: CourseConfig; assignment: AssignmentConfig } | undefined {
  const c = findCourse(config, course);
  const a = assignmentOf(c, assignment, { aliases: false });
  return c && a ? { course: c, assignment: a } : undefined;
}

/** The course whose LTI contexts (edX course keys) include this one. */
export function courseForContext(config: Pick<Config, 'courses'>, contextId: string | null): CourseConfig | undefined {
  return contextId ? config.courses.find((c) => c.contexts.includes(contextId)) : undefined;
}

/** Every configured assignment with its course. */
export function allAssignments(config: Pick<Config, 'courses'>): Array<{ course: CourseConfig; assignment: AssignmentConfig }> {
  return config.courses.flatMap((course) => course.assignments.map((assignment) => ({ course, assignment })));
}

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
  const course = findCourse(config, courseName);
  if (!course) throw new UnprocessableError(`This notebook is for the course "${clip(courseName)}", which is not graded here. Check that you are submitting to the right course.`);
  const assignment = assignmentOf(course, assignmentName, { aliases: true });
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
  const found = findAssignment(config, target.course, target.assignment);
  if (!found) throw new UnprocessableError(`The assignment "${target.assignment}" is not open for submissions here any more. Ask course staff.`);
  const section = typeof metadata.section === 'string' ? metadata.section : (found.assignment.section ?? null);
  return { ...found, section };
}
