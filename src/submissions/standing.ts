import type { AssignmentPolicy } from '../passback/policy.js';
import { isLate } from '../passback/policy.js';
import { gradeView, type GradeView } from '../grading/scale.js';
import type { Submission } from './store.js';

export interface Standing {
  /** The assignment's rule: the latest submission counts, or the best so far. */
  counts: 'latest' | 'best';
  /** The submission whose grade is the one sent (null: none graded yet, or none may be sent). */
  countingSubmission: string | null;
  /** The grade edX is sent, on the assignment's scale (null: nothing to send yet). */
  edx: GradeView | null;
  /** One or two sentences saying the above to the learner. */
  sentence: string;
}


/**
 * The learner's standing after `sub`, from all their submissions of that assignment (oldest first)
 * and its policy: gofer sends the score of every graded submission that is not late under a
 * `late: reject` rule, and with `select: best` only one that beats the best so far.
 */
export function standing(sub: Submission, all: Submission[], policy: Pick<AssignmentPolicy, 'points' | 'select' | 'due' | 'late'>): Standing {
  const sendable = all.filter((s) => s.status === 'graded' && s.score !== null && !(policy.late === 'reject' && isLate(s.receivedAt, policy.due, null)));
  let counting: Submission | undefined;
  if (policy.select === 'latest') counting = sendable[sendable.length - 1];
  else for (const s of sendable) if (!counting || (s.score as number) > (counting.score as number)) counting = s;
  const edx = counting ? gradeView(counting.score, policy.points) : null;
  const rule = policy.select === 'latest' ? 'Your latest graded submission counts' : 'Your best graded submission counts';
  const sentences = [`${rule}.`];
  if (sub.status === 'graded' && policy.late === 'reject' && isLate(sub.receivedAt, policy.due, null)) {
    sentences.push('This one came after the due date, so it is not sent to edX.');
  }
  if (counting && edx) {
    sentences.push(counting.id === sub.id ? `edX is sent this one: ${edx.text}.` : `edX is sent ${edx.text}, from an earlier submission.`);
    if (edx.given === 0) sentences.push('edX does not show a score of 0 in its gradebook.');
  } else if (sub.status === 'queued' || sub.status === 'grading') {
    sentences.push('edX is sent a grade once this one is graded.');
  } else {
    sentences.push('edX has not been sent a grade for this assignment.');
  }
  return { counts: policy.select, countingSubmission: counting?.id ?? null, edx, sentence: sentences.join(' ') };
}
