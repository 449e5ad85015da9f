import type { BotMessage, UserMessage } from './message.js';

/**
 * A bot: takes one user message, returns its answers. The host, not the bot, sends them through the message's
 * output channel, so a bot never knows which platform it talks to. A bot that produces its answers one at a time
 * (an async generator) has each sent as soon as it is yielded.
 */
export interface Bot {
  handle(message: UserMessage): Promise<BotMessage[]> | BotMessage[] | AsyncIterable<BotMessage>;
  /** Called once when the server stops. */
  close?(): Promise<void> | void;
}

/** A bot may also be written as a plain (async) function. */
export type BotFunction = (message: UserMessage) => Promise<BotMessage[]> | BotMessage[] | AsyncIterable<BotMessage>;
