import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { craftedLaunch, launchClaims, startCraftingPlatform, type CraftingPlatform } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';

function gofer(file: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile('node', [path.join(ROOT, 'bin/gofer.js'), '--config', file, ...args], (err, out, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: stderr })),
  );
}

/**
 * A platform added with `gofer platform add` (nothing about LTI in the configuration) turns LTI
 * on in a real `gofer serve`, and its launches get the same deployment check as a configured
 * platform's.
 */
describe('gofer platform add: LTI on, deployments checked', function () {
  this.timeout(180_000);
  let crafted: CraftingPlatform;
  let serve: GoferProcess | undefined;
  let file: string;
  let dir: string;
  let toolUrl: string;

  before(async () => {
    crafted = await startCraftingPlatform();
    const port = await freePort();
    toolUrl = `http://127.0.0.1:${port}`;
    ({ file, dir } = writeConfig({
      server: { host: '127.0.0.1', port },
      queue: { workers: 0 },
      lti: { development: true },
      courses: [{ id: '8x', contexts: ['course-v1:Crafted+C1+2026'], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS }] }],
    }));
  });

  after(async () => {
    serve?.child.kill('SIGTERM');
    await serve?.exited;
    await crafted?.stop();
  });

  const add = (extra: string[] = [], urls: Partial<Record<'issuer' | 'auth' | 'token' | 'keyset', string>> = {}) =>
    gofer(file, [
      'platform', 'add',
      '--issuer', urls.issuer ?? crafted.issuer,
      '--client-id', crafted.clientId,
      '--auth-url', urls.auth ?? crafted.authUrl,
      '--token-url', urls.token ?? crafted.tokenUrl,
      '--keyset-url', urls.keyset ?? crafted.keysetUrl,
      ...extra,
    ]);

  it('refuses URLs that are not URLs, saying which', async () => {
    const bad = await add([], { keyset: 'keys.json' });
    expect(bad.code).to.equal(2);
    expect(bad.err).to.include('--keyset-url keys.json is not an http(s) URL');
    const list = await gofer(file, ['platform', 'list']);
    expect(list.out).to.include('no platforms registered');
  });

  it('with no LTI configuration, serve logs that LTI is off and why', async () => {
    const p = spawnGofer(['--config', file, 'serve'], path.join(dir, 'off.log'));
    try {
      await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
      expect((await fetch(`${toolUrl}/lti/keys`)).status).to.equal(404);
      expect(readFileSync(path.join(dir, 'off.log'), 'utf8')).to.match(/LTI off: no platform is configured/);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  it('an added platform turns LTI on, and only its deployments launch', async () => {
    const added = await add(['--deployment-id', 'dep-7', '--deployment-id', 'dep-8']);
    expect(added.code, added.err).to.equal(0);
    expect(added.out).to.include('deployments dep-7, dep-8');
    serve = spawnGofer(['--config', file, 'serve'], path.join(dir, 'on.log'));
    await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
    expect(readFileSync(path.join(dir, 'on.log'), 'utf8')).to.include(`LTI on: login ${toolUrl}/lti/login   launch ${toolUrl}/lti   keyset ${toolUrl}/lti/keys`);
    expect((await fetch(`${toolUrl}/lti/keys`)).status).to.equal(200);

    const launch = (deployment: string) => craftedLaunch(toolUrl, crafted, (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce, { [`${LTI}deployment_id`]: deployment })));
    const unknown = await launch('1');
    expect(unknown.status).to.equal(400);
    expect(unknown.text).to.match(/deployment &quot;1&quot;.*known: dep-7, dep-8/s);
    const ok = await launch('dep-8');
    expect(ok.status, ok.text.slice(0, 300)).to.equal(200);
    expect(ok.text).to.include('lab01');
  });
});
