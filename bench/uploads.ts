/**
 * Anonymous uploads: what 40 strangers each posting a 25 MB notebook cost the server, against a
 * baseline that reads before it asks who is calling, in the same run.
 *
 *   npm run bench:uploads -- [--uploads 40] [--mb 25] [--rounds 2]
 *
 * Load: `--uploads` connections at once on loopback, each sending `POST /services/gofer/` with
 * a `--mb` MB JSON body and no credentials, as fast as the server takes it, and stopping when
 * answered (test/helpers/raw-http.ts). Each target runs in a child process of its own, so its
 * memory is its own:
 *   1. baseline: an express 5 app whose POST route reads the body (express.raw, limit 25 MB,
 *      what Gofer's routes did before identity came first) and then answers 401;
 *   2. Gofer: `run({http: true, workers: 0})` with a fresh SQLite database.
 *
 * Reported per target and round: the answers by status, the seconds until all were answered,
 * the bytes the server read (all connections), and the server's resident memory (VmRSS)
 * before the load and at its peak during it (sampled every 10 ms, and the process's VmHWM).
 * Targets: every upload answered 401; Gofer's peak RSS increase < 10% of the bytes offered.
 * Linux only (/proc). The exit code is 0 when the bench ran (whether or not targets are met).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import express from 'express';
import { configSchema } from '../src/config/schema.js';
import { silentLogger } from '../src/lib/logger.js';
import { run } from '../src/server.js';
import { bodyOf, rawRequest } from '../test/helpers/raw-http.js';

const PATH = '/services/gofer/';
const MB = 1024 * 1024;
type Target = 'baseline' | 'gofer';

// ================================================================ a target (child process)

/** Starts the target, counts the bytes its connections read, answers the parent's questions. */
async function serve(target: Target): Promise<void> {
  let bytesRead = 0;
  const seen = new WeakSet<Socket>();
  subscribe('http.server.request.start', (message) => {
    const { request } = message as { request: IncomingMessage };
    const socket = request.socket;
    if (seen.has(socket)) return;
    seen.add(socket);
    socket.once('close', () => (bytesRead += socket.bytesRead));
  });
  let url: string;
  let dir: string | undefined;
  if (target === 'baseline') {
    const app = express();
    app.post(PATH, express.raw({ limit: '25mb', type: 'application/json' }), (_req, res) => {
      res.status(401).type('text/plain').send('Who are you?\n');
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  } else {
    dir = mkdtempSync(path.join(tmpdir(), 'gofer-bench-uploads-'));
    const config = configSchema.parse({ dataDir: dir, server: { host: '127.0.0.1', port: 0 } });
    url = (await run({ config, log: silentLogger(), http: true, workers: 0, env: {} })).url!;
  }
  process.on('message', (m: string) => {
    if (m === 'report') process.send!({ bytesRead, hwmKb: procStatusKb(process.pid, 'VmHWM') });
    if (m === 'exit') {
      if (dir) rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  });
  process.send!({ url });
}

// ================================================================ the load (parent process)

function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function ask<T>(child: ChildProcess, question: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(question);
  });
}

interface Figures {
  target: Target;
  round: number;
  statuses: Record<string, number>;
  seconds: number;
  offeredMb: number;
  serverReadMb: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  hwmMb: number;
}

async function measure(target: Target, round: number, uploads: number, mb: number): Promise<Figures> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', target], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { url } = await new Promise<{ url: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { url: string }));
      child.once('exit', (code) => reject(new Error(`the ${target} target exited with ${code}`)));
    });
    const pid = child.pid!;
    const rssBefore = procStatusKb(pid, 'VmRSS');
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, procStatusKb(pid, 'VmRSS'))), 10);
    const filler = Buffer.alloc(MB, 'x');
    const body = bodyOf([Buffer.from('{"nb": {"padding": "'), ...Array<Buffer>(mb - 1).fill(filler), Buffer.alloc(MB - 40, 'x'), Buffer.from('"}}')]);
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: uploads }, () =>
        rawRequest(url, { method: 'POST', path: PATH, headers: { 'content-type': 'application/json', connection: 'close' } }, body).catch((err: Error) => ({ status: `error: ${err.message.slice(0, 40)}` })),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, procStatusKb(pid, 'VmRSS'));
    // the connections' close events reach the child after the answers reach us
    await new Promise((r) => setTimeout(r, 200));
    const report = await ask<{ bytesRead: number; hwmKb: number }>(child, 'report');
    const statuses: Record<string, number> = {};
    for (const a of answers) statuses[String(a.status)] = (statuses[String(a.status)] ?? 0) + 1;
    return {
      target,
      round,
      statuses,
      seconds: round2(seconds),
      offeredMb: round2((uploads * body.length) / MB),
      serverReadMb: round2(report.bytesRead / MB),
      rssBeforeMb: round2(rssBefore / 1024),
      rssPeakMb: round2(rssPeak / 1024),
      hwmMb: round2(report.hwmKb / 1024),
    };
  } finally {
    child.send('exit');
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { uploads: { type: 'string', default: '40' }, mb: { type: 'string', default: '25' }, rounds: { type: 'string', default: '2' }, serve: { type: 'string' } },
  });
  if (values.serve) return serve(values.serve as Target);
  const uploads = Number(values.uploads);
  const mb = Number(values.mb);
  const all: Figures[] = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    // alternate which target goes first
    const order: Target[] = round % 2 ? ['baseline', 'gofer'] : ['gofer', 'baseline'];
    for (const target of order) {
      const f = await measure(target, round, uploads, mb);
      all.push(f);
      console.log(JSON.stringify(f));
    }
  }
  const gofer = all.filter((f) => f.target === 'gofer');
  const peakIncrease = Math.max(...gofer.map((f) => f.rssPeakMb - f.rssBeforeMb));
  const allRefused = all.every((f) => f.statuses['401'] === uploads);
  console.log(
    JSON.stringify({
      targets: { every401: allRefused, goferPeakIncreaseMb: round2(peakIncrease), under10PercentOfOffered: peakIncrease < 0.1 * gofer[0]!.offeredMb },
    }),
  );
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
