// ioredis is loaded when a store connects (`--redis`): a server without Redis does not pay for it at startup.
import type { Redis, RedisOptions } from 'ioredis';
import { ConfigError } from './errors.js';
import { OutageLog, maskSecrets, silentLogger, type Logger } from './logger.js';
import type { RedisConnection } from './channel.js';
import type { Store } from './store.js';
import { SharedInbox } from './inbox.js';

/** The key prefix when none is given: several deployments share one Redis by giving each its own. */
export const DEFAULT_REDIS_PREFIX = 'switchboard:';
/** How long startup waits for Redis before it is a startup error. */
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 5_000;
/** How long one command may take at run time before it counts as failed (a hung Redis must not stall messages). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 1_000;

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). */
  url: string;
  /** Prepended to every key; default `switchboard:`. */
  prefix?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  logger?: Logger;
}

/** The URL as it may be shown: the password (and a user-only secret) replaced by `***`. */
export function maskRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    else if (parsed.username) parsed.username = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    // Not a URL: mask whatever sits between "//" and "@" all the same.
    return url.replace(/\/\/[^/]*@/, '//***@');
  }
}

/** Checks the scheme and shape of a Redis URL; a `ConfigError` (password masked) when it is not one. */
export function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`--redis must be a redis:// or rediss:// URL, got "${maskRedisUrl(url)}"`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`--redis must be a redis:// or rediss:// URL, got "${maskRedisUrl(url)}"`);
  }
  if (!parsed.hostname) throw new ConfigError(`--redis URL has no host: "${maskRedisUrl(url)}"`);
}

/**
 * The store shared by instances behind a load balancer. A claim is one atomic `SET key 1 NX PX ttl`, so of two
 * instances receiving the same platform delivery exactly one processes it.
 *
 * Redis failing at run time must not lose messages: while it cannot be reached, `claim` answers true (the message is
 * processed, at the risk of a duplicate) and one warning is logged per outage, not one per message. The client
 * reconnects by itself and shared deduplication resumes without a restart.
 */
export class RedisStore implements Store {
  readonly client: Redis;
  readonly prefix: string;
  /** The URL with its password masked, for logs and errors. */
  readonly shownUrl: string;
  private readonly logger: Logger;
  private readonly secrets: string[];
  private readonly outage: OutageLog;
  private closed = false;
  /** Set once connected: failures while starting are the startup error's business, not outage warnings. */
  private started = false;
  private readonly url: string;
  /** Clients made by `createClient()` and not closed yet: `close()` ends those a channel left open. */
  private readonly extra = new Set<Redis>();
  /** The last error the client reported: the cause worth naming when startup fails ("Connection is closed" is not). */
  private lastError: Error | undefined;

  /** Connects, or throws a `ConfigError` naming the URL (password masked) within `connectTimeoutMs`. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    checkRedisUrl(options.url);
    const { Redis: Client } = await import('ioredis');
    const store = new RedisStore(options, Client);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([store.client.connect().then(() => store.client.ping()), timeout]);
    } catch (error) {
      // No retrying at startup: the operator sees the problem now, not a process that hangs.
      store.closed = true;
      store.client.disconnect();
      const cause = store.lastError ?? (error as Error);
      const reason = store.mask(cause?.message ?? String(cause));
      throw new ConfigError(`cannot reach Redis at ${store.shownUrl}: ${reason}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
    store.started = true;
    return store;
  }

  private constructor(
    options: RedisStoreOptions,
    /** ioredis's client class (imported by `connect`). */
    private readonly Client: typeof Redis,
  ) {
    this.url = options.url;
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.shownUrl = maskRedisUrl(options.url);
    this.logger = (options.logger ?? silentLogger).child({ redis: this.shownUrl });
    const parsed = new URL(options.url);
    let decoded = parsed.password;
    try {
      decoded = decodeURIComponent(parsed.password);
    } catch {
      // Kept as written.
    }
    this.secrets = [parsed.password, decoded].filter((secret) => secret.length > 0);
    this.outage = new OutageLog(this.logger, {
      down: 'Redis unreachable: messages are processed by the instance that received them, without deduplication or ordering across instances, until it is back',
      up: 'Redis reachable again: deduplication and the shared inbox resumed',
    });
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
    this.client = new Client(options.url, {
      lazyConnect: true,
      connectTimeout: connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
      // While Redis is away, commands fail at once (the caller falls back) instead of waiting in a queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Reconnect forever at run time, backing off to one attempt every 2 s.
      retryStrategy: (attempt) => (this.closed ? null : Math.min(attempt * 100, 2_000)),
    });
    // A Redis that hangs without dropping the connection shows up as commands timing out, and its return as a
    // command succeeding again (no 'ready' event then): so every success ends an outage, not only a reconnect.
    // ioredis reports every failed reconnect attempt as an 'error' event; without a listener it prints them all.
    this.client.on('error', (error: Error) => {
      this.lastError = error;
      this.down(error);
    });
    this.client.on('close', () => {
      if (!this.closed) this.down(new Error('connection closed'));
    });
    this.client.on('ready', () => this.up());
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    try {
      const reply = await this.client.set(this.prefix + key, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
      this.up();
      return reply === 'OK';
    } catch (error) {
      // Processing the message at the risk of a duplicate beats losing it.
      this.down(error as Error);
      return true;
    }
  }

  async release(key: string): Promise<void> {
    try {
      await this.client.del(this.prefix + key);
      this.up();
    } catch (error) {
      this.down(error as Error);
    }
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    try {
      await this.client.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
      this.up();
    } catch (error) {
      this.down(error as Error);
    }
  }

  async get(key: string): Promise<string | undefined> {
    try {
      const value = await this.client.get(this.prefix + key);
      this.up();
      return value ?? undefined;
    } catch (error) {
      this.down(error as Error);
      return undefined;
    }
  }

  async ping(): Promise<void> {
    await this.client.ping();
    this.up();
  }

  /**
   * A new client to the same Redis, for a channel's own use (socket.io's adapter). By default it queues commands while
   * disconnected and retries them, as a pub/sub client must (its subscriptions are restored on reconnect); `options`
   * can change that (`enableOfflineQueue: false`: fail at once while Redis is away) but not where it connects: the
   * URL's host, password and TLS win. Errors are not logged here: the store's own client reports an outage, once.
   */
  createClient(options: RedisOptions = {}): Redis {
    const client = new this.Client(this.url, {
      connectTimeout: DEFAULT_REDIS_CONNECT_TIMEOUT_MS,
      ...options,
      retryStrategy: () => (this.closed ? null : 1_000),
    });
    client.on('error', () => undefined);
    this.extra.add(client);
    client.once('end', () => this.extra.delete(client));
    return client;
  }

  /** The durable inbox shared by the instances on this Redis, on the store's client (its outages logged once, here). */
  inbox(options: { claimTtlMs?: number; heartbeatMs?: number } = {}): SharedInbox {
    return new SharedInbox({
      client: this.client,
      prefix: this.prefix,
      logger: this.logger,
      ...options,
      onDown: (error) => this.down(error),
      onUp: () => this.up(),
    });
  }

  /** What channels get as `ChannelContext.redis`. */
  connection(): RedisConnection {
    return { shownUrl: this.shownUrl, prefix: this.prefix, createClient: (options) => this.createClient(options) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const client of this.extra) client.disconnect();
    this.extra.clear();
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /** Whether Redis is currently unreachable (the store falls back to processing every message). */
  get unreachable(): boolean {
    return this.outage.active;
  }

  private down(error: Error): void {
    if (this.closed || !this.started) return;
    this.outage.down(this.mask(error?.message ?? String(error)));
  }

  private up(): void {
    this.outage.up();
  }

  private mask(text: string): string {
    return maskSecrets(text, this.secrets);
  }
}
