import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createDb } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { requireEngine } from '../helpers/engine.js';
import { sample, samples, scrape } from '../helpers/metrics.js';
import { ROOT, startService } from '../helpers/service.js';

const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

describe('GET /metrics after a real grading (real engine, SQLite)', function () {
  this.timeout(300_000);
  let svc: Awaited<ReturnType<typeof startService>>;
  let token: string;

  before(async () => {
    await requireEngine();
    svc = await startService({ workers: 1, overrides: { queue: { pollMs: 50 } } });
    const db = createDb(svc.config);
    token = await new ApiTokenStore(db, systemClock).create('ada');
    await db.destroy();
  });
  after(async () => svc?.stop());

  it('counts the queue wait and the grading duration by status', async () => {
    const before = (await scrape(`${svc.url}/metrics`)).text;
    expect(sample(before, 'gofer_queue_wait_seconds_count')).to.equal(0);
    expect(sample(before, 'gofer_grading_duration_seconds_count', { status: 'graded' })).to.equal(undefined);
    const res = await fetch(`${svc.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `token ${token}` }, body: `{"nb": ${EXAMPLE}}` });
    expect(res.status).to.equal(202);
    const { id } = (await res.json()) as { id: string };
    const until = Date.now() + 240_000;
    for (;;) {
      const s = (await (await fetch(`${svc.url}/api/v1/submissions/${id}`, { headers: { authorization: `token ${token}` } })).json()) as { status: string };
      if (s.status === 'graded') break;
      expect(s.status).to.be.oneOf(['queued', 'grading']);
      expect(Date.now(), 'graded in time').to.be.below(until);
      await new Promise((r) => setTimeout(r, 100));
    }
    const text = (await scrape(`${svc.url}/metrics`)).text;
    expect(sample(text, 'gofer_queue_wait_seconds_count')).to.equal(1);
    expect(sample(text, 'gofer_queue_wait_seconds_sum')).to.be.within(0, 60);
    expect(sample(text, 'gofer_grading_duration_seconds_count', { status: 'graded' })).to.equal(1);
    expect(sample(text, 'gofer_grading_duration_seconds_sum', { status: 'graded' })).to.be.above(0);
    expect(sample(text, 'gofer_grading_duration_seconds_bucket', { status: 'graded', le: '+Inf' })).to.equal(1);
    expect(sample(text, 'gofer_queue_jobs', { state: 'waiting' })).to.equal(0);
    expect(sample(text, 'gofer_queue_jobs', { state: 'running' })).to.equal(0);
    // the runner's pool of pre-started containers (one per worker by default): one take, hit or miss
    expect((sample(text, 'gofer_pool_takes_total', { outcome: 'hit' }) ?? 0) + (sample(text, 'gofer_pool_takes_total', { outcome: 'miss' }) ?? 0)).to.equal(1);
    const keys = samples(text, 'gofer_pool_ready').map((x) => x.labels.key);
    expect(keys).to.have.length(1);
    expect(keys[0]).to.match(/^gofer\/grader:latest mem=\d+m /);
    expect(samples(text, 'gofer_pool_starting').map((x) => x.labels.key)).to.deep.equal(keys);
  });
});
