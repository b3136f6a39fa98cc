import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { ZodArray, ZodDefault, ZodEffects, ZodObject, ZodOptional, type ZodIssue, type ZodTypeAny } from 'zod';
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

/** One thing wrong with a configuration: where (by course and assignment id) and, for a file, its line. */
export interface ConfigProblem {
  /** e.g. `courses[ds100].assignments[lab01].tests`; empty for the file as a whole */
  at: string;
  message: string;
  line?: number;
  column?: number;
  /** the offending line of the file, as written */
  text?: string;
}

/** What `inspectConfig` found: every problem at once, and the configuration when there are none. */
export interface ConfigInspection {
  source: string;
  problems: ConfigProblem[];
  config?: Config;
  /** Names and locates a problem found later (by `preflight`) at a path of the file. */
  problem(where: ReadonlyArray<string | number>, message: string): ConfigProblem;
}

/**
 * Reads and validates the configuration once, at start, and throws a ConfigError listing every
 * problem. Environment variables GOFER_LOG_LEVEL and GOFER_LOG_FORMAT override the file.
 */
export function loadConfig(file: string | undefined, env: Environment = readEnvironment()): Config {
  const found = inspectConfig(file, env);
  if (!found.config) throw new ConfigError(formatProblems(found.source, found.problems));
  return found.config;
}

/**
 * Every problem of a configuration in one pass: YAML syntax, schema, and directories that do not
 * exist (checked even when other problems exist), each located by ids and file line.
 */
export function inspectConfig(file: string | undefined, env: Environment = readEnvironment()): ConfigInspection {
  const source = file ?? 'the built-in defaults';
  if (!file) return fromRaw(source, {}, env, process.cwd());
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return only(source, { at: '', message: `Cannot read the configuration file ${file}: ${(err as Error).message}` });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const locate = locator(text, lines, doc);
  if (doc.errors.length) {
    const problems = doc.errors.map((err) => ({ at: '', message: `not valid YAML: ${err.message.split(' at line ')[0]}`, ...locate.offset(err.pos[0]) }));
    return { source, problems, problem: (_where, message) => ({ at: '', message }) };
  }
  return fromRaw(source, doc.toJS() ?? {}, env, path.dirname(path.resolve(file)), locate);
}

function only(source: string, problem: ConfigProblem): ConfigInspection {
  return { source, problems: [problem], problem: (_where, message) => ({ at: '', message }) };
}

function fromRaw(source: string, raw: unknown, env: Environment, base: string, locate?: Locator): ConfigInspection {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return only(source, { at: '', message: `the top level must be a mapping (key: value), not ${describe(raw)}` });
  }
  const problem = (where: ReadonlyArray<string | number>, message: string): ConfigProblem => ({ at: idPath(raw, where), message, ...locate?.path(where) });
  const problems: ConfigProblem[] = [];
  const add = (where: ReadonlyArray<string | number>, message: string): void => void problems.push(problem(where, message));
  const parsed = configSchema.safeParse(applyEnv(raw as Record<string, unknown>, env));
  if (!parsed.success) for (const issue of parsed.error.issues) describeIssue(issue, add);
  for (const [where, message] of directoryProblems(raw as Record<string, unknown>, base)) add(where, message);
  problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  if (problems.length || !parsed.success) return { source, problems, problem };
  return { source, problems, problem, config: resolvePaths(parsed.data, base) };
}

function describeIssue(issue: ZodIssue, add: (where: ReadonlyArray<string | number>, message: string) => void): void {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(issue.path);
    for (const key of issue.keys) {
      const near = nearest(key, known);
      add([...issue.path, key], `unknown key "${key}"${near ? ` (did you mean "${near}"?)` : known.length ? ` (known here: ${known.join(', ')})` : ''}`);
    }
    return;
  }
  add(issue.path, issue.message);
}

/**
 * The directories of each assignment, checked on the file as written (so they are reported even
 * when other settings are wrong): tests and directory must exist, and `files` patterns must be
 * relative globs.
 */
function directoryProblems(raw: Record<string, unknown>, base: string): Array<[Array<string | number>, string]> {
  const problems: Array<[Array<string | number>, string]> = [];
  list(raw.courses).forEach((course, ci) => {
    list(record(course)?.assignments).forEach((a, ai) => {
      const at = ['courses', ci, 'assignments', ai];
      const entry = record(a);
      if (!entry) return;
      if (typeof entry.tests === 'string' && entry.tests) {
        const tests = path.resolve(base, entry.tests);
        if (!isDir(tests)) problems.push([[...at, 'tests'], `${tests} is not a directory`]);
      }
      if (typeof entry.directory === 'string' && entry.directory) {
        const directory = path.resolve(base, entry.directory);
        if (!isDir(directory)) problems.push([[...at, 'directory'], `${directory} is not a directory`]);
      }
      list(entry.files).forEach((pattern, fi) => {
        const problem = typeof pattern === 'string' ? supportPatternProblem(pattern) : undefined;
        if (problem) problems.push([[...at, 'files', fi], `${JSON.stringify(pattern)} ${problem}`]);
      });
    });
  });
  return problems;
}

/** Makes every directory in the file absolute (relative to the file). */
function resolvePaths(config: Config, base: string): Config {
  const courses = config.courses.map((course) => ({
    ...course,
    assignments: course.assignments.map((a) => {
      const tests = path.resolve(base, a.tests);
      return { ...a, tests, directory: path.resolve(base, a.directory ?? path.dirname(tests)) };
    }),
  }));
  return { ...config, dataDir: path.resolve(config.dataDir), courses };
}

/** `courses.0.assignments.1.tests` as people name things: `courses[ds100].assignments[lab02].tests`. */
export function idPath(raw: unknown, where: ReadonlyArray<string | number>): string {
  let out = '';
  let node: unknown = raw;
  for (const key of where) {
    const next = Array.isArray(node) || (typeof node === 'object' && node !== null) ? (node as Record<string | number, unknown>)[key] : undefined;
    if (typeof key === 'number') {
      const id = record(next)?.id;
      out += `[${typeof id === 'string' && id ? id : key}]`;
    } else {
      out += out ? `.${key}` : key;
    }
    node = next;
  }
  return out;
}

interface Locator {
  path(where: ReadonlyArray<string | number>): Pick<ConfigProblem, 'line' | 'column' | 'text'>;
  offset(at: number): Pick<ConfigProblem, 'line' | 'column' | 'text'>;
}

/** Finds the line of a path in the YAML document: the key itself for unknown keys, else the value or its nearest parent. */
function locator(text: string, lines: LineCounter, doc: Document): Locator {
  const fileLines = text.split(/\r?\n/);
  const offset = (at: number): Pick<ConfigProblem, 'line' | 'column' | 'text'> => {
    const { line, col } = lines.linePos(Math.min(Math.max(at, 0), text.length));
    const shown = fileLines[line - 1];
    return { line, column: col, ...(shown !== undefined ? { text: shown } : {}) };
  };
  return {
    offset,
    path(where) {
      for (let n = where.length; n >= 0; n--) {
        const parent = n > 0 ? doc.getIn(where.slice(0, n - 1), true) : doc.contents;
        const key = where[n - 1];
        if (n > 0 && isMap(parent)) {
          const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === key);
          const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
          if (range) return offset(range[0]);
          continue;
        }
        const node = n > 0 ? doc.getIn(where.slice(0, n), true) : doc.contents;
        const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
        if (range) return offset(range[0]);
      }
      return {};
    },
  };
}

/** "gofer.yaml:4:7: courses[8x].assignments[lab01].policy: …" and the line quoted, one problem after another. */
export function formatProblems(source: string, problems: ConfigProblem[]): string {
  const lines = problems.map((p) => {
    const where = p.line ? `line ${p.line}, column ${p.column}: ` : '';
    const head = `  ${where}${p.at ? `${p.at}: ` : ''}${p.message}`;
    return p.text !== undefined ? `${head}\n      ${p.line} | ${p.text}` : head;
  });
  return `${source} is not a valid Gofer configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}

/** The keys the schema allows at a path (for "did you mean"). */
function knownKeys(where: ReadonlyArray<string | number>): string[] {
  let schema: ZodTypeAny | undefined = configSchema;
  for (const key of where) {
    schema = unwrap(schema);
    if (schema instanceof ZodArray) schema = (schema.element as ZodTypeAny);
    else if (schema instanceof ZodObject && typeof key === 'string') schema = (schema.shape as Record<string, ZodTypeAny>)[key];
    else return [];
  }
  schema = unwrap(schema);
  return schema instanceof ZodObject ? Object.keys(schema.shape as Record<string, unknown>) : [];
}

function unwrap(schema: ZodTypeAny | undefined): ZodTypeAny | undefined {
  let s = schema;
  for (;;) {
    if (s instanceof ZodEffects) s = s.innerType() as ZodTypeAny;
    else if (s instanceof ZodDefault) s = s.removeDefault() as ZodTypeAny;
    else if (s instanceof ZodOptional) s = s.unwrap() as ZodTypeAny;
    else return s;
  }
}

/** The known key closest to a misspelt one, when it is close (at most a third of its letters, and 3, edited). */
function nearest(key: string, known: string[]): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(key.length / 3)));
  let best: { key: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(key.toLowerCase(), k.toLowerCase());
    if (distance <= limit && (!best || distance < best.distance)) best = { key: k, distance };
  }
  return best?.key;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function applyEnv(raw: Record<string, unknown>, env: Environment): Record<string, unknown> {
  const log = { ...(raw.log as Record<string, unknown> | undefined) };
  if (env.GOFER_LOG_LEVEL) log.level = env.GOFER_LOG_LEVEL;
  if (env.GOFER_LOG_FORMAT) log.format = env.GOFER_LOG_FORMAT;
  return Object.keys(log).length ? { ...raw, log } : raw;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  return value === null ? 'nothing' : `a ${typeof value}`;
}
