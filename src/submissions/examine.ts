import { isUtf8 } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkNotebook, checkNotebookData } from '../grading/notebook.js';
import { InfrastructureError, InputError, UnprocessableError } from '../lib/errors.js';
import { sha256 } from './identity.js';

/**
 * A notebook as it arrived: a JSON request body (`{"nb": <notebook>}`, as submit buttons send
 * it) or the bytes of an uploaded .ipynb file.
 */
export interface ReceivedNotebook {
  kind: 'json-body' | 'file';
  bytes: Buffer;
}

/**
 * What examining a received notebook found: the notebook's metadata, and the text to store with
 * its sha256; or why it cannot be graded (`input`: the request is unreadable, a 400;
 * `unprocessable`: readable but not a notebook Gofer grades, a 422).
 */
export type Examined =
  | { ok: true; metadata: Record<string, unknown>; text: string; sha256: string }
  | { ok: false; kind: 'input' | 'unprocessable'; message: string };

/**
 * Examines a received notebook. The text stored is the notebook exactly as sent: for a body that
 * is exactly `{"nb": <value>}` (every submit button's), only the value is parsed and its bytes
 * are kept, so the same notebook sent twice the same way hashes the same (what duplicate
 * detection needs) and nothing of hundreds of KB is serialised again. Other bodies, and bytes
 * that are not UTF-8, are parsed whole and their `nb` stored re-serialised.
 */
export function examine(received: ReceivedNotebook): Examined {
  const { bytes } = received;
  if (received.kind === 'file') {
    const text = bytes.toString('utf8');
    const check = checkNotebook(text);
    if (!check.ok) return { ok: false, kind: 'unprocessable', message: check.message };
    return { ok: true, metadata: check.notebook.metadata, text, sha256: sha256(isUtf8(bytes) ? bytes : text) };
  }
  const value = notebookValue(bytes);
  if (value && isUtf8(value)) {
    const text = value.toString('utf8');
    let nb: unknown;
    try {
      nb = JSON.parse(text);
    } catch {
      // not one value after all (e.g. a repeated "nb" key): the whole body is parsed below
    }
    if (nb !== undefined) return examineParsed(nb, { text, sha256: sha256(value) });
  }
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8', hasBom(bytes) ? 3 : 0));
  } catch (err) {
    return { ok: false, kind: 'input', message: `The request body is not valid JSON (${(err as Error).message}).` };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, kind: 'unprocessable', message: 'The request body should be a JSON object: {"nb": <the notebook>}.' };
  }
  return examineParsed((body as Record<string, unknown>).nb);
}

function examineParsed(nb: unknown, sent?: { text: string; sha256: string }): Examined {
  if (nb === undefined) return { ok: false, kind: 'unprocessable', message: 'The request has no notebook: send {"nb": <the notebook>}.' };
  if (typeof nb !== 'object' || nb === null || Array.isArray(nb)) {
    return { ok: false, kind: 'unprocessable', message: '"nb" should be the notebook itself (a JSON object), not text or a list.' };
  }
  const check = checkNotebookData(nb);
  if (!check.ok) return { ok: false, kind: 'unprocessable', message: check.message };
  if (sent) return { ok: true, metadata: check.notebook.metadata, ...sent };
  const text = JSON.stringify(nb);
  return { ok: true, metadata: check.notebook.metadata, text, sha256: sha256(text) };
}

/** The error a failed examination answers with. */
export function examinationError(e: Extract<Examined, { ok: false }>): InputError | UnprocessableError {
  return e.kind === 'input' ? new InputError(e.message) : new UnprocessableError(e.message);
}

/**
 * Where `<value>` lies in a body of the form `{"nb": <value>}` (whitespace allowed, nothing
 * else), or undefined. Whether it is one JSON value is for the parser to say.
 */
export function notebookValue(body: Buffer): Buffer | undefined {
  const ws = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
  let i = hasBom(body) ? 3 : 0;
  while (ws(body[i])) i++;
  if (body[i] !== 0x7b /* { */) return undefined;
  i++;
  while (ws(body[i])) i++;
  if (body.toString('latin1', i, i + 4) !== '"nb"') return undefined;
  i += 4;
  while (ws(body[i])) i++;
  if (body[i] !== 0x3a /* : */) return undefined;
  i++;
  while (ws(body[i])) i++;
  let j = body.length - 1;
  while (j > i && ws(body[j])) j--;
  if (body[j] !== 0x7d /* } */) return undefined;
  j--;
  while (j > i && ws(body[j])) j--;
  return body.subarray(i, j + 1);
}

function hasBom(body: Buffer): boolean {
  return body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
}

/** A request to an examining thread, and its answer. */
export interface ExamineRequest {
  id: number;
  kind: ReceivedNotebook['kind'];
  bytes: Uint8Array;
}
export interface ExamineReply {
  id: number;
  examined: Examined;
}

interface Examiner {
  worker: Worker;
  pending: Map<number, (e: Examined | Error) => void>;
}

/**
 * Threads that examine notebooks, off the event loop that serves requests. Parsing a notebook of
 * hundreds of KB (or a hostile one of 25 MB) takes the thread it runs on for milliseconds to a
 * second; here it never delays other learners' requests or the database's callbacks, and a
 * second core does it while the first serves. Each notebook goes to the thread with the least
 * work waiting; its bytes move there without a copy.
 */
export class ExaminerPool {
  private readonly examiners: Examiner[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    for (let i = 0; i < size; i++) this.examiners.push(this.spawn());
  }

  examine(received: ReceivedNotebook): Promise<Examined> {
    if (this.closed) return Promise.reject(new InfrastructureError('Gofer is shutting down; submit again in a minute.'));
    const ex = this.examiners.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    const { bytes } = received;
    // a Buffer that owns its memory moves to the thread; a slice of a shared pool (small bodies) is copied
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    const view = own ? bytes : new Uint8Array(bytes);
    return new Promise<Examined>((resolve, reject) => {
      ex.pending.set(id, (e) => (e instanceof Error ? reject(e) : resolve(e)));
      ex.worker.postMessage({ id, kind: received.kind, bytes: view } satisfies ExamineRequest, [view.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.examiners.map((ex) => ex.worker.terminate()));
  }

  private spawn(): Examiner {
    const worker = new Worker(new URL('./examine-worker.js', import.meta.url));
    worker.unref();
    const ex: Examiner = { worker, pending: new Map() };
    worker.on('message', (reply: ExamineReply) => {
      const done = ex.pending.get(reply.id);
      ex.pending.delete(reply.id);
      done?.(reply.examined);
    });
    // a thread that dies (out of memory on a hostile notebook) fails what it held and is replaced
    const fail = (why: string): void => {
      const i = this.examiners.indexOf(ex);
      if (i < 0) return;
      for (const done of ex.pending.values()) done(new InfrastructureError(`Gofer could not examine this notebook (${why}); submit it again.`));
      ex.pending.clear();
      if (this.closed) return;
      this.examiners[i] = this.spawn();
    };
    worker.on('error', (err) => fail(err.message));
    worker.on('exit', (code) => fail(`its thread exited with code ${code}`));
    return ex;
  }
}
