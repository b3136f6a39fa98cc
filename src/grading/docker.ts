import Docker from 'dockerode';
import type { Config } from '../config/schema.js';
import type { Environment } from '../config/load.js';

/** The engine client: the configured socket, else DOCKER_HOST, else /var/run/docker.sock. */
export function createDocker(config: Pick<Config, 'docker'>): Docker {
  return config.docker.socketPath ? new Docker({ socketPath: config.docker.socketPath }) : new Docker();
}

/** The engine's name as operators set it (socket path or DOCKER_HOST), for logs, heartbeats and results. */
export function engineName(config: Pick<Config, 'docker'>, env: Environment): string {
  if (config.docker.socketPath) return `unix://${config.docker.socketPath}`;
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}
