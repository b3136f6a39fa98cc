import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { chromium, type Browser } from 'playwright-core';
import { ROOT } from './service.js';

export const ARTIFACTS = path.join(ROOT, 'test-artifacts');

/** Debian's chromium, driven by playwright-core; fails loudly when it is missing. */
export async function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  try {
    return await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (err) {
    throw new Error(`cannot start Chromium (apt-get install chromium; .ci/run installs it): ${(err as Error).message}`);
  }
}

/**
 * A second, hand-driven platform for attacks and malformed launches: its own key and keyset, so a
 * test can sign any id_token it likes (or sign with the wrong key) and send it through Gofer's
 * real login → launch flow.
 */
export interface CraftingPlatform {
  issuer: string;
  clientId: string;
  keysetUrl: string;
  authUrl: string;
  tokenUrl: string;
  sign(claims: Record<string, unknown>, opts?: { wrongKey?: boolean }): Promise<string>;
  stop(): Promise<void>;
}

export async function startCraftingPlatform(): Promise<CraftingPlatform> {
  const good = await generateKeyPair('RS256');
  const bad = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(good.publicKey)), kid: 'crafted-1', alg: 'RS256', use: 'sig' };
  const app = express();
  app.get('/keys', (_req, res) => {
    res.json({ keys: [jwk] });
  });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    issuer: url,
    clientId: 'crafted-client',
    keysetUrl: `${url}/keys`,
    authUrl: `${url}/auth`,
    tokenUrl: `${url}/token`,
    async sign(claims, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iat: now, exp: now + 3600, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'crafted-1' })
        .sign(opts.wrongKey ? bad.privateKey : good.privateKey);
    },
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

/** A valid resource-link launch's claims for the crafting platform (edX's shape). */
export function launchClaims(p: CraftingPlatform, toolUrl: string, nonce: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';
  return {
    iss: p.issuer,
    aud: p.clientId,
    azp: p.clientId,
    sub: 'crafted-learner',
    nonce,
    [`${LTI}message_type`]: 'LtiResourceLinkRequest',
    [`${LTI}version`]: '1.3.0',
    [`${LTI}deployment_id`]: '1',
    [`${LTI}target_link_uri`]: `${toolUrl}/lti`,
    [`${LTI}roles`]: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'],
    [`${LTI}resource_link`]: { id: 'block-v1:Crafted+C1+2026+type@lti_consumer+block@x' },
    [`${LTI}context`]: { id: 'course-v1:Crafted+C1+2026', label: 'course-v1:Crafted+C1+2026', title: 'Crafted', type: [] },
    [`${LTI}custom`]: { assignment: 'lab01' },
    'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint': {
      scope: ['https://purl.imsglobal.org/spec/lti-ags/scope/score'],
      lineitems: `${p.issuer}/lineitems`,
      lineitem: `${p.issuer}/lineitems/1`,
    },
    ...overrides,
  };
}

/**
 * Gofer's real OIDC flow with a crafted id_token: login (Gofer sets its state cookie and sends
 * state and nonce to the "platform"), then the form POST of state and id_token, following
 * Gofer's redirects with its cookies. Returns the final answer, the redirects followed and the cookies set.
 */
export async function craftedLaunch(
  toolUrl: string,
  p: CraftingPlatform,
  makeToken: (nonce: string) => Promise<string>,
  opts: { reuse?: { state: string; cookie: string; nonce: string } } = {},
): Promise<{ status: number; text: string; nonce: string; state: string; cookie: string; trail: URL[]; jar: string }> {
  let cookie = '';
  let state: string;
  let nonce: string;
  if (opts.reuse) {
    ({ state, nonce, cookie } = opts.reuse);
  } else {
    const q = new URLSearchParams({ iss: p.issuer, client_id: p.clientId, login_hint: 'crafted-learner', target_link_uri: `${toolUrl}/lti`, lti_deployment_id: '1' });
    const login = await fetch(`${toolUrl}/lti/login?${q}`, { redirect: 'manual' });
    const location = login.headers.get('location');
    if (!location) throw new Error(`login did not redirect (${login.status}): ${await login.text()}`);
    const auth = new URL(location);
    state = auth.searchParams.get('state') ?? '';
    nonce = auth.searchParams.get('nonce') ?? randomBytes(8).toString('hex');
    cookie = cookies(login.headers);
  }
  const token = await makeToken(nonce);
  let res = await fetch(`${toolUrl}/lti`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams({ id_token: token, state }),
    redirect: 'manual',
  });
  let jar = [cookie, cookies(res.headers)].filter(Boolean).join('; ');
  const trail: URL[] = [];
  for (let i = 0; i < 5 && res.status >= 300 && res.status < 400; i++) {
    const next = new URL(res.headers.get('location')!, toolUrl);
    trail.push(next);
    res = await fetch(next, { headers: { cookie: jar }, redirect: 'manual' });
    jar = [jar, cookies(res.headers)].filter(Boolean).join('; ');
  }
  return { status: res.status, text: await res.text(), nonce, state, cookie, trail, jar };
}

function cookies(headers: Headers): string {
  return headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
}
