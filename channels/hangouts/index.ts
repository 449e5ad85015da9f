import {
  BadRequestError,
  InputChannel,
  UserMessage,
  credentialsSchema,
  isObject,
  jsonBody,
  requireVerified,
  timestampMs,
  withinReplayWindow,
  z,
  type Context,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { CERTS_PATH, ChatCerts } from './certs.js';
import { HangoutsOutput, MESSAGE_LIMIT_BYTES } from './output.js';
import { parseEvent, type SpaceIntents } from './parse.js';
import { verifyToken } from './verify.js';

export { ChatCerts, CHAT_ISSUER, CERTS_PATH, maxAgeMs, REFETCH_COOLDOWN_MS, DEFAULT_MAX_AGE_MS, MIN_MAX_AGE_MS, MAX_MAX_AGE_MS } from './certs.js';
export { HangoutsOutput, TEXT_LIMIT, MESSAGE_LIMIT_BYTES, card, textCard, chatButton, buttonWidgets, elementCard, type CardV2 } from './output.js';
export { parseEvent, messageText, clickedPayload, isRoom, type SpaceIntents, type IncomingEvent, type ParsedEvent } from './parse.js';
export { verifyToken, SIGNING_ALGORITHMS, CLOCK_TOLERANCE_S } from './verify.js';

const credentials = credentialsSchema({
  project_id: z
    .string()
    .regex(/^\d+$/, 'must be the Cloud project number (digits; Cloud console → project settings), the audience of Google Chat\'s tokens')
    .meta({ verification: true, description: "the Google Cloud project number (not its id): the audience of the Bearer token Google Chat sends with every event" })
    .optional(),
  hangouts_user_added_intent_name: z.string().min(1).default('/user_added').meta({ description: 'what the bot receives when the app is added to a direct message' }),
  hangouts_room_added_intent_name: z.string().min(1).default('/room_added').meta({ description: 'what the bot receives when the app is added to a space' }),
  hangouts_removed_intent_name: z.string().min(1).default('/bot_removed').meta({ description: 'what the bot receives when the app is removed from a space' }),
  api_url: z.url({ protocol: /^https?$/ }).default('https://www.googleapis.com').meta({ description: "replaces the base Google's signing certificates are read from (proxies, tests)" }),
  replay_window: z
    .number()
    .int()
    .min(0)
    .default(3600)
    .meta({ description: "seconds: an event whose eventTime is older is answered {} and ignored; 0 turns the check off" }),
});

type Credentials = z.output<typeof credentials>;

/**
 * Google Chat (formerly Hangouts Chat) with Rasa's keys: every event's Bearer token is checked against the certificates
 * Google publishes for chat@system.gserviceaccount.com, and the bot's answers go back in the HTTP response, as the one
 * message Chat posts (Chat apps answer synchronously, as Rasa's channel does). See docs/channels/hangouts.md.
 */
export class HangoutsInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Google Chat (Rasa\'s "hangouts"): an HTTP-endpoint Chat app, answered in the response';
  /** Request bodies up to 256kb: one event, with its message, annotations and attachments' metadata. */
  static override bodyLimit = '256kb';

  private certsClient: ChatCerts | undefined;

  name(): string {
    return 'hangouts';
  }

  /** Google's signing certificates, fetched and cached. */
  get certs(): ChatCerts {
    this.certsClient ??= new ChatCerts(this.http, `${this.credentials.api_url.replace(/\/+$/, '')}${CERTS_PATH}`, { logger: this.logger });
    return this.certsClient;
  }

  get intents(): SpaceIntents {
    return {
      userAdded: this.credentials.hangouts_user_added_intent_name,
      roomAdded: this.credentials.hangouts_room_added_intent_name,
      removed: this.credentials.hangouts_removed_intent_name,
    };
  }

  private async check(ctx: Context): Promise<true | string> {
    const projectId = this.credentials.project_id;
    if (projectId === undefined) return 'no project_id to check the token against';
    return verifyToken(ctx.headers, this.certs.getKey, { projectId });
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post('/webhook', requireVerified((ctx) => this.check(ctx), { skip: this.unverified }), async (ctx) => {
      const event = jsonBody(ctx);
      const parsed = parseEvent(event, this.intents);
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      ctx.type = 'application/json';
      if (parsed.kind === 'ignored') {
        this.logger.debug({ reason: parsed.reason }, 'google chat event ignored');
        ctx.body = {};
        return;
      }
      // The token does not sign the body: an event replayed with a still-valid token is bounded by its eventTime.
      const fresh = withinReplayWindow(timestampMs(isObject(event) ? event.eventTime : undefined), this.credentials.replay_window, Date.now());
      if (fresh !== true) {
        this.logger.info({ reason: `eventTime: ${fresh}` }, 'google chat event ignored: outside the replay window');
        ctx.body = {};
        return;
      }
      const { type, ...message } = parsed.message;
      const output = new HangoutsOutput();
      // The answer is the response, so wait for the bot (a Chat that stopped waiting — it gives an app 30 s — takes the
      // message out of the queue). A bot that fails is answered with what it said (the host's apology): Chat shows an
      // error for anything but a message.
      await this.answerInResponse(ctx, onNewMessage, new UserMessage({ ...message, output, inputChannel: this.name() }));
      // Chat posts nothing in a space the app has just left.
      const answer = type === 'REMOVED_FROM_SPACE' ? {} : output.message();
      const bytes = Buffer.byteLength(JSON.stringify(answer));
      if (bytes > MESSAGE_LIMIT_BYTES) this.logger.warn({ sender: message.senderId, bytes }, `the answer is over Google Chat's ${MESSAGE_LIMIT_BYTES} bytes per message: Chat will not post it`);
      ctx.body = answer;
    });
    return router;
  }
}

export default HangoutsInput;
