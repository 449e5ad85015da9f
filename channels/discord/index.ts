import {
  BadRequestError,
  InputChannel,
  UserMessage,
  addressPart,
  credentialsSchema,
  jsonBody,
  rawBytes,
  requireVerified,
  z,
  type Context,
  type OnNewMessage,
  type ReplyAddress,
  type Router,
} from 'switchboard';
import { DiscordOutput } from './output.js';
import { PONG, parseInteraction } from './parse.js';
import { PUBLIC_KEY_PATTERN, publicKeyFromHex, verifyDiscordRequest } from './verify.js';

export { DiscordOutput, actionRows, discordError, discordRetryAfter, splitText } from './output.js';
export { parseInteraction } from './parse.js';
export { publicKeyFromHex, verifyDiscordRequest } from './verify.js';

const credentials = credentialsSchema({
  public_key: z
    .string()
    .regex(PUBLIC_KEY_PATTERN, 'must be the 64 hex digits of the application\'s public key (General Information → Public Key)')
    .refine((hex) => publicKeyFromHex(hex) !== undefined, 'is not an Ed25519 public key (copy General Information → Public Key again)')
    .meta({ verification: true, description: 'the application\'s public key, hex (General Information → Public Key): checks X-Signature-Ed25519 on every interaction' })
    .optional(),
  application_id: z
    .string()
    .regex(/^\d+$/, 'must be the numeric application id (General Information → Application ID)')
    .meta({ description: 'the application id (General Information → Application ID): answers go to its interaction webhooks' }),
  command: z
    .string()
    .regex(/^[-_\p{L}\p{N}]{1,32}$/u, 'must be a slash command name without the slash (1-32 letters, digits, - or _)')
    .default('ask')
    .meta({ description: 'the slash command whose "text" option reaches the bot, without the slash' }),
  api_url: z.url({ protocol: /^https?$/ }).default('https://discord.com/api').meta({ description: 'replaces the Discord API base URL (proxies, tests); /v10/… is added' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * Discord interactions over HTTP (the application's Interactions Endpoint URL; no gateway connection, so plain channel
 * messages never arrive): a slash command's `text` option and clicks on our buttons reach the bot. Discord wants an
 * answer within 3 s, so each interaction is acknowledged at once with a deferred response and the bot's answers are
 * sent as follow-up messages through the interaction's webhook. See docs/channels/discord.md.
 */
export class DiscordInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Discord application: slash command and button interactions over HTTP (no gateway)';
  /** Request bodies up to 256kb: one interaction; a component click carries the whole message it was on. */
  static override bodyLimit = '256kb';

  name(): string {
    return 'discord';
  }

  /**
   * Interactions of this process whose deferred response is still on its way to Discord, by token: a fast bot's first
   * follow-up waits for it. Emptied as each response is sent (or its connection closes).
   */
  private readonly pending = new Map<string, Promise<void>>();

  private get publicKey() {
    const hex = this.credentials.public_key;
    return hex === undefined ? undefined : publicKeyFromHex(hex);
  }

  /**
   * Answers go to the interaction's follow-up webhook, named by its token. The token is in the address, and so in the
   * store with `--redis`: it is Discord's per-interaction token, not a credential of ours, and expires in 15 minutes.
   */
  override outputChannel(replyTo: ReplyAddress): DiscordOutput {
    const token = addressPart(replyTo, 'token');
    if (!/^[\w.-]+$/.test(token)) throw new TypeError('reply address "token" is not an interaction token');
    // Masked wherever the client logs a URL: it lets anyone post into the conversation while it lasts.
    this.http.addSecret(token);
    const base = this.credentials.api_url.replace(/\/+$/, '');
    const acknowledged = this.pending.get(token);
    return new DiscordOutput(this.http, {
      webhookUrl: `${base}/v10/webhooks/${this.credentials.application_id}/${token}`,
      logger: this.logger,
      ...(acknowledged ? { acknowledged } : {}),
    });
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const publicKey = this.publicKey;
    const check = (ctx: Context) => verifyDiscordRequest(rawBytes(ctx), ctx.headers, publicKey, Date.now());

    // Discord checks the endpoint when it is saved: a PING must get a PONG, and a badly signed request a 401.
    router.post('/webhook', requireVerified(check, { skip: this.unverified }), async (ctx) => {
      const parsed = parseInteraction(jsonBody(ctx), this.credentials.command);
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      if (parsed.kind === 'ping') {
        ctx.body = { type: PONG };
        return;
      }
      if (parsed.kind === 'ignored') {
        this.logger.debug({ reason: parsed.reason }, 'discord interaction not for the bot');
        ctx.body = parsed.answer;
        return;
      }
      const { message, token, ack } = parsed;
      const sent = new Promise<void>((resolve) => {
        ctx.res.once('finish', resolve);
        ctx.res.once('close', resolve);
      });
      this.pending.set(token, sent);
      void sent.then(() => this.pending.delete(token));
      // Queued, not awaited: the deferred response must reach Discord within 3 s, whatever the bot takes.
      const accepted = await onNewMessage.enqueue(new UserMessage({ ...message, replyTo: { token }, inputChannel: this.name() }));
      if (accepted.duplicate) this.logger.info({ messageId: message.messageId }, 'discord interaction already received: not processed again');
      ctx.body = ack;
    });
    return router;
  }
}

export default DiscordInput;
