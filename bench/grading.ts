/**
 * Grading throughput, overhead and CPU per notebook, against the naive baseline in the same run.
 *
 *   npm run bench:grading -- [--n 16] [--parallel 4] [--image gofer/grader:latest]
 *                            [--pool on|off|both] [--idle 5]
 *
 * Gofer: N copies of a trivial one-cell notebook graded through ContainerRunner (locked-down
 * container, harness sent in, privilege drop, kernel, one test), with the runner's pool of
 * pre-started containers off, on, or both (default both; bench/pool.ts: on is floor = parallel,
 * ceiling = 2 x parallel). Baseline: a fresh `docker run --rm -i --network none IMAGE` executing the
 * same notebook with nbclient and nothing else. Each runs one at a time and `--parallel` at a
 * time.
 *
 * CPU-seconds per notebook, for each run (bench/host-cpu.ts):
 *   - containers: what each container used by its own cgroup (Gofer: the harness's
 *     `timing.cpuMs`; the baseline: the same cgroup file read at the end of its script);
 *   - client: the process that drove the engine (Gofer's runner in this process; the baseline's
 *     `docker run` clients, reaped by this process), from /proc/self/stat, less the meters;
 *   - engine: dockerd + containerd + containerd-shims (utime + stime from /proc/<pid>/stat);
 *   - and, as cross-checks that include other work on a shared machine: every container of the
 *     engine by the engine's cgroup, and the whole host's busy CPU.
 * Idle: `--idle` notebooks graded one at a time, each after the machine settled (1 s, and the
 * pool refilled): the learner-visible time from handing the job to the runner to its result.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { gradingSchema } from '../src/config/schema.js';
import { ContainerRunner } from '../src/grading/container-runner.js';
import { gradeNotebook, readAssignment } from '../src/grading/grader.js';
import { silentLogger } from '../src/lib/logger.js';
import { CpuMeters, type CpuPerNotebook } from './host-cpu.js';
import { poolModes, poolSize, type PoolMode } from './pool.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '16' },
    parallel: { type: 'string', default: '4' },
    image: { type: 'string', default: 'gofer/grader:latest' },
    pool: { type: 'string' },
    idle: { type: 'string', default: '5' },
  },
});
/** The arguments, or a clear message and exit status 2. */
function args(): { N: number; PARALLEL: number; IDLE: number; POOL_MODES: PoolMode[] } {
  try {
    const [N, PARALLEL, IDLE] = [Number(values.n), Number(values.parallel), Number(values.idle)];
    for (const [name, v] of [['--n', N], ['--parallel', PARALLEL], ['--idle', IDLE]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number of at least 1`);
    }
    return { N, PARALLEL, IDLE, POOL_MODES: poolModes(values.pool, true) };
  } catch (err) {
    console.error(`bench/grading: ${(err as Error).message}`);
    process.exit(2);
  }
}
const { N, PARALLEL, IDLE, POOL_MODES } = args();
const IMAGE = values.image!;

const NOTEBOOK = JSON.stringify({
  nbformat: 4,
  nbformat_minor: 5,
  metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
  cells: [{ cell_type: 'code', id: 'c1', metadata: {}, execution_count: null, outputs: [], source: 'x = 1' }],
});

/** The baseline: nbclient runs the notebook, then the container's CPU is read from its cgroup as the harness reads it. */
const BASELINE_PY = [
  'import sys, nbformat',
  'from nbclient import NotebookClient',
  'nb = nbformat.reads(sys.stdin.read(), as_version=4)',
  'NotebookClient(nb, timeout=60, kernel_name="python3").execute()',
  'def cpu_ms():',
  '    for name in ("/sys/fs/cgroup/cpu.stat", "/sys/fs/cgroup/cpuacct/cpuacct.usage"):',
  '        try:',
  '            text = open(name).read()',
  '        except OSError:',
  '            continue',
  '        if name.endswith("cpu.stat"):',
  '            return [int(l.split()[1]) // 1000 for l in text.splitlines() if l.startswith("usage_usec ")][0]',
  '        return int(text) // 1000000',
  '    return -1',
  'print("ok", cpu_ms())',
].join('\n');

interface Graded {
  ms: number;
  /** The container's CPU by its own cgroup, in seconds. */
  cpuS: number;
  /** Gofer only: the notebook's cells, and kernel start-up + cells + tests. */
  notebookMs?: number;
  executionMs?: number;
}

function baselineOnce(): Promise<Graded> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('docker', ['run', '--rm', '-i', '--network', 'none', '-e', 'PYDEVD_DISABLE_FILE_VALIDATION=1', IMAGE, 'python3', '-c', BASELINE_PY], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      const cpu = /^ok (-?\d+)$/m.exec(out);
      if (code !== 0 || !cpu) return reject(new Error(`baseline failed: ${err.slice(-500)}`));
      if (Number(cpu[1]) < 0) return reject(new Error('baseline: the container has no cgroup CPU file (cpu.stat or cpuacct.usage) to read'));
      resolve({ ms: performance.now() - started, cpuS: Number(cpu[1]) / 1000 });
    });
    child.stdin.end(NOTEBOOK);
  });
}

async function pool<T>(n: number, parallel: number, task: () => Promise<T>): Promise<{ seconds: number; results: T[] }> {
  const results: T[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++;
        results.push(await task());
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, results };
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Target {
  name: string;
  task: () => Promise<Graded>;
  /** Resolves when nothing of the last run is still going on (the pool refilled). */
  settle: () => Promise<void>;
  stop: () => Promise<void>;
  pool?: () => string;
}

async function main(): Promise<void> {
  const docker = new Docker();
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-bench-'));
  mkdirSync(path.join(dir, 'tests'));
  writeFileSync(path.join(dir, 'tests', 'q1.py'), "test = {'name': 'q1', 'suites': [{'cases': [{'code': '>>> x\\n1'}], 'setup': '', 'teardown': '', 'type': 'doctest'}]}\n");
  const assignment = await readAssignment(path.join(dir, 'tests'));
  const limits = gradingSchema.parse({ timeoutSeconds: 60 });
  const notebook = Buffer.from(NOTEBOOK);

  const goferTarget = (mode: PoolMode): Target => {
    const runner = new ContainerRunner(docker, silentLogger(), { pool: poolSize(mode, PARALLEL) });
    return {
      name: mode === 'on' ? 'gofer_pool' : 'gofer',
      task: async () => {
        const started = performance.now();
        const r = await gradeNotebook(runner, { notebook, policy: 'gofer', image: IMAGE, limits, ...assignment });
        if (r.status !== 'graded' || r.score !== 1) throw new Error(`gofer graded wrongly: ${JSON.stringify(r)}`);
        const t = r.timing ?? {};
        if (t.cpuMs === undefined) throw new Error('the harness reported no container CPU (timing.cpuMs)');
        // the notebook's execution: kernel start-up, its cells, and its tests
        const executionMs = (t.kernelStartMs ?? 0) + (t.notebookMs ?? 0) + (t.testsMs ?? 0);
        return { ms: performance.now() - started, cpuS: t.cpuMs / 1000, notebookMs: t.notebookMs ?? 0, executionMs };
      },
      settle: async () => {
        await runner.settled();
      },
      stop: () => runner.stop(),
      ...(mode === 'on'
        ? {
            pool: () => {
              const s = runner.poolStats();
              return `pool hits ${s.hits}, misses ${s.misses}`;
            },
          }
        : {}),
    };
  };
  const targets: Target[] = [{ name: 'baseline', task: baselineOnce, settle: () => Promise.resolve(), stop: () => Promise.resolve() }, ...POOL_MODES.map(goferTarget)];

  const rows: string[][] = [];
  const report: Record<string, number | null> = {};
  const idleLines: string[] = [];
  try {
    await new ContainerRunner(docker, silentLogger()).checkReady(IMAGE);
    // warm every path once (page cache, image layers, the pool's first containers)
    for (const t of targets) {
      await t.task();
      await t.settle();
    }

    for (const parallel of [1, PARALLEL]) {
      const means: Record<string, number> = {};
      for (const t of targets) {
        await sleep(1000);
        const meters = new CpuMeters();
        const run = await pool(N, parallel, t.task);
        const cpu: CpuPerNotebook = meters.stop(N, run.results.reduce((a, b) => a + b.cpuS, 0));
        await t.settle();
        const rate = N / run.seconds;
        const mean = run.results.reduce((a, b) => a + b.ms, 0) / N;
        means[t.name] = mean;
        const key = `p${parallel}_${t.name}`;
        report[`${key}_nb_per_s`] = rate;
        report[`${key}_cpu_s_per_nb`] = cpu.total;
        report[`${key}_container_cpu_s`] = cpu.containers;
        report[`${key}_client_cpu_s`] = cpu.client;
        report[`${key}_engine_cpu_s`] = cpu.engine;
        report[`${key}_engine_cgroup_cpu_s`] = cpu.engineCgroup;
        report[`${key}_host_cpu_s`] = cpu.host;
        let overhead = '';
        if (t.name !== 'baseline') {
          const exec = run.results.reduce((a, b) => a + (b.executionMs ?? 0), 0) / N;
          report[`${key}_vs_baseline_s`] = (mean - means.baseline!) / 1000;
          report[`${key}_overhead_beyond_execution_s`] = (mean - exec) / 1000;
          overhead = `${((mean - means.baseline!) / 1000).toFixed(2)} vs baseline, ${((mean - exec) / 1000).toFixed(2)} beyond kernel+cells+tests`;
        }
        rows.push([
          String(parallel),
          t.name,
          rate.toFixed(2),
          (mean / 1000).toFixed(2),
          cpu.containers.toFixed(2),
          cpu.client.toFixed(2),
          cpu.engine.toFixed(2),
          cpu.total.toFixed(2),
          cpu.engineCgroup === null ? 'n/a' : cpu.engineCgroup.toFixed(2),
          cpu.host.toFixed(2),
          [overhead, t.pool?.() ?? ''].filter(Boolean).join('; '),
        ]);
      }
    }

    for (const t of targets) {
      const times: number[] = [];
      for (let i = 0; i < IDLE; i++) {
        await sleep(1000);
        times.push((await t.task()).ms);
        await t.settle();
      }
      report[`idle_${t.name}_median_s`] = median(times) / 1000;
      idleLines.push(`  ${t.name.padEnd(10)} ${(median(times) / 1000).toFixed(2)} s (of ${times.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
    }
  } finally {
    for (const t of targets) await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  console.log(`bench/grading: ${N} notebooks per run, image ${IMAGE}, pool ${POOL_MODES.join(' and ')}`);
  console.log('CPU-seconds per notebook: containers (their own cgroup) + client (the process driving the engine) + engine (dockerd, containerd, shims) = total;');
  console.log('engine cgroup (all containers on the engine) and host (every process) are cross-checks that include other work on a shared machine.');
  const head = ['par', 'target', 'nb/s', 'mean s', 'containers', 'client', 'engine', 'total', 'eng.cgroup', 'host', 'notes (s per notebook)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`idle (one at a time, after the machine settled): handing the job to the runner -> its result, median of ${IDLE}`);
  for (const l of idleLines) console.log(l);
  console.log(JSON.stringify(report));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
