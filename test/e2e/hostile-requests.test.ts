import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { craftedLaunch, launchClaims, startCraftingPlatform, type CraftingPlatform } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, writeConfig } from '../helpers/service.js';

interface Route {
  method: string;
  path: string;
}

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';
const STAFF = ['http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor'];

/**
 * Every route of a real `gofer serve` (its own app, ltijs's app mounted in it, and the dev
 * platform beside it), read from the routes the process logs at start-up, hit with what a
 * careless or hostile caller sends. After each request the process must still be alive and
 * `/health` must answer: no request may stop the service.
 */
describe('hostile requests to every route of a running gofer serve', function () {
  this.timeout(300_000);
  let crafted: CraftingPlatform;
  let gofer: GoferProcess;
  let toolUrl: string;
  let dir: string;
  let routes: { gofer: Route[]; devPlatform: { url: string; routes: Route[] } };
  const tokens: Record<string, { ltik: string; l: string; cookie: string }> = {};

  const log = (): string => readFileSync(path.join(dir, 'gofer.log'), 'utf8');

  before(async () => {
    crafted = await startCraftingPlatform();
    const port = await freePort();
    toolUrl = `http://127.0.0.1:${port}`;
    ({ dir } = writeConfig({
      server: { host: '127.0.0.1', port, maxNotebookMb: 1 },
      queue: { workers: 0 },
      log: { level: 'debug', format: 'json' },
      devPlatform: { enabled: true, port: await freePort() },
      lti: {
        development: true,
        platforms: [{ issuer: crafted.issuer, authUrl: crafted.authUrl, tokenUrl: crafted.tokenUrl, keysetUrl: crafted.keysetUrl, clients: [{ clientId: crafted.clientId }] }],
      },
      courses: [{ id: '8x', contexts: ['course-v1:Crafted+C1+2026'], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS }] }],
    }));
    gofer = spawnGofer(['--config', path.join(dir, 'gofer.yaml'), 'serve'], path.join(dir, 'gofer.log'));
    await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
    const line = log()
      .split('\n')
      .find((l) => l.includes('"message":"routes"'));
    expect(line, 'the routes logged at start-up').to.be.a('string');
    routes = JSON.parse(line!);
    // A learner's resource-link launch, and a staff member's (the wrong message type for deep linking).
    for (const [who, roles] of [['learner', undefined], ['staff', STAFF]] as const) {
      const r = await craftedLaunch(toolUrl, crafted, (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce, { sub: `crafted-${who}`, ...(roles ? { [`${LTI}roles`]: roles } : {}) })));
      expect(r.status, r.text.slice(0, 300)).to.equal(200);
      const ltik = r.trail.map((u) => u.searchParams.get('ltik')).find(Boolean);
      const l = r.trail.map((u) => u.searchParams.get('l')).find(Boolean);
      expect(ltik && l, `the ltik and page launch id of the ${who} launch`).to.be.a('string');
      tokens[who] = { ltik: ltik!, l: l!, cookie: r.jar };
    }
  });

  after(async () => {
    gofer?.child.kill('SIGTERM');
    await gofer?.exited;
    await crafted?.stop();
  });

  it('lists the routes of Gofer, of ltijs and of the dev platform', () => {
    const paths = routes.gofer.map((r) => `${r.method} ${r.path}`);
    expect(paths).to.include.members(['get /health', 'post /lti/deeplink', 'get /lti/keys', 'post /app/submit', 'get /app/assignment']);
    expect(routes.devPlatform.routes.length).to.be.greaterThan(5);
  });

  it('stays up through every hostile request to every route, answering each', async () => {
    const big = 'a='.repeat(1024 * 1024);
    const variants = (method: string): Array<{ what: string; method: string; query?: Record<string, string>; headers?: Record<string, string>; body?: string }> => {
      const verb = method === 'all' ? 'POST' : method.toUpperCase();
      const withBody = verb !== 'GET' && verb !== 'HEAD';
      const as = (who: string) => ({ ltik: tokens[who]!.ltik, l: tokens[who]!.l });
      const form = (who: string, type = 'application/x-www-form-urlencoded') => ({ cookie: tokens[who]!.cookie, 'content-type': type });
      return [
        { what: 'a wrong method', method: verb === 'PATCH' ? 'PUT' : 'PATCH' },
        { what: 'no token', method: verb },
        { what: 'garbage tokens', method: verb, query: { ltik: 'garbage', l: 'garbage', t: 'garbage' }, headers: { authorization: 'Bearer garbage' } },
        { what: "a learner's launch tokens", method: verb, query: as('learner'), headers: form('learner'), ...(withBody ? { body: 'assignment=lab01' } : {}) },
        { what: "a staff resource-link launch's tokens", method: verb, query: as('staff'), headers: form('staff'), ...(withBody ? { body: 'assignment=lab01' } : {}) },
        { what: 'a malformed JSON body', method: 'POST', query: as('learner'), headers: form('learner', 'application/json'), body: '{"assignment":' },
        { what: 'a malformed multipart body', method: 'POST', query: as('staff'), headers: form('staff', 'multipart/form-data; boundary=xyz'), body: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.ipynb"\r\n\r\n{' },
        { what: 'an oversized body', method: 'POST', query: as('learner'), headers: form('learner'), body: big },
      ];
    };
    const targets = [
      ...routes.gofer.map((r) => ({ ...r, base: toolUrl })),
      ...routes.devPlatform.routes.map((r) => ({ ...r, base: routes.devPlatform.url })),
    ];
    let requests = 0;
    for (const route of targets) {
      const concrete = route.path.replace(/:\w+/g, 'x').replace(/\*\w+/g, 'x');
      for (const v of variants(route.method)) {
        const url = new URL(concrete, route.base);
        for (const [k, val] of Object.entries(v.query ?? {})) url.searchParams.set(k, val);
        const label = `${v.method} ${route.path} with ${v.what}`;
        const res = await fetch(url, { method: v.method, headers: v.headers ?? {}, ...(v.body !== undefined ? { body: v.body } : {}), redirect: 'manual', signal: AbortSignal.timeout(30_000) }).catch((err: Error) => err);
        expect(res, `${label}: an answer within 30 s`).to.be.instanceOf(Response);
        const answer = res as Response;
        await answer.arrayBuffer();
        if (route.base === toolUrl) expect(answer.status, `${label}: answered ${answer.status}`).to.be.below(500);
        expect(gofer.child.exitCode, `${label}: gofer exited`).to.equal(null);
        requests++;
      }
      const health = await fetch(`${toolUrl}/health`);
      expect(health.status, `/health after ${route.method} ${route.path}`).to.equal(200);
    }
    expect(requests).to.be.greaterThan(100);
    expect(log()).to.not.match(/unhandled rejection/);
  });

  it('deep linking with a learner token, or a resource-link token, answers a page and keeps serving', async () => {
    for (const [who, status, words] of [['learner', 400, /Not a deep-linking launch/], ['staff', 400, /Not a deep-linking launch/]] as const) {
      const res = await fetch(`${toolUrl}/lti/deeplink?ltik=${encodeURIComponent(tokens[who]!.ltik)}`, { method: 'POST', headers: { cookie: tokens[who]!.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: 'assignment=lab01' });
      expect(res.status).to.equal(status);
      expect(res.headers.get('content-type')).to.match(/text\/html/);
      expect(await res.text()).to.match(words);
    }
    expect((await fetch(`${toolUrl}/health`)).status).to.equal(200);
  });

  it('a deep-linking launch is for staff only; staff get the picker and the platform form', async () => {
    const deepLink = (roles?: string[]) =>
      craftedLaunch(toolUrl, crafted, (nonce) =>
        crafted.sign(
          launchClaims(crafted, toolUrl, nonce, {
            [`${LTI}message_type`]: 'LtiDeepLinkingRequest',
            'https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings': { deep_link_return_url: `${crafted.issuer}/dl-return`, accept_types: ['ltiResourceLink'], accept_presentation_document_targets: ['iframe'] },
            ...(roles ? { [`${LTI}roles`]: roles } : {}),
          }),
        ),
      );
    const learner = await deepLink();
    expect(learner.status).to.equal(403);
    expect(learner.text).to.match(/Only course staff/);
    const staff = await deepLink(STAFF);
    expect(staff.status, staff.text.slice(0, 300)).to.equal(200);
    expect(staff.text).to.match(/Choose an assignment/);
    const ltik = staff.trail.map((u) => u.searchParams.get('ltik')).find(Boolean)!;
    const form = await fetch(`${toolUrl}/lti/deeplink?ltik=${encodeURIComponent(ltik)}`, { method: 'POST', headers: { cookie: staff.jar, 'content-type': 'application/x-www-form-urlencoded' }, body: 'assignment=lab01' });
    expect(form.status).to.equal(200);
    expect(await form.text()).to.include(`${crafted.issuer}/dl-return`);
  });
});
