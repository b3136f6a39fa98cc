import express, { Router, type Request, type Response } from 'express';
import { html } from '../lib/html.js';
import { page } from '../lib/page.js';
import { LTI, launchClaims, mayDeepLink, parseCustom } from './claims.js';
import type { PlatformContext } from './context.js';
import { notFound, serverError } from './faults.js';
import { errorPage, unitPage } from './pages.js';
import { verifyToolJwt } from './tool-jwt.js';
import type { DevComponent } from './types.js';

const AUTH_PATH = '/api/lti_consumer/v1/launch/';
const DL_ACCEPTED = ['ltiResourceLink', 'link', 'html', 'image'];

/**
 * The browser-facing half of LTI: login initiation, the OIDC auth endpoint, the platform keyset
 * and the deep-linking return. The auth endpoint answers with errors as edX renders them: an
 * HTML page and status 400, whose text says what was wrong.
 */
export function launchRouter(ctx: PlatformContext): Router {
  const router = Router({ strict: true });
  const form = express.urlencoded({ extended: false, limit: '1mb' });

  // Step 1, on edX the LMS page around the component: send the browser to the tool's login URL.
  router.get('/dev/launch', (req, res) => {
    const target = resolveTarget(ctx, req);
    if (typeof target === 'string') {
      res.status(404).type('html').send(errorPage('Unknown launch', target));
      return;
    }
    const { component: c, user, kind } = target;
    const hint = ctx.issueHint({ configId: c.configId, sub: user.sub, kind });
    const params = new URLSearchParams({
      iss: ctx.issuer,
      client_id: c.clientId,
      lti_deployment_id: '1',
      target_link_uri: kind === 'deep-link' ? (c.tool.deepLinkLaunchUrl ?? c.tool.launchUrl) : c.tool.launchUrl,
      login_hint: user.sub,
      lti_message_hint: hint,
    });
    // edX appends "?" and the parameters without looking: a login URL that has a query already breaks.
    res.redirect(302, `${c.tool.loginUrl}?${params.toString()}`);
  });

  router.get('/dev/unit', (req, res) => {
    const target = resolveTarget(ctx, req);
    if (typeof target === 'string') {
      res.status(404).type('html').send(errorPage('Unknown launch', target));
      return;
    }
    res.type('html').send(unitPage(ctx, target.component, target.user, target.kind));
  });

  // Django's APPEND_SLASH: without the slash the browser is sent to it (as a GET, losing a POST body).
  router.all('/api/lti_consumer/v1/launch', (req, res) => {
    const q = req.originalUrl.indexOf('?');
    res.redirect(301, AUTH_PATH + (q >= 0 ? req.originalUrl.slice(q) : ''));
  });
  router.all(AUTH_PATH, form, (req, res) => auth(ctx, req, res));
  router.all(`${AUTH_PATH}*suffix`, form, (req, res) => auth(ctx, req, res));

  router.get('/api/lti_consumer/v1/public_keysets/:configId', (req, res) => {
    const c = ctx.byConfig(String(req.params.configId));
    if (!c) {
      notFound(res);
      return;
    }
    res.set('Content-Disposition', 'attachment; filename=keyset.json').json(ctx.keys.jwks(c.clientId));
  });

  router.post('/api/lti_consumer/v1/lti/:configId/lti-dl/response', form, async (req, res) => {
    const c = ctx.byConfig(String(req.params.configId));
    if (!c) {
      notFound(res);
      return;
    }
    await deepLinkResponse(ctx, c, req, res);
  });

  return router;
}

type Target = { component: DevComponent; user: NonNullable<ReturnType<PlatformContext['userByName']>>; kind: 'resource' | 'deep-link' };

function resolveTarget(ctx: PlatformContext, req: Request): Target | string {
  const username = String(req.query.user ?? '');
  const usageKey = String(req.query.block ?? '');
  const kind = req.query.kind === 'deep-link' ? 'deep-link' : 'resource';
  const component = ctx.byUsageKey(usageKey);
  const user = ctx.userByName(username);
  if (!component) return `No component ${usageKey} in this course.`;
  if (!user) return `No user ${username} in this course.`;
  if (kind === 'deep-link' && !component.deepLinking) return `${component.name} does not have deep linking enabled.`;
  return { component, user, kind };
}

/** The OIDC auth endpoint: checks in edX's order, then the auto-submitting form with the id_token. */
async function auth(ctx: PlatformContext, req: Request, res: Response): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'POST') {
    res.status(405).set('Allow', 'GET, POST').send();
    return;
  }
  // Django's request.GET for a GET, request.POST (form bodies only) for a POST; the last value wins.
  const source = (req.method === 'GET' ? req.query : (req.body ?? {})) as Record<string, unknown>;
  const p = (name: string): string => {
    const v = source[name];
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    return typeof last === 'string' ? last : '';
  };
  const fail = (status: number, message: string): void => {
    ctx.log.info('dev-platform: launch refused', { status, message });
    res.status(status).type('html').send(errorPage('LTI launch error', message));
  };

  const messageHint = p('lti_message_hint');
  if (!messageHint) return fail(400, 'The lti_message_hint is missing or empty.');
  const loginHint = p('login_hint');
  if (!loginHint) return fail(400, 'The login_hint is missing or empty.');
  const hint = ctx.hint(messageHint);
  if (!hint) return fail(400, `Unable to find record of an OIDC launch for the provided lti_message_hint: ${messageHint} (unknown, or older than 10 minutes)`);
  if (loginHint !== hint.sub) return fail(400, `The login_hint ${loginHint} is not the user the lti_message_hint was issued for.`);
  const c = ctx.byConfig(hint.configId)!;
  const user = ctx.userBySub(hint.sub)!;
  if (hint.kind === 'deep-link' && !mayDeepLink(user.role)) {
    return fail(403, 'Deep Linking can only be performed by instructors and staff. You do not have permission to access this content.');
  }

  const problems: string[] = [];
  const redirectUri = p('redirect_uri');
  const registered = ctx.redirectUris(c);
  if (!p('nonce')) problems.push('nonce is missing');
  if (!p('state')) problems.push('state is missing');
  if (!redirectUri) problems.push('redirect_uri is missing');
  else if (!registered.includes(redirectUri)) problems.push(`redirect_uri ${redirectUri} is not registered for this tool (registered: ${registered.join(', ')})`);
  if (p('client_id') !== c.clientId) problems.push(`client_id ${p('client_id') || '(none)'} does not match this component's client id ${c.clientId}`);
  if (problems.length > 0) return fail(400, `Error preparing LTI 1.3 launch for resource with resource_link_id ${c.usageKey}: ${problems.join('; ')}`);

  // A deep-linked resource link replaces the launch URL and (when it has any) the custom parameters.
  const linked = hint.kind === 'resource' ? ctx.deepLinks.get(c.configId)?.items.find((i) => i.type === 'ltiResourceLink') : undefined;
  const linkedCustom = linked?.custom && typeof linked.custom === 'object' && Object.keys(linked.custom).length > 0 ? (linked.custom as Record<string, string>) : undefined;
  const first = ctx.store.firstLineItem(c.configId);
  const claims = launchClaims({
    issuer: ctx.issuer,
    courseKey: ctx.runOf(c).key,
    courseTitle: ctx.runOf(c).title,
    component: c,
    user,
    kind: hint.kind,
    nonce: p('nonce'),
    targetLinkUri: hint.kind === 'deep-link' ? (c.tool.deepLinkLaunchUrl ?? c.tool.launchUrl) : typeof linked?.url === 'string' ? linked.url : c.tool.launchUrl,
    custom: linkedCustom ?? parseCustom(c.custom),
    lineitemsUrl: ctx.store.lineItemsUrl(c.configId),
    lineitemUrl: first?.id ?? null,
    deepLinkReturnUrl: `${ctx.issuer}/api/lti_consumer/v1/lti/${c.configId}/lti-dl/response`,
  });
  const idToken = await ctx.keys.sign(c.clientId, claims, ctx.clock.now());
  ctx.log.info('dev-platform: launch', { user: user.username, component: c.usageKey, kind: hint.kind, messageType: claims[`${LTI}message_type`] });
  res.type('html').send(
    page(
      'LTI launch',
      html`<form id="lti-launch" action="${redirectUri}" method="post" enctype="application/x-www-form-urlencoded">
<input type="hidden" name="state" value="${p('state')}">
<input type="hidden" name="id_token" value="${idToken}">
<input type="submit" value="Press to Launch">
</form>
<script>document.getElementById('lti-launch').submit();</script>`,
    ),
  );
}

/**
 * The deep-linking return: the tool's JWT checked against its keyset (as client assertions are),
 * its content items kept for the component, replacing the previous selection. edX also checks
 * the browser's staff session; this platform has no sessions, so it does not.
 */
async function deepLinkResponse(ctx: PlatformContext, c: DevComponent, req: Request, res: Response): Promise<void> {
  const denied = (reason: string): void => {
    ctx.log.info('dev-platform: deep-linking response refused', { configId: c.configId, reason });
    res.status(403).type('html').send(errorPage('Deep linking', "You don't have access to save LTI Content Items. Please check that you have course staff permissions and double check this block's LTI settings."));
  };
  if (!c.deepLinking) return denied('deep linking is not enabled for this component');
  const jwt = typeof req.body?.JWT === 'string' ? (req.body.JWT as string) : '';
  if (!jwt) return denied('no JWT form field');
  const checked = await verifyToolJwt(jwt, c.tool.keysetUrl, ctx.clock.now());
  if (!checked.ok) {
    // Signature and format problems are caught by edX (403); expired or future tokens are not (500).
    if (checked.error === 'unidentified_error') {
      ctx.log.warn('dev-platform: deep-linking response failed as edX would (500)', { reason: checked.reason });
      return serverError(res);
    }
    return denied(checked.reason);
  }
  if (checked.payload[`${LTI}message_type`] !== 'LtiDeepLinkingResponse') return denied("Token isn't a Deep Linking Response message.");
  const raw = checked.payload['https://purl.imsglobal.org/spec/lti-dl/claim/content_items'] ?? [];
  const items = Array.isArray(raw) ? (raw as Array<Record<string, unknown>>) : [];
  if (items.some((i) => !i || typeof i !== 'object' || !('type' in i))) {
    ctx.log.warn('dev-platform: deep-linking content item without a type (500)');
    return serverError(res);
  }
  if (items.some((i) => !DL_ACCEPTED.includes(String(i.type)))) {
    res.status(400).type('html').send(errorPage('Deep linking', 'The selected content type is not supported by Open edX.'));
    return;
  }
  ctx.deepLinks.set(c.configId, { usageKey: c.usageKey, items });
  ctx.log.info('dev-platform: deep-linking content saved', { component: c.usageKey, items: items.length });
  res.type('html').send(page('Deep linking', html`<p>The LTI Deep Linking content was saved successfully. You can close this window.</p>`));
}
