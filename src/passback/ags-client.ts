import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { z } from 'zod';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { TokenCacheStats } from '../lib/metrics.js';
import type { ToolKeySource, ToolSigningKey } from '../lti/tool-keys.js';

export const AGS_SCOPE = {
  lineitem: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  lineitemReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  resultReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  score: 'https://purl.imsglobal.org/spec/lti-ags/scope/score',
} as const;

const MEDIA = {
  container: 'application/vnd.ims.lis.v2.lineitemcontainer+json',
  lineitem: 'application/vnd.ims.lis.v2.lineitem+json',
  score: 'application/vnd.ims.lis.v1.score+json',
};

/** One tool registration on a platform: the token is per (issuer, client id). */
export interface PlatformClient {
  issuer: string;
  clientId: string;
}

export interface ScoreToSend {
  /** The platform's `sub` for the learner. */
  userId: string;
  scoreGiven: number;
  scoreMaximum: number;
  /** When the grade was made, epoch ms: the platform keeps the score with the latest timestamp. */
  timestamp: number;
  comment?: string;
}

export interface LineItemWanted {
  resourceLinkId: string;
  /** The assignment id. */
  resourceId: string;
  label: string;
  /** Rounded to an integer (edX refuses anything else), at least 1. */
  scoreMaximum: number;
  endDateTime?: string;
}

/** What became of a request, as the dispatcher acts on it. */
export type AgsOutcome =
  | { kind: 'delivered'; status: number; note?: string }
  /** The platform holds a newer score: this one must not (and cannot) replace it. */
  | { kind: 'superseded'; status: number; detail: string }
  /** The line item is gone (404): resolve it again. */
  | { kind: 'gone'; status: number; detail: string }
  | { kind: 'retry'; status?: number; detail: string; retryAfterMs?: number }
  | { kind: 'failed'; status: number; detail: string };

export type LineItemRead = { kind: 'read'; scoreMaximum: number; endAt: number | null } | Extract<AgsOutcome, { kind: 'retry' | 'failed' | 'gone' }>;

export type LineItemOutcome = { kind: 'found' | 'created'; url: string } | Extract<AgsOutcome, { kind: 'retry' | 'failed' | 'gone' }>;

export interface AgsStats {
  /** Token requests sent (the benchmark's figure: one per registration and scope set per token lifetime). */
  tokenRequests: number;
  tokenFailures: number;
  /** Token lookups: a cached token used (hit), none cached (miss), one past its refresh time (refresh). */
  tokenHits: number;
  tokenMisses: number;
  tokenRefreshes: number;
  scorePosts: number;
  /** AGS answers 401/403 (a rotated platform key, an expired or under-scoped token). */
  refused: number;
}

export interface AgsClientOptions {
  keys: ToolKeySource;
  clock: Clock;
  /** Each HTTP request's own time limit (config passback.requestTimeoutSeconds). */
  requestTimeoutMs: number;
  log?: Logger;
  /** Fraction of a token's lifetime after which it is replaced (before it expires). Default 0.8. */
  refreshAt?: number;
  /** The assertion's `iat` is this far in the past: edX allows no clock skew at all. Default 5. */
  backdateSeconds?: number;
  fetch?: typeof fetch;
}

interface CachedToken {
  token: string;
  refreshAt: number;
  expiresAt: number;
}

type TokenOutcome = { ok: true; token: string } | { ok: false; outcome: Extract<AgsOutcome, { kind: 'retry' }> };

type Answer = { ok: true; status: number; text: string; headers: Headers } | { ok: false; outcome: Extract<AgsOutcome, { kind: 'retry' }> };

const tokenAnswerSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  expires_in: z.coerce.number().positive().optional(),
  scope: z.string().optional(),
});

const lineItemDetailSchema = z.object({
  scoreMaximum: z.number().nonnegative(),
  endDateTime: z.string().nullable().optional(),
});

const lineItemSchema = z.object({
  id: z.string().url(),
  resourceLinkId: z.string().nullable().optional(),
  resourceId: z.string().nullable().optional(),
});

/**
 * Gofer's own AGS client (ltijs's has no timeout, no early token refresh, no invalidation on a
 * refused token and overwrites score timestamps): client-credentials tokens signed with the
 * tool's key, cached per (issuer, client id, scopes) and replaced before they expire, fetched
 * once for concurrent callers; every answer classified for the dispatcher.
 */
export class AgsClient {
  readonly stats: AgsStats = { tokenRequests: 0, tokenFailures: 0, tokenHits: 0, tokenMisses: 0, tokenRefreshes: 0, scorePosts: 0, refused: 0 };
  private readonly cache = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<TokenOutcome>>();
  private readonly fetch: typeof fetch;

  constructor(private readonly o: AgsClientOptions) {
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  /** The token lookups so far, for the metrics. */
  tokenCache(): TokenCacheStats {
    return { hits: this.stats.tokenHits, misses: this.stats.tokenMisses, refreshes: this.stats.tokenRefreshes };
  }

  /** POST {lineItemUrl}/scores. `signal` aborts it (shutdown): the promise then rejects. */
  async postScore(target: PlatformClient, lineItemUrl: string, score: ScoreToSend, signal?: AbortSignal): Promise<AgsOutcome> {
    const url = subPath(lineItemUrl, 'scores');
    const body = {
      userId: score.userId,
      scoreGiven: score.scoreGiven,
      scoreMaximum: score.scoreMaximum,
      activityProgress: 'Completed',
      gradingProgress: 'FullyGraded',
      timestamp: new Date(score.timestamp).toISOString(),
      ...(score.comment ? { comment: score.comment } : {}),
    };
    this.stats.scorePosts++;
    const a = await this.call(target, [AGS_SCOPE.score], url, { method: 'POST', headers: { 'Content-Type': MEDIA.score }, body: JSON.stringify(body) }, signal);
    if (!a.ok) return a.outcome;
    const what = `POST ${url} answered ${a.status}`;
    if (a.status >= 200 && a.status < 300) return { kind: 'delivered', status: a.status };
    if (a.status === 400 && /already exists for the provided timestamp/i.test(a.text)) {
      return { kind: 'delivered', status: 200, note: 'The platform already had this score (an earlier attempt arrived).' };
    }
    if (a.status === 400 && /can only be updated to a later point/i.test(a.text)) {
      return { kind: 'superseded', status: 400, detail: `Not sent: the platform already holds a newer score for this learner (${what}: ${excerpt(a.text, a.headers)}).` };
    }
    if (a.status === 404) return { kind: 'gone', status: 404, detail: `${what}: the line item is gone.` };
    return classifyFailure(a.status, a.headers, `${what}: ${excerpt(a.text, a.headers)}`, this.o.clock.now());
  }

  /** A line item's maximum score and end date (edX: the component's weight and due date), as a launch reads them. */
  async readLineItem(target: PlatformClient, lineItemUrl: string, scopes: string[], signal?: AbortSignal): Promise<LineItemRead> {
    const scope = scopes.includes(AGS_SCOPE.lineitem) ? AGS_SCOPE.lineitem : AGS_SCOPE.lineitemReadonly;
    const got = await this.call(target, [scope], lineItemUrl, { method: 'GET', headers: { Accept: MEDIA.lineitem } }, signal);
    if (!got.ok) return got.outcome;
    const what = `GET ${lineItemUrl} answered ${got.status}`;
    if (got.status !== 200) return got.status === 404 ? { kind: 'gone', status: 404, detail: what } : classifyFailure(got.status, got.headers, `${what}: ${excerpt(got.text, got.headers)}`, this.o.clock.now());
    const item = lineItemDetailSchema.safeParse(safeJson(got.text));
    if (!item.success) return { kind: 'retry', status: got.status, detail: `${what} without a line item: ${excerpt(got.text, got.headers)}` };
    const end = item.data.endDateTime ? Date.parse(item.data.endDateTime) : NaN;
    return { kind: 'read', scoreMaximum: item.data.scoreMaximum, endAt: Number.isNaN(end) ? null : end };
  }

  /**
   * Programmatic mode: the line item for this resource link and assignment (the one whose
   * `resourceId` is the assignment, else any of the resource link's), created when there is none.
   */
  async findOrCreateLineItem(target: PlatformClient, lineItemsUrl: string, want: LineItemWanted, signal?: AbortSignal): Promise<LineItemOutcome> {
    const scopes = [AGS_SCOPE.lineitem];
    const listUrl = new URL(lineItemsUrl);
    listUrl.searchParams.set('resource_link_id', want.resourceLinkId);
    const got = await this.call(target, scopes, listUrl.toString(), { method: 'GET', headers: { Accept: MEDIA.container } }, signal);
    if (!got.ok) return got.outcome;
    if (got.status !== 200) return got.status === 404 ? { kind: 'gone', status: 404, detail: `GET ${listUrl} answered 404` } : classifyFailure(got.status, got.headers, `GET ${listUrl} answered ${got.status}: ${excerpt(got.text, got.headers)}`, this.o.clock.now());
    const items = parseLineItems(got.text);
    if (!items) return { kind: 'retry', status: got.status, detail: `GET ${listUrl}: the answer is not a list of line items: ${excerpt(got.text, got.headers)}` };
    const mine = items.filter((i) => i.resourceLinkId === want.resourceLinkId);
    const found = mine.find((i) => i.resourceId === want.resourceId) ?? mine[0];
    if (found) return { kind: 'found', url: found.id };

    const body = {
      scoreMaximum: Math.max(1, Math.round(want.scoreMaximum)),
      label: want.label.slice(0, 100),
      resourceId: want.resourceId,
      resourceLinkId: want.resourceLinkId,
      ...(want.endDateTime ? { endDateTime: want.endDateTime } : {}),
    };
    const made = await this.call(target, scopes, lineItemsUrl, { method: 'POST', headers: { 'Content-Type': MEDIA.lineitem, Accept: MEDIA.lineitem }, body: JSON.stringify(body) }, signal);
    if (!made.ok) return made.outcome;
    const what = `POST ${lineItemsUrl} answered ${made.status}`;
    if (made.status === 200 || made.status === 201) {
      const item = lineItemSchema.safeParse(safeJson(made.text));
      if (item.success) return { kind: 'created', url: item.data.id };
      return { kind: 'retry', status: made.status, detail: `${what} without a line item id: ${excerpt(made.text, made.headers)}` };
    }
    if (made.status === 404) return { kind: 'gone', status: 404, detail: `${what}` };
    return classifyFailure(made.status, made.headers, `${what}: ${excerpt(made.text, made.headers)}`, this.o.clock.now());
  }

  /** A request with a bearer token; a refused token (401, or 403 as edX answers) is dropped and the request made once more with a new one. */
  private async call(target: PlatformClient, scopes: string[], url: string, init: { method: string; headers: Record<string, string>; body?: string }, signal?: AbortSignal): Promise<Answer> {
    const key = cacheKey(target, scopes);
    for (let attempt = 0; ; attempt++) {
      // The token fetch is shared, so it has only its own timeout; a caller that is stopped stops waiting for it.
      const t = await abortable(this.token(target, scopes, key), signal);
      if (!t.ok) return t;
      let res: Response;
      let text: string;
      try {
        res = await this.fetch(url, { method: init.method, headers: { ...init.headers, Authorization: `Bearer ${t.token}` }, body: init.body ?? null, signal: this.signal(signal) });
        text = await res.text();
      } catch (err) {
        if (signal?.aborted) throw err;
        return { ok: false, outcome: { kind: 'retry', detail: `${init.method} ${url}: ${networkError(err, this.o.requestTimeoutMs)}` } };
      }
      if (res.status === 401 || res.status === 403) {
        this.stats.refused++;
        this.drop(key, t.token);
        if (attempt === 0) continue;
        return { ok: false, outcome: { kind: 'retry', status: res.status, detail: `${init.method} ${url} refused a new access token (${res.status}): ${excerpt(text, res.headers)}` } };
      }
      return { ok: true, status: res.status, text, headers: res.headers };
    }
  }

  private signal(outer: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.o.requestTimeoutMs);
    return outer ? AbortSignal.any([outer, timeout]) : timeout;
  }

  /** The cached token until its refresh time; then one fetch shared by every caller. */
  private async token(target: PlatformClient, scopes: string[], key: string): Promise<TokenOutcome> {
    const now = this.o.clock.now();
    const cached = this.cache.get(key);
    if (cached && now < cached.refreshAt) {
      this.stats.tokenHits++;
      return { ok: true, token: cached.token };
    }
    if (cached) this.stats.tokenRefreshes++;
    else this.stats.tokenMisses++;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchToken(target, scopes, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const got = await pending;
    // A failed refresh while the old token is still good: keep using it.
    if (!got.ok && cached && this.cache.get(key) === cached && this.o.clock.now() < cached.expiresAt - 5_000) return { ok: true, token: cached.token };
    return got;
  }

  /** Drops a refused token, unless another caller already replaced it. */
  private drop(key: string, token: string): void {
    if (this.cache.get(key)?.token === token) this.cache.delete(key);
  }

  private async fetchToken(target: PlatformClient, scopes: string[], key: string): Promise<TokenOutcome> {
    const retry = (detail: string, status?: number, retryAfterMs?: number): TokenOutcome => {
      this.stats.tokenFailures++;
      return { ok: false, outcome: { kind: 'retry', detail, ...(status ? { status } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) } };
    };
    let sk: ToolSigningKey | undefined;
    try {
      sk = await this.o.keys.signingKey(target.issuer, target.clientId);
    } catch (err) {
      return retry(`cannot read the tool key for ${target.issuer} (client id ${target.clientId}): ${(err as Error).message}`);
    }
    if (!sk) return retry(`no platform is registered for ${target.issuer} with client id ${target.clientId}: register it (gofer platform add) so grades can be sent.`);
    const started = this.o.clock.now();
    const iat = Math.floor(started / 1000) - (this.o.backdateSeconds ?? 5);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: sk.kid })
      .setIssuer(target.clientId)
      .setSubject(target.clientId)
      .setAudience(sk.audience)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(iat + 65)
      .sign(sk.privateKey);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: scopes.join(' '),
    });
    this.stats.tokenRequests++;
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(sk.tokenUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: form.toString(),
        signal: AbortSignal.timeout(this.o.requestTimeoutMs),
      });
      text = await res.text();
    } catch (err) {
      return retry(`token request to ${sk.tokenUrl}: ${networkError(err, this.o.requestTimeoutMs)}`);
    }
    if (res.status !== 200) {
      const what = `token request to ${sk.tokenUrl} answered ${res.status}: ${excerpt(text, res.headers)}`;
      const hint = res.status === 400 || res.status === 401 ? ' (the platform refused the tool\'s signed assertion: check the tool keyset URL registered on the platform)' : '';
      return retry(what + hint, res.status, retryAfterMs(res.headers, this.o.clock.now()));
    }
    const parsed = tokenAnswerSchema.safeParse(safeJson(text));
    if (!parsed.success) return retry(`token request to ${sk.tokenUrl}: not a token answer: ${excerpt(text, res.headers)}`, res.status);
    const lifetimeMs = (parsed.data.expires_in ?? 3600) * 1000;
    this.cache.set(key, { token: parsed.data.access_token, refreshAt: started + lifetimeMs * (this.o.refreshAt ?? 0.8), expiresAt: started + lifetimeMs });
    this.o.log?.debug('passback: new access token', { issuer: target.issuer, clientId: target.clientId, scopes, expiresIn: parsed.data.expires_in });
    return { ok: true, token: parsed.data.access_token };
  }
}

/** Answers that are not the line item's own verdict: throttling and server trouble retry later, other refusals are final. */
export function classifyFailure(status: number, headers: Headers, detail: string, now: number): Extract<AgsOutcome, { kind: 'retry' | 'failed' }> {
  if (status === 408 || status === 429 || status >= 500) {
    const after = retryAfterMs(headers, now);
    return { kind: 'retry', status, detail, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  return { kind: 'failed', status, detail };
}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Retry-After in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers, now: number): number | undefined {
  const v = headers.get('retry-after');
  if (!v) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function cacheKey(target: PlatformClient, scopes: string[]): string {
  return `${target.issuer}\n${target.clientId}\n${[...scopes].sort().join(' ')}`;
}

function subPath(url: string, segment: string): string {
  const u = new URL(url);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${segment}`;
  return u.toString();
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseLineItems(text: string): Array<z.infer<typeof lineItemSchema>> | undefined {
  const body = safeJson(text);
  const list = Array.isArray(body) ? body : Array.isArray((body as { lineItems?: unknown })?.lineItems) ? (body as { lineItems: unknown[] }).lineItems : undefined;
  if (!list) return undefined;
  return list.flatMap((i) => {
    const p = lineItemSchema.safeParse(i);
    return p.success ? [p.data] : [];
  });
}

/** The platform's answer, short enough for last_error and a log line (an HTML error page: its title). */
function excerpt(text: string, headers: Headers): string {
  const type = headers.get('content-type') ?? '';
  let t = text;
  if (type.includes('html') || /^\s*</.test(t)) {
    const title = /<title>([^<]*)<\/title>/i.exec(t)?.[1];
    t = title ? `HTML page "${title.trim()}"` : t.replace(/<[^>]*>/g, ' ');
  }
  t = t.replace(/\s+/g, ' ').trim();
  return t.length > 500 ? `${t.slice(0, 500)}…` : t || '(empty answer)';
}

function networkError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
}
