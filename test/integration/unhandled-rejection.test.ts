import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers/service.js';
import { waitFor } from '../helpers/process.js';

/**
 * The process-level guard, in a process of its own (a rejection nobody handles ends a Node
 * process by default): an express app with Gofer's request context and guard, and a route that
 * leaves a rejected promise behind. The process logs it with the request and keeps serving.
 */
const SCRIPT = `
import express from 'express';
import { requestContext, guardUnhandledRejections } from '${path.join(ROOT, 'dist/src/lib/request-context.js')}';
import { createLogger } from '${path.join(ROOT, 'dist/src/lib/logger.js')}';
const guarded = process.argv.at(-1) === 'guarded';
if (guarded) guardUnhandledRejections(createLogger({ format: 'json' }));
const app = express();
app.use(requestContext);
app.get('/boom', (_req, res) => {
  setTimeout(() => { Promise.reject(new Error('nobody awaited this')); }, 5);
  res.send('ok');
});
app.get('/health', (_req, res) => res.send('ok'));
const server = app.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
`;

describe('unhandled rejections', function () {
  this.timeout(60_000);

  const startScript = (mode: string) => {
    const child = spawn('node', ['--input-type=module', '-e', SCRIPT, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    return { child, exited, out: () => out, err: () => err };
  };

  for (const mode of ['guarded', 'unguarded'] as const) {
    it(mode === 'guarded' ? 'are logged with their request, and the process keeps serving' : 'without the guard, end the process (what the guard prevents)', async () => {
      const p = startScript(mode);
      try {
        const port = await waitFor('the script to listen', async () => (JSON.parse(p.out().split('\n')[0] || 'null') as { port: number } | null)?.port, 30_000, 50);
        expect((await fetch(`http://127.0.0.1:${port}/boom`)).status).to.equal(200);
        if (mode === 'unguarded') {
          expect(await p.exited).to.not.equal(0);
          expect(p.err()).to.include('nobody awaited this');
          return;
        }
        const entry = await waitFor('the rejection to be logged', async () => p.err().split('\n').find((l) => l.includes('unhandled rejection')), 10_000, 50);
        const logged = JSON.parse(entry) as { level: string; request: { method: string; path: string }; error: string };
        expect(logged.level).to.equal('error');
        expect(logged.request).to.deep.equal({ method: 'GET', path: '/boom' });
        expect(logged.error).to.include('nobody awaited this');
        expect((await fetch(`http://127.0.0.1:${port}/health`)).status).to.equal(200);
        expect(p.child.exitCode).to.equal(null);
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    });
  }
});
