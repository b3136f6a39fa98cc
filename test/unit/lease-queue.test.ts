import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { backoffMs, LeaseQueue } from '../../src/lib/lease-queue.js';

describe('backoffMs', () => {
  it('doubles per attempt from the base, with ±25 % jitter', () => {
    expect(backoffMs(1, 1000, 60_000, undefined, () => 0.5)).to.equal(1000);
    expect(backoffMs(3, 1000, 60_000, undefined, () => 0.5)).to.equal(4000);
    expect(backoffMs(3, 1000, 60_000, undefined, () => 0)).to.equal(3000);
    expect(backoffMs(3, 1000, 60_000, undefined, () => 1)).to.equal(5000);
  });

  it('stops growing at the maximum, and has none unless given one', () => {
    expect(backoffMs(20, 1000, 60_000, undefined, () => 0.5)).to.equal(60_000);
    expect(backoffMs(11, 1000, undefined, undefined, () => 0.5)).to.equal(1_024_000);
  });

  it('never comes sooner than the Retry-After it is given', () => {
    expect(backoffMs(1, 1000, 60_000, 30_000, () => 0.5)).to.equal(30_000);
    expect(backoffMs(5, 1000, 60_000, 30, () => 0.5)).to.equal(16_000);
  });

  it('treats attempt 0 like attempt 1', () => {
    expect(backoffMs(0, 1000, 60_000, undefined, () => 0.5)).to.equal(1000);
  });
});

describe('LeaseQueue transitions (SQLite in memory)', () => {
  let db: Knex;
  const q = new LeaseQueue({ table: 'work', leased: 'busy', ready: 'ready', dueColumn: 'due_at' });
  const candidates = (now: number) => ({ sql: `SELECT id FROM work WHERE (status = 'ready' AND due_at <= ?) OR (status = 'busy' AND locked_until < ?) ORDER BY id LIMIT 1`, bindings: [now, now] });
  const row = async (id: number) => (await db('work').where({ id }).first()) as { status: string; locked_by: string | null; locked_until: number | null; due_at: number; tries: number };

  beforeEach(async () => {
    db = knexFactory({ client: 'sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
    await db.schema.createTable('work', (t) => {
      t.increments('id');
      t.string('status').notNullable();
      t.string('locked_by').nullable();
      t.bigInteger('locked_until').nullable();
      t.bigInteger('due_at').notNullable();
      t.integer('tries').notNullable().defaultTo(0);
    });
    await db('work').insert([{ status: 'ready', due_at: 0 }, { status: 'ready', due_at: 500 }]);
  });
  afterEach(() => db.destroy());

  it('claims one due row for its holder, with the extra assignments, and returns the asked columns', async () => {
    const rows = await q.claim(db, 'w1', 1100, candidates(100), ['id', 'tries'], { sql: 'tries = tries + ?', bindings: [1] });
    expect(rows).to.deep.equal([{ id: 1, tries: 1 }]);
    expect(await row(1)).to.include({ status: 'busy', locked_by: 'w1', locked_until: 1100 });
    expect(await row(2)).to.include({ status: 'ready', locked_by: null });
  });

  it('changes nothing for a holder that lost the lease, and tells it so', async () => {
    await q.claim(db, 'w1', 1100, candidates(100), ['id']);
    // the lease expired and another holder took the row over
    await q.claim(db, 'w2', 3000, candidates(2000), ['id']);
    expect(await q.renew(db, 1, 'w1', 5000)).to.equal(false);
    expect(await q.finish(db, 1, 'w1', { status: 'done' })).to.equal(false);
    expect(await q.retryAt(db, 1, 'w1', 9000)).to.equal(false);
    expect(await q.release(db, 1, 'w1')).to.equal(false);
    expect(await q.finishMany(db, [1], 'w1', { status: 'done' })).to.deep.equal([]);
    expect(await row(1)).to.include({ status: 'busy', locked_by: 'w2', locked_until: 3000 });
  });

  it('renews, then finishes with the lease cleared', async () => {
    await q.claim(db, 'w1', 1100, candidates(100), ['id']);
    expect(await q.renew(db, 1, 'w1', 5000)).to.equal(true);
    expect((await row(1)).locked_until).to.equal(5000);
    expect(await q.finish(db, 1, 'w1', { status: 'done' })).to.equal(true);
    expect(await row(1)).to.include({ status: 'done', locked_by: null, locked_until: null });
    expect(await q.renew(db, 1, 'w1', 6000), 'a finished row has no lease to renew').to.equal(false);
  });

  it('retryAt makes the row ready again only at the given time', async () => {
    await q.claim(db, 'w1', 1100, candidates(100), ['id']);
    expect(await q.retryAt(db, 1, 'w1', 9000, { tries: 7 })).to.equal(true);
    expect(await row(1)).to.include({ status: 'ready', due_at: 9000, locked_by: null, locked_until: null, tries: 7 });
    expect(await q.claim(db, 'w2', 1200, candidates(200), ['id']), 'row 1 is in back-off, row 2 due at 500').to.deep.equal([]);
    expect(await q.claim(db, 'w2', 1600, candidates(600), ['id'])).to.deep.equal([{ id: 2 }]);
    expect(await q.claim(db, 'w3', 10_000, candidates(9000), ['id'])).to.deep.equal([{ id: 1 }]);
  });

  it('release gives the row back in its old place, for another holder to claim at once', async () => {
    await q.claim(db, 'w1', 1100, candidates(600), ['id']);
    expect(await q.release(db, 1, 'w1', { tries: 3 })).to.equal(true);
    expect(await row(1)).to.include({ status: 'ready', due_at: 0, locked_by: null, locked_until: null, tries: 3 });
    expect(await q.claim(db, 'w2', 1200, candidates(600), ['id']), 'row 1 (due at 0) before row 2 (due at 500)').to.deep.equal([{ id: 1 }]);
  });

  it('finishMany ends only the rows the holder still holds', async () => {
    await q.claim(db, 'w1', 1100, candidates(600), ['id']);
    await q.claim(db, 'w2', 1100, candidates(600), ['id']);
    expect(await q.finishMany(db, [1, 2], 'w1', { status: 'done' })).to.deep.equal([1]);
    expect((await row(2)).status).to.equal('busy');
  });
});
