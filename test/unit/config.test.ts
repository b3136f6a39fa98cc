import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatProblems, idPath, inspectConfig, loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/lib/errors.js';

function file(text: string): string {
  const p = path.join(mkdtempSync(path.join(tmpdir(), 'gofer-config-')), 'gofer.yaml');
  writeFileSync(p, text);
  return p;
}

describe('loadConfig', () => {
  it('gives every setting a default', () => {
    const config = loadConfig(undefined, {});
    expect(config.grading).to.include({ image: 'gofer/grader:latest', policy: 'gofer', timeoutSeconds: 120, memoryMb: 1024 });
    expect(config.log).to.deep.equal({ level: 'info', format: 'text' });
  });

  it('reads a YAML file and lets the environment choose the log format', () => {
    const config = loadConfig(file('grading:\n  memoryMb: 512\n  policy: otter\n'), { GOFER_LOG_FORMAT: 'json' });
    expect(config.grading.memoryMb).to.equal(512);
    expect(config.grading.policy).to.equal('otter');
    expect(config.log.format).to.equal('json');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['a wrong type', 'grading:\n  memoryMb: lots\n', /grading\.memoryMb: Expected number, received string/],
    ['an unknown policy', 'grading:\n  policy: strict\n', /grading\.policy: Invalid enum value/],
    ['an unknown key', 'grading:\n  memroyMb: 5\n', /line 2, column 3: grading\.memroyMb: unknown key "memroyMb" \(did you mean "memoryMb"\?\)/],
    ['broken YAML', 'grading: [\n', /line 2, column 1: not valid YAML: /],
    ['a list at the top', '- a\n- b\n', /top level must be a mapping/],
  ];
  for (const [what, text, message] of bad) {
    it(`names the file, the path and the problem for ${what}`, () => {
      const p = file(text);
      expect(() => loadConfig(p, {}))
        .to.throw(ConfigError)
        .that.satisfies((err: Error) => err.message.includes(p) && message.test(err.message));
    });
  }

  it('reports every problem in one run, by course and assignment id, with the line quoted', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gofer-config-'));
    const p = path.join(dir, 'gofer.yaml');
    writeFileSync(
      p,
      [
        'grading:',
        '  policy: strict',
        'courses:',
        '  - id: ds100',
        '    assignments:',
        '      - id: lab01',
        '        tests: ./nowhere',
        '        pionts: 3',
      ].join('\n') + '\n',
    );
    const found = inspectConfig(p, {});
    expect(found.config).to.equal(undefined);
    expect(found.problems.map((x) => [x.line, x.column, x.at])).to.deep.equal([
      [2, 3, 'grading.policy'],
      [7, 9, 'courses[ds100].assignments[lab01].tests'],
      [8, 9, 'courses[ds100].assignments[lab01].pionts'],
    ]);
    expect(found.problems[1]!.message).to.equal(`${path.join(dir, 'nowhere')} is not a directory`);
    expect(found.problems[2]!.message).to.equal('unknown key "pionts" (did you mean "points"?)');
    const text = formatProblems(found.source, found.problems);
    expect(text).to.include('(3 problems)').and.include('      7 |         tests: ./nowhere');
  });

  it('lists the keys allowed when an unknown key is like none of them', () => {
    const p = file('log:\n  verbosity: 3\n');
    expect(inspectConfig(p, {}).problems[0]!.message).to.equal('unknown key "verbosity" (known here: level, format)');
  });

  it('gives the whole YAML error, with its line, not a message cut at the position', () => {
    const found = inspectConfig(file('grading:\n  image: [a\n  x: 1\n'), {});
    expect(found.problems).to.have.length.greaterThan(0);
    const first = found.problems[0]!;
    expect(first.message).to.match(/^not valid YAML: \S.{10,}/).and.not.match(/line \d+, column \d+:$/);
    expect(first.line).to.be.a('number');
    expect(first.text).to.be.a('string');
  });

  it('names list entries by their id, and by position when they have none', () => {
    const raw = { courses: [{ id: 'c1', assignments: [{ tests: 'x' }, { id: 'a2' }] }] };
    expect(idPath(raw, ['courses', 0, 'assignments', 0, 'tests'])).to.equal('courses[c1].assignments[0].tests');
    expect(idPath(raw, ['courses', 0, 'assignments', 1])).to.equal('courses[c1].assignments[a2]');
  });

  it('says when the file cannot be read', () => {
    expect(() => loadConfig('/nonexistent/gofer.yaml', {})).to.throw(ConfigError, /Cannot read the configuration file \/nonexistent\/gofer.yaml/);
  });
});
