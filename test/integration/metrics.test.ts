import { expect } from 'chai';
import { createDb } from '../../src/db/knex.js';
import { loadConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/logger.js';
import { run, type Running } from '../../src/server.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { sample, samples, scrape } from '../helpers/metrics.js';
import { notebook } from '../helpers/notebooks.js';
import { writeConfig } from '../helpers/service.js';

describe('GET /metrics on serve and on the gofer worker listener (SQLite)', function () {
  this.timeout(30_000);
  let serve: Running | undefined;
  let worker: Running | undefined;
  let ada: string;

  before(async () => {
    const { file } = writeConfig({ worker: { healthHost: '127.0.0.1', healthPort: 0 } });
    const config = loadConfig(file, {});
    serve = await run({ config, log: silentLogger(), http: true, workers: 0, env: {} });
    worker = await run({ config, log: silentLogger(), http: false, workers: 0, env: {} });
    const db = createDb(config);
    ada = await new ApiTokenStore(db, systemClock).create('ada');
    await db.destroy();
  });
  after(async () => {
    await worker?.stop();
    await serve?.stop();
  });

  const submit = async (meta: Record<string, unknown>, code = 'x = 1'): Promise<number> => {
    const res = await fetch(`${serve!.url}/api/v1/submissions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `token ${ada}` },
      body: JSON.stringify({ nb: notebook([code], meta) }),
    });
    await res.arrayBuffer();
    return res.status;
  };

  it('counts accepted, duplicate and refused submissions and shows the waiting job, without credentials like /health', async () => {
    const before = await scrape(`${serve!.url}/metrics`);
    expect(before.status).to.equal(200);
    expect(before.type).to.match(/^text\/plain; version=0\.0\.4/);
    expect((await fetch(`${serve!.url}/health`)).status).to.equal(200);
    const count = (text: string, outcome: string): number | undefined => sample(text, 'gofer_submissions_total', { outcome });
    const waiting = (text: string): number | undefined => sample(text, 'gofer_queue_jobs', { state: 'waiting' });
    expect(count(before.text, 'accepted')).to.equal(0);
    expect(waiting(before.text)).to.equal(0);
    expect(sample(before.text, 'gofer_queue_oldest_waiting_seconds')).to.equal(0);

    expect(await submit({ section: '1', assignment: 'lab01' })).to.equal(202);
    let now = (await scrape(`${serve!.url}/metrics`)).text;
    expect(count(now, 'accepted')).to.equal(1);
    expect(count(now, 'duplicate')).to.equal(0);
    expect(waiting(now)).to.equal(1);
    expect(sample(now, 'gofer_queue_jobs', { state: 'running' })).to.equal(0);
    expect(sample(now, 'gofer_queue_oldest_waiting_seconds')).to.be.within(0, 30);

    expect(await submit({ section: '1', assignment: 'lab01' })).to.equal(202); // the same notebook again: a duplicate
    expect(await submit({ assignment: 'closed' })).to.equal(403);
    expect(await submit({ assignment: 'no-such-lab' })).to.equal(422);
    const notANotebook = await fetch(`${serve!.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `token ${ada}` }, body: '{"nb": [1, 2]}' });
    expect(notANotebook.status).to.be.within(400, 499);
    // refused before the intake (no identity): not counted
    const stranger = await fetch(`${serve!.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"nb": {}}' });
    expect(stranger.status).to.equal(401);
    now = (await scrape(`${serve!.url}/metrics`)).text;
    expect(count(now, 'accepted')).to.equal(1);
    expect(count(now, 'duplicate')).to.equal(1);
    expect(count(now, 'refused')).to.equal(3);
    expect(count(now, 'error')).to.equal(0);
    expect(waiting(now)).to.equal(1);
    const health = (await (await fetch(`${serve!.url}/health`)).json()) as { jobs: { waiting: number; backoff: number; running: number } };
    expect(health.jobs).to.include({ waiting: 1, backoff: 0, running: 0 });
    expect(sample(now, 'gofer_queue_jobs', { state: 'backoff' })).to.equal(0);
    // no workers, no pool of pre-started containers: no pool series, no takes
    expect(samples(now, 'gofer_pool_ready')).to.deep.equal([]);
    expect(sample(now, 'gofer_pool_takes_total', { outcome: 'hit' })).to.equal(0);
    expect(sample(now, 'gofer_pool_takes_total', { outcome: 'miss' })).to.equal(0);
    // prom-client's default process metrics
    expect(sample(now, 'process_resident_memory_bytes')).to.be.above(0);
  });

  it("answers on the worker's health port: its own registry, the same queue", async () => {
    expect(worker!.healthUrl).to.match(/\/health$/);
    const url = worker!.healthUrl!.replace(/\/health$/, '/metrics');
    const m = await scrape(url);
    expect(m.status).to.equal(200);
    expect(m.type).to.match(/^text\/plain; version=0\.0\.4/);
    expect(sample(m.text, 'gofer_queue_jobs', { state: 'waiting' })).to.equal(1);
    // the intake is serve's: this process counted none
    expect(sample(m.text, 'gofer_submissions_total', { outcome: 'accepted' })).to.equal(0);
    expect((await fetch(worker!.healthUrl!)).status).to.equal(200);
    expect((await fetch(url.replace(/\/metrics$/, '/metrics/x'))).status).to.equal(404);
    expect((await fetch(url, { method: 'POST' })).status).to.equal(404);
  });
});
