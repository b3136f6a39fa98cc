import { existsSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A Docker engine socket in front of the real one, forwarding every byte, that can misbehave
 * the way a dying engine does: answer a container's `wait` with the 200 header and then drop the
 * connection (what dockerd does when it is killed mid-wait), or vanish altogether.
 */
export class EngineProxy {
  dropWaits = false;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly socketPath: string,
    private readonly upstream = '/var/run/docker.sock',
  ) {}

  async start(): Promise<void> {
    if (existsSync(this.socketPath)) unlinkSync(this.socketPath);
    const server = createServer({ allowHalfOpen: true }, (client) => this.serve(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.server = server;
  }

  /** The engine dies: every connection drops and nothing answers any more. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private serve(client: Socket): void {
    const engine = connect({ path: this.upstream, allowHalfOpen: true });
    this.sockets.add(client).add(engine);
    const forget = (): void => {
      this.sockets.delete(client);
      this.sockets.delete(engine);
      client.destroy();
      engine.destroy();
    };
    client.on('close', forget).on('error', forget);
    engine.on('close', forget).on('error', forget);
    client.on('data', (chunk: Buffer) => {
      if (this.dropWaits && /^POST \S*\/containers\/[^/]+\/wait/.test(chunk.toString('latin1', 0, 200))) {
        engine.destroy();
        client.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n', () => client.destroy());
        return;
      }
      engine.write(chunk);
    });
    // a hijacked attach half-closes (stdin ends, output still flows): pass each end on
    client.on('end', () => engine.end());
    engine.pipe(client);
  }
}
