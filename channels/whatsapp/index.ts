import {
  ForbiddenError,
  InputChannel,
  UserMessage,
  addressPart,
  credentialsSchema,
  hubChallenge,
  jsonBody,
  rawBytes,
  requireVerified,
  secret,
  verificationSecret,
  z,
  type Context,
  type ReplyAddress,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { WINDOW_ERROR, WhatsAppOutput } from './output.js';
import { parseNotification, type StatusUpdate } from './parse.js';
import { checkMessageTime, verifySignature } from './verify.js';

export { WhatsAppOutput, graphError, splitText } from './output.js';
export { parseMessage, parseNotification } from './parse.js';
export { checkMessageTime, messageTimeMs, verifySignature } from './verify.js';

const credentials = credentialsSchema({
  phone_number_id: z
    .string()
    .regex(/^\d+$/, 'must be the numeric id of the business phone number (WhatsApp → API Setup)')
    .meta({ description: 'the business phone number\'s id (WhatsApp → API Setup → Phone number ID), not the number itself' }),
  access_token: secret(z.string().min(1), 'a System User access token with whatsapp_business_messaging (or the temporary token of API Setup)'),
  app_secret: verificationSecret('the app secret (App settings → Basic): checks X-Hub-Signature-256 on every notification'),
  verify_token: secret(z.string().min(1), 'the verify token: any string, typed again into the Meta app (WhatsApp → Configuration → Webhook)'),
  api_version: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v23.0')
    .default('v23.0')
    .meta({ description: 'Graph API version of the outgoing calls' }),
  api_url: z.url({ protocol: /^https?$/ }).default('https://graph.facebook.com').meta({ description: 'replaces the Graph API base URL (proxies, tests)' }),
  typing_indicator: z.boolean().default(true).meta({ description: 'mark the message read and show "typing…" while a slow bot works' }),
  replay_window: z
    .number()
    .int()
    .min(0)
    .default(86400)
    .meta({ description: 'seconds: a message whose timestamp is older is answered 200 and ignored (past 24 h it could not be answered anyway); 0 turns the check off' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * WhatsApp through Meta's Cloud API (not Twilio): `GET /webhook` answers Meta's subscription check, `POST /webhook`
 * receives notifications signed with the app secret. Meta retries slow answers, so each notification is answered
 * `success` at once and its messages are processed in the background, deduplicated by their `wamid`. Status callbacks
 * are logged, never given to the bot. See docs/channels/whatsapp.md.
 */
export class WhatsAppInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'WhatsApp Cloud API (a business phone number, through a Meta app)';
  /** Request bodies up to 1mb: Meta batches messages and statuses of several numbers into one notification. */
  static override bodyLimit = '1mb';

  name(): string {
    return 'whatsapp';
  }

  /** The Cloud API client; `messageId` is the incoming message typing and read receipts are shown on. */
  output(messageId?: string): WhatsAppOutput {
    const { api_url: apiUrl, api_version: apiVersion, phone_number_id: phoneNumberId } = this.credentials;
    return new WhatsAppOutput(this.http, {
      baseUrl: `${apiUrl.replace(/\/+$/, '')}/${apiVersion}/${phoneNumberId}`,
      accessToken: this.credentials.access_token,
      typingIndicator: this.credentials.typing_indicator,
      ...(messageId !== undefined ? { messageId } : {}),
      logger: this.logger,
    });
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { to: recipient };
  }

  /** Answers go `to` the sender's WhatsApp id; typing shows on `message_id`, the message being answered. */
  override outputChannel(replyTo: ReplyAddress): WhatsAppOutput {
    addressPart(replyTo, 'to');
    return this.output(addressPart(replyTo, 'message_id', true));
  }

  /** Meta's subscription check: `hub.mode=subscribe`, `hub.verify_token` = `verify_token` → `hub.challenge` as text. */
  private subscribe(ctx: Context): void {
    let challenge: string;
    try {
      challenge = hubChallenge(ctx.query, this.credentials.verify_token);
    } catch (error) {
      if (error instanceof ForbiddenError) this.logger.warn({ mode: ctx.query['hub.mode'] }, 'webhook subscription check refused: wrong hub.mode or hub.verify_token');
      throw error;
    }
    ctx.type = 'text/plain';
    ctx.body = challenge;
  }

  /** Status callbacks are for the log only: a failure says why (the 24-hour window by name), the rest at debug. */
  private logStatus(status: StatusUpdate): void {
    const about = { id: status.id, recipient: status.recipientId, status: status.status };
    if (status.status !== 'failed') {
      this.logger.debug(about, 'whatsapp status update');
      return;
    }
    const outsideWindow = status.errors.some((error) => error.code === WINDOW_ERROR);
    this.logger.warn(
      { ...about, errors: status.errors, ...(outsideWindow ? { reason: 'outside the 24-hour customer service window' } : {}) },
      outsideWindow ? 'whatsapp could not deliver an answer: the user last wrote more than 24 hours ago' : 'whatsapp could not deliver an answer',
    );
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.get('/webhook', (ctx) => this.subscribe(ctx));
    router.post(
      '/webhook',
      requireVerified((ctx) => verifySignature(rawBytes(ctx), ctx.headers, this.credentials.app_secret), { skip: this.unverified }),
      async (ctx) => {
        const body = jsonBody(ctx);
        // Any other answer than 200 makes Meta retry the notification for days.
        ctx.type = 'text/plain';
        ctx.body = 'success';
        const { messages, statuses, ignored } = parseNotification(body, this.credentials.phone_number_id);
        for (const event of ignored) this.logger.debug({ sender: event.senderId, reason: event.reason }, 'whatsapp event ignored');
        for (const status of statuses) this.logStatus(status);
        const now = Date.now();
        // Queued in notification order, not awaited: Meta gets its answer before the bot runs.
        for (const { timestamp, ...message } of messages) {
          const fresh = checkMessageTime(timestamp, this.credentials.replay_window, now);
          if (fresh !== true) {
            this.logger.info({ sender: message.senderId, messageId: message.messageId, reason: fresh }, 'whatsapp message ignored: outside the replay window');
            continue;
          }
          await onNewMessage.enqueue(
            new UserMessage({ ...message, replyTo: { to: message.senderId, message_id: message.messageId }, inputChannel: this.name() }),
          );
        }
      },
    );
    return router;
  }
}

export default WhatsAppInput;
