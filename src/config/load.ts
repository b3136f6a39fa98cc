import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ZodIssue } from 'zod';
import { ConfigError } from '../lib/errors.js';
import { supportPatternProblem } from '../lib/globs.js';
import { configSchema, type Config } from './schema.js';

/** Every environment variable Gofer reads (JupyterHub sets the JUPYTERHUB_* ones for a managed service). */
export const ENVIRONMENT_VARIABLES = [
  'GOFER_CONFIG',
  'GOFER_LOG_LEVEL',
  'GOFER_LOG_FORMAT',
  'GOFER_PORT',
  'GOFER_SECRET',
  'GOFER_LTI_KEY',
  'DATABASE_URL',
  'DOCKER_HOST',
  'JUPYTERHUB_API_TOKEN',
  'JUPYTERHUB_API_URL',
  'JUPYTERHUB_BASE_URL',
  'JUPYTERHUB_CLIENT_ID',
  'JUPYTERHUB_HOST',
  'JUPYTERHUB_OAUTH_ACCESS_SCOPES',
  'JUPYTERHUB_OAUTH_CALLBACK_URL',
  'JUPYTERHUB_SERVICE_NAME',
  'JUPYTERHUB_SERVICE_PREFIX',
  'JUPYTERHUB_SERVICE_URL',
] as const;

/** The environment as Gofer sees it: only the variables it reads, read once (readEnvironment). */
export type Environment = Readonly<Partial<Record<(typeof ENVIRONMENT_VARIABLES)[number], string>>>;

/** Reads the process environment once, at start; every other module is handed the result. */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const out: Partial<Record<(typeof ENVIRONMENT_VARIABLES)[number], string>> = {};
  for (const name of ENVIRONMENT_VARIABLES) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return Object.freeze(out);
}

/** Where the configuration comes from: `--config`, else GOFER_CONFIG, else built-in defaults. */
export function configPath(explicit: string | undefined, env: Environment): string | undefined {
  return explicit ?? (env.GOFER_CONFIG || undefined);
}

/**
 * Reads and validates the configuration once, at start. Environment variables GOFER_LOG_LEVEL
 * and GOFER_LOG_FORMAT override the file (handy for containers).
 */
export function loadConfig(path: string | undefined, env: Environment = readEnvironment()): Config {
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
  return resolvePaths(parsed.data, path ? pathDir(path) : process.cwd(), source);
}

function pathDir(file: string): string {
  return path.dirname(path.resolve(file));
}

/**
 * Makes every directory in the file absolute (relative to the file) and checks it exists now,
 * at start, instead of failing on the first submission.
 */
function resolvePaths(config: Config, base: string, source: string): Config {
  const problems: string[] = [];
  const courses = config.courses.map((course, ci) => ({
    ...course,
    assignments: course.assignments.map((a, ai) => {
      const tests = path.resolve(base, a.tests);
      const directory = path.resolve(base, a.directory ?? path.dirname(tests));
      const at = `courses.${ci}.assignments.${ai}`;
      if (!isDir(tests)) problems.push(`  ${at}.tests: ${tests} is not a directory`);
      if (a.directory && !isDir(directory)) problems.push(`  ${at}.directory: ${directory} is not a directory`);
      for (const pattern of a.files) {
        const problem = supportPatternProblem(pattern);
        if (problem) problems.push(`  ${at}.files: ${JSON.stringify(pattern)} ${problem}`);
      }
      return { ...a, tests, directory };
    }),
  }));
  if (problems.length) throw new ConfigError(`${source} is not a valid Gofer configuration:\n${problems.join('\n')}`);
  return { ...config, dataDir: path.resolve(config.dataDir), courses };
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

function applyEnv(raw: Record<string, unknown>, env: Environment): Record<string, unknown> {
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
