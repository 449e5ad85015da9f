import { parseArgs } from 'node:util';
import type { Bot } from './bot.js';
import { loadBot } from './bots/index.js';
import type { InputChannel } from './channel.js';
import { looseCredentialsFile, readCredentialsFile, type ChannelSection } from './credentials.js';
import { ConfigError } from './errors.js';
import { HttpClient } from './http.js';
import { loadChannels, builtinChannels } from './loader.js';
import { createLogger, type Logger } from './logger.js';
import { DEFAULT_APOLOGY, type PipelineLimits } from './pipeline.js';
import { checkRedisUrl, DEFAULT_REDIS_PREFIX, RedisStore } from './redis.js';
import { SwitchboardServer } from './server.js';
import { VERSION } from './version.js';

export const USAGE = `Usage: switchboard [options]

Connects one bot to many chat platforms. Every channel listens under /webhooks/<name>/.

Options:
  --credentials FILE   channels and their keys (YAML, \${ENV_VAR} and \${ENV_VAR:-default} expanded)
  --channel SPEC       also load this channel (repeatable): a built-in name, package.ClassName,
                       @scope/pkg.ClassName, ./path/to/module(.js)[.ClassName] or a package name
  --port N             port to listen on (default 5005, or $PORT)
  --host H             interface to bind (default: all)
  --bot SPEC           the bot: bot.yml (rules), ./my-bot.js (module) or http(s)://… (a bot server
                       speaking the REST protocol); default: the built-in moodbot
  --bot-apology TEXT   what users are told when the bot fails or does not answer in time ("" says
                       nothing; or $SWITCHBOARD_BOT_APOLOGY)
  --bot-timeout MS     how long the bot (module, rules or remote) has to answer a message (default 30000)
  --cors ORIGIN        allow this browser origin (repeatable; * for any)
  --body-limit SIZE    largest request body on every route, overriding each channel's own limit
                       (default: 64kb rest, callback, socketio, jambonz, twilio, twilio_voice, webexteams, audiocodes; 256kb telegram,
                       mattermost, botframework, discord, hangouts; 1mb facebook, whatsapp, instagram, slack, rocketchat, line, channel packages)
  --trust-proxy        trust X-Forwarded-* and Forwarded headers (only behind a reverse proxy that sets them)
  --sender-backlog N   messages one sender may have waiting for the bot (default 20); past it 429
  --sender-backlog-bytes SIZE
                       their total size (default 256kb)
  --queue-bytes SIZE   total size of all waiting messages (default 32mb)
  --bot-concurrency N  bot calls running at once (default 32)
  --bot-wait N         senders waiting for one of those calls (default 1000); past it 429
  --request-timeout MS time a client has to send a whole request (default 10000)
  --max-connections N  open connections at once, WebSockets included (default 4096)
  --shutdown-grace MS  on SIGTERM/SIGINT, how long to finish open requests, queued messages and background
                       work before giving up on them (default 25000); a second signal exits at once
  --outbox-ttl MS      how long an answer the platform could not take (connection refused, 429, 503) is
                       kept and retried, in order, before it is given up (default 600000; 0: not kept)
  --redis URL          share state with other instances through Redis (redis://[:password@]host:port[/db]
                       or rediss:// for TLS; or $SWITCHBOARD_REDIS_URL): deduplication, a durable inbox
                       processed in order per sender across instances, socket.io across instances.
                       Unreachable at startup: exit code 2. Default: in memory, one instance
  --redis-prefix P     prefix of every Redis key, so deployments can share one Redis (default switchboard:)
  --api-token TOKEN    enable the API that sends messages first (POST /api/v1/conversations/CHANNEL/
                       RECIPIENT/messages) and edits or deletes them (PATCH, DELETE .../messages/ID),
                       authenticated with this bearer token (or $SWITCHBOARD_API_TOKEN; at least 16
                       characters). Default: no such API
  --inbox-claim-ttl MS with --redis: how long an instance's claim on a sender outlives its last heartbeat,
                       i.e. how soon another instance resumes the messages of one that died (default 15000)
  --no-webchat         do not serve the web chat page at /webchat
  --metrics-port N     serve Prometheus metrics (GET /metrics) on this port instead of the main one
  --no-metrics         do not serve /metrics at all
  --log-level LEVEL    fatal, error, warn, info (default), debug, trace or silent
  -h, --help           show this help
  -v, --version        show the version

With neither --credentials nor --channel, the rest and socketio channels are started, and the
web chat page is at /webchat.
Built-in channels: ${builtinChannels().join(', ')}`;

export interface CliOptions {
  credentials?: string;
  channels: string[];
  port: number;
  host?: string;
  bot?: string;
  /** Undefined: the default apology; empty: none. */
  botApology?: string;
  botTimeoutMs?: number;
  cors: string[];
  /** `--body-limit`: overrides every route's own limit. Undefined: each channel's limit. */
  bodyLimit?: string | undefined;
  /** Trust X-Forwarded-* and Forwarded (RFC 7239) from a reverse proxy. Default false. */
  trustProxy?: boolean;
  /** Queue and concurrency bounds given on the command line (the rest keep their defaults). */
  limits?: PipelineLimits;
  requestTimeoutMs?: number;
  maxConnections?: number;
  /** `--shutdown-grace`: how long a shutdown waits for in-flight work. Undefined: the server's default (25 s). */
  shutdownGraceMs?: number;
  /** `--outbox-ttl`: how long an answer the platform could not take is retried. Undefined: 10 minutes; 0: not kept. */
  outboxTtlMs?: number;
  /** Serve the web chat page at /webchat when a channel has one. */
  webchat?: boolean;
  /** `--no-metrics` makes it false. Default true: `/metrics` on the main port, or on `metricsPort`. */
  metrics?: boolean;
  metricsPort?: number;
  /** `--redis` or `$SWITCHBOARD_REDIS_URL`: a Redis store instead of the in-memory one. */
  redis?: string;
  /** `--redis-prefix`; default `switchboard:`. */
  redisPrefix?: string;
  /** `--inbox-claim-ttl`; default 15 s. */
  inboxClaimTtlMs?: number;
  /** `--api-token` or `$SWITCHBOARD_API_TOKEN`: enables sending first. */
  apiToken?: string;
  logLevel: string;
  /** Whether --log-level (or LOG_LEVEL) was given, rather than defaulted. */
  logLevelGiven?: boolean;
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

export type ParsedArgs = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; options: CliOptions };

/** Parses the command line; a usage error is a `ConfigError`. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        credentials: { type: 'string' },
        channel: { type: 'string', multiple: true },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        bot: { type: 'string' },
        'bot-apology': { type: 'string' },
        'bot-timeout': { type: 'string' },
        cors: { type: 'string', multiple: true },
        'body-limit': { type: 'string' },
        'sender-backlog': { type: 'string' },
        'sender-backlog-bytes': { type: 'string' },
        'queue-bytes': { type: 'string' },
        'bot-concurrency': { type: 'string' },
        'bot-wait': { type: 'string' },
        'request-timeout': { type: 'string' },
        'max-connections': { type: 'string' },
        'shutdown-grace': { type: 'string' },
        'outbox-ttl': { type: 'string' },
        'no-webchat': { type: 'boolean' },
        'metrics-port': { type: 'string' },
        'no-metrics': { type: 'boolean' },
        'trust-proxy': { type: 'boolean' },
        redis: { type: 'string' },
        'redis-prefix': { type: 'string' },
        'inbox-claim-ttl': { type: 'string' },
        'api-token': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n\n${USAGE}`);
  }
  const values = parsed.values;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const portText = values.port ?? env.PORT ?? '5005';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new ConfigError(`--port must be a number from 0 to 65535, got "${portText}"`);
  const logLevel = values['log-level'] ?? env.LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`--log-level must be one of fatal, error, warn, info, debug, trace, silent; got "${logLevel}"`);
  }
  const bodyLimit = values['body-limit'];
  if (bodyLimit !== undefined && !/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i.test(bodyLimit)) throw new ConfigError(`--body-limit must be a size such as 512kb or 2mb, got "${bodyLimit}"`);
  const count = (flag: string, min: number): number | undefined => {
    const text = values[flag as keyof typeof values] as string | undefined;
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
      throw new ConfigError(`--${flag} must be a whole number of at least ${min}, got "${text}"`);
    }
    return Number(text);
  };
  const size = (flag: string): number | undefined => {
    const text = values[flag as keyof typeof values] as string | undefined;
    if (text === undefined) return undefined;
    const match = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(text);
    const bytes = match ? Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]!) : 0;
    if (!match || bytes < 1) throw new ConfigError(`--${flag} must be a size such as 256kb or 2mb, got "${text}"`);
    return bytes;
  };
  const limits: PipelineLimits = {};
  const setLimit = (key: keyof PipelineLimits, value: number | undefined) => {
    if (value !== undefined) limits[key] = value;
  };
  setLimit('senderBacklog', count('sender-backlog', 1));
  setLimit('senderBacklogBytes', size('sender-backlog-bytes'));
  setLimit('queueBytes', size('queue-bytes'));
  setLimit('botConcurrency', count('bot-concurrency', 1));
  setLimit('botWait', count('bot-wait', 0));
  const requestTimeoutMs = count('request-timeout', 1000);
  const maxConnections = count('max-connections', 1);
  const metricsPortText = values['metrics-port'];
  if (metricsPortText !== undefined && (!/^\d+$/.test(metricsPortText) || Number(metricsPortText) > 65535)) {
    throw new ConfigError(`--metrics-port must be a number from 0 to 65535, got "${metricsPortText}"`);
  }
  if (metricsPortText !== undefined && values['no-metrics']) throw new ConfigError('--metrics-port and --no-metrics contradict each other; pick one');
  const shutdownGraceMs = count('shutdown-grace', 0);
  const outboxTtlMs = count('outbox-ttl', 0);
  const botTimeout = values['bot-timeout'];
  if (botTimeout !== undefined && (!/^\d+$/.test(botTimeout) || Number(botTimeout) < 1)) throw new ConfigError(`--bot-timeout must be milliseconds (at least 1), got "${botTimeout}"`);
  const redis = values.redis ?? (env.SWITCHBOARD_REDIS_URL || undefined);
  if (redis !== undefined) checkRedisUrl(redis);
  const redisPrefix = values['redis-prefix'];
  if (redisPrefix !== undefined && redis === undefined) throw new ConfigError('--redis-prefix needs --redis (or $SWITCHBOARD_REDIS_URL)');
  const inboxClaimTtlMs = count('inbox-claim-ttl', 1000);
  const apiToken = values['api-token'] ?? (env.SWITCHBOARD_API_TOKEN || undefined);
  if (apiToken !== undefined && apiToken.trim().length < 16) throw new ConfigError('--api-token (or $SWITCHBOARD_API_TOKEN) must be at least 16 characters: a long random string');
  if (inboxClaimTtlMs !== undefined && redis === undefined) throw new ConfigError('--inbox-claim-ttl needs --redis (or $SWITCHBOARD_REDIS_URL)');
  return {
    kind: 'run',
    options: {
      botApology: values['bot-apology'] ?? env.SWITCHBOARD_BOT_APOLOGY,
      botTimeoutMs: botTimeout === undefined ? undefined : Number(botTimeout),
      credentials: values.credentials,
      channels: values.channel ?? [],
      port,
      host: values.host,
      bot: values.bot,
      cors: values.cors ?? [],
      bodyLimit,
      limits,
      requestTimeoutMs,
      maxConnections,
      shutdownGraceMs,
      outboxTtlMs,
      webchat: !values['no-webchat'],
      metrics: !values['no-metrics'],
      metricsPort: metricsPortText === undefined ? undefined : Number(metricsPortText),
      trustProxy: values['trust-proxy'] === true,
      redis,
      redisPrefix: redis === undefined ? undefined : redisPrefix ?? DEFAULT_REDIS_PREFIX,
      inboxClaimTtlMs,
      apiToken,
      logLevel,
      logLevelGiven: values['log-level'] !== undefined || env.LOG_LEVEL !== undefined,
    },
  };
}

export interface Started {
  server: SwitchboardServer;
  channels: InputChannel[];
  bot: Bot;
  url: string;
  logger: Logger;
}

/** Loads everything the options name and starts listening. Every configuration problem is a `ConfigError`. */
export async function start(options: CliOptions, io: { cwd?: string; env?: NodeJS.ProcessEnv; logger?: Logger } = {}): Promise<Started> {
  const cwd = io.cwd ?? process.cwd();
  const sections: ChannelSection[] = options.credentials ? readCredentialsFile(options.credentials, io.env ?? process.env, cwd) : [];
  const specs = options.channels;
  if (!options.credentials && options.channels.length === 0) {
    // Something that works at once: the REST webhook, and a web chat whose conversation survives a reload.
    sections.push({ key: 'rest', spec: 'rest', aliased: false, values: {}, source: 'defaults' });
    sections.push({ key: 'socketio', spec: 'socketio', aliased: false, values: { session_persistence: true }, source: 'defaults' });
  }
  // The console channel owns the terminal: logs go to stderr, and only warnings unless asked otherwise.
  const terminal = [...specs, ...sections.map((s) => s.spec)].includes('console');
  const logger = io.logger ?? (terminal
    ? createLogger({ level: options.logLevelGiven ? options.logLevel : 'warn', destination: process.stderr })
    : createLogger({ level: options.logLevel }));
  const loose = options.credentials ? looseCredentialsFile(options.credentials, cwd) : undefined;
  if (loose) logger.warn({ file: options.credentials }, loose);
  const channels = await loadChannels(sections, specs, { cwd, logger });
  if (channels.length === 0) throw new ConfigError(`${options.credentials}: no channels configured; add a section such as "rest:" or pass --channel rest`);
  const http = new HttpClient({ logger });
  const apology = options.botApology === undefined ? DEFAULT_APOLOGY : options.botApology === '' ? [] : [{ text: options.botApology }];
  const bot = await loadBot(options.bot, { cwd, logger, http, timeoutMs: options.botTimeoutMs });
  if (options.webchat === false) for (const channel of channels) if ('serveWebchat' in channel) (channel as { serveWebchat?: boolean }).serveWebchat = false;
  let store: RedisStore | undefined;
  if (options.redis !== undefined) {
    store = await RedisStore.connect({ url: options.redis, prefix: options.redisPrefix, logger });
    logger.info({ redis: store.shownUrl, prefix: options.redisPrefix }, 'sharing state through Redis');
  }
  const server = new SwitchboardServer({ channels, bot, logger, http, store, cors: options.cors, bodyLimit: options.bodyLimit, webchat: options.webchat, trustProxy: options.trustProxy,
    limits: options.limits, requestTimeoutMs: options.requestTimeoutMs, maxConnections: options.maxConnections,
    metrics: options.metrics === false ? false : options.metricsPort !== undefined ? { port: options.metricsPort } : true,
    botTimeoutMs: options.botTimeoutMs, botApology: apology, outboxTtlMs: options.outboxTtlMs, inboxClaimTtlMs: options.inboxClaimTtlMs, apiToken: options.apiToken });
  if (options.shutdownGraceMs !== undefined) server.shutdownGraceMs = options.shutdownGraceMs;
  let address;
  try {
    address = await server.listen(options.port, options.host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    await server.close(0).catch(() => undefined);
    const metricsPort = (error as { metricsPort?: number }).metricsPort;
    if (metricsPort !== undefined && code === 'EADDRINUSE') throw new ConfigError(`metrics port ${metricsPort} is already in use; pick another with --metrics-port`);
    if (metricsPort !== undefined && code === 'EACCES') throw new ConfigError(`not allowed to listen on metrics port ${metricsPort}; pick one above 1023 with --metrics-port`);
    if (code === 'EADDRINUSE') throw new ConfigError(`port ${options.port} is already in use; pick another with --port`);
    if (code === 'EACCES') throw new ConfigError(`not allowed to listen on port ${options.port}; pick one above 1023 with --port`);
    throw error;
  }
  const shownHost = !options.host || options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : options.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${address.port}`;
  return { server, channels, bot, url, logger };
}

/** The banner lines: where the server and each channel listen. */
export function banner(started: Started): string[] {
  const lines = [`Switchboard ${VERSION} listening on ${started.url}`];
  for (const channel of started.channels) {
    const name = channel.name();
    const where = started.server.hasWebhook(name) ? `${started.url}/webhooks/${name}/webhook` : `${started.url}/webhooks/${name}/`;
    lines.push(`  ${name.padEnd(14)} ${where}`);
  }
  if (started.server.webchatPath) lines.push(`  ${'web chat'.padEnd(14)} ${started.url}${started.server.webchatPath}`);
  const metricsPort = started.server.metricsAddress?.port;
  if (started.server.metrics) lines.push(`  ${'metrics'.padEnd(14)} ${metricsPort === undefined ? started.url : started.url.replace(/:\d+$/, `:${metricsPort}`)}/metrics`);
  return lines;
}
