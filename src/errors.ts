/**
 * The host's errors. An `HttpError` carries a status and a message that is safe to show to the client; the host's
 * one error middleware turns it into `{"error": message}`. A `ConfigError` stops the server at startup with a
 * message that names the file, the channel and the key at fault.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly expose = true;
  /** Extra headers to set on the error response (`WWW-Authenticate`, `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.headers = headers;
  }
}

export class BadRequestError extends HttpError {
  constructor(message = 'bad request') {
    super(400, message);
    this.name = 'BadRequestError';
  }
}

export class UnauthorizedError extends HttpError {
  constructor(message = 'request could not be verified') {
    super(401, message);
    this.name = 'UnauthorizedError';
  }
}

export class ForbiddenError extends HttpError {
  constructor(message = 'forbidden') {
    super(403, message);
    this.name = 'ForbiddenError';
  }
}

export class NotFoundError extends HttpError {
  constructor(message = 'not found') {
    super(404, message);
    this.name = 'NotFoundError';
  }
}

/** A request the server understood but cannot carry out as it stands (a channel that cannot send first): 409. */
export class ConflictError extends HttpError {
  constructor(message = 'conflict') {
    super(409, message);
    this.name = 'ConflictError';
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(message = 'request body too large') {
    super(413, message);
    this.name = 'PayloadTooLargeError';
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  constructor(message = 'unsupported content type') {
    super(415, message);
    this.name = 'UnsupportedMediaTypeError';
  }
}

/**
 * A queue is full (a sender's backlog, the wait list for the bot, or all queued messages together): nothing was
 * queued. HTTP channels answer it 429 with `Retry-After: retryAfter` (the host's error middleware does it); the
 * socket.io channel emits an `error` event.
 */
export class BacklogFullError extends HttpError {
  /** Seconds after which a retry is likely to be accepted. */
  readonly retryAfter: number;

  constructor(message = 'too many messages are waiting; retry later', retryAfter = 1) {
    super(429, message, { 'Retry-After': String(retryAfter) });
    this.name = 'BacklogFullError';
    this.retryAfter = retryAfter;
  }
}

/** A problem with configuration (credentials file, channel spec, bot spec) found at startup. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/**
 * A channel's credentials are missing or malformed. The message is relative (`missing "slack_token"`); the loader
 * prefixes the file and the channel (`credentials.yml: slack: missing "slack_token"`).
 */
export class CredentialsError extends ConfigError {
  readonly key: string | undefined;

  constructor(message: string, key?: string) {
    super(message);
    this.name = 'CredentialsError';
    this.key = key;
  }
}
