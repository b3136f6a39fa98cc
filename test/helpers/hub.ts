import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './process.js';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './service.js';

/**
 * A real JupyterHub (2 or later) for end-to-end tests: the hub, its configurable-http-proxy,
 * and Gofer as a hub-managed service, all on loopback ports, with every file in one directory.
 */

/** A failure of the hub setup, its message ending with the log's last lines. */
class HubFailure extends Error {}

export { freePort }; // re-exported for the hub tests

export const PROXY_BIN = path.join(ROOT, 'node_modules/.bin/configurable-http-proxy');

/** The jupyterhub command, or a loud failure saying how to install it (these tests never skip). */
export function requireJupyterHub(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = env.JUPYTERHUB_BIN ? [env.JUPYTERHUB_BIN] : (env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, 'jupyterhub'));
  const found = candidates.find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) {
    throw new Error(
      `jupyterhub is not installed (looked for ${env.JUPYTERHUB_BIN ? `JUPYTERHUB_BIN=${env.JUPYTERHUB_BIN}` : 'jupyterhub on PATH'}). ` +
        'This test runs a real JupyterHub: on Debian 12, apt-get install --no-install-recommends jupyterhub (3.0), or set JUPYTERHUB_BIN.',
    );
  }
  if (!existsSync(PROXY_BIN)) {
    throw new Error(`${PROXY_BIN} is missing: run npm install (configurable-http-proxy is a devDependency; Debian's node-configurable-http-proxy does not start with this Node.js).`);
  }
  return found;
}

/** n distinct free ports, none of them in `taken`. */
async function freePorts(n: number, taken: number[] = []): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) {
    const p = await freePort();
    if (!taken.includes(p)) ports.add(p);
  }
  return [...ports];
}

/** A Python literal for strings, lists and dicts of them (JSON is valid Python for those). */
function py(value: unknown): string {
  const check = (v: unknown): void => {
    if (typeof v === 'string') return;
    if (Array.isArray(v)) return v.forEach(check);
    if (typeof v === 'object' && v !== null) return Object.values(v).forEach(check);
    throw new Error(`py(): only strings, lists and dicts, not ${JSON.stringify(v)}`);
  };
  check(value);
  return JSON.stringify(value);
}

export interface HubOptions {
  /** The directory for every file of the hub (config, database, logs, pid files). */
  dir: string;
  /** The Gofer configuration file the managed service is started with. */
  goferConfig: string;
  /** The service's name; its prefix is /services/<name>/. */
  serviceName?: string;
  /** Extra environment for the managed service (the hub passes only PATH, LANG and its own variables). */
  environment?: Record<string, string>;
  jupyterhub?: string;
  startTimeoutMs?: number;
  /**
   * Fixed ports, for a Gofer configuration that must name them before the hub starts (LTI tool
   * URLs, `hub.publicUrl`): `gofer` is the service's 'url' port, `public` the proxy's. Free ports otherwise.
   */
  ports?: { public?: number; gofer?: number };
  /** Python appended to the hub's configuration (spawner settings, more roles). */
  extraConfig?: string;
}

export interface Hub {
  /** The public URL: configurable-http-proxy in front of the hub and the services. */
  url: string;
  /** The hub's own API, not through the proxy. */
  apiUrl: string;
  /** Gofer's own port (the REST API at /api/v1 is not under the service prefix). */
  goferUrl: string;
  prefix: string;
  version: string;
  logFile: string;
  child: ChildProcess;
  /** Creates a hub user and returns a token of theirs (what the notebook server holds as JUPYTERHUB_API_TOKEN). */
  userWithToken(name: string, scopes?: string[]): Promise<string>;
  /** The last lines of the hub's log (the proxy and Gofer write into it too). */
  tail(lines?: number): string;
  /** Stops the hub (SIGTERM, which stops its managed service and the proxy); returns what had to be killed after it. */
  stop(): Promise<{ exitedInMs: number; leftovers: string[] }>;
}

/** Starts JupyterHub with Gofer as a hub-managed service; resolves once Gofer answers through the proxy. */
export async function startHub(opts: HubOptions): Promise<Hub> {
  const jupyterhub = opts.jupyterhub ?? requireJupyterHub();
  const { dir } = opts;
  const name = opts.serviceName ?? 'gofer';
  const given = [opts.ports?.public, opts.ports?.gofer].filter((p): p is number => p !== undefined);
  if (new Set(given).size !== given.length) throw new Error(`startHub: the public and Gofer ports must differ (${given.join(', ')})`);
  const [freePublic, hubPort, proxyApiPort, freeGofer] = (await freePorts(4, given)) as [number, number, number, number];
  const publicPort = opts.ports?.public ?? freePublic;
  const goferPort = opts.ports?.gofer ?? freeGofer;
  const adminToken = randomBytes(32).toString('hex');
  const serviceToken = randomBytes(32).toString('hex');
  const proxyToken = randomBytes(32).toString('hex');
  const proxyPidFile = path.join(dir, 'proxy.pid');
  const goferUrl = `http://127.0.0.1:${goferPort}`;
  const environment: Record<string, string> = {
    ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
    ...opts.environment,
  };

  const config = `# written by test/helpers/hub.ts
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = ${publicPort}
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = ${hubPort}
c.JupyterHub.db_url = ${py(`sqlite:///${path.join(dir, 'jupyterhub.sqlite')}`)}
c.JupyterHub.cookie_secret_file = ${py(path.join(dir, 'jupyterhub_cookie_secret'))}
c.ConfigurableHTTPProxy.command = ${py([PROXY_BIN])}
c.ConfigurableHTTPProxy.api_url = ${py(`http://127.0.0.1:${proxyApiPort}`)}
c.ConfigurableHTTPProxy.pid_file = ${py(proxyPidFile)}
c.ConfigurableHTTPProxy.debug = False
c.JupyterHub.services = [
    {
        'name': ${py(name)},
        'url': ${py(goferUrl)},
        'command': ${py([process.execPath, path.join(ROOT, 'bin/gofer.js'), '--config', opts.goferConfig, 'serve'])},
        'api_token': ${py(serviceToken)},
        'environment': ${py(environment)},
    },
    # a token-only service standing in for an administrator: creates users and their tokens
    {'name': 'e2e-admin', 'api_token': ${py(adminToken)}},
]
c.JupyterHub.load_roles = [
    {'name': 'user', 'scopes': ['self', 'access:services']},
    {'name': 'e2e-admin', 'scopes': ['admin:users', 'tokens'], 'services': ['e2e-admin']},
]
${opts.extraConfig ?? ''}
`;
  const configFile = path.join(dir, 'jupyterhub_config.py');
  writeFileSync(configFile, config);

  const logFile = path.join(dir, 'hub.log');
  const logFd = openSync(logFile, 'a');
  // detached: the hub leads its own process group, so it can be killed with everything it did not put in a session of its own
  const child = spawn(jupyterhub, ['-f', configFile], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: proxyToken, PYTHONUNBUFFERED: '1' },
  });
  closeSync(logFd);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));

  const tail = (lines = 40): string => {
    if (!existsSync(logFile)) return '(no hub log)';
    // eslint-disable-next-line no-control-regex
    const text = readFileSync(logFile, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
    return text.split('\n').slice(-lines - 1).join('\n');
  };
  const fail = (why: string): Error => new HubFailure(`${why}\n--- last lines of ${logFile} ---\n${tail(50)}`);

  const url = `http://127.0.0.1:${publicPort}`;
  const apiUrl = `http://127.0.0.1:${hubPort}/hub/api`;
  const prefix = `/services/${name}/`;
  const until = Date.now() + (opts.startTimeoutMs ?? 60_000);
  const poll = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
    let last = '';
    while (Date.now() < until) {
      if (spawnError) throw fail(`cannot start ${jupyterhub}: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) throw fail(`jupyterhub exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}`);
      try {
        const v = await probe();
        if (v !== undefined) return v;
      } catch (err) {
        if (err instanceof HubFailure) throw err;
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw fail(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
  };

  let stopped: Promise<{ exitedInMs: number; leftovers: string[] }> | undefined;
  const ours = new Map<number, string>();
  const hub: Hub = {
    url,
    apiUrl,
    goferUrl,
    prefix,
    version: '',
    logFile,
    child,
    tail,
    async userWithToken(user, scopes) {
      const headers = { authorization: `token ${adminToken}` };
      const created = await fetch(`${apiUrl}/users/${encodeURIComponent(user)}`, { method: 'POST', headers });
      if (created.status !== 201 && !(scopes && created.status === 409)) throw fail(`POST /hub/api/users/${user} answered ${created.status}: ${await created.text()}`);
      const res = await fetch(`${apiUrl}/users/${encodeURIComponent(user)}/tokens`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ note: 'gofer e2e test', expires_in: 3600, ...(scopes ? { scopes } : {}) }),
      });
      if (res.status !== 201) throw fail(`POST /hub/api/users/${user}/tokens answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    stop: () =>
      (stopped ??= (async () => {
        const started = Date.now();
        remember(ours, dir, proxyPidFile);
        if (child.exitCode === null && child.signalCode === null) {
          signalGroup(child.pid!, 'SIGTERM');
          // the hub stops its service with SIGINT, waits up to 10 s, then SIGTERM (5 s), then SIGKILL
          let timer: NodeJS.Timeout | undefined;
          const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 30_000)))]);
          clearTimeout(timer);
          if (!done) {
            signalGroup(child.pid!, 'SIGKILL');
            await exited;
          }
        }
        const exitedInMs = Date.now() - started;
        // the hub starts the proxy and its services in sessions of their own: check them one by one
        await new Promise((r) => setTimeout(r, 300));
        remember(ours, dir);
        const leftovers: string[] = [];
        for (const [pid, what] of ours) {
          if (!alive(pid)) continue;
          leftovers.push(`${what} (pid ${pid})`);
          signalGroup(pid, 'SIGKILL');
        }
        return { exitedInMs, leftovers };
      })()),
  };

  try {
    const version = await poll('the hub API (GET /hub/api/)', async () => {
      const res = await fetch(`${apiUrl}/`);
      return res.ok ? ((await res.json()) as { version: string }).version : undefined;
    });
    hub.version = version;
    // Gofer's own port first (quietly: the proxy and the hub log every miss), then through the proxy
    await poll(`Gofer to listen at ${goferUrl}${prefix} (started by the hub)`, async () => {
      const fatal = /^gofer: .*$/m.exec(tail(400));
      if (fatal) throw fail(`Gofer failed to start: ${fatal[0]}`);
      const res = await fetch(`${goferUrl}${prefix}`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    });
    await poll(`Gofer at ${url}${prefix} through the proxy`, async () => {
      const res = await fetch(`${url}${prefix}`, { redirect: 'manual' });
      const text = await res.text();
      if (res.status === 200 && /ready to grade/.test(text)) return true;
      throw new Error(`${res.status} ${text.trim().slice(0, 120)}`);
    });
    remember(ours, dir, proxyPidFile);
  } catch (err) {
    await hub.stop();
    throw err;
  }
  return hub;
}

/** Notes the proxy (from its pid file) and every process whose command line names the test directory (Gofer). */
function remember(ours: Map<number, string>, dir: string, proxyPidFile?: string): void {
  if (proxyPidFile && existsSync(proxyPidFile)) {
    const pid = Number(readFileSync(proxyPidFile, 'utf8').trim());
    if (pid > 0) ours.set(pid, 'configurable-http-proxy');
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(dir) && !/jupyterhub -f/.test(cmdline)) ours.set(Number(entry), cmdline.slice(0, 160));
  }
}

/** Running and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Signals the process group the process leads, else the process alone. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  let leader = false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    leader = Number(fields[2]) === pid; // state ppid pgrp ...
  } catch {
    /* gone, or not Linux: fall through */
  }
  try {
    process.kill(leader ? -pid : pid, signal);
  } catch {
    /* already gone */
  }
}
