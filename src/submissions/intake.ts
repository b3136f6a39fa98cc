import type { Config } from '../config/schema.js';
import { checkNotebook, checkNotebookData } from '../grading/notebook.js';
import type { Clock, IdSource } from '../lib/clock.js';
import { ForbiddenError, RateLimitError, UnprocessableError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { resolveAssignment, resolveTarget } from './assignment.js';
import type { Identity } from './identity.js';
import { sha256 } from './identity.js';
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
      clock: Clock;
      ids: IdSource;
      log: Logger;
      /** Called after a job is stored, to wake in-process workers. */
      onQueued?: () => void;
    },
  ) {}

  /**
   * `notebook` is the parsed JSON of the notebook, or its raw bytes (file upload). `target` is
   * set when the learner submits from an assignment's own page: that page, not the notebook's
   * metadata, says which assignment it is.
   */
  async submit(who: Identity, notebook: unknown, target?: { course: string; assignment: string }): Promise<Receipt> {
    const { config, submissions, clock } = this.deps;
    if (notebook === undefined || notebook === null) {
      throw new UnprocessableError('The request has no notebook. Send {"nb": <the notebook>} as JSON, or upload the .ipynb file.');
    }
    const check = Buffer.isBuffer(notebook) ? checkNotebook(notebook) : checkNotebookData(notebook);
    if (!check.ok) throw new UnprocessableError(check.message);
    const { course, assignment, section } = target
      ? resolveTarget(config, target, check.notebook.metadata)
      : resolveAssignment(config, check.notebook.metadata);
    const now = clock.now();
    if (assignment.due && assignment.late === 'reject' && now > assignment.due.getTime()) {
      throw new ForbiddenError(`The deadline for ${assignment.id} (${assignment.due.toISOString()}) has passed; late submissions are not accepted.`);
    }
    // Store a canonical form so the same notebook sent twice (as JSON or as a file) hashes the same.
    const canonical = JSON.stringify(check.notebook);
    const outcome = await submissions.create(
      { id: this.deps.ids(), owner: who.name, course: course.id, assignment: assignment.id, section, notebook: canonical, sha256: sha256(canonical) },
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
