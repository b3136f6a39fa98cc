import type { Binding } from '../lti/store.js';
import type { PassbackView } from './outbox.js';
import { isLate, type AssignmentPolicy } from './policy.js';

/** What the instructor page says about a grade's passback: a short state and the sentences behind it. */
export interface PassbackNotice {
  state: 'sent' | 'sending' | 'waiting' | 'retrying' | 'not sent' | 'failed';
  sentences: string[];
}

/** What edX will do with grades sent to a component, as far as its line item (read at a launch) tells. */
export interface PlatformNotice {
  /** true: edX will not record them; false: it may not (it depends on a setting the tool cannot see). */
  certain: boolean;
  sentence: string;
}

/**
 * edX keeps every score it accepts but records (publishes) it only under conditions: the line item
 * tells the component's weight (its scoreMaximum) and due date (its endDateTime). Whether the
 * component accepts grades past due, or is graded at all, it does not tell.
 */
export function platformNotice(b: Pick<Binding, 'scoreMaximum' | 'endAt'>, now: number): PlatformNotice | null {
  if (b.scoreMaximum === 0) {
    return { certain: true, sentence: "edX will not record these grades: the component's maximum score is 0 (its weight in Studio is 0), so a grade counts for nothing there. The course team must give the component a weight." };
  }
  if (b.endAt !== null && now > b.endAt) {
    return {
      certain: false,
      sentence: `The component's due date in edX (${new Date(b.endAt).toISOString()}) has passed: edX records a grade sent now only if the component accepts grades past due (Studio's default).`,
    };
  }
  return null;
}

/**
 * Turns an outbox row into words for course staff, including what edX does with a delivered
 * score that Gofer cannot change: a 0 is stored but never shown, and a score past the due date is
 * shown only when the component accepts grades past due.
 */
export function passbackNotice(v: PassbackView, policy?: Pick<AssignmentPolicy, 'due'>, platformEndAt: number | null = null): PassbackNotice {
  const sentences: string[] = [];
  let state: PassbackNotice['state'];
  switch (v.status) {
    case 'sent':
      state = 'sent';
      sentences.push(`Sent to the platform${v.sentAt ? ` at ${new Date(v.sentAt).toISOString()}` : ''}.`);
      if (v.lastError) sentences.push(v.lastError);
      if (v.score === 0) sentences.push('edX stores a score of 0 but does not show it in its gradebook (an edX bug): the grade there stays empty.');
      if (isLate(v.receivedAt, policy?.due, platformEndAt)) sentences.push('Received after the due date: edX shows it only if the component accepts grades past due (the Studio default).');
      break;
    case 'sending':
      state = 'sending';
      sentences.push('Being sent now.');
      break;
    case 'pending':
      state = v.attempts > 0 ? 'retrying' : 'sending';
      if (v.attempts > 0) sentences.push(`Attempt ${v.attempts} failed; next attempt at ${new Date(v.nextAttemptAt).toISOString()}.`);
      if (v.lastError) sentences.push(v.lastError);
      break;
    case 'waiting':
      state = 'waiting';
      sentences.push(v.lastError ?? 'Waiting for the learner or the assignment to be known on the platform.');
      break;
    case 'superseded':
    case 'late':
      state = 'not sent';
      if (v.lastError) sentences.push(v.lastError);
      break;
    case 'failed':
      state = 'failed';
      sentences.push(v.lastError ?? 'The platform refused it.');
      break;
  }
  return { state, sentences };
}
