import { expect } from 'chai';
import { register as globalRegistry } from 'prom-client';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/lib/logger.js';
import { Metrics, type PoolStats } from '../../src/lib/metrics.js';
import { ExaminerPool } from '../../src/submissions/examine.js';
import { Intake } from '../../src/submissions/intake.js';
import type { CreateOutcome, SubmissionStore } from '../../src/submissions/store.js';
import { sample, samples } from '../helpers/metrics.js';
import { notebook } from '../helpers/notebooks.js';

describe('metrics: the text format of one process', () => {
  it('reports the pool series from the PoolStats function, per key, read at each scrape', async () => {
    const metrics = new Metrics();
    let stats: PoolStats = {
      keys: [
        { key: 'gofer/grader:latest 512m', ready: 2, starting: 1 },
        { key: 'course "x"\\2', ready: 0, starting: 3 },
      ],
      hits: 7,
      misses: 2,
    };
    metrics.collectFrom({ poolStats: () => stats });
    let text = await metrics.scrape();
    expect(samples(text, 'gofer_pool_ready')).to.deep.equal([
      { labels: { key: 'gofer/grader:latest 512m' }, value: 2 },
      { labels: { key: 'course "x"\\2' }, value: 0 },
    ]);
    expect(sample(text, 'gofer_pool_starting', { key: 'gofer/grader:latest 512m' })).to.equal(1);
    expect(sample(text, 'gofer_pool_starting', { key: 'course "x"\\2' })).to.equal(3);
    expect(sample(text, 'gofer_pool_takes_total', { outcome: 'hit' })).to.equal(7);
    expect(sample(text, 'gofer_pool_takes_total', { outcome: 'miss' })).to.equal(2);
    expect(text).to.match(/^# TYPE gofer_pool_ready gauge$/m);
    expect(text).to.match(/^# TYPE gofer_pool_takes_total counter$/m);

    // a key gone from the pool is gone from the series; the counters follow the runner's
    stats = { keys: [{ key: 'course "x"\\2', ready: 1, starting: 0 }], hits: 9, misses: 2 };
    text = await metrics.scrape();
    expect(samples(text, 'gofer_pool_ready')).to.deep.equal([{ labels: { key: 'course "x"\\2' }, value: 1 }]);
    expect(sample(text, 'gofer_pool_takes_total', { outcome: 'hit' })).to.equal(9);
  });

  it('without a pool: no ready or starting series, takes at 0', async () => {
    const text = await new Metrics().scrape();
    expect(samples(text, 'gofer_pool_ready')).to.deep.equal([]);
    expect(samples(text, 'gofer_pool_starting')).to.deep.equal([]);
    expect(sample(text, 'gofer_pool_takes_total', { outcome: 'hit' })).to.equal(0);
    expect(sample(text, 'gofer_pool_takes_total', { outcome: 'miss' })).to.equal(0);
  });

  it('reads the queue at scrape time; a database that does not answer leaves the queue series out, and the scrape still answers', async () => {
    const metrics = new Metrics();
    let fail = false;
    metrics.collectFrom({ backlog: async () => (fail ? Promise.reject(new Error('database down')) : { waiting: 3, backoff: 1, running: 2, oldestWaitingMs: 4500 }) });
    let text = await metrics.scrape();
    expect(sample(text, 'gofer_queue_jobs', { state: 'waiting' })).to.equal(3);
    expect(sample(text, 'gofer_queue_jobs', { state: 'backoff' })).to.equal(1);
    expect(sample(text, 'gofer_queue_jobs', { state: 'running' })).to.equal(2);
    expect(sample(text, 'gofer_queue_oldest_waiting_seconds')).to.equal(4.5);
    fail = true;
    text = await metrics.scrape();
    expect(samples(text, 'gofer_queue_jobs')).to.deep.equal([]);
    expect(samples(text, 'gofer_queue_oldest_waiting_seconds')).to.deep.equal([]);
    expect(sample(text, 'gofer_submissions_total', { outcome: 'accepted' })).to.equal(0);
  });

  it('copies the token cache figures in at scrape time', async () => {
    const metrics = new Metrics();
    metrics.collectFrom({ tokenCache: () => ({ hits: 5, misses: 1, refreshes: 2 }) });
    const text = await metrics.scrape();
    expect(sample(text, 'gofer_lti_token_lookups_total', { outcome: 'hit' })).to.equal(5);
    expect(sample(text, 'gofer_lti_token_lookups_total', { outcome: 'miss' })).to.equal(1);
    expect(sample(text, 'gofer_lti_token_lookups_total', { outcome: 'refresh' })).to.equal(2);
  });

  it("keeps each process's registry its own: nothing in prom-client's global one, no count shared", async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.submissions.inc({ outcome: 'accepted' });
    a.grading.observe({ status: 'graded' }, 3);
    expect(sample(await a.scrape(), 'gofer_submissions_total', { outcome: 'accepted' })).to.equal(1);
    const other = await b.scrape();
    expect(sample(other, 'gofer_submissions_total', { outcome: 'accepted' })).to.equal(0);
    expect(sample(other, 'gofer_grading_duration_seconds_count', { status: 'graded' })).to.equal(undefined);
    expect(await globalRegistry.metrics()).to.not.match(/gofer_|process_cpu/);
    // prom-client's default process metrics are in each registry
    expect(sample(other, 'process_cpu_user_seconds_total')).to.be.a('number');
    expect(samples(other, 'nodejs_heap_size_used_bytes')).to.have.length(1);
    expect(samples(other, 'nodejs_eventloop_lag_seconds')).to.have.length(1);
    expect(sample(other, 'process_resident_memory_bytes')).to.be.above(0);
  });

  describe('the intake counts what it was handed', function () {
    let examiners: ExaminerPool;
    before(() => (examiners = new ExaminerPool(1)));
    after(() => examiners.close());

    it('a learner over the per-minute limit is refused; a store that fails is an error', async () => {
      const config = configSchema.parse({ defaultCourse: 'c', courses: [{ id: 'c', assignments: [{ id: 'lab01', tests: 't' }] }] });
      const metrics = new Metrics();
      let next: () => Promise<CreateOutcome> = async () => ({ kind: 'rate_limited', retryAfterSeconds: 9 });
      const submissions = { create: () => next() } as unknown as SubmissionStore;
      const intake = new Intake({ config, submissions, examiners, clock: { now: () => Date.now() }, ids: () => 'id-1', log: silentLogger(), metrics });
      const who = { name: 'ada', via: 'api-token' as const, admin: false, groups: [] };
      const nb = { kind: 'json-body' as const, bytes: Buffer.from(JSON.stringify({ nb: notebook(['x = 1'], { assignment: 'lab01' }) })) };
      await intake.submit(who, nb).then(
        () => expect.fail('accepted over the limit'),
        (err: Error) => expect(err.name, err.message).to.equal('RateLimitError'),
      );
      next = () => Promise.reject(new Error('database is locked'));
      await intake.submit(who, nb).then(
        () => expect.fail('accepted without a store'),
        (err: Error) => expect(err.message).to.equal('database is locked'),
      );
      next = async () => ({ kind: 'created', id: 'id-1' }) as CreateOutcome;
      await intake.submit(who, nb);
      const text = await metrics.scrape();
      expect(sample(text, 'gofer_submissions_total', { outcome: 'refused' })).to.equal(1);
      expect(sample(text, 'gofer_submissions_total', { outcome: 'error' })).to.equal(1);
      expect(sample(text, 'gofer_submissions_total', { outcome: 'accepted' })).to.equal(1);
    });
  });
});
