import type { NextFunction, Request, Response } from 'express';
import type { Logger } from './logger.js';
import { GoferError, RateLimitError } from './errors.js';

/**
 * The one error handler: a GoferError answers with its status and message; body-parser's own
 * errors (a body too large, compressed oddly, cut short) get specific sentences; anything else
 * is a 500 that is logged (someone must fix it).
 * API paths answer JSON `{"error"}`; the hub's submit endpoints answer plain text.
 */
export function errorMiddleware(log: Logger, maxNotebookMb: number) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let status = 500;
    let message = 'Gofer failed unexpectedly; your notebook was not lost if it was acknowledged. Try again in a minute.';
    const e = err as { type?: string; status?: number; message?: string };
    if (err instanceof GoferError) {
      status = err.status;
      message = err.message;
      if (err instanceof RateLimitError) res.set('Retry-After', String(err.retryAfterSeconds));
      if (status >= 500) log.warn('request failed', { path: req.path, status, error: err.message });
    } else if (e?.type === 'entity.too.large') {
      status = 413;
      message = `The notebook is larger than ${maxNotebookMb} MB. Clear large outputs (Cell > All Output > Clear) and submit again.`;
    } else if (e?.type === 'encoding.unsupported') {
      status = 415;
      message = 'The request body is compressed in a way Gofer does not read: send it plain, or with gzip or deflate.';
    } else if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      // body-parser's other complaints (an aborted request, a wrong Content-Length)
      status = e.status;
      message = `The request could not be read: ${e.message ?? 'malformed'}.`;
    } else {
      log.error('unexpected error', { path: req.path, error: (err as Error)?.stack ?? String(err) });
    }
    if (res.headersSent) return;
    if (req.originalUrl.startsWith('/api/') || (req.get('accept') ?? '').includes('application/json')) {
      res.status(status).json({ error: message });
    } else {
      res.status(status).type('text/plain').send(`${message}\n`);
    }
  };
}
