import type { RequestHandler } from 'express';
import type { DevFaults } from './types.js';

export function defaultFaults(): DevFaults {
  return { rateLimit: 0, retryAfterSeconds: 1, serverErrors: 0, latencyMs: 0, down: false };
}

/**
 * Failures a tool meets in production in front of the token and AGS endpoints: slowness,
 * throttling, server errors, and an LMS that is not there at all. The counters are consumed one
 * request at a time, so a test can say "the next two requests fail".
 */
export function injectFaults(faults: DevFaults): RequestHandler {
  return async (req, res, next) => {
    if (faults.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
    if (faults.down) {
      // No status line at all: what a tool sees when the LMS or its proxy is gone.
      req.socket.destroy();
      return;
    }
    if (faults.rateLimit > 0) {
      faults.rateLimit--;
      const seconds = Math.max(0, Math.ceil(faults.retryAfterSeconds));
      res.status(429).set('Retry-After', String(seconds)).json({ detail: `Request was throttled. Expected available in ${seconds} seconds.` });
      return;
    }
    if (faults.serverErrors > 0) {
      faults.serverErrors--;
      serverError(res);
      return;
    }
    next();
  };
}

const DJANGO_500 = '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n';

/** Django's production 500 page, also for edX's own unhandled exceptions: HTML, never JSON. */
export function serverError(res: Parameters<RequestHandler>[1]): void {
  res.status(500).type('html').send(DJANGO_500);
}

/** Django's production 404 page. */
export function notFound(res: Parameters<RequestHandler>[1]): void {
  res.status(404).type('html').send('<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n');
}
