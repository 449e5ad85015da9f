import {
  InputChannel,
  UserMessage,
  addressPart,
  credentialsSchema,
  jsonBody,
  requireVerified,
  secret,
  z,
  type Context,
  type ReplyAddress,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { TelegramOutput } from './output.js';
import { parseUpdate, type TelegramUpdate } from './parse.js';
import { SECRET_TOKEN_PATTERN, deriveSecretToken, verifySecretToken, verifySetWebhookRequest } from './verify.js';

const credentials = credentialsSchema({
  access_token: secret(z.string().min(1), 'bot token from @BotFather (123456:ABC-...)'),
  verify: z.string().min(1).meta({ description: 'the bot username, without @' }),
  webhook_url: z.url({ protocol: /^https?$/ }).meta({ description: 'public URL of this webhook: https://<host>/webhooks/telegram/webhook' }),
  secret_token: secret(z.string().regex(SECRET_TOKEN_PATTERN, 'must be 1-256 characters of A-Z, a-z, 0-9, _ and -'), 'expected X-Telegram-Bot-Api-Secret-Token; derived from access_token when absent').optional(),
  api_url: z.url({ protocol: /^https?$/ }).default('https://api.telegram.org').meta({ description: 'Bot API base URL (self-hosted Bot API server)' }),
  typing_indicator: z.boolean().default(true).meta({ description: 'sendChatAction typing while a slow bot works' }),
  edited_messages: z.boolean().default(true).meta({ description: 'edited messages reach the bot as new messages, as in Rasa' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * Telegram: updates arrive at `POST /webhook`, stamped with the secret token registered by `setWebhook` (at startup
 * and on an authenticated `POST /set_webhook`); answers go to `POST {api_url}/bot<token>/<method>`.
 */
export class TelegramInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Telegram bot (webhook, verified by its secret token)';
  /** Request bodies up to 256kb: one Update: a 4096-character message with its entities, or a callback query with its message. */
  static override bodyLimit = '256kb';

  name(): string {
    return 'telegram';
  }


  /** The configured secret token, else the one derived from the bot token. */
  get secretToken(): string {
    return this.credentials.secret_token ?? deriveSecretToken(this.credentials.access_token);
  }

  private get botUsername(): string {
    return this.credentials.verify.replace(/^@/, '');
  }

  private output(): TelegramOutput {
    return new TelegramOutput(this.http, {
      apiUrl: this.credentials.api_url.replace(/\/+$/, ''),
      accessToken: this.credentials.access_token,
      typingIndicator: this.credentials.typing_indicator,
      logger: this.logger,
    });
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { chat_id: recipient };
  }

  /** Answers go to the address's `chat_id` (the sender's chat), with the bot token from the credentials. */
  override outputChannel(replyTo: ReplyAddress): TelegramOutput {
    addressPart(replyTo, 'chat_id');
    return this.output();
  }

  /**
   * Registers `webhook_url` with the secret token. Resolves with Telegram's error description on failure. `options`
   * go to the call: the host's `signal`, and no retries of the client's own when the host retries (`register`).
   */
  async setWebhook(options: { signal?: AbortSignal; retries?: number } = {}): Promise<string | undefined> {
    try {
      await this.output().call('setWebhook', { url: this.credentials.webhook_url, secret_token: this.secretToken }, undefined, options);
      this.logger.info({ url: this.credentials.webhook_url }, 'webhook registered with Telegram');
      this.markReady();
      return undefined;
    } catch (error) {
      // Stopped by the host (shutdown, or registered meanwhile by POST /set_webhook): nothing went wrong.
      if (options.signal?.aborted) return 'aborted';
      const body = (error as { responseBody?: string }).responseBody;
      let description = (error as Error).message;
      try {
        description = String((JSON.parse(body ?? '') as { description?: unknown }).description ?? description);
      } catch {
        // not JSON: keep the error's message
      }
      this.logger.warn({ url: this.credentials.webhook_url, error: this.http.mask(description) }, 'registering the webhook with Telegram failed');
      // Telegram sends nothing until it succeeds: GET /health/ready says so until a POST /set_webhook does.
      this.markNotReady(`setWebhook failed: ${this.http.mask(description)}`);
      return this.http.mask(description);
    }
  }

  /**
   * Rasa registers the webhook at startup and stops when that fails; here the host registers it in the background once
   * the server listens, and tries again with backoff while it fails (each attempt a single call: the host's retries
   * are the ones readiness reports). Meanwhile every route serves, `GET /health/ready` names the reason, and
   * `POST /set_webhook` registers at once.
   */
  override async register(signal: AbortSignal): Promise<string | undefined> {
    const failure = await this.setWebhook({ signal, retries: 0 });
    return failure === undefined ? undefined : `setWebhook failed: ${failure}`;
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const output = this.output();
    const parseOptions = { botUsername: this.botUsername, editedMessages: this.credentials.edited_messages };
    const secretToken = this.secretToken;

    const setWebhook = async (ctx: Context) => {
      const failure = await this.setWebhook();
      ctx.type = 'text/plain';
      ctx.status = failure === undefined ? 200 : 502;
      ctx.body = failure === undefined ? 'Webhook setup successful' : `Invalid webhook: ${failure}`;
    };
    // POST only, with the secret token: a GET from a crawler or a link preview must not make Telegram calls with the
    // bot token (Rasa answers GET too). Checked even with allow_unverified, which is about Telegram's requests.
    router.post('/set_webhook', requireVerified((ctx) => verifySetWebhookRequest(ctx.headers, secretToken)), setWebhook);

    router.post(
      '/webhook',
      requireVerified((ctx) => verifySecretToken(ctx.headers, secretToken), { skip: this.unverified }),
      async (ctx) => {
        const update = jsonBody(ctx) as TelegramUpdate;
        const parsed = parseUpdate(update, parseOptions);
        // Telegram redelivers anything not answered 200, so ignored updates are answered 200 too.
        ctx.type = 'text/plain';
        ctx.body = 'success';
        if (typeof parsed === 'string') {
          this.logger.debug({ update_id: update.update_id, reason: parsed }, 'update ignored');
          return;
        }
        let fresh = false;
        for (const incoming of parsed.messages) {
          const accepted = await onNewMessage.enqueue(new UserMessage({ ...incoming, replyTo: { chat_id: incoming.senderId }, inputChannel: this.name() }));
          fresh ||= !accepted.duplicate;
        }
        const chat = parsed.messages[0]?.senderId;
        if (parsed.callbackQueryId !== undefined && fresh) {
          // Not awaited: the acknowledgement to Telegram does not wait for it; a failure is only logged. Background work,
          // so a shutdown still stops the button's spinner.
          const answered = output.call('answerCallbackQuery', { callback_query_id: parsed.callbackQueryId }, chat).catch((error: unknown) => {
            this.logger.warn({ err: error }, 'answerCallbackQuery failed');
          });
          this.background(answered, { sender: chat, callbackQueryId: parsed.callbackQueryId });
        }
      },
    );
    return router;
  }
}

export default TelegramInput;
