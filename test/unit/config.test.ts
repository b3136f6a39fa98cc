import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
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
    ['an unknown key', 'grading:\n  memroyMb: 5\n', /grading: Unrecognized key\(s\) in object: 'memroyMb'/],
    ['broken YAML', 'grading: [\n', /\(line \d+\) is not valid YAML/],
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

  it('says when the file cannot be read', () => {
    expect(() => loadConfig('/nonexistent/gofer.yaml', {})).to.throw(ConfigError, /Cannot read the configuration file \/nonexistent\/gofer.yaml/);
  });
});
