import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ZodIssue } from 'zod';
import { ConfigError } from '../lib/errors.js';
import { configSchema, type Config } from './schema.js';

/** Where the configuration comes from: `--config`, else GOFER_CONFIG, else built-in defaults. */
export function configPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return explicit ?? (env.GOFER_CONFIG || undefined);
}

/**
 * Reads and validates the configuration once, at start. Environment variables GOFER_LOG_LEVEL
 * and GOFER_LOG_FORMAT override the file (handy for containers).
 */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown = {};
  const source = path ?? 'the built-in defaults';
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`Cannot read the configuration file ${path}: ${(err as Error).message}`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line})` : '';
      throw new ConfigError(`${path}${where} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${source}: the top level must be a mapping (key: value), not ${describe(raw)}.`);
  }
  const withEnv = applyEnv(raw as Record<string, unknown>, env);
  const parsed = configSchema.safeParse(withEnv);
  if (!parsed.success) {
    throw new ConfigError(formatIssues(source, parsed.error.issues));
  }
  return parsed.data;
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const log = { ...(raw.log as Record<string, unknown> | undefined) };
  if (env.GOFER_LOG_LEVEL) log.level = env.GOFER_LOG_LEVEL;
  if (env.GOFER_LOG_FORMAT) log.format = env.GOFER_LOG_FORMAT;
  return Object.keys(log).length ? { ...raw, log } : raw;
}

/** "config.yaml: grading.memoryMb: Expected number, received string" — one line per problem. */
export function formatIssues(source: string, issues: ZodIssue[]): string {
  const lines = issues.map((issue) => {
    const at = issue.path.length ? issue.path.join('.') : '(top level)';
    return `  ${at}: ${issue.message}`;
  });
  return `${source} is not a valid Gofer configuration:\n${lines.join('\n')}`;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  return value === null ? 'nothing' : `a ${typeof value}`;
}
