import {
  BadRequestError,
  InputChannel,
  UserMessage,
  addressPart,
  credentialsSchema,
  formBody,
  jsonBody,
  rawBytes,
  jsonTooDeep,
  requireVerified,
  secret,
  verificationSecret,
  z,
  type Context,
  type ReplyAddress,
  type OnNewMessage,
  type Router,
  headerValue,
} from 'switchboard';
import { parseEvent, parseInteractive, type SlackParsed } from './parse.js';
import { SlackOutput } from './output.js';
import { verifySlackRequest } from './verify.js';

const credentials = credentialsSchema({
  slack_token: secret(z.string().min(1), 'bot token (xoxb-…), from OAuth & Permissions'),
  slack_signing_secret: verificationSecret('signing secret, from Basic Information → App Credentials'),
  slack_channel: z.string().optional().meta({ description: 'a channel ID to listen in without a mention; answers go there only when a message carries no channel' }),
  use_threads: z.boolean().default(false).meta({ description: 'answer in the thread of the message' }),
  errors_ignore_retry: z.array(z.string()).default(['http_timeout']).meta({
    description: 'Slack retry reasons answered with X-Slack-No-Retry; a retry (of any reason) is processed only when its message was not seen before',
  }),
  slack_retry_reason_header: z.string().default('x-slack-retry-reason').meta({ description: 'header carrying the retry reason' }),
  slack_retry_number_header: z.string().default('x-slack-retry-num').meta({ description: 'header carrying the retry number' }),
  conversation_granularity: z.enum(['sender', 'channel', 'thread']).default('sender').meta({ description: 'one conversation per user, per user and channel, or per user and thread' }),
  api_url: z.url({ protocol: /^https?$/ }).default('https://slack.com/api').meta({ description: "Slack's Web API base URL" }),
});

type SlackCredentials = z.output<typeof credentials>;

const header = (ctx: Context, name: string): string | undefined => headerValue(ctx.headers, name);

/**
 * Slack's Events API and interactivity on `POST /webhooks/slack/webhook`: signature checked first, answered at once
 * (Slack retries after 3 s), messages processed in the background and deduplicated by the message itself (its
 * channel and `ts`), so a retry and a mention delivered as both `message` and `app_mention` are answered once.
 */
export class SlackInput extends InputChannel<SlackCredentials> {
  static override credentials = credentials;
  static override description = 'Slack app: Events API messages and mentions, Block Kit buttons';
  /** Request bodies up to 1mb: interactivity payloads carry the whole message and view state. */
  static override bodyLimit = '1mb';

  name(): string {
    return 'slack';
  }


  /** The request as Slack's words: an Events API JSON body, or an interactivity form with a `payload` field. */
  private parse(ctx: Context): SlackParsed {
    const options = { granularity: this.credentials.conversation_granularity, slackChannel: this.credentials.slack_channel };
    if (!ctx.is('urlencoded')) return parseEvent(jsonBody(ctx), options);
    const payload = formBody(ctx).payload;
    if (payload === undefined) return { kind: 'invalid', reason: 'missing form field "payload"' };
    if (jsonTooDeep(payload)) return { kind: 'invalid', reason: 'JSON nested too deeply in "payload"' };
    try {
      return parseInteractive(JSON.parse(payload), options);
    } catch {
      return { kind: 'invalid', reason: 'malformed JSON in "payload"' };
    }
  }

  /**
   * The reply address of one message: the conversation it came from (a DM stays a DM), else `slack_channel`, else
   * the sender (no `channel`). As Rasa's `channel or slack_channel`: answering a private message in a shared channel
   * would leak it. Decided when the message arrives, so a later change of `slack_channel` cannot redirect it.
   */
  private replyTo(metadata: { out_channel?: string | undefined; thread_id?: string | undefined }): ReplyAddress {
    const { slack_channel, use_threads } = this.credentials;
    const channel = metadata.out_channel ?? slack_channel;
    // A thread only exists in its own channel.
    const inThread = use_threads && metadata.thread_id !== undefined && metadata.out_channel !== undefined;
    return {
      ...(channel !== undefined ? { channel } : {}),
      ...(inThread ? { thread_ts: metadata.thread_id! } : {}),
    };
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { channel: recipient };
  }

  /** `chat.postMessage` into the address's `channel` (else the sender), in its `thread_ts` when it has one. */
  override outputChannel(replyTo: ReplyAddress): SlackOutput {
    const { slack_token, api_url } = this.credentials;
    return new SlackOutput(this.http, {
      token: slack_token,
      apiUrl: api_url.replace(/\/+$/, ''),
      channel: addressPart(replyTo, 'channel', true),
      threadTs: addressPart(replyTo, 'thread_ts', true),
    });
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const settings = this.credentials;
    const check = (ctx: Context) => verifySlackRequest(rawBytes(ctx), ctx.headers, settings.slack_signing_secret, Date.now());

    router.post('/webhook', requireVerified(check, { skip: this.unverified }), async (ctx) => {
      const log = this.logger;
      const retryNum = header(ctx, settings.slack_retry_number_header);
      const retryReason = header(ctx, settings.slack_retry_reason_header);
      // Rasa drops these retries unread, and loses the message when the first delivery never got here (Slack's 3 s
      // ran out on the way). Here a retry goes through the same dedup as any delivery: dropped when its message was
      // seen, processed when not; a listed reason also tells Slack to stop retrying, once the message is safe with us
      // (a 429 for a full queue must leave Slack free to retry).
      const stopRetries = retryNum !== undefined && retryReason !== undefined && settings.errors_ignore_retry.includes(retryReason);

      const parsed = this.parse(ctx);
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      if (parsed.kind === 'challenge') {
        ctx.type = 'text/plain';
        ctx.body = parsed.challenge;
        return;
      }
      if (parsed.kind === 'ignored') {
        log.debug({ reason: parsed.reason }, 'slack request ignored');
        if (stopRetries) ctx.set('X-Slack-No-Retry', '1');
        ctx.type = 'text/plain';
        ctx.body = parsed.answer ?? '';
        return;
      }

      const { message } = parsed;
      const accepted = await onNewMessage.enqueue(
        new UserMessage({
          text: message.text,
          senderId: message.senderId,
          replyTo: this.replyTo(message.metadata),
          inputChannel: this.name(),
          messageId: message.messageId,
          metadata: message.metadata,
        }),
      );
      if (accepted.duplicate) {
        log.info({ messageId: message.messageId, retryNum, retryReason }, 'slack message already received: not processed again');
      } else if (retryNum !== undefined) {
        log.info({ messageId: message.messageId, retryNum, retryReason }, 'slack retry of a message not seen before: processed');
      }
      if (accepted.duplicate || stopRetries) ctx.set('X-Slack-No-Retry', '1');
      ctx.type = 'text/plain';
      ctx.body = '';
    });
    return router;
  }
}

export default SlackInput;
