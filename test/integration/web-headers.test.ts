import { expect } from 'chai';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { partitionCrossSiteCookies, securityHeaders } from '../../src/web/headers.js';

/** The header middlewares on a real express server, answered over loopback. */
describe('web headers', () => {
  let server: import('node:http').Server;
  let url: string;

  before(async () => {
    const app = express();
    app.use(securityHeaders(['https://lms.example.edu', 'https://apps.example.edu', 'https://lms.example.edu']));
    app.use(partitionCrossSiteCookies());
    app.get('/cookies', (_req, res) => {
      res.cookie('cross', '1', { secure: true, sameSite: 'none' });
      res.cookie('already', '1', { secure: true, sameSite: 'none', partitioned: true });
      res.cookie('first-party', '1', { sameSite: 'lax' });
      res.cookie('none-but-insecure', '1', { sameSite: 'none' });
      res.send('ok');
    });
    // Gofer's own catch-all (express's default 404 sets a policy of its own)
    app.use((_req, res) => {
      res.status(404).send('nothing here');
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('mark Partitioned exactly the Secure; SameSite=None cookies, once', async () => {
    const cookies = (await fetch(`${url}/cookies`)).headers.getSetCookie();
    const of = (name: string) => cookies.find((c) => c.startsWith(`${name}=`))!;
    expect(of('cross')).to.match(/; Secure; SameSite=None; Partitioned$/);
    expect(of('already').match(/Partitioned/g)).to.have.length(1);
    expect(of('first-party')).to.not.include('Partitioned');
    expect(of('none-but-insecure')).to.not.include('Partitioned');
  });

  it('limit framing to the given origins (once each) on every answer, with nosniff and a referrer policy', async () => {
    const res = await fetch(`${url}/no-such-page`);
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-security-policy')).to.equal("frame-ancestors 'self' https://lms.example.edu https://apps.example.edu");
    expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(res.headers.get('referrer-policy')).to.equal('same-origin');
  });
});
