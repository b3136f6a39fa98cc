/**
 * A deadline on one host: many learners submit a realistic notebook in the last minutes.
 *
 *   npm run bench:deadline -- [--learners 1000] [--minutes 5] [--pool on|off] [--workers N]
 *                             [--idle 5] [--max-drain-minutes 120] [--keep]
 *
 * The real path, as a single-host course team runs it: one `gofer serve` (bin/gofer.js) with its
 * grading workers in the same process (`queue.workers`, default one per core), SQLite, the local
 * Docker engine, on loopback, from a temporary configuration. Each learner has an API token and
 * posts `{"nb": …}` to the hub's submit endpoint (`POST /services/gofer/`), as the Submit button
 * does. Results are read from the database.
 *
 * The notebook: numpy and pandas, about 1 CPU-s in the grader image (0.45 s of imports, 0.6 s of
 * work: a 400,000-row DataFrame, a groupby, a pivot table, a sort, a 400 x 400 matrix iterated
 * and its eigenvalues); three test files (two cases each, one hidden). Each learner's notebook is
 * their own (its seed), so none is a duplicate.
 *
 * Arrivals over `--minutes` (T): 40 % in the last fifth of T (the last minute of 5), evenly;
 * the other 60 % before it, at a rate rising linearly from zero (arrival i of L at the quantile
 * (i + 0.5) / L of that curve, so the schedule is the same every run).
 *
 * First, `--idle` learners submit the example course's notebook (config/example/lab01) one at a
 * time, 5 s apart, each waiting for its result: the learner-visible time on a quiet service
 * (acknowledgement to stored result), median. Then the
 * burst. Reported for the burst: time to result p50/p90/p99 (the submit's acknowledgement to the stored result),
 * queue wait p50/p90/p99 (the submission's arrival to its job's claim), notebooks per second
 * overall (first arrival to last result) and during the drain (after the last arrival), the
 * backlog at the last arrival, and CPU-seconds per notebook: the containers (each result's
 * `results.cpu_ms`, the harness's figure from the container's own cgroup), Gofer (the serve
 * process and its children, from /proc), the engine (dockerd, containerd, shims), and as
 * cross-checks every container on the engine and the whole host (bench/host-cpu.ts), which
 * include other work on a shared machine. A summary, then one JSON line. Everything it starts (the process, its containers, the temporary directory) is
 * removed at the end, on an error, and on Ctrl-C (`--keep` keeps the directory, with serve.log).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { loadConfig } from '../src/config/load.js';
import { createDb, type Db } from '../src/db/knex.js';
import { CONTAINER_LABEL, OWNER_LABEL } from '../src/grading/container-runner.js';
import { systemClock } from '../src/lib/clock.js';
import { ApiTokenStore } from '../src/submissions/identity.js';
import { requireEngine } from '../test/helpers/engine.js';
import { notebook, okTest } from '../test/helpers/notebooks.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../test/helpers/process.js';
import { ROOT, writeConfig } from '../test/helpers/service.js';
import { CpuMeters, procCpuSeconds } from './host-cpu.js';
import { poolModes, poolSize, type PoolMode } from './pool.js';

const { values } = parseArgs({
  options: {
    learners: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '5' },
    pool: { type: 'string' },
    workers: { type: 'string' },
    'max-drain-minutes': { type: 'string', default: '120' },
    idle: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
  },
});

/** The arguments, or a clear message and exit status 2. */
function args(): { learners: number; minutes: number; workers: number; maxDrainMs: number; idle: number; pool: PoolMode } {
  try {
    const learners = Number(values.learners);
    const minutes = Number(values.minutes);
    const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
    const maxDrain = Number(values['max-drain-minutes']);
    if (!Number.isInteger(learners) || learners < 1) throw new Error('--learners must be a whole number of at least 1');
    if (!(minutes > 0)) throw new Error('--minutes must be a number above 0');
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error('--workers must be a whole number from 1 to 64');
    if (!(maxDrain > 0)) throw new Error('--max-drain-minutes must be a number above 0');
    const idle = Number(values.idle);
    if (!Number.isInteger(idle) || idle < 0) throw new Error('--idle must be a whole number (0 for none)');
    const [pool] = poolModes(values.pool, false);
    return { learners, minutes, workers, maxDrainMs: maxDrain * 60_000, idle, pool: pool! };
  } catch (err) {
    console.error(`bench/deadline: ${(err as Error).message}`);
    process.exit(2);
  }
}
const ARGS = args();

/** The learner's cells; `{seed}` makes each learner's notebook their own. */
const CELLS = [
  'import numpy as np\nimport pandas as pd',
  `rng = np.random.default_rng({seed})
n = 400_000
sales = pd.DataFrame({'store': rng.integers(0, 40, n), 'day': rng.integers(0, 365, n),
                      'units': rng.poisson(3, n), 'price': rng.uniform(1, 20, n).round(2)})
sales['revenue'] = sales['units'] * sales['price']`,
  `by_store = sales.groupby('store').agg(revenue=('revenue', 'sum'), units=('units', 'sum'), days=('day', 'nunique'))
top_store = int(by_store['revenue'].idxmax())
monthly = sales.assign(month=sales['day'] // 31).pivot_table(index='store', columns='month', values='revenue', aggfunc='sum')
best = sales.sort_values(['store', 'revenue'], ascending=[True, False]).groupby('store').head(5)
stores = len(by_store)`,
  `m = rng.normal(size=(400, 400))
for _ in range(20):
    m = np.tanh(m @ m.T / 400)
spectrum = np.linalg.eigvalsh(m)`,
];

const TESTS: Record<string, string> = {
  q1: okTest({ name: 'q1', points: 1, cases: [{ code: '>>> stores\n40' }, { code: '>>> sales.shape\n(400000, 5)', hidden: true }] }),
  q2: okTest({ name: 'q2', points: 1, cases: [{ code: ">>> bool((by_store['units'] > 0).all())\nTrue" }, { code: '>>> monthly.shape\n(40, 12)', hidden: true }] }),
  q3: okTest({ name: 'q3', points: 1, cases: [{ code: '>>> len(spectrum), len(best)\n(400, 200)' }, { code: '>>> bool(np.isfinite(spectrum).all())\nTrue', hidden: true }] }),
};

/** When learner i of `n` arrives, in ms after the start: see the header (40 % in the last fifth, linear ramp before). */
function arrivalMs(i: number, n: number, windowMs: number): number {
  const u = (i + 0.5) / n;
  const ramp = 0.8 * windowMs;
  return u < 0.6 ? ramp * Math.sqrt(u / 0.6) : ramp + ((u - 0.6) / 0.4) * (windowMs - ramp);
}

function percentiles(values: number[]): { p50: number; p90: number; p99: number; max: number } {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number): number => (v.length ? v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]! : NaN);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: v.length ? v[v.length - 1]! : NaN };
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}

const s = (ms: number): string => (ms / 1000).toFixed(1);

interface Acked {
  learner: number;
  id: string;
  ackAt: number;
}

class Bench {
  private serve: GoferProcess | undefined;
  private db: Db | undefined;
  private dir: string | undefined;
  private courseDir: string | undefined;
  private cleaned: Promise<string[]> | undefined;

  async run(): Promise<void> {
    const { learners, minutes, workers, pool } = ARGS;
    await requireEngine();
    const port = await freePort();
    this.courseDir = mkdtempSync(path.join(tmpdir(), 'gofer-deadline-'));
    const tests = path.join(this.courseDir, 'tests');
    mkdirSync(tests);
    for (const [name, text] of Object.entries(TESTS)) writeFileSync(path.join(tests, `${name}.py`), text);
    const written = writeConfig({
      server: { host: '127.0.0.1', port, submissionsPerMinute: 60 },
      queue: { workers, pool: poolSize(pool, workers) },
      log: { level: 'warn' },
      courses: [
        {
          id: '8x',
          instructors: ['prof'],
          assignments: [
            { id: 'deadline', tests, policy: 'otter' },
            // the idle phase grades the example course's notebook
            { id: 'lab01', tests: path.join(ROOT, 'config/example/lab01/tests'), files: ['data.csv'] },
          ],
        },
      ],
    });
    this.dir = written.dir;
    const config = loadConfig(written.file, {});
    const db = createDb(config);
    this.db = db;

    this.serve = spawnGofer(['--config', written.file, 'serve'], path.join(written.dir, 'serve.log'));
    const serve = this.serve;
    const exited = serve.exited.then((code) => {
      if (this.cleaned) return new Promise<never>(() => undefined); // stopped by the clean-up
      throw new Error(`gofer serve exited (${code}) during the bench; see ${path.join(written.dir, 'serve.log')}`);
    });
    exited.catch(() => undefined);
    await Promise.race([waitFor('gofer serve to answer /health', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 120_000), exited]);
    const tokens = new ApiTokenStore(db, systemClock);
    // the burst's learners, then the idle phase's
    const names = [
      ...Array.from({ length: learners }, (_, i) => `learner${String(i).padStart(4, '0')}`),
      ...Array.from({ length: ARGS.idle }, (_, i) => `idle${i}`),
    ];
    const secrets: string[] = [];
    for (const name of names) secrets.push(await tokens.create(name));
    const example = JSON.parse(readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8')) as { cells: unknown[] };
    const idleBody = (k: number): string =>
      JSON.stringify({ nb: { ...example, cells: [...example.cells, { cell_type: 'code', id: `idle-${k}`, metadata: {}, execution_count: null, outputs: [], source: `# idle learner ${k}` }] } });
    const bodies = names.map((_, i) =>
      i < learners ? JSON.stringify({ nb: notebook(CELLS.map((c) => c.replace('{seed}', String(i + 1))), { assignment: 'deadline' }) }) : idleBody(i - learners),
    );

    /** Learner i submits; the id and when the answer came, or why it was refused. */
    const post = async (i: number): Promise<Acked> => {
      const res = await fetch(`http://127.0.0.1:${port}/services/gofer/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `token ${secrets[i]}` },
        body: bodies[i],
      });
      const body = (await res.json()) as { id?: string; duplicate?: boolean };
      if (res.status !== 200 || !body.id || body.duplicate) throw new Error(`${names[i]}: ${res.status} ${JSON.stringify(body)}`);
      return { learner: i, id: body.id, ackAt: Date.now() };
    };

    // idle: one learner at a time on a quiet service (5 s apart, so a pool has refilled)
    const idle: number[] = [];
    for (let k = 0; k < ARGS.idle; k++) {
      await Promise.race([new Promise((r) => setTimeout(r, 5000)), exited]);
      const a = await post(learners + k);
      const stored = await Promise.race([
        waitFor('the idle submission\'s result', async () => (await db('results').where({ submission_id: a.id }).first('created_at')) as { created_at: number | string } | undefined, 600_000, 50),
        exited,
      ]);
      idle.push(Number(stored.created_at) - a.ackAt);
    }

    const windowMs = minutes * 60_000;
    const meters = new CpuMeters(() => procCpuSeconds(serve.child.pid!));
    const start = Date.now();
    const acked: Acked[] = [];
    const refused: string[] = [];
    const submit = async (i: number): Promise<void> => {
      await new Promise((r) => setTimeout(r, Math.max(0, start + arrivalMs(i, learners, windowMs) - Date.now())));
      try {
        acked.push(await post(i));
      } catch (err) {
        refused.push((err as Error).message);
      }
    };
    const progress = setInterval(() => {
      void db('submissions')
        .whereNotNull('graded_at')
        .count({ n: '*' })
        .first()
        .then((r) => console.error(`  +${s(Date.now() - start)} s: ${acked.length} acknowledged, ${Number(r?.n)} with a result`))
        .catch(() => undefined);
    }, 30_000);
    try {
      await Promise.race([Promise.all(Array.from({ length: learners }, (_, i) => submit(i))), exited]);
      const lastAck = Math.max(...acked.map((a) => a.ackAt));
      // the drain: every acknowledged submission has its result (graded_at is set for a failure too)
      const drainUntil = Date.now() + ARGS.maxDrainMs;
      let pending = acked.length;
      while (Date.now() < drainUntil) {
        pending = Number((await db('submissions').whereNull('graded_at').count({ n: '*' }).first())?.n);
        if (pending === 0) break;
        await Promise.race([new Promise((r) => setTimeout(r, 1000)), exited]);
      }
      const all = (await db('submissions as s')
        .join('results as r', 'r.submission_id', 's.id')
        .join('grading_jobs as j', 'j.id', 'r.job_id')
        .select('s.id', 's.received_at', 'j.claimed_at', 'r.created_at', 'r.status', 'r.score', 'r.cpu_ms')) as Array<{
        id: string;
        received_at: number | string;
        claimed_at: number | string | null;
        created_at: number | string;
        status: string;
        score: number;
        cpu_ms: number | null;
      }>;
      // the pool's takes over the whole run (the idle phase's included), from serve's /metrics
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const takes = (outcome: string): number => Number(new RegExp(`^gofer_pool_takes_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
      const poolTakes = { hit: takes('hit'), miss: takes('miss') };
      const burst = new Set(acked.map((a) => a.id));
      const rows = all.filter((r) => burst.has(r.id));
      const cpu = meters.stop(rows.length || 1, rows.reduce((a, r) => a + (r.cpu_ms ?? 0), 0) / 1000);
      const withoutCpu = rows.filter((r) => r.cpu_ms === null).length;
      const byId = new Map(rows.map((r) => [r.id, r]));
      const toResult: number[] = [];
      const wait: number[] = [];
      for (const a of acked) {
        const r = byId.get(a.id);
        if (!r) continue;
        toResult.push(Number(r.created_at) - a.ackAt);
        if (r.claimed_at !== null) wait.push(Number(r.claimed_at) - Number(r.received_at));
      }
      const firstArrival = Math.min(...rows.map((r) => Number(r.received_at)));
      const lastResult = Math.max(...rows.map((r) => Number(r.created_at)));
      const afterLastAck = rows.filter((r) => Number(r.created_at) > lastAck).length;
      const graded = rows.filter((r) => r.status === 'graded').length;
      const full = rows.filter((r) => r.status === 'graded' && r.score === 1).length;
      const ttr = percentiles(toResult);
      const qw = percentiles(wait);
      const report = {
        learners,
        minutes,
        workers,
        pool,
        poolTakes,
        acknowledged: acked.length,
        refused: refused.length,
        results: rows.length,
        pending,
        graded,
        fullScore: full,
        idleTimeToResultMedianS: idle.length ? median(idle) / 1000 : null,
        timeToResultS: { p50: ttr.p50 / 1000, p90: ttr.p90 / 1000, p99: ttr.p99 / 1000, max: ttr.max / 1000 },
        queueWaitS: { p50: qw.p50 / 1000, p90: qw.p90 / 1000, p99: qw.p99 / 1000, max: qw.max / 1000 },
        notebooksPerSecond: rows.length / ((lastResult - firstArrival) / 1000),
        drainNotebooksPerSecond: afterLastAck / ((lastResult - lastAck) / 1000),
        backlogAtLastArrival: afterLastAck,
        lastResultAfterStartS: (lastResult - start) / 1000,
        cpuSecondsPerNotebook: cpu,
      };
      console.log(`bench/deadline: ${learners} learners over ${minutes} min (40 % in the last fifth), gofer serve with ${workers} workers, SQLite, pool ${pool} (takes: ${poolTakes.hit} ready, ${poolTakes.miss} started then)`);
      console.log(`  acknowledged ${acked.length}, refused ${refused.length}, results ${rows.length} (graded ${graded}, full score ${full}), without a result ${pending}`);
      if (idle.length) console.log(`  idle, one at a time before the burst: acknowledged -> stored median ${(median(idle) / 1000).toFixed(2)} s (of ${idle.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
      console.log(`  time to result (acknowledged -> stored): p50 ${s(ttr.p50)} s, p90 ${s(ttr.p90)} s, p99 ${s(ttr.p99)} s, max ${s(ttr.max)} s`);
      console.log(`  queue wait (arrival -> claim):           p50 ${s(qw.p50)} s, p90 ${s(qw.p90)} s, p99 ${s(qw.p99)} s, max ${s(qw.max)} s`);
      console.log(
        `  notebooks per second: ${report.notebooksPerSecond.toFixed(2)} overall; ${report.drainNotebooksPerSecond.toFixed(2)} during the drain ` +
          `(${afterLastAck} left at the last arrival, the last result at +${s(lastResult - start)} s)`,
      );
      console.log(
        `  CPU-s per notebook: containers ${cpu.containers.toFixed(2)} + Gofer ${cpu.client.toFixed(2)} + engine ${cpu.engine.toFixed(2)} = ${cpu.total.toFixed(2)}; ` +
          `cross-checks: every container on the engine ${cpu.engineCgroup?.toFixed(2) ?? 'n/a'}, host (every process) ${cpu.host.toFixed(2)}` +
          (withoutCpu ? ` (${withoutCpu} results had no container CPU)` : ''),
      );
      for (const r of refused.slice(0, 5)) console.log(`  refused: ${r}`);
      console.log(JSON.stringify(report));
    } finally {
      clearInterval(progress);
    }
  }

  /** Stops serve, removes its containers, the database connection and the directory; returns what went wrong. */
  cleanup(): Promise<string[]> {
    this.cleaned ??= (async () => {
      const problems: string[] = [];
      const serve = this.serve;
      if (serve && serve.child.exitCode === null && serve.child.signalCode === null) {
        serve.child.kill('SIGTERM');
        const killer = setTimeout(() => serve.child.kill('SIGKILL'), 15_000);
        await serve.exited;
        clearTimeout(killer);
      }
      await this.db?.destroy().catch((err: Error) => problems.push(`close the database: ${err.message}`));
      if (serve?.child.pid) {
        const docker = new Docker();
        const owner = `${hostname()}/${serve.child.pid}`;
        const left = (await docker.listContainers({ all: true, filters: { label: [CONTAINER_LABEL] } })).filter((c) => c.Labels[OWNER_LABEL] === owner);
        for (const c of left) await docker.getContainer(c.Id).remove({ force: true }).catch((err: Error) => problems.push(`remove container ${c.Id}: ${err.message}`));
        if (left.length) problems.push(`gofer serve left ${left.length} grading container(s); removed`);
      }
      for (const dir of [this.dir, this.courseDir]) {
        if (dir && !values.keep) rmSync(dir, { recursive: true, force: true });
        else if (dir) console.error(`kept ${dir}`);
      }
      return problems;
    })();
    return this.cleaned;
  }
}

const bench = new Bench();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench/deadline: ${signal}, cleaning up`);
    void bench.cleanup().finally(() => process.exit(130));
  });
}
try {
  await bench.run();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  const problems = await bench.cleanup();
  for (const p of problems) console.error(`clean-up: ${p}`);
  if (problems.length) process.exitCode = 1;
}
