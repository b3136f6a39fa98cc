import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import { isPostgres } from '../db/knex.js';
import { LeaseQueue } from '../lib/lease-queue.js';
import type { AssignmentPolicy } from './policy.js';

/**
 * waiting: no identity or binding yet (re-checked now and then, and at once on `wake`) ·
 * pending: due at next_attempt_at · sending: leased by a dispatcher · sent · superseded: the
 * platform already holds a newer score, or a newer grade replaced this one before it was sent ·
 * failed: the platform refused it, or every attempt failed · late: received after the due date
 * under `late: reject`, never sent.
 */
export type PassbackStatus = 'waiting' | 'pending' | 'sending' | 'sent' | 'superseded' | 'failed' | 'late';

export interface NewPassback {
  submissionId: string;
  resultId: number;
  owner: string;
  course: string;
  assignment: string;
  /** Fraction 0..1 of the assignment's points. */
  score: number;
  /** When the grade was made (epoch ms): the AGS timestamp. */
  gradedAt: number;
  /** When the submission was received (epoch ms): decides lateness. */
  receivedAt: number;
  policy: Pick<AssignmentPolicy, 'select' | 'due' | 'late'>;
  /** Staff decided this is the grade (an override, or the grade that counts once one is cleared): sent whatever `select` says of earlier grades. */
  decided?: boolean;
}

export type EnqueueOutcome =
  | { kind: 'enqueued'; id: number; status: 'pending' | 'late' }
  /** Nothing to send: under `best` not an improvement, under `latest` a later submission's grade is already there. */
  | { kind: 'skipped'; reason: string };

/** A row a dispatcher holds the lease of. */
export interface ClaimedPassback extends Omit<NewPassback, 'policy'> {
  id: number;
  /** Attempts to send made before this one (looking at a waiting row again is not one). */
  attempts: number;
}

/** One row as the instructor page shows it. */
export interface PassbackView extends ClaimedPassback {
  status: PassbackStatus;
  nextAttemptAt: number;
  /** Why it is waiting, late, superseded or failed, or the platform's last answer (a person can read it). */
  lastError: string | null;
  sentAt: number | null;
  createdAt: number;
}

export interface PassbackFilter {
  course?: string;
  assignment?: string;
  owner?: string;
  status?: PassbackStatus | PassbackStatus[];
  submissionIds?: string[];
}

/** Statuses whose score is, or will be, what the platform holds (the ones `best`/`latest` compare with). */
interface Row {
  id: number;
  submission_id: string;
  result_id: number;
  owner: string;
  course: string;
  assignment: string;
  score: number | string;
  graded_at: number | string;
  received_at: number | string;
  status: PassbackStatus;
  attempts: number;
  next_attempt_at: number | string;
  locked_by: string | null;
  locked_until: number | string | null;
  last_error: string | null;
  sent_at: number | string | null;
  created_at: number | string;
}

const lease = new LeaseQueue({ table: 'passbacks', leased: 'sending', ready: 'pending', dueColumn: 'next_attempt_at' });

const CLAIMED_COLUMNS = ['id', 'submission_id', 'result_id', 'owner', 'course', 'assignment', 'score', 'graded_at', 'received_at', 'attempts'];

const COUNTED: PassbackStatus[] = ['waiting', 'pending', 'sending', 'sent', 'superseded'];

/**
 * The passback outbox: one row per grade to send, written in the transaction that records the
 * grade and drained by dispatchers that claim rows with a lease, so a grade is never lost when a
 * process dies and is sent again (harmlessly: same timestamp) when a lease expires.
 */
export class PassbackOutbox {
  private readonly listeners = new Set<() => void>();

  constructor(private readonly db: Db) {}

  /**
   * Calls `listener` after the commit of every transaction that added a pending row (a dispatcher
   * in this process wakes up). Returns the unsubscribe function.
   */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Adds a grade to send, inside the transaction recording it. `best` adds only a score that
   * beats every score already queued or sent for the learner's assignment (edX keeps only the
   * last score it receives); `latest` adds every grade except one of an older submission whose
   * successor's grade is already queued (a slow regrade must not overwrite a newer grade).
   */
  async enqueue(trx: Knex.Transaction, p: NewPassback, now: number = p.gradedAt): Promise<EnqueueOutcome> {
    if (isPostgres(this.db)) await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`passback\n${p.owner}\n${p.course}\n${p.assignment}`]);
    const base = {
      submission_id: p.submissionId,
      result_id: p.resultId,
      owner: p.owner,
      course: p.course,
      assignment: p.assignment,
      score: p.score,
      graded_at: p.gradedAt,
      received_at: p.receivedAt,
      attempts: 0,
      next_attempt_at: now,
      created_at: now,
    };
    const { due, late } = p.policy;
    if (late === 'reject' && due && p.receivedAt > due.getTime()) {
      const id = await insertId(trx, {
        ...base,
        status: 'late',
        last_error: `Not sent: received ${new Date(p.receivedAt).toISOString()}, after the due date ${due.toISOString()}, and late work is not accepted (late: reject).`,
      });
      return { kind: 'enqueued', id, status: 'late' };
    }

    const prior = (await trx<Row>('passbacks')
      .where({ owner: p.owner, course: p.course, assignment: p.assignment })
      .whereIn('status', COUNTED)
      .select('score', 'received_at')) as Array<Pick<Row, 'score' | 'received_at'>>;
    if (p.decided) {
      // staff's decision: nothing queued or sent before outranks it
    } else if (p.policy.select === 'best') {
      const best = Math.max(...prior.map((r) => Number(r.score)));
      if (prior.length > 0 && p.score <= best) return { kind: 'skipped', reason: `not better than ${best}, already sent or queued (select: best)` };
    } else if (prior.some((r) => Number(r.received_at) > p.receivedAt)) {
      return { kind: 'skipped', reason: 'a later submission was graded first; its grade is the latest (select: latest)' };
    }

    // Older unsent grades would only be overwritten: retire them. Not under `reject`, where the
    // new grade may still turn out late against the platform's own due date.
    if (late === 'accept') {
      await trx('passbacks')
        .where({ owner: p.owner, course: p.course, assignment: p.assignment })
        .whereIn('status', ['pending', 'waiting'])
        .update({ status: 'superseded', last_error: 'Not sent: a newer grade replaced it before it was sent.', locked_by: null, locked_until: null });
    }
    // a decided grade whose result was queued before (the grade that counts again once an override
    // is cleared): its row is sent again, with the new timestamp, so the platform takes it as newest
    const again = p.decided ? ((await trx('passbacks').where({ result_id: p.resultId }).first('id')) as { id: number } | undefined) : undefined;
    let id: number;
    if (again) {
      id = Number(again.id);
      await trx('passbacks').where({ id }).update({ status: 'pending', score: p.score, graded_at: p.gradedAt, attempts: 0, next_attempt_at: now, last_error: null, locked_by: null, locked_until: null });
    } else {
      id = await insertId(trx, { ...base, status: 'pending' });
    }
    if (this.listeners.size > 0) {
      const listeners = [...this.listeners];
      trx.executionPromise.then(
        () => listeners.forEach((l) => l()),
        () => undefined,
      );
    }
    return { kind: 'enqueued', id, status: 'pending' };
  }

  /**
   * Atomically leases up to `limit` due rows (pending or waiting, or sending with an expired
   * lease) to this dispatcher. Attempts are counted when a request was made (the mark* calls),
   * not here: a row that turns out to be waiting has not been tried.
   */
  async claim(dispatcherId: string, now: number, leaseMs: number, limit = 1): Promise<ClaimedPassback[]> {
    // Expired leases first, then pending, then waiting rows, each read in the order of the
    // (status, next_attempt_at) index: an OR across statuses would make every claim sort all due
    // rows (thousands after an outage).
    const sources: Array<[string, string]> = [
      [`status = 'sending' AND locked_until < ?`, 'locked_until, id'],
      [`status = 'pending' AND next_attempt_at <= ?`, 'next_attempt_at, id'],
      [`status = 'waiting' AND next_attempt_at <= ?`, 'next_attempt_at, id'],
    ];
    const until = now + leaseMs;
    const rows: Array<Record<string, unknown>> = [];
    if (isPostgres(this.db)) {
      // FOR UPDATE SKIP LOCKED cannot apply to a UNION: one statement per source
      for (const [where, order] of sources) {
        if (rows.length >= limit) break;
        const candidates = { sql: `SELECT id FROM passbacks WHERE ${where} ORDER BY ${order} LIMIT ? FOR UPDATE SKIP LOCKED`, bindings: [now, limit - rows.length] };
        rows.push(...(await lease.claim(this.db, dispatcherId, until, candidates, CLAIMED_COLUMNS)));
      }
    } else {
      // SQLite has one writer: a single statement, so a claim costs one commit
      const union = sources.map(([where, order]) => `SELECT id FROM (SELECT id FROM passbacks WHERE ${where} ORDER BY ${order} LIMIT ?)`).join(' UNION ALL ');
      const candidates = { sql: `SELECT id FROM (${union}) LIMIT ?`, bindings: [...sources.flatMap(() => [now, limit]), limit] };
      rows.push(...(await lease.claim(this.db, dispatcherId, until, candidates, CLAIMED_COLUMNS)));
    }
    return rows.map((r) => toClaimed(r as unknown as Row)).sort((a, b) => a.id - b.id);
  }

  /** Extends a lease; false when this dispatcher no longer holds the row. */
  renew(id: number, dispatcherId: string, until: number): Promise<boolean> {
    return lease.renew(this.db, id, dispatcherId, until);
  }

  /** The platform holds this score; `note` says anything worth showing (e.g. a retried POST that had arrived). */
  markSent(id: number, dispatcherId: string, now: number, note: string | null = null): Promise<boolean> {
    return this.finish(id, dispatcherId, { status: 'sent', sent_at: now, last_error: note }, true);
  }

  /** markSent for many rows at once; returns the ids this dispatcher still held. */
  markSentMany(ids: number[], dispatcherId: string, now: number): Promise<number[]> {
    return lease.finishMany(this.db, ids, dispatcherId, { status: 'sent', sent_at: now, last_error: null, attempts: this.db.raw('attempts + 1') });
  }

  /** The platform already holds a newer score: nothing more to do. */
  markSuperseded(id: number, dispatcherId: string, reason: string): Promise<boolean> {
    return this.finish(id, dispatcherId, { status: 'superseded', last_error: reason }, true);
  }

  /** Given up for good; `reason` carries the platform's answer. `attempted`: a request was made this time. */
  markFailed(id: number, dispatcherId: string, reason: string, attempted = true): Promise<boolean> {
    return this.finish(id, dispatcherId, { status: 'failed', last_error: reason }, attempted);
  }

  /** Received after the due date under `late: reject`: kept, shown, never sent. */
  markLate(id: number, dispatcherId: string, reason: string): Promise<boolean> {
    return this.finish(id, dispatcherId, { status: 'late', last_error: reason });
  }

  /** No identity or binding yet: looked at again at `recheckAt`, or sooner on `wake`. */
  markWaiting(id: number, dispatcherId: string, reason: string, recheckAt: number): Promise<boolean> {
    return this.finish(id, dispatcherId, { status: 'waiting', last_error: reason, next_attempt_at: recheckAt });
  }

  /** Try again at `at` (back-off chosen by the dispatcher); the attempt counts. */
  retryAt(id: number, dispatcherId: string, at: number, reason: string): Promise<boolean> {
    return lease.retryAt(this.db, id, dispatcherId, at, { last_error: reason, attempts: this.db.raw('attempts + 1') });
  }

  /** Gives a row back untouched (shutdown): due at once, in its old place; the attempt does not count. */
  release(id: number, dispatcherId: string): Promise<boolean> {
    return lease.release(this.db, id, dispatcherId);
  }

  /** A learner launched or linked their hub account: their waiting grades are due now. Returns how many. */
  async wake(owner: string, now: number): Promise<number> {
    return this.db('passbacks').where({ owner, status: 'waiting' }).update({ status: 'pending', next_attempt_at: now });
  }

  /** An assignment got a binding (a launch of its component): its waiting grades are due now. */
  async wakeAssignment(course: string, assignment: string, now: number): Promise<number> {
    return this.db('passbacks').where({ course, assignment, status: 'waiting' }).update({ status: 'pending', next_attempt_at: now });
  }

  /**
   * Sends rows again now (an instructor's "resend"), with a fresh count of attempts: anything not
   * already on its way. The platform answers "already exists" for a score it has (counted as
   * sent) or "a newer score is there" (superseded); a late row is judged again by the dispatcher,
   * so it is sent only if the due date or the late policy changed since.
   */
  async requeue(ids: number[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    return this.db('passbacks')
      .whereIn('id', ids)
      .whereIn('status', ['failed', 'sent', 'superseded', 'late', 'waiting'])
      .update({ status: 'pending', attempts: 0, next_attempt_at: now, locked_by: null, locked_until: null });
  }

  async get(id: number): Promise<PassbackView | undefined> {
    return (await this.list({}, { ids: [id] }))[0];
  }

  /** Rows for the instructor page, newest first. */
  async list(filter: PassbackFilter = {}, opts: { limit?: number; ids?: number[] } = {}): Promise<PassbackView[]> {
    const q = this.db<Row>('passbacks as p')
      .select('p.*')
      .orderBy('p.id', 'desc');
    if (filter.course) q.where('p.course', filter.course);
    if (filter.assignment) q.where('p.assignment', filter.assignment);
    if (filter.owner) q.where('p.owner', filter.owner);
    if (filter.status) q.whereIn('p.status', Array.isArray(filter.status) ? filter.status : [filter.status]);
    if (filter.submissionIds) q.whereIn('p.submission_id', filter.submissionIds);
    if (opts.ids) q.whereIn('p.id', opts.ids);
    if (opts.limit) q.limit(opts.limit);
    return ((await q) as Row[]).map(toView);
  }

  /** Per submission, its newest passback row (a regrade adds a row): what the page shows next to a grade. */
  async bySubmission(submissionIds: string[]): Promise<Map<string, PassbackView>> {
    const out = new Map<string, PassbackView>();
    for (let i = 0; i < submissionIds.length; i += 500) {
      for (const v of await this.list({ submissionIds: submissionIds.slice(i, i + 500) })) if (!out.has(v.submissionId)) out.set(v.submissionId, v);
    }
    return out;
  }

  /** Counts by status, for health pages, benchmarks and tests. */
  async counts(): Promise<Partial<Record<PassbackStatus, number>>> {
    const rows = (await this.db<Row>('passbacks').select('status').count({ n: '*' }).groupBy('status')) as Array<{ status: PassbackStatus; n: number | string }>;
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  private finish(id: number, dispatcherId: string, update: Record<string, unknown>, attempted = false): Promise<boolean> {
    return lease.finish(this.db, id, dispatcherId, { ...update, ...(attempted ? { attempts: this.db.raw('attempts + 1') } : {}) });
  }
}

async function insertId(trx: Knex.Transaction, row: Record<string, unknown>): Promise<number> {
  const [inserted] = await trx('passbacks').insert(row).returning('id');
  return Number(typeof inserted === 'object' ? (inserted as { id: number }).id : inserted);
}

function toClaimed(r: Row): ClaimedPassback {
  return {
    id: Number(r.id),
    submissionId: String(r.submission_id),
    resultId: Number(r.result_id),
    owner: String(r.owner),
    course: String(r.course),
    assignment: String(r.assignment),
    score: Number(r.score),
    gradedAt: Number(r.graded_at),
    receivedAt: Number(r.received_at),
    attempts: Number(r.attempts),
  };
}

function toView(r: Row): PassbackView {
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    ...toClaimed(r),
    status: r.status,
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error ?? null,
    sentAt: num(r.sent_at),
    createdAt: Number(r.created_at),
  };
}
