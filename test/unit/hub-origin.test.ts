import { expect } from 'chai';
import { fromHubOrigin, hubOAuthSettings, requestOrigin } from '../../src/submissions/hub-oauth.js';

/** Just what the origin rule reads of a request: its headers, and the scheme it was addressed with. */
function req(headers: Record<string, string>, protocol = 'http') {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { protocol, get: (name: string) => lower[name.toLowerCase()] } as Parameters<typeof fromHubOrigin>[0];
}

describe("the hub's own origin (a cookie-authenticated submit without an XSRF token)", () => {
  const HUB = 'https://hub.example.edu';

  it('takes Origin, and the Referer\'s origin only when Origin is absent; "null" is no origin', () => {
    expect(requestOrigin(req({ origin: HUB, referer: 'https://elsewhere.example/x' }))).to.equal(HUB);
    expect(requestOrigin(req({ referer: `${HUB}/user/ada/notebooks/lab01.ipynb` }))).to.equal(HUB);
    expect(requestOrigin(req({ origin: 'null', referer: `${HUB}/hub/home` }))).to.equal(undefined);
    expect(requestOrigin(req({ referer: 'not a url' }))).to.equal(undefined);
    expect(requestOrigin(req({}))).to.equal(undefined);
  });

  it("accepts the configured hub origin, by Origin or by Referer; refuses another origin, another port or scheme, and no origin", () => {
    expect(fromHubOrigin(req({ origin: HUB, host: 'gofer.internal:8080' }), HUB)).to.equal(true);
    expect(fromHubOrigin(req({ referer: `${HUB}/user/ada/tree` }), HUB)).to.equal(true);
    expect(fromHubOrigin(req({ origin: 'https://evil.example', host: 'hub.example.edu' }), HUB)).to.equal(false);
    expect(fromHubOrigin(req({ origin: 'https://hub.example.edu:8443' }), HUB)).to.equal(false);
    expect(fromHubOrigin(req({ origin: 'http://hub.example.edu' }), HUB)).to.equal(false);
    expect(fromHubOrigin(req({ referer: 'https://evil.example/https://hub.example.edu/' }), HUB)).to.equal(false);
    expect(fromHubOrigin(req({ origin: 'null', referer: `${HUB}/` }), HUB)).to.equal(false);
    expect(fromHubOrigin(req({ host: 'hub.example.edu' }, 'https'), HUB)).to.equal(false);
  });

  it('without a configured hub origin, accepts only the origin the request was addressed to (the hub\'s, behind its proxy)', () => {
    expect(fromHubOrigin(req({ origin: 'http://127.0.0.1:8000', host: '127.0.0.1:8000' }))).to.equal(true);
    expect(fromHubOrigin(req({ origin: 'http://127.0.0.1:9999', host: '127.0.0.1:8000' }))).to.equal(false);
    expect(fromHubOrigin(req({ origin: 'http://127.0.0.1:8000', host: '127.0.0.1:8000' }, 'https'))).to.equal(false);
    expect(fromHubOrigin(req({ origin: 'http://127.0.0.1:8000' }))).to.equal(false);
  });

  it('comes from hub.publicUrl, else JUPYTERHUB_HOST, as an origin', () => {
    const env = { JUPYTERHUB_API_TOKEN: 't', JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api' };
    expect(hubOAuthSettings(env, '/services/gofer/', 'https://hub.example.edu/base/')?.hubOrigin).to.equal(HUB);
    expect(hubOAuthSettings({ ...env, JUPYTERHUB_HOST: 'https://other.example.edu' }, '/services/gofer/')?.hubOrigin).to.equal('https://other.example.edu');
    expect(hubOAuthSettings(env, '/services/gofer/')?.hubOrigin).to.equal(undefined);
  });
});
