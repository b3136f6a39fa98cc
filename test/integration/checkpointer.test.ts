import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WalCheckpointer } from '../../src/db/checkpointer.js';
import { createDb, type Db } from '../../src/db/knex.js';
import { silentLogger } from '../../src/lib/logger.js';

const size = (file: string): number => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

describe('WalCheckpointer: the SQLite log copied off the commit path', function () {
  this.timeout(30_000);
  let dir: string;
  let db: Db;
  let file: string;
  const checkpointers: WalCheckpointer[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gofer-ckpt-'));
    file = path.join(dir, 'gofer.sqlite');
    db = createDb({ dataDir: dir, database: { client: 'sqlite', pool: 1, filename: file } }, {}, { backgroundCheckpoints: true });
    await db.schema.createTable('blobs', (t) => {
      t.increments('id');
      t.text('body');
    });
  });
  afterEach(async () => {
    for (const c of checkpointers.splice(0)) await c.stop();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** 8 MB in 40 commits. */
  async function write(): Promise<void> {
    for (let i = 0; i < 40; i++) await db('blobs').insert({ body: String(i).padEnd(200 * 1024, 'x') });
  }

  async function until(what: () => boolean, ms: number): Promise<boolean> {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (what()) return true;
    return what();
  }

  it('leaves the log alone on the service connection, and copies it into the database file from its own', async () => {
    await write();
    // the service's connection never checkpoints: everything is still in the log
    expect(size(file)).to.be.below(1024 * 1024);
    expect(size(`${file}-wal`)).to.be.above(7 * 1024 * 1024);
    checkpointers.push(new WalCheckpointer(file, silentLogger(), { intervalMs: 50 }));
    expect(await until(() => size(file) > 7 * 1024 * 1024, 5000), 'database file holds the rows').to.equal(true);
    expect(await db('blobs').count({ n: '*' }).first()).to.deep.equal({ n: 40 });
  });

  it('lets the service connection restart the log once a checkpoint caught up, cut back to 64 MB', async () => {
    // 70 MB in 10 commits: the log outgrows 64 MB
    for (let i = 0; i < 10; i++) await db('blobs').insert(Array.from({ length: 35 }, (_, k) => ({ body: `${i}-${k}`.padEnd(200 * 1024, 'x') })));
    expect(size(`${file}-wal`)).to.be.above(70 * 1000 * 1000);
    const c = new WalCheckpointer(file, silentLogger(), { intervalMs: 60_000 });
    checkpointers.push(c);
    const { logPages, checkpointedPages } = await c.checkpoint();
    expect(checkpointedPages).to.equal(logPages);
    await db('blobs').insert({ body: 'after' });
    expect(size(`${file}-wal`)).to.be.at.most(64 * 1024 * 1024);
    expect(await db('blobs').count({ n: '*' }).first()).to.deep.equal({ n: 351 });
  });
});
