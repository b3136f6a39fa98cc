/**
 * Errors a person can act on. Each kind carries the HTTP status it maps to and the exit code
 * the command line uses, so one handler (the error middleware, or the CLI) treats them all.
 *
 * A learner's broken or hostile notebook is never an error: it is a grading result with a
 * status. These classes are for unusable input and for infrastructure that failed.
 */
export class GoferError extends Error {
  readonly status: number = 500;
  readonly exitCode: number = 70;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Input that cannot be used as given (a missing file, an unknown option value). */
export class InputError extends GoferError {
  override readonly status = 400;
  override readonly exitCode = 2;
}

/**
 * Work that hits one fails for good at once: no retry can help (the lease queues' non-retryable
 * kind). Any other error a job or a passback hits is retried with back-off.
 */
export class NonRetryableError extends GoferError {}

/** The configuration (file, environment or instructor tests) is wrong: no retry can help. */
export class ConfigError extends NonRetryableError {
  override readonly status = 500;
  override readonly exitCode = 78;
}

/**
 * Something Gofer depends on failed: the Docker engine, an image, the disk, the database.
 * Work that hits one is retried later; it never becomes a score.
 */
export class InfrastructureError extends GoferError {
  override readonly status = 503;
  override readonly exitCode = 69;
}

/** No identity, or one that cannot be checked. */
export class AuthError extends GoferError {
  override readonly status = 401;
}

/** An identity that may not do this. */
export class ForbiddenError extends GoferError {
  override readonly status = 403;
}

export class NotFoundError extends GoferError {
  override readonly status = 404;
}

/** Well-formed, but not something Gofer can grade (a notebook that is not one, an unknown assignment). */
export class UnprocessableError extends GoferError {
  override readonly status = 422;
}

export class PayloadTooLargeError extends GoferError {
  override readonly status = 413;
}

export class UnsupportedMediaTypeError extends GoferError {
  override readonly status = 415;
}

export class RateLimitError extends GoferError {
  override readonly status = 429;
  constructor(message: string, readonly retryAfterSeconds: number) {
    super(message);
  }
}

/** Why a notebook was refused for its size, and what a learner can do, whatever their front end. */
export function tooLargeMessage(limitMb: number): string {
  return `The notebook is larger than ${limitMb} MB, usually because of saved outputs (large plots, images, long printouts). Clear its outputs, save it, and submit again.`;
}
