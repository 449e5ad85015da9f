import type { Writable } from 'node:stream';
import { CollectingOutputChannel, type BotFailure, type BotMessage, type Logger, type StreamingText } from 'switchboard';

/** Collects the answers for the HTTP response, and notes when the bot failed (the response is then a 5xx). */
export class RestOutput extends CollectingOutputChannel {
  failure: BotFailure | undefined;

  override botFailed(_recipientId: string, failure: BotFailure): void {
    this.failure = failure;
  }
}

/**
 * Writes each answer to the response as it is sent, one JSON object and a `\n` per answer (Rasa's `?stream=true`
 * framing), instead of keeping them for the end.
 */
export class StreamingOutput extends CollectingOutputChannel {
  private hungUp = false;

  constructor(
    private readonly body: Writable,
    private readonly logger: Logger,
  ) {
    super();
  }

  override name(): string {
    return 'rest-stream';
  }

  /** Partial texts are written as they grow. */
  override streamIntervalMs = 0;

  /**
   * A streamed text answer: a line `{"recipient_id", "text": <text so far>, "partial": true}` each time it grows, then
   * the whole answer as the usual line(s), without `partial`.
   */
  override streamText(recipientId: string): StreamingText {
    return {
      update: async (text: string) => {
        if (this.body.destroyed || this.body.writableEnded) return;
        this.body.write(`${JSON.stringify({ recipient_id: recipientId, text, partial: true })}\n`);
      },
      end: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    };
  }

  override async sendResponse(recipientId: string, message: BotMessage): Promise<void> {
    const before = this.messages.length;
    await super.sendResponse(recipientId, message);
    const answers = this.messages.splice(before);
    if (this.body.destroyed || this.body.writableEnded) {
      // The client went away: the bot has already handled the message, its answers have no one to go to.
      if (!this.hungUp) this.logger.debug({ sender: recipientId }, 'stream client disconnected; answers dropped');
      this.hungUp = true;
      return;
    }
    // No waiting for the client to read: a reply is a few small objects, and a stalled client must not hold up the
    // sender's queue.
    for (const answer of answers) this.body.write(`${JSON.stringify(answer)}\n`);
  }
}
