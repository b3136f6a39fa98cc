import Docker from 'dockerode';
import type { Config } from '../config/schema.js';

/** The engine client: the configured socket, else DOCKER_HOST, else /var/run/docker.sock. */
export function createDocker(config: Pick<Config, 'docker'>): Docker {
  return config.docker.socketPath ? new Docker({ socketPath: config.docker.socketPath }) : new Docker();
}
