import { expect } from 'chai';
import { gradingSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/lib/logger.js';
import { namedModules } from '../../src/grading/container-runner.js';
import { poolKey, RecentModules, WarmPool, type PoolOptions } from '../../src/grading/warm-pool.js';

interface Fake {
  id: number;
  dead: boolean;
  discarded: boolean;
}

const SPEC = { image: 'gofer/grader:latest', limits: gradingSchema.parse({}) };

/** A pool over fake containers whose starts the test settles by hand, on a clock the test moves. */
function harness(opts: Partial<PoolOptions> = {}) {
  let clock = 0;
  let next = 0;
  const pending: Array<{ resolve: (f: Fake) => void; reject: (e: Error) => void; signal: AbortSignal }> = [];
  const made: Fake[] = [];
  const pool = new WarmPool<Fake>({
    floor: 1,
    ceiling: 3,
    maxIdleMs: 60_000,
    ...opts,
    log: silentLogger(),
    now: () => clock,
    tendMs: 3_600_000,
    start: (_spec, signal) =>
      new Promise<Fake>((resolve, reject) => {
        pending.push({ resolve, reject, signal });
      }),
    alive: (f) => !f.dead,
    discard: (f) => {
      f.discarded = true;
    },
  });
  const settleStarts = async (ms = 1000): Promise<void> => {
    clock += ms;
    for (const p of pending.splice(0)) {
      const f = { id: next++, dead: false, discarded: false };
      made.push(f);
      p.resolve(f);
    }
    await new Promise((r) => setImmediate(r));
  };
  return {
    pool,
    made,
    pending,
    settleStarts,
    advance: (ms: number) => (clock += ms),
    tend: () => (pool as unknown as { tend(): void }).tend(),
  };
}

describe('WarmPool', () => {
  it('keys pools by image and container limits, not by the time limit', () => {
    const a = poolKey(SPEC);
    const shorter = { ...SPEC.limits, timeoutSeconds: 5 };
    expect(poolKey({ ...SPEC, limits: shorter })).to.equal(a);
    expect(poolKey({ ...SPEC, limits: { ...SPEC.limits, memoryMb: 512 } })).to.not.equal(a);
    expect(poolKey({ ...SPEC, image: 'course/image:1' })).to.not.equal(a);
  });

  it('holds its floor, hands each container to one job only, and starts a replacement at once', async () => {
    const h = harness({ floor: 2 });
    h.pool.keep(SPEC);
    expect(h.pending.length).to.equal(2);
    await h.settleStarts();
    const first = h.pool.take(SPEC);
    const second = h.pool.take(SPEC);
    expect(first?.id).to.equal(0);
    expect(second?.id).to.equal(1);
    // two replacements are already starting; nothing is ready yet, so a third job starts fresh
    expect(h.pending.length).to.be.at.least(2);
    expect(h.pool.take(SPEC)).to.equal(undefined);
    expect(h.pool.stats()).to.include({ hits: 2, misses: 1 });
  });

  it('grows with the arrival rate up to the ceiling, and shrinks back to the floor when jobs stop', async () => {
    const h = harness({ floor: 1, ceiling: 2, maxIdleMs: 600_000 });
    h.pool.keep(SPEC);
    await h.settleStarts(4000); // a container takes 4 s to be ready: the average moves towards it
    for (let i = 0; i < 60; i++) {
      h.pool.take(SPEC);
      h.advance(500);
    }
    // a job a second, 2.6 s to be ready (the moving average): 3 wanted, the ceiling is 2
    expect(h.pool.stats().keys[0]!.target).to.equal(2);
    await h.settleStarts();
    expect(h.pool.stats().keys[0]!.ready).to.equal(2);
    h.advance(120_000); // no arrivals for two minutes
    h.tend();
    const key = h.pool.stats().keys[0]!;
    expect(key.target).to.equal(1);
    expect(key.ready).to.equal(1);
    expect(h.made.filter((f) => f.discarded).length).to.be.at.least(1);
  });

  it('never hands out a dead container: it is discarded and the job starts fresh', async () => {
    const h = harness({ floor: 1 });
    h.pool.keep(SPEC);
    await h.settleStarts();
    h.made[0]!.dead = true;
    expect(h.pool.take(SPEC)).to.equal(undefined);
    expect(h.made[0]!.discarded).to.equal(true);
    expect(h.pool.stats()).to.include({ hits: 0, misses: 1 });
  });

  it('replaces a container that died or waited too long', async () => {
    const h = harness({ floor: 1, maxIdleMs: 10_000 });
    h.pool.keep(SPEC);
    await h.settleStarts();
    h.advance(11_000);
    h.tend();
    expect(h.made[0]!.discarded).to.equal(true);
    expect(h.pending.length).to.equal(1);
    await h.settleStarts();
    h.made[1]!.dead = true;
    h.tend();
    expect(h.made[1]!.discarded).to.equal(true);
    expect(h.pending.length).to.equal(1);
  });

  it('backs off after a failed start, one probe at a time, and fills again once starts work', async () => {
    const h = harness({ floor: 2 });
    h.pool.keep(SPEC);
    for (const p of h.pending.splice(0)) p.reject(new Error('engine down'));
    await new Promise((r) => setImmediate(r));
    h.tend();
    expect(h.pending.length, 'no start before the back-off ends').to.equal(0);
    h.advance(60_000);
    h.tend();
    expect(h.pending.length, 'one probe while starts fail').to.equal(1);
    await h.settleStarts();
    h.tend();
    expect(h.pending.length, 'the rest once a start worked').to.equal(1);
  });

  it('stop() discards the ready containers and those still starting, and hands out none after', async () => {
    const h = harness({ floor: 2 });
    h.pool.keep(SPEC);
    await h.settleStarts();
    h.pool.take(SPEC);
    const starting = h.pending[0]!.signal;
    const stopping = h.pool.stop();
    expect(starting.aborted, 'a start under way is told to give up').to.equal(true);
    await h.settleStarts();
    await stopping;
    expect(h.made.filter((f) => !f.discarded).map((f) => f.id)).to.deep.equal([0]); // the one a job took is its runner's to remove
    expect(h.pool.take(SPEC)).to.equal(undefined);
  });
});

describe('what pre-started containers import', () => {
  const job = (source: string, test = '') => ({ notebook: Buffer.from(JSON.stringify({ cells: [{ source }] })), tests: test ? [{ name: 'tests/q1.py', content: Buffer.from(test) }] : [] });
  const CANDIDATES = ['numpy', 'pandas', 'matplotlib.pyplot'];

  it("finds the image's modules a notebook or its tests name, by name or usual alias", () => {
    expect(namedModules(CANDIDATES, job('import numpy as np\nimport matplotlib.pyplot as plt'))).to.deep.equal(['numpy', 'matplotlib.pyplot']);
    expect(namedModules(CANDIDATES, job('x = 1', '>>> pd.Series([1]).sum()\n1'))).to.deep.equal(['pandas']);
    expect(namedModules(CANDIDATES, job('numpyish = 1; pdf = 2'))).to.deep.equal([]);
    // a line of the notebook's JSON that starts with the alias
    expect(namedModules(CANDIDATES, job('x = 1\npd.read_csv("a.csv")'))).to.deep.equal(['pandas']);
  });

  it('imports, of the listed modules, those at least half of the last 20 jobs named; all of them before any job', () => {
    const recent = new RecentModules();
    expect(recent.choose('k', CANDIDATES)).to.deep.equal(CANDIDATES);
    for (let i = 0; i < 20; i++) recent.record('k', i < 12 ? ['numpy'] : ['numpy', 'pandas']);
    expect(recent.choose('k', CANDIDATES)).to.deep.equal(['numpy']);
    for (let i = 0; i < 10; i++) recent.record('k', ['numpy', 'pandas']);
    expect(recent.choose('k', CANDIDATES), 'only the last 20 count').to.deep.equal(['numpy', 'pandas']);
    for (let i = 0; i < 20; i++) recent.record('k', []);
    expect(recent.choose('k', CANDIDATES)).to.deep.equal([]);
    expect(recent.choose('other', CANDIDATES), 'per pool').to.deep.equal(CANDIDATES);
  });
});
