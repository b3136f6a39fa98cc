import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { FieldErrors, StoreAnswer } from './ags-store.js';
import { SCOPE } from './claims.js';
import type { PlatformContext } from './context.js';
import { injectFaults, serverError } from './faults.js';
import type { DevComponent, LineItem } from './types.js';

const MEDIA = {
  container: 'application/vnd.ims.lis.v2.lineitemcontainer+json',
  lineitem: 'application/vnd.ims.lis.v2.lineitem+json',
  score: 'application/vnd.ims.lis.v1.score+json',
  results: 'application/vnd.ims.lis.v2.resultcontainer+json',
};
/** The line item view's renderers, in order: the first acceptable one answers (even for one item). */
const LINEITEM_RENDERERS = [MEDIA.container, MEDIA.lineitem];

type Action = 'list' | 'retrieve' | 'create' | 'update' | 'destroy' | 'results' | 'scores';

const READ = [SCOPE.lineitemReadonly, SCOPE.lineitem];
const SCOPES_FOR: Record<Action, string[]> = {
  list: READ,
  retrieve: READ,
  create: [SCOPE.lineitem],
  update: [SCOPE.lineitem],
  destroy: [SCOPE.lineitem],
  results: [SCOPE.resultReadonly],
  scores: [SCOPE.score],
};

interface Authorized {
  component: DevComponent;
  /** Media type chosen by content negotiation, for the line item views. */
  mediaType: string;
}

/**
 * The AGS endpoints, in Django REST framework's order of checks: content negotiation (406),
 * then the bearer token (403, never 401: edX's authenticator sends no challenge), then the
 * scope (403), then the view (404, 415, 400, 500).
 */
export function agsRouter(ctx: PlatformContext): Router {
  const router = Router({ strict: true });
  const base = '/api/lti_consumer/v1/lti/:configId/lti-ags';
  const faults = injectFaults(ctx.faults);
  const raw = express.raw({ type: () => true, limit: '1mb' });

  /** `fixed`: the one media type of a view that skips negotiation (results, scores). */
  const guard =
    (action: Action, fixed?: string) =>
    async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      let mediaType = fixed ?? LINEITEM_RENDERERS[0]!;
      // Errors are rendered with the negotiated media type too, as DRF does: never plain application/json.
      res.locals.mediaType = mediaType;
      if (!fixed) {
        const chosen = negotiateRenderer(req.get('accept'), LINEITEM_RENDERERS);
        if (!chosen) {
          detail(res, 406, 'Could not satisfy the request Accept header.');
          return;
        }
        mediaType = res.locals.mediaType = chosen;
      }
      const denied = await authenticate(ctx, req, action);
      if (typeof denied === 'string') {
        detail(res, 403, denied);
        return;
      }
      res.locals.auth = { component: denied, mediaType } satisfies Authorized;
      next();
    };

  const lineItemOr404 = (req: Request, res: Response): LineItem | undefined => {
    const { component } = res.locals.auth as Authorized;
    const item = ctx.store.get(component.configId, String(req.params.pk));
    if (!item) detail(res, 404, 'Not found.');
    return item;
  };

  router.get(base, faults, guard('list'), (req, res) => {
    const { component, mediaType } = res.locals.auth as Authorized;
    // No pagination at all: `limit` and `page` are ignored and every line item comes back.
    const q = (name: string): string | undefined => lastValue(req.query[name]);
    const filters = { resource_link_id: q('resource_link_id'), resource_id: q('resource_id'), tag: q('tag') };
    send(res, 200, mediaType, ctx.store.list(component.configId, filters));
  });

  router.post(base, faults, guard('create'), raw, (req, res) => {
    const { component, mediaType } = res.locals.auth as Authorized;
    const data = parseBody(req, res, MEDIA.lineitem);
    if (data === undefined) return;
    answer(ctx, res, mediaType, ctx.store.create(component, data));
  });

  router.get(`${base}/:pk`, faults, guard('retrieve'), (req, res) => {
    const { mediaType } = res.locals.auth as Authorized;
    const item = lineItemOr404(req, res);
    if (item) send(res, 200, mediaType, ctx.store.render(item));
  });

  for (const method of ['put', 'patch'] as const) {
    router[method](`${base}/:pk`, faults, guard('update'), raw, (req, res) => {
      const { mediaType } = res.locals.auth as Authorized;
      const item = lineItemOr404(req, res);
      if (!item) return;
      const data = parseBody(req, res, MEDIA.lineitem);
      if (data === undefined) return;
      answer(ctx, res, mediaType, ctx.store.update(item, data, method === 'patch'));
    });
  }

  router.delete(`${base}/:pk`, faults, guard('destroy'), (req, res) => {
    const item = lineItemOr404(req, res);
    if (item) answer(ctx, res, MEDIA.container, ctx.store.remove(item));
  });

  const results = (req: Request, res: Response): void => {
    const item = lineItemOr404(req, res);
    if (!item) return;
    const userId = req.params.userId === undefined ? undefined : String(req.params.userId);
    // edX's route takes the user from the path only (no dots); `?user_id=` is ignored.
    if (userId !== undefined && userId.includes('.')) {
      detail(res, 404, 'Not found.');
      return;
    }
    answer(ctx, res, MEDIA.results, ctx.store.results(item, userId, lastValue(req.query.limit)));
  };
  for (const path of [`${base}/:pk/results`, `${base}/:pk/results/`, `${base}/:pk/results/:userId`, `${base}/:pk/results/:userId/`]) {
    router.get(path, faults, guard('results', MEDIA.results), results);
  }

  router.post(`${base}/:pk/scores`, faults, guard('scores', MEDIA.score), raw, (req, res) => {
    const item = lineItemOr404(req, res);
    if (!item) return;
    // The scores view ignores the content type and parses any body as JSON.
    const data = parseBody(req, res, null);
    if (data === undefined) return;
    const out = ctx.store.postScore(item, data);
    if (out.status === 400) ctx.log.info('dev-platform: score refused', { lineItem: item.id, errors: out.body });
    answer(ctx, res, MEDIA.score, out);
  });

  return router;
}

async function authenticate(ctx: PlatformContext, req: Request, action: Action): Promise<DevComponent | string> {
  const auth = (req.get('authorization') ?? '').split(/\s+/).filter(Boolean);
  if (auth.length === 0 || auth[0]!.toLowerCase() !== 'bearer') return 'Missing LTI 1.3 authentication token.';
  if (auth.length === 1) return 'Invalid token header. No credentials provided.';
  if (auth.length > 2) return 'Invalid token header. Token string should not contain spaces.';
  const component = ctx.byConfig(String(req.params.configId));
  if (!component) return 'LTI configuration not found.';
  let scopes: string[];
  try {
    const payload = await ctx.keys.verify(component.clientId, auth[1]!, ctx.issuer, ctx.clock.now());
    if (typeof payload.scopes !== 'string') throw new Error('no scopes claim');
    scopes = payload.scopes.split(' ');
  } catch (err) {
    ctx.log.info('dev-platform: access token refused', { configId: component.configId, reason: (err as Error).message });
    return 'Invalid token signature.';
  }
  if (!scopes.some((s) => SCOPES_FOR[action].includes(s))) return 'You do not have permission to perform this action.';
  return component;
}

/**
 * DRF's DefaultContentNegotiation: Accept entries by specificity (exact, type/*, *\/*), the q
 * values ignored; the first renderer matching wins. No Accept header means anything.
 */
export function negotiateRenderer(accept: string | undefined, renderers: string[]): string | null {
  if (!accept || !accept.trim()) return renderers[0] ?? null;
  const types = accept
    .split(',')
    .map((t) => t.split(';')[0]!.trim())
    .filter(Boolean);
  const levels = [types.filter((t) => !t.includes('*')), types.filter((t) => t.endsWith('/*') && t !== '*/*'), types.filter((t) => t === '*/*')];
  for (const level of levels) {
    for (const renderer of renderers) {
      const [main] = renderer.split('/');
      if (level.some((t) => t === renderer || t === `${main}/*` || t === '*/*')) return renderer;
    }
  }
  return null;
}

/**
 * The request body as DRF's parser would give it: undefined when an answer was already sent
 * (415, 400). With `expected` null any content type is parsed as JSON (the scores view).
 */
function parseBody(req: Request, res: Response, expected: string | null): unknown {
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (body.length === 0) return {};
  const contentType = req.get('content-type') ?? '';
  if (expected !== null) {
    const type = contentType.split(';')[0]!.trim();
    if (type !== expected && type !== '*/*') {
      detail(res, 415, `Unsupported media type "${contentType}" in request.`);
      return undefined;
    }
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    detail(res, 400, `JSON parse error - ${(err as Error).message}`);
    return undefined;
  }
}

function answer(ctx: PlatformContext, res: Response, mediaType: string, out: StoreAnswer): void {
  switch (out.status) {
    case 200:
    case 201:
      send(res, out.status, mediaType, out.body);
      return;
    case 204:
      res.status(204).send();
      return;
    case 400:
      send(res, 400, mediaType, out.body satisfies FieldErrors);
      return;
    case 404:
      detail(res, 404, 'Not found.');
      return;
    case 500:
      ctx.log.warn('dev-platform: AGS request failed as edX would (500)', { reason: out.reason });
      serverError(res);
      return;
  }
}

function send(res: Response, status: number, mediaType: string, body: unknown): void {
  // A Buffer keeps the media type exactly as edX sends it (no charset parameter added).
  res.status(status).set('Content-Type', mediaType).send(Buffer.from(JSON.stringify(body)));
}

function detail(res: Response, status: number, text: string): void {
  send(res, status, String(res.locals.mediaType ?? 'application/json'), { detail: text });
}

function lastValue(v: unknown): string | undefined {
  if (Array.isArray(v)) return v.length ? String(v[v.length - 1]) : undefined;
  return typeof v === 'string' ? v : undefined;
}
