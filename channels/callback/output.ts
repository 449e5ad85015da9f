import { CollectingOutputChannel, type BotMessage, type HttpClient } from 'switchboard';

export interface CallbackTarget {
  url: string;
  /** One JSON array per user message (true), or one JSON object per answer, as Rasa's implementation posts. */
  batch: boolean;
  headers: Record<string, string>;
  params: Record<string, string>;
  basicAuth?: { username: string; password: string };
}

/** Collects the bot's answers to one message and POSTs them to the configured URL. */
export class CallbackOutput extends CollectingOutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly target: CallbackTarget,
  ) {
    super();
  }

  override name(): string {
    return 'callback';
  }

  private async post(body: unknown, recipientId: string): Promise<void> {
    await this.http.post(this.target.url, body, {
      headers: this.target.headers,
      query: this.target.params,
      basicAuth: this.target.basicAuth,
      channel: 'callback',
      recipient: recipientId,
    });
  }

  override async sendResponse(recipientId: string, message: BotMessage): Promise<void> {
    const before = this.messages.length;
    await super.sendResponse(recipientId, message);
    if (this.target.batch) return;
    for (const answer of this.messages.splice(before)) await this.post(answer, recipientId);
  }

  /** After the last answer: the whole reply as one array. */
  override async flush(recipientId: string): Promise<void> {
    if (!this.target.batch || this.messages.length === 0) return;
    const answers = this.messages.splice(0);
    try {
      await this.post(answers, recipientId);
    } catch (error) {
      // Put back for the host's outbox: its retry of this flush must send the same batch, not an empty one.
      this.messages.unshift(...answers);
      throw error;
    }
  }
}
