import express, { Router } from 'express';
import { GRANTABLE_SCOPES } from './claims.js';
import type { PlatformContext } from './context.js';
import { injectFaults, notFound } from './faults.js';
import { verifyToolJwt } from './tool-jwt.js';

const REQUIRED = ['grant_type', 'client_assertion_type', 'client_assertion', 'scope'];

/**
 * `POST {LMS}/api/lti_consumer/v1/token/{config id}`: client credentials with a JWT assertion.
 * edX parses the raw body as a query string whatever its content type, checks the assertion
 * against the tool keyset fetched afresh, and grants every known scope asked for, whatever the
 * component's AGS mode.
 */
export function tokenRouter(ctx: PlatformContext): Router {
  const router = Router({ strict: true });
  router.all(
    '/api/lti_consumer/v1/token/:configId',
    (_req, _res, next) => {
      ctx.tokenRequests++;
      next();
    },
    injectFaults(ctx.faults),
    express.raw({ type: () => true, limit: '1mb' }),
    async (req, res) => {
      if (req.method !== 'POST') {
        res.status(405).set('Allow', 'POST').send();
        return;
      }
      const component = ctx.byConfig(String(req.params.configId));
      if (!component) {
        notFound(res);
        return;
      }
      const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
      // dict(parse_qsl(...)): the last value of a repeated field wins.
      const params = new Map<string, string>();
      for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
      if (REQUIRED.some((f) => !params.has(f))) {
        ctx.log.info('dev-platform: token request missing a field', { configId: component.configId, got: [...params.keys()] });
        res.status(400).json({ error: 'invalid_request' });
        return;
      }
      if (params.get('grant_type') !== 'client_credentials') {
        res.status(400).json({ error: 'unsupported_grant_type' });
        return;
      }
      const checked = await verifyToolJwt(params.get('client_assertion')!, component.tool.keysetUrl, ctx.clock.now());
      if (!checked.ok) {
        ctx.log.info('dev-platform: client assertion refused', { configId: component.configId, error: checked.error, reason: checked.reason });
        res.status(400).json({ error: checked.error });
        return;
      }
      const scope = params
        .get('scope')!
        .split(' ')
        .filter((s) => GRANTABLE_SCOPES.includes(s))
        .join(' ');
      const accessToken = await ctx.keys.sign(component.clientId, { sub: component.clientId, iss: ctx.issuer, scopes: scope }, ctx.clock.now());
      res.json({ access_token: accessToken, token_type: 'bearer', expires_in: 3600, scope });
    },
  );
  return router;
}
