import { zoneOf, type Config } from '../config/schema.js';
import { localText } from '../lib/time-zone.js';
import type { Clock, IdSource } from '../lib/clock.js';
import { ForbiddenError, GoferError, RateLimitError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics, SubmissionOutcome } from '../lib/metrics.js';
import { resolveAssignment, resolveTarget } from '../config/courses.js';
import { examinationError, type ExaminerPool, type ReceivedNotebook } from './examine.js';
import type { Identity } from './identity.js';
import type { SubmissionStore } from './store.js';

export interface Receipt {
  id: string;
  duplicate: boolean;
  course: string;
  assignment: string;
}

/**
 * Accepts a notebook from an identified learner: checks it, finds its assignment, applies the
 * deadline and rate rules, and stores it with its grading job before answering.
 */
export class Intake {
  constructor(
    private readonly deps: {
      config: Pick<Config, 'courses' | 'defaultCourse' | 'server' | 'queue'>;
      submissions: SubmissionStore;
      examiners: ExaminerPool;
      clock: Clock;
      ids: IdSource;
      log: Logger;
      /** Called after a job is stored, to wake in-process workers. */
      onQueued?: () => void;
      metrics?: Metrics;
    },
  ) {}

  /**
   * `target` is set when the learner submits from an assignment's own page: that page, not the
   * notebook's metadata, says which assignment it is.
   */
  async submit(who: Identity, notebook: ReceivedNotebook, target?: { course: string; assignment: string }): Promise<Receipt> {
    const count = (outcome: SubmissionOutcome): void => this.deps.metrics?.submissions.inc({ outcome });
    try {
      const receipt = await this.store(who, notebook, target);
      count(receipt.duplicate ? 'duplicate' : 'accepted');
      return receipt;
    } catch (err) {
      // refused: the learner's request (a notebook that is not one, late, too many, no such assignment); error: Gofer's side
      count(err instanceof GoferError && err.status < 500 ? 'refused' : 'error');
      throw err;
    }
  }

  private async store(who: Identity, notebook: ReceivedNotebook, target?: { course: string; assignment: string }): Promise<Receipt> {
    const { config, submissions, clock } = this.deps;
    const nb = await this.deps.examiners.examine(notebook);
    if (!nb.ok) throw examinationError(nb);
    const { course, assignment, section } = target ? resolveTarget(config, target, nb.metadata) : resolveAssignment(config, nb.metadata);
    const now = clock.now();
    if (assignment.due && assignment.late === 'reject' && now > assignment.due.getTime()) {
      const zone = zoneOf(course);
      throw new ForbiddenError(`The deadline for ${assignment.id} (${localText(assignment.due.getTime(), zone)} ${zone}) has passed; late submissions are not accepted.`);
    }
    const outcome = await submissions.create(
      { id: this.deps.ids(), owner: who.name, course: course.id, assignment: assignment.id, section, notebook: nb.text, sha256: nb.sha256 },
      {
        now,
        duplicateWindowMs: config.server.duplicateWindowSeconds * 1000,
        perMinute: config.server.submissionsPerMinute,
        maxAttempts: config.queue.maxAttempts,
      },
    );
    if (outcome.kind === 'rate_limited') {
      throw new RateLimitError(
        `You have submitted ${config.server.submissionsPerMinute} times in the last minute; wait ${outcome.retryAfterSeconds} s and submit again.`,
        outcome.retryAfterSeconds,
      );
    }
    if (outcome.kind === 'created') {
      this.deps.log.info('submission received', { submission: outcome.id, owner: who.name, course: course.id, assignment: assignment.id });
      this.deps.onQueued?.();
    }
    return { id: outcome.id, duplicate: outcome.kind === 'duplicate', course: course.id, assignment: assignment.id };
  }
}
