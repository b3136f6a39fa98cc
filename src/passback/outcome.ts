import { gradeOf } from '../grading/scale.js';
import { backoffMs } from '../lib/lease-queue.js';
import type { AgsOutcome } from './ags-client.js';

/** What happened to one (identity, binding) pair of a row. */
export type PairOutcome = AgsOutcome | { kind: 'late'; detail: string } | { kind: 'waiting'; detail: string };

/** How a row ends its attempt: the outbox transition to make. */
export type Settlement =
  | { kind: 'sent'; note: string | null }
  | { kind: 'superseded'; reason: string }
  | { kind: 'late'; reason: string }
  | { kind: 'waiting'; reason: string; recheckAt: number }
  /** `attempted`: a request was made this time (a decision made without asking the platform is not an attempt). */
  | { kind: 'failed'; reason: string; attempted: boolean }
  | { kind: 'retry'; reason: string; at: number; attempt: number };

export interface SettlementPolicy {
  /** Sending attempts before a row fails for good. */
  maxAttempts: number;
  /** First retry delay; doubles each attempt. */
  retryDelayMs: number;
  /** Longest back-off between two attempts. */
  maxRetryDelayMs: number;
  /** When a waiting row is looked at again without a wake. */
  waitingRecheckMs: number;
  random: () => number;
}

const RANK: Record<PairOutcome['kind'], number> = { retry: 6, gone: 6, waiting: 5, failed: 4, late: 3, superseded: 2, delivered: 1 };

/**
 * A row's outcome from its pairs': the most pressing one (a pair to retry keeps the row alive;
 * delivered pairs answer "already exists" next time). Some pairs delivered and the others
 * superseded: the score is where it could go, so it is delivered, with the superseded detail as
 * its note.
 */
export function worst(outcomes: PairOutcome[]): PairOutcome {
  if (outcomes.length === 0) throw new Error('worst of no outcomes');
  let w = outcomes[0]!;
  for (const o of outcomes) if (RANK[o.kind] > RANK[w.kind]) w = o;
  if (w.kind === 'superseded' && outcomes.some((o) => o.kind === 'delivered')) return { kind: 'delivered', status: 200, note: w.detail };
  return w;
}

/**
 * The transition for a row whose attempt ended in `out`, having made `attempts` attempts before
 * this one. A retry past the last attempt fails for good; otherwise it waits an exponential
 * back-off with jitter, never less than the platform's Retry-After.
 */
export function settle(out: PairOutcome, attempts: number, now: number, p: SettlementPolicy): Settlement {
  switch (out.kind) {
    case 'delivered':
      return { kind: 'sent', note: out.note ?? null };
    case 'superseded':
      return { kind: 'superseded', reason: out.detail };
    case 'late':
      return { kind: 'late', reason: out.detail };
    case 'waiting':
      return { kind: 'waiting', reason: out.detail, recheckAt: now + p.waitingRecheckMs };
    case 'failed':
      // status 0: decided without asking the platform
      return { kind: 'failed', reason: out.detail, attempted: out.status !== 0 };
    case 'gone':
    case 'retry': {
      const attempt = attempts + 1;
      if (attempt >= p.maxAttempts) return { kind: 'failed', reason: `Gave up after ${attempt} attempts: ${out.detail}`, attempted: true };
      const retryAfter = out.kind === 'retry' ? out.retryAfterMs : undefined;
      return { kind: 'retry', reason: out.detail, at: now + backoffMs(attempt, p.retryDelayMs, p.maxRetryDelayMs, retryAfter, p.random), attempt };
    }
  }
}

/** What a learner's score on the platform is: `score` (0..1) of `points`, to six places. */
export function scoreGiven(score: number, points: number): number {
  return gradeOf(score, points).given;
}
