import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { Config } from '../config/schema.js';
import { readEnvironment, type Environment } from '../config/load.js';
import { ConfigError } from '../lib/errors.js';
import { migrationSource } from './migrations.js';

export type Db = Knex;

/** PostgreSQL's connection string: database.url, else $DATABASE_URL. */
export function databaseUrl(config: Pick<Config, 'database'>, env: Environment = readEnvironment()): string {
  const url = config.database.url ?? env.DATABASE_URL;
  if (!url) throw new ConfigError('database.client is pg but no database.url (or DATABASE_URL) is set.');
  return url;
}

/**
 * The one database: SQLite (a file in the data directory, WAL, busy timeout, full sync so an
 * acknowledged submission survives a crash) or PostgreSQL.
 */
export function createDb(
  config: Pick<Config, 'database' | 'dataDir'>,
  env: Environment = readEnvironment(),
  opts: { /** A WalCheckpointer copies the log; this connection never does. */ backgroundCheckpoints?: boolean } = {},
): Db {
  const db = config.database;
  if (db.client === 'pg') {
    return knexFactory({ client: 'pg', connection: databaseUrl(config, env), pool: { min: 0, max: db.pool } });
  }
  const filename = sqliteFile(config);
  mkdirSync(path.dirname(filename), { recursive: true });
  keepPrivate(filename);
  // a log restarted after a spike is cut back to 64 MB
  const checkpoints = opts.backgroundCheckpoints ? ' PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;' : '';
  return knexFactory({
    client: 'sqlite3',
    connection: { filename },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      // SQLite's own 4 KB pages. With notebooks in a table of their own, 64 KB pages were no
      // faster in a spike (bench:intake: 304 against 291 submissions/s, within the noise) and
      // wrote twice the bytes for a notebook committed alone (1,010 against 494 KB).
      afterCreate(conn: { exec(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void) {
        conn.exec('PRAGMA cache_size = -65536; PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;' + checkpoints, (err) => done(err, conn));
      },
    },
  });
}

/** The files SQLite keeps beside its database file. */
const SQLITE_COMPANIONS = ['-wal', '-shm', '-journal'];

/**
 * Makes the SQLite database owner-only (0600), like the secret files: it holds notebooks,
 * grades, hashed API tokens and ltijs's keys. The file is created 0600 before SQLite opens it,
 * and SQLite creates its -wal, -shm and -journal files with the database file's mode; files
 * left by an earlier start with a wider mode are narrowed.
 */
export function keepPrivate(filename: string): void {
  closeSync(openSync(filename, 'a', 0o600));
  for (const file of [filename, ...SQLITE_COMPANIONS.map((s) => filename + s)]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

/** The SQLite database file of a configuration. */
export function sqliteFile(config: Pick<Config, 'database' | 'dataDir'>): string {
  return config.database.filename ? path.resolve(config.database.filename) : path.join(config.dataDir, 'gofer.sqlite');
}

/** Applies every pending migration; returns the names applied. */
export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

/**
 * A transaction that reads before it writes. On SQLite it takes the write lock first (what
 * BEGIN IMMEDIATE does; knex only says BEGIN): otherwise a commit by another connection (a
 * `gofer worker`, a `gofer token create`) between the read and the first write fails the
 * transaction at once with SQLITE_BUSY instead of letting it wait its turn. PostgreSQL needs
 * nothing.
 */
export function writeTransaction<T>(db: Db, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.transaction(async (trx) => {
    if (!isPostgres(db)) await trx.raw('UPDATE knex_migrations SET id = id WHERE 0');
    return work(trx);
  });
}

export function isPostgres(db: Db): boolean {
  return db.client.config.client === 'pg';
}
