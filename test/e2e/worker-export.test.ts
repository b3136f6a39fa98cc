import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createDb, type Db } from '../../src/db/knex.js';
import { freshDb } from '../helpers/databases.js';
import { requireEngine } from '../helpers/engine.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { ROOT, writeConfig } from '../helpers/service.js';

function gofer(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [path.join(ROOT, 'bin/gofer.js'), ...args], (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/**
 * `gofer serve` with no workers and a separate `gofer worker` sharing one PostgreSQL database
 * (what more machines do), then the grades out of `gofer export`, and the configuration checks.
 */
describe('serve + worker on PostgreSQL, export, check-config (real engine, real PostgreSQL)', function () {
  this.timeout(180_000);
  let drop: () => Promise<void>;
  let url: string;
  let file: string;
  let dir: string;
  let port: number;
  const procs: GoferProcess[] = [];

  before(async () => {
    await requireEngine();
    const fresh = await freshDb('pg');
    await fresh.db.destroy();
    url = fresh.url!;
    drop = async () => {
      const again = createDb({ database: { client: 'pg', url: process.env.GOFER_TEST_PG_URL!, pool: 1 }, dataDir: '/tmp' });
      await again.raw(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
      await again.destroy();
    };
    port = await freePort();
    ({ file, dir } = writeConfig({
      database: { client: 'pg', url },
      server: { host: '127.0.0.1', port },
      queue: { pollMs: 100 },
    }));
  });

  after(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await drop?.();
  });

  it('a submission taken by `serve --workers 0` is graded by a separate `gofer worker`', async () => {
    const serve = spawnGofer(['--config', file, 'serve', '--workers', '0'], path.join(dir, 'serve.log'));
    procs.push(serve);
    await waitFor('serve', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 30_000);
    const { stdout: token } = await gofer(['--config', file, 'token', 'create', 'ada']);
    const nb = JSON.parse(readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8'));
    const res = await fetch(`http://127.0.0.1:${port}/services/gofer/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `token ${token.trim()}` },
      body: JSON.stringify({ nb }),
    });
    expect(res.status).to.equal(200);
    const { id } = (await res.json()) as { id: string };
    await new Promise((r) => setTimeout(r, 1000));
    const db: Db = createDb({ database: { client: 'pg', url, pool: 1 }, dataDir: dir });
    try {
      expect((await db('submissions').where({ id }).first()).status, 'nobody grades without a worker').to.equal('queued');
      const worker = spawnGofer(['--config', file, 'worker', '--workers', '1'], path.join(dir, 'worker.log'));
      procs.push(worker);
      await waitFor('the worker to grade it', async () => (await db('submissions').where({ id }).first()).status === 'graded', 90_000, 300);
      worker.child.kill('SIGTERM');
      expect(await worker.exited).to.equal(0);
    } finally {
      await db.destroy();
    }
    serve.child.kill('SIGTERM');
    expect(await serve.exited).to.equal(0);
  });

  it('exports grades as CSV, and in the legacy gradebook shape', async () => {
    const csv = await gofer(['--config', file, 'export', '--format', 'csv', '--course', '8x']);
    expect(csv.code, csv.stderr).to.equal(0);
    const rows = csv.stdout.trim().split('\n');
    expect(rows[0]).to.equal('course,assignment,learner,score,points,max_points,status,submitted_at,graded_at,submission,grade,out_of,name,email,time_zone,submitted_local,graded_local');
    expect(rows[1]).to.match(/^8x,lab01,ada,1,3,3,graded,.*,1,1,,,UTC,\d{4}-\d{2}-\d{2} \d{2}:\d{2},\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
    const legacy = await gofer(['--config', file, 'export', '--legacy']);
    expect(legacy.stdout.trim().split('\n')).to.have.length(2);
    expect(legacy.stdout).to.match(/^userid,grade,section,lab,timestamp\nada,1,1,lab01,\d{10}\n$/);
    const both = await gofer(['--config', file, 'export', '--legacy', '--course', '8x']);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.match(/has no course; filter with --assignment/);
  });

  it('check-config names the file, the path inside it and what is wrong', async () => {
    expect((await gofer(['--config', file, 'check-config'])).stdout).to.match(/valid \(1 course\(s\), 2 assignment\(s\)\)/);
    const { file: bad } = writeConfig({ courses: [{ id: '8x', assignments: [{ id: 'lab01', tests: '/nonexistent/tests', policy: 'strict' }] }] });
    const out = await gofer(['--config', bad, 'check-config']);
    expect(out.code).to.equal(78);
    expect(out.stderr).to.include(bad).and.match(/courses\[8x\]\.assignments\[lab01\]\.policy: Invalid enum value/).and.match(/courses\[8x\]\.assignments\[lab01\]\.tests: \/nonexistent\/tests is not a directory/);
  });
});
