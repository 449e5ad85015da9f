import type { Bot, BotContext } from '../bot.js';
import { CircuitBreaker, type CircuitBreakerOptions } from '../breaker.js';
import { HttpClient, HttpRequestError } from '../http.js';
import { silentLogger, type Logger } from '../logger.js';
import type { BotMessage, UserMessage } from '../message.js';

export interface RemoteBotOptions {
  /** The bot server's REST webhook, e.g. `http://localhost:5006/webhooks/rest/webhook` of a Rasa server. */
  url: string;
  http?: HttpClient;
  logger?: Logger;
  /** Per attempt; a Rasa server can take a while on its first message. The host's `--bot-timeout` bounds the whole. */
  timeoutMs?: number;
  /**
   * Retries of a call that cannot have reached the bot server (connect error, 429, 503). Default 1: a bot server
   * that is struggling is not sent every message four times. A timeout or a 500 is never retried (the bot may have
   * processed the message).
   */
  retries?: number;
  /** The circuit breaker for the bot server's host (default 5 failures in a row, 30 s cool-down); `false` for none. */
  breaker?: CircuitBreakerOptions | false;
}

/** Thrown when the bot server did not answer usably; the host sends the apology. */
export class BotServerError extends Error {
  override readonly name = 'BotServerError';
}

/**
 * A bot behind HTTP that speaks Rasa's REST channel protocol: `POST {sender, message, metadata, input_channel}` →
 * `[{recipient_id, text|image|buttons|...}]`. Switchboard can run in front of a Rasa server this way. When the server
 * cannot answer (or its circuit is open) `handle` throws a `BotServerError`: the host counts the failure and sends
 * the apology, as for any bot. The call carries the message's W3C `traceparent`.
 */
export class RemoteBot implements Bot {
  readonly url: string;
  private readonly http: HttpClient;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly retries: number;
  /** Undefined when turned off. */
  readonly breaker: CircuitBreaker | undefined;

  /** The URL as logged: without credentials or query (a bot server URL may carry a token). */
  private readonly logUrl: string;

  constructor(options: RemoteBotOptions) {
    this.url = options.url;
    this.logUrl = urlForLogs(options.url);
    this.logger = options.logger ?? silentLogger;
    this.http = options.http ?? new HttpClient({ logger: this.logger });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 1;
    // The bot server is one host: its breaker is this bot's.
    this.breaker = options.breaker === false ? undefined : new CircuitBreaker(options.breaker);
  }

  async handle(message: UserMessage, context?: BotContext): Promise<BotMessage[]> {
    const where = { sender: message.senderId, channel: message.inputChannel, url: this.logUrl };
    if (this.breaker && !this.breaker.allow()) {
      this.logger.warn({ ...where, failures: this.breaker.failures, cooldownMs: this.breaker.cooldownMs }, 'bot server circuit open: not called, the apology is sent');
      throw new BotServerError('the bot server circuit is open: not called');
    }
    let response;
    try {
      response = await this.http.post<unknown>(
        this.url,
        { sender: message.senderId, message: message.text, metadata: message.metadata, input_channel: message.inputChannel },
        {
          timeoutMs: this.timeoutMs,
          retries: this.retries,
          channel: message.inputChannel,
          recipient: message.senderId,
          ...(context ? { signal: context.signal, headers: { traceparent: context.traceparent } } : {}),
        },
      );
    } catch (error) {
      // A 4xx is an answer (a wrong path, a refused token): the host is up. No answer, a 5xx or a 429 is not.
      const status = error instanceof HttpRequestError ? error.status : undefined;
      if (status !== undefined && status < 500 && status !== 429) this.breaker?.success();
      else this.breaker?.failure();
      const reason = error instanceof HttpRequestError ? error.message : (error as Error).message;
      this.logger.error({ ...where, reason, ...(this.breaker?.state === 'open' ? { circuit: 'open' } : {}) }, 'bot server failed to answer');
      throw new BotServerError(`the bot server failed to answer: ${reason}`, { cause: error });
    }
    this.breaker?.success();
    if (!Array.isArray(response.body)) {
      this.logger.error(
        { sender: message.senderId, channel: message.inputChannel, url: this.logUrl, status: response.status, response: response.text.slice(0, 200) },
        'bot server did not answer a JSON array',
      );
      throw new BotServerError(`the bot server answered ${response.status} without a JSON array`);
    }
    return (response.body as unknown[])
      // Only objects are answers: a null, a string or a nested list would reach the output channel as garbage.
      .filter((answer): answer is Record<string, unknown> => answer !== null && typeof answer === 'object' && !Array.isArray(answer))
      .map(({ recipient_id: _recipient, ...answer }) => answer as BotMessage);
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
