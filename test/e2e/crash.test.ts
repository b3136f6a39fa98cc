import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { loadConfig } from '../../src/config/load.js';
import { createDb, type Db } from '../../src/db/knex.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { systemClock } from '../../src/lib/clock.js';
import { gradingContainers, requireEngine } from '../helpers/engine.js';
import { spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { ROOT, writeConfig } from '../helpers/service.js';

/**
 * kill -9 while submissions arrive and while workers grade; start again: every acknowledged
 * submission ends with exactly one result, nothing acknowledged is lost, no container is left.
 */
const EXAMPLE = JSON.parse(readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8'));
const PORT = 18000 + Math.floor(Math.random() * 1000);
const TERMINAL = ['graded', 'timeout', 'out_of_memory', 'invalid_notebook', 'kernel_died', 'failed'];

function variant(i: number): unknown {
  const nb = structuredClone(EXAMPLE);
  nb.cells.push({ cell_type: 'code', id: `extra${i}`, metadata: {}, execution_count: null, outputs: [], source: `submission_number = ${i}` });
  return nb;
}

describe('reliability: kill -9 and restart (real engine, SQLite)', function () {
  this.timeout(300_000);
  let docker: Docker;
  let file: string;
  let dir: string;
  let db: Db;
  let tokens: string[];
  let proc: GoferProcess | undefined;
  /** The gofer processes this suite started: only their containers are counted. */
  const spawned: Array<number | undefined> = [];
  const acked = new Set<string>();

  before(async () => {
    ({ docker } = await requireEngine());
    ({ file, dir } = writeConfig({
      server: { host: '127.0.0.1', port: PORT, submissionsPerMinute: 1000 },
      queue: { workers: 1, leaseSeconds: 5, retryDelaySeconds: 1 },
      courses: [{ id: '8x', assignments: [{ id: 'lab01', section: '1', tests: path.join(ROOT, 'config/example/lab01/tests'), files: ['data.csv'], timeoutSeconds: 30 }] }],
    }));
    db = createDb(loadConfig(file, {}));
    await import('../../src/db/knex.js').then((m) => m.migrate(db));
    const store = new ApiTokenStore(db, systemClock);
    tokens = await Promise.all(Array.from({ length: 4 }, (_, i) => store.create(`learner${i}`)));
  });

  after(async () => {
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await db?.destroy();
  });

  const start = async (workers: number): Promise<GoferProcess> => {
    const p = spawnGofer(['--config', file, 'serve', '--workers', String(workers)], path.join(dir, 'gofer.log'));
    spawned.push(p.child.pid);
    await waitFor('gofer to answer /health', async () => (await fetch(`http://127.0.0.1:${PORT}/health`)).ok, 30_000);
    return p;
  };

  const submit = async (i: number): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${PORT}/services/gofer/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `token ${tokens[i % tokens.length]}` },
      body: JSON.stringify({ nb: variant(i) }),
    });
    if (res.status === 200) acked.add(((await res.json()) as { id: string }).id);
  };

  const status = async (): Promise<Record<string, number>> => {
    const rows = await db('submissions').select('status').count({ n: '*' }).groupBy('status');
    return Object.fromEntries((rows as Array<{ status: string; n: number }>).map((r) => [r.status, Number(r.n)]));
  };

  it('loses nothing acknowledged when killed while submissions arrive', async () => {
    proc = await start(1);
    const sending = Array.from({ length: 24 }, (_, i) => new Promise((r) => setTimeout(r, i * 40)).then(() => submit(i).catch(() => undefined)));
    await waitFor('some acknowledgements', async () => acked.size >= 6, 20_000, 10);
    proc.child.kill('SIGKILL');
    await proc.exited;
    await Promise.all(sending);
    expect(acked.size).to.be.greaterThan(5);
    const stored = new Set((await db('submissions').select('id')).map((r) => r.id as string));
    for (const id of acked) expect(stored.has(id), `acknowledged submission ${id} was lost`).to.equal(true);
  });

  it('finishes every job after a kill -9 in the middle of grading, with exactly one result each and no container left', async () => {
    proc = await start(2);
    // send the rest, then kill while a container is grading
    await Promise.all(Array.from({ length: 8 }, (_, i) => submit(100 + i)));
    // grading has begun: a job is leased (the process's pre-started containers exist before any job)
    await waitFor('a job to be graded', async () => ((await status()).grading ?? 0) > 0 && (await gradingContainers(docker, { pids: spawned })) > 0, 30_000, 50);
    proc.child.kill('SIGKILL');
    await proc.exited;
    expect(await gradingContainers(docker, { pids: spawned }), 'the killed process left its containers (removed at the next start)').to.be.greaterThan(0);

    proc = await start(2);
    await waitFor(
      'every submission to finish',
      async () => {
        const s = await status();
        return Object.entries(s).every(([k]) => TERMINAL.includes(k)) && s;
      },
      240_000,
      500,
    );
    const counts = await db('results').select('submission_id').count({ n: '*' }).groupBy('submission_id');
    const perSubmission = new Map((counts as Array<{ submission_id: string; n: number }>).map((r) => [r.submission_id, Number(r.n)]));
    for (const id of acked) expect(perSubmission.get(id), `results of ${id}`).to.equal(1);
    const all = await db('submissions').select('id', 'status', 'score');
    for (const s of all) {
      expect(s.status, s.id).to.equal('graded');
      expect(s.score, s.id).to.equal(1);
    }

    proc.child.kill('SIGTERM');
    expect(await proc.exited).to.equal(0);
    expect(await gradingContainers(docker, { pids: spawned })).to.equal(0);
  });

  it('on SIGTERM stops claiming, finishes or gives back running jobs, and exits 0', async () => {
    proc = await start(1);
    await submit(500);
    await waitFor('grading to start', async () => (await status()).grading === 1, 30_000, 50);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).to.equal(0);
    const job = await db('grading_jobs').join('submissions', 'submissions.id', 'grading_jobs.submission_id').where('submissions.status', '!=', 'graded').select('grading_jobs.status', 'grading_jobs.locked_by');
    // the job either finished within the grace period or was given back unlocked
    for (const j of job) expect(j).to.deep.equal({ status: 'queued', locked_by: null });
    expect(await gradingContainers(docker, { pids: spawned })).to.equal(0);
  });
});
