import { expect } from 'chai';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/logger.js';
import { run, type Running } from '../../src/server.js';
import { EngineProxy } from '../helpers/engine-proxy.js';
import { removeOwnContainers, requireEngine } from '../helpers/engine.js';
import Docker from 'dockerode';
import { spawnGofer, waitFor } from '../helpers/process.js';
import { writeConfig } from '../helpers/service.js';

/** Hosts you can see: /health on serve and on `gofer worker` says what is broken, and 503 when this process cannot work. */
describe('/health on serve and on gofer worker (real engine behind a socket that can die)', function () {
  this.timeout(60_000);
  let proxy: EngineProxy;
  let serve: Running | undefined;
  let worker: Running | undefined;

  before(async () => {
    await requireEngine();
    proxy = new EngineProxy(path.join(mkdtempSync(path.join(tmpdir(), 'gofer-health-')), 'docker.sock'));
    await proxy.start();
  });
  after(async () => {
    await worker?.stop();
    await serve?.stop();
    await proxy.kill();
    // the worker's pre-started containers, made through the proxy this test killed
    await removeOwnContainers(new Docker());
  });

  it('reports engine, database, waiting and back-off jobs and heartbeats; the worker answers 503 while its engine is down', async () => {
    const { file } = writeConfig({ docker: { socketPath: proxy.socketPath }, worker: { healthPort: 0 }, queue: { heartbeatSeconds: 0.2, engineProbeMs: 100 } });
    const config = loadConfig(file, {});
    serve = await run({ config, log: silentLogger(), http: true, workers: 0, env: {} });
    worker = await run({ config, log: silentLogger(), http: false, workers: 1, env: {} });
    expect(worker.healthUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+\/health$/);

    const get = async (url: string): Promise<{ status: number; body: Record<string, any> }> => {
      const res = await fetch(url);
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const up = await get(worker.healthUrl!);
    expect(up.status).to.equal(200);
    expect(up.body).to.deep.include({ ok: true, database: 'up' });
    expect(up.body.engine.state).to.equal('up');
    expect(up.body.jobs).to.deep.equal({ waiting: 0, backoff: 0, running: 0, oldestWaitingSeconds: null });

    const s = await waitFor('the worker\'s heartbeat with its engine up', async () => {
      const h = await get(`${serve!.url}/health`);
      return h.body.workers?.[0]?.engineState === 'up' && h;
    }, 20_000, 100);
    expect(s.status).to.equal(200);
    expect(s.body.engine.state).to.equal('not used');
    expect(s.body.workers).to.have.length(1);
    expect(s.body.workers[0]).to.include({ engineState: 'up', workers: 1, busy: 0 });
    expect(s.body.workers[0].engine).to.contain(proxy.socketPath);
    expect(s.body.workers[0].lastHeartbeatSecondsAgo).to.be.below(30);

    // a second worker process on the same engine, with as many workers as the engine has CPUs: together they oversubscribe it
    const cpus = Number((await new Docker().info()).NCPU);
    const logFile = path.join(path.dirname(file), 'second.log');
    const second = spawnGofer(['--config', file, 'worker', '--workers', String(cpus)], logFile);
    const text = await waitFor('the second worker to start', async () => {
      const t = readFileSync(logFile, 'utf8');
      return t.includes('Gofer worker started') && t;
    }, 30_000, 100);
    second.child.kill('SIGTERM');
    expect(await second.exited).to.equal(0);
    expect(text.match(/warn.*oversubscribe/g)).to.have.length(1);
    // its start line names its engine and database
    expect(text).to.match(new RegExp(`Gofer worker started .*"engine":"unix://${proxy.socketPath}.*"database":"sqlite /`));

    await proxy.kill();
    // a probe already under way when the engine died may still say up: the next one says down
    const down = await waitFor('the worker to answer 503', async () => {
      const h = await get(worker!.healthUrl!);
      return h.status === 503 && h;
    }, 10_000, 100);
    expect(down.body).to.deep.include({ ok: false, database: 'up' });
    expect(down.body.engine.state).to.equal('down');
    // serve itself needs no engine: still 200, and it shows the worker's engine down from its heartbeat
    const seen = await waitFor('the heartbeat to show the engine down', async () => {
      const h = await get(`${serve!.url}/health`);
      return h.body.workers[0]?.engineState === 'down' && h;
    }, 20_000, 100);
    expect(seen.status).to.equal(200);
  });
});
