import { allAssignments, assignmentKey } from '../config/courses.js';
import type { Config } from '../config/schema.js';

/** What decides whether and how an assignment's grades are sent: its points, which score counts, its due date and late policy. */
export interface AssignmentPolicy {
  /** Points the assignment is worth: the score's `scoreMaximum`; `scoreGiven` = fraction × points. */
  points: number;
  select: 'latest' | 'best';
  due?: Date;
  late: 'accept' | 'reject';
  /** The line item's label when Gofer creates one (programmatic mode). */
  label: string;
}

/** The policy of an assignment of a course, or undefined when the configuration no longer has it. */
export type PolicyLookup = (course: string, assignment: string) => AssignmentPolicy | undefined;

/** Policies from the validated configuration (assignment ids, not aliases: submissions store ids). */
export function policyLookup(config: Pick<Config, 'courses'>): PolicyLookup {
  const policies = new Map<string, AssignmentPolicy>();
  for (const { course, assignment: a } of allAssignments(config)) {
    policies.set(assignmentKey(course.id, a.id), {
      points: a.points,
      select: a.select,
      late: a.late,
      label: a.id,
      ...(a.due ? { due: a.due } : {}),
    });
  }
  return (course, assignment) => policies.get(assignmentKey(course, assignment));
}

/** Received after the due date (the configured one, or the platform's end date of the line item). */
export function isLate(receivedAt: number, due: Date | undefined, endAt: number | null): boolean {
  return (due !== undefined && receivedAt > due.getTime()) || (endAt !== null && receivedAt > endAt);
}
