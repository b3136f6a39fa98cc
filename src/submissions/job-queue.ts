import type { Db } from '../db/knex.js';
import { writeTransaction } from '../db/knex.js';
import type { AssignmentKey, Backlog, ClaimedJob, GradingJobs } from '../grading/jobs.js';
import type { GradingResult } from '../grading/result.js';
import { ResultStore, type Producer } from '../grading/result-store.js';
import { backoffMs } from '../lib/lease-queue.js';
import type { Logger } from '../lib/logger.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import type { PolicyLookup } from '../passback/policy.js';
import { GradingJobsTable, type LeasedJob } from './grading-jobs.js';
import { SubmissionStore } from './store.js';

/** What a learner reads when grading failed for good: no paths, sockets or error codes (those are in the job's last_error and the log). */
export const FAILED_MESSAGE = 'Gofer could not grade this submission. Your work is kept: submit again later, or ask course staff.';

/** What a learner is told when the course's set-up (not their notebook) stopped grading. */
export const SETUP_PROBLEM = "Gofer could not grade this submission because of a problem in the course's set-up. Course staff have been told; your work is kept.";

export interface JobQueueOptions {
  /** First retry delay after a failure; doubles each attempt, ±25 % jitter. */
  retryDelayMs: number;
  maxRunningPerLearner?: number;
  log?: Logger;
  maxEngineFailures?: number;
  /** With LTI: a graded result adds its passback row in the transaction recording it. */
  passback?: { outbox: PassbackOutbox; policy: PolicyLookup };
}

/**
 * The grading jobs of stored submissions, as the workers take them: claimed with a lease, renewed
 * while grading, completed together with the result (and its passback) in one transaction. A
 * worker that dies loses its lease and the job is claimed again; a worker that lost its lease
 * changes nothing: no result, no status.
 */
export class JobQueue implements GradingJobs {
  private readonly jobs: GradingJobsTable;
  private readonly submissions: SubmissionStore;
  private readonly results: ResultStore;

  constructor(
    private readonly db: Db,
    private readonly opts: JobQueueOptions,
  ) {
    this.jobs = new GradingJobsTable(db);
    this.submissions = new SubmissionStore(db);
    this.results = new ResultStore(db);
  }

  /**
   * Takes the next due job for this worker (see GradingJobsTable.claimNext for the order) and
   * marks its submission as being graded, in one transaction; then reads the notebook. A job
   * whose workers kept dying past its last attempt, or whose submission is gone, fails here.
   */
  async claim(workerId: string, now: number, leaseMs: number, skip: AssignmentKey[] = []): Promise<ClaimedJob | undefined> {
    for (;;) {
      const job = await writeTransaction(this.db, async (trx) => {
        await this.jobs.lockClaims(trx);
        const leased = await this.jobs.claimNext(trx, workerId, now, leaseMs, this.opts.maxRunningPerLearner ?? 1, skip);
        if (leased && leased.attempts <= leased.maxAttempts) await this.submissions.setStatus(trx, leased.submissionId, 'grading');
        return leased;
      });
      if (!job) return undefined;
      if (job.attempts > job.maxAttempts) {
        // Only a job whose workers kept dying gets here (a failure that throws is retried).
        await this.fail(job, workerId, `grading was interrupted ${job.maxAttempts} times (the grading process died)`, now);
        continue;
      }
      const [submission, notebook] = await Promise.all([this.submissions.get(job.submissionId), this.submissions.notebook(job.submissionId)]);
      if (!submission || notebook === undefined) {
        await this.fail(job, workerId, `submission ${job.submissionId} is missing`, now);
        continue;
      }
      return { ...job, submission, notebook: Buffer.from(notebook) };
    }
  }

  /** Extends the lease; false when this worker no longer holds the job. */
  renew(jobId: number, workerId: string, until: number): Promise<boolean> {
    return this.jobs.renew(jobId, workerId, until);
  }

  /**
   * Finishes the job, records the result and the submission's grade and, for a graded result
   * under LTI, adds its passback row: one transaction. False when the lease was lost.
   */
  async complete(jobId: number, workerId: string, submissionId: string, result: GradingResult, now: number, producer?: Producer): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      if (!(await this.jobs.done(trx, jobId, workerId, now))) return false;
      const resultId = await this.results.insert(trx, { submissionId, jobId, result, now, producer: producer ?? { worker: workerId, engine: null } });
      const counts = await this.submissions.recordResult(trx, submissionId, result, now);
      const passback = this.opts.passback;
      // A result that is not `graded` (timeout, broken notebook…) sends nothing; nor does one under a standing override.
      if (passback && result.status === 'graded' && counts) {
        const s = await this.submissions.getIn(trx, submissionId);
        if (!s) throw new Error(`submission ${submissionId} is missing`);
        // An assignment gone from the configuration is still queued: the dispatcher says why it cannot be sent.
        const policy = passback.policy(s.course, s.assignment) ?? { select: 'latest', late: 'accept' };
        await passback.outbox.enqueue(
          trx,
          { submissionId, resultId, owner: s.owner, course: s.course, assignment: s.assignment, score: result.score, gradedAt: now, receivedAt: s.receivedAt, policy },
          now,
        );
      }
      return true;
    });
  }

  /**
   * An infrastructure failure: try again later with exponential back-off, or, after the last
   * attempt, mark the submission failed with the reason. Never a score. 'lost': the lease was
   * lost, nothing changed.
   */
  async retryOrFail(job: ClaimedJob | LeasedJob, workerId: string, reason: string, now: number): Promise<'retry' | 'failed' | 'lost'> {
    if (job.attempts >= job.maxAttempts) return (await this.fail(job, workerId, reason, now)) ? 'failed' : 'lost';
    const at = now + backoffMs(job.attempts, this.opts.retryDelayMs);
    return writeTransaction(this.db, async (trx) => {
      if (!(await this.jobs.retryAt(trx, job.id, workerId, at, reason, now))) return 'lost' as const;
      await this.submissions.setStatus(trx, job.submissionId, 'queued');
      return 'retry' as const;
    });
  }

  /**
   * An instructor's mistake (a ConfigError: tests that cannot be used, an assignment no longer
   * configured): no retry can help, so the job fails now. The reason is for staff (the job's
   * last error, `problem`); the learner is told only that the course's set-up must be fixed.
   */
  async failForStaff(job: ClaimedJob, workerId: string, reason: string, now: number): Promise<void> {
    await this.fail(job, workerId, reason, now, SETUP_PROBLEM);
  }

  /** Gives a job back untouched (shutdown, a host that cannot grade it): claimable at once by any worker; the attempt does not count. */
  async release(jobId: number, workerId: string, now: number, reason?: string): Promise<void> {
    await this.giveBack(jobId, workerId, now, { ...(reason ? { reason } : {}) });
  }

  /**
   * The engine failed under the job: give it back at once, for a healthy host, without counting
   * the attempt. Only a job under which engines keep failing (it may be what breaks them) is
   * then treated as an ordinary failure, so it cannot circle forever.
   */
  async engineFailed(job: ClaimedJob | LeasedJob, workerId: string, reason: string, now: number): Promise<'released' | 'retry' | 'failed' | 'lost'> {
    const failures = await this.engineFailuresSoFar(job.id, workerId);
    if (failures === undefined) return 'lost';
    if (failures + 1 > (this.opts.maxEngineFailures ?? 10)) return this.retryOrFail(job, workerId, `${reason} (the engine failed under this job ${failures + 1} times)`, now);
    return (await this.giveBack(job.id, workerId, now, { reason, engineFailure: true })) ? 'released' : 'lost';
  }

  /** Counts by status, for health pages and tests. */
  counts(): Promise<Record<string, number>> {
    return this.jobs.counts();
  }

  /** Waiting, in back-off and running jobs, and the age of the oldest waiting one (for /health). */
  backlog(now: number): Promise<Backlog> {
    return this.jobs.backlog(now);
  }

  private async engineFailuresSoFar(jobId: number, workerId: string): Promise<number | undefined> {
    return (await this.jobs.held(this.db, jobId, workerId))?.engineFailures;
  }

  private giveBack(jobId: number, workerId: string, now: number, o: { reason?: string; engineFailure?: boolean }): Promise<boolean> {
    return writeTransaction(this.db, async (trx) => {
      const held = await this.jobs.held(trx, jobId, workerId);
      if (!held || !(await this.jobs.release(trx, jobId, workerId, now, o))) return false;
      await this.submissions.setStatus(trx, held.submissionId, 'queued');
      return true;
    });
  }

  /** Fails the job for good: the reason goes to the job row and the error log (someone must look), never to the learner. False when the lease was lost. */
  private async fail(job: { id: number; submissionId: string }, workerId: string, reason: string, now: number, learnerMessage = FAILED_MESSAGE): Promise<boolean> {
    const held = await writeTransaction(this.db, async (trx) => {
      if (!(await this.jobs.failed(trx, job.id, workerId, reason, now))) return false;
      await this.submissions.recordFailure(trx, job.submissionId, learnerMessage, now);
      return true;
    });
    if (held) this.opts.log?.error('grading failed for good', { job: job.id, submission: job.submissionId, reason });
    return held;
  }
}
