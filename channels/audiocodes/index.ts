import {
  BadRequestError,
  CollectingOutputChannel,
  InputChannel,
  NotFoundError,
  UserMessage,
  credentialsSchema,
  jsonBody,
  requireVerified,
  verificationSecret,
  z,
  type Context,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { AudiocodesOutput, type Activity } from './output.js';
import { conversationId, parseActivities, type IncomingActivity } from './parse.js';
import { verifyToken } from './verify.js';

export { AudiocodesOutput, type Activity } from './output.js';
export { parseActivities, parseActivity, callParameters, conversationId, MAX_CONVERSATION_ID_LENGTH, type IncomingActivity, type ParsedActivities } from './parse.js';
export { verifyToken } from './verify.js';

const credentials = credentialsSchema({
  token: verificationSecret('the token set on the bot in VoiceAI Connect: every request carries it as `Authorization: Bearer <token>`'),
  use_websocket: z.boolean().default(false).meta({ description: "Rasa's asynchronous WebSocket mode; only webhook mode (false) is served: with true the channel warns and answers in the HTTP response" }),
  keep_alive: z.number().positive().default(120).meta({ description: 'seconds: VoiceAI Connect refreshes a conversation this often (expiresSeconds)' }),
  keep_alive_expiration_factor: z.number().min(1).default(1.5).meta({ description: 'a conversation not refreshed for keep_alive × this many seconds is forgotten' }),
  response_timeout: z.number().positive().default(8).meta({
    description: "seconds: a bot slower than this is answered with --bot-apology, before VoiceAI Connect stops waiting (it resumes listening after 10 s)",
  }),
});

type Credentials = z.output<typeof credentials>;

/** The conversation's routes, relative to the bot URL `/webhooks/audiocodes/webhook` (VoiceAI Connect resolves them against it). */
function conversationUrls(id: string, keepAlive: number): Record<string, unknown> {
  const base = `conversation/${encodeURIComponent(id)}`;
  return { activitiesURL: `${base}/activities`, disconnectURL: `${base}/disconnect`, refreshURL: `${base}/keepalive`, expiresSeconds: keepAlive };
}

/**
 * AudioCodes VoiceAI Connect's Bot API (webhook mode) with Rasa's keys: VoiceAI Connect creates a conversation at
 * `POST /webhook`, then posts the caller's speech and call events to `conversation/<id>/activities` and reads the
 * bot's answers (messages to speak, `hangup` / `transfer` events) from the response; it refreshes the conversation at
 * `.../keepalive` and ends it at `.../disconnect`. Every request carries the bot's token as a Bearer token.
 * See docs/channels/audiocodes.md.
 */
export class AudiocodesInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'AudioCodes VoiceAI Connect (Bot API, webhook mode): phone calls, answered in the HTTP response';
  /** Request bodies up to 64kb: a few activities with their recognition details. */
  static override bodyLimit = '64kb';

  /** Open conversations: id → when VoiceAI Connect last used it (ms). In this process only, as in Rasa. */
  private readonly conversations = new Map<string, number>();
  private lastSweep = 0;

  name(): string {
    return 'audiocodes';
  }

  override async start(): Promise<void> {
    if (this.credentials.use_websocket) {
      this.logger.warn('audiocodes: use_websocket: true is not supported; VoiceAI Connect is answered in the HTTP response (webhook mode)');
    }
  }

  private get expiryMs(): number {
    return this.credentials.keep_alive * this.credentials.keep_alive_expiration_factor * 1000;
  }

  /** Opens (or reopens) a conversation; what the create request does. */
  openConversation(id: string, now = Date.now()): void {
    if (now - this.lastSweep > 60_000) {
      this.lastSweep = now;
      for (const [key, seen] of this.conversations) if (now - seen > this.expiryMs) this.conversations.delete(key);
    }
    this.conversations.set(id, now);
  }

  /** Marks the conversation used, or throws 404 when it is unknown or expired. */
  private touch(ctx: Context): string {
    const id = String(ctx.params.conversation ?? '');
    const seen = this.conversations.get(id);
    const now = Date.now();
    if (seen === undefined || now - seen > this.expiryMs) {
      this.conversations.delete(id);
      throw new NotFoundError('conversation not found');
    }
    this.conversations.set(id, now);
    return id;
  }

  private check = (ctx: Context): true | string => verifyToken(ctx.headers, this.credentials.token);

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const verified = requireVerified(this.check, { skip: this.unverified });

    // VoiceAI Connect's connectivity check.
    router.get('/webhook', verified, (ctx) => {
      ctx.body = { type: 'ac-bot-api', success: true };
    });

    router.post('/webhook', verified, (ctx) => {
      const id = conversationId(jsonBody(ctx));
      if (typeof id !== 'string') throw new BadRequestError(id.reason);
      // Rasa answers 500 to a conversation it already has; a repeated create (VoiceAI Connect retrying) is answered
      // the same URLs.
      this.openConversation(id);
      this.logger.debug({ conversation: id }, 'audiocodes conversation started');
      ctx.body = conversationUrls(id, this.credentials.keep_alive);
    });

    router.post('/conversation/:conversation/keepalive', verified, (ctx) => {
      this.touch(ctx);
      ctx.body = {};
    });

    router.post('/conversation/:conversation/disconnect', verified, async (ctx) => {
      const id = this.touch(ctx);
      const body = jsonBody(ctx);
      const metadata = { reason: body.reason ?? null, ...(body.reasonCode !== undefined ? { reasonCode: body.reasonCode } : {}) };
      // The call is over: nobody hears an answer to `/session_end`, so acknowledge at once. Forgotten only once queued:
      // a full queue (429) leaves the conversation for VoiceAI Connect's retry.
      await onNewMessage.enqueue(new UserMessage({ text: '/session_end', senderId: id, output: new CollectingOutputChannel(), inputChannel: this.name(), metadata }));
      this.conversations.delete(id);
      this.logger.debug({ conversation: id }, 'audiocodes conversation ended');
      ctx.body = {};
    });

    router.post('/conversation/:conversation/activities', verified, async (ctx) => {
      const id = this.touch(ctx);
      const parsed = parseActivities(jsonBody(ctx));
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      for (const reason of parsed.ignored) this.logger.debug({ conversation: id, reason }, 'audiocodes activity ignored');
      ctx.type = 'application/json';
      ctx.body = { conversation: id, activities: await this.answer(ctx, id, parsed.activities, onNewMessage) };
    });
    return router;
  }

  /**
   * The bot's answers to the activities, one after the other, within `response_timeout`: past it, the answer is the
   * host's apology (what was already answered, then the apology), and what the bot says later is dropped.
   */
  private async answer(ctx: Context, id: string, activities: IncomingActivity[], onNewMessage: OnNewMessage): Promise<Activity[]> {
    const output = new AudiocodesOutput(this.logger);
    if (activities.length === 0) return output.close();
    // VoiceAI Connect stopped waiting, or the deadline passed: activities not yet with the bot never reach it.
    const gone = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableEnded) gone.abort();
    };
    ctx.res.once('close', onClose);
    const work = (async () => {
      for (const activity of activities) {
        if (gone.signal.aborted) return;
        const message = new UserMessage({
          text: activity.text,
          senderId: id,
          output,
          inputChannel: this.name(),
          // VoiceAI Connect repeats an activity the bot answered too late: the repeat is answered, not processed.
          ...(activity.id !== undefined ? { messageId: `${id}/${activity.id}` } : {}),
          metadata: activity.metadata,
        });
        await onNewMessage(message, { signal: gone.signal });
        // A failed bot has had its apology sent through the output; the request's later activities are not given to
        // it (one apology per request, not one per activity).
        if (output.failure) return;
      }
    })();
    try {
      const result = await this.inTime(work.then(() => 'done' as const), this.credentials.response_timeout * 1000);
      if (result === 'done') return output.close();
    } finally {
      ctx.res.off('close', onClose);
    }
    gone.abort();
    // The bot goes on; whatever it still says has no one to hear it.
    work.catch((error: unknown) => this.logger.debug({ err: error, conversation: id }, 'audiocodes: a late message was not processed'));
    this.logger.warn({ conversation: id, timeoutS: this.credentials.response_timeout }, 'audiocodes: the bot did not answer within response_timeout; answered with the apology');
    const answered = output.close().slice();
    const apology = new AudiocodesOutput(this.logger);
    await this.apologize(apology, id);
    return [...answered, ...apology.close()];
  }
}

export default AudiocodesInput;
