import Busboy from 'busboy';
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { findAssignment, findCourse } from '../config/courses.js';
import type { Config } from '../config/schema.js';
import { AuthError, ForbiddenError, NotFoundError, PayloadTooLargeError, tooLargeMessage, UnsupportedMediaTypeError, UnprocessableError } from '../lib/errors.js';
import type { Authenticator, Identity } from './identity.js';
import { NO_IDENTITY } from './identity.js';
import type { ReceivedNotebook } from './examine.js';
import type { Intake } from './intake.js';
import type { SubmissionStore } from './store.js';
import { policyLookup } from '../passback/policy.js';
import { standing } from './standing.js';
import { gradeView } from '../grading/scale.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import { listSubmissions } from './list-route.js';

export interface IntakeDeps {
  intake: Intake;
  auth: Authenticator;
  submissions: SubmissionStore;
  config: Pick<Config, 'courses' | 'server'> & Partial<Pick<Config, 'grading'>>;
  /** Identity from a browser session cookie (hub OAuth), when that is set up. */
  cookieIdentity?: (req: Request) => Promise<Identity | undefined>;
  /** Checks the XSRF token of a cookie-authenticated POST. */
  checkXsrf?: (req: Request) => boolean;
  /** Whether a request comes from a page of the hub's own origin (by Origin, or Referer without Origin). */
  fromHubOrigin?: (req: Request) => boolean;
  /** The passback outbox (with LTI on), for each listed submission's passback state. */
  passbacks?: Pick<PassbackOutbox, 'bySubmission'>;
}

type IdentifyDeps = Pick<IntakeDeps, 'auth' | 'cookieIdentity' | 'checkXsrf' | 'fromHubOrigin'> & {
  /**
   * The submit endpoint only: a cookie-authenticated POST from the hub's own origin needs no XSRF
   * token, so the old gofer_submit button (which cannot read Gofer's `_xsrf` cookie) works again.
   */
  hubOriginSubmit?: boolean;
};

const JSON_TYPES = ['application/json', 'text/json'];

/** Bytes a multipart upload may carry beyond its notebook: part headers, boundaries, small fields. */
const UPLOAD_OVERHEAD_BYTES = 64 * 1024;

/**
 * Identifies the caller before any body is read, for the handlers after it (`caller(res)`): an
 * anonymous or unknown caller is refused before their upload is read, let alone held in memory
 * (the error middleware then closes the connection rather than read a large body).
 */
function identifyFirst(deps: IdentifyDeps): RequestHandler {
  return async (req, res, next) => {
    res.locals.who = await identify(req, deps);
    next();
  };
}

function caller(res: Response): Identity {
  return res.locals.who as Identity;
}

/** Identifies the caller or fails with a sentence a learner understands. */
export async function identify(req: Request, deps: IdentifyDeps): Promise<Identity> {
  const fromHeader = await deps.auth.fromHeader(req.get('authorization'));
  if (fromHeader) return fromHeader;
  const fromCookie = await deps.cookieIdentity?.(req);
  if (fromCookie) {
    const exempt = deps.hubOriginSubmit === true && deps.fromHubOrigin?.(req) === true;
    if (req.method === 'POST' && !exempt && !deps.checkXsrf?.(req)) {
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
  router.post('/', identifyFirst({ ...deps, hubOriginSubmit: true }), express.raw({ limit, type: JSON_TYPES }), async (req, res) => {
    if (!req.is(JSON_TYPES)) throw new UnsupportedMediaTypeError('Send the notebook as JSON: Content-Type: application/json with {"nb": <notebook>}.');
    const receipt = await deps.intake.submit(caller(res), jsonBody(req));
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
  const policies = policyLookup(deps.config);
  const timeLimit = (course: string, assignment: string): number | null =>
    findAssignment(deps.config, course, assignment)?.assignment.timeoutSeconds ?? deps.config.grading?.timeoutSeconds ?? null;
  router.post('/submissions', identifyFirst(deps), express.raw({ limit, type: 'application/json' }), async (req, res) => {
    let notebook: ReceivedNotebook;
    if (req.is('multipart/form-data')) notebook = { kind: 'file', bytes: await uploadedFile(req, limit) };
    else if (req.is('application/json')) notebook = jsonBody(req);
    else throw new UnsupportedMediaTypeError('Send JSON ({"nb": <notebook>}) or a multipart/form-data upload with the .ipynb file.');
    const receipt = await deps.intake.submit(caller(res), notebook);
    res.status(202).json({ id: receipt.id, status: 'queued', duplicate: receipt.duplicate, url: `/api/v1/submissions/${receipt.id}` });
  });
  router.get('/submissions', listSubmissions(deps));
  router.get('/submissions/:id', async (req, res) => {
    const who = await identify(req, deps);
    const id = String(req.params.id);
    const sub = await deps.submissions.get(id);
    const instructor = sub && isInstructor(who, sub.course, deps.config);
    // another learner's submission looks exactly like a missing one
    if (!sub || (sub.owner !== who.name && !instructor)) throw new NotFoundError(`There is no submission ${id.slice(0, 64)} of yours.`);
    const tests = await deps.submissions.tests(id);
    const policy = policies(sub.course, sub.assignment);
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
      // hidden tests: their results are for staff; a learner is told only that the score includes them
      tests: instructor ? tests : tests.filter((t) => !t.hidden),
      hiddenTests: tests.some((t) => t.hidden),
      // the one scale (src/grading/scale.ts): the grade on the assignment's points, as sent to the
      // platform (null until graded), and which submission counts
      grade: policy && sub.status === 'graded' ? gradeView(sub.score, policy.points) : null,
      assignmentPoints: policy?.points ?? null,
      timeLimitSeconds: timeLimit(sub.course, sub.assignment),
      standing: policy ? standing(sub, await deps.submissions.list({ owner: sub.owner, course: sub.course, assignment: sub.assignment }), policy) : null,
      // why grading last failed: for staff only (it can name the course's files)
      ...(instructor ? { problem: await deps.submissions.problem(id) } : {}),
    });
  });
  return router;
}

/** An instructor of the course: a hub admin, a hub user it lists in `instructors`, or a member of one of its `instructorGroups`. */
export function isInstructor(who: Identity, course: string, config: Pick<Config, 'courses'>): boolean {
  const c = findCourse(config, course);
  return who.admin || Boolean(c && (c.instructors.includes(who.name) || who.groups.some((g) => c.instructorGroups.includes(g))));
}

/** A JSON submission body as received: UTF-8 (as JSON must be), possibly empty. */
function jsonBody(req: Request): ReceivedNotebook {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.get('content-type') ?? '')?.[1];
  if (charset && !/^utf-?8$/i.test(charset)) throw new UnsupportedMediaTypeError(`The request body must be UTF-8 JSON, not ${charset.slice(0, 40)}.`);
  const body: unknown = req.body;
  return { kind: 'json-body', bytes: Buffer.isBuffer(body) ? body : Buffer.alloc(0) };
}

/**
 * The first file of a multipart upload. The file is capped at `limit`, the whole upload at that
 * and a little more: an upload over either is refused as soon as it is seen (by its
 * Content-Length, or while it arrives) and the rest of it is not read.
 */
export function uploadedFile(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): PayloadTooLargeError => new PayloadTooLargeError(tooLargeMessage(limit / 1024 / 1024));
    const cap = limit + UPLOAD_OVERHEAD_BYTES;
    if (Number(req.get('content-length') ?? 0) > cap) {
      reject(tooLarge());
      return;
    }
    let bb: Busboy.Busboy;
    try {
      bb = Busboy({ headers: req.headers, limits: { files: 1, fileSize: limit } });
    } catch (err) {
      reject(new UnprocessableError(`The upload is malformed: ${(err as Error).message}`));
      return;
    }
    let received = 0;
    const count = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > cap) stop(tooLarge());
    };
    const stop = (err: Error): void => {
      req.off('data', count);
      req.unpipe(bb);
      req.pause();
      reject(err);
    };
    let file: Buffer | undefined;
    let pending: Promise<void> | undefined;
    bb.on('file', (_name, stream) => {
      const chunks: Buffer[] = [];
      pending = new Promise<void>((done) => {
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('limit', () => stop(tooLarge()));
        stream.on('close', () => {
          file = Buffer.concat(chunks);
          done();
        });
      });
    });
    bb.on('error', (err: Error) => stop(new UnprocessableError(`The upload is malformed: ${err.message}`)));
    bb.on('close', () => {
      void (pending ?? Promise.resolve()).then(() => {
        if (!file) reject(new UnprocessableError('The upload has no file: attach the .ipynb file.'));
        else resolve(file);
      });
    });
    req.on('data', count);
    req.pipe(bb);
  });
}
