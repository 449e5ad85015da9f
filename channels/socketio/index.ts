import { randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
// The Redis adapter is loaded only under `--redis` (see `redisAdapter`).
import type { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import { Server, type Namespace, type Socket } from 'socket.io';
import { BacklogFullError, InputChannel, JWT_METHODS, OutageLog, UserMessage, addressPart, credentialsSchema, isObject, secret, z, type JwtMethod, type OnNewMessage, type ReplyAddress, type Router } from 'switchboard';
import { signSessionId, verifyJwt, verifySessionId } from './verify.js';
import { SocketIOOutput } from './output.js';
import { renderWebchat } from './webchat.js';

export { SocketIOOutput } from './output.js';
export type { RoomEmitter, SocketQuickReply } from './output.js';
export { verifyJwt, signSessionId, verifySessionId } from './verify.js';
export { renderWebchat, WEBCHAT_HTML } from './webchat.js';

/** The metadata field rasa-webchat sends; Rasa's own default is `metadata`, also read when this key is the default. */
export const DEFAULT_METADATA_KEY = 'customData';
/** The event a bad client event is answered with: `{error, event}`. */
export const ERROR_EVENT = 'error';
/** Longest session id accepted (it becomes the sender id and a room name). */
export const MAX_SESSION_ID_LENGTH = 256;
/** How long `close()` lets WebSocket clients answer the closing handshake before cutting their connection. */
export const CLOSE_GRACE_MS = 1_000;
/** Events a connection may send per second on average (`max_events_per_second`); bursts of twice as many pass. */
export const DEFAULT_MAX_EVENTS_PER_SECOND = 20;
/** The file the session secret is kept in when `session_secret` is not set (created once, mode 0600). */
export function defaultSessionSecretFile(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(homedir(), '.local', 'state');
  return path.join(state, 'switchboard', 'socketio-session-secret');
}

const EVENT_NAME = z.string().min(1).max(100).refine((name) => !['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener', 'session_request', 'session_confirm', ERROR_EVENT].includes(name), 'is a reserved event name');

const credentials = credentialsSchema({
  user_message_evt: EVENT_NAME.default('user_uttered').meta({ description: 'the event the client sends messages with' }),
  bot_message_evt: EVENT_NAME.default('bot_uttered').meta({ description: 'the event the answers are sent with' }),
  session_persistence: z.boolean().default(false).meta({ description: 'the session id (not the socket id) is the sender: a reconnecting client keeps its conversation' }),
  socketio_path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, 'must be a path such as /socket.io').default('/socket.io').meta({ description: 'the Socket.IO endpoint, at the server root' }),
  namespace: z.string().max(100).nullable().optional().meta({ description: 'Socket.IO namespace; default /' }),
  cors_allowed_origins: z.union([z.string(), z.array(z.string())]).optional().meta({ description: 'other browser origins allowed to connect (a list, or *); by default only pages of this server' }),
  metadata_key: z.string().min(1).default(DEFAULT_METADATA_KEY).meta({ description: 'the message field carrying metadata (rasa-webchat: customData)' }),
  jwt_key: secret(z.string().min(1), 'enables the connect JWT (auth.token): the HS* secret or a PEM public key').optional(),
  jwt_method: z.enum(JWT_METHODS).default('HS256').meta({ description: 'the JWT algorithm' }),
  jwt_session_claim: z.string().min(1).default('sub').meta({ description: 'with jwt_key: the claim a session is bound to (a token with another value cannot join it)' }),
  jwt_audience: z.string().min(1).optional().meta({ description: 'with jwt_key: the aud the token must carry' }),
  jwt_issuer: z.string().min(1).optional().meta({ description: 'with jwt_key: the iss the token must carry' }),
  session_secret: secret(z.string().regex(/\S/, 'must not be blank').min(16), 'signs the session ids handed out; default: a random one kept in ~/.local/state/switchboard').optional(),
  max_events_per_second: z.number().int().min(1).default(DEFAULT_MAX_EVENTS_PER_SECOND).meta({ description: 'events a connection may send per second (bursts of twice as many); past it events are refused, and a connection that keeps on is closed' }),
  max_payload_bytes: z.number().int().min(1024).default(64 * 1024).meta({ description: 'largest event accepted; a bigger one closes the connection' }),
  webchat: z.boolean().default(true).meta({ description: 'serve the web chat page at /webhooks/socketio/webchat' }),
});

/** The validated keys. */
export interface SocketIOSettings {
  userMessageEvt: string;
  botMessageEvt: string;
  sessionPersistence: boolean;
  path: string;
  namespace: string;
  corsAllowedOrigins: string[];
  metadataKey: string;
  jwtKey: string | undefined;
  jwtMethod: JwtMethod;
  jwtSessionClaim: string;
  jwtAudience: string | undefined;
  jwtIssuer: string | undefined;
  sessionSecret: string | undefined;
  maxEventsPerSecond: number;
  maxPayloadBytes: number;
  webchat: boolean;
}

type Ack = (answer: unknown) => void;


/**
 * Rasa's socket.io channel: browser widgets (rasa-webchat, our web chat page) connect with Socket.IO 4 to
 * `{socketio_path}` on the host's own HTTP server. `session_request {session_id?}` → `session_confirm <id>`;
 * `user_uttered {message, session_id, customData?}` → one `bot_uttered` event per answer. See docs/channels/socketio.md.
 */
export class SocketIOInput extends InputChannel {
  static override credentials = credentials;
  static override description = "Rasa's socket.io protocol for web chat widgets, and a web chat page at /webhooks/socketio/webchat";
  /** Request bodies up to 64kb: its HTTP routes only; socket.io events have engine.io's own limit (maxHttpBufferSize). */
  static override bodyLimit = '64kb';

  /** Set to false before the host mounts the channel to drop the web chat route whatever the credentials say (`--no-webchat`). */
  serveWebchat: boolean | undefined;
  private onNewMessage: OnNewMessage | undefined;
  private io: Server | undefined;
  private nsp: Namespace | undefined;
  private output: SocketIOOutput | undefined;
  /** With the host on Redis: the adapter's publishing and subscribing clients, closed with the channel. */
  private redisClients: Redis[] = [];
  /** The key session ids are signed with (see `signSessionId`), set by `start()`. */
  private sessionKey: Uint8Array | undefined;
  /** The TCP sockets of WebSocket connections to `socketio_path`, until they close (see `close()`). */
  private readonly upgraded = new Set<Duplex>();
  private readonly trackUpgrade = (req: IncomingMessage, socket: Duplex): void => {
    const path = this.settings.path;
    const url = req.url ?? '';
    if (url !== path && !url.startsWith(`${path}/`) && !url.startsWith(`${path}?`)) return;
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
  };

  name(): string {
    return 'socketio';
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { room: recipient };
  }

  /**
   * Answers are emitted to the address's `room`: the session id with `session_persistence` (every socket of the
   * session), else the socket id. Through the namespace, so a socket.io adapter can carry them to another instance.
   */
  override outputChannel(replyTo: ReplyAddress): SocketIOOutput {
    addressPart(replyTo, 'room');
    if (!this.output) throw new Error('socketio: the channel is not started: no namespace to emit to');
    return this.output;
  }

  get settings(): SocketIOSettings {
    const c = this.credentials;
    const str = (key: string, fallback: string) => (typeof c[key] === 'string' && c[key] !== '' ? (c[key] as string) : fallback);
    const rawNamespace = str('namespace', '/');
    const origins = c.cors_allowed_origins;
    return {
      userMessageEvt: str('user_message_evt', 'user_uttered'),
      botMessageEvt: str('bot_message_evt', 'bot_uttered'),
      sessionPersistence: c.session_persistence === true,
      path: str('socketio_path', '/socket.io').replace(/(.)\/+$/, '$1'),
      namespace: rawNamespace.startsWith('/') ? rawNamespace : `/${rawNamespace}`,
      corsAllowedOrigins: Array.isArray(origins) ? origins.map(String) : typeof origins === 'string' && origins !== '' ? [origins] : [],
      metadataKey: str('metadata_key', DEFAULT_METADATA_KEY),
      jwtKey: typeof c.jwt_key === 'string' && c.jwt_key !== '' ? c.jwt_key : undefined,
      jwtMethod: (JWT_METHODS as readonly string[]).includes(c.jwt_method as string) ? (c.jwt_method as JwtMethod) : 'HS256',
      jwtSessionClaim: str('jwt_session_claim', 'sub'),
      jwtAudience: typeof c.jwt_audience === 'string' && c.jwt_audience !== '' ? c.jwt_audience : undefined,
      jwtIssuer: typeof c.jwt_issuer === 'string' && c.jwt_issuer !== '' ? c.jwt_issuer : undefined,
      sessionSecret: typeof c.session_secret === 'string' && c.session_secret.trim() !== '' ? c.session_secret : undefined,
      maxEventsPerSecond: typeof c.max_events_per_second === 'number' && c.max_events_per_second >= 1 ? c.max_events_per_second : DEFAULT_MAX_EVENTS_PER_SECOND,
      maxPayloadBytes: typeof c.max_payload_bytes === 'number' ? c.max_payload_bytes : 64 * 1024,
      webchat: this.serveWebchat ?? c.webchat !== false,
    };
  }

  /** The Socket.IO server, once started (tests, and hosts that want to add their own events). */
  get server(): Server | undefined {
    return this.io;
  }

  /** The health route and, unless `webchat: false`, the web chat page at `/webhooks/socketio/webchat`. */
  router(onNewMessage: OnNewMessage): Router {
    this.onNewMessage = onNewMessage;
    const router = this.newRouter();
    if (this.settings.webchat) {
      router.get('/webchat', (ctx) => {
        const page = this.webchatPage();
        ctx.set('Content-Security-Policy', page.csp);
        ctx.set('X-Content-Type-Options', 'nosniff');
        ctx.set('Referrer-Policy', 'no-referrer');
        ctx.set('Cache-Control', 'no-cache');
        ctx.type = 'text/html; charset=utf-8';
        ctx.body = page.html;
      });
    }
    return router;
  }

  /** The web chat page configured for this channel (the host can serve it elsewhere, such as `/webchat`). */
  webchatPage(): { html: string; csp: string } {
    const s = this.settings;
    return renderWebchat({
      path: s.path,
      namespace: s.namespace,
      userMessageEvt: s.userMessageEvt,
      botMessageEvt: s.botMessageEvt,
    });
  }

  /** Attaches Socket.IO to the host's HTTP server (after Koa's request handler exists, so Socket.IO wraps it). */
  override async start(): Promise<void> {
    if (this.io) return;
    const httpServer = this.context.server;
    if (!httpServer) throw new Error('the socketio channel needs the host HTTP server (context.server) to attach to');
    const s = this.settings;
    this.sessionKey = s.sessionSecret !== undefined ? new TextEncoder().encode(s.sessionSecret) : await this.defaultSessionKey();
    const anyOrigin = s.corsAllowedOrigins.includes('*');
    const adapter = await this.redisAdapter();
    const io = new Server(httpServer, {
      ...(adapter ? { adapter } : {}),
      path: s.path,
      serveClient: true,
      maxHttpBufferSize: s.maxPayloadBytes,
      // Pages of this server are same-origin and need no CORS headers; other sites only when listed.
      ...(anyOrigin ? { cors: { origin: '*' } } : s.corsAllowedOrigins.length > 0 ? { cors: { origin: s.corsAllowedOrigins } } : {}),
      // CORS headers only guard polling; the origin check covers WebSocket upgrades too. Clients without an Origin
      // header (servers, scripts) are not browsers and pass.
      allowRequest: (req: IncomingMessage, callback) => {
        const origin = req.headers.origin;
        if (anyOrigin || origin === undefined || s.corsAllowedOrigins.includes(origin) || sameOrigin(origin, req.headers)) callback(null, true);
        else {
          this.logger.info({ origin }, 'socketio: connection from an origin not in cors_allowed_origins refused');
          callback('origin not allowed', false);
        }
      },
    });
    this.io = io;
    httpServer.on('upgrade', this.trackUpgrade);
    const nsp = io.of(s.namespace);
    this.nsp = nsp;
    this.output = new SocketIOOutput(nsp, s.botMessageEvt);
    if (s.jwtKey) {
      const key = s.jwtKey;
      nsp.use(async (socket, next) => {
        const auth = socket.handshake.auth as Record<string, unknown> | undefined;
        const raw = typeof auth?.token === 'string' ? auth.token.replace(/^Bearer\s+/i, '') : '';
        const required = { audience: s.jwtAudience, issuer: s.jwtIssuer, claim: s.jwtSessionClaim };
        const result = raw === '' ? 'no auth.token' : await verifyJwt(raw, key, s.jwtMethod, Date.now(), required);
        if (typeof result === 'string') {
          this.logger.info({ socket: socket.id, reason: result }, 'socketio: connection refused: JWT not valid');
          next(new Error('not authorized'));
        } else {
          socket.data.jwt = result;
          socket.data.binding = String(result[s.jwtSessionClaim]);
          next();
        }
      });
    }
    nsp.on('connection', (socket) => this.onConnection(socket, s));
    io.engine.on('connection_error', (error: { code?: number; message?: string }) => {
      this.logger.debug({ code: error.code, reason: error.message }, 'socketio: connection error');
    });
    await this.adapterReady();
  }

  /**
   * With the host on Redis (`--redis`): socket.io's Redis adapter, so that an answer emitted to a session's room
   * reaches its sockets on every instance. Its channel names start with the host's key prefix (deployments sharing one
   * Redis stay apart). Without Redis: undefined, socket.io's in-memory adapter.
   */
  private async redisAdapter(): Promise<ReturnType<typeof createAdapter> | undefined> {
    const redis = this.context.redis;
    if (!redis) return undefined;
    // While Redis is away an answer is still emitted to this instance's sockets; its copy for the other instances
    // fails at once (no queue of stale answers), and the adapter does not catch that: caught here, or the rejection
    // would end the process. Warned once per outage.
    const pub = redis.createClient({ enableOfflineQueue: false });
    const sub = redis.createClient();
    this.redisClients = [pub, sub];
    const outage = new OutageLog(this.logger, {
      down: 'socketio: Redis unreachable: answers reach only sockets on this instance until it is back',
      up: 'socketio: Redis reachable again: answers reach sockets on every instance',
    }, { redis: redis.shownUrl });
    const publish = pub.publish.bind(pub) as (...args: unknown[]) => Promise<number>;
    (pub as unknown as { publish: typeof publish }).publish = (...args) => {
      const sent = publish(...args);
      sent.catch((error: unknown) => {
        if (this.io) outage.down((error as Error)?.message ?? String(error));
      });
      return sent;
    };
    pub.on('ready', () => outage.up());
    const { createAdapter: adapter } = await import('@socket.io/redis-adapter');
    return adapter(pub, sub, { key: `${redis.prefix}socket.io` });
  }

  /**
   * Waits until both adapter clients are connected and the subscriptions are in place (5 s at most): the adapter
   * subscribes when a namespace is made, and a PING queued behind those commands on the same connection is answered
   * only once they are done.
   */
  private async adapterReady(): Promise<void> {
    const [pub, sub] = this.redisClients;
    if (!pub || !sub) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 5_000)));
    const connected = pub.status === 'ready' ? undefined : new Promise<void>((resolve) => pub.once('ready', () => resolve()));
    const ready = Promise.all([connected, sub.ping()]).then(() => 'ready' as const, () => 'timeout' as const);
    const result = await Promise.race([ready, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') this.logger.warn({ redis: this.context.redis?.shownUrl }, 'socketio: the Redis adapter is not connected yet: answers reach only sockets on this instance until it is');
    else this.logger.info({ redis: this.context.redis?.shownUrl }, 'socketio: answers reach sockets on every instance through Redis');
  }

  /**
   * The secret kept in `defaultSessionSecretFile()`, made on first use: sessions survive a restart of this server
   * (and are shared by instances on the same machine and account). When the file cannot be kept, a random secret for
   * this process: sessions then end with the process.
   */
  private async defaultSessionKey(): Promise<Uint8Array> {
    const file = defaultSessionSecretFile();
    try {
      const kept = await readSecretFile(file);
      if (kept) {
        if (((await stat(file)).mode & 0o077) !== 0) this.logger.warn({ file }, 'socketio: the session secret file can be read by other users; chmod 600 it');
        return kept;
      }
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      // Written aside then linked into place: another process starting at the same moment sees the whole file or none.
      const aside = `${file}.${process.pid}.${randomUUID()}`;
      await writeFile(aside, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
      try {
        await link(aside, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      } finally {
        await unlink(aside).catch(() => undefined);
      }
      const made = await readSecretFile(file);
      if (made) return made;
      throw new Error('the session secret file is empty');
    } catch (error) {
      this.logger.warn({ file, reason: (error as Error).message }, 'socketio: no session_secret and the session secret file cannot be kept: sessions will not survive a restart');
      return randomBytes(32);
    }
  }

  private onConnection(socket: Socket, s: SocketIOSettings): void {
    this.logger.debug({ socket: socket.id }, 'socketio: user connected');
    this.limitEvents(socket, s.maxEventsPerSecond);
    this.disconnectOnExpiry(socket);
    socket.on('session_request', (data: unknown, ack?: unknown) => {
      try {
        this.onSessionRequest(socket, s, data, typeof ack === 'function' ? (ack as Ack) : undefined);
      } catch (error) {
        this.logger.error({ err: error, socket: socket.id }, 'socketio: session_request failed');
      }
    });
    socket.on(s.userMessageEvt, (data: unknown, ack?: unknown) => {
      void this.onUserMessage(socket, s, data, typeof ack === 'function' ? (ack as Ack) : undefined).catch((error: unknown) => {
        this.logger.error({ err: error, socket: socket.id }, 'socketio: handling a message failed');
      });
    });
    socket.on('disconnect', (reason) => {
      this.logger.debug({ socket: socket.id, reason }, 'socketio: user disconnected');
    });
  }

  /**
   * A token bucket per connection: `rate` events a second, bursts of `2 × rate`. An event past it is answered with an
   * `error` event and dropped. Each refusal counts one up, each accepted event one down: a connection whose refused
   * events outnumber its accepted ones by more than a burst keeps sending faster than the limit, and is closed.
   */
  private limitEvents(socket: Socket, rate: number): void {
    const burst = 2 * rate;
    let tokens = burst;
    let at = Date.now();
    let refused = 0;
    socket.use((packet, next) => {
      const now = Date.now();
      tokens = Math.min(burst, tokens + ((now - at) * rate) / 1000);
      at = now;
      if (tokens >= 1) {
        tokens -= 1;
        if (refused > 0) refused -= 1;
        return next();
      }
      refused += 1;
      if (refused === 1) this.logger.info({ socket: socket.id, rate }, 'socketio: too many events; refused');
      if (refused > burst) {
        if (socket.connected) this.logger.info({ socket: socket.id, rate }, 'socketio: connection closed: it kept sending too many events');
        socket.disconnect(true);
        return;
      }
      const last = packet[packet.length - 1];
      const answer = { error: `too many events (at most ${rate} a second)`, event: String(packet[0]) };
      socket.emit(ERROR_EVENT, answer);
      if (typeof last === 'function') (last as Ack)(answer);
    });
  }

  /** With `jwt_key`: the connection ends when its token expires (`exp`), and the client is told why. */
  private disconnectOnExpiry(socket: Socket): void {
    const exp = (socket.data.jwt as Record<string, unknown> | undefined)?.exp;
    if (typeof exp !== 'number') return;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const left = exp * 1000 - Date.now();
      if (left > 0) {
        // setTimeout holds at most ~24.8 days; a later expiry re-arms.
        timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
        return;
      }
      this.logger.info({ socket: socket.id }, 'socketio: connection closed: its token expired');
      socket.emit(ERROR_EVENT, { error: 'token expired', event: 'connect' });
      socket.disconnect(true);
    };
    arm();
    socket.once('disconnect', () => clearTimeout(timer));
  }

  /** The claim the connection's sessions are bound to ('' without `jwt_key`). */
  private bindingOf(socket: Socket): string {
    return typeof socket.data.binding === 'string' ? socket.data.binding : '';
  }

  /** Puts the socket in this session's room, out of the one it was in: a socket is in at most one session. */
  private async joinSession(socket: Socket, senderId: string): Promise<void> {
    // Synchronous up to the awaits, so that requests racing each other cannot leave a room behind.
    const previous = socket.data.session as string | undefined;
    if (previous === senderId && socket.rooms.has(senderId)) return;
    socket.data.session = senderId;
    const left = previous !== undefined && previous !== senderId && previous !== socket.id ? socket.leave(previous) : undefined;
    const joined = socket.join(senderId);
    await Promise.all([left, joined]);
  }

  /** Answers a bad event with `error {error, event}` (and the client's ack, if it gave one), and logs it. */
  private reject(socket: Socket, event: string, reason: string, ack: Ack | undefined): void {
    this.logger.info({ socket: socket.id, event, reason }, 'socketio: bad event ignored');
    const answer = { error: reason, event };
    socket.emit(ERROR_EVENT, answer);
    ack?.(answer);
  }

  /**
   * Confirms the session the client asked for only if this server signed its id (for this connection's JWT claim);
   * anything else, a sender id seen in a log included, gets a new session.
   */
  private onSessionRequest(socket: Socket, s: SocketIOSettings, data: unknown, ack: Ack | undefined): void {
    const key = this.sessionKey!;
    const binding = this.bindingOf(socket);
    const given = isObject(data) ? data.session_id : undefined;
    let senderId: string | undefined;
    if (given === undefined || given === null || given === '') senderId = undefined;
    else if ((typeof given === 'string' || typeof given === 'number') && String(given).length <= MAX_SESSION_ID_LENGTH) {
      senderId = verifySessionId(String(given), binding, key);
      if (senderId === undefined) this.logger.info({ socket: socket.id }, 'socketio: session_id not issued by this server (or for another user); a new session is started');
    } else return this.reject(socket, 'session_request', `session_id must be a string of at most ${MAX_SESSION_ID_LENGTH} characters`, ack);
    senderId ??= randomUUID().replace(/-/g, '');
    const sessionId = signSessionId(senderId, binding, key);
    if (s.sessionPersistence) void this.joinSession(socket, senderId);
    socket.emit('session_confirm', sessionId);
    ack?.(sessionId);
  }

  private async onUserMessage(socket: Socket, s: SocketIOSettings, data: unknown, ack: Ack | undefined): Promise<void> {
    const event = s.userMessageEvt;
    if (!isObject(data)) return this.reject(socket, event, 'the event must be an object {message, session_id}', ack);
    if (typeof data.message !== 'string' || data.message.trim() === '') {
      return this.reject(socket, event, 'message must be a non-empty string', ack);
    }
    let senderId = socket.id;
    if (s.sessionPersistence) {
      const sessionId = data.session_id;
      if ((typeof sessionId !== 'string' && typeof sessionId !== 'number') || String(sessionId) === '' || String(sessionId).length > MAX_SESSION_ID_LENGTH) {
        // Rasa ignores it with a warning: without a session the answers would have nowhere to go.
        return this.reject(socket, event, 'session_id is required with session_persistence; send session_request first', ack);
      }
      const verified = verifySessionId(String(sessionId), this.bindingOf(socket), this.sessionKey!);
      if (verified === undefined) return this.reject(socket, event, 'session_id was not issued by this server; send session_request for a new one', ack);
      senderId = verified;
      // A client that reconnected and sent before its session_request must still get the answers.
      await this.joinSession(socket, senderId);
    }
    if (!this.onNewMessage || !this.output) {
      this.logger.error('socketio: the channel was started without its router; the message is dropped');
      return;
    }
    const message = new UserMessage({
      text: data.message,
      senderId,
      replyTo: { room: senderId },
      inputChannel: this.name(),
      metadata: this.metadataOf(data, s, socket),
    });
    let accepted;
    try {
      accepted = await this.onNewMessage.enqueue(message);
    } catch (error) {
      if (!(error instanceof BacklogFullError)) throw error;
      // Nothing was queued: the client is told (and its ack), as for a bad event, and may retry after `retry_after` s.
      this.logger.info({ socket: socket.id, reason: error.message }, 'socketio: message refused, the queue is full');
      const answer = { error: error.message, event, retry_after: error.retryAfter };
      socket.emit(ERROR_EVENT, answer);
      ack?.(answer);
      return;
    }
    ack?.({ status: 'ok' });
    await accepted.done;
  }

  /** The `metadata_key` field (a JSON string is parsed), else `{}`. With the default key, Rasa's `metadata` too. */
  private metadataOf(data: Record<string, unknown>, s: SocketIOSettings, socket: Socket): Record<string, unknown> {
    let raw = data[s.metadataKey];
    if (raw === undefined && s.metadataKey === DEFAULT_METADATA_KEY) raw = data.metadata;
    if (raw === undefined || raw === null) return {};
    if (typeof raw === 'string') {
      try {
        raw = JSON.parse(raw) as unknown;
      } catch {
        this.logger.info({ socket: socket.id }, `socketio: ${s.metadataKey} is not valid JSON; ignored`);
        return {};
      }
    }
    if (!isObject(raw)) {
      this.logger.info({ socket: socket.id }, `socketio: ${s.metadataKey} is not an object; ignored`);
      return {};
    }
    return raw;
  }

  /**
   * Closes every client's connection and stops Socket.IO (the host closes the HTTP server itself; the bot's answers
   * already queued were sent before this is called). No Socket.IO disconnect packet is sent: a client told it was
   * disconnected on purpose (`io server disconnect`) does not reconnect, so a restart would strand every open chat.
   * A closed transport (`transport close`) is what a crash looks like, and clients reconnect by themselves, to this
   * server once it is back. Each connection first flushes what it still has to send; a client that does not finish
   * the WebSocket closing handshake within `CLOSE_GRACE_MS` is cut off, so shutdown never waits on a client.
   */
  override async close(): Promise<void> {
    const io = this.io;
    if (!io) return;
    this.io = undefined;
    const connections = new Set([...(this.nsp?.sockets.values() ?? []), ...io.of('/').sockets.values()].map((socket) => socket.conn));
    for (const connection of connections) connection.close();
    const closed = [...this.upgraded].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    for (const socket of this.upgraded) socket.destroy();
    this.upgraded.clear();
    this.context.server?.off('upgrade', this.trackUpgrade);
    io.engine.close();
    // The adapters unsubscribe, then their clients end (a Redis that is away must not hold the shutdown up).
    const clients = this.redisClients;
    this.redisClients = [];
    if (clients.length > 0) {
      await Promise.allSettled([...io._nsps.values()].map((nsp) => nsp.adapter.close()));
      await Promise.allSettled(clients.map((client) => quitWithin(client, CLOSE_GRACE_MS)));
    }
  }
}

/**
 * Whether a browser's `Origin` is this server's own: the `Host` the request was sent to, or the first
 * `X-Forwarded-Host` (a reverse proxy that rewrites `Host`). Trusting the latter here is safe: a page cannot set
 * headers on a WebSocket, and a cross-origin XHR with a custom header needs a CORS preflight this server does not grant.
 */
function sameOrigin(origin: string, headers: IncomingMessage['headers']): boolean {
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = headers['x-forwarded-host'];
  const candidates = [headers.host, (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim()];
  return candidates.some((candidate) => candidate !== undefined && candidate !== '' && candidate.toLowerCase() === host);
}

/** QUIT (what was sent is flushed), or a plain disconnect if Redis does not answer within `ms`. */
async function quitWithin(client: Redis, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([client.quit().catch(() => undefined), late]);
  clearTimeout(timer);
  client.disconnect();
}

/** The secret in `file`, or undefined when there is none yet. */
async function readSecretFile(file: string): Promise<Uint8Array | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return text === '' ? undefined : new TextEncoder().encode(text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export default SocketIOInput;
