import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../lib/errors.js';

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
 * Support files of an assignment (data files the notebook opens by relative path): everything
 * under the assignment directory except the tests directory, notebooks, hidden files and
 * links (never followed). Capped in count and size so a wrong directory fails clearly.
 */
export async function readSupportFiles(assignmentDir: string, testsDir: string): Promise<JobFile[]> {
  const files: JobFile[] = [];
  const skip = path.resolve(testsDir);
  let total = 0;
  async function walk(dir: string, rel: string): Promise<void> {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.') || entry.name === '__pycache__') continue;
      const full = path.join(dir, entry.name);
      const relName = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (path.resolve(full) !== skip) await walk(full, relName);
      } else if (entry.isFile() && !entry.name.endsWith('.ipynb')) {
        const content = await readFile(full);
        total += content.length;
        files.push({ name: `files/${relName}`, content });
        if (files.length > SUPPORT_LIMIT_FILES || total > SUPPORT_LIMIT_BYTES) {
          throw new ConfigError(
            `The assignment directory ${assignmentDir} holds more than ${SUPPORT_LIMIT_FILES} files or ` +
              `${SUPPORT_LIMIT_BYTES / 1024 / 1024} MB of support files; point it at the assignment's own folder.`,
          );
        }
      }
    }
  }
  try {
    await walk(assignmentDir, '');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`Cannot read the assignment directory ${assignmentDir}: ${(err as Error).message}`);
  }
  return files;
}
