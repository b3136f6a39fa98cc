import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireEngine } from '../helpers/engine.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = path.join(ROOT, 'config/example/lab01');

function gofer(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [path.join(ROOT, 'bin/gofer.js'), ...args], { env: { ...process.env, ...env }, cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('gofer grade (command line, real engine)', function () {
  this.timeout(120_000);
  before(requireEngine);

  it('grades the example notebook: one JSON object on stdout, with the documented keys, exit 0', async () => {
    const { code, stdout, stderr } = await gofer(['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', path.join(EXAMPLE, 'tests'), '--files', 'data.csv', '--json']);
    expect(code, stderr).to.equal(0);
    const lines = stdout.trim().split('\n');
    expect(lines).to.have.length(1);
    const result = JSON.parse(lines[0]!);
    expect(Object.keys(result).sort()).to.deep.equal(['durationMs', 'grade', 'maxPoints', 'points', 'score', 'status', 'tests']);
    expect(result).to.include({ status: 'graded', score: 1, points: 2, maxPoints: 2 });
    // no --points: out of 1 point, as an assignment without `points` in the configuration
    expect(result.grade).to.deep.equal({ given: 1, maximum: 1, text: '1 / 1 point (100%)' });
    expect(result.tests.map((t: Record<string, unknown>) => Object.keys(t).sort())).to.deep.equal([
      ['hidden', 'maxPoints', 'name', 'passed', 'points'],
      ['hidden', 'maxPoints', 'name', 'passed', 'points'],
    ]);
  });

  it('prints a readable table, and a wrong answer is a result (exit 0), with the otter policy', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gofer-cli-'));
    const nb = JSON.parse((await import('node:fs')).readFileSync(path.join(EXAMPLE, 'lab01.ipynb'), 'utf8'));
    nb.cells[2].source = 'def square(x):\n    return abs(x) * 2';
    writeFileSync(path.join(dir, 'wrong.ipynb'), JSON.stringify(nb));
    const { code, stdout } = await gofer(['grade', path.join(dir, 'wrong.ipynb'), '--tests', path.join(EXAMPLE, 'tests'), '--dir', EXAMPLE, '--files', 'data.csv', '--policy', 'otter', '--timeout', '30', '--memory', '512', '--points', '3']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/q1\s+0\.50\/1\s+failed/);
    expect(stdout).to.match(/Expected:\n\s+\|\s+9\n\s+\|\s+Got:\n\s+\|\s+6/);
    expect(stdout).to.match(/q2\s+2\/2\s+passed/);
    expect(stdout).to.match(/status: graded\s+score: 2\.50\/3 \(83\.3%\)/);
    // the grade on the assignment's scale (--points 3), as the pages and the CSV write it
    expect(stdout).to.match(/^grade: 2\.5 \/ 3 points \(83%\)$/m);
  });

  it('a notebook that is not JSON is unusable input: exit 2, the result says why, with no score', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gofer-cli-'));
    writeFileSync(path.join(dir, 'broken.ipynb'), '{"cells": [');
    const { code, stdout, stderr } = await gofer(['grade', path.join(dir, 'broken.ipynb'), '--tests', path.join(EXAMPLE, 'tests'), '--json']);
    expect(code).to.equal(2);
    expect(stderr).to.include(`${path.join(dir, 'broken.ipynb')} is not a notebook Gofer can grade`);
    expect(JSON.parse(stdout)).to.include({ status: 'invalid_notebook', score: null, points: null });
  });

  it('a test file with a syntax error is named where the instructor keeps it, not inside the container', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gofer-cli-'));
    writeFileSync(path.join(dir, 'q1.py'), 'test = {"name": "q1",\n');
    const { code, stderr } = await gofer(['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', dir, '--dir', EXAMPLE]);
    expect(code, stderr).to.equal(78);
    expect(stderr).to.include(`The instructor tests cannot be used: ${path.join(dir, 'q1.py')}: has a syntax error on line`);
  });

  const failures: Array<[string, string[], Record<string, string>, number, RegExp]> = [
    ['a missing notebook', ['grade', '/nonexistent.ipynb', '--tests', path.join(EXAMPLE, 'tests')], {}, 2, /Cannot read the notebook \/nonexistent.ipynb: ENOENT/],
    ['a missing tests directory', ['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', '/nonexistent/tests'], {}, 78, /Cannot read the tests directory/],
    ['a tests directory without tests', ['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', EXAMPLE, '--dir', path.join(EXAMPLE, 'tests')], {}, 78, /has no test files/],
    ['a missing image', ['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', path.join(EXAMPLE, 'tests'), '--image', 'gofer/no-such-image:1'], {}, 69, /image gofer\/no-such-image:1 is missing\. It is not Gofer's own image: build it from the course's Dockerfile \(`docker build -t gofer\/no-such-image:1 \.`/],
    ['an engine that does not answer', ['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', path.join(EXAMPLE, 'tests')], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' }, 69, /Docker engine does not answer/],
    ['an unknown policy', ['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', path.join(EXAMPLE, 'tests'), '--policy', 'strict'], {}, 2, /Allowed choices are gofer, otter/],
    ['a negative timeout', ['grade', path.join(EXAMPLE, 'lab01.ipynb'), '--tests', path.join(EXAMPLE, 'tests'), '--timeout', '-1'], {}, 2, /expected a positive number/],
  ];
  for (const [what, args, env, exit, message] of failures) {
    it(`${what}: exit ${exit} with a clear message and nothing on stdout`, async () => {
      const { code, stdout, stderr } = await gofer([...args, '--json'], env);
      expect(code, stderr).to.equal(exit);
      expect(stderr).to.match(message);
      expect(stdout).to.equal('');
    });
  }
});
