import { isUtf8 } from 'node:buffer';
import Busboy from 'busboy';
import express, { type Request, type RequestHandler, type Router } from 'express';
import type { Config } from '../config/schema.js';
import { OnePerTurn } from '../lib/turns.js';
import { AuthError, ForbiddenError, InputError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError, UnprocessableError } from '../lib/errors.js';
import type { Authenticator, Identity } from './identity.js';
import { NO_IDENTITY } from './identity.js';
import type { Intake, ReceivedNotebook, SentNotebook } from './intake.js';
import type { SubmissionStore } from './store.js';

export interface IntakeDeps {
  intake: Intake;
  auth: Authenticator;
  submissions: SubmissionStore;
  config: Pick<Config, 'courses' | 'server'>;
  /** Identity from a browser session cookie (hub OAuth), when that is set up. */
  cookieIdentity?: (req: Request) => Identity | undefined;
  /** Checks the XSRF token of a cookie-authenticated POST. */
  checkXsrf?: (req: Request) => boolean;
}

/** Identifies the caller or fails with a sentence a learner understands. */
export async function identify(req: Request, deps: Pick<IntakeDeps, 'auth' | 'cookieIdentity' | 'checkXsrf'>): Promise<Identity> {
  const fromHeader = await deps.auth.fromHeader(req.get('authorization'));
  if (fromHeader) return fromHeader;
  const fromCookie = deps.cookieIdentity?.(req);
  if (fromCookie) {
    if (req.method === 'POST' && !deps.checkXsrf?.(req)) {
      throw new ForbiddenError('This request lacks its XSRF token. Reload the page and try again.');
    }
    return fromCookie;
  }
  throw new AuthError(NO_IDENTITY);
}

function wantsJson(req: Request): boolean {
  return (req.get('accept') ?? '').includes('application/json');
}

/**
 * The endpoint existing submit buttons call: `POST {prefix}` with `{"nb": <notebook>}`, answered
 * at once with a short sentence (shown in an alert) or, when asked, JSON with the submission id.
 */
export function hubSubmitRouter(deps: IntakeDeps): Router {
  const router = express.Router();
  const limit = deps.config.server.maxNotebookMb * 1024 * 1024;
  router.get('/', (_req, res) => {
    res.type('text/plain').send('Gofer is ready to grade your notebook: use the Submit button in Jupyter to send it.\n');
  });
  router.post('/', submissionJson(limit, JSON_TYPES), async (req, res) => {
    if (!req.is(JSON_TYPES)) throw new UnsupportedMediaTypeError('Send the notebook as JSON: Content-Type: application/json with {"nb": <notebook>}.');
    const who = await identify(req, deps);
    const receipt = await deps.intake.submit(who, notebookField(req));
    if (wantsJson(req)) {
      res.json({ id: receipt.id, status: 'queued', duplicate: receipt.duplicate });
    } else {
      const again = receipt.duplicate ? ' (this notebook was already received; it is graded once)' : '';
      res.type('text/plain').send(`Your notebook for ${receipt.assignment} was received${again}. It will be graded shortly. Submission ${receipt.id}.`);
    }
  });
  router.all('/', (req, res) => {
    res.status(405).set('Allow', 'GET, POST').type('text/plain').send(`${req.method} is not supported here: submit with POST.\n`);
  });
  return router;
}

/** `POST /api/v1/submissions` (JSON or a file upload) and `GET /api/v1/submissions/:id`. */
export function submissionsApiRouter(deps: IntakeDeps): Router {
  const router = express.Router();
  const limit = deps.config.server.maxNotebookMb * 1024 * 1024;
  router.post('/submissions', submissionJson(limit, ['application/json']), async (req, res) => {
    const who = await identify(req, deps);
    let notebook: ReceivedNotebook;
    if (req.is('multipart/form-data')) notebook = await uploadedFile(req, limit);
    else if (req.is('application/json')) notebook = notebookField(req);
    else throw new UnsupportedMediaTypeError('Send JSON ({"nb": <notebook>}) or a multipart/form-data upload with the .ipynb file.');
    const receipt = await deps.intake.submit(who, notebook);
    res.status(202).json({ id: receipt.id, status: 'queued', duplicate: receipt.duplicate, url: `/api/v1/submissions/${receipt.id}` });
  });
  router.get('/submissions/:id', async (req, res) => {
    const who = await identify(req, deps);
    const id = String(req.params.id);
    const sub = await deps.submissions.get(id);
    const instructor = sub && isInstructor(who, sub.course, deps.config);
    // another learner's submission looks exactly like a missing one
    if (!sub || (sub.owner !== who.name && !instructor)) throw new NotFoundError(`There is no submission ${id.slice(0, 64)} of yours.`);
    const tests = await deps.submissions.tests(id);
    res.json({
      id: sub.id,
      owner: sub.owner,
      course: sub.course,
      assignment: sub.assignment,
      status: sub.status,
      score: sub.score,
      points: sub.points,
      maxPoints: sub.maxPoints,
      message: sub.message,
      receivedAt: new Date(sub.receivedAt).toISOString(),
      gradedAt: sub.gradedAt === null ? null : new Date(sub.gradedAt).toISOString(),
      tests: instructor ? tests : tests.map((t) => (t.hidden ? { name: t.name, hidden: true } : t)),
    });
  });
  return router;
}

export function isInstructor(who: Identity, course: string, config: Pick<Config, 'courses'>): boolean {
  return who.admin || Boolean(config.courses.find((c) => c.id === course)?.instructors.includes(who.name));
}

const JSON_TYPES = ['application/json', 'text/json'];

/** The notebook as sent, in the bodies where submissionJson could cut it out. */
const nbSent = new WeakMap<Request, SentNotebook>();

/**
 * Reads a JSON submission body, `{"nb": <notebook>}`, into `req.body`. A body that is exactly
 * that one member (what every submit button sends) has only its notebook parsed, and the
 * notebook's bytes are kept (see nbSent), so it is stored as sent rather than serialised again.
 * Anything else is parsed whole, for notebookField to judge.
 */
function submissionJson(limit: number, type: string[]): RequestHandler {
  const raw = express.raw({ limit, type });
  return (req, res, next) =>
    raw(req, res, (err?: unknown) => {
      if (err) return next(err);
      turns.run(() => parseSubmissionBody(req)).then(() => next(), next);
    });
}

/** Parsing notebooks takes turns with everything else (see OnePerTurn). */
const turns = new OnePerTurn();

function parseSubmissionBody(req: Request): void {
  const body: unknown = req.body;
  if (!Buffer.isBuffer(body)) return;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.get('content-type') ?? '')?.[1];
  if (charset && !/^utf-?8$/i.test(charset)) throw new UnsupportedMediaTypeError(`The request body must be UTF-8 JSON, not ${charset.slice(0, 40)}.`);
  const bytes = notebookValue(body);
  if (bytes && isUtf8(bytes)) {
    const text = bytes.toString('utf8');
    try {
      req.body = { nb: JSON.parse(text) as unknown };
      nbSent.set(req, { bytes, text });
      return;
    } catch {
      // not one value after all (e.g. a repeated "nb" key): parse the whole body below
    }
  }
  try {
    req.body = JSON.parse(body.toString('utf8', hasBom(body) ? 3 : 0)) as unknown;
  } catch (err) {
    throw new InputError(`The request body is not valid JSON (${(err as Error).message}).`);
  }
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

/** The notebook of a JSON submission body, as sent when that is known. */
function notebookField(req: Request): ReceivedNotebook {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new UnprocessableError('The request body should be a JSON object: {"nb": <the notebook>}.');
  }
  const nb = (body as Record<string, unknown>).nb;
  if (nb === undefined) throw new UnprocessableError('The request has no notebook: send {"nb": <the notebook>}.');
  if (typeof nb !== 'object' || nb === null || Array.isArray(nb)) throw new UnprocessableError('"nb" should be the notebook itself (a JSON object), not text or a list.');
  const sent = nbSent.get(req);
  return sent ? { parsed: nb, sent } : { parsed: nb };
}

/** The first file of a multipart upload, size-capped. */
export function uploadedFile(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let bb: Busboy.Busboy;
    try {
      bb = Busboy({ headers: req.headers, limits: { files: 1, fileSize: limit } });
    } catch (err) {
      reject(new UnprocessableError(`The upload is malformed: ${(err as Error).message}`));
      return;
    }
    let file: Buffer | undefined;
    let pending: Promise<void> | undefined;
    bb.on('file', (_name, stream) => {
      const chunks: Buffer[] = [];
      pending = new Promise<void>((done) => {
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('limit', () => reject(new PayloadTooLargeError(`The notebook is larger than ${limit / 1024 / 1024} MB.`)));
        stream.on('close', () => {
          file = Buffer.concat(chunks);
          done();
        });
      });
    });
    bb.on('error', (err: Error) => reject(new UnprocessableError(`The upload is malformed: ${err.message}`)));
    bb.on('close', () => {
      void (pending ?? Promise.resolve()).then(() => {
        if (!file) reject(new UnprocessableError('The upload has no file: attach the .ipynb file.'));
        else resolve(file);
      });
    });
    req.pipe(bb);
  });
}

