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
import { MessengerOutput } from './output.js';
import { parseDelivery } from './parse.js';
import { checkDeliveryTime, verifySignature } from './verify.js';

export { MessengerOutput } from './output.js';
export { parseDelivery, parseEvent } from './parse.js';
export { checkDeliveryTime, verifySignature } from './verify.js';

const credentials = credentialsSchema({
  verify: secret(z.string().min(1), 'the verify token: any string, typed again into the Meta app (Webhooks → Verify token)'),
  secret: verificationSecret('the app secret (App settings → Basic): checks X-Hub-Signature-256 on every delivery'),
  'page-access-token': secret(z.string().min(1), 'the Page access token (Messenger → Settings → Access tokens)'),
  graph_version: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v21.0')
    .default('v21.0')
    .meta({ description: 'Graph API version of the outgoing calls' }),
  api_url: z.url({ protocol: /^https?$/ }).default('https://graph.facebook.com').meta({ description: 'replaces the Graph API base URL (proxies, tests)' }),
  typing_indicator: z.boolean().default(true).meta({ description: 'show "typing…" while a slow bot works' }),
  replay_window: z
    .number()
    .int()
    .min(0)
    .default(129600)
    .meta({ description: 'seconds: a delivery whose entry.time is older is answered 200 and ignored (Meta retries for up to 36 h); 0 turns the check off' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * Facebook Messenger, with Rasa's keys and webhook: `GET /webhook` answers Meta's subscription check, `POST /webhook`
 * receives deliveries signed with the app secret. Meta retries slow answers, so each delivery is answered `success`
 * at once and its messages are processed in the background, deduplicated by `mid`. See docs/channels/facebook.md.
 */
export class FacebookInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Facebook Messenger (a Page, through a Meta app)';
  /** Request bodies up to 1mb: Meta batches up to 1000 entries into one delivery. */
  static override bodyLimit = '1mb';

  name(): string {
    return 'facebook';
  }


  /** The Send API client; public so a bot-side integration can send outside an answer (a follow-up). */
  output(): MessengerOutput {
    const { api_url: apiUrl, graph_version: graphVersion } = this.credentials;
    return new MessengerOutput(this.http, {
      baseUrl: `${apiUrl.replace(/\/+$/, '')}/${graphVersion}`,
      pageAccessToken: this.credentials['page-access-token'],
      typingIndicator: this.credentials.typing_indicator,
    });
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { recipient_id: recipient };
  }

  /** Answers go to the sender's PSID (`recipient.id`), with the Page's token from the credentials. */
  override outputChannel(replyTo: ReplyAddress): MessengerOutput {
    addressPart(replyTo, 'recipient_id');
    return this.output();
  }

  /** Meta's subscription check: `hub.mode=subscribe`, `hub.verify_token` = `verify` → `hub.challenge` as text. */
  private subscribe(ctx: Context): void {
    let challenge: string;
    try {
      challenge = hubChallenge(ctx.query, this.credentials.verify);
    } catch (error) {
      if (error instanceof ForbiddenError) this.logger.warn({ mode: ctx.query['hub.mode'] }, 'webhook subscription check refused: wrong hub.mode or hub.verify_token');
      throw error;
    }
    ctx.type = 'text/plain';
    ctx.body = challenge;
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.get('/webhook', (ctx) => this.subscribe(ctx));
    router.post(
      '/webhook',
      requireVerified((ctx) => verifySignature(rawBytes(ctx), ctx.headers, this.credentials.secret), { skip: this.unverified }),
      async (ctx) => {
        const body = jsonBody(ctx);
        ctx.type = 'text/plain';
        ctx.body = 'success';
        // A stale delivery is answered 200: any other answer makes Meta retry it for 36 hours.
        const fresh = checkDeliveryTime(body, this.credentials.replay_window, Date.now());
        if (fresh !== true) {
          this.logger.info({ reason: fresh }, 'messenger delivery ignored: outside the replay window');
          return;
        }
        const { messages, ignored } = parseDelivery(body);
        for (const event of ignored) this.logger.debug({ sender: event.senderId, reason: event.reason }, 'messenger event ignored');
        // Queued in delivery order, not awaited: Meta gets its answer before the bot runs.
        for (const message of messages) {
          await onNewMessage.enqueue(new UserMessage({ ...message, replyTo: { recipient_id: message.senderId }, inputChannel: this.name() }));
        }
      },
    );
    return router;
  }
}

export default FacebookInput;
