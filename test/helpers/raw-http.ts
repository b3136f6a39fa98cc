import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';

/**
 * Bytes the HTTP servers of this process had read from a request's connection when they
 * answered it, by the request's `x-probe` header (node's `http.server.response.finish`
 * channel): what tells a body refused unread from one read to its end.
 */
export class ServerReads {
  private readonly answered = new Map<string, number>();
  private readonly onFinish = (message: unknown): void => {
    const { request, socket } = message as { request: IncomingMessage; socket: Socket };
    const probe = request.headers['x-probe'];
    if (typeof probe === 'string') this.answered.set(probe, socket.bytesRead);
  };

  constructor() {
    subscribe('http.server.response.finish', this.onFinish);
  }

  bytesReadBeforeAnswer(probe: string): number {
    const n = this.answered.get(probe);
    if (n === undefined) throw new Error(`no request with x-probe ${probe} was answered`);
    return n;
  }

  close(): void {
    unsubscribe('http.server.response.finish', this.onFinish);
  }
}

/** A body made of parts (the same buffer may come many times), for `rawRequest`. */
export function bodyOf(parts: Buffer[]): { length: number; chunk: (offset: number) => Buffer } {
  const starts: number[] = [];
  let length = 0;
  for (const p of parts) {
    starts.push(length);
    length += p.length;
  }
  return {
    length,
    chunk: (offset) => {
      let i = starts.length - 1;
      while (starts[i]! > offset) i--;
      return parts[i]!.subarray(offset - starts[i]!);
    },
  };
}

/**
 * Sends a request whose body is made on the fly, as fast as the server takes it, and stops
 * sending when the server answers or closes; resolves when the connection closes (send
 * `connection: close` for an answer the server would keep the connection open after).
 * `chunked`: no Content-Length, chunked encoding.
 */
export function rawRequest(
  url: string,
  head: { method: string; path: string; headers: Record<string, string> },
  body: { length: number; chunk: (offset: number) => Buffer; chunked?: boolean },
): Promise<{ status: number; response: string; sent: number }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname);
    let response = '';
    let sent = 0;
    let answered = false;
    socket.on('data', (d: Buffer) => {
      response += d.toString('latin1');
      if (/\r\n\r\n/.test(response)) answered = true;
    });
    socket.on('error', () => undefined); // the server may close while the body is still being sent
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
      if (!status) reject(new Error(`no answer (sent ${sent} bytes): ${JSON.stringify(response.slice(0, 200))}`));
      else resolve({ status, response, sent });
    });
    const send = async (): Promise<void> => {
      const headers = { host: u.host, ...head.headers, ...(body.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) }) };
      socket.write(`${head.method} ${head.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      while (sent < body.length && !answered && !socket.destroyed) {
        const data = body.chunk(sent).subarray(0, body.length - sent);
        const ok = socket.write(body.chunked ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data);
        sent += data.length;
        if (!ok) await drained(socket);
      }
      if (body.chunked && !answered && !socket.destroyed) socket.write('0\r\n\r\n');
    };
    // an error while sending rejects the request's promise rather than going unhandled
    socket.once('connect', () => {
      send().catch(reject);
    });
  });
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}
