import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { contextField } from './context.js';
import { maskSecrets, silentLogger, type Logger } from './logger.js';
import { VERSION } from './version.js';

export interface HttpClientOptions {
  /** Per attempt. */
  timeoutMs?: number;
  /**
   * Retries after the first attempt. A request that cannot have reached the server (a connect error, 429, 503) is
   * retried whatever its method; one that may have (a timeout, a reset, another 5xx) only when it is idempotent.
   */
  retries?: number;
  /** First backoff delay; doubled each retry, with jitter. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /**
   * A wait the platform asks for (`Retry-After`, or one read from the answer's body) longer than this is not waited
   * for: the call fails at once, logged, rather than hold the sender's queue that long.
   */
  maxRetryAfterMs?: number;
  logger?: Logger;
  /** How the client waits between attempts (tests record the waits instead of sleeping). */
  sleep?: (ms: number) => Promise<void>;
  /** Values masked wherever a URL or error is logged (tokens in Telegram's path, Messenger's query). */
  secrets?: readonly string[];
  /** Told of every attempt, retry and failure (the host's metrics); never sees a URL. */
  observer?: HttpObserver;
}

/** What an `HttpClient` reports as it works, for metrics. `status` is undefined when no answer came (a network error, a timeout). */
export interface HttpObserver {
  attempt(method: string, status: number | undefined): void;
  retry(method: string): void;
  /** The call failed for good: its retries spent, or not safe to retry. */
  gaveUp(method: string): void;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as `application/json`. */
  json?: unknown;
  /** Sent as `application/x-www-form-urlencoded`; arrays repeat the name (Twilio's `MediaUrl`). */
  form?: Record<string, string | number | boolean | readonly string[] | undefined> | URLSearchParams;
  body?: string | Buffer;
  /** Added to the URL's query string. */
  query?: Record<string, string | number | boolean | undefined>;
  /** HTTP basic auth. */
  basicAuth?: { username: string; password: string };
  /** Bearer token. */
  bearer?: string;
  timeoutMs?: number;
  /** Aborts the call (and its retries) from outside: the host's `--bot-timeout` for the remote bot. */
  signal?: AbortSignal;
  retries?: number;
  /**
   * True when sending the request twice does no harm, so it may be retried after a timeout, a reset or a 5xx, when
   * the server may have received it. GET, HEAD, PUT, DELETE and OPTIONS are idempotent, and so is a request with an
   * `Idempotency-Key` header; any other POST is retried only when it cannot have reached the server (a connect
   * error, 429, 503) — a retried chat message after a read timeout is a message the user receives twice.
   */
  idempotent?: boolean;
  /** For the log line of a failure: which channel and which user the call was for. */
  channel?: string;
  recipient?: string;
  /**
   * For APIs that report failures inside a 2xx answer (Slack's `{"ok": false, "error": "ratelimited"}`): return
   * undefined when the parsed body is a success, else the failure and whether it is worth retrying.
   */
  check?: (body: unknown, response: { status: number; headers: Map<string, string> }) => { error: string; retry: boolean } | undefined;
  /**
   * For APIs that put the wait in a failed answer's body (Telegram's `{"ok": false, "error_code": 429, "parameters":
   * {"retry_after": 5}}`): the seconds to wait before the next attempt, or undefined. Called for every failed answer
   * (a non-2xx, or a 2xx `check` refused); a `Retry-After` header wins over it.
   */
  retryAfter?: (body: unknown, response: { status: number; headers: Map<string, string> }) => number | undefined;
  /**
   * A successful answer whose `Content-Type` matches is not read: the response's `stream` is the body as it arrives
   * (a bot server streaming NDJSON or server-sent events). The attempt's timeout still bounds the whole read.
   */
  stream?: RegExp;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Map<string, string>;
  /** The body parsed as JSON when it is JSON, else the text (undefined when it is streamed: see `stream`). */
  body: T;
  text: string;
  /** With `RequestOptions.stream` and a matching content type: the body, unread. */
  stream?: AsyncIterable<Buffer | string>;
}

/** An outgoing call that failed after its retries: a network error, a timeout, or a non-2xx answer. */
export class HttpRequestError extends Error {
  readonly status: number | undefined;
  readonly responseBody: string | undefined;
  readonly attempts: number;
  /**
   * True when the request cannot have reached the server, so sending it again cannot duplicate it: a connect error,
   * a 429 or 503, or a 2xx whose body says the same (`check` answered `retry: true`, Slack's `ratelimited`). False for
   * a timeout or a reset (the platform may have it), any other status, and a call aborted from outside.
   */
  readonly safeToRetry: boolean;
  /** The wait the platform asked for in its last answer (`Retry-After`, or read from its body), in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { status?: number; responseBody?: string; attempts: number; cause?: unknown; safeToRetry?: boolean; retryAfterMs?: number }) {
    super(message, { cause: options.cause });
    this.name = 'HttpRequestError';
    this.status = options.status;
    this.responseBody = options.responseBody;
    this.attempts = options.attempts;
    this.safeToRetry = options.safeToRetry ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** True for an `HttpRequestError` that cannot have reached the server (see `HttpRequestError.safeToRetry`). */
export function isSafeToRetry(error: unknown): boolean {
  return error instanceof HttpRequestError && error.safeToRetry;
}

const deliveries = contextField<{ delivered: number }>('deliveries');

/**
 * Runs `send` and counts the calls of any `HttpClient` inside it that the platform accepted (a 2xx that passed
 * `check`). The outbox asks it whether a failed answer is whole (nothing of it reached the user, so retrying it
 * cannot show a part twice) or was cut after some of its parts were sent.
 */
export async function countDeliveries(send: () => Promise<void>): Promise<{ delivered: number; error?: unknown }> {
  const counter = { delivered: 0 };
  try {
    await deliveries.run(counter, send);
    return { delivered: counter.delivered };
  } catch (error) {
    return { delivered: counter.delivered, error };
  }
}

// Not unref'd: a call waiting to retry is work in progress, and must keep the process alive like the call itself
// (a one-shot script, or a server draining its queue on shutdown, would otherwise exit and lose the call).
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `Retry-After` as milliseconds: either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Runtime tokens an `HttpClient` masks at once (see `addSecret`). */
const RUNTIME_SECRETS = 16;

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** 429 and 503 say the server did not process the request: worth another try even for a POST. */
function isUnprocessedStatus(status: number): boolean {
  return status === 429 || status === 503;
}

/** Errors before a connection existed: the request was never sent (node-fetch keeps Node's `code` and `syscall`). */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

function isConnectError(error: unknown): boolean {
  const { code, erroredSysCall, syscall } = (error ?? {}) as { code?: unknown; erroredSysCall?: unknown; syscall?: unknown };
  return (typeof code === 'string' && CONNECT_CODES.has(code))
    || erroredSysCall === 'connect' || erroredSysCall === 'getaddrinfo' || syscall === 'connect' || syscall === 'getaddrinfo';
}

/**
 * The one outgoing HTTP client every channel uses: a timeout per attempt, retries with exponential backoff and
 * jitter, honouring `Retry-After` and waits read from the answer's body (capped by `maxRetryAfterMs`). A request that
 * cannot have reached the server (connect errors, 429, 503) is retried whatever its method; one that may have (a
 * timeout, a reset, another 5xx) only when it is idempotent, so a slow platform never gets the same answer twice.
 * Failures are logged with the channel and recipient and with every secret masked.
 */
export class HttpClient {
  readonly options: Required<Omit<HttpClientOptions, 'logger' | 'secrets' | 'sleep' | 'observer'>>;
  private readonly logger: Logger;
  private readonly secrets: readonly string[];
  /** Tokens obtained at run time (`addSecret`), the most recent last. */
  private readonly runtimeSecrets: string[] = [];
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly observer: HttpObserver | undefined;

  constructor(options: HttpClientOptions = {}) {
    this.options = {
      timeoutMs: options.timeoutMs ?? 10_000,
      retries: options.retries ?? 3,
      minDelayMs: options.minDelayMs ?? 250,
      maxDelayMs: options.maxDelayMs ?? 8_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
    };
    this.logger = options.logger ?? silentLogger;
    this.secrets = options.secrets ?? [];
    this.sleep = options.sleep ?? sleep;
    this.observer = options.observer;
  }

  /** The same client for one channel: its logger, its secrets masked in logs, and what it reports to (its metrics). */
  forChannel(logger: Logger, secrets: readonly string[], observer: HttpObserver | undefined = this.observer): HttpClient {
    return new HttpClient({ ...this.options, logger, secrets: [...this.secrets, ...secrets], sleep: this.sleep, observer });
  }

  /** Metrics must never break a call. */
  private report(event: 'attempt' | 'retry' | 'gaveUp', method: string, status?: number): void {
    if (!this.observer) return;
    try {
      if (event === 'attempt') this.observer.attempt(method, status);
      else this.observer[event](method);
    } catch {
      // ignored: a failing observer only loses a sample
    }
  }

  /**
   * Masks a value obtained at run time (a session token, an access token) wherever this client logs, as the
   * credentials are. The last `RUNTIME_SECRETS` are kept: a token renewed every hour must not grow the list forever.
   */
  addSecret(secret: string): void {
    if (typeof secret !== 'string' || secret.length < 4 || this.secrets.includes(secret)) return;
    const known = this.runtimeSecrets.indexOf(secret);
    if (known >= 0) this.runtimeSecrets.splice(known, 1);
    this.runtimeSecrets.push(secret);
    if (this.runtimeSecrets.length > RUNTIME_SECRETS) this.runtimeSecrets.shift();
  }

  /** Masks this client's secrets in a text. */
  mask(text: string): string {
    return maskSecrets(text, this.runtimeSecrets.length === 0 ? this.secrets : [...this.secrets, ...this.runtimeSecrets]);
  }

  async post<T = unknown>(url: string, json: unknown, options: Omit<RequestOptions, 'json' | 'method'> = {}): Promise<HttpResponse<T>> {
    return this.request<T>(url, { ...options, method: 'POST', json });
  }

  async get<T = unknown>(url: string, options: Omit<RequestOptions, 'method'> = {}): Promise<HttpResponse<T>> {
    return this.request<T>(url, { ...options, method: 'GET' });
  }

  async request<T = unknown>(url: string, options: RequestOptions = {}): Promise<HttpResponse<T>> {
    // The same few URLs are called again and again (`…/bot<token>/sendMessage`): parsed once. Never changed: a query
    // is added to a copy.
    const target = options.query ? new URL(url) : parsedUrl(url);
    if (options.query) {
      for (const [key, value] of Object.entries(options.query)) {
        if (value !== undefined) target.searchParams.set(key, String(value));
      }
    }
    const headers: Record<string, string> = { accept: 'application/json', ...lowerKeys(options.headers) };
    let body: string | Buffer | undefined = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    } else if (options.form !== undefined) {
      body = formBody(options.form);
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    }
    if (options.basicAuth) {
      const token = Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString('base64');
      headers.authorization = `Basic ${token}`;
    }
    if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;

    const method = (options.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
    const retries = options.retries ?? this.options.retries;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const idempotent = options.idempotent ?? (IDEMPOTENT_METHODS.has(method) || headers['idempotency-key'] !== undefined);
    // Built only when something is logged or thrown: a successful call needs none of it.
    let whereCache: { channel: string | undefined; recipient: string | undefined; method: string; url: string } | undefined;
    const where = () => (whereCache ??= { channel: options.channel, recipient: options.recipient, method, url: this.mask(redactQuery(target)) });

    for (let attempt = 0; ; attempt++) {
      if (options.signal?.aborted) throw new HttpRequestError(`${method} ${where().url} aborted`, { attempts: attempt });
      let response: Answer | undefined;
      let failure: string;
      let retryAfterMs: number | undefined;
      try {
        response = await exchange(target, method, headers, body, timeoutMs, options.signal, options.stream);
        this.report('attempt', method, response.status);
        if (response.stream) {
          const counter = deliveries.get();
          if (counter) counter.delivered++;
          return { status: response.status, headers: response.headers, body: undefined as T, text: '', stream: response.stream };
        }
        const text = response.text;
        const ok = response.status >= 200 && response.status < 300;
        // Whether the platform said it did not process the request (what `safeToRetry` reports to the outbox).
        let unprocessed = isUnprocessedStatus(response.status);
        let retryable = unprocessed || (idempotent && response.status >= 500);
        const headerMap = response.headers;
        const parsed = parseBody(text, headerMap);
        if (ok) {
          const problem = options.check?.(parsed, { status: response.status, headers: headerMap });
          if (!problem) {
            const counter = deliveries.get();
            if (counter) counter.delivered++;
            return { status: response.status, headers: headerMap, body: parsed as T, text };
          }
          failure = `answered ${response.status} with error "${problem.error}"`;
          retryable = problem.retry;
          unprocessed = problem.retry;
        } else {
          failure = `answered ${response.status}`;
        }
        retryAfterMs = parseRetryAfter(headerMap.get('retry-after')) ?? this.bodyRetryAfter(options, parsed, response.status, headerMap);
        const tooLong = retryable && retryAfterMs !== undefined && retryAfterMs > this.options.maxRetryAfterMs;
        if (!retryable || attempt >= retries || tooLong) {
          if (tooLong) {
            this.logger.warn({ ...where(), status: response.status, retryAfterMs, maxRetryAfterMs: this.options.maxRetryAfterMs }, 'the platform asked to wait longer than the cap; giving up');
          }
          // Masked before it is cut, so a secret across the cut cannot leave a prefix in the log.
          this.logger.warn({ ...where(), status: response.status, attempts: attempt + 1, response: this.mask(text).slice(0, 500) }, 'outgoing call failed');
          // The error is logged by channels (`{err}` logs its fields): the echoed answer is masked like the log line.
          this.report('gaveUp', method);
          throw new HttpRequestError(`${method} ${where().url} ${failure}`, { status: response.status, responseBody: this.mask(text), attempts: attempt + 1, safeToRetry: unprocessed, retryAfterMs });
        }
      } catch (error) {
        if (error instanceof HttpRequestError) throw error;
        if (response === undefined) this.report('attempt', method);
        // Aborted from outside: whoever aborted has given up on the answer, so neither a retry nor a warning.
        if (options.signal?.aborted) throw new HttpRequestError(`${method} ${where().url} aborted`, { attempts: attempt + 1, cause: error });
        const timedOut = error instanceof TimeoutError;
        const reason = timedOut
          ? `timed out after ${timeoutMs} ms`
          // As node-fetch worded it; a URL in the message is shown as it is logged, query values hidden.
          : this.mask(`request to ${where().url} failed, reason: ${String((error as Error).message).split(target.toString()).join(where().url)}`);
        failure = reason;
        // A timeout or a reset may come after the server got the request: only a connect error proves it did not.
        const unsent = !timedOut && isConnectError(error);
        const retryable = idempotent || unsent;
        if (!retryable || attempt >= retries) {
          this.logger.warn({ ...where(), error: reason, attempts: attempt + 1, ...(retryable ? {} : { retried: false }) }, 'outgoing call failed');
          this.report('gaveUp', method);
          throw new HttpRequestError(`${method} ${where().url} failed: ${reason}`, { attempts: attempt + 1, safeToRetry: unsent });
        }
      }
      const backoff = Math.min(this.options.maxDelayMs, this.options.minDelayMs * 2 ** attempt);
      const delay = retryAfterMs ?? Math.round(backoff * (0.5 + Math.random() * 0.5));
      this.logger.debug({ ...where(), attempt: attempt + 1, delayMs: delay, reason: failure }, 'retrying outgoing call');
      this.report('retry', method);
      await this.sleep(delay);
    }
  }

  /** The wait a channel reads from a failed answer's body, in ms; a hook that throws or answers nonsense gives none. */
  private bodyRetryAfter(options: RequestOptions, body: unknown, status: number, headers: Map<string, string>): number | undefined {
    if (!options.retryAfter) return undefined;
    let seconds: number | undefined;
    try {
      seconds = options.retryAfter(body, { status, headers });
    } catch {
      return undefined;
    }
    return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : undefined;
  }
}

/**
 * The transport under `HttpClient`: node's `http.request` on a keep-alive agent per scheme, which pools sockets per
 * platform host and bounds them (`MAX_SOCKETS_PER_HOST`: calls past it wait for a socket, inside their timeout).
 * Measured against node-fetch (with and without a tuned agent) and Node's bundled fetch (undici) in
 * `bench/transport.mjs`: a third of node-fetch's CPU per call. nock intercepts it in tests.
 */
export const MAX_SOCKETS_PER_HOST = 64;
const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, scheduling: 'lifo' as const, timeout: 5_000 };
const httpAgent = new http.Agent(agentOptions);
const httpsAgent = new https.Agent(agentOptions);
const MAX_REDIRECTS = 20;
/** What every call says it is, unless the caller sets its own. */
const USER_AGENT = `Switchboard/${VERSION}`;
/**
 * The largest answer read into memory (decompressed): a platform or bot server answering more is cut off with an
 * error instead of filling the heap. Streamed answers are bounded per line by their reader.
 */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers not passed on to another origin by a redirect (as node-fetch and browsers do). */
const CREDENTIAL_HEADERS = ['authorization', 'www-authenticate', 'cookie', 'cookie2'];

/** The attempt took longer than its timeout (`timeoutMs`), the answer's body included. */
class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** An answer: read whole (`text`), or, with `stream` and a matching content type, left to be read. */
interface Answer {
  status: number;
  headers: Map<string, string>;
  text: string;
  stream?: AsyncIterable<Buffer | string>;
}

/**
 * One attempt: sends the request, follows redirects (as node-fetch's `redirect: 'follow'` did) and reads the answer,
 * all within `timeoutMs` — one timer, no AbortSignal of its own. `signal` (the caller's) aborts it. A streamed answer's
 * timer and `signal` keep bounding it until its body ends.
 */
function exchange(url: URL, method: string, headers: Record<string, string>, body: string | Buffer | undefined, timeoutMs: number, signal: AbortSignal | undefined, stream: RegExp | undefined): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let request: http.ClientRequest | undefined;
    let response: Readable | undefined;
    let settled = false;
    let done = false;
    const finish = () => {
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error) => {
      if (done) return;
      finish();
      request?.destroy();
      if (!settled) {
        settled = true;
        response?.destroy();
        reject(error);
      } else {
        // A streamed body being read: its reader sees the error.
        response?.destroy(error);
      }
    };
    const onAbort = () => fail(Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' }));
    const timer = setTimeout(() => fail(new TimeoutError(`timed out after ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });

    const send = (target: URL, method: string, headers: Record<string, string>, body: string | Buffer | undefined, redirects: number): void => {
      try {
        request = open(target, method, headers, body, redirects);
      } catch (error) {
        fail(error as Error);
      }
    };
    const open = (target: URL, method: string, headers: Record<string, string>, body: string | Buffer | undefined, redirects: number): http.ClientRequest => {
      const outgoing: OutgoingHttpHeaders = { ...headers };
      outgoing['user-agent'] ??= USER_AGENT;
      if (body !== undefined) outgoing['content-length'] = Buffer.byteLength(body);
      else if (method === 'POST' || method === 'PUT') outgoing['content-length'] = 0;
      const secure = target.protocol === 'https:';
      if (!secure && target.protocol !== 'http:') throw new TypeError(`URL scheme "${target.protocol.slice(0, -1)}" is not supported`);
      const req = (secure ? https : http).request(target, { method, headers: outgoing, agent: secure ? httpsAgent : httpAgent }, (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (REDIRECT_STATUSES.has(status) && location !== undefined) {
          res.resume();
          if (redirects >= MAX_REDIRECTS) return fail(new Error(`maximum redirect reached at: ${target.toString()}`));
          let next: URL;
          try {
            next = new URL(location, target);
          } catch {
            return fail(new Error(`invalid redirect location: ${location}`));
          }
          const nextHeaders = { ...headers };
          if (next.origin !== target.origin) for (const name of CREDENTIAL_HEADERS) delete nextHeaders[name];
          // 303, and a POST answered 301 or 302, become a GET without a body; 307 and 308 keep both.
          if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
            delete nextHeaders['content-type'];
            return send(next, method === 'HEAD' ? 'HEAD' : 'GET', nextHeaders, undefined, redirects + 1);
          }
          return send(next, method, nextHeaders, body, redirects + 1);
        }
        const answerHeaders = new Map<string, string>();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) answerHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
        }
        const encoding = method === 'HEAD' || status === 204 || status === 304 ? undefined : res.headers['content-encoding']?.trim().toLowerCase();
        const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : undefined;
        const content: Readable = decoder ? res.pipe(decoder) : res;
        if (decoder) res.on('error', (error) => decoder.destroy(error));
        response = content;
        if (stream && status >= 200 && status < 300 && stream.test(answerHeaders.get('content-type') ?? '')) {
          settled = true;
          // Until the reader takes it: an error with no listener would be thrown.
          content.on('error', () => {});
          content.once('end', finish);
          content.once('close', finish);
          resolve({ status, headers: answerHeaders, text: '', stream: content });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        content.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) return fail(new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes: not read`));
          chunks.push(chunk);
        });
        content.on('error', fail);
        content.on('end', () => {
          if (done) return;
          finish();
          settled = true;
          const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          const text = bytes.toString('utf8');
          // Decoded as node-fetch's `text()` did (a TextDecoder): a byte order mark is dropped.
          resolve({ status, headers: answerHeaders, text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text });
        });
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
        });
      });
      req.on('error', fail);
      req.end(body);
      return req;
    };

    send(url, method, headers, body, 0);
  });
}

/** URLs parsed before, by their text; forgotten all at once past `PARSED_URLS` (a URL with ids in its path). */
const parsedUrls = new Map<string, URL>();
const PARSED_URLS = 256;

function parsedUrl(url: string): URL {
  let parsed = parsedUrls.get(url);
  if (parsed === undefined) {
    parsed = new URL(url);
    if (parsedUrls.size >= PARSED_URLS) parsedUrls.clear();
    parsedUrls.set(url, parsed);
  }
  return parsed;
}

function lowerKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const lower: Record<string, string> = {};
  if (headers) for (const key of Object.keys(headers)) lower[key.toLowerCase()] = headers[key]!;
  return lower;
}

function formBody(form: NonNullable<RequestOptions['form']>): string {
  if (form instanceof URLSearchParams) return form.toString();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) params.append(key, String(item));
    else params.append(key, String(value));
  }
  return params.toString();
}

function parseBody(text: string, headers: Map<string, string>): unknown {
  const type = headers.get('content-type') ?? '';
  if (text !== '' && /[/+]json\b/i.test(type)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/** Query values are often tokens (`access_token=`): logs show the names only. */
function redactQuery(url: URL): string {
  const copy = new URL(url.toString());
  // Credentials in the URL itself (`https://user:pass@host`) are never logged either.
  if (copy.username) copy.username = '…';
  if (copy.password) copy.password = '…';
  for (const key of [...copy.searchParams.keys()]) copy.searchParams.set(key, '…');
  return copy.toString().replace(/%E2%80%A6/g, '…');
}
