import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { ltiCookies } from '../../src/config/schema.js';
import { safeEqual } from '../../src/lib/safe-equal.js';

function configFile(text: string): string {
  const p = path.join(mkdtempSync(path.join(tmpdir(), 'gofer-cookies-')), 'gofer.yaml');
  writeFileSync(p, text);
  return p;
}

describe('LTI cookie attributes', () => {
  it('default to SameSite=None; Secure; Partitioned outside development, Lax in development', () => {
    expect(ltiCookies(loadConfig(undefined, {}).lti)).to.deep.equal({ secure: true, sameSite: 'None', partitioned: true });
    expect(ltiCookies(loadConfig(configFile('lti:\n  development: true\n'), {}).lti)).to.deep.equal({ secure: false, sameSite: 'Lax', partitioned: false });
  });

  it('take what is configured, and refuse SameSite=None or Partitioned without Secure (browsers drop those)', () => {
    expect(ltiCookies(loadConfig(configFile('lti:\n  cookies:\n    partitioned: false\n'), {}).lti)).to.deep.equal({ secure: true, sameSite: 'None', partitioned: false });
    expect(() => loadConfig(configFile('lti:\n  cookies:\n    secure: false\n'), {})).to.throw(/lti\.cookies\.secure: browsers drop SameSite=None and Partitioned cookies that are not Secure/);
    expect(() => loadConfig(configFile('lti:\n  development: true\n  cookies:\n    partitioned: true\n'), {})).to.throw(/not Secure: set secure: true/);
  });
});

describe('safeEqual', () => {
  it('is true only for equal strings, whatever their lengths', () => {
    expect(safeEqual('abc', 'abc')).to.equal(true);
    expect(safeEqual('', '')).to.equal(true);
    expect(safeEqual('abc', 'abd')).to.equal(false);
    expect(safeEqual('abc', 'abcd')).to.equal(false);
    expect(safeEqual('', 'x')).to.equal(false);
  });
});
