import {
  BadRequestError,
  InputChannel,
  UnauthorizedError,
  UserMessage,
  addressPart,
  credentialsSchema,
  jsonBody,
  secret,
  verificationSecret,
  z,
  type OnNewMessage,
  type ReplyAddress,
  type Router,
} from 'switchboard';
import { RocketChatApi } from './api.js';
import { RocketChatOutput } from './output.js';
import { parseRequest } from './parse.js';
import { verifyToken } from './verify.js';

export { RocketChatApi } from './api.js';
export { RocketChatOutput, buttonAction, elementAttachment } from './output.js';
export { parseRequest, parseIntegration, parseOmnichannel } from './parse.js';
export { verifyToken, LIVECHAT_TOKEN_HEADER } from './verify.js';

const credentials = credentialsSchema({
  user: z.string().min(1).meta({ description: "the bot account's username (its own messages are ignored)" }),
  password: secret(z.string().min(1), 'its password'),
  server_url: z.url({ protocol: /^https?$/ }).meta({ description: 'the Rocket.Chat server: https://chat.example.com' }),
  webhook_token: verificationSecret("the outgoing integration's token (or the Omnichannel webhook's secret token)"),
  api_url: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'replaces server_url for API calls (proxies, tests)' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * Rocket.Chat through an outgoing integration (or an Omnichannel webhook), with Rasa's keys: answered 200 at once,
 * deduplicated by `message_id`; the room is the sender, and answers go there through the REST API as the bot user.
 * See docs/channels/rocketchat.md.
 */
export class RocketChatInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Rocket.Chat bot user: outgoing integration (or Omnichannel webhook) in, REST API out';
  /** Request bodies up to 1mb: the Omnichannel webhook can send a whole conversation's messages. */
  static override bodyLimit = '1mb';

  private apiClient: RocketChatApi | undefined;

  name(): string {
    return 'rocketchat';
  }


  get api(): RocketChatApi {
    const { api_url, server_url, user, password } = this.credentials;
    this.apiClient ??= new RocketChatApi(this.http, { baseUrl: (api_url ?? server_url).replace(/\/+$/, ''), user, password });
    return this.apiClient;
  }

  output(): RocketChatOutput {
    return new RocketChatOutput(this.api);
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { roomId: recipient };
  }

  /** Answers go to the address's `roomId`: the room the message came from. */
  override outputChannel(replyTo: ReplyAddress): RocketChatOutput {
    addressPart(replyTo, 'roomId');
    return this.output();
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post('/webhook', async (ctx) => {
      // Parsed first: the integration's token is a body field (a 400 for a body that cannot be read).
      const body = jsonBody(ctx);
      if (!this.unverified) {
        const verified = verifyToken(body, ctx.headers, this.credentials.webhook_token);
        if (verified !== true) {
          this.logger.warn({ reason: verified }, 'request rejected: not verified');
          throw new UnauthorizedError('request could not be verified');
        }
      }
      const parsed = parseRequest(body, this.credentials.user);
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      if (parsed.kind === 'ignored') {
        this.logger.debug({ reason: parsed.reason }, 'rocketchat request ignored');
      } else {
        for (const message of parsed.messages) {
          const accepted = await onNewMessage.enqueue(new UserMessage({ ...message, replyTo: { roomId: message.senderId }, inputChannel: this.name() }));
          if (accepted.duplicate) this.logger.info({ messageId: message.messageId }, 'rocketchat message already received: not processed again');
        }
      }
      ctx.status = 200;
      ctx.body = '';
    });
    return router;
  }
}

export default RocketChatInput;
