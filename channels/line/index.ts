import {
  InputChannel,
  UserMessage,
  addressPart,
  credentialsSchema,
  jsonBody,
  rawBytes,
  requireVerified,
  secret,
  verificationSecret,
  z,
  type ReplyAddress,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { LineOutput, type LineAddress } from './output.js';
import { parseDelivery } from './parse.js';
import { verifySignature } from './verify.js';

export { LineOutput, buttonAction, splitText } from './output.js';
export type { LineAddress, LineApi, LineMessage } from './output.js';
export { parseDelivery, parseEvent } from './parse.js';
export type { IncomingMessage, IgnoredEvent, ParsedDelivery, ParseOptions } from './parse.js';
export { checkEventTime, verifySignature } from './verify.js';

const credentials = credentialsSchema({
  channel_secret: verificationSecret('the channel secret (LINE Developers Console → the channel → Basic settings): checks X-Line-Signature on every delivery'),
  channel_access_token: secret(z.string().min(1), 'a channel access token (Messaging API tab → Channel access token, long-lived)'),
  follow_intent: z.string().min(1).optional().meta({ description: 'what the bot receives when a user adds the account as a friend or unblocks it (e.g. /greet); unset: ignored' }),
  unfollow_intent: z.string().min(1).optional().meta({ description: 'what the bot receives when a user blocks the account (answers are dropped); unset: ignored' }),
  api_url: z.url({ protocol: /^https?$/ }).default('https://api.line.me').meta({ description: 'replaces the Messaging API base URL (proxies, tests)' }),
  typing_indicator: z.boolean().default(true).meta({ description: 'show the loading animation in one-on-one chats while a slow bot works' }),
  reply_window: z
    .number()
    .int()
    .min(0)
    .default(25)
    .meta({ description: 'seconds after an event during which answers use its reply token (free); later ones are pushed; 0: always push' }),
  replay_window: z
    .number()
    .int()
    .min(0)
    .default(3600)
    .meta({ description: 'seconds: an event whose timestamp is older is answered 200 and ignored (a replay, or a redelivery too late to answer); 0 turns the check off' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * LINE (Messaging API): deliveries arrive at `POST /webhook`, signed with the channel secret (`X-Line-Signature`).
 * LINE wants its 200 at once, so each delivery is answered first and its events are processed in the background,
 * deduplicated by `webhookEventId`. Answers use the event's reply token while it is fresh, then the push API.
 * See docs/channels/line.md.
 */
export class LineInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'LINE Official Account (Messaging API webhook)';
  /** Request bodies up to 1mb: LINE may batch several events (each text up to 5000 characters) in one delivery. */
  static override bodyLimit = '1mb';

  name(): string {
    return 'line';
  }

  /** An output for one address; public so a bot-side integration can push outside an answer. */
  output(address: LineAddress): LineOutput {
    return new LineOutput(this.http, {
      apiUrl: this.credentials.api_url.replace(/\/+$/, ''),
      accessToken: this.credentials.channel_access_token,
      typingIndicator: this.credentials.typing_indicator,
      logger: this.logger,
      replyWindowMs: this.credentials.reply_window * 1000,
      // One reply per token, whichever output (or instance, with --redis) gets to it first.
      claimReplyToken: (token) => this.context.store.claim(`line:reply-token:${token}`, 10 * 60_000),
    }, address);
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { to: recipient };
  }

  /** Answers go to the address's `to` (user, group or room), through its reply token while that may be used. */
  override outputChannel(replyTo: ReplyAddress): LineOutput {
    const to = addressPart(replyTo, 'to');
    const replyToken = addressPart(replyTo, 'reply_token', true);
    const receivedAt = typeof replyTo.received_at === 'number' ? replyTo.received_at : undefined;
    return this.output({ to, replyToken, receivedAt, blocked: replyTo.blocked === true });
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post(
      '/webhook',
      requireVerified((ctx) => verifySignature(rawBytes(ctx), ctx.headers, this.credentials.channel_secret), { skip: this.unverified }),
      async (ctx) => {
        const body = jsonBody(ctx);
        const receivedAt = Date.now();
        // LINE redelivers (when enabled) what is not answered 2xx: ignored events are answered 200 too.
        ctx.type = 'text/plain';
        ctx.body = 'OK';
        const { messages, ignored } = parseDelivery(body, {
          followIntent: this.credentials.follow_intent,
          unfollowIntent: this.credentials.unfollow_intent,
          replayWindow: this.credentials.replay_window,
          now: receivedAt,
        });
        for (const event of ignored) this.logger.debug({ sender: event.senderId, webhookEventId: event.webhookEventId, reason: event.reason }, 'line event ignored');
        // Queued in delivery order, not awaited: LINE gets its answer before the bot runs.
        for (const { replyToken, blocked, ...message } of messages) {
          const replyTo: ReplyAddress = {
            to: message.senderId,
            ...(replyToken !== undefined ? { reply_token: replyToken, received_at: receivedAt } : {}),
            ...(blocked ? { blocked: true } : {}),
          };
          await onNewMessage.enqueue(new UserMessage({ ...message, replyTo, inputChannel: this.name() }));
        }
      },
    );
    return router;
  }
}

export default LineInput;
