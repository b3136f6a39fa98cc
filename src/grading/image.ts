import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { InfrastructureError } from '../lib/errors.js';

const DOCKER_DIR = fileURLToPath(new URL('../../../docker/', import.meta.url));
/** The base made from Debian packages by docker/make-base.sh, for machines without a registry. */
export const LOCAL_BASE = 'gofer/base:bookworm';

export interface BuildOptions {
  tag: string;
  base: string;
  /** Receives each line of progress (build steps, package installs). */
  onProgress: (line: string) => void;
}

/**
 * Builds the grader image from docker/Dockerfile. When the base is the local Debian-made one and
 * it is missing, makes it first with docker/make-base.sh (needs root and debootstrap).
 */
export async function buildImage(docker: Docker, options: BuildOptions): Promise<void> {
  if (options.base === LOCAL_BASE && !(await imageExists(docker, LOCAL_BASE))) {
    options.onProgress(`base image ${LOCAL_BASE} is missing: making it from Debian packages (about 2 minutes)`);
    await runScript(`${DOCKER_DIR}make-base.sh`, [LOCAL_BASE], options.onProgress);
  }
  const context = tar.pack();
  context.entry({ name: 'Dockerfile' }, readFileSync(`${DOCKER_DIR}Dockerfile`));
  context.finalize();
  let stream: NodeJS.ReadableStream;
  try {
    // host networking only for apt during the build; grading containers never get a network.
    stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
      t: options.tag,
      buildargs: { BASE: options.base },
      networkmode: 'host',
      rm: true,
      forcerm: true,
    });
  } catch (err) {
    throw new InfrastructureError(`Cannot start the image build: ${(err as Error).message}`, { cause: err });
  }
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, events: Array<{ error?: string }>) => {
        const failed = err?.message ?? events.find((e) => e.error)?.error;
        if (failed) reject(new InfrastructureError(`The image build failed: ${failed}`));
        else resolve();
      },
      (event: { stream?: string; status?: string; error?: string }) => {
        const line = (event.stream ?? event.status ?? event.error ?? '').trimEnd();
        if (line) options.onProgress(line);
      },
    );
  });
}

export async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw new InfrastructureError(`Cannot reach the Docker engine: ${(err as Error).message}`, { cause: err });
  }
}

function runScript(script: string, args: string[], onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (buf: Buffer) => buf.toString().split('\n').filter(Boolean).forEach(onLine);
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', (err) => reject(new InfrastructureError(`Cannot run ${script}: ${err.message}`)));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new InfrastructureError(`${script} failed (exit status ${code}).`))));
  });
}
