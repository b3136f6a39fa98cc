import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { SignJWT, createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JWK, type JWTPayload, type KeyLike } from 'jose';
import { blockKey, startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';
const AGS = 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint';
const DL = 'https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings';
const S = 'https://purl.imsglobal.org/spec/lti-ags/scope/';
const V = 'http://purl.imsglobal.org/vocab/lis/v2/';
const COURSE = 'course-v1:GoferX+DEMO+2026';
const block = (id: string): string => blockKey('DEMO', id);
const MEDIA = {
  container: 'application/vnd.ims.lis.v2.lineitemcontainer+json',
  lineitem: 'application/vnd.ims.lis.v2.lineitem+json',
  score: 'application/vnd.ims.lis.v1.score+json',
};

/** The tool side, played by the test: its own key pair, and a keyset that counts its readers. */
class FakeTool {
  keysetHits = 0;
  /** What the keyset publishes; tests swap it to show every key is tried. */
  jwks: JWK[] = [];
  private constructor(
    readonly url: string,
    private readonly server: Server,
    readonly privateKey: KeyLike,
    readonly publicJwk: JWK,
  ) {}

  static async start(): Promise<FakeTool> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'tool-1', alg: 'RS256', use: 'sig' };
    const app = express();
    let tool!: FakeTool;
    app.get('/lti/keys', (_req, res) => {
      tool.keysetHits++;
      res.json({ keys: tool.jwks });
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    tool = new FakeTool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, privateKey, publicJwk);
    tool.jwks = [publicJwk];
    return tool;
  }

  endpoints(): DevComponent['tool'] {
    return { loginUrl: `${this.url}/lti/login`, launchUrl: `${this.url}/lti`, keysetUrl: `${this.url}/lti/keys` };
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

describe('dev platform (edX-like LTI 1.3)', function () {
  this.timeout(30_000);
  let tool: FakeTool;
  let platform: DevPlatform;
  let now: number;
  let lab01: DevComponent, lab02: DevComponent, lab03: DevComponent, practice: DevComponent, pii: DevComponent;
  const users: DevUser[] = [
    { username: 'ada', sub: 'anon-ada-0001', name: 'Ada Lovelace', email: 'ada@example.org', role: 'learner' },
    { username: 'bea', sub: 'anon-bea-0002', name: 'Bea Bo', email: 'bea@example.org', role: 'learner', sharePii: true },
    { username: 'sam', sub: 'anon-sam-0003', name: 'Sam Staff', email: 'sam@example.org', role: 'staff' },
    { username: 'ann', sub: 'anon-ann-0004', name: 'Ann Admin', email: 'ann@example.org', role: 'admin' },
    { username: 'mo', sub: 'anon-mo-0005', name: 'Mo Moderator', email: 'mo@example.org', role: 'moderator' },
  ];
  const [ada, bea, sam, ann, mo] = users as [DevUser, DevUser, DevUser, DevUser, DevUser];

  before(async () => {
    tool = await FakeTool.start();
    now = Date.UTC(2026, 2, 1, 12, 0, 0) + 400; // a fraction of a second, as real clocks have
    const t = tool.endpoints();
    const base = { graded: true, acceptGradesPastDue: true, tool: t };
    lab01 = { ...base, usageKey: block('lab01'), configId: randomUUID(), clientId: 'client-lab01', name: 'Lab 1', weight: 10, custom: ['assignment=lab01', ' extra = a=b '], agsMode: 'declarative', due: new Date(now + 7 * 86_400_000) };
    lab02 = { ...base, usageKey: block('lab02'), configId: randomUUID(), clientId: 'client-lab02', name: 'Lab 2', weight: 5, custom: ['assignment=lab02'], agsMode: 'programmatic', deepLinking: true, tool: { ...t, deepLinkLaunchUrl: `${tool.url}/lti/deeplink` } };
    // Shares lab01's client id: one edX "passport", so one platform key.
    lab03 = { ...base, usageKey: block('lab03'), configId: randomUUID(), clientId: 'client-lab01', name: 'Lab 3', weight: 4, custom: ['assignment=lab03'], agsMode: 'declarative', due: new Date(now - 86_400_000), acceptGradesPastDue: false };
    practice = { ...base, usageKey: block('practice'), configId: randomUUID(), clientId: 'client-practice', name: 'Practice', weight: 1, custom: [], agsMode: 'declarative', graded: false };
    pii = { ...base, usageKey: block('pii'), configId: randomUUID(), clientId: 'client-pii', name: 'Redirects', weight: 2, custom: ['assignment=lab01'], agsMode: 'declarative', tool: { ...t, redirectUris: [`${tool.url}/lti?x=1`] } };
    platform = await startDevPlatform({
      courseKey: COURSE,
      courseTitle: 'Gofer Demo',
      components: [lab01, lab02, lab03, practice, pii],
      users,
      clock: { now: () => now },
    });
  });
  after(async () => {
    await platform?.stop();
    await tool?.stop();
  });
  afterEach(() => {
    Object.assign(platform.faults, { rateLimit: 0, serverErrors: 0, latencyMs: 0, down: false });
    tool.jwks = [tool.publicJwk];
  });

  // --- helpers: the browser and the tool, step by step ---------------------------------------

  async function loginInitiation(user: DevUser, c: DevComponent, kind: 'resource' | 'deep-link' = 'resource'): Promise<URL> {
    const res = await fetch(platform.launchUrl(user.username, c.usageKey, kind), { redirect: 'manual' });
    expect(res.status).to.equal(302);
    return new URL(res.headers.get('location')!);
  }

  /** The tool's answer to the login initiation: the auth request, with overrides. */
  function authParams(login: URL, overrides: Record<string, string | undefined> = {}): URLSearchParams {
    const p: Record<string, string | undefined> = {
      scope: 'openid',
      response_type: 'id_token',
      response_mode: 'form_post',
      prompt: 'none',
      client_id: login.searchParams.get('client_id')!,
      redirect_uri: login.searchParams.get('target_link_uri')!,
      login_hint: login.searchParams.get('login_hint')!,
      lti_message_hint: login.searchParams.get('lti_message_hint')!,
      state: 'state-' + randomUUID(),
      nonce: 'nonce-' + randomUUID(),
      ...overrides,
    };
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(p)) if (v !== undefined) q.set(k, v);
    return q;
  }

  async function authRequest(params: URLSearchParams, method: 'GET' | 'POST' = 'GET'): Promise<Response> {
    const authUrl = platform.endpoints(lab01).authUrl;
    return method === 'GET' ? fetch(`${authUrl}?${params.toString()}`) : fetch(authUrl, { method: 'POST', body: params });
  }

  function parseForm(html: string): { action: string; state: string; idToken: string } {
    const unescape = (s: string): string => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
    const state = /name="state" value="([^"]*)"/.exec(html)?.[1];
    const idToken = /name="id_token" value="([^"]*)"/.exec(html)?.[1];
    expect(action, 'form action').to.be.a('string');
    expect(html).to.match(/\.submit\(\)/);
    return { action: unescape(action!), state: unescape(state!), idToken: unescape(idToken!) };
  }

  async function platformJwks(c: DevComponent): Promise<ReturnType<typeof createLocalJWKSet>> {
    const res = await fetch(platform.endpoints(c).keysetUrl);
    expect(res.status).to.equal(200);
    return createLocalJWKSet((await res.json()) as { keys: JWK[] });
  }

  /** A whole launch; returns the verified id_token claims. */
  async function launch(user: DevUser, c: DevComponent, kind: 'resource' | 'deep-link' = 'resource'): Promise<{ claims: JWTPayload; header: ReturnType<typeof decodeProtectedHeader>; nonce: string }> {
    const login = await loginInitiation(user, c, kind);
    const params = authParams(login);
    const res = await authRequest(params);
    expect(res.status, await res.clone().text()).to.equal(200);
    const form = parseForm(await res.text());
    expect(form.action).to.equal(params.get('redirect_uri'));
    expect(form.state).to.equal(params.get('state'));
    const { payload } = await jwtVerify(form.idToken, await platformJwks(c), { issuer: platform.issuer, audience: c.clientId, currentDate: new Date(now) });
    return { claims: payload, header: decodeProtectedHeader(form.idToken), nonce: params.get('nonce')! };
  }

  async function assertion(opts: { iat?: number; key?: KeyLike; kid?: string } = {}): Promise<string> {
    const iat = opts.iat ?? Math.floor(now / 1000) - 5;
    return new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'tool-1' })
      .setIssuer('client-lab01')
      .setSubject('client-lab01')
      .setAudience('anything: edX does not look')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 300)
      .sign(opts.key ?? tool.privateKey);
  }

  async function tokenRequest(c: DevComponent, fields: Record<string, string>): Promise<Response> {
    return fetch(platform.endpoints(c).tokenUrl, { method: 'POST', body: new URLSearchParams(fields) });
  }

  const ALL_SCOPES = [`${S}lineitem`, `${S}lineitem.readonly`, `${S}result.readonly`, `${S}score`];
  async function accessToken(c: DevComponent, scopes = ALL_SCOPES): Promise<string> {
    const res = await tokenRequest(c, {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(),
      scope: scopes.join(' '),
    });
    expect(res.status).to.equal(200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  function lineItemsUrl(c: DevComponent): string {
    return `${platform.url}/api/lti_consumer/v1/lti/${c.configId}/lti-ags`;
  }

  function ownLineItem(c: DevComponent): string {
    const item = platform.lineItems().find((i) => i.configId === c.configId && i.resourceLinkId === c.usageKey);
    expect(item, `line item of ${c.name}`).to.exist;
    return item!.id;
  }

  async function postScore(lineItem: string, token: string, body: Record<string, unknown>, contentType = MEDIA.score): Promise<Response> {
    return fetch(`${lineItem}/scores`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: JSON.stringify(body) });
  }

  let tick = 0;
  /** Strictly increasing score timestamps, with microseconds. */
  function stamp(): string {
    tick++;
    return `2026-03-01T12:${String(10 + Math.floor(tick / 60)).padStart(2, '0')}:${String(tick % 60).padStart(2, '0')}.123456Z`;
  }

  function published(user: DevUser, c: DevComponent): number | null {
    return platform.gradebook().find((g) => g.username === user.username && g.usageKey === c.usageKey)!.published;
  }

  // --- launch ------------------------------------------------------------------------------------

  describe('login initiation and the auth endpoint', () => {
    it('sends the browser to the tool login URL with exactly the edX parameters', async () => {
      const login = await loginInitiation(ada, lab01);
      expect(`${login.origin}${login.pathname}`).to.equal(`${tool.url}/lti/login`);
      expect([...login.searchParams.keys()].sort()).to.deep.equal(['client_id', 'iss', 'login_hint', 'lti_deployment_id', 'lti_message_hint', 'target_link_uri']);
      expect(login.searchParams.get('iss')).to.equal(platform.issuer);
      expect(login.searchParams.get('client_id')).to.equal('client-lab01');
      expect(login.searchParams.get('lti_deployment_id')).to.equal('1');
      expect(login.searchParams.get('target_link_uri')).to.equal(`${tool.url}/lti`);
      expect(login.searchParams.get('login_hint')).to.equal(ada.sub);
      expect(login.searchParams.get('lti_message_hint')).to.have.length.above(16);
      expect(platform.url).to.equal(platform.issuer);
    });

    it('refuses an unregistered redirect_uri, a wrong client_id, a missing nonce or state, saying which', async () => {
      const login = await loginInitiation(ada, lab01);
      const cases: Array<[Record<string, string | undefined>, RegExp]> = [
        [{ redirect_uri: `${tool.url}/elsewhere` }, /redirect_uri .*elsewhere is not registered/],
        [{ client_id: 'client-lab02' }, /client_id client-lab02 does not match/],
        [{ nonce: undefined }, /nonce is missing/],
        [{ state: undefined }, /state is missing/],
        [{ lti_message_hint: undefined }, /lti_message_hint is missing/],
        [{ login_hint: undefined }, /login_hint is missing/],
        [{ login_hint: bea.sub }, /login_hint .* is not the user/],
        [{ lti_message_hint: 'made-up' }, /Unable to find record of an OIDC launch/],
      ];
      for (const [overrides, message] of cases) {
        const res = await authRequest(authParams(login, overrides));
        expect(res.status, JSON.stringify(overrides)).to.equal(400);
        expect(await res.text()).to.match(message);
      }
    });

    it('lets a message hint live 10 minutes, reusable until then', async () => {
      const login = await loginInitiation(ada, lab01);
      expect((await authRequest(authParams(login))).status).to.equal(200);
      expect((await authRequest(authParams(login), 'POST')).status).to.equal(200);
      now += 10 * 60_000 + 1;
      try {
        const res = await authRequest(authParams(login));
        expect(res.status).to.equal(400);
        expect(await res.text()).to.match(/Unable to find record/);
      } finally {
        now -= 10 * 60_000 + 1;
      }
    });

    it('answers with an auto-submitting form carrying a verifiable id_token with the edX claims (declarative AGS)', async () => {
      const { claims, header, nonce } = await launch(ada, lab01);
      expect(header.alg).to.equal('RS256');
      expect(header.kid).to.be.a('string');
      expect(claims.exp).to.equal(claims.iat! + 3600);
      expect(claims.iat).to.equal(Math.floor(now / 1000));
      expect(claims).to.include({ iss: platform.issuer, aud: 'client-lab01', azp: 'client-lab01', sub: ada.sub, nonce });
      expect(claims).not.to.have.any.keys('name', 'email', 'preferred_username');
      expect(claims[`${LTI}message_type`]).to.equal('LtiResourceLinkRequest');
      expect(claims[`${LTI}version`]).to.equal('1.3.0');
      expect(claims[`${LTI}deployment_id`]).to.equal('1');
      expect(claims[`${LTI}target_link_uri`]).to.equal(`${tool.url}/lti`);
      expect(claims[`${LTI}roles`]).to.have.members([`${V}membership#Learner`, `${V}system/person#None`, `${V}institution/person#None`]);
      expect(claims[`${LTI}resource_link`]).to.deep.equal({ id: lab01.usageKey });
      expect(claims[`${LTI}context`]).to.deep.equal({ id: COURSE, label: COURSE, title: 'Gofer Demo - GoferX', type: [`${V}course#CourseOffering`] });
      expect(claims[`${LTI}custom`]).to.deep.equal({ assignment: 'lab01', extra: 'a=b' });
      expect(claims[`${LTI}launch_presentation`]).to.deep.equal({ document_target: 'iframe' });
      expect(claims[AGS]).to.deep.equal({
        scope: [`${S}lineitem.readonly`, `${S}result.readonly`, `${S}score`],
        lineitems: lineItemsUrl(lab01),
        lineitem: ownLineItem(lab01),
      });
      const item = platform.lineItems().find((i) => i.id === ownLineItem(lab01))!;
      expect(item).to.include({ scoreMaximum: 10, label: 'Lab 1', resourceLinkId: lab01.usageKey, resourceId: lab01.usageKey });
      expect(item.endDateTime).to.equal(lab01.due!.toISOString().replace('.400Z', '.400000Z'));
    });

    it('sends name and email only when the course shares PII, and maps each edX role', async () => {
      const withPii = await launch(bea, lab01);
      expect(withPii.claims).to.include({ name: 'Bea Bo', email: 'bea@example.org' });
      const roles = async (u: DevUser): Promise<unknown> => (await launch(u, lab01)).claims[`${LTI}roles`];
      const base = [`${V}system/person#None`, `${V}institution/person#None`];
      expect(await roles(sam)).to.have.members([...base, `${V}membership#Instructor`]);
      expect(await roles(ann)).to.have.members([...base, `${V}membership#Administrator`, `${V}membership#Instructor`]);
      expect(await roles(mo)).to.have.members([...base, `${V}membership#Learner`, `${V}membership/Instructor#TeachingAssistant`]);
    });

    it('in programmatic mode grants `lineitem` and sends no line item until the tool creates one', async () => {
      const before = (await launch(ada, lab02)).claims[AGS];
      expect(before).to.deep.equal({ scope: [`${S}lineitem`, `${S}result.readonly`, `${S}score`], lineitems: lineItemsUrl(lab02) });
      const token = await accessToken(lab02);
      const res = await fetch(lineItemsUrl(lab02), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': MEDIA.lineitem, accept: MEDIA.lineitem },
        body: JSON.stringify({ scoreMaximum: 20, label: 'Lab 2', resourceLinkId: lab02.usageKey, tag: 'gofer' }),
      });
      expect(res.status).to.equal(201);
      const created = (await res.json()) as { id: string };
      const after = (await launch(ada, lab02)).claims[AGS] as { lineitem?: string };
      expect(after.lineitem).to.equal(created.id);
    });

    it('only accepts the listed redirect URIs when a component lists them (they replace the launch URL)', async () => {
      const login = await loginInitiation(ada, pii);
      expect((await authRequest(authParams(login, { redirect_uri: `${tool.url}/lti?x=1` }))).status).to.equal(200);
      expect((await authRequest(authParams(login, { redirect_uri: `${tool.url}/lti` }))).status).to.equal(400);
    });
  });

  describe('deep linking', () => {
    it('sends staff a deep-linking request with only the core claims, and refuses learners', async () => {
      const { claims } = await launch(sam, lab02, 'deep-link');
      expect(claims[`${LTI}message_type`]).to.equal('LtiDeepLinkingRequest');
      expect(claims[`${LTI}target_link_uri`]).to.equal(`${tool.url}/lti/deeplink`);
      const settings = claims[DL] as Record<string, unknown>;
      expect(settings.deep_link_return_url).to.equal(`${platform.url}/api/lti_consumer/v1/lti/${lab02.configId}/lti-dl/response`);
      expect(settings.accept_types).to.include('ltiResourceLink');
      expect(settings.accept_presentation_document_targets).to.include.members(['iframe', 'window']);
      expect(claims).not.to.have.any.keys(AGS, `${LTI}context`, `${LTI}custom`);
      const login = await loginInitiation(ada, lab02, 'deep-link');
      expect((await authRequest(authParams(login))).status).to.equal(403);
      expect(() => platform.launchUrl('sam', lab01.usageKey, 'deep-link')).to.throw(/deep linking/);
    });

    it('verifies the returned JWT with the tool keyset and keeps its items, which later launches use', async () => {
      const returnUrl = `${platform.url}/api/lti_consumer/v1/lti/${lab02.configId}/lti-dl/response`;
      const item = { type: 'ltiResourceLink', title: 'Lab 2b', url: `${tool.url}/lti`, custom: { assignment: 'lab02b' } };
      const response = async (key: KeyLike): Promise<Response> => {
        const jwt = await new SignJWT({
          [`${LTI}message_type`]: 'LtiDeepLinkingResponse',
          [`${LTI}version`]: '1.3.0',
          [`${LTI}deployment_id`]: '1',
          'https://purl.imsglobal.org/spec/lti-dl/claim/content_items': [item],
        })
          .setProtectedHeader({ alg: 'RS256', kid: 'tool-1' })
          .setIssuer('client-lab02')
          .setAudience(platform.issuer)
          .setIssuedAt(Math.floor(now / 1000) - 2)
          .setExpirationTime(Math.floor(now / 1000) + 600)
          .sign(key);
        return fetch(returnUrl, { method: 'POST', body: new URLSearchParams({ JWT: jwt }) });
      };
      const stranger = await generateKeyPair('RS256');
      const hits = tool.keysetHits;
      expect((await response(stranger.privateKey)).status).to.equal(403);
      const ok = await response(tool.privateKey);
      expect(ok.status).to.equal(200);
      expect(await ok.text()).to.match(/saved/);
      expect(tool.keysetHits).to.equal(hits + 2);
      expect(platform.deepLinks()).to.deep.equal([{ usageKey: lab02.usageKey, items: [item] }]);
      const { claims } = await launch(ada, lab02);
      expect(claims[`${LTI}custom`]).to.deep.equal({ assignment: 'lab02b' });
    });
  });

  // --- token endpoint ----------------------------------------------------------------------------

  describe('token endpoint', () => {
    it('answers 400 invalid_request when a field is missing', async () => {
      const full = { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(), scope: `${S}score` };
      for (const missing of Object.keys(full)) {
        const fields: Record<string, string> = { ...full };
        delete fields[missing];
        const res = await tokenRequest(lab01, fields);
        expect(res.status, missing).to.equal(400);
        expect(await res.json()).to.deep.equal({ error: 'invalid_request' });
      }
    });

    it('refuses an assertion issued 1 s in the future (zero leeway) as unidentified_error', async () => {
      const res = await tokenRequest(lab01, { grant_type: 'client_credentials', client_assertion_type: 'x', client_assertion: await assertion({ iat: Math.floor(now / 1000) + 1 }), scope: `${S}score` });
      expect(res.status).to.equal(400);
      expect(await res.json()).to.deep.equal({ error: 'unidentified_error' });
    });

    it('issues a one-hour bearer token, drops unknown scopes, grants lineitem in declarative mode, fetches the keyset every time', async () => {
      const hits = tool.keysetHits;
      const requests = platform.tokenRequests;
      for (let i = 0; i < 2; i++) {
        const res = await tokenRequest(lab01, {
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(),
          scope: `${S}lineitem ${S}score https://example.org/unknown ${S}result.readonly`,
        });
        expect(res.status).to.equal(200);
        const body = (await res.json()) as Record<string, unknown>;
        expect(body).to.include({ token_type: 'bearer', expires_in: 3600, scope: `${S}lineitem ${S}score ${S}result.readonly` });
        expect(body.access_token).to.be.a('string');
      }
      expect(tool.keysetHits).to.equal(hits + 2);
      expect(platform.tokenRequests).to.equal(requests + 2);
    });

    it('tries every key, ignoring kid, and reports the last key\'s failure', async () => {
      const other = await generateKeyPair('RS256', { extractable: true });
      const otherJwk = { ...(await exportJWK(other.publicKey)), kid: 'tool-2', alg: 'RS256' };
      tool.jwks = [otherJwk, tool.publicJwk];
      const fields = async (a: string): Promise<Record<string, string>> => ({ grant_type: 'client_credentials', client_assertion_type: 'x', client_assertion: a, scope: `${S}score` });
      expect((await tokenRequest(lab01, await fields(await assertion({ kid: 'no-such-kid' })))).status).to.equal(200);
      // Signed by the first key but not yet valid: the last key's signature failure is what edX reports.
      const future = await tokenRequest(lab01, await fields(await assertion({ key: other.privateKey, iat: Math.floor(now / 1000) + 1 })));
      expect(await future.json()).to.deep.equal({ error: 'invalid_client' });
      const stranger = await generateKeyPair('RS256');
      const bad = await tokenRequest(lab01, await fields(await assertion({ key: stranger.privateKey })));
      expect(bad.status).to.equal(400);
      expect(await bad.json()).to.deep.equal({ error: 'invalid_client' });
    });
  });

  // --- AGS ---------------------------------------------------------------------------------------

  describe('assignment and grade services', () => {
    let token: string;
    before(async () => {
      token = await accessToken(lab01);
    });

    it('lists line items as a plain array, only for the container media type or */*', async () => {
      const get = (accept?: string, query = ''): Promise<Response> => fetch(`${lineItemsUrl(lab01)}${query}`, { headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) } });
      const json = await get('application/json');
      expect(json.status).to.equal(406);
      for (const accept of [MEDIA.container, '*/*', undefined]) {
        const res = await get(accept, '?limit=0&page=3');
        expect(res.status, String(accept)).to.equal(200);
        expect(res.headers.get('content-type')).to.equal(MEDIA.container);
        const items = (await res.json()) as Array<{ id: string }>;
        expect(items.map((i) => i.id)).to.deep.equal([ownLineItem(lab01)]);
      }
      const filtered = await get(MEDIA.container, `?resource_link_id=${encodeURIComponent(block('nope'))}`);
      expect(await filtered.json()).to.deep.equal([]);
      const one = await fetch(ownLineItem(lab01), { headers: { authorization: `Bearer ${token}`, accept: MEDIA.lineitem } });
      expect(one.status).to.equal(200);
      expect(await one.json()).to.include({ scoreMaximum: 10, label: 'Lab 1' });
    });

    it('creates line items only from the line item media type, with an integer scoreMaximum, a real usage key and a short label', async () => {
      const create = (body: unknown, contentType = MEDIA.lineitem): Promise<Response> =>
        fetch(lineItemsUrl(lab01), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: JSON.stringify(body) });
      const good = { scoreMaximum: 10, label: 'Extra', resourceLinkId: lab01.usageKey };
      expect((await create(good, 'application/json')).status).to.equal(415);
      const fractional = await create({ ...good, scoreMaximum: 9.5 });
      expect(fractional.status).to.equal(400);
      expect(await fractional.json()).to.have.property('scoreMaximum');
      const badKey = await create({ ...good, resourceLinkId: 'lab01' });
      expect(badKey.status).to.equal(400);
      expect(await badKey.json()).to.have.property('resourceLinkId');
      expect((await create({ ...good, resourceLinkId: 'block-v1:Other+X+2026+type@lti_consumer+block@lab01' })).status).to.equal(400);
      expect((await create({ ...good, label: 'x'.repeat(101) })).status).to.equal(400);
      const created = await create(good);
      expect(created.status).to.equal(201);
      expect(await created.json()).to.include({ scoreMaximum: 10, label: 'Extra', resourceLinkId: lab01.usageKey });
    });

    it('stores one score per user, refuses equal and earlier timestamps, and answers 500 for an unknown user or progress value', async () => {
      const lineItem = ownLineItem(lab01);
      const t1 = stamp();
      const score = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ userId: ada.sub, scoreGiven: 6, scoreMaximum: 10, activityProgress: 'Completed', gradingProgress: 'FullyGraded', timestamp: t1, ...over });
      const received = platform.scoresReceived;
      const first = await postScore(lineItem, token, score(), 'text/plain');
      expect(first.status).to.equal(201);
      expect(await first.json()).to.include({ userId: ada.sub, scoreGiven: 6, timestamp: t1 });
      const again = await postScore(lineItem, token, score());
      expect(again.status).to.equal(400);
      expect(JSON.stringify(await again.json())).to.contain('Score already exists for the provided timestamp');
      const earlier = await postScore(lineItem, token, score({ timestamp: '2026-03-01T11:00:00Z' }));
      expect(earlier.status).to.equal(400);
      expect(JSON.stringify(await earlier.json())).to.contain('Score timestamp can only be updated to a later point in time');
      // Same second, one microsecond later: edX compares at microsecond precision.
      expect((await postScore(lineItem, token, score({ timestamp: t1.replace('.123456Z', '.123457Z'), scoreGiven: 7 }))).status).to.equal(201);
      expect((await postScore(lineItem, token, score({ userId: 'anon-nobody', timestamp: stamp() }))).status).to.equal(500);
      expect((await postScore(lineItem, token, score({ activityProgress: 'Done', timestamp: stamp() }))).status).to.equal(500);
      expect((await postScore(lineItem, token, score({ gradingProgress: 'Graded', timestamp: stamp() }))).status).to.equal(500);
      const noMax = await postScore(lineItem, token, score({ scoreMaximum: 0, timestamp: stamp() }));
      expect(noMax.status).to.equal(400);
      const missing = await postScore(lineItem, token, { scoreGiven: 1 });
      expect(missing.status).to.equal(400);
      expect(await missing.json()).to.have.keys('timestamp', 'scoreMaximum', 'activityProgress', 'gradingProgress', 'userId');
      expect(platform.scoresReceived).to.equal(received + 2);
      const stored = platform.lineItems().find((i) => i.id === lineItem)!.scores;
      expect(stored).to.have.length(1);
      expect(stored[0]).to.include({ userId: ada.sub, scoreGiven: 7 });
      expect(published(ada, lab01)).to.equal(7 / 10 * 10);
    });

    it('lists results newest first, per user by path, ignoring ?user_id, and a Pending score without scoreGiven removes one', async () => {
      const lineItem = ownLineItem(lab01);
      expect((await postScore(lineItem, token, { userId: bea.sub, scoreGiven: 9, scoreMaximum: 10, activityProgress: 'Completed', gradingProgress: 'FullyGraded', timestamp: stamp() })).status).to.equal(201);
      const results = async (suffix: string): Promise<Array<{ userId: string; resultScore: number; resultMaximum: number; scoreOf: string }>> => {
        const res = await fetch(`${lineItem}/results${suffix}`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).to.equal(200);
        return (await res.json()) as Array<{ userId: string; resultScore: number; resultMaximum: number; scoreOf: string }>;
      };
      expect((await results('')).map((r) => r.userId)).to.deep.equal([bea.sub, ada.sub]);
      expect((await results(`?user_id=${ada.sub}`)).map((r) => r.userId)).to.deep.equal([bea.sub, ada.sub]);
      const mine = await results(`/${ada.sub}`);
      expect(mine).to.have.length(1);
      expect(mine[0]).to.include({ userId: ada.sub, resultScore: 7, resultMaximum: 10, scoreOf: lineItem });
      const before = published(bea, lab01);
      expect(before).to.equal(9);
      expect((await postScore(lineItem, token, { userId: bea.sub, activityProgress: 'Submitted', gradingProgress: 'Pending', timestamp: stamp() })).status).to.equal(201);
      expect((await results('')).map((r) => r.userId)).to.deep.equal([ada.sub]);
      expect(published(bea, lab01)).to.equal(9);
    });

    it('stores a zero score but does not publish it; the previously published value stays', async () => {
      const lineItem = ownLineItem(lab01);
      expect(published(ada, lab01)).to.equal(7);
      expect((await postScore(lineItem, token, { userId: ada.sub, scoreGiven: 0, scoreMaximum: 10, activityProgress: 'Completed', gradingProgress: 'FullyGraded', timestamp: stamp() })).status).to.equal(201);
      expect(platform.lineItems().find((i) => i.id === lineItem)!.scores.find((s) => s.userId === ada.sub)!.scoreGiven).to.equal(0);
      expect(published(ada, lab01)).to.equal(7);
      const mo0 = await postScore(lineItem, token, { userId: mo.sub, scoreGiven: 0, scoreMaximum: 10, activityProgress: 'Completed', gradingProgress: 'FullyGraded', timestamp: stamp() });
      expect(mo0.status).to.equal(201);
      expect(published(mo, lab01)).to.equal(null);
    });

    it('publishes weight-scaled, capped at the score\'s own scoreMaximum, and never for past-due, ungraded or foreign line items', async () => {
      const lab03Token = token; // lab03 shares lab01's client id, hence its key
      const lab03Item = ownLineItem(lab03);
      const body = (given: number, max: number): Record<string, unknown> => ({ userId: ada.sub, scoreGiven: given, scoreMaximum: max, activityProgress: 'Completed', gradingProgress: 'FullyGraded', timestamp: stamp() });
      expect((await postScore(lab03Item, lab03Token, body(4, 4))).status).to.equal(201);
      expect(published(ada, lab03)).to.equal(null); // past due, late grades not accepted
      const practiceToken = await accessToken(practice);
      expect((await postScore(ownLineItem(practice), practiceToken, body(1, 1))).status).to.equal(201);
      expect(published(ada, practice)).to.equal(null); // not graded
      // A line item of lab01 pointing at lab03: stored, never published anywhere.
      const foreign = await fetch(lineItemsUrl(lab01), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': MEDIA.lineitem }, body: JSON.stringify({ scoreMaximum: 4, label: 'Foreign', resourceLinkId: lab03.usageKey }) });
      const foreignId = ((await foreign.json()) as { id: string }).id;
      expect((await postScore(foreignId, token, body(4, 4))).status).to.equal(201);
      expect(published(ada, lab03)).to.equal(null);
      // Weight 10, the score's own maximum 40 (not the line item's 10), capped at 1.
      expect((await postScore(ownLineItem(lab01), token, { ...body(30, 40), userId: sam.sub })).status).to.equal(201);
      expect(published(sam, lab01)).to.equal(7.5);
      expect((await postScore(ownLineItem(lab01), token, { ...body(50, 40), userId: sam.sub })).status).to.equal(201);
      expect(published(sam, lab01)).to.equal(10);
      const lab02Token = await accessToken(lab02);
      const lab02Item = platform.lineItems().find((i) => i.configId === lab02.configId)!.id;
      expect((await postScore(lab02Item, lab02Token, body(15, 20))).status).to.equal(201);
      expect(published(ada, lab02)).to.equal(15 / 20 * 5);
    });

    it('answers 403 for a missing, malformed, foreign or expired token, and for a missing scope', async () => {
      const lineItem = ownLineItem(lab01);
      const get = (auth?: string): Promise<Response> => fetch(`${lineItem}/results`, { headers: auth ? { authorization: auth } : {} });
      const expect403 = async (res: Response, detail: string): Promise<void> => {
        expect(res.status).to.equal(403);
        expect(await res.json()).to.deep.equal({ detail });
      };
      await expect403(await get(), 'Missing LTI 1.3 authentication token.');
      await expect403(await get('Bearer not-a-jwt'), 'Invalid token signature.');
      await expect403(await get(`Bearer ${await accessToken(lab02)}`), 'Invalid token signature.');
      const scoreOnly = await accessToken(lab01, [`${S}score`]);
      await expect403(await get(`Bearer ${scoreOnly}`), 'You do not have permission to perform this action.');
      const fresh = await accessToken(lab01);
      now += 3600_000;
      try {
        await expect403(await get(`Bearer ${fresh}`), 'Invalid token signature.');
      } finally {
        now -= 3600_000;
      }
    });

    it('invalidates old tokens when the platform key rotates, and publishes only the new key', async () => {
      const old = await accessToken(lab01);
      const kidBefore = ((await (await fetch(platform.endpoints(lab01).keysetUrl)).json()) as { keys: JWK[] }).keys[0]!.kid;
      await platform.rotateKey();
      const keys = ((await (await fetch(platform.endpoints(lab01).keysetUrl)).json()) as { keys: JWK[] }).keys;
      expect(keys).to.have.length(1);
      expect(keys[0]!.kid).not.to.equal(kidBefore);
      const res = await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${old}` } });
      expect(res.status).to.equal(403);
      expect(await res.json()).to.deep.equal({ detail: 'Invalid token signature.' });
      const fresh = await accessToken(lab01);
      expect((await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${fresh}` } })).status).to.equal(200);
      const { header } = await launch(ada, lab01);
      expect(header.kid).to.equal(keys[0]!.kid);
    });
  });

  describe('faults', () => {
    it('throttles with 429 and Retry-After for the next N requests', async () => {
      const token = await accessToken(lab01);
      Object.assign(platform.faults, { rateLimit: 2, retryAfterSeconds: 7 });
      for (let i = 0; i < 2; i++) {
        const res = await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).to.equal(429);
        expect(res.headers.get('retry-after')).to.equal('7');
      }
      expect((await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${token}` } })).status).to.equal(200);
      platform.faults.rateLimit = 1;
      const throttledToken = await tokenRequest(lab01, { grant_type: 'client_credentials', client_assertion_type: 'x', client_assertion: await assertion(), scope: `${S}score` });
      expect(throttledToken.status).to.equal(429);
    });

    it('answers 500 for the next N requests, adds latency, and refuses connections when down', async () => {
      const token = await accessToken(lab01);
      platform.faults.serverErrors = 1;
      const failed = await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${token}` } });
      expect(failed.status).to.equal(500);
      expect(failed.headers.get('content-type')).to.match(/text\/html/);
      expect((await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${token}` } })).status).to.equal(200);
      platform.faults.latencyMs = 300;
      const t0 = Date.now();
      expect((await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${token}` } })).status).to.equal(200);
      expect(Date.now() - t0).to.be.at.least(290);
      platform.faults.latencyMs = 0;
      platform.faults.down = true;
      let error: unknown;
      try {
        await fetch(platform.endpoints(lab01).tokenUrl, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials' }) });
      } catch (err) {
        error = err;
      }
      expect(error, 'the request must fail without an answer').to.be.instanceOf(Error);
      platform.faults.down = false;
      expect((await fetch(lineItemsUrl(lab01), { headers: { authorization: `Bearer ${token}` } })).status).to.equal(200);
    });
  });

  describe('pages', () => {
    it('shows the course with launch links for every user and a deep-link link for staff', async () => {
      const html = await (await fetch(`${platform.url}/`)).text();
      for (const u of users) expect(html).to.contain(`Launch as ${u.username}`);
      expect(html).to.contain('Deep link as staff');
      expect(html).to.contain(platform.endpoints(lab01).tokenUrl);
      const unit = /href="([^"]*\/dev\/unit\?[^"]*)"/.exec(html)![1]!.replace(/&amp;/g, '&');
      const unitHtml = await (await fetch(new URL(unit, platform.url))).text();
      expect(unitHtml).to.match(/<iframe[^>]*src="[^"]*\/dev\/launch\?/);
    });

    it('shows the gradebook with published values and the zero-score note', async () => {
      const html = await (await fetch(`${platform.url}/gradebook`)).text();
      expect(html).to.match(/A score of 0 is stored but never published/);
      expect(html).to.contain('<th>ada</th>');
      expect(html).to.contain('<td>7</td>');
    });
  });
});
