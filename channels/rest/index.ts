import {
  CollectingOutputChannel,
  InputChannel,
  UserMessage,
  credentialsSchema,
  restRequest,
  type OnNewMessage,
  type RestRequest,
  type Router,
} from 'switchboard';

/**
 * Rasa's REST channel: `POST /webhooks/rest/webhook {"sender", "message", "metadata"?}` answers the bot's replies as
 * a JSON array, each with its `recipient_id`. No keys, no verification (put it behind your own auth if public).
 */
export class RestInput extends InputChannel {
  static override credentials = credentialsSchema({});
  static override description = "Rasa's REST protocol: the answers come back in the HTTP response";

  name(): string {
    return 'rest';
  }

  private userMessage(request: RestRequest, output: CollectingOutputChannel): UserMessage {
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
    router.post('/webhook', async (ctx) => {
      const request = restRequest(ctx);
      const output = new CollectingOutputChannel();
      // The answer is the bot's reply, so wait for it; on a bot error, what was collected is returned, as in Rasa.
      await onNewMessage(this.userMessage(request, output));
      ctx.body = output.messages;
    });
    return router;
  }
}

export default RestInput;
