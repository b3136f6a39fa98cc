import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { silentLogger } from '../../src/lib/logger.js';
import { run, type Running } from '../../src/server.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const EXAMPLE_TESTS = path.join(ROOT, 'config/example/lab01/tests');

/** Writes a configuration file (YAML) for a test, with the example course unless told otherwise. */
export function writeConfig(overrides: Record<string, unknown> = {}): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-svc-'));
  const config = {
    dataDir: path.join(dir, 'data'),
    server: { host: '127.0.0.1', port: 0 },
    defaultCourse: '8x',
    courses: [
      {
        id: '8x',
        instructors: ['prof'],
        assignments: [
          { id: 'lab01', aliases: ['1'], section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], policy: 'otter' },
          { id: 'closed', tests: EXAMPLE_TESTS, due: '2020-01-01T00:00:00Z', late: 'reject' },
        ],
      },
    ],
    ...overrides,
  };
  const file = path.join(dir, 'gofer.yaml');
  writeFileSync(file, stringify(config));
  return { file, dir };
}

export async function startService(opts: { overrides?: Record<string, unknown>; workers?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Running & { url: string; config: Config; dir: string }> {
  const { file, dir } = writeConfig(opts.overrides);
  const config = loadConfig(file, {});
  const running = await run({ config, log: silentLogger(), http: true, workers: opts.workers ?? 0, env: opts.env ?? {} });
  return { ...running, url: running.url!, config, dir };
}
