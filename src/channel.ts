import type { Server, ServerResponse } from 'node:http';
import type { Redis, RedisOptions } from 'ioredis';
import { Router } from '@koa/router';
import { HttpClient } from './http.js';
import { silentLogger, type Logger } from './logger.js';
import type { BotMessage, ReplyAddress, UserMessage } from './message.js';
import type { OutputChannel } from './output.js';
import type { Accepted, OnNewMessage, Outcome } from './pipeline.js';
import { parseCredentials, type CredentialsSchema } from './schema.js';
import { MemoryStore, type Store } from './store.js';

export { Router };

/**
 * The Redis the host shares state through (`--redis`), for a channel that needs connections of its own (socket.io's
 * adapter needs a publishing and a subscribing one).
 */
export interface RedisConnection {
  /** The URL with its password masked, for logs. */
  shownUrl: string;
  /** The deployment's key prefix (`--redis-prefix`): keys and channels the channel makes start with it. */
  prefix: string;
  /**
   * A new ioredis client to the host's Redis (same URL, TLS and password), connecting at once and reconnecting by
   * itself; `options` tune it (such as `enableOfflineQueue`), never where it connects. The channel owns it: `quit()`
   * it in `close()`.
   */
  createClient(options?: RedisOptions): Redis;
}

/** What the host hands a channel when it mounts it. */
export interface ChannelContext {
  /** A child of the host's logger bound to the channel's name, redacting its secret keys. */
  logger: Logger;
  /** The shared outgoing HTTP client, masking the channel's secrets in its logs. */
  http: HttpClient;
  store: Store;
  /** Set when the host runs with `--redis`: the channel can open its own connections to the shared Redis. */
  redis?: RedisConnection;
  /** The HTTP server the host listens on (socket.io attaches to it). Set before `start()`. */
  server?: Server;
  /** Asks the host to shut down cleanly, as on SIGTERM (the console channel does on end of input). */
  requestShutdown?: () => void;
  /**
   * Registers work the channel runs outside a request and outside the pipeline (Webex fetches a message after
   * answering its notification): the host's shutdown waits for it, within the grace, and names it in the log if the
   * grace runs out (`about`: what it is, e.g. `{sender, messageId}`). A rejection is logged at error.
   */
  track?: (work: Promise<unknown>, about?: Record<string, unknown>) => void;
  /**
   * What `--bot-apology` says (empty: nothing), and how long the bot has (`--bot-timeout`, ms): for a channel whose
   * platform gives up on a webhook sooner than the bot may take (Twilio Voice: 15 s), to answer with the apology
   * itself before the platform's deadline.
   */
  apology?: readonly BotMessage[];
  botTimeoutMs?: number;
  /**
   * The channel reports itself ready (`markReady`): a registration the host is retrying (`InputChannel.register`) is
   * taken as done, as when Telegram's `POST /set_webhook` registered the webhook between two of the host's attempts.
   */
  ready?: () => void;
}

/** A class that can be loaded as a channel: what the loader looks for in a module. */
export interface InputChannelClass {
  new (...args: never[]): InputChannel;
  fromCredentials(credentials: unknown): InputChannel | Promise<InputChannel>;
  credentials?: CredentialsSchema;
}

const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** True when `name` can be a URL prefix under `/webhooks/`. */
export function isValidChannelName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= 64 && CHANNEL_NAME.test(name);
}

/** The channel prefix of a `/webhooks/<name>/…` path; '' for the host's own paths. */
export function channelPrefix(path: string): string {
  return path.startsWith('/webhooks/') ? path.slice('/webhooks/'.length).split('/', 1)[0]! : '';
}

/**
 * One platform. Subclasses declare `static credentials` (a schema built with `credentialsSchema`), implement
 * `name()` and `router()`, and usually an output channel. The host mounts the router under `/webhooks/<name()>/`.
 */
export abstract class InputChannel<C extends Record<string, unknown> = Record<string, unknown>> {
  /** The channel's `credentials.yml` keys: validation, redaction and documentation derive from it. */
  static credentials?: CredentialsSchema;
  /** One line saying what the channel is, for generated docs (`credentials.example.yml`). */
  static description?: string;
  /**
   * The largest request body the channel's routes accept (bytes, or a size such as `256kb`): larger ones get 413
   * before anything reads them. Size it to what the platform sends. Unset: 1mb. The host's `--body-limit`, when
   * given, overrides every channel's.
   */
  static bodyLimit?: number | string;

  /**
   * The validated credentials section, with defaults applied. Typed by the class's type argument:
   * `class MyInput extends InputChannel<z.output<typeof credentials>>`.
   */
  readonly credentials: C;
  /** True when the section allows unverified requests (`allow_unverified: true`). */
  unverified = false;
  /** Keys in the section the schema does not declare; the host logs them as warnings. */
  unknownKeys: string[] = [];

  private channelContext: ChannelContext | undefined;
  private notReadyReason: string | undefined;

  constructor(credentials: C = {} as C) {
    this.credentials = credentials;
  }

  /**
   * Builds the channel from its `credentials.yml` section: validates it against `static credentials` and throws a
   * `CredentialsError` naming the key at fault. Override to map keys onto a custom constructor.
   */
  static fromCredentials<T extends InputChannel>(
    this: (new (credentials: never) => T) & { credentials?: CredentialsSchema },
    credentials?: unknown,
  ): T {
    const parsed = parseCredentials(this.credentials, credentials);
    const channel = new (this as unknown as new (credentials: unknown) => T)(parsed.values);
    channel.unverified = parsed.unverified;
    channel.unknownKeys = parsed.unknownKeys;
    return channel;
  }

  /** The URL prefix: `/webhooks/<name>/`. */
  abstract name(): string;

  /** The channel's routes: at least `GET /` (health) and `POST /webhook`. */
  abstract router(onNewMessage: OnNewMessage): Router;

  /**
   * Rebuilds the output channel that answers a message from the reply address this channel put on it
   * (`UserMessage.replyTo`), with nothing else: no live object, no state of the request. The host calls it for every
   * message that carries an address, so a message read back from a store, on another instance or after a restart, is
   * answered exactly as in the process that received it (Rasa 3's `InputChannel.get_output_channel`). Throw when the
   * address is not one this channel made. A channel without it attaches a live `output` to its messages: they are
   * answered only in the process that received them.
   */
  outputChannel?(replyTo: ReplyAddress): OutputChannel;

  /**
   * The reply address of a recipient who has not written (the id the channel uses as the sender id: a Telegram chat
   * id, a Slack user or channel id, a phone number), for messages sent first (`POST /api/v1/conversations/...`).
   * Undefined when the platform cannot reach a user from an id alone (Bot Framework needs the service URL and
   * conversation of an earlier message): the host then uses the address of the recipient's last message, if it saw
   * one. A channel without `outputChannel` cannot send first at all.
   */
  addressFor?(recipient: string): ReplyAddress | undefined;

  /** Called by the host before `router()`. */
  attach(context: ChannelContext): void {
    this.channelContext = context;
  }

  /**
   * Called once the server listens, for every channel at once: local setup only (attach to the HTTP server, read a
   * key file). A call to the platform belongs in `register()`, where it cannot hold up startup. A `ConfigError`
   * stops startup; any other error leaves the channel not ready while the others serve.
   */
  async start?(): Promise<void>;

  /**
   * Registers the channel with its platform (Telegram's `setWebhook`). The host calls it in the background once the
   * server listens and every channel has started, so a platform that is slow or unreachable delays neither the
   * listener nor another channel. Resolve with `undefined` when done, or with why not, in words safe to show: the
   * host names the channel and that reason in `GET /health/ready` until an attempt succeeds, and tries again with
   * backoff, a bounded number of times (`ServerOptions.registration`). `signal` aborts when the server shuts down or
   * the channel reported itself ready by other means (`markReady`); pass it to the platform call.
   */
  async register?(signal: AbortSignal): Promise<string | undefined>;

  /** Called when the server stops. */
  async close?(): Promise<void>;

  /**
   * Whether the channel can take traffic: `true`, or why not (e.g. its webhook registration failed). The host's
   * `GET /health/ready` answers 503 naming the reason. Set with `markNotReady(reason)` and `markReady()`.
   */
  ready(): true | string {
    return this.notReadyReason ?? true;
  }

  /** Reports the channel not ready (`GET /health/ready` answers 503 with this reason) until `markReady()`. */
  protected markNotReady(reason: string): void {
    this.notReadyReason = reason;
  }

  /** Reports the channel ready again; a registration the host is still retrying counts as done (see `register`). */
  protected markReady(): void {
    this.notReadyReason = undefined;
    this.channelContext?.ready?.();
  }

  /**
   * Runs `work` in the background, outside any request, with the host draining it on shutdown (see
   * `ChannelContext.track`). Without a host, a rejection is logged.
   */
  protected background(work: Promise<unknown>, about?: Record<string, unknown>): void {
    const track = this.context.track;
    if (track) track(work, about);
    else work.catch((error: unknown) => this.logger.error({ err: error, ...about }, 'background work failed'));
  }

  /**
   * `work`, or `'late'` once `ms` have passed without it settling (the timer is cleared either way): for a channel whose
   * platform stops waiting for the answer (a voice call's webhook), to answer with the apology in time instead.
   */
  protected async inTime<T>(work: Promise<T>, ms: number): Promise<T | 'late'> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), ms);
    });
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * For a channel that answers in the HTTP response (`rest`, Google Chat): hands `message` over and waits until its
   * answers were sent through its output. A client that hangs up while the message still waits for its turn takes
   * it out of the queue (the bot never sees it: nobody would read the answer, and a flood of abandoned requests must
   * not keep the bot busy); one already with the bot is finished. Resolves with the pipeline's outcome; rejects only
   * with a `BacklogFullError` (the host answers 429).
   */
  protected async answerInResponse(ctx: { res: ServerResponse }, onNewMessage: OnNewMessage, message: UserMessage): Promise<Outcome> {
    // `Accepted.cancel`, not an `EnqueueOptions.signal`: no AbortController for every request.
    let accepted: Accepted | undefined;
    let gone = false;
    const onClose = () => {
      if (ctx.res.writableEnded) return;
      gone = true;
      accepted?.cancel?.();
    };
    ctx.res.once('close', onClose);
    try {
      accepted = await onNewMessage.enqueue(message);
      if (gone) accepted.cancel?.();
      return await accepted.done;
    } finally {
      ctx.res.off('close', onClose);
    }
  }

  /** Sends the host's apology (`--bot-apology`; nothing when it is empty) through `output`, as the bot's answers. */
  protected async apologize(output: OutputChannel, recipientId: string): Promise<void> {
    for (const answer of structuredClone(this.context.apology ?? [])) await output.sendResponse(recipientId, answer);
  }

  protected get context(): ChannelContext {
    this.channelContext ??= { logger: silentLogger, http: new HttpClient(), store: new MemoryStore() };
    return this.channelContext;
  }

  get logger(): Logger {
    return this.context.logger;
  }

  get http(): HttpClient {
    return this.context.http;
  }

  /** A router with the health route every channel has: `GET /` → `{"status":"ok"}`. */
  protected newRouter(): Router {
    const router = new Router();
    router.get('/', (ctx) => {
      ctx.body = { status: 'ok' };
    });
    return router;
  }
}

/** Shape check used by the loader: `instanceof` fails across two copies of the package. */
export function isInputChannelClass(value: unknown): value is InputChannelClass {
  if (typeof value !== 'function') return false;
  const candidate = value as { fromCredentials?: unknown; prototype?: { router?: unknown; name?: unknown } };
  if (value.prototype instanceof InputChannel) return true;
  // A class written against another copy of the package, or in plain JS without extending InputChannel.
  return typeof candidate.prototype?.router === 'function'
    && (typeof candidate.fromCredentials === 'function' || typeof candidate.prototype?.name === 'function');
}
