import { PassThrough } from 'node:stream';
import {
  InputChannel,
  UserMessage,
  authenticateRest,
  credentialsSchema,
  restAuthKeys,
  restAuthOf,
  restRequest,
  restTokenKey,
  warnIfOpen,
  z,
  type Context,
  type OnNewMessage,
  type RestAuth,
  type RestRequest,
  type Router,
} from 'switchboard';
import { RestOutput, StreamingOutput } from './output.js';

/** `?stream=true`, read as Rasa reads it: the first value, lower-cased, is `true`. */
function wantsStream(ctx: Context): boolean {
  const value = ctx.query.stream;
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first.toLowerCase() === 'true';
}

const credentials = credentialsSchema({
  token: restTokenKey(),
  ...restAuthKeys,
});

/**
 * Rasa's REST channel: `POST /webhooks/rest/webhook {"sender", "message", "metadata"?}` answers the bot's replies as
 * a JSON array, each with its `recipient_id`; with `?stream=true`, one JSON object per line as each is sent.
 * Optionally authenticated by `token` or a JWT (`jwt_key`); `input_channel` only from authenticated requests or with
 * `allow_input_channel: true`.
 */
export class RestInput extends InputChannel<z.output<typeof credentials>> {
  static override credentials = credentials;
  static override description = "Rasa's REST protocol: the answers come back in the HTTP response";
  /** Request bodies up to 64kb: a chat message and its metadata. */
  static override bodyLimit = '64kb';

  name(): string {
    return 'rest';
  }

  private get auth(): RestAuth {
    return restAuthOf(this.credentials.token, this.credentials);
  }

  override async start(): Promise<void> {
    warnIfOpen(this.logger, this.name(), this.auth, this.context.server?.address());
  }

  private userMessage(request: RestRequest, output: RestOutput | StreamingOutput): UserMessage {
    return new UserMessage({
      text: request.message,
      senderId: request.sender,
      output,
      inputChannel: request.inputChannel ?? this.name(),
      metadata: request.metadata,
    });
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const auth = this.auth;
    router.post('/webhook', async (ctx) => {
      const authenticated = await authenticateRest(ctx, auth);
      const request = restRequest(ctx, { authenticated, allowInputChannel: this.credentials.allow_input_channel === true, logger: this.logger });
      if (wantsStream(ctx)) {
        // As Rasa frames it (its console reads this): `text/event-stream`, but each line a bare JSON answer, no
        // `data:`. The response starts now; each answer is written the moment the host sends it through the output.
        const body = new PassThrough();
        // A client that hangs up destroys the body (Koa); a late write must not become an unhandled error.
        body.on('error', () => {});
        const output = new StreamingOutput(body, this.logger);
        // A client that hangs up before the message's turn takes it out of the queue, as below.
        const gone = new AbortController();
        ctx.res.once('close', () => {
          if (!ctx.res.writableEnded) gone.abort();
        });
        // Refused (a full queue: 429) before the stream starts; else never rejects, and a bot that fails part-way
        // ends the stream after what it had already answered.
        const accepted = await onNewMessage.enqueue(this.userMessage(request, output), { signal: gone.signal });
        ctx.set('Content-Type', 'text/event-stream');
        ctx.body = body;
        void accepted.done.then(() => {
          if (!body.destroyed) body.end();
        });
        return;
      }
      const output = new RestOutput();
      // The answer is the bot's reply, so wait for it (a client that hangs up before its turn takes it out of the queue).
      await this.answerInResponse(ctx, onNewMessage, this.userMessage(request, output));
      if (output.failure) {
        // Not `200 []`: a client must be able to tell "the bot said nothing" from "the bot is broken". Already logged.
        ctx.status = output.failure.reason === 'timeout' ? 504 : 502;
        ctx.body = { error: output.failure.reason === 'timeout' ? 'the bot did not answer in time' : 'the bot failed to answer' };
        return;
      }
      ctx.body = output.messages;
    });
    return router;
  }
}

export default RestInput;
