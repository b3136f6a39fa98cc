import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './service.js';

/** The Python package of the Submit button (server extension, classic and JupyterLab buttons). */
export const EXTENSION_DIR = path.join(ROOT, 'extensions/jupyter_gofer');
/** The Python the hub's single-user servers run with (Debian's, which has notebook and jupyter_server). */
export const SYSTEM_PYTHON = process.env.GOFER_TEST_PYTHON ?? '/usr/bin/python3';

export interface InstalledButton {
  prefix: string;
  /** Where the package's modules are (for PYTHONPATH). */
  site: string;
  /** etc/jupyter under the prefix (for JUPYTER_CONFIG_PATH): enables the server extension and the nbextension. */
  config: string;
  /** share/jupyter under the prefix (for JUPYTER_PATH): the nbextension and the labextension files. */
  data: string;
}

function find(root: string, test: (p: string) => boolean, depth = 6): string | undefined {
  if (depth < 0 || !existsSync(root) || !statSync(root).isDirectory()) return undefined;
  if (test(root)) return root;
  for (const e of readdirSync(root)) {
    const hit = find(path.join(root, e), test, depth - 1);
    if (hit) return hit;
  }
  return undefined;
}

/**
 * `pip install` of extensions/jupyter_gofer into a fresh prefix, offline (no dependencies fetched,
 * no isolated build: setuptools from the system), as a single-user image would install it.
 */
export async function installButton(): Promise<InstalledButton> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'gofer-button-'));
  const build = mkdtempSync(path.join(tmpdir(), 'gofer-button-build-'));
  try {
    await promisify(execFile)(SYSTEM_PYTHON, ['-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation', '--no-cache-dir', '--prefix', prefix, EXTENSION_DIR], {
      cwd: build,
      env: { ...process.env, PIP_NO_INDEX: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1', TMPDIR: build },
    });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`pip install ${EXTENSION_DIR} with ${SYSTEM_PYTHON} failed (Debian: apt-get install python3-pip python3-setuptools): ${e.stderr ?? e.message}`);
  }
  const site = find(prefix, (p) => existsSync(path.join(p, 'jupyter_gofer', '__init__.py')));
  const config = find(prefix, (p) => p.endsWith(`etc${path.sep}jupyter`));
  const data = find(prefix, (p) => p.endsWith(`share${path.sep}jupyter`));
  if (!site || !config || !data) throw new Error(`pip installed jupyter_gofer into ${prefix} without its modules, config or data files`);
  return { prefix, site, config, data };
}
