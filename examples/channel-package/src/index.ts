import {
  BadRequestError,
  InputChannel,
  UserMessage,
  credentialsSchema,
  jsonBody,
  rawBody,
  requireVerified,
  secret,
  verificationSecret,
  z,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { EchoSmsOutput } from './output.js';
import { parseInbound } from './parse.js';
import { verifyEchoSignature } from './verify.js';

const credentials = credentialsSchema({
  api_key: secret(z.string().min(1), 'API key, from the Echo SMS dashboard'),
  webhook_secret: verificationSecret('signs incoming webhooks (X-EchoSMS-Signature)'),
  number: z.string().min(1).meta({ description: 'the number the bot sends from' }),
  api_url: z.url().default('https://api.echo-sms.example').meta({ description: "Echo SMS's API base URL" }),
});

/** Echo SMS: a JSON webhook signed with HMAC-SHA256, answered through a REST API. */
export class EchoSmsInput extends InputChannel<z.output<typeof credentials>> {
  static override credentials = credentials;
  static override description = 'Echo SMS (an example channel package)';

  name(): string {
    return 'echosms';
  }

  router(onNewMessage: OnNewMessage): Router {
    const values = this.credentials;
    const output = new EchoSmsOutput({ http: this.http, apiUrl: values.api_url.replace(/\/$/, ''), apiKey: values.api_key, number: values.number });
    const router = this.newRouter();
    const verified = requireVerified(
      (ctx) => verifyEchoSignature(rawBody(ctx), ctx.get('x-echosms-signature') || undefined, values.webhook_secret ?? ''),
      { skip: this.unverified },
    );
    router.post('/webhook', verified, async (ctx) => {
      const inbound = parseInbound(jsonBody(ctx));
      if (typeof inbound === 'string') throw new BadRequestError(inbound);
      // Echo SMS retries until it gets a 2xx: acknowledge at once, answer in the background, once per message id.
      await onNewMessage.enqueue(
        new UserMessage({
          text: inbound.text,
          senderId: inbound.from,
          messageId: inbound.id,
          output,
          inputChannel: this.name(),
          metadata: inbound.media.length > 0 ? { media: inbound.media } : {},
        }),
      );
      ctx.body = { received: true };
    });
    return router;
  }
}

export default EchoSmsInput;
