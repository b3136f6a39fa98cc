import { expect } from 'chai';
import { createDb } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { requireEngine } from '../helpers/engine.js';
import { startService } from '../helpers/service.js';

const TERMINAL = ['graded', 'timeout', 'out_of_memory', 'invalid_notebook', 'kernel_died', 'failed'];
/** Nesting depth of the hostile notebook: 12 MB of brackets, seconds of JSON.parse on one thread. */
const DEPTH = 6_000_000;

/**
 * Grading never parses a notebook on the event loop that serves requests: a hostile notebook
 * (valid JSON nested millions deep) held `/health` for seconds while it was graded.
 */
describe('grading: a deeply nested notebook does not hold the event loop (real engine, SQLite)', function () {
  this.timeout(300_000);
  let svc: Awaited<ReturnType<typeof startService>>;
  let token: string;

  before(async () => {
    await requireEngine();
    svc = await startService({ workers: 1, overrides: { queue: { pollMs: 50 }, grading: { timeoutSeconds: 30 } } });
    const db = createDb(svc.config);
    token = await new ApiTokenStore(db, systemClock).create('ada');
    await db.destroy();
  });
  after(async () => svc?.stop());

  async function healthMs(): Promise<number> {
    const started = performance.now();
    const res = await fetch(`${svc.url}/health`);
    expect(res.status).to.equal(200);
    await res.arrayBuffer();
    return performance.now() - started;
  }

  it('keeps /health answering promptly while it is graded', async () => {
    for (let i = 0; i < 5; i++) await healthMs(); // warm: connections, statements
    const baseline: number[] = [];
    for (let i = 0; i < 40; i++) baseline.push(await healthMs());
    const slowestBaseline = Math.max(...baseline);

    const nb = `{"nbformat":4,"nbformat_minor":5,"metadata":{"assignment":"lab01","section":"1"},"cells":[{"cell_type":"code","id":"c1","source":"x = 1","metadata":{"deep":${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}},"outputs":[],"execution_count":null}]}`;
    const res = await fetch(`${svc.url}/services/gofer/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `token ${token}` },
      body: `{"nb": ${nb}}`,
    });
    expect(res.status).to.equal(200);
    const { id } = (await res.json()) as { id: string };

    const during: number[] = [];
    const statuses = new Set<string>();
    const until = Date.now() + 240_000;
    for (;;) {
      during.push(await healthMs());
      const status = ((await (await fetch(`${svc.url}/api/v1/submissions/${id}`, { headers: { authorization: `token ${token}` } })).json()) as { status: string }).status;
      statuses.add(status);
      if (TERMINAL.includes(status)) break;
      expect(Date.now(), 'grading ended in time').to.be.below(until);
    }
    expect(statuses, 'the notebook was graded while /health was probed').to.include('grading');
    // generous: ten times the slowest answer before, and never under half a second
    const bound = Math.max(500, 10 * slowestBaseline);
    expect(Math.max(...during), `slowest /health during grading (slowest before: ${slowestBaseline.toFixed(1)} ms)`).to.be.below(bound);
  });
});
