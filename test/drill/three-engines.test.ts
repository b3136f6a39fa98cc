import { expect } from 'chai';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Db } from '../../src/db/knex.js';
import { CONTAINER_LABEL, POOL_LABEL } from '../../src/grading/container-runner.js';
import { systemClock } from '../../src/lib/clock.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { freshDb } from '../helpers/databases.js';
import { copyImage, extraEngines, type ExtraEngine } from '../helpers/dockerd.js';
import { IMAGE, requireEngine } from '../helpers/engine.js';
import { notebook, okTest } from '../helpers/notebooks.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { writeConfig } from '../helpers/service.js';

/**
 * The drill of issues 12 and 15, for real: PostgreSQL, one `gofer serve --workers 0` and three
 * `gofer worker` processes, each on its own Docker engine (three extra dockerd on this machine).
 * A burst of submissions of a realistic notebook (numpy and pandas, about 1 CPU-s); in the
 * middle of it, one engine is killed (SIGKILL to its dockerd) while its worker grades, with the
 * worker left running; the rest of the burst arrives while it is down; then that engine comes
 * back on the same data root. Every acknowledged submission must end graded exactly once.
 */
const BURST = Number(process.env.GOFER_DRILL_SUBMISSIONS ?? 60);

/** About 1 CPU-s in the grader image (0.4 s of imports, 0.6 s of work), measured with process_time. */
const CELL = `import numpy as np
import pandas as pd
rng = np.random.default_rng(12)
frame = pd.DataFrame(rng.normal(size=(200_000, 6)), columns=list('abcdef'))
frame['key'] = rng.integers(0, 50, size=len(frame))
for _ in range(3):
    summary = frame.groupby('key').agg(['mean', 'std', 'median'])
    ranked = frame.sort_values(['key', 'a']).reset_index(drop=True)
m = rng.normal(size=(300, 300))
for _ in range(20):
    m = np.tanh(m @ m.T / 300)
groups = int(summary.shape[0])
rows = int(ranked.shape[0])
`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(1);

describe('the drill: three grading hosts on three Docker engines, one engine killed mid-burst and brought back (PostgreSQL)', function () {
  this.timeout(900_000);
  let root: string;
  let engines: ExtraEngine[] = [];
  let drop: (() => Promise<void>) | undefined;
  let db: Db;
  let port: number;
  let file: string;
  let dir: string;
  const procs: GoferProcess[] = [];
  const workers: GoferProcess[] = [];
  let tokens: string[] = [];

  before(async function () {
    this.timeout(420_000);
    await requireEngine();
    ({ root, engines } = extraEngines(3));
    const t0 = Date.now();
    await Promise.all(engines.map((e) => e.start()));
    const copied = await copyImage(IMAGE, engines, root);
    console.log(
      `      3 extra engines up in ${seconds(Date.now() - t0 - copied.saveMs - copied.loadMs)} s; ${IMAGE} (${(copied.bytes / 1e9).toFixed(2)} GB): ` +
        `saved once in ${seconds(copied.saveMs)} s, loaded into the 3 in parallel in ${seconds(copied.loadMs)} s`,
    );

    const fresh = await freshDb('pg');
    db = fresh.db;
    drop = fresh.drop;
    const course = path.join(root, 'course');
    mkdirSync(path.join(course, 'tests'), { recursive: true });
    writeFileSync(
      path.join(course, 'tests', 'q1.py'),
      okTest({ name: 'q1', points: 1, cases: [{ code: '>>> groups\n50' }, { code: '>>> rows\n200000', hidden: true }] }),
    );
    port = await freePort();
    ({ file, dir } = writeConfig({
      database: { client: 'pg', url: fresh.url },
      server: { host: '127.0.0.1', port },
      // heartbeats and probes a little faster than the defaults, so the drill is short
      queue: { pollMs: 100, heartbeatSeconds: 1, engineProbeMs: 500, leaseSeconds: 30 },
      courses: [{ id: '8x', instructors: ['prof'], assignments: [{ id: 'drill', tests: path.join(course, 'tests'), policy: 'otter' }] }],
    }));
    const store = new ApiTokenStore(db, systemClock);
    tokens = await Promise.all(Array.from({ length: BURST }, (_, i) => store.create(`learner${String(i).padStart(3, '0')}`)));

    const serve = spawnGofer(['--config', file, 'serve', '--workers', '0'], path.join(dir, 'serve.log'));
    procs.push(serve);
    engines.forEach((e, i) => {
      const w = spawnGofer(['--config', file, 'worker', '--workers', '1'], path.join(dir, `worker${i + 1}.log`), { DOCKER_HOST: e.host });
      procs.push(w);
      workers.push(w);
    });
    await waitFor('serve to answer /health', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 60_000);
    await waitFor('three worker heartbeats', async () => Number((await db('worker_heartbeats').count({ n: '*' }).first())?.n) === 3, 60_000);
  });

  after(async function () {
    // removing three data roots (tens of thousands of files each) is slow on a busy disk
    this.timeout(600_000);
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    const problems: string[] = [];
    await drop?.().catch((e: Error) => problems.push(`drop the database: ${e.message}`));
    for (const found of await Promise.all(engines.map((e) => e.destroy().catch((err: Error) => [`${e.host}: ${err.message}`])))) problems.push(...found);
    if (root) await rm(root, { recursive: true, force: true });
    if (problems.length) throw new Error(`clean-up of the extra engines: ${problems.join('; ')}`);
  });

  it('grades every acknowledged submission exactly once, none as the learner\'s timeout or failure, and leaves no container on the engines', async () => {
    const [killed, ...surviving] = engines as [ExtraEngine, ...ExtraEngine[]];
    const acked = new Map<string, number>();
    const submit = async (i: number): Promise<void> => {
      // each learner's own notebook (a different comment), so no submission is a duplicate
      const nb = notebook([`# learner ${i}\n${CELL}`], { assignment: 'drill' });
      const res = await fetch(`http://127.0.0.1:${port}/services/gofer/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `token ${tokens[i]}` },
        body: JSON.stringify({ nb }),
      });
      const body = (await res.json()) as { id?: string; duplicate?: boolean };
      expect(res.status, JSON.stringify(body)).to.equal(200);
      expect(body.duplicate).to.equal(false);
      acked.set(body.id!, Date.now());
    };
    const half = Math.floor(BURST / 2);
    const start = Date.now();
    // the first half of the burst, four a second, as learners near a deadline
    await Promise.all(Array.from({ length: half }, (_, i) => new Promise((r) => setTimeout(r, 250 * i)).then(() => submit(i))));

    // in the middle of the burst, kill the engine once its worker is grading: a job is leased to
    // it (the engine also holds the worker's pre-started containers, which have no job yet)
    const worker1 = `${hostname()}/${workers[0]!.child.pid}/`;
    const interrupted = await waitFor(
      'a job graded on the engine to be killed',
      async () => {
        const job = (await db('grading_jobs').where({ status: 'running' }).where('locked_by', 'like', `${worker1}%`).first('submission_id')) as { submission_id: string } | undefined;
        const running = (await killed.containers(CONTAINER_LABEL)).filter((c) => c.State === 'running');
        return job && running.length ? job.submission_id : false;
      },
      180_000,
      100,
    );
    await killed.kill();
    const killedAt = Date.now();
    // the rest of the burst arrives while the engine is down
    await Promise.all(Array.from({ length: BURST - half }, (_, i) => new Promise((r) => setTimeout(r, 250 * i)).then(() => submit(half + i))));
    const burstMs = Date.now() - start;
    // the interrupted job is handed to a surviving host, not held until its lease expires
    const handedOn = await waitFor(
      'the interrupted submission to be graded elsewhere',
      async () => (await db('results').where({ submission_id: interrupted }).first()) as { created_at: string; engine: string } | undefined,
      120_000,
      200,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 20_000 - Date.now())));
    await killed.start();
    const backAt = Date.now();

    await waitFor(
      'every acknowledged submission to be graded',
      async () => Number((await db('submissions').whereIn('status', ['queued', 'grading']).count({ n: '*' }).first())?.n) === 0,
      480_000,
      500,
    );
    const doneAt = Date.now();

    // exactly one result each, all graded with the full score: no timeout, no failure, no duplicate
    expect(acked.size).to.equal(BURST);
    const subs = (await db('submissions').select('id', 'status', 'score', 'received_at')) as Array<{ id: string; status: string; score: number; received_at: string }>;
    expect(subs.map((s) => s.id).sort()).to.deep.equal([...acked.keys()].sort());
    expect(subs.filter((s) => s.status !== 'graded'), 'submissions not graded').to.deep.equal([]);
    const results = (await db('results').select('submission_id', 'status', 'score', 'created_at', 'worker', 'engine')) as Array<{
      submission_id: string;
      status: string;
      score: number;
      created_at: string;
      worker: string;
      engine: string;
    }>;
    expect(results).to.have.length(BURST);
    expect(new Set(results.map((r) => r.submission_id)).size, 'one result per submission').to.equal(BURST);
    expect(results.filter((r) => r.status !== 'graded' || Number(r.score) !== 1), 'results not graded 1/1').to.deep.equal([]);
    const jobs = (await db('grading_jobs').select('submission_id', 'status', 'engine_failures', 'attempts')) as Array<{ submission_id: string; status: string; engine_failures: number; attempts: number }>;
    expect(jobs.filter((j) => j.status !== 'done')).to.deep.equal([]);
    // the interrupted job went back without using an attempt, and a surviving engine graded it
    const job = jobs.find((j) => j.submission_id === interrupted)!;
    expect(Number(job.engine_failures), 'engine failures under the interrupted job').to.equal(1);
    expect(Number(job.attempts), 'the engine failure used no attempt').to.equal(1);
    expect(handedOn.engine.startsWith(killed.host), `graded on ${handedOn.engine}`).to.equal(false);
    // every engine graded, the killed one before its death or after its return
    const byEngine = new Map<string, number>();
    for (const r of results) {
      const e = engines.find((x) => r.engine.startsWith(`${x.host} `));
      expect(e, `a result from an unknown engine: ${r.engine}`).to.not.equal(undefined);
      byEngine.set(e!.host, (byEngine.get(e!.host) ?? 0) + 1);
    }
    for (const e of surviving) expect(byEngine.get(e.host) ?? 0, `results from ${e.host}`).to.be.above(0);
    const afterReturn = results.filter((r) => r.engine.startsWith(`${killed.host} `) && Number(r.created_at) > backAt);
    expect(afterReturn.length, 'results from the killed engine after it came back').to.be.above(0);

    // the killed engine's worker saw its engine go and come back, and said so once each
    const log = readFileSync(path.join(dir, 'worker1.log'), 'utf8');
    expect(log.match(/the Docker engine cannot grade/g) ?? [], 'engine-down lines').to.have.length(1);
    expect(log.match(/the Docker engine answers again/g) ?? [], 'engine-back lines').to.have.length(1);
    for (const w of workers) expect(w.child.exitCode, 'a worker exited').to.equal(null);

    // while the workers run, every container on an engine is a pre-started one of the living worker, with no job
    for (const e of engines) {
      for (const c of await e.containers(CONTAINER_LABEL)) {
        if (c.State !== 'running') continue; // the killed engine's dead ones are swept below
        expect(c.Labels[POOL_LABEL], `a container with a job left on ${e.host}`).to.equal('1');
      }
    }
    // the workers stop (SIGTERM): nothing is left on any engine, the killed one's dead containers swept too
    await Promise.all(
      workers.map(async (w) => {
        w.child.kill('SIGTERM');
        expect(await w.exited, 'a worker stopped with status 0').to.equal(0);
      }),
    );
    for (const e of surviving) expect(await e.containers(CONTAINER_LABEL), `containers on ${e.host}`).to.deep.equal([]);
    expect(await killed.containers(CONTAINER_LABEL), `containers on ${killed.host}`).to.deep.equal([]);

    const received = new Map(subs.map((s) => [s.id, Number(s.received_at)]));
    const ttr = results.map((r) => Number(r.created_at) - received.get(r.submission_id)!).sort((a, b) => a - b);
    const whileDown = results.filter((r) => received.get(r.submission_id)! >= killedAt && received.get(r.submission_id)! < backAt);
    console.log(
      [
        `      ${BURST} submissions over ${seconds(burstMs)} s; engine 1 killed at +${seconds(killedAt - start)} s, back at +${seconds(backAt - start)} s; all graded at +${seconds(doneAt - start)} s`,
        `      time to result: p50 ${seconds(percentile(ttr, 50))} s, p90 ${seconds(percentile(ttr, 90))} s, max ${seconds(ttr[ttr.length - 1]!)} s`,
        `      the interrupted submission: graded on another engine ${seconds(Number(handedOn.created_at) - killedAt)} s after the kill`,
        `      ${whileDown.length} submissions arrived while engine 1 was down; results by engine: ${engines.map((e, i) => `engine ${i + 1}: ${byEngine.get(e.host) ?? 0}`).join(', ')}`,
      ].join('\n'),
    );
  });
});
