import type { Knex } from 'knex';

/**
 * A table of work rows leased to one holder at a time. Every transition is one statement guarded
 * by the lease: it changes the row only while `holder` still holds it (`locked_by`, in the leased
 * status), so a holder that lost its lease (it was too slow, another took the row over) changes
 * nothing and is told so.
 *
 * The table has an integer `id`, a `status`, `locked_by` and `locked_until`, and a column saying
 * when a ready row is due (`dueColumn`). Which rows a claim picks, and in which order, is the
 * table's own business: the owner passes the candidates' SELECT.
 */
export interface LeaseTable {
  table: string;
  /** The status a leased row has (`running`, `sending`). */
  leased: string;
  /** The status of a row that is due again (`queued`, `pending`). */
  ready: string;
  /** When a ready row is due (`run_at`, `next_attempt_at`). */
  dueColumn: string;
}

/** Columns and values to set besides the lease's own. */
export type RowUpdate = Record<string, unknown>;

export class LeaseQueue {
  constructor(private readonly t: LeaseTable) {}

  /**
   * Leases the rows `candidates` selects (a SELECT of ids, with its bindings) to `holder` until
   * `until`, in one statement, and returns the `returning` columns of each. `set` adds
   * assignments (`attempts = attempts + 1, claimed_at = ?`) with their bindings.
   */
  async claim(
    q: Knex | Knex.Transaction,
    holder: string,
    until: number,
    candidates: { sql: string; bindings: unknown[] },
    returning: string[],
    set: { sql: string; bindings: unknown[] } = { sql: '', bindings: [] },
  ): Promise<Array<Record<string, unknown>>> {
    const result = await q.raw(`UPDATE ${this.t.table} SET status = ?, locked_by = ?, locked_until = ?${set.sql ? `, ${set.sql}` : ''} WHERE id IN (${candidates.sql}) RETURNING ${returning.join(', ')}`, [
      this.t.leased,
      holder,
      until,
      ...set.bindings,
      ...candidates.bindings,
    ] as Knex.RawBinding[]);
    return (Array.isArray(result) ? result : result.rows) as Array<Record<string, unknown>>;
  }

  /** Extends the lease; false when `holder` no longer holds the row. */
  async renew(q: Knex | Knex.Transaction, id: number, holder: string, until: number): Promise<boolean> {
    return (await this.held(q, [id], holder).update({ locked_until: until })) === 1;
  }

  /** Ends the lease with `set` (a final status, or any other); false when `holder` no longer held it. */
  async finish(q: Knex | Knex.Transaction, id: number, holder: string, set: RowUpdate): Promise<boolean> {
    return (await this.held(q, [id], holder).update({ ...set, locked_by: null, locked_until: null })) === 1;
  }

  /** `finish` for many rows in one statement; returns the ids `holder` still held. */
  async finishMany(q: Knex | Knex.Transaction, ids: number[], holder: string, set: RowUpdate): Promise<number[]> {
    if (ids.length === 0) return [];
    const rows = (await this.held(q, ids, holder)
      .update({ ...set, locked_by: null, locked_until: null })
      .returning('id')) as Array<{ id: number } | number>;
    return rows.map((r) => Number(typeof r === 'object' ? r.id : r));
  }

  /** Ready again at `at` (a back-off); false when `holder` no longer held it. */
  retryAt(q: Knex | Knex.Transaction, id: number, holder: string, at: number, set: RowUpdate = {}): Promise<boolean> {
    return this.finish(q, id, holder, { ...set, status: this.t.ready, [this.t.dueColumn]: at });
  }

  /**
   * Given back (shutdown, a host that cannot do it): ready for any holder at once, in its old
   * place (it was due when claimed, and stays due from then). False when `holder` no longer held it.
   */
  release(q: Knex | Knex.Transaction, id: number, holder: string, set: RowUpdate = {}): Promise<boolean> {
    return this.finish(q, id, holder, { ...set, status: this.t.ready });
  }

  private held(q: Knex | Knex.Transaction, ids: number[], holder: string): Knex.QueryBuilder {
    return q(this.t.table).whereIn('id', ids).where({ locked_by: holder, status: this.t.leased });
  }
}

/**
 * The delay before attempt `attempts + 1`: `baseMs` doubled per attempt made, at most `maxMs`,
 * with ±25 % jitter (so work failing together is not retried together), and never sooner than
 * `notBeforeMs` (a platform's Retry-After).
 */
export function backoffMs(attempts: number, baseMs: number, maxMs = Infinity, notBeforeMs?: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(base * (0.75 + random() * 0.5));
  return Math.max(jittered, notBeforeMs ?? 0);
}
