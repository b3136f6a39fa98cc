import Docker from 'dockerode';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * An extra Docker engine on this machine, as a grading host of its own: a dockerd with its own
 * socket, data root, exec root (so its own containerd) and pid file, and no bridge or iptables
 * rules (grading containers never get a network). Killed with SIGKILL and started again on the
 * same data root, it is a host whose engine died and came back.
 */
export class ExtraEngine {
  readonly socketPath: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly docker: Docker;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly dir: string) {
    this.socketPath = path.join(dir, 'docker.sock');
    this.dataRoot = path.join(dir, 'data');
    this.execRoot = path.join(dir, 'exec');
    mkdirSync(this.dataRoot, { recursive: true });
    mkdirSync(this.execRoot, { recursive: true });
    this.docker = new Docker({ socketPath: this.socketPath });
  }

  /** DOCKER_HOST for this engine. */
  get host(): string {
    return `unix://${this.socketPath}`;
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Starts dockerd (again, on the same data root) and waits until it answers; fails with its log when it cannot. */
  async start(timeoutMs = 60_000): Promise<void> {
    const logFile = path.join(this.dir, 'dockerd.log');
    const fd = openSync(logFile, 'a');
    const args = [
      '--host', this.host,
      '--data-root', this.dataRoot,
      '--exec-root', this.execRoot,
      '--pidfile', path.join(this.dir, 'docker.pid'),
      '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false',
    ];
    let spawnError: Error | undefined;
    const child = spawn('dockerd', args, { stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    child.on('error', (err) => (spawnError = err));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()).once('error', () => resolve()));
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError) throw new Error(`cannot start dockerd (${spawnError.message}): the drill needs Debian's docker.io and root`);
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode}) before it answered; its log:\n${tail(logFile)}`);
      if (await this.docker.ping().then(() => true, () => false)) return;
      if (Date.now() > until) throw new Error(`dockerd did not answer on ${this.socketPath} within ${timeoutMs} ms; its log:\n${tail(logFile)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** SIGKILL to dockerd, as when a host's engine dies: its containerd and containers are left as they are. */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    process.kill(pid, 'SIGKILL');
    await this.exited;
  }

  /** Stops dockerd cleanly (SIGTERM, then SIGKILL after 20 s). */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    process.kill(pid, 'SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 20_000))]);
    if (!done && this.pid !== undefined) {
      process.kill(pid, 'SIGKILL');
      await this.exited;
    }
  }

  /** Containers on this engine (all, running or not) carrying the label. */
  async containers(label: string): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({ all: true, filters: { label: [label] } });
  }

  /**
   * Removes everything this engine made: its containers (through the engine, started again if
   * it is down), the engine, its containerd and shims, its mounts and its directory.
   */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    if (this.pid === undefined && existsSync(this.dataRoot)) await this.start(30_000).catch((e: Error) => problems.push(`restart for clean-up: ${e.message}`));
    if (this.pid !== undefined) {
      const all = await this.docker.listContainers({ all: true }).catch((e: Error) => (problems.push(`list: ${e.message}`), []));
      await Promise.all(all.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch((e: Error) => problems.push(`remove ${c.Id}: ${e.message}`))));
    }
    await this.stop();
    // the engine could not remove them: kill what still runs in its containers' cgroups
    for (const id of safeList(path.join(this.dataRoot, 'containers'))) killPids(cgroupPids(id));
    // its containerd and shims name this engine's exec root on their command lines
    killPids(processesMentioning(this.execRoot));
    for (const mount of mountsUnder(this.dir)) await run('umount', ['-l', mount]).catch((e: Error) => problems.push(`umount ${mount}: ${e.message}`));
    // off the event loop: a data root holds tens of thousands of files
    await rm(this.dir, { recursive: true, force: true }).catch((e: Error) => problems.push(`rm ${this.dir}: ${e.message}`));
    return problems;
  }
}

/** Extra engines under one fresh directory of /tmp (short: socket paths have a length limit). */
export function extraEngines(n: number): { root: string; engines: ExtraEngine[] } {
  const root = mkdtempSync('/tmp/gofer-drill-');
  return { root, engines: Array.from({ length: n }, (_, i) => new ExtraEngine(path.join(root, `e${i + 1}`))) };
}

/**
 * Copies an image from the machine's engine into the extra engines: `docker save` once to a
 * file, then `docker load` into every engine in parallel. Returns the time of each step.
 */
export async function copyImage(image: string, engines: ExtraEngine[], dir: string): Promise<{ saveMs: number; loadMs: number; bytes: number }> {
  const file = path.join(dir, 'image.tar');
  const t0 = Date.now();
  await run('docker', ['save', '-o', file, image], { maxBuffer: 1 << 20 }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`docker save ${image} failed: ${e.stderr || e.message}`);
  });
  const t1 = Date.now();
  const { size } = statSync(file);
  await Promise.all(
    engines.map((e) =>
      run('docker', ['-H', e.host, 'load', '-q', '-i', file], { maxBuffer: 1 << 20 }).catch((err: Error & { stderr?: string }) => {
        throw new Error(`docker load into ${e.host} failed: ${err.stderr || err.message}`);
      }),
    ),
  );
  const t2 = Date.now();
  rmSync(file, { force: true });
  return { saveMs: t1 - t0, loadMs: t2 - t1, bytes: size };
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Pids in a container's cgroup (cgroup v1 under `docker/`, or v2), by the container's id. */
function cgroupPids(id: string): number[] {
  const candidates = ['/sys/fs/cgroup/pids/docker', '/sys/fs/cgroup/memory/docker', '/sys/fs/cgroup/system.slice', '/sys/fs/cgroup/docker'];
  const pids = new Set<number>();
  for (const base of candidates) {
    for (const name of [id, `docker-${id}.scope`]) {
      try {
        for (const p of readFileSync(path.join(base, name, 'cgroup.procs'), 'utf8').split('\n')) if (p.trim()) pids.add(Number(p));
      } catch {
        // not this layout
      }
    }
  }
  return [...pids];
}

function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of safeList('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Mount points under a directory, deepest first. */
function mountsUnder(dir: string): string[] {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
