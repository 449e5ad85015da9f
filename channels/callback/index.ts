import {
  InputChannel,
  UserMessage,
  addressPart,
  authenticateRest,
  credentialsSchema,
  restAuthKeys,
  restAuthOf,
  restRequest,
  restTokenKey,
  secret,
  warnIfOpen,
  z,
  type OnNewMessage,
  type ReplyAddress,
  type RestAuth,
  type Router,
} from 'switchboard';
import { CallbackOutput, type CallbackTarget } from './output.js';

const credentials = credentialsSchema({
  url: z.url({ protocol: /^https?$/ }).meta({ description: 'where the answers are POSTed' }),
  batch: z.boolean().default(true).meta({ description: 'one JSON array per message; false posts each answer on its own, as Rasa does' }),
  headers: z.record(z.string(), z.string()).default({}).meta({ description: 'headers added to each POST' }),
  params: z.record(z.string(), z.string()).default({}).meta({ description: 'query parameters added to each POST' }),
  basic_auth: secret(z.object({ username: z.string(), password: z.string() }), 'HTTP basic auth for the POSTs').optional(),
  token: secret(z.string(), 'a token sent as a query parameter').optional(),
  token_name: z.string().default('token').meta({ description: 'the query parameter that carries the token' }),
  // `token` already names what is sent to `url`, so the token incoming requests must carry is `auth_token`.
  auth_token: restTokenKey(),
  ...restAuthKeys,
});

/**
 * Rasa's callback channel: the same request as `rest` (read with the public `restRequest`), answered `success` at
 * once; the bot's answers are POSTed to `url` afterwards, through the shared client (timeouts, retries).
 */
export class CallbackInput extends InputChannel<z.output<typeof credentials>> {
  static override credentials = credentials;
  static override description = 'like rest, but the answers are POSTed to your URL afterwards';
  /** Request bodies up to 64kb: a chat message and its metadata, as rest. */
  static override bodyLimit = '64kb';

  name(): string {
    return 'callback';
  }

  private get auth(): RestAuth {
    return restAuthOf(this.credentials.auth_token, this.credentials);
  }

  override async start(): Promise<void> {
    warnIfOpen(this.logger, this.name(), this.auth, this.context.server?.address(), 'auth_token');
  }

  private target(): CallbackTarget {
    const values = this.credentials;
    const params = { ...values.params };
    if (values.token) params[values.token_name] = values.token;
    return {
      url: values.url,
      batch: values.batch,
      headers: values.headers,
      params,
      basicAuth: values.basic_auth,
    };
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { recipient_id: recipient };
  }

  /** A fresh collector per message, POSTing its answers to the configured `url` (one array, or one per answer). */
  override outputChannel(replyTo: ReplyAddress): CallbackOutput {
    addressPart(replyTo, 'recipient_id');
    return new CallbackOutput(this.http, this.target());
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const auth = this.auth;
    router.post('/webhook', async (ctx) => {
      const authenticated = await authenticateRest(ctx, auth);
      const request = restRequest(ctx, { authenticated, allowInputChannel: this.credentials.allow_input_channel === true, logger: this.logger });
      await onNewMessage.enqueue(
        new UserMessage({
          text: request.message,
          senderId: request.sender,
          // The answers go to `url`, from the credentials: the address only names the recipient.
          replyTo: { recipient_id: request.sender },
          inputChannel: request.inputChannel ?? this.name(),
          metadata: request.metadata,
        }),
      );
      ctx.type = 'text/plain';
      ctx.body = 'success';
    });
    return router;
  }
}

export default CallbackInput;
