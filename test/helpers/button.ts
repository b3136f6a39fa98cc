import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { startHub, type Hub } from './hub.js';
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

export interface ButtonHubOptions {
  /** The hub's directory (from writeConfig) and Gofer's configuration file in it. */
  dir: string;
  goferConfig: string;
  /** Gofer's port, named in the configuration and in the single-user servers' GOFER_URL. */
  goferPort: number;
  /** Notebooks put into each learner's home directory: file name → text. */
  notebooks: Record<string, string>;
  learners: string[];
  /** The single-user server of a learner: the classic Notebook 6 (notebook.notebookapp.NotebookApp) unless named here. */
  singleUserApps?: Record<string, string>;
}

/**
 * A real JupyterHub whose single-user servers (SimpleLocalProcessSpawner, Debian's Python) load
 * the pip-installed extension; Gofer is its managed service. The server role gets the scope the
 * extension's forwarded requests need.
 */
export async function startButtonHub(opts: ButtonHubOptions, installed: InstalledButton): Promise<{ hub: Hub; homes: Record<string, string> }> {
  const homes: Record<string, string> = {};
  for (const learner of opts.learners) {
    const home = path.join(opts.dir, 'home', learner);
    mkdirSync(home, { recursive: true });
    for (const [name, text] of Object.entries(opts.notebooks)) writeFileSync(path.join(home, name), text);
    homes[learner] = home;
  }
  const environment = {
    PYTHONPATH: installed.site,
    JUPYTER_CONFIG_PATH: installed.config,
    JUPYTER_PATH: installed.data,
    GOFER_URL: `http://127.0.0.1:${opts.goferPort}`,
    GOFER_PREFIX: '/services/gofer/',
  };
  const extraConfig = `
c.JupyterHub.spawner_class = 'simple'
c.Spawner.cmd = [${JSON.stringify(SYSTEM_PYTHON)}, '-m', 'jupyterhub.singleuser']
c.Spawner.args = ['--allow-root']
_apps = ${JSON.stringify(opts.singleUserApps ?? {})}
c.Spawner.environment = {**${JSON.stringify(environment)}, 'JUPYTERHUB_SINGLEUSER_APP': lambda spawner: _apps.get(spawner.user.name, 'notebook.notebookapp.NotebookApp')}
c.Spawner.start_timeout = 60
c.SimpleLocalProcessSpawner.home_dir_template = ${JSON.stringify(path.join(opts.dir, 'home', '{username}'))}
c.JupyterHub.load_roles.append({'name': 'server', 'scopes': ['users:activity!user', 'access:servers!user', 'access:services!service=gofer']})
`;
  const hub = await startHub({ dir: opts.dir, goferConfig: opts.goferConfig, serviceName: 'gofer', ports: { gofer: opts.goferPort }, extraConfig });
  return { hub, homes };
}

/** Logs `learner` in to the hub (dummy authenticator), has the hub start their server, and opens `notebook` in the classic Notebook. */
export async function openClassicNotebook(page: Page, hub: Hub, learner: string, notebook: string, login = true): Promise<void> {
  if (login) {
    await page.goto(`${hub.url}/hub/login?next=${encodeURIComponent('/hub/home')}`);
    await page.fill('#username_input', learner);
    await page.fill('#password_input', 'any password');
    await Promise.all([page.waitForURL(/\/hub\/home/), page.click('#login_submit')]);
    // the hub starts the server, then sends the browser on to the notebook
    await page.goto(`${hub.url}/hub/spawn?next=${encodeURIComponent(`/user/${learner}/notebooks/${notebook}`)}`);
  } else {
    await page.goto(`${hub.url}/user/${learner}/notebooks/${notebook}`);
  }
  await page.waitForSelector('#gofer-submit', { timeout: 90_000 });
  await page.waitForFunction(() => (window as unknown as { Jupyter?: { notebook?: { _fully_loaded?: boolean } } }).Jupyter?.notebook?._fully_loaded === true, undefined, { timeout: 60_000 });
}

/** Adds a code cell with `source` at the bottom of the open classic notebook (not saved: the button saves). */
export async function addClassicCell(page: Page, source: string): Promise<void> {
  await page.evaluate((text) => {
    const nb = (window as unknown as { Jupyter: { notebook: { insert_cell_at_bottom(t: string): { set_text(s: string): void } } } }).Jupyter.notebook;
    nb.insert_cell_at_bottom('code').set_text(text);
  }, source);
}
