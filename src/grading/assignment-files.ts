import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../lib/errors.js';
import { globMatcher } from '../lib/globs.js';

/** A file to put into the grading container, with its path inside the job archive. */
export interface JobFile {
  name: string;
  content: Buffer;
}

export const SUPPORT_LIMIT_BYTES = 64 * 1024 * 1024;
export const SUPPORT_LIMIT_FILES = 2000;

/**
 * The instructor's OK-format test files: every `*.py` directly in the tests directory.
 * Read from the instructor's disk; never from anything a learner sent.
 */
export async function readTests(testsDir: string): Promise<JobFile[]> {
  let names: string[];
  try {
    names = await readdir(testsDir);
  } catch (err) {
    throw new ConfigError(`Cannot read the tests directory ${testsDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const files: JobFile[] = [];
  for (const name of names.filter((n) => n.endsWith('.py') && !n.startsWith('.') && n !== '__init__.py').sort()) {
    const full = path.join(testsDir, name);
    const st = await lstat(full);
    if (!st.isFile()) continue;
    files.push({ name: `tests/${name}`, content: await readFile(full) });
  }
  if (files.length === 0) {
    throw new ConfigError(`The tests directory ${testsDir} has no test files (*.py).`);
  }
  return files;
}

/**
 * Support files of an assignment (data files the notebook opens by relative path): the files
 * under the assignment directory that the assignment's `files` patterns name, never the tests
 * directory, notebooks, hidden files or links (never followed). Nothing when no pattern is given.
 * A pattern that names no file is a configuration mistake. Capped in count and size.
 */
export async function readSupportFiles(assignmentDir: string, testsDir: string, patterns: string[]): Promise<JobFile[]> {
  if (patterns.length === 0) return [];
  const wanted = globMatcher(patterns);
  const files: JobFile[] = [];
  let total = 0;
  for (const relName of await listAssignmentFiles(assignmentDir, testsDir)) {
    if (!wanted(relName)) continue;
    const content = await readFile(path.join(assignmentDir, relName));
    total += content.length;
    files.push({ name: `files/${relName}`, content });
    if (files.length > SUPPORT_LIMIT_FILES || total > SUPPORT_LIMIT_BYTES) {
      throw new ConfigError(
        `The support files of ${assignmentDir} are more than ${SUPPORT_LIMIT_FILES} files or ` +
          `${SUPPORT_LIMIT_BYTES / 1024 / 1024} MB; list only what the notebook reads in the assignment's \`files\`.`,
      );
    }
  }
  const unmatched = patterns.filter((p) => !files.some((f) => globMatcher([p])(f.name.slice('files/'.length))));
  if (unmatched.length > 0) {
    throw new ConfigError(`The assignment's \`files\` ${unmatched.map((p) => JSON.stringify(p)).join(', ')} name no file in ${assignmentDir}.`);
  }
  return files;
}

/** Names that look like a solution, an answer key or an autograder archive. */
const SUSPICIOUS = /(solution|answer|key|autograder|grader)|\.(zip|tar|tgz|gz|whl)$/i;

/** Files of the assignment directory whose names look like solutions or grader archives. */
export async function suspiciousFiles(assignmentDir: string, testsDir: string): Promise<string[]> {
  return (await listAssignmentFiles(assignmentDir, testsDir)).filter((name) => SUSPICIOUS.test(path.posix.basename(name)));
}

/** Every regular file under the assignment directory (relative, `/`-separated), skipping the
 * tests directory, notebooks, hidden files, `__pycache__` and links. */
async function listAssignmentFiles(assignmentDir: string, testsDir: string): Promise<string[]> {
  const skip = path.resolve(testsDir);
  const names: string[] = [];
  let seen = 0;
  async function walk(dir: string, rel: string): Promise<void> {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.') || entry.name === '__pycache__') continue;
      if (++seen > 10 * SUPPORT_LIMIT_FILES) {
        throw new ConfigError(`The assignment directory ${assignmentDir} holds more than ${10 * SUPPORT_LIMIT_FILES} entries; point it at the assignment's own folder.`);
      }
      const full = path.join(dir, entry.name);
      const relName = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (path.resolve(full) !== skip) await walk(full, relName);
      } else if (entry.isFile() && !entry.name.endsWith('.ipynb')) {
        names.push(relName);
      }
    }
  }
  try {
    await walk(assignmentDir, '');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`Cannot read the assignment directory ${assignmentDir}: ${(err as Error).message}`);
  }
  return names;
}
