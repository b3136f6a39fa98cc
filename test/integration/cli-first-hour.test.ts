import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function run(cmd: string, args: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: { ...process.env, GOFER_CONFIG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
const gofer = (args: string[]): ReturnType<typeof run> => run(process.execPath, [path.join(ROOT, 'bin/gofer.js'), ...args]);

/** A course directory with a SQLite data directory of its own, and its configuration file. */
function course(extra = ''): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-first-hour-'));
  mkdirSync(path.join(dir, 'tests'));
  writeFileSync(path.join(dir, 'tests', 'q1.py'), 'test = {"name": "q1", "suites": []}\n');
  const file = path.join(dir, 'gofer.yaml');
  writeFileSync(file, `dataDir: ${path.join(dir, 'data')}\ncourses:\n  - id: c1\n    assignments:\n      - {id: a1, tests: ./tests}\n${extra}`);
  return file;
}

describe('the command line of the first hour (no engine needed)', function () {
  // each case starts several node processes (npm link, npx): seconds each on a loaded machine
  this.timeout(180_000);

  it('npx gofer runs the command from a clone, and npm link puts gofer on the PATH', async () => {
    const { code, stdout } = await run('npx', ['--no-install', 'gofer', '--help']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/^Usage: gofer /);
    const prefix = mkdtempSync(path.join(tmpdir(), 'gofer-npm-prefix-'));
    const linked = await new Promise<number>((resolve) =>
      execFile('npm', ['link', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: ROOT, env: { ...process.env, npm_config_prefix: prefix } }, (err) => resolve(err ? 1 : 0)),
    );
    expect(linked).to.equal(0);
    const onPath = await run(path.join(prefix, 'bin', 'gofer'), ['--help'], tmpdir());
    expect(onPath.code).to.equal(0);
    expect(onPath.stdout).to.match(/^Usage: gofer /);
  });

  it('check-config reports the file problems and what serve would refuse, every one, by id and line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gofer-first-hour-'));
    mkdirSync(path.join(dir, 'empty'));
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'grading:\n  memroyMb: 5\ncourses:\n  - id: c1\n    assignments:\n      - id: a1\n        tests: ./missing\n');
    const first = await gofer(['--config', bad, 'check-config']);
    expect(first.code).to.equal(78);
    expect(first.stderr).to.include('(2 problems)');
    expect(first.stderr).to.include('line 2, column 3: grading.memroyMb: unknown key "memroyMb" (did you mean "memoryMb"?)');
    expect(first.stderr).to.include(`line 7, column 9: courses[c1].assignments[a1].tests: ${path.join(dir, 'missing')} is not a directory`);
    expect(first.stderr).to.include('      7 |         tests: ./missing');

    const serveRefuses = path.join(dir, 'lti.yaml');
    writeFileSync(serveRefuses, 'lti:\n  development: false\n  url: https://gofer.example.edu\ncourses:\n  - id: c1\n    assignments:\n      - id: a1\n        tests: ./empty\n');
    const second = await gofer(['--config', serveRefuses, 'check-config']);
    expect(second.code).to.equal(78);
    expect(second.stderr).to.include('lti.encryptionKey: LTI needs an encryption key');
    expect(second.stderr).to.include(`line 8, column 9: courses[c1].assignments[a1].tests: The tests directory ${path.join(dir, 'empty')} has no test files (*.py).`);
    // and serve refuses the same file, with the same exit status
    const serve = await gofer(['--config', serveRefuses, 'serve']);
    expect(serve.code).to.equal(78);
  });

  it('token create refuses names that are not user names, and token list shows tokens without revealing them', async () => {
    const file = course();
    const bad = await gofer(['--config', file, 'token', 'create', 'a b/../c']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/"a b\/\.\.\/c" is not a user name/);
    expect(bad.stdout).to.equal('');
    const made = await gofer(['--config', file, 'token', 'create', 'ada', '--label', 'lab laptop']);
    expect(made.code, made.stderr).to.equal(0);
    const token = made.stdout.trim();
    expect(token).to.match(/^gofer_/);
    await gofer(['--config', file, 'token', 'create', 'grace']);
    const listed = await gofer(['--config', file, 'token', 'list']);
    expect(listed.code).to.equal(0);
    const rows = listed.stdout.split('\n').filter(Boolean).map((l) => l.split('\t'));
    expect(rows.map((r) => [r[0], r[2]])).to.deep.equal([
      ['ada', 'lab laptop'],
      ['grace', ''],
    ]);
    expect(listed.stdout).to.not.include(token);
    expect((await gofer(['--config', file, 'token', 'list', '--user', 'nobody'])).stdout).to.equal('no tokens for nobody\n');
  });

  it('an export that matches nothing warns and exits 1', async () => {
    const file = course();
    const none = await gofer(['--config', file, 'export', '--course', 'nope']);
    expect(none.code).to.equal(1);
    expect(none.stdout.trim().split('\n')).to.have.length(1);
    expect(none.stderr).to.include('warning: no grades match course nope (not in the configuration)');
    const legacy = await gofer(['--config', file, 'export', '--legacy', '--assignment', 'a1']);
    expect(legacy.code).to.equal(1);
    expect(legacy.stdout).to.equal('userid,grade,section,lab,timestamp\n');
  });
});
