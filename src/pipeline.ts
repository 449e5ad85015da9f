import type { Bot } from './bot.js';
import type { BotMessage, UserMessage } from './message.js';
import { silentLogger, type Logger } from './logger.js';
import { MemoryStore, type Store } from './store.js';

/** What became of one message. */
export type Outcome = 'handled' | 'duplicate' | 'failed';

export interface Accepted {
  /** True when the platform delivered this message before (same channel and message id): it is not processed. */
  duplicate: boolean;
  /** Settles when the bot's answers were sent (or the message failed); never rejects. */
  done: Promise<Outcome>;
}

/**
 * What a channel calls for each message it receives. Awaiting it waits until the bot's answers were sent (what the
 * `rest` channel needs); `enqueue` resolves as soon as the message is accepted, so a channel can acknowledge the
 * platform at once and let the message be processed in the background (what Slack, Messenger and Telegram need).
 * Neither ever rejects: errors are logged with the channel and sender.
 */
export interface OnNewMessage {
  (message: UserMessage): Promise<Outcome>;
  enqueue(message: UserMessage): Promise<Accepted>;
}

export interface PipelineOptions {
  bot: Bot;
  store?: Store;
  logger?: Logger;
  /** How long a platform message id is remembered. Slack's last retry comes ~5 minutes after the first delivery. */
  dedupTtlMs?: number;
  /** A typing indicator is shown only when the bot takes longer than this… */
  typingDelayMs?: number;
  /** …and repeated this often while it works (platforms clear it after ~5 s). */
  typingIntervalMs?: number;
}

/**
 * The message pipeline: deduplicate, queue per sender (strict order per sender, concurrency across senders), run the
 * bot, send each answer through the message's output channel.
 */
export class Pipeline {
  readonly store: Store;
  private readonly bot: Bot;
  private readonly logger: Logger;
  private readonly dedupTtlMs: number;
  private readonly typingDelayMs: number;
  private readonly typingIntervalMs: number;
  /** The tail of each sender's queue. */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(options: PipelineOptions) {
    this.bot = options.bot;
    this.store = options.store ?? new MemoryStore();
    this.logger = options.logger ?? silentLogger;
    this.dedupTtlMs = options.dedupTtlMs ?? 15 * 60_000;
    this.typingDelayMs = options.typingDelayMs ?? 500;
    this.typingIntervalMs = options.typingIntervalMs ?? 4_000;
  }

  /** The `onNewMessage` handed to one channel's router. */
  handlerFor(logger: Logger = this.logger): OnNewMessage {
    const enqueue = (message: UserMessage) => this.enqueue(message, logger);
    const onNewMessage = (async (message: UserMessage) => (await enqueue(message)).done) as OnNewMessage;
    onNewMessage.enqueue = enqueue;
    return onNewMessage;
  }

  /** Number of senders with messages waiting or running. */
  get activeSenders(): number {
    return this.queues.size;
  }

  /** Waits until every queued message has been processed. */
  async drain(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()]);
  }

  async enqueue(message: UserMessage, logger: Logger = this.logger): Promise<Accepted> {
    // The message takes its place in the sender's queue now, in the order the channel handed it over, before the
    // dedup claim settles: a claim that resolves late (a remote store) or a message without an id (no claim at all)
    // must not let a later message of the same sender overtake it. Claimed and queued together: nothing can drop the
    // message in between.
    const fresh = this.claim(message, logger);
    const done = this.queue(message, logger, fresh);
    if (!(await fresh)) {
      logger.debug({ sender: message.senderId, messageId: message.messageId }, 'duplicate delivery ignored');
      return { duplicate: true, done: Promise.resolve('duplicate') };
    }
    return { duplicate: false, done };
  }

  /** True when the message is new (or has no platform id); never rejects. */
  private async claim(message: UserMessage, logger: Logger): Promise<boolean> {
    if (message.messageId === undefined) return true;
    const key = `seen:${message.inputChannel}:${message.messageId}`;
    try {
      return await this.store.claim(key, this.dedupTtlMs);
    } catch (error) {
      // A store outage must not lose messages: process it, at the risk of a duplicate.
      logger.error({ err: error, sender: message.senderId }, 'dedup store failed; processing the message anyway');
      return true;
    }
  }

  private queue(message: UserMessage, logger: Logger, fresh: Promise<boolean>): Promise<Outcome> {
    const key = `${message.inputChannel}\u0000${message.senderId}`;
    const previous = this.queues.get(key) ?? Promise.resolve();
    const run = previous
      .then(async (): Promise<Outcome> => ((await fresh) ? this.process(message, logger) : 'duplicate'))
      // `done` never rejects, and a failure must not break the chain for the sender's later messages.
      .catch((error: unknown): Outcome => {
        logger.error({ err: error, sender: message.senderId }, 'processing the message failed');
        return 'failed';
      });
    const tail = run.then(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  private async process(message: UserMessage, logger: Logger): Promise<Outcome> {
    const log = logger.child({ sender: message.senderId, trace: message.traceId });
    const output = message.output;
    if (!output) {
      log.error('message has no output channel; the bot cannot answer');
      return 'failed';
    }
    const stopTyping = this.startTyping(message, log);
    let answers: Iterator<unknown> | AsyncIterator<unknown>;
    try {
      const result: unknown = await this.bot.handle(message);
      if (Array.isArray(result)) answers = result[Symbol.iterator]();
      else if (isAsyncIterable(result)) answers = result[Symbol.asyncIterator]();
      else {
        log.error({ got: typeof result }, 'bot did not return a list of answers');
        answers = [][Symbol.iterator]();
      }
    } catch (error) {
      log.error({ err: error }, 'bot failed to handle the message');
      return 'failed';
    } finally {
      stopTyping();
    }
    // A bot that yields its answers one by one has each sent as soon as it is yielded (what `rest?stream=true` shows).
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await answers.next();
      } catch (error) {
        log.error({ err: error }, 'bot failed to handle the message');
        return 'failed';
      }
      if (next.done) break;
      const answer = next.value;
      if (answer === null || typeof answer !== 'object') {
        log.error({ got: typeof answer }, 'bot returned an answer that is not an object; skipped');
        continue;
      }
      try {
        await output.sendResponse(message.senderId, answer as BotMessage);
      } catch (error) {
        // Later answers would be out of context without this one, so the rest of this reply is dropped.
        log.error({ err: error }, 'sending an answer failed');
        await Promise.resolve(answers.return?.()).catch(() => undefined);
        return 'failed';
      }
    }
    if (output.flush) {
      try {
        await output.flush(message.senderId);
      } catch (error) {
        log.error({ err: error }, 'sending the answers failed');
        return 'failed';
      }
    }
    return 'handled';
  }

  private startTyping(message: UserMessage, log: Logger): () => void {
    const output = message.output;
    if (!output?.sendTyping) return () => {};
    let interval: NodeJS.Timeout | undefined;
    const show = () => {
      // Through a promise, so an indicator that throws synchronously or returns no promise cannot crash the process
      // from inside a timer.
      Promise.resolve()
        .then(() => output.sendTyping!(message.senderId))
        .catch((error: unknown) => log.debug({ err: error }, 'typing indicator failed'));
    };
    const timer = setTimeout(() => {
      show();
      interval = setInterval(show, this.typingIntervalMs);
    }, this.typingDelayMs);
    return () => {
      clearTimeout(timer);
      if (interval) clearInterval(interval);
    };
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}
