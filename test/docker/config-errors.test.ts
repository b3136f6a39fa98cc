import { expect } from 'chai';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { loadConfig } from '../../src/config/load.js';
import { createDb, migrate } from '../../src/db/knex.js';
import { SETUP_PROBLEM } from '../../src/submissions/job-queue.js';
import { systemClock } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/logger.js';
import { run, type Running } from '../../src/server.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { requireEngine } from '../helpers/engine.js';
import { notebook } from '../helpers/notebooks.js';
import { waitFor } from '../helpers/process.js';
import { EXAMPLE_TESTS, writeConfig } from '../helpers/service.js';

/**
 * An instructor's mistake fails the job at once, with the reason for staff and a fixed sentence
 * for the learner: retrying cannot fix it, and each retry would start another container.
 */
describe('grading: instructor mistakes fail the job at once (real engine, SQLite)', function () {
  this.timeout(180_000);
  let docker: Docker;
  const running: Running[] = [];

  before(async () => {
    ({ docker } = await requireEngine());
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
  });

  /** Starts Gofer on a configuration; returns its URL and an API token each for a learner and an instructor. */
  async function start(overrides: Record<string, unknown>, workers: number) {
    const { file } = writeConfig({ queue: { maxAttempts: 3, retryDelaySeconds: 0, pollMs: 50 }, ...overrides });
    const config = loadConfig(file, {});
    const db = createDb(config);
    await migrate(db);
    const tokens = new ApiTokenStore(db, systemClock);
    const [learner, staff] = [await tokens.create('ada'), await tokens.create('prof')];
    await db.destroy();
    const r = await run({ config, log: silentLogger(), http: true, workers, env: {} });
    running.push(r);
    return { url: r.url!, config, learner, staff };
  }

  async function submit(url: string, token: string, assignment: string): Promise<string> {
    const res = await fetch(`${url}/api/v1/submissions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `token ${token}` },
      body: JSON.stringify({ nb: notebook(['x = 1'], { section: '1', assignment }) }),
    });
    expect(res.status).to.equal(202);
    return ((await res.json()) as { id: string }).id;
  }

  const view = async (url: string, token: string, id: string) =>
    (await (await fetch(`${url}/api/v1/submissions/${id}`, { headers: { authorization: `token ${token}` } })).json()) as Record<string, unknown>;

  async function jobsOf(config: Parameters<typeof createDb>[0], id: string) {
    const db = createDb(config);
    try {
      return (await db('grading_jobs').where({ submission_id: id }).select('status', 'attempts', 'last_error')) as Array<{ status: string; attempts: number; last_error: string }>;
    } finally {
      await db.destroy();
    }
  }

  /** Containers created for a submission since `since` (seconds), from the engine's events. */
  async function containersFor(id: string, since: number): Promise<number> {
    const stream = (await docker.getEvents({
      since,
      until: Math.ceil(Date.now() / 1000) + 1,
      filters: { type: ['container'], event: ['create'], label: [`org.gofer.job=${id}`] },
    })) as NodeJS.ReadableStream;
    let text = '';
    for await (const chunk of stream) text += chunk.toString();
    return text.split('\n').filter((l) => l.trim()).length;
  }

  it('tests that cannot be used: one attempt, one container, the reason for staff only', async () => {
    const tests = path.join(mkdtempSync(path.join(tmpdir(), 'gofer-broken-')), 'tests');
    mkdirSync(tests);
    writeFileSync(path.join(tests, 'q1.py'), 'test = {\n  "name": "q1",\n  "suites": [\n');
    const since = Math.floor(Date.now() / 1000) - 1;
    const { url, config, learner, staff } = await start({ courses: [{ id: '8x', instructors: ['prof'], assignments: [{ id: 'lab01', tests }] }] }, 1);
    const id = await submit(url, learner, 'lab01');
    const seen = await waitFor('the submission to fail', async () => {
      const v = await view(url, learner, id);
      return v.status === 'failed' && v;
    }, 120_000);
    const jobs = await jobsOf(config, id);
    expect(jobs.map((j) => [j.status, Number(j.attempts)])).to.deep.equal([['failed', 1]]);
    expect(await containersFor(id, since)).to.equal(1);
    expect(seen.message).to.equal(SETUP_PROBLEM);
    expect(seen).to.not.have.property('problem');
    // named where the instructor keeps the file, not where the container had it
    expect((await view(url, staff, id)).problem).to.include(`instructor tests cannot be used: ${path.join(tests, 'q1.py')}: has a syntax error`);
  });

  it('an assignment removed from the configuration: fails at once, no container', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gofer-removed-'));
    const both = [{ id: '8x', instructors: ['prof'], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS }, { id: 'lab02', tests: EXAMPLE_TESTS }] }];
    const first = await start({ dataDir, courses: both }, 0);
    const id = await submit(first.url, first.learner, 'lab02');
    await running.pop()!.stop();
    const since = Math.floor(Date.now() / 1000) - 1;
    const { url, config, learner, staff } = await start({ dataDir, courses: [{ ...both[0], assignments: [both[0]!.assignments[0]] }] }, 1);
    const seen = await waitFor('the submission to fail', async () => {
      const v = await view(url, learner, id);
      return v.status === 'failed' && v;
    }, 60_000);
    expect((await jobsOf(config, id)).map((j) => [j.status, Number(j.attempts)])).to.deep.equal([['failed', 1]]);
    expect(await containersFor(id, since)).to.equal(0);
    expect(seen.message).to.equal(SETUP_PROBLEM);
    expect((await view(url, staff, id)).problem).to.match(/Assignment "lab02" of course "8x" is no longer in the configuration/);
  });
});
