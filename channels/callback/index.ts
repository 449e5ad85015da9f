import { secret, z, credentialsSchema, type OnNewMessage, type Router } from 'switchboard';
import { RestInput } from '../rest/index.js';
import { CallbackOutput, type CallbackTarget } from './output.js';

const credentials = credentialsSchema({
  url: z.url({ protocol: /^https?$/ }).meta({ description: 'where the answers are POSTed' }),
  batch: z.boolean().default(true).meta({ description: 'one JSON array per message; false posts each answer on its own, as Rasa does' }),
  headers: z.record(z.string(), z.string()).default({}).meta({ description: 'headers added to each POST' }),
  params: z.record(z.string(), z.string()).default({}).meta({ description: 'query parameters added to each POST' }),
  basic_auth: secret(z.object({ username: z.string(), password: z.string() }), 'HTTP basic auth for the POSTs').optional(),
  token: secret(z.string(), 'a token sent as a query parameter').optional(),
  token_name: z.string().default('token').meta({ description: 'the query parameter that carries the token' }),
});

/**
 * Rasa's callback channel: the same request as `rest`, answered `success` at once; the bot's answers are POSTed to
 * `url` afterwards, through the shared client (timeouts, retries).
 */
export class CallbackInput extends RestInput {
  static override credentials = credentials;
  static override description = 'like rest, but the answers are POSTed to your URL afterwards';

  override name(): string {
    return 'callback';
  }

  private target(): CallbackTarget {
    const values = this.credentials as z.output<typeof credentials>;
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

  override router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const target = this.target();
    router.post('/webhook', async (ctx) => {
      const request = this.parseRequest(ctx);
      const output = new CallbackOutput(this.http, target);
      await onNewMessage.enqueue(this.userMessage(request, output));
      ctx.type = 'text/plain';
      ctx.body = 'success';
    });
    return router;
  }
}

export default CallbackInput;
