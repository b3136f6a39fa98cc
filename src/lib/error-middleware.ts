import type { NextFunction, Request, Response } from 'express';
import type { Logger } from './logger.js';
import { GoferError, RateLimitError, tooLargeMessage } from './errors.js';

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
      message = tooLargeMessage(maxNotebookMb);
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
    const answer = (): void => {
      if (req.originalUrl.startsWith('/api/') || (req.get('accept') ?? '').includes('application/json')) {
        res.status(status).json({ error: message });
      } else {
        res.status(status).type('text/plain').send(`${message}\n`);
      }
    };
    afterUnreadBody(req, res, answer);
  };
}

/**
 * A refused body up to this size is read and dropped (never kept) before the answer, so that
 * clients that send their whole body before they read (Python's urllib) see the answer rather
 * than a broken connection.
 */
const DROP_LIMIT_BYTES = 1024 * 1024;

/**
 * Answers a request whose body may not have been read (a caller refused before it, an upload
 * cut off): a small rest is dropped first; a large one is not read at all, the connection
 * closing after the answer. Every error answer goes through here (this handler's, and the
 * LTI pages' own).
 */
export function afterUnreadBody(req: Request, res: Response, answer: () => void): void {
  if (req.complete || req.readableEnded) return answer();
  const chunked = req.get('transfer-encoding') !== undefined;
  if (chunked || Number(req.get('content-length') ?? 0) > DROP_LIMIT_BYTES) {
    closeGently(req, res);
    return answer();
  }
  let answered = false;
  const once = (): void => {
    if (answered) return;
    answered = true;
    answer();
  };
  req.once('end', once).once('close', once).resume();
}

/** How long a connection closed on an unread body waits for its client to stop sending. */
const LINGER_MS = 1000;

/**
 * Closes the connection after the answer without reading the rest of the body, as gently as
 * that can be: a socket closed with unread bytes makes the kernel reset the connection, which
 * can destroy the answer before the client reads it (bench:uploads saw 4 of 40 lost). So the
 * answer goes out with a FIN, and what the client still sends is dropped until it closes, for
 * LINGER_MS at most. (Node ends a `Connection: close` answer with `socket.destroySoon()`: this
 * socket's does the above instead.)
 */
function closeGently(req: Request, res: Response): void {
  res.set('Connection', 'close');
  const socket = req.socket;
  socket.destroySoon = function lingeringClose(): void {
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
