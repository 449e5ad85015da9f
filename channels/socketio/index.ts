import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server, type Namespace, type Socket } from 'socket.io';
import { BacklogFullError, InputChannel, UserMessage, credentialsSchema, isObject, secret, z, type OnNewMessage, type Router } from 'switchboard';
import { JWT_METHODS, verifyJwt, type JwtMethod } from './verify.js';
import { SocketIOOutput } from './output.js';
import { renderWebchat } from './webchat.js';

export { SocketIOOutput } from './output.js';
export type { RoomEmitter, SocketQuickReply } from './output.js';
export { verifyJwt, JWT_METHODS } from './verify.js';
export { renderWebchat, WEBCHAT_HTML } from './webchat.js';

/** The metadata field rasa-webchat sends; Rasa's own default is `metadata`, also read when this key is the default. */
export const DEFAULT_METADATA_KEY = 'customData';
/** The event a bad client event is answered with: `{error, event}`. */
export const ERROR_EVENT = 'error';
/** Longest session id accepted (it becomes the sender id and a room name). */
export const MAX_SESSION_ID_LENGTH = 256;
/** How long `close()` lets WebSocket clients answer the closing handshake before cutting their connection. */
export const CLOSE_GRACE_MS = 1_000;

const EVENT_NAME = z.string().min(1).max(100).refine((name) => !['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener', 'session_request', 'session_confirm', ERROR_EVENT].includes(name), 'is a reserved event name');

const credentials = credentialsSchema({
  user_message_evt: EVENT_NAME.default('user_uttered').meta({ description: 'the event the client sends messages with' }),
  bot_message_evt: EVENT_NAME.default('bot_uttered').meta({ description: 'the event the answers are sent with' }),
  session_persistence: z.boolean().default(false).meta({ description: 'the session id (not the socket id) is the sender: a reconnecting client keeps its conversation' }),
  socketio_path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, 'must be a path such as /socket.io').default('/socket.io').meta({ description: 'the Socket.IO endpoint, at the server root' }),
  namespace: z.string().max(100).nullable().optional().meta({ description: 'Socket.IO namespace; default /' }),
  cors_allowed_origins: z.union([z.string(), z.array(z.string())]).default('*').meta({ description: 'origins allowed to connect: * or a list' }),
  metadata_key: z.string().min(1).default(DEFAULT_METADATA_KEY).meta({ description: 'the message field carrying metadata (rasa-webchat: customData)' }),
  jwt_key: secret(z.string().min(1), 'enables the connect JWT (auth.token): the HS* secret or a PEM public key').optional(),
  jwt_method: z.enum(JWT_METHODS).default('HS256').meta({ description: 'the JWT algorithm' }),
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

  /** Set to false before the host mounts the channel to drop the web chat route whatever the credentials say (`--no-webchat`). */
  serveWebchat: boolean | undefined;
  private onNewMessage: OnNewMessage | undefined;
  private io: Server | undefined;
  private nsp: Namespace | undefined;
  private output: SocketIOOutput | undefined;
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
      corsAllowedOrigins: Array.isArray(origins) ? origins.map(String) : typeof origins === 'string' && origins !== '' ? [origins] : ['*'],
      metadataKey: str('metadata_key', DEFAULT_METADATA_KEY),
      jwtKey: typeof c.jwt_key === 'string' && c.jwt_key !== '' ? c.jwt_key : undefined,
      jwtMethod: (JWT_METHODS as readonly string[]).includes(c.jwt_method as string) ? (c.jwt_method as JwtMethod) : 'HS256',
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
    const anyOrigin = s.corsAllowedOrigins.includes('*');
    const io = new Server(httpServer, {
      path: s.path,
      serveClient: true,
      maxHttpBufferSize: s.maxPayloadBytes,
      cors: { origin: anyOrigin ? '*' : s.corsAllowedOrigins },
      // CORS headers only guard polling; the origin check covers WebSocket upgrades too. Clients without an Origin
      // header (servers, scripts) are not browsers and pass.
      allowRequest: (req: IncomingMessage, callback) => {
        const origin = req.headers.origin;
        if (anyOrigin || origin === undefined || s.corsAllowedOrigins.includes(origin)) callback(null, true);
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
        const result = raw === '' ? 'no auth.token' : await verifyJwt(raw, key, s.jwtMethod);
        if (typeof result === 'string') {
          this.logger.info({ socket: socket.id, reason: result }, 'socketio: connection refused: JWT not valid');
          next(new Error('not authorized'));
        } else {
          socket.data.jwt = result;
          next();
        }
      });
    }
    nsp.on('connection', (socket) => this.onConnection(socket, s));
    io.engine.on('connection_error', (error: { code?: number; message?: string }) => {
      this.logger.debug({ code: error.code, reason: error.message }, 'socketio: connection error');
    });
  }

  private onConnection(socket: Socket, s: SocketIOSettings): void {
    this.logger.debug({ socket: socket.id }, 'socketio: user connected');
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

  /** Answers a bad event with `error {error, event}` (and the client's ack, if it gave one), and logs it. */
  private reject(socket: Socket, event: string, reason: string, ack: Ack | undefined): void {
    this.logger.info({ socket: socket.id, event, reason }, 'socketio: bad event ignored');
    const answer = { error: reason, event };
    socket.emit(ERROR_EVENT, answer);
    ack?.(answer);
  }

  private onSessionRequest(socket: Socket, s: SocketIOSettings, data: unknown, ack: Ack | undefined): void {
    const given = isObject(data) ? data.session_id : undefined;
    let sessionId: string;
    if (given === undefined || given === null || given === '') sessionId = randomUUID().replace(/-/g, '');
    else if ((typeof given === 'string' || typeof given === 'number') && String(given).length <= MAX_SESSION_ID_LENGTH) sessionId = String(given);
    else return this.reject(socket, 'session_request', `session_id must be a string of at most ${MAX_SESSION_ID_LENGTH} characters`, ack);
    if (s.sessionPersistence) void socket.join(sessionId);
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
      senderId = String(sessionId);
      // A client that reconnected and sent before its session_request must still get the answers.
      if (!socket.rooms.has(senderId)) await socket.join(senderId);
    }
    if (!this.onNewMessage || !this.output) {
      this.logger.error('socketio: the channel was started without its router; the message is dropped');
      return;
    }
    const message = new UserMessage({
      text: data.message,
      senderId,
      output: this.output,
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
  }
}

export default SocketIOInput;
