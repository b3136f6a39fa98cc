import { expect } from 'chai';
import { Signer } from '../../src/submissions/identity.js';

describe('Signer (signed, expiring values for one purpose)', () => {
  const signer = new Signer('a long test secret');
  const NOW = 1_000_000;

  it('verifies its own value for the same purpose before it expires', () => {
    const t = signer.sign('hub-link', { issuer: 'i', sub: 's' }, 60_000, NOW);
    expect(signer.verify<{ issuer: string; sub: string }>('hub-link', t, NOW + 59_999)).to.deep.include({ issuer: 'i', sub: 's' });
  });

  it('refuses an expired value, another purpose, another secret, a changed body and garbage', () => {
    const t = signer.sign('hub-link', { issuer: 'i', sub: 's' }, 60_000, NOW);
    expect(signer.verify('hub-link', t, NOW + 60_000)).to.equal(undefined);
    expect(signer.verify('hub-oauth-state', t, NOW)).to.equal(undefined);
    expect(new Signer('another secret').verify('hub-link', t, NOW)).to.equal(undefined);
    const [, mac] = t.split('.');
    const forged = `${Buffer.from(JSON.stringify({ issuer: 'i', sub: 'admin', exp: NOW + 60_000 })).toString('base64url')}.${mac}`;
    expect(signer.verify('hub-link', forged, NOW)).to.equal(undefined);
    for (const bad of [undefined, '', 'x', '.', 'a.b', `${t}x`]) expect(signer.verify('hub-link', bad, NOW)).to.equal(undefined);
  });

  it('tags text per purpose, stably, and never as a signed value of another purpose', () => {
    expect(signer.tag('csrf', 'launch-1')).to.equal(signer.tag('csrf', 'launch-1'));
    expect(signer.tag('csrf', 'launch-1')).not.to.equal(signer.tag('csrf', 'launch-2'));
    expect(signer.tag('csrf', 'launch-1')).not.to.equal(signer.tag('other', 'launch-1'));
    expect(signer.tag('csrf', 'launch-1')).to.match(/^[A-Za-z0-9_-]{43}$/);
  });
});
