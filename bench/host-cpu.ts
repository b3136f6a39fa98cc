/**
 * Where the CPU of grading goes, for the benches (Linux): the Docker engine's daemons, the
 * engine's containers, a process and its reaped children, the whole host. Each is a meter read
 * before and after a run; `CpuMeters` reads them all and divides by the notebooks graded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc's times (USER_HZ). */
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The engine's daemons, by /proc/<pid>/comm (the kernel cuts names at 15 characters: containerd-shim-runc-v2 reads containerd-shim). */
const ENGINE_COMMS = new Set(['dockerd', 'containerd', 'containerd-shim']);

/** How often the engine's processes are read: a shim lives as long as its container. */
const SAMPLE_MS = 250;

/** The name, utime + stime, cutime + cstime (in ticks) and start time of /proc/<pid>/stat; undefined when the process is gone. */
function procTimes(pid: string): { comm: string; self: number; children: number; start: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // the command is in parentheses and may hold spaces; the fields follow it
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  return { comm: text.slice(text.indexOf('(') + 1, close), self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]), start: f[19] ?? '' };
}

/**
 * CPU seconds of dockerd, containerd and the containerd-shims (utime + stime), over a run. A
 * shim exits with its container, so every such process is read every 250 ms and counted up to
 * its last reading: what a shim used in its last 250 ms is missed. Children's times are not
 * counted (a shim reaps its container's processes, whose CPU the container meter has).
 */
export class EngineDaemonsCpu {
  private readonly base = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private first = true;
  /** This meter's own CPU (reading /proc), to take out of the measuring process's figure. */
  ownSeconds = 0;

  start(): void {
    this.sample();
    this.first = false;
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  /** Seconds used by the engine's processes since start. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    let ticks = 0;
    for (const [key, last] of this.last) ticks += last - (this.base.get(key) ?? 0);
    return ticks / TICKS;
  }

  private sample(): void {
    const before = process.cpuUsage();
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const t = procTimes(pid);
      if (!t || !ENGINE_COMMS.has(t.comm)) continue;
      // a pid and its start time: a pid the kernel gives again is another process
      const key = `${pid}/${t.start}`;
      // a process already there at the start counts from then; one born during the run, from 0
      if (this.first) this.base.set(key, t.self);
      this.last.set(key, t.self);
    }
    const used = process.cpuUsage(before);
    this.ownSeconds += (used.user + used.system) / 1e6;
  }
}

/** CPU seconds of this process and of its children it has reaped (the baseline's `docker` clients). */
export function processCpuSeconds(): number {
  const t = procTimes('self');
  return t ? (t.self + t.children) / TICKS : 0;
}

/** Busy CPU seconds of the whole host (every process, the kernel's interrupts): /proc/stat minus idle and iowait. */
export function hostCpuSeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / TICKS;
}

/**
 * CPU seconds of every container of the local engine, gone ones included: the cgroup the engine
 * puts its containers under (cgroupfs driver: `docker` under cgroup v1's cpuacct, or v2's root).
 * Undefined when there is none (systemd driver, a remote engine): the harness's own figure
 * (`timing.cpuMs`) is then the containers' meter.
 */
export function engineContainersCpuSeconds(): number | undefined {
  const v1 = '/sys/fs/cgroup/cpuacct/docker/cpuacct.usage';
  const v2 = '/sys/fs/cgroup/docker/cpu.stat';
  if (existsSync(v1)) return Number(readFileSync(v1, 'utf8').trim()) / 1e9;
  if (existsSync(v2)) {
    const line = readFileSync(v2, 'utf8').split('\n').find((l) => l.startsWith('usage_usec '));
    return line ? Number(line.split(' ')[1]) / 1e6 : undefined;
  }
  return undefined;
}

/** CPU seconds per notebook of one run, by where they went. */
export interface CpuPerNotebook {
  /** The grading containers, as they measured themselves (the harness's cpuMs, the baseline's own reading). */
  containers: number;
  /** The process that drove the engine (Gofer, or the baseline's bench process and its `docker` clients), less the meters. */
  client: number;
  /** dockerd + containerd + containerd-shims. */
  engine: number;
  /** containers + client + engine. */
  total: number;
  /** Every container on the engine during the run, from the engine's cgroup (others' too on a shared machine); null when not readable. */
  engineCgroup: number | null;
  /** The whole host's busy CPU during the run (others' work too on a shared machine). */
  host: number;
}

/**
 * The meters of one run. `client` measures this process (and its reaped children) unless the
 * caller passes its own reading, e.g. a `gofer serve` child's from procCpuSeconds.
 */
export class CpuMeters {
  private readonly engine = new EngineDaemonsCpu();
  private readonly start: { client: number; host: number; engineCgroup: number | undefined };

  constructor(private readonly client: () => number = processCpuSeconds) {
    this.start = { client: client(), host: hostCpuSeconds(), engineCgroup: engineContainersCpuSeconds() };
    this.engine.start();
  }

  /**
   * Ends the run over `n` notebooks: `containersSeconds` is the sum of the containers' own
   * figures; without it, the containers are measured by the engine's cgroup (0 when unreadable).
   */
  stop(n: number, containersSeconds?: number): CpuPerNotebook {
    const engine = this.engine.stop();
    const measuringSelf = this.client === processCpuSeconds;
    const client = this.client() - this.start.client - (measuringSelf ? this.engine.ownSeconds : 0);
    const cgroup = engineContainersCpuSeconds();
    const cgroupSeconds = cgroup !== undefined && this.start.engineCgroup !== undefined ? cgroup - this.start.engineCgroup : undefined;
    containersSeconds ??= cgroupSeconds ?? 0;
    const per = (x: number): number => x / n;
    return {
      containers: per(containersSeconds),
      client: per(client),
      engine: per(engine),
      total: per(containersSeconds + client + engine),
      engineCgroup: cgroupSeconds === undefined ? null : per(cgroupSeconds),
      host: per(hostCpuSeconds() - this.start.host),
    };
  }
}

/** CPU seconds of another process (utime + stime, and its reaped children's), from /proc; 0 once it is gone. */
export function procCpuSeconds(pid: number): number {
  const t = procTimes(String(pid));
  return t ? (t.self + t.children) / TICKS : 0;
}
