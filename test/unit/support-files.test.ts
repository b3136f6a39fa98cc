import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { readSupportFiles } from '../../src/grading/assignment-files.js';
import { ConfigError } from '../../src/lib/errors.js';
import { globToRegExp, supportPatternProblem } from '../../src/lib/globs.js';
import { ROOT } from '../helpers/service.js';

/** Support files are opt-in: only what an assignment's `files` names reaches a container. */
function assignmentDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-support-'));
  mkdirSync(path.join(dir, 'tests'));
  mkdirSync(path.join(dir, 'data', 'raw'), { recursive: true });
  writeFileSync(path.join(dir, 'tests', 'q1.py'), "test = {'name': 'q1', 'suites': [{'cases': [{'code': '>>> 1\\n1'}], 'type': 'doctest'}]}\n");
  writeFileSync(path.join(dir, 'data.csv'), 'a,b\n1,2\n');
  writeFileSync(path.join(dir, 'data', 'raw', 'cities.csv'), 'x\n');
  writeFileSync(path.join(dir, 'data', 'notes.txt'), 'n\n');
  writeFileSync(path.join(dir, 'solutions.py'), 'def square(x):\n    return x * x\n');
  writeFileSync(path.join(dir, 'autograder.zip'), 'PK');
  return dir;
}

describe('support files: opt-in per assignment', () => {
  it('copies nothing when the assignment lists no files (a solutions.py beside the tests stays out)', async () => {
    const dir = assignmentDir();
    expect(await readSupportFiles(dir, path.join(dir, 'tests'), [])).to.deep.equal([]);
  });

  it('copies exactly the listed paths and globs', async () => {
    const dir = assignmentDir();
    const files = await readSupportFiles(dir, path.join(dir, 'tests'), ['data.csv', 'data/**/*.csv']);
    expect(files.map((f) => f.name).sort()).to.deep.equal(['files/data.csv', 'files/data/raw/cities.csv']);
    const folder = await readSupportFiles(dir, path.join(dir, 'tests'), ['data']);
    expect(folder.map((f) => f.name)).to.deep.equal(['files/data/notes.txt', 'files/data/raw/cities.csv']);
  });

  it('a pattern that names no file is a configuration error that says which', async () => {
    const dir = assignmentDir();
    const err = await readSupportFiles(dir, path.join(dir, 'tests'), ['data.csv', 'missing/*.json']).catch((e: Error) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.match(/"missing\/\*\.json" name no file/);
  });

  it('globs: * and ? stay in a segment, ** spans segments; absolute and .. patterns are refused', () => {
    expect(globToRegExp('*.csv').test('a.csv')).to.equal(true);
    expect(globToRegExp('*.csv').test('d/a.csv')).to.equal(false);
    expect(globToRegExp('**/*.csv').test('d/e/a.csv')).to.equal(true);
    expect(globToRegExp('q?.txt').test('q1.txt')).to.equal(true);
    expect(supportPatternProblem('/etc/passwd')).to.match(/relative/);
    expect(supportPatternProblem('../secret')).to.match(/\.\./);
    expect(supportPatternProblem('data/*.csv')).to.equal(undefined);
  });

  it('check-config warns about files that look like solutions or grader archives, louder when `files` lists them', async () => {
    const dir = assignmentDir();
    const file = path.join(dir, 'gofer.yaml');
    writeFileSync(
      file,
      stringify({ courses: [{ id: 'c', assignments: [{ id: 'a', tests: 'tests', files: ['data.csv', 'solutions.py'] }] }] }),
    );
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/gofer.js'), '--config', file, 'check-config']);
    expect(stdout).to.match(/warning: c\/a: .*solutions\.py .*sends it to every learner's container/);
    expect(stdout).to.match(/warning: c\/a: .*autograder\.zip .*stays out of the container/);
    expect(stdout).not.to.match(/data\.csv/);
  });
});
