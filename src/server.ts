import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa, { type Context, type Next } from 'koa';
import cors from '@koa/cors';
import { Router } from '@koa/router';
import { accessLog } from './access.js';
import type { Bot } from './bot.js';
import { channelPrefix, type InputChannel } from './channel.js';
import type { BotMessage } from './message.js';
import { ConfigError, ForbiddenError, HttpError, UnsupportedMediaTypeError } from './errors.js';
import { HttpClient } from './http.js';
import { bodyIntake } from './intake.js';
import { channelLogger, silentLogger, type Logger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import { MemoryOutbox, type Outbox } from './outbox.js';
import { Pipeline, type PipelineLimits } from './pipeline.js';
import { secretKeys } from './schema.js';
import { VERIFIES_FIRST } from './signature.js';
import { MemoryStore, type Store } from './store.js';
import { RedisStore } from './redis.js';
import { SharedInbox } from './inbox.js';
import { ANSWER_ROUTE, answerChangeHandler, PROACTIVE_ROUTE, proactiveHandler } from './proactive.js';
import { VERSION } from './version.js';

export interface ServerOptions {
  channels: InputChannel[];
  bot: Bot;
  logger?: Logger;
  store?: Store;
  /** The outgoing client channels share (tests pass one with short retry delays). */
  http?: HttpClient;
  /** Allowed CORS origins; `*` allows any. None: no CORS headers. */
  cors?: string[];
  /**
   * Largest accepted request body on every route, as bytes or a string such as `1mb`; overrides each channel's own
   * limit (`static bodyLimit`). Unset: each channel's limit (1mb for a channel that declares none), 64kb elsewhere.
   */
  bodyLimit?: number | string;
  /** Dedup window for platform message ids. */
  dedupTtlMs?: number;
  /** Serve a channel's web chat page (GET /webhooks/<name>/webchat) at /webchat too. Default true. */
  webchat?: boolean;
  /**
   * Trust `X-Forwarded-*` and `Forwarded:` (RFC 7239) from a reverse proxy for the client's scheme, host and address.
   * Default false: anyone can send these headers, so they only count when a proxy in front sets them.
   */
  trustProxy?: boolean;
  /** Bounds on the message queues and on concurrent bot calls (see `PipelineLimits` for the defaults). */
  limits?: PipelineLimits;
  /** How long the bot (of any kind) has to answer one message; past it the apology is sent. Default 30 s. */
  botTimeoutMs?: number;
  /** What the user is told when the bot throws or times out. Default: nothing (the CLI's default: `DEFAULT_APOLOGY`). */
  botApology?: BotMessage[];
  /**
   * How long a client has to send a whole request, headers and body (default 10 s; headers alone: half of it, at most
   * 5 s). A client trickling its body is disconnected when it runs out; the time the bot takes to answer is not counted.
   */
  requestTimeoutMs?: number;
  /** Open connections accepted at once (WebSockets included); past it, new connections are closed. Default 4096. */
  maxConnections?: number;
  /**
   * Prometheus metrics at `GET /metrics`: on the main port (default, `true`), on a port of their own (`{ port }`, on
   * the same interface as the server; the main port then has no `/metrics`), or none (`false`).
   */
  metrics?: boolean | MetricsOptions;
  /**
   * How long `close()` waits for in-flight requests, queued messages and channels' background work before it gives
   * up on them (each abandoned message is logged at error). Default 25 s, inside Kubernetes' 30 s
   * `terminationGracePeriodSeconds`.
   */
  shutdownGraceMs?: number;
  /**
   * How long an answer the platform could not take (connect error, 429, 503) is kept and retried, in ms (default
   * 10 minutes); 0 turns the outbox off (such an answer is dropped, logged). Ignored when `outbox` is given.
   */
  outboxTtlMs?: number;
  /** The outbox itself (tests pass one with a short backoff). Default: a `MemoryOutbox` with `outboxTtlMs`. */
  outbox?: Outbox;
  /**
   * With a Redis store: keep every message a channel acknowledges before the bot answered in the durable, ordered inbox
   * shared by the instances (`SharedInbox`). Default true; false keeps messages in this process (deduplication is still
   * shared).
   */
  sharedInbox?: boolean;
  /**
   * `--api-token`: the bearer token of the API that sends messages first (`POST /api/v1/conversations/{channel}/
   * {recipient}/messages`) and edits or deletes them (`PATCH`, `DELETE .../messages/{id}`). Unset: that API does not
   * exist (404).
   */
  apiToken?: string;
  /** `--inbox-claim-ttl`: how long an instance's claim on a sender outlives its last heartbeat. Default 15 s. */
  inboxClaimTtlMs?: number;
  /** Retry timing of answers of shared messages (tests shorten it); the ttl is `outboxTtlMs`. */
  sharedRetry?: { minDelayMs?: number; maxDelayMs?: number };
  /** How channels' registrations with their platforms (`InputChannel.register`) are retried (tests shorten it). */
  registration?: RegistrationRetry;
}

/** Retries of a channel's registration with its platform: the delay doubles from `minDelayMs` up to `maxDelayMs`. */
export interface RegistrationRetry {
  /** Attempts in all, the first included; after the last failure the channel stays not ready. Default 12 (the waits add up to at most about 6 minutes). */
  attempts?: number;
  /** Default 1 s. */
  minDelayMs?: number;
  /** Default 60 s. */
  maxDelayMs?: number;
}

export interface MetricsOptions {
  /** Serve `/metrics` on this port instead of the main one (0: any free port; see `metricsAddress`). */
  port: number;
}

/** What `close()` left undone when its grace ran out: nothing, after a clean shutdown. */
export interface ShutdownReport {
  /**
   * Messages queued or with the bot, answers kept in the outbox, channels' background work and HTTP requests still
   * open at the grace's end.
   */
  abandoned: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 4_096;
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;
/** The body limit of a channel that declares none (third-party channels), and of the host's own routes. */
export const DEFAULT_CHANNEL_BODY_LIMIT = '1mb';
export const HOST_BODY_LIMIT = '64kb';
export const DEFAULT_REGISTRATION_RETRY: Required<RegistrationRetry> = { attempts: 12, minDelayMs: 1_000, maxDelayMs: 60_000 };

/** Content types the host parses; anything else with a body is answered 415. */
const BODY_TYPES = ['json', 'urlencoded', 'text/plain', '+json'];
/** `application/json` with no parameter or a charset: one of `BODY_TYPES` without asking type-is. */
const PLAIN_JSON = /^application\/json(?:;\s*charset=[\w-]+)?$/i;

/**
 * The Koa host: one error middleware, CORS, the body intake (bytes kept for signatures, parsed before the route or,
 * on routes that verify first, after verification), the host's health routes, and every channel's router under
 * `/webhooks/<name>/`.
 */
export class SwitchboardServer {
  readonly app: Koa;
  readonly httpServer: Server;
  readonly pipeline: Pipeline;
  readonly channels: InputChannel[];
  readonly logger: Logger;
  private readonly bot: Bot;
  private readonly store: Store;
  /** `close()`'s default grace (`ServerOptions.shutdownGraceMs`). */
  shutdownGraceMs: number;
  private closing: Promise<ShutdownReport> | undefined;
  /** Set when `close()` starts: readiness answers 503 and responses close their connection. */
  private draining = false;
  /** Set once every channel's `start()` has run. */
  private started = false;
  /** Channels whose `start()` threw, with a reason safe to show. */
  private readonly startFailures = new Map<string, string>();
  /** Channels whose registration with their platform (`register()`) has not succeeded yet: why, safe to show. */
  private readonly registrations = new Map<string, string>();
  /** Stops each channel's registration: aborted on shutdown, or when the channel reports itself ready. */
  private readonly registrationStops = new Map<string, AbortController>();
  private readonly registrationRetry: Required<RegistrationRetry>;
  /** Settles once every registration made its first attempt (see `registering()`). */
  private firstRegistrations: Promise<void> = Promise.resolve();
  /** HTTP requests Koa is serving, until their response is written. */
  private readonly inflight = new Set<InFlight>();
  /** Channels' background work (`ChannelContext.track`), settled promises that never reject. */
  private readonly background = new Map<Promise<void>, Record<string, unknown>>();
  private readonly webhooks = new Set<string>();
  private webchatRoute: string | undefined;
  /** Each channel mounted, by URL prefix: what the host's middleware needs of it for a request under its prefix. */
  private readonly mounted = new Map<string, MountedChannel>();
  /** Undefined with `metrics: false`. */
  readonly metrics: ServerMetrics | undefined;
  private readonly metricsPort: number | undefined;
  private metricsServer: Server | undefined;

  constructor(options: ServerOptions) {
    this.logger = options.logger ?? silentLogger;
    this.bot = options.bot;
    this.channels = options.channels;
    const store = options.store ?? new MemoryStore();
    this.store = store;
    this.shutdownGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    this.registrationRetry = { ...DEFAULT_REGISTRATION_RETRY, ...options.registration };
    const http = options.http ?? new HttpClient({ logger: this.logger });
    const metricsOption = options.metrics ?? true;
    this.metricsPort = typeof metricsOption === 'object' ? metricsOption.port : undefined;
    this.metrics = metricsOption === false ? undefined : new ServerMetrics(this.channels);
    // The pipeline calls the bot through its timing proxy (the same object otherwise: `instanceof`, `close` unchanged).
    const bot = this.metrics?.timedBot(options.bot) ?? options.bot;
    const inbox = store instanceof RedisStore && options.sharedInbox !== false ? store.inbox({ claimTtlMs: options.inboxClaimTtlMs }) : undefined;
    this.pipeline = new Pipeline({ ...options.limits, bot, store, logger: this.logger, dedupTtlMs: options.dedupTtlMs,
      botTimeoutMs: options.botTimeoutMs, apology: options.botApology,
      outbox: options.outbox ?? (options.outboxTtlMs === 0 ? undefined : new MemoryOutbox({ ttlMs: options.outboxTtlMs, logger: this.logger })),
      inbox, sharedRetry: { ...options.sharedRetry, ttlMs: options.outboxTtlMs } });
    if (inbox) {
      for (const channel of this.channels) {
        // A channel written before reply addresses answers through a live object, which only this process has.
        if (typeof (channel as { outputChannel?: unknown }).outputChannel !== 'function') {
          this.logger.warn({ channel: channel.name() }, 'this channel has no outputChannel(replyTo): its messages are processed in this process only, not kept in the shared inbox (lost if the process dies before answering)');
        }
      }
    }
    this.metrics?.watch(this.pipeline);

    // Created first so channels (socket.io) can attach to it before the first request. A slow client must not hold a
    // socket: Node checks the timeouts every `connectionsCheckingInterval` (30 s by default, which let a trickled body
    // hold a socket for ~54 s), so it checks every second here.
    const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.httpServer = createHttpServer({
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 5_000),
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, requestTimeout)),
    });
    this.httpServer.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;

    const app = new Koa({ proxy: options.trustProxy === true });
    app.silent = true;
    app.on('error', (error: Error & { status?: number }) => {
      // Errors after the response started (a client that hung up): nothing to answer, only to note.
      this.logger.debug({ err: error }, 'request error after response');
    });
    app.use(accessLog(this.logger));
    // Outside the error middleware: it sees each webhook delivery's final status.
    if (this.metrics) app.use(this.metrics.requests());
    // Errors become answers; during the drain, every answer closes its connection.
    app.use(errorMiddleware(this.logger, () => this.draining));
    // The checks every request passes, in this order, as few middleware as the options allow (each one is a promise
    // and a context switch per request): slashes collapsed, a refused origin noted, then (with --cors) refused and
    // CORS headers, then the content type checked.
    const noteRefusedOrigin = refusedOriginCheck(options.cors ?? [], this.logger);
    if (options.cors && options.cors.length > 0) {
      app.use((ctx: Context, next: Next) => {
        collapseSlashes(ctx);
        noteRefusedOrigin(ctx);
        return next();
      });
      app.use(refuseOrigins(options.cors));
      app.use(corsMiddleware(options.cors));
      app.use((ctx: Context, next: Next) => {
        checkContentType(ctx);
        return next();
      });
    } else {
      app.use((ctx: Context, next: Next) => {
        collapseSlashes(ctx);
        noteRefusedOrigin(ctx);
        checkContentType(ctx);
        return next();
      });
    }
    app.use(
      bodyIntake({
        limitFor: (ctx) => options.bodyLimit ?? this.mounted.get(channelPrefix(ctx.path))?.bodyLimit ?? HOST_BODY_LIMIT,
        verifiesFirst: (ctx) => {
          const router = this.mounted.get(channelPrefix(ctx.path))?.verifyingRouter;
          // The first layer that would run for this request is the route's own, starting with `requireVerified`.
          const first = router?.match(ctx.path, ctx.method).pathAndMethod[0];
          return first !== undefined && verifiesFirst(first);
        },
      }),
    );

    const hostRouter = new Router();
    const health = (ctx: Context) => {
      ctx.body = { status: 'ok', version: VERSION, channels: this.channels.map((c) => c.name()) };
    };
    hostRouter.get('/', health);
    hostRouter.get('/health', health);
    if (this.metrics && this.metricsPort === undefined) {
      const metrics = this.metrics;
      hostRouter.get('/metrics', async (ctx: Context) => {
        ctx.type = metrics.contentType;
        ctx.body = await metrics.text();
      });
    }
    if (options.apiToken !== undefined) {
      if (options.apiToken.trim().length < 16) throw new ConfigError('--api-token must be at least 16 characters (a long random string)');
      const api = { token: options.apiToken, channels: this.channels, pipeline: this.pipeline, metrics: this.metrics, logger: this.logger };
      hostRouter.post(PROACTIVE_ROUTE, proactiveHandler(api));
      hostRouter.patch(ANSWER_ROUTE, answerChangeHandler(api, 'edit'));
      hostRouter.delete(ANSWER_ROUTE, answerChangeHandler(api, 'delete'));
    }
    hostRouter.get('/health/live', (ctx: Context) => {
      ctx.body = { status: 'ok' };
    });
    hostRouter.get('/health/ready', async (ctx: Context) => {
      const reasons = await this.notReadyReasons();
      ctx.status = reasons.length === 0 ? 200 : 503;
      ctx.body = reasons.length === 0 ? { status: 'ready' } : { status: 'not ready', reasons };
    });
    // None of the host's routes is under /webhooks/: a channel's request skips matching them.
    const hostRoutes = hostRouter.routes();
    const hostMethods = hostRouter.allowedMethods();
    app.use((ctx: Context, next: Next) => (ctx.path.startsWith('/webhooks/') ? next() : hostRoutes(ctx as never, () => hostMethods(ctx as never, next))));

    // /webchat is the first channel's web chat page (the socketio channel's), under a short address. A request under
    // /webhooks/<name>/ goes to that channel's routes alone (looked up by name, not tried against every channel's in
    // turn: with all the built-in channels configured, the last one's requests cost 16 % more CPU that way), and
    // errors inside them are logged with the channel's logger (its name bound, its secrets redacted).
    app.use((ctx: Context, next: Next) => {
      if (this.webchatRoute && ctx.path === '/webchat' && (ctx.method === 'GET' || ctx.method === 'HEAD')) ctx.path = this.webchatRoute;
      const channel = this.mounted.get(channelPrefix(ctx.path));
      if (!channel) return next();
      ctx.state.log = channel.log;
      return channel.routes(ctx, next);
    });

    const seen = new Map<string, InputChannel>();
    for (const channel of this.channels) {
      const name = channel.name();
      if (seen.has(name)) throw new Error(`two channels claim the prefix /webhooks/${name}/`);
      seen.set(name, channel);
      const secrets = secretKeys((channel.constructor as { credentials?: never }).credentials);
      const log = channelLogger(this.logger, name, secrets);
      // A secret mapping (id → secret) masks each of its values.
      const secretValues = secrets
        .map((key) => (channel as { credentials?: Record<string, unknown> }).credentials?.[key])
        .flatMap((v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.values(v) : [v]))
        .filter((v): v is string => typeof v === 'string');
      channel.attach?.({
        logger: log,
        http: http.forChannel(log, secretValues, this.metrics?.httpObserver(name)),
        store,
        ...(store instanceof RedisStore ? { redis: store.connection() } : {}),
        server: this.httpServer,
        requestShutdown: () => this.requestShutdown(),
        track: (work, about) => this.track(work, log, name, about),
        apology: this.pipeline.apology,
        botTimeoutMs: this.pipeline.botTimeoutMs,
        ready: () => this.registered(name),
      });
      // The channel rebuilds each message's output from its reply address (`outputChannel(replyTo)`).
      const onNewMessage = this.pipeline.handlerFor(log, channel);
      const router = channel.router(this.metrics?.countingHandler(name, onNewMessage) ?? onNewMessage);
      router.prefix(`/webhooks/${name}`);
      const webhook = `/webhooks/${name}/webhook`;
      if (router.stack.some((layer) => layer.path === webhook && layer.methods.includes('POST'))) this.webhooks.add(name);
      const page = `/webhooks/${name}/webchat`;
      if (options.webchat !== false && this.webchatRoute === undefined && router.stack.some((layer) => layer.path === page && layer.methods.includes('GET'))) {
        this.webchatRoute = page;
      }
      const routes = router.routes();
      const methods = router.allowedMethods();
      this.mounted.set(name, {
        log,
        routes: (ctx, next) => routes(ctx as never, () => methods(ctx as never, next)),
        bodyLimit: (channel.constructor as { bodyLimit?: number | string }).bodyLimit ?? DEFAULT_CHANNEL_BODY_LIMIT,
        // Scanned once: whether any of the channel's routes verifies before its body is parsed (see `requireVerified`).
        verifyingRouter: router.stack.some(verifiesFirst) ? router : undefined,
      });
    }

    this.app = app;
    const callback = app.callback();
    // Each request is counted until its response is written: the drain waits for it before closing connections.
    this.httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const request: InFlight = { method: req.method ?? '', url: req.url ?? '', res, done: undefined };
      this.inflight.add(request);
      res.once('close', () => this.inflight.delete(request));
      void callback(req, res);
    });
  }

  private track(work: Promise<unknown>, log: Logger, channel: string, about: Record<string, unknown> = {}): void {
    const settled: Promise<void> = work.then(
      () => undefined,
      (error: unknown) => log.error({ err: error, ...about }, 'background work failed'),
    );
    this.background.set(settled, { ...about, channel });
    void settled.then(() => this.background.delete(settled));
  }

  /** Why the server should not get traffic now; empty when it should. */
  private async notReadyReasons(): Promise<string[]> {
    const reasons: string[] = [];
    if (!this.httpServer.listening) reasons.push('not listening');
    if (this.draining) reasons.push('shutting down');
    if (!this.started && !this.draining) reasons.push('channels starting');
    for (const channel of this.channels) {
      const name = channel.name();
      const failure = this.startFailures.get(name);
      if (failure !== undefined) reasons.push(`${name}: ${failure}`);
      const registration = this.registrations.get(name);
      if (registration !== undefined) reasons.push(`${name}: ${registration}`);
      let ready: unknown = true;
      try {
        ready = typeof channel.ready === 'function' ? channel.ready() : true;
      } catch {
        ready = 'readiness check failed';
      }
      // A failed registration usually marks the channel not ready with the same words: named once.
      if (typeof ready === 'string' && ready !== registration) reasons.push(`${name}: ${ready}`);
      else if (ready === false) reasons.push(`${name}: not ready`);
    }
    if (this.store.ping) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2_000)));
      try {
        await Promise.race([this.store.ping(), timeout]);
      } catch (error) {
        this.logger.warn({ err: error }, 'readiness: the store cannot be reached');
        reasons.push('store unreachable');
      } finally {
        clearTimeout(timer);
      }
    }
    return reasons;
  }

  /** `/webchat` when a channel serves a web chat page and it is enabled. */
  get webchatPath(): string | undefined {
    return this.webchatRoute ? '/webchat' : undefined;
  }

  /** Whether the channel has a `POST /webhooks/<name>/webhook` route (the console channel has none). */
  hasWebhook(name: string): boolean {
    return this.webhooks.has(name);
  }

  /** What to do when a channel asks the host to stop; the CLI sets it to its signal handler. Default: close. */
  onShutdownRequest: (() => void) | undefined;

  private requestShutdown(): void {
    if (this.onShutdownRequest) this.onShutdownRequest();
    else void this.close();
  }

  /**
   * Listens, then starts every channel at once (local setup: socket.io attaches here), and resolves with the bound
   * address. Registrations with the platforms (`register()`) only begin then, in the background: a platform that
   * never answers delays neither the listener, nor any route, nor another channel (`registering()` waits for them).
   */
  async listen(port = 5005, host?: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.httpServer.once('error', onError);
      this.httpServer.listen(port, host, () => {
        this.httpServer.off('error', onError);
        resolve();
      });
    });
    const results = await Promise.allSettled(this.channels.map(async (channel) => channel.start?.()));
    // A configuration problem stops startup (the first channel's, in the file's order); anything else (a platform that
    // cannot be reached) leaves the channel not ready, named by GET /health/ready, while the others serve.
    const configError = results.find((result) => result.status === 'rejected' && result.reason instanceof ConfigError);
    if (configError) throw (configError as PromiseRejectedResult).reason;
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') return;
      const channel = this.channels[index]!;
      this.startFailures.set(channel.name(), 'failed to start');
      this.channelLog(channel).error({ err: result.reason }, 'channel failed to start');
    });
    this.started = true;
    // Messages of the shared inbox are taken once every channel can answer them.
    if (!this.draining) this.pipeline.start();
    if (this.metrics && this.metricsPort !== undefined) await this.listenMetrics(this.metricsPort, host);
    if (!this.draining) {
      const registering = this.channels.filter((channel) => typeof channel.register === 'function' && !this.startFailures.has(channel.name()));
      this.firstRegistrations = Promise.all(registering.map((channel) => this.register(channel))).then(() => undefined);
    }
    return this.httpServer.address() as AddressInfo;
  }

  /**
   * Resolves once every channel's registration with its platform has made its first attempt, succeeded or not (the
   * retries go on in the background). For tests and tools that want the startup calls made; the server never waits.
   */
  registering(): Promise<void> {
    return this.firstRegistrations;
  }

  /** The channel's own logger redacts its secret keys; a channel that does not extend InputChannel may have none. */
  private channelLog(channel: InputChannel): Logger {
    return (channel.logger as Logger | undefined) ?? this.logger.child({ channel: channel.name() });
  }

  /**
   * Runs the channel's `register()` until it succeeds, with backoff, at most `registration.attempts` times; readiness
   * names the channel meanwhile. Resolves after the first attempt.
   */
  private register(channel: InputChannel): Promise<void> {
    const name = channel.name();
    const log = this.channelLog(channel);
    const stop = new AbortController();
    this.registrationStops.set(name, stop);
    this.registrations.set(name, 'registering with the platform');
    const { attempts, minDelayMs, maxDelayMs } = this.registrationRetry;
    let firstDone!: () => void;
    const first = new Promise<void>((resolve) => (firstDone = resolve));
    const loop = async (): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        let reason: string | undefined;
        let final = false;
        try {
          reason = await channel.register!(stop.signal);
        } catch (error) {
          if (stop.signal.aborted) return;
          // A configuration the platform refuses is not going to change by waiting.
          final = error instanceof ConfigError;
          reason = final ? (error as Error).message : 'registration with the platform failed';
          log.error({ err: error }, 'registration with the platform failed');
        }
        if (stop.signal.aborted) return;
        firstDone();
        if (reason === undefined) {
          this.registrations.delete(name);
          if (attempt > 1) log.info({ attempts: attempt }, 'registered with the platform');
          return;
        }
        this.registrations.set(name, reason);
        if (final || attempt >= attempts) {
          log.error({ attempts: attempt, reason }, 'registration with the platform: giving up, the channel stays not ready');
          return;
        }
        // Jittered, so instances restarted together do not call the platform in step.
        const delay = Math.round(Math.min(maxDelayMs, minDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() * 0.5));
        log.warn({ attempt, reason, retryInMs: delay }, 'registration with the platform failed; trying again');
        if (!(await pause(delay, stop.signal))) return;
      }
    };
    void loop().finally(() => {
      firstDone();
      if (this.registrationStops.get(name) === stop) this.registrationStops.delete(name);
    });
    return first;
  }

  /** The channel reported itself ready: a registration still being retried is done (it registered by other means). */
  private registered(name: string): void {
    this.registrations.delete(name);
    const stop = this.registrationStops.get(name);
    if (!stop) return;
    this.registrationStops.delete(name);
    stop.abort();
  }

  /** Where `/metrics` listens when it has a port of its own (`metrics: { port }`), once listening. */
  get metricsAddress(): AddressInfo | undefined {
    return (this.metricsServer?.address() ?? undefined) as AddressInfo | undefined;
  }

  /** `--metrics-port`: a plain server answering `GET /metrics` and nothing else, so the main port need not expose it. */
  private async listenMetrics(port: number, host: string | undefined): Promise<void> {
    const metrics = this.metrics!;
    const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?', 1)[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'only GET /metrics here' }));
        return;
      }
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (error: unknown) => {
          this.logger.error({ err: error }, 'collecting metrics failed');
          res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal error' }));
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      // Marked, so the CLI can name the right option in its message.
      const onError = (error: Error) => reject(Object.assign(error, { metricsPort: port }));
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (error) => this.logger.warn({ err: error }, 'metrics server error'));
    this.metricsServer = server;
  }

  /**
   * Drains, then stops: readiness answers 503 at once, while the listener keeps serving until no request is open, no
   * message is queued or with the bot, no answer waits in the outbox and no channel's background work is left; then it stops accepting connections,
   * waits for what is still open on the existing ones, and closes channels, the bot and the store. After `graceMs`
   * (default `shutdownGraceMs`) it stops waiting and logs at error each message, request and background task it
   * abandons.
   */
  close(graceMs = this.shutdownGraceMs): Promise<ShutdownReport> {
    this.closing ??= (async () => {
      this.draining = true;
      for (const stop of this.registrationStops.values()) stop.abort();
      this.pipeline.beginShutdown();
      const deadline = Date.now() + graceMs;
      let settled = await this.settle(deadline);
      const closed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
      this.httpServer.closeIdleConnections?.();
      if (settled) settled = await this.settle(deadline);
      const abandoned = settled ? 0 : this.logAbandoned(graceMs);
      for (const channel of this.channels) {
        try {
          await channel.close?.();
        } catch (error) {
          this.logger.warn({ err: error, channel: channel.name() }, 'channel failed to close');
        }
      }
      await this.bot.close?.();
      this.httpServer.closeAllConnections?.();
      await closed;
      await this.closeMetrics();
      await this.pipeline.inbox?.close();
      await this.pipeline.store.close?.();
      return { abandoned };
    })();
    return this.closing;
  }

  /** The metrics port stays up through the drain (a scrape then shows it) and closes last. */
  private async closeMetrics(): Promise<void> {
    const server = this.metricsServer;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** Waits until nothing is in flight; false when `deadline` came first. */
  private async settle(deadline: number): Promise<boolean> {
    for (;;) {
      const work: Array<Promise<unknown>> = [...[...this.inflight].map(closed), ...this.background.keys()];
      if (this.pipeline.activeSenders > 0 || this.pipeline.sharedSenders > 0) work.push(this.pipeline.drain());
      if (this.pipeline.outbox && this.pipeline.outbox.size > 0) work.push(this.pipeline.outbox.drain());
      if (work.length === 0) return true;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const expired = await Promise.race([
        Promise.all(work).then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), remaining))),
      ]);
      clearTimeout(timer);
      if (expired) return false;
    }
  }

  /** Logs, at error, everything the shutdown gives up on; returns how many. */
  private logAbandoned(graceMs: number): number {
    const all = this.pipeline.pending();
    // A shared message stays in the inbox: another instance (or this one, restarted) sends what is left of it.
    const pending = all.filter((message) => !message.shared);
    for (const message of all) {
      if (message.shared) {
        this.logger.warn({ channel: message.channel, sender: message.sender, messageId: message.messageId, graceMs }, 'shutdown grace expired: message left in the shared inbox for another instance');
        continue;
      }
      this.logger.error(
        { channel: message.channel, sender: message.sender, messageId: message.messageId, state: message.withBot ? 'with the bot' : 'queued', graceMs },
        'shutdown grace expired: message abandoned',
      );
    }
    // Each answer still in the outbox is logged (at error) by the outbox as it gives it up.
    const answers = this.pipeline.outbox?.close().length ?? 0;
    for (const about of this.background.values()) this.logger.error({ ...about, graceMs }, 'shutdown grace expired: background work abandoned');
    for (const { method, url } of this.inflight) this.logger.error({ method, path: url.split('?', 1)[0]!, graceMs }, 'shutdown grace expired: request abandoned');
    return pending.length + answers + this.background.size + this.inflight.size;
  }
}

/** An HTTP request Koa is serving, until its response is written (or its client is gone). */
/** A channel as the host's middleware sees it (`SwitchboardServer.mounted`). */
interface MountedChannel {
  /** Its logger (name bound, secrets redacted): errors inside its routes are logged with it. */
  log: Logger;
  /** Its router's routes, then its allowed-methods answers (405/501). */
  routes: (ctx: Context, next: Next) => Promise<unknown>;
  /** The largest body its routes accept (`static bodyLimit`). */
  bodyLimit: number | string;
  /** Its router, when at least one route verifies before its body is parsed. */
  verifyingRouter: Router | undefined;
}

interface InFlight {
  method: string;
  /** As it came (Koa rewrites `req.url` when a route collapses slashes). */
  url: string;
  res: ServerResponse;
  /** Made only when a drain waits for it: a request served in normal times needs no promise of its own. */
  done: Promise<void> | undefined;
}

/** Settles when the request's response is closed (it is in `inflight` only until then). */
function closed(request: InFlight): Promise<void> {
  return (request.done ??= new Promise<void>((resolve) => request.res.once('close', () => resolve())));
}

/** Waits `ms`; false, at once, when `signal` aborts first. The timer does not keep the process alive. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = (waited: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(waited);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A route (not a `router.use` middleware) whose first middleware is `requireVerified`. */
function verifiesFirst(layer: { methods: string[]; stack: unknown[] }): boolean {
  return layer.methods.length > 0 && (layer.stack[0] as { [VERIFIES_FIRST]?: unknown } | undefined)?.[VERIFIES_FIRST] === true;
}

/**
 * The one place errors become responses: `{"error": message}` with the error's status; never a stack trace. While
 * `draining()`, every response (an error's too) says `Connection: close`.
 */
function errorMiddleware(logger: Logger, draining: () => boolean) {
  return async function errors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: `no route for ${ctx.method} ${ctx.path}` };
      } else if (ctx.status === 405 && ctx.body === undefined) {
        ctx.status = 405;
        ctx.body = { error: `method ${ctx.method} not allowed here` };
      }
    } catch (thrown) {
      const error = thrown as Error & { status?: number; statusCode?: number; expose?: boolean; headers?: Record<string, string> };
      const status = error.status ?? error.statusCode;
      const known = typeof status === 'number' && status >= 400 && status < 600;
      if (known && (error instanceof HttpError || error.expose)) {
        ctx.status = status;
        ctx.body = { error: error.message };
        for (const [name, value] of Object.entries(error.headers ?? {})) ctx.set(name, value);
        if (status >= 500) logger.error({ err: error, path: ctx.path }, 'request failed');
        return;
      }
      const log = (ctx.state.log as Logger | undefined) ?? logger;
      log.error({ err: error, method: ctx.method, path: ctx.path }, 'unexpected error while handling a request');
      ctx.status = known && status >= 500 ? status : 500;
      ctx.body = { error: 'internal error' };
    } finally {
      // During the drain every response closes its connection, so keep-alive clients reconnect to another instance.
      if (draining()) ctx.set('Connection', 'close');
    }
  };
}

/** Requests with a body must be JSON, a form or plain text; a body without a content type is taken as JSON. */
function checkContentType(ctx: Context): void {
  const length = ctx.request.length;
  const hasBody = (length !== undefined && length > 0) || ctx.get('transfer-encoding') !== '';
  if (hasBody && !['GET', 'HEAD', 'OPTIONS', 'DELETE'].includes(ctx.method)) {
    if (!ctx.get('content-type')) ctx.req.headers['content-type'] = 'application/json';
    else if (!PLAIN_JSON.test(ctx.get('content-type')) && !ctx.is(BODY_TYPES)) {
      throw new UnsupportedMediaTypeError(`unsupported content type "${ctx.get('content-type').split(';')[0]}"; send JSON, a form or plain text`);
    }
  }
}

/**
 * `//webhooks/rest/webhook` is what a client sends when its configured host ends with `/` (Chatroom does): runs of
 * slashes in the path are collapsed before routing, the query string left as it is.
 */
function collapseSlashes(ctx: Context): void {
  if (ctx.path.includes('//')) ctx.path = ctx.path.replace(/\/{2,}/g, '/');
}

/** How many refused origins are remembered, so each is logged once without letting the set grow without bound. */
const REMEMBERED_ORIGINS = 1_000;
const BROWSER_ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[a-z0-9.\-[\]:]{1,255}$/i;

/**
 * A browser on a page of another origin gets no CORS headers unless `--cors` lists it, and then fails in the page
 * with nothing in the server's logs. So the first request of each refused origin logs, at info, the option to add.
 */
export function refusedOriginLog(origins: string[], logger: Logger, remember = REMEMBERED_ORIGINS) {
  const check = refusedOriginCheck(origins, logger, remember);
  return async function logRefusedOrigin(ctx: Context, next: Next): Promise<void> {
    check(ctx);
    await next();
  };
}

/** What `refusedOriginLog` does before it calls the next middleware. */
function refusedOriginCheck(origins: string[], logger: Logger, remember = REMEMBERED_ORIGINS) {
  const allowed = new Set(origins);
  const logged = new Set<string>();
  return function noteRefusedOrigin(ctx: Context): void {
    const origin = ctx.get('origin');
    // No Origin (a platform's webhook, curl): nothing a browser could be refused.
    if (origin === '') return;
    const refused = !allowed.has('*') && !allowed.has(origin) && !isOwnOrigin(origin, ctx);
    // Only what a browser sends (`scheme://host[:port]`): an arbitrary header value must not write its own advice.
    if (refused && BROWSER_ORIGIN.test(origin) && !logged.has(origin)) {
      if (logged.size >= remember) logged.delete(logged.values().next().value!);
      logged.add(origin);
      logger.info({ origin }, `origin ${origin} is not allowed; start with --cors ${origin} to allow it`);
    }
  };
}

/**
 * A page of this server posting to it (the web chat) sends its own origin; that needs no CORS. Compared by host (the
 * `Host` a browser sent), not scheme: behind a TLS proxy without --trust-proxy the connection is `http` while the
 * page is `https`, and a browser cannot send another site's `Host`.
 */
function isOwnOrigin(origin: string, ctx: Context): boolean {
  if (!BROWSER_ORIGIN.test(origin)) return false;
  return origin.slice(origin.indexOf('://') + 3).toLowerCase() === ctx.host.toLowerCase();
}

/**
 * With `--cors`, CORS headers alone are not access control: a browser still sends a `text/plain` or form POST from
 * any page and only hides the answer. So a request whose `Origin` is present and neither allowed nor the server's own
 * is refused (403) before any channel sees it. Requests without `Origin` (platforms' webhooks, curl) pass.
 */
function refuseOrigins(origins: string[]) {
  const allowed = new Set(origins);
  return async function refuseOrigin(ctx: Context, next: Next): Promise<void> {
    const origin = ctx.get('origin');
    if (origin !== '' && !allowed.has('*') && !allowed.has(origin) && !isOwnOrigin(origin, ctx)) {
      throw new ForbiddenError('origin not allowed; the server must be started with --cors for it');
    }
    await next();
  };
}

function corsMiddleware(origins: string[]) {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return cors({
    origin: (ctx: Context) => {
      const origin = ctx.get('origin');
      if (any) return '*';
      return allowed.has(origin) ? origin : '';
    },
    allowMethods: ['GET', 'POST', 'OPTIONS'],
  });
}
