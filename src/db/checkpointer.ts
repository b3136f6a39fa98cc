import { createRequire } from 'node:module';
import type { Logger } from '../lib/logger.js';

/** The little of node-sqlite3's Database this uses. */
interface RawSqlite {
  all(sql: string, cb: (err: Error | null, rows: Array<Record<string, number>>) => void): void;
  exec(sql: string, cb: (err: Error | null) => void): void;
  close(cb: (err: Error | null) => void): void;
}

/**
 * Copies SQLite's write-ahead log into the database file from a connection of its own, on
 * libuv's pool, so that no commit waits for it. Left to SQLite, the commit that fills the log
 * (every 4 MB) copies it and syncs the database file before its learners are answered; a
 * spike of notebooks then spends a good part of its time there (bench:intake: 301 against 378
 * submissions a second). The service's own connection runs with `wal_autocheckpoint = 0`.
 *
 * Passive checkpoints run every `intervalMs`: they never take the write lock, so no writer
 * waits for them or fails on them. The service's connection restarts the log once a checkpoint
 * has caught up, and its `journal_size_limit` then shrinks the file, so a spike leaves no
 * oversized log behind.
 */
export class WalCheckpointer {
  private readonly conn: RawSqlite;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private failing = false;

  constructor(
    filename: string,
    private readonly log: Logger,
    private readonly opts: { intervalMs?: number } = {},
  ) {
    const sqlite3 = createRequire(import.meta.url)('sqlite3') as { Database: new (file: string) => RawSqlite };
    this.conn = new sqlite3.Database(filename);
    this.conn.exec('PRAGMA busy_timeout = 10000', () => undefined);
    this.timer = setInterval(() => {
      this.running ??= this.checkpoint().then(
        () => (this.running = undefined),
        () => (this.running = undefined),
      );
    }, opts.intervalMs ?? 100);
    this.timer.unref();
  }

  /** One passive checkpoint: the log's pages, and how many of them are in the database file. */
  checkpoint(): Promise<{ logPages: number; checkpointedPages: number }> {
    return new Promise((resolve) => {
      this.conn.all('PRAGMA wal_checkpoint(PASSIVE)', (err, rows) => {
        if (err) {
          // logged once per run of failures: the log then grows until checkpoints work again
          if (!this.failing) this.log.warn('could not checkpoint the SQLite log; it grows until this works again', { error: err.message });
          this.failing = true;
          return resolve({ logPages: 0, checkpointedPages: 0 });
        }
        if (this.failing) this.log.info('checkpointing the SQLite log works again');
        this.failing = false;
        const row = rows[0] ?? {};
        resolve({ logPages: Number(row.log ?? 0), checkpointedPages: Number(row.checkpointed ?? 0) });
      });
    });
  }

  /** Stops, after a last checkpoint, and closes its connection. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.checkpoint();
    await new Promise<void>((resolve) => this.conn.close(() => resolve()));
  }
}
