import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { BacklogFullError, CredentialsError, InputChannel, UserMessage, credentialsSchema, verificationSecret, z, type OnNewMessage, type Router } from 'switchboard';
import { JambonzOutput, gatherVerb, sayVerb, type Verb } from './output.js';
import { parseMessage, type JambonzEvent } from './parse.js';
import { offersSubprotocol, verifyBasicAuth } from './verify.js';

export { JambonzOutput, gatherVerb, sayVerb, HANGUP_DELAY_SECONDS } from './output.js';
export type { Verb } from './output.js';
export { parseMessage, GATHER_HOOK } from './parse.js';
export type { JambonzEvent, CallParameters } from './parse.js';
export { verifyBasicAuth } from './verify.js';

/** The WebSocket subprotocol jambonz asks for, and the only one this channel speaks. */
export const SUBPROTOCOL = 'ws.jambonz.org';
/** jambonz hangs up when a `session:new` or `verb:hook` is not acked within 5 s (JAMBONES_WS_API_MSG_RESPONSE_TIMEOUT). */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 4_000;
/** The largest frame accepted: a `session:new` carries the call's SIP headers, a few kilobytes. */
export const MAX_FRAME_BYTES = 256 * 1024;
/** How long `close()` lets jambonz answer the closing handshake before cutting the connection. */
export const CLOSE_GRACE_MS = 1_000;

const credentials = credentialsSchema({
  username: z.string().min(1).optional().meta({ description: "the Basic auth username set on the application's webhook in the jambonz portal (needed with password)" }),
  password: verificationSecret("the Basic auth password set on the application's webhook in the jambonz portal: jambonz sends both on the WebSocket upgrade"),
  initial_prompt: z.string().min(1).default('/session_start').meta({ description: 'what the bot receives when a call starts, as Rasa sends it' }),
  reprompt_fallback_phrase: z.string().min(1).default("I'm sorry, I didn't catch that.").meta({ description: 'said when the caller says nothing; the bot is not asked' }),
  response_timeout_ms: z.number().int().min(500).max(60_000).default(DEFAULT_RESPONSE_TIMEOUT_MS).meta({ description: 'how long the bot may take before the apology is said instead (jambonz waits 5 s for an answer, then hangs up)' }),
});

type Settings = z.output<typeof credentials>;

/**
 * jambonz's WebSocket application API, as Rasa's `jambonz` channel uses it: jambonz connects to
 * `/webhooks/jambonz/websocket` (subprotocol `ws.jambonz.org`) for each call. `session:new` starts a conversation
 * (the call's `call_sid` is the sender; the bot receives `initial_prompt`), each `verb:hook` on `/gather` carries what
 * the caller said, `call:status completed` ends it (`/session_end`). Every `session:new` and `verb:hook` is answered
 * with an `ack` on the same socket whose verbs say the bot's answers and listen again (`gather`), or hang up.
 * See docs/channels/jambonz.md.
 */
export class JambonzInput extends InputChannel<Settings> {
  static override credentials = credentials;
  static override description = "jambonz phone calls over its WebSocket API: speech in, the bot's answers spoken";
  /** No HTTP route takes a body; frames have their own limit (`MAX_FRAME_BYTES`). */
  static override bodyLimit = '64kb';

  private onNewMessage: OnNewMessage | undefined;
  private wss: WebSocketServer | undefined;
  private readonly upgrading = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.onUpgrade(req, socket, head);

  constructor(settings: Settings = {} as Settings) {
    super(settings);
    // Basic auth needs both; a password alone would check nothing but half of it.
    if (settings.password !== undefined && settings.username === undefined) throw new CredentialsError('missing "username", needed with "password" to verify that calls come from jambonz', 'username');
  }

  name(): string {
    return 'jambonz';
  }

  /** The path jambonz connects to: the application's calling webhook is `wss://<host>/webhooks/jambonz/websocket`. */
  get websocketPath(): string {
    return `/webhooks/${this.name()}/websocket`;
  }

  /** The health route; the WebSocket is not a Koa route, it is served on the HTTP server's `upgrade` (see `start()`). */
  router(onNewMessage: OnNewMessage): Router {
    this.onNewMessage = onNewMessage;
    return this.newRouter();
  }

  /** Takes WebSocket upgrades to `websocketPath` on the host's HTTP server, as socket.io does for its own path. */
  override async start(): Promise<void> {
    if (this.wss) return;
    const server = this.context.server;
    if (!server) throw new Error('the jambonz channel needs the host HTTP server (context.server) to attach to');
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    server.on('upgrade', this.upgrading);
  }

  override async close(): Promise<void> {
    const wss = this.wss;
    if (!wss) return;
    this.wss = undefined;
    this.context.server?.off('upgrade', this.upgrading);
    // 1001 (going away), not 1000: jambonz treats 1000 as "the application is done" and reconnects after anything else.
    const closed = [...wss.clients].map((ws) => new Promise((resolve) => {
      ws.once('close', resolve);
      ws.close(1001, 'server shutting down');
    }));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const wss = this.wss;
    const path = (req.url ?? '').split('?', 1)[0]!.replace(/(.)\/+$/, '$1');
    if (!wss || path !== this.websocketPath) return;
    const refuse = (status: number, text: string, headers: string[] = []): void => {
      // Destroyed once the refusal is flushed, not before: destroying at once could drop it.
      socket.once('finish', () => socket.destroy());
      socket.on('error', () => socket.destroy());
      socket.end([`HTTP/1.1 ${status} ${text}`, 'Connection: close', 'Content-Length: 0', ...headers, '', ''].join('\r\n'));
    };
    const { username, password } = this.credentials;
    if (!this.unverified || (username !== undefined && password !== undefined)) {
      const verified = verifyBasicAuth(req.headers, username, password);
      if (verified !== true) {
        this.logger.info({ reason: verified, address: req.socket.remoteAddress }, 'jambonz: connection refused: not verified');
        return refuse(401, 'Unauthorized', ['WWW-Authenticate: Basic realm="switchboard", charset="UTF-8"']);
      }
    }
    if (!offersSubprotocol(req.headers, SUBPROTOCOL)) {
      this.logger.info({ offered: req.headers['sec-websocket-protocol'] }, `jambonz: connection refused: it does not offer the ${SUBPROTOCOL} subprotocol`);
      return refuse(400, 'Bad Request');
    }
    wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
  }

  private onConnection(ws: WebSocket): void {
    this.logger.debug('jambonz: connected');
    ws.on('error', (error) => this.logger.info({ reason: error.message }, 'jambonz: connection error'));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        this.logger.info('jambonz: binary frame ignored');
        return;
      }
      const event = parseMessage(rawText(data));
      void this.onEvent(ws, event).catch((error: unknown) => this.logger.error({ err: error, call_sid: 'call_sid' in event ? event.call_sid : undefined }, 'jambonz: handling a message failed'));
    });
  }

  private async onEvent(ws: WebSocket, event: JambonzEvent): Promise<void> {
    const s = this.credentials;
    switch (event.kind) {
      case 'call':
        this.logger.debug({ call_sid: event.call_sid }, 'jambonz: new call');
        return this.answer(ws, event.msgid, event.call_sid, s.initial_prompt, event.call);
      case 'utterance':
        this.logger.debug({ call_sid: event.call_sid, confidence: event.confidence }, 'jambonz: caller said something');
        return this.answer(ws, event.msgid, event.call_sid, event.text, {});
      case 'no-input':
        // The bot is not asked: silence is not an utterance (Rasa). After no speech the caller is prompted again.
        this.logger.debug({ call_sid: event.call_sid, reason: event.reason }, 'jambonz: nothing heard');
        return send(ws, ack(event.msgid, event.reason === 'timeout' ? [sayVerb(s.reprompt_fallback_phrase), gatherVerb()] : [gatherVerb()]));
      case 'reconnect':
        // jambonz waits for this ack before it sends anything else (Rasa never sends it). Its verbs are ignored, except
        // when the socket dropped before `session:new` was acked: then they are the call's first verbs, and a call
        // given none would end. Listening is right in both cases.
        this.logger.debug({ call_sid: event.call_sid }, 'jambonz: reconnected');
        return send(ws, ack(event.msgid, [gatherVerb()]));
      case 'ended': {
        this.logger.debug({ call_sid: event.call_sid }, 'jambonz: call ended');
        const output = new JambonzOutput(this.logger);
        output.close();
        await this.handle(new UserMessage({ text: '/session_end', senderId: event.call_sid, output, inputChannel: this.name(), metadata: {} }));
        return;
      }
      case 'ignore':
        if (event.error) this.logger.warn({ call_sid: event.call_sid, reason: event.reason }, 'jambonz: error reported; jambonz ends the call');
        else this.logger.debug({ call_sid: event.call_sid, reason: event.reason }, 'jambonz: message ignored');
        // A message jambonz waits on must still be acked, or it hangs up after 5 s; keep listening.
        if (event.msgid !== undefined && /^verb:hook for another hook/.test(event.reason)) send(ws, ack(event.msgid, [gatherVerb()]));
    }
  }

  private async handle(message: UserMessage): Promise<'done' | BacklogFullError> {
    if (!this.onNewMessage) throw new Error('jambonz: the channel was started without its router');
    try {
      await this.onNewMessage(message);
      return 'done';
    } catch (error) {
      if (error instanceof BacklogFullError) return error;
      throw error;
    }
  }

  /**
   * Sends `text` to the bot and acks `msgid` with its answers, then a gather (or the hangup it asked for). jambonz
   * hangs up when the ack is late, so a bot slower than `response_timeout_ms` is answered with the host's apology
   * (`--bot-apology`) and the caller is listened to again; its late answers are dropped.
   */
  private async answer(ws: WebSocket, msgid: string, callSid: string, text: string, metadata: Record<string, unknown>): Promise<void> {
    const output = new JambonzOutput(this.logger);
    const message = new UserMessage({ text, senderId: callSid, output, inputChannel: this.name(), messageId: msgid, metadata });
    const result = await this.inTime(this.handle(message), this.credentials.response_timeout_ms);
    let verbs: Verb[];
    if (result === 'done') {
      verbs = output.close();
      if (!output.hangup) verbs = [...verbs, gatherVerb()];
    } else {
      output.close();
      if (result === 'late') this.logger.warn({ call_sid: callSid, timeoutMs: this.credentials.response_timeout_ms }, 'jambonz: the bot did not answer before jambonz stops waiting; the apology is said');
      else this.logger.info({ call_sid: callSid, reason: result.message }, 'jambonz: message refused, the queue is full; the apology is said');
      verbs = [...(await this.apologyVerbs()), gatherVerb()];
    }
    send(ws, ack(msgid, verbs));
  }

  private async apologyVerbs(): Promise<Verb[]> {
    const output = new JambonzOutput(this.logger);
    await this.apologize(output, 'apology');
    return output.close();
  }
}

/** The `ack` that answers a `session:new`, `verb:hook` or `session:reconnect`, with the verbs to run next. */
function ack(msgid: string, verbs?: Verb[]): Record<string, unknown> {
  return verbs === undefined ? { type: 'ack', msgid } : { type: 'ack', msgid, data: verbs };
}

function send(ws: WebSocket, message: Record<string, unknown>): void {
  // A call that ended meanwhile has nobody to hear it.
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

export default JambonzInput;
