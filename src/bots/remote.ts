import type { Bot, BotContext, BotResult, BotStreamItem } from '../bot.js';
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

  async handle(message: UserMessage, context?: BotContext): Promise<BotResult> {
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
          // A bot server may stream its answers: newline-delimited JSON or server-sent events, read as they come.
          stream: STREAMED,
          headers: { accept: ACCEPT, ...(context ? { traceparent: context.traceparent } : {}) },
          ...(context ? { signal: context.signal } : {}),
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
    if (response.stream) {
      const sse = /event-stream/i.test(response.headers.get('content-type') ?? '');
      return readStream(response.stream, sse, (problem) => this.logger.warn({ ...where, problem }, 'bot server stream: a part that is not an answer; skipped'));
    }
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

/** The content types of a streamed answer. */
const STREAMED = /^\s*(application\/x-ndjson|application\/jsonl|application\/jsonlines|text\/event-stream)\b/i;
const ACCEPT = 'application/json, application/x-ndjson;q=0.9, text/event-stream;q=0.8';
/** The longest line (or event) of a stream: a bot server that never ends a line must not grow our memory. */
const MAX_STREAM_LINE = 1024 * 1024;

/**
 * A streamed answer, parsed as it arrives: each NDJSON line (or each server-sent event's `data`) is one JSON object,
 * `{"chunk": "…"}` for the next piece of the current text answer, or a complete answer in Rasa's format.
 */
async function* readStream(stream: AsyncIterable<Buffer | string>, sse: boolean, skipped: (problem: string) => void): AsyncGenerator<BotStreamItem> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  let dataSize = 0;
  const item = (json: string): BotStreamItem | undefined => {
    const trimmed = json.trim();
    if (trimmed === '' || trimmed === '[DONE]') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      skipped('not JSON');
      return undefined;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      skipped('not an object');
      return undefined;
    }
    const { recipient_id: _recipient, ...answer } = value as Record<string, unknown>;
    if ('chunk' in answer) {
      if (typeof answer.chunk === 'string') return answer.chunk;
      skipped('a chunk that is not a string');
      return undefined;
    }
    return answer as BotMessage;
  };
  const line = (text: string): BotStreamItem | undefined => {
    const clean = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (!sse) return item(clean);
    if (clean === '') {
      // The end of an event: its data lines, joined, are one JSON object.
      const event = data.join('\n');
      data = [];
      dataSize = 0;
      return item(event);
    }
    if (clean.startsWith('data:')) {
      const value = clean.slice(5).replace(/^ /, '');
      dataSize += value.length;
      if (dataSize > MAX_STREAM_LINE) throw new BotServerError('an event of the bot server stream is larger than 1 MB');
      data.push(value);
    }
    // Comments (`:`), `event:`, `id:` and `retry:` say nothing about the answers.
    return undefined;
  };
  for await (const chunk of stream) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const next = line(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      if (next !== undefined) yield next;
    }
    if (buffer.length > MAX_STREAM_LINE) throw new BotServerError('a line of the bot server stream is longer than 1 MB');
  }
  buffer += decoder.decode();
  const last = buffer === '' ? undefined : line(buffer);
  if (last !== undefined) yield last;
  if (sse && data.length > 0) {
    const end = item(data.join('\n'));
    if (end !== undefined) yield end;
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
