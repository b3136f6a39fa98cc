import { expect } from 'chai';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { missingImageHint } from '../../src/grading/container-runner.js';
import { preflight } from '../../src/preflight.js';
import { userNameProblem } from '../../src/submissions/identity.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function config(yaml: string): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-preflight-'));
  mkdirSync(path.join(dir, 'tests'));
  mkdirSync(path.join(dir, 'empty'));
  writeFileSync(path.join(dir, 'tests', 'q1.py'), 'test = {"name": "q1", "suites": []}\n');
  writeFileSync(path.join(dir, 'gofer.yaml'), yaml);
  return loadConfig(path.join(dir, 'gofer.yaml'), {});
}

describe('preflight: what serve and worker refuse, found by check-config', () => {
  it('finds nothing in the example configuration', async () => {
    expect(await preflight(loadConfig(path.join(ROOT, 'config/gofer.example.yaml'), {}), {})).to.deep.equal([]);
  });

  it('names every problem serve would refuse, each at its path', async () => {
    const c = config(
      [
        'database: {client: pg}',
        'server: {port: 0}',
        'lti: {development: false, platforms: [{issuer: "https://lms.example.edu", authUrl: "https://lms.example.edu/auth", clients: [{clientId: c, tokenUrl: "https://lms.example.edu/t", keysetUrl: "https://lms.example.edu/k"}]}]}',
        'courses:',
        '  - id: c1',
        '    assignments:',
        '      - {id: a1, tests: ./tests}',
        '      - {id: a2, tests: ./empty}',
        '      - {id: a3, tests: ./tests, files: ["data/*.csv"]}',
      ].join('\n') + '\n',
    );
    const found = await preflight(c, {});
    expect(found.map((p) => p.where.join('.'))).to.deep.equal(['database.url', 'lti.encryptionKey', 'server.port', 'courses.0.assignments.1.tests', 'courses.0.assignments.2.tests']);
    expect(found[1]!.message).to.match(/LTI needs an encryption key: set GOFER_LTI_KEY/);
    expect(found[3]!.message).to.match(/has no test files/);
    expect(found[4]!.message).to.match(/"data\/\*\.csv" name no file/);
  });

  it('takes the key and the database URL from the environment, as serve does', async () => {
    const c = config('database: {client: pg}\nlti: {development: false, url: "https://gofer.example.edu"}\n');
    expect(await preflight(c, { GOFER_LTI_KEY: 'k'.repeat(32), DATABASE_URL: 'postgres://x@127.0.0.1/y' })).to.deep.equal([]);
  });
});

describe('user names for tokens', () => {
  for (const ok of ['ada', 'ada.lovelace@example.edu', 'x_1-2+3', 'zoë']) {
    it(`accepts ${ok}`, () => expect(userNameProblem(ok)).to.equal(undefined));
  }
  for (const bad of ['a b/../c', '', '../etc', 'a\nb', '-rf', 'x'.repeat(129)]) {
    it(`refuses ${JSON.stringify(bad).slice(0, 30)}`, () => expect(userNameProblem(bad)).to.be.a('string'));
  }
});

describe('the hint for a missing image', () => {
  it("says to build Gofer's own image with gofer image build", () => {
    expect(missingImageHint('gofer/grader:latest')).to.equal('Build it with `gofer image build`.');
    expect(missingImageHint('gofer/grader:v2')).to.equal('Build it with `gofer image build --tag gofer/grader:v2`.');
  });
  it("says a course's image comes from the course's Dockerfile", () => {
    expect(missingImageHint('course/data8:2026')).to.match(/not Gofer's own image: build it from the course's Dockerfile \(`docker build -t course\/data8:2026 \.`/);
  });
});

describe('signed links say why they are refused', () => {
  it('tells an expired link from one that is not ours or was cut short', async () => {
    const { Signer } = await import('../../src/submissions/identity.js');
    const signer = new Signer('s'.repeat(32));
    const link = signer.sign('hub-link', { issuer: 'i', sub: 's' }, 1000, 0);
    expect(signer.check('hub-link', link, 10)).to.deep.equal({ ok: true, value: { issuer: 'i', sub: 's', exp: 1000 } });
    expect(signer.check('hub-link', link, 1000)).to.deep.equal({ ok: false, why: 'expired' });
    expect(signer.check('hub-link', link.slice(0, -3), 10)).to.deep.equal({ ok: false, why: 'invalid' });
    expect(signer.check('hub-link', 'garbage', 10)).to.deep.equal({ ok: false, why: 'invalid' });
    expect(signer.check('hub-oauth-state', link, 10)).to.deep.equal({ ok: false, why: 'invalid' });
  });
});
