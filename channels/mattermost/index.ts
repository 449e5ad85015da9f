import {
  BadRequestError,
  CredentialsError,
  InputChannel,
  UnauthorizedError,
  UserMessage,
  addressPart,
  credentialsSchema,
  formBody,
  jsonBody,
  secret,
  verificationSecret,
  z,
  type Context,
  type OnNewMessage,
  type ReplyAddress,
  type Router,
  type CredentialsSchema,
} from 'switchboard';
import { MattermostApi } from './api.js';
import { MattermostOutput } from './output.js';
import { parseRequest } from './parse.js';
import { verifyClick, verifyWebhookToken } from './verify.js';

export { MattermostApi } from './api.js';
export { MattermostOutput } from './output.js';
export { parseRequest, parseWebhook, parseClick, stripTrigger } from './parse.js';
export { verifyWebhookToken, verifyClick, signAction, type SignedAction, type ClickCheck } from './verify.js';

const credentials = credentialsSchema({
  url: z.url({ protocol: /^https?$/ }).meta({ description: 'the API base URL, with /api/v4: https://chat.example.com/api/v4' }),
  token: secret(z.string().min(1), "the bot account's access token (or user + pw)").optional(),
  user: z.string().min(1).optional().meta({ description: 'login name or email, with pw, instead of token' }),
  pw: secret(z.string().min(1), 'its password').optional(),
  team: z.string().optional().meta({ description: "the team's name (accepted for old Rasa files; not used)" }),
  webhook_url: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'the public URL of this webhook: buttons call it back (without it, buttons are text)' }),
  webhook_token: verificationSecret("the outgoing webhook's token: each request's \"token\" must equal it"),
  api_url: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'replaces url (proxies, tests)' }),
  typing_indicator: z.boolean().default(true).meta({ description: 'show "typing…" while a slow bot works' }),
  button_max_age: z
    .number()
    .int()
    .min(1)
    .default(86400)
    .meta({ description: 'seconds a button the bot sent stays clickable: its signature names its post and its issue time' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * Mattermost through an outgoing webhook (messages with a trigger word, or all messages of a channel) and
 * interactive buttons, with Rasa's keys and answers. Answered at once, deduplicated by `post_id`; answers go to the
 * channel of the message through the REST API. See docs/channels/mattermost.md.
 */
export class MattermostInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Mattermost bot: outgoing webhook in, REST API out, interactive buttons';
  /** Request bodies up to 256kb: an outgoing webhook or a button click with its context. */
  static override bodyLimit = '256kb';

  private apiClient: MattermostApi | undefined;

  /** Checks what the schema cannot: a token, or a user and its password. */
  static override fromCredentials<T extends InputChannel>(this: (new (credentials: never) => T) & { credentials?: CredentialsSchema }, raw?: unknown): T {
    const channel = InputChannel.fromCredentials.call(this as never, raw) as unknown as T;
    const values = channel.credentials as Credentials;
    if (!values.token && !(values.user && values.pw)) {
      throw new CredentialsError(values.user ? 'missing "pw" (the password of "user")' : 'missing "token" (or "user" and "pw" to log in)', values.user ? 'pw' : 'token');
    }
    return channel;
  }

  name(): string {
    return 'mattermost';
  }

  /** The clock buttons are signed and checked with (ms); a subclass can fix it. */
  now(): number {
    return Date.now();
  }


  get api(): MattermostApi {
    const { api_url, url, token, user, pw } = this.credentials;
    this.apiClient ??= new MattermostApi(this.http, { baseUrl: (api_url ?? url).replace(/\/+$/, ''), token, user, pw });
    return this.apiClient;
  }

  /** The output for one message: answers go to its channel. */
  output(channelId?: string): MattermostOutput {
    return new MattermostOutput(this.api, {
      channelId,
      webhookUrl: this.credentials.webhook_url,
      webhookToken: this.credentials.webhook_token,
      typingIndicator: this.credentials.typing_indicator,
      now: () => this.now(),
    });
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { channel_id: recipient };
  }

  /** Answers go to the address's `channel_id` (the channel of the post or click), else to the sender. */
  override outputChannel(replyTo: ReplyAddress): MattermostOutput {
    return this.output(addressPart(replyTo, 'channel_id', true));
  }

  /** Form-encoded or JSON, as the hook's content type says; a JSON body with a form type is read as JSON too. */
  private body(ctx: Context): Record<string, unknown> {
    if (ctx.is('urlencoded') && !/^\s*\{/.test(String((ctx.request as { rawBody?: unknown }).rawBody ?? ''))) return formBody(ctx);
    return jsonBody(ctx);
  }

  /** True when this is the bot's own post; a failed lookup lets the post through (logged). */
  private async isOwnPost(userId: string): Promise<boolean> {
    try {
      return userId === (await this.api.botId());
    } catch (error) {
      this.logger.warn({ err: error }, "the bot's own user id could not be looked up: the post is processed");
      return false;
    }
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post('/webhook', async (ctx) => {
      // Parsed first: the token is a body field (a 400 for a body that cannot be read), checked before anything else.
      const body = this.body(ctx);
      const parsed = parseRequest(body);
      const click = parsed.kind === 'message' && parsed.click;
      if (!this.unverified) {
        const verified = 'context' in body && body.context !== null && typeof body.context === 'object' && !Array.isArray(body.context)
          ? verifyClick(body.context as Record<string, unknown>, body, this.credentials.webhook_token, { maxAgeSeconds: this.credentials.button_max_age, now: this.now() })
          : verifyWebhookToken(body, ctx.headers, this.credentials.webhook_token);
        if (verified !== true) {
          this.logger.warn({ reason: verified }, 'request rejected: not verified');
          throw new UnauthorizedError('request could not be verified');
        }
      }
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      if (parsed.kind === 'ignored') {
        this.logger.debug({ reason: parsed.reason }, 'mattermost request ignored');
      } else if (!parsed.click && (await this.isOwnPost(parsed.message.senderId))) {
        this.logger.debug({ post_id: parsed.message.messageId }, "the bot's own post ignored");
      } else {
        const { message } = parsed;
        const accepted = await onNewMessage.enqueue(
          new UserMessage({ ...message, replyTo: { channel_id: message.metadata.channel_id }, inputChannel: this.name() }),
        );
        if (accepted.duplicate) this.logger.info({ messageId: message.messageId }, 'mattermost post already received: not processed again');
      }
      // Mattermost reads a JSON answer to a webhook as a post to make; Rasa's `success` is not JSON, so nothing is posted.
      // A click's answer may update the post: `{}` leaves it as it is.
      if (click) {
        ctx.body = {};
      } else {
        ctx.type = 'text/plain';
        ctx.body = 'success';
      }
    });
    return router;
  }
}

export default MattermostInput;
