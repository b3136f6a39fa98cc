import { isUtf8 } from 'node:buffer';
import type { Config } from '../config/schema.js';
import { checkNotebook, checkNotebookData, type NotebookCheck } from '../grading/notebook.js';
import type { Clock, IdSource } from '../lib/clock.js';
import { ForbiddenError, RateLimitError, UnprocessableError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { resolveAssignment, resolveTarget } from './assignment.js';
import type { Identity } from './identity.js';
import { sha256 } from './identity.js';
import type { SubmissionStore } from './store.js';

/**
 * A notebook as it arrived: the bytes of an uploaded file, or the parsed `nb` of a JSON request
 * with, when they could be cut out of the body, its exact UTF-8 bytes there (and their text).
 */
export type ReceivedNotebook = Buffer | { parsed: unknown; sent?: SentNotebook };
export interface SentNotebook {
  bytes: Buffer;
  text: string;
}

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
   * `target` is set when the learner submits from an assignment's own page: that page, not the
   * notebook's metadata, says which assignment it is.
   */
  async submit(who: Identity, notebook: ReceivedNotebook, target?: { course: string; assignment: string }): Promise<Receipt> {
    const { config, submissions, clock } = this.deps;
    const check = examine(notebook);
    if (!check.ok) throw new UnprocessableError(check.message);
    const { course, assignment, section } = target
      ? resolveTarget(config, target, check.notebook.metadata)
      : resolveAssignment(config, check.notebook.metadata);
    const now = clock.now();
    if (assignment.due && assignment.late === 'reject' && now > assignment.due.getTime()) {
      throw new ForbiddenError(`The deadline for ${assignment.id} (${assignment.due.toISOString()}) has passed; late submissions are not accepted.`);
    }
    const outcome = await submissions.create(
      { id: this.deps.ids(), owner: who.name, course: course.id, assignment: assignment.id, section, notebook: check.text, sha256: check.digest },
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

/**
 * The checks, and the text stored with its sha256. The text is the notebook exactly as sent
 * (no second serialisation of a notebook of hundreds of KB while learners wait): the same
 * notebook sent twice the same way hashes the same, which is what duplicate detection needs.
 * Only a JSON request whose `nb` cannot be cut out of the body, or bytes that are not UTF-8,
 * are stored re-serialised.
 */
function examine(notebook: ReceivedNotebook): Exclude<NotebookCheck, { ok: true }> | (Extract<NotebookCheck, { ok: true }> & { text: string; digest: string }) {
  if (Buffer.isBuffer(notebook)) {
    const text = notebook.toString('utf8');
    const check = checkNotebook(text);
    return check.ok ? { ...check, text, digest: sha256(isUtf8(notebook) ? notebook : text) } : check;
  }
  const check = checkNotebookData(notebook.parsed);
  if (!check.ok) return check;
  if (notebook.sent) return { ...check, text: notebook.sent.text, digest: sha256(notebook.sent.bytes) };
  const text = JSON.stringify(notebook.parsed);
  return { ...check, text, digest: sha256(text) };
}
