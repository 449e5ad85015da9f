import type { Bot } from '../bot.js';
import { HttpClient, HttpRequestError } from '../http.js';
import { silentLogger, type Logger } from '../logger.js';
import type { BotMessage, UserMessage } from '../message.js';

export interface RemoteBotOptions {
  /** The bot server's REST webhook, e.g. `http://localhost:5006/webhooks/rest/webhook` of a Rasa server. */
  url: string;
  http?: HttpClient;
  logger?: Logger;
  /** Per attempt; a Rasa server can take a while on its first message. */
  timeoutMs?: number;
  /** What the user is told when the bot server cannot answer. An empty list says nothing. */
  apology?: BotMessage[];
}

export const DEFAULT_APOLOGY: BotMessage[] = [{ text: 'Sorry, I am having trouble answering right now. Please try again in a moment.' }];

/**
 * A bot behind HTTP that speaks Rasa's REST channel protocol: `POST {sender, message, metadata, input_channel}` →
 * `[{recipient_id, text|image|buttons|...}]`. Switchboard can run in front of a Rasa server this way.
 */
export class RemoteBot implements Bot {
  readonly url: string;
  private readonly http: HttpClient;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly apology: BotMessage[];

  /** The URL as logged: without credentials or query (a bot server URL may carry a token). */
  private readonly logUrl: string;

  constructor(options: RemoteBotOptions) {
    this.url = options.url;
    this.logUrl = urlForLogs(options.url);
    this.logger = options.logger ?? silentLogger;
    this.http = options.http ?? new HttpClient({ logger: this.logger });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.apology = options.apology ?? DEFAULT_APOLOGY;
  }

  async handle(message: UserMessage): Promise<BotMessage[]> {
    try {
      const response = await this.http.post<unknown>(
        this.url,
        { sender: message.senderId, message: message.text, metadata: message.metadata, input_channel: message.inputChannel },
        { timeoutMs: this.timeoutMs, channel: message.inputChannel, recipient: message.senderId },
      );
      if (!Array.isArray(response.body)) {
        this.logger.error(
          { sender: message.senderId, channel: message.inputChannel, url: this.logUrl, status: response.status, response: response.text.slice(0, 200) },
          'bot server did not answer a JSON array',
        );
        return structuredClone(this.apology);
      }
      return (response.body as unknown[])
        // Only objects are answers: a null, a string or a nested list would reach the output channel as garbage.
        .filter((answer): answer is Record<string, unknown> => answer !== null && typeof answer === 'object' && !Array.isArray(answer))
        .map(({ recipient_id: _recipient, ...answer }) => answer as BotMessage);
    } catch (error) {
      const reason = error instanceof HttpRequestError ? error.message : (error as Error).message;
      this.logger.error({ sender: message.senderId, channel: message.inputChannel, url: this.logUrl, reason }, 'bot server failed to answer');
      return structuredClone(this.apology);
    }
  }
}

function urlForLogs(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
