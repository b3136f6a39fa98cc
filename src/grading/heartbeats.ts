import type { Db } from '../db/knex.js';

export interface Heartbeat {
  id: string;
  engine: string;
  engineState: string;
  workers: number;
  busy: number;
  startedAt: number;
  seenAt: number;
}

/** One row per worker process (`serve` with workers, `gofer worker`), renewed while it runs: hosts you can see. */
export class HeartbeatStore {
  constructor(private readonly db: Db) {}

  async beat(h: Heartbeat): Promise<void> {
    await this.db('worker_heartbeats')
      .insert({ id: h.id, engine: h.engine, engine_state: h.engineState, workers: h.workers, busy: h.busy, started_at: h.startedAt, seen_at: h.seenAt })
      .onConflict('id')
      .merge(['engine', 'engine_state', 'workers', 'busy', 'seen_at']);
  }

  /** A process that stops cleanly says so: only a host that went quiet keeps a stale row. */
  async remove(id: string): Promise<void> {
    await this.db('worker_heartbeats').where({ id }).delete();
  }

  /** Recent heartbeats first; rows older than `sinceMs` (long-gone processes) are left out. */
  async list(now: number, sinceMs: number): Promise<Heartbeat[]> {
    const rows = await this.db('worker_heartbeats').where('seen_at', '>=', now - sinceMs).orderBy('seen_at', 'desc');
    return rows.map((r) => ({
      id: r.id as string,
      engine: r.engine as string,
      engineState: r.engine_state as string,
      workers: Number(r.workers),
      busy: Number(r.busy),
      startedAt: Number(r.started_at),
      seenAt: Number(r.seen_at),
    }));
  }
}
