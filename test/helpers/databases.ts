import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { createDb, migrate, type Db } from '../../src/db/knex.js';

export type Engine = 'sqlite' | 'pg';
export const ENGINES: Engine[] = ['sqlite', 'pg'];

/** The PostgreSQL server the suite uses; .ci/run starts one and sets this. */
export function pgUrl(): string {
  const url = process.env.GOFER_TEST_PG_URL;
  if (!url) throw new Error('GOFER_TEST_PG_URL is not set: the PostgreSQL tests need a server (.ci/run starts one).');
  return url;
}

/** A fresh, migrated database on the engine; `drop()` removes it. */
export async function freshDb(engine: Engine): Promise<{ db: Db; url?: string; filename?: string; drop(): Promise<void> }> {
  if (engine === 'sqlite') {
    const filename = path.join(mkdtempSync(path.join(tmpdir(), 'gofer-db-')), 'gofer.sqlite');
    const db = createDb({ database: { client: 'sqlite', filename, pool: 1 }, dataDir: path.dirname(filename) });
    await migrate(db);
    return { db, filename, drop: () => db.destroy() };
  }
  const admin = knexFactory({ client: 'pg', connection: pgUrl(), pool: { min: 0, max: 1 } });
  const name = `gofer_test_${randomBytes(6).toString('hex')}`;
  try {
    await admin.raw(`CREATE DATABASE ${name}`);
  } catch (err) {
    await admin.destroy();
    throw new Error(`cannot reach the PostgreSQL server at GOFER_TEST_PG_URL: ${(err as Error).message}`);
  }
  const u = new URL(pgUrl());
  u.pathname = `/${name}`;
  const url = u.toString();
  const db = createDb({ database: { client: 'pg', url, pool: 10 }, dataDir: tmpdir() });
  await migrate(db);
  return {
    db,
    url,
    drop: async () => {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}
