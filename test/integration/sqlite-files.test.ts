import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb, migrate, type Db } from '../../src/db/knex.js';

const mode = (file: string): string => (statSync(file).mode & 0o777).toString(8);

describe('the SQLite files are owner-only (0600)', function () {
  this.timeout(30_000);
  let dir: string;
  let filename: string;
  const open: Db[] = [];
  const connect = (): Db => {
    const db = createDb({ database: { client: 'sqlite', filename, pool: 1 }, dataDir: dir });
    open.push(db);
    return db;
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gofer-mode-'));
    filename = path.join(dir, 'gofer.sqlite');
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((db) => db.destroy()));
  });

  it('creates the database and its -wal and -shm files 0600', async () => {
    const db = connect();
    await migrate(db);
    await db('api_tokens').insert({ owner: 'ada', token_sha256: 'a'.repeat(64), created_at: 1 });
    for (const file of [filename, `${filename}-wal`, `${filename}-shm`]) {
      expect(existsSync(file), file).to.equal(true);
      expect(mode(file), file).to.equal('600');
    }
  });

  it('narrows files an earlier start left readable by others', async () => {
    const first = connect();
    await migrate(first);
    // the first connection stays open, so its -wal and -shm stay on disk
    for (const file of [filename, `${filename}-wal`, `${filename}-shm`]) chmodSync(file, 0o644);
    const second = connect();
    expect(await second('api_tokens').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
    for (const file of [filename, `${filename}-wal`, `${filename}-shm`]) expect(mode(file), file).to.equal('600');
  });
});
