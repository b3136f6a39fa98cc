import { AsyncLocalStorage } from 'node:async_hooks';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from './logger.js';

/** The request a piece of asynchronous work started from, for logs of failures nobody awaited. */
export interface RequestLabel {
  method: string;
  path: string;
}

const current = new AsyncLocalStorage<RequestLabel>();

/** First middleware of the app: later asynchronous work of the request knows which request it serves. */
export function requestContext(req: Request, _res: Response, next: NextFunction): void {
  current.run({ method: req.method, path: req.originalUrl.split('?')[0] ?? req.originalUrl }, next);
}

/**
 * The last line of defence: a promise rejection nobody handled (a library's floating promise, a
 * handler that forgot to catch) is logged with the request it came from, and the service keeps
 * serving instead of exiting (Node's default). Returns the function that removes the guard.
 */
export function guardUnhandledRejections(log: Logger): () => void {
  const onRejection = (reason: unknown): void => {
    log.error('unhandled rejection (Gofer keeps serving; this is a bug to report)', {
      request: current.getStore() ?? null,
      error: (reason as Error)?.stack ?? String(reason),
    });
  };
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('unhandledRejection', onRejection);
  };
}
