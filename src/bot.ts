import type { BotMessage, UserMessage } from './message.js';

/**
 * What the host passes a bot with each message, as `handle`'s second argument.
 */
export interface BotContext {
  /**
   * Aborted when the host stops waiting for this message (`--bot-timeout` passed): the bot should stop its work
   * (pass it to `fetch`, a database driver, an LLM client). Its reason is a `TimeoutError` `DOMException`.
   */
  signal: AbortSignal;
  /** The id of the HTTP request that brought the message (`X-Request-Id`, or generated), as on every log line. */
  requestId: string;
  /**
   * A W3C `traceparent` for the bot's own work (the request's trace id, a new span id): a bot that calls another
   * service sends it along so an OpenTelemetry-instrumented service joins the trace. The remote bot sends it.
   */
  traceparent: string;
}

/**
 * What a streaming bot yields: a string is the next piece of the current text answer (shown as it grows where the
 * platform allows: an edited message, incremental web chat events); an object is a complete answer, which also ends
 * the text being streamed.
 */
export type BotStreamItem = BotMessage | string;

/** What a bot's `handle` gives: a list of answers, or answers (and text pieces) as they are produced. */
export type BotResult = BotMessage[] | AsyncIterable<BotStreamItem>;

/**
 * A bot: takes one user message, returns its answers. The host, not the bot, sends them through the message's
 * output channel, so a bot never knows which platform it talks to. A bot that produces its answers one at a time
 * (an async generator, or any async iterable) has each sent as soon as it is yielded, and may yield text in pieces
 * (see `BotStreamItem`).
 */
export interface Bot {
  handle(message: UserMessage, context?: BotContext): BotResult | Promise<BotResult>;
  /** Called once when the server stops. */
  close?(): Promise<void> | void;
}

/** A bot may also be written as a plain (async) function. */
export type BotFunction = (message: UserMessage, context?: BotContext) => BotResult | Promise<BotResult>;
