import type { Bot, BotContext } from './bot.js';
import { UserMessage, type BotMessage, type ReplyAddress } from './message.js';
import { recordSent, type OutputChannel, type StreamingText } from './output.js';
import { answerId, SentLog } from './sent.js';
import { lazyChild, silentLogger, type Logger } from './logger.js';
import { MemoryStore, type Store } from './store.js';
import { BacklogFullError } from './errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { asksWait, backoffDelay, DEFAULT_OUTBOX_TTL_MS, deliver, type Outbox } from './outbox.js';
import { childTraceparent, currentTrace, requestTrace, withTrace, type RequestTrace } from './trace.js';
import { countDeliveries, isSafeToRetry } from './http.js';
import { SharedInbox, type InboxEntry } from './inbox.js';

/** What `--bot-apology` says by default when the bot fails or does not answer in time. */
export const DEFAULT_APOLOGY: BotMessage[] = [{ text: 'Sorry, I am having trouble answering right now. Please try again in a moment.' }];

/** The default `--bot-timeout`: how long the bot has to answer one message. */
export const DEFAULT_BOT_TIMEOUT_MS = 30_000;

/** How long a typing indicator is repeated at most, however long the bot takes. */
export const DEFAULT_TYPING_MAX_MS = 120_000;

/**
 * A bot that did not answer one message: it threw (or its answers could not be read), or it ran past the timeout.
 * Given to `Pipeline.onBotFailure` (where metrics count it) and to the output's `botFailed`.
 */
export interface BotFailure {
  reason: 'timeout' | 'error';
  /** The channel the message came in on. */
  channel: string;
  /** How long the bot had been working, in ms. */
  durationMs: number;
}

/**
 * What became of one message. `dropped`: it was waiting for its turn when the client that sent it went away (its
 * `signal` aborted), so the bot never saw it. `forwarded`: it is in the shared inbox (`--redis`) and another instance
 * holds its sender, so that instance answers it (or this one after a shutdown left it there).
 */
export type Outcome = 'handled' | 'duplicate' | 'failed' | 'dropped' | 'forwarded';

export interface Accepted {
  /** True when the platform delivered this message before (same channel and message id): it is not processed. */
  duplicate: boolean;
  /** Settles when the bot's answers were sent (or the message failed or was dropped); never rejects. */
  done: Promise<Outcome>;
  /**
   * Takes the message out of its sender's queue if it is still waiting for its turn (it never reaches the bot, and
   * `done` resolves `dropped`); false when it is already with the bot or was a duplicate. Absent when the message
   * is not queued in this process (the shared inbox under `--redis`, a message sent first). What a channel whose
   * client can hang up calls when it does — the same as aborting `EnqueueOptions.signal`, without making a signal
   * for every message (an `AbortController` is among the dearest objects of a request).
   */
  cancel?(): boolean;
}

export interface EnqueueOptions {
  /**
   * Aborted when whoever waits for the answer is gone (an HTTP client that hung up): a message still waiting for its
   * turn is then taken out of the queue and never reaches the bot. A message already with the bot is finished.
   */
  signal?: AbortSignal;
}

/**
 * What a channel calls for each message it receives. Awaiting it waits until the bot's answers were sent (what the
 * `rest` channel needs); `enqueue` resolves as soon as the message is accepted, so a channel can acknowledge the
 * platform at once and let the message be processed in the background (what Slack, Messenger and Telegram need).
 * Both reject only with a `BacklogFullError` (nothing was queued: the host answers it 429 with `Retry-After`); every
 * other error is logged with the channel and sender.
 */
export interface OnNewMessage {
  (message: UserMessage, options?: EnqueueOptions): Promise<Outcome>;
  enqueue(message: UserMessage, options?: EnqueueOptions): Promise<Accepted>;
}

/** A message queued or with the bot, as `Pipeline.pending()` lists it. */
export interface PendingMessage {
  channel: string;
  sender: string;
  messageId: string | undefined;
  /** True when the bot is working on it; false when it waits for its turn. */
  withBot: boolean;
  /** True when it is kept in the shared inbox (`--redis`): what this instance does not finish, another does. */
  shared?: boolean;
}

/** The pipeline's bounds; every one of them is what a remote client could otherwise grow without limit. */
export interface PipelineLimits {
  /** Messages one sender may have queued or with the bot. Default 20. */
  senderBacklog?: number;
  /** Their size (text length + JSON metadata length, a cheap estimate). Default 256 KiB. */
  senderBacklogBytes?: number;
  /** The same estimate over every queued message of every sender. Default 32 MiB. */
  queueBytes?: number;
  /** Bot calls running at once, across senders. Default 32. */
  botConcurrency?: number;
  /** Senders waiting for one of those slots; past it, a new sender's message is refused. Default 1000. */
  botWait?: number;
}

export const DEFAULT_LIMITS: Required<PipelineLimits> = {
  senderBacklog: 20,
  senderBacklogBytes: 256 * 1024,
  queueBytes: 32 * 1024 * 1024,
  botConcurrency: 32,
  botWait: 1_000,
};

export interface PipelineOptions extends PipelineLimits {
  bot: Bot;
  store?: Store;
  logger?: Logger;
  /** How long a platform message id is remembered. Slack's last retry comes ~5 minutes after the first delivery. */
  dedupTtlMs?: number;
  /** A typing indicator is shown only when the bot takes longer than this… */
  typingDelayMs?: number;
  /** …and repeated this often while it works (platforms clear it after ~5 s)… */
  typingIntervalMs?: number;
  /** …for at most this long (default 2 minutes), however long the bot takes. */
  typingMaxMs?: number;
  /**
   * How long the bot has to answer one message (a bot that streams: to yield its last answer), in ms. Past it the
   * bot's `signal` is aborted, the sender's next message goes on, and the apology is sent. Default 30 s.
   */
  botTimeoutMs?: number;
  /** Sent to the user when the bot throws or times out, through the message's output. Default: nothing. */
  apology?: BotMessage[];
  /** Told of every bot failure (see `Pipeline.onBotFailure`). */
  onBotFailure?: (failure: BotFailure) => void;
  /**
   * Where answers go: an answer the platform could not take for now (connect error, 429, 503) is kept there and
   * retried in the sender's order, while the bot goes on with the next messages. None: such an answer is dropped.
   */
  outbox?: Outbox;
  /**
   * The durable inbox shared by instances (`--redis`): a message whose channel acknowledges before the bot answered
   * (it carries a reply address and was not handed over with a `signal`) is kept there until its answers were sent,
   * processed one at a time per sender across instances. None: every message is processed in this process.
   */
  inbox?: SharedInbox;
  /**
   * How long an answer of a message in the shared inbox is retried when the platform cannot take it for now
   * (`--outbox-ttl`; 0: not retried). Retried in place: the message stays in the inbox, its sender's next messages
   * wait, and another instance goes on if this one stops. Default 10 minutes, waits of 1 s doubling to 60 s.
   */
  sharedRetry?: { ttlMs?: number; minDelayMs?: number; maxDelayMs?: number };
}

/** A message of the shared inbox being processed here: which answers were sent before, and what became of it. */
interface SharedRun {
  entry: InboxEntry;
  /** Set when the shutdown interrupted it: it stays in the inbox. */
  interrupted: boolean;
}

/** One message's answers on their way: counted, so a message resumed from the shared inbox skips those sent before. */
interface Sending {
  message: UserMessage;
  output: OutputChannel;
  log: Logger;
  shared: SharedRun | undefined;
  /** Answers (and flushes) sent or skipped so far. */
  index: number;
}

/**
 * What the bot's `handle` gets beside the message. A class, its `signal` getter on the prototype: an object literal
 * with a getter would carry its own accessor pair, which V8 allocates in the old generation, pointing at a fresh
 * closure over the whole of `process`'s scope — so every message's objects outlived two scavenges and were promoted
 * (4 KB per message, ~9 of every 10 bytes V8 promoted on the rest path), to die in the next full collection.
 */
class MessageContext implements BotContext {
  #controller: AbortController | undefined;
  /** Set when the bot's time ran out: the signal (now or when first read) is aborted with it. */
  #expired: DOMException | undefined;

  constructor(
    readonly requestId: string,
    readonly traceparent: string,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#expired) this.#controller.abort(this.#expired);
    }
    return this.#controller.signal;
  }

  /** Whether the bot's time ran out. */
  get expired(): boolean {
    return this.#expired !== undefined;
  }

  expire(reason: DOMException): void {
    this.#expired = reason;
    this.#controller?.abort(reason);
  }
}

/** The shutdown interrupted an answer's retries: its message stays in the shared inbox. */
class Interrupted extends Error {
  constructor() {
    super('shutting down: the message stays in the shared inbox');
    this.name = 'Interrupted';
  }
}

/** What rebuilds a message's output from its reply address: the channel that received it (`InputChannel.outputChannel`). */
export interface OutputSource {
  outputChannel?(replyTo: ReplyAddress): OutputChannel;
  /** See `InputChannel.addressFor`. */
  addressFor?(recipient: string): ReplyAddress | undefined;
}

/** Recipients whose last reply address is remembered in this process (for messages sent first). */
const REMEMBERED_ADDRESSES = 10_000;
/** How long a remembered address is kept: a Bot Framework conversation reference stays usable for a long time. */
const ADDRESS_TTL_MS = 30 * 24 * 3600_000;

/** One queued message. `message` is let go as soon as it is dropped, so an abandoned message holds no memory. */
interface Entry {
  message: UserMessage | undefined;
  /** The channel whose handler queued it: it rebuilds the output from `message.replyTo`. */
  source: OutputSource | undefined;
  logger: Logger;
  /** The request that brought the message: its log lines and the bot's `traceparent` carry it. */
  trace: RequestTrace;
  fresh: Promise<boolean>;
  size: number;
  settle: (outcome: Outcome) => void;
  done: Promise<Outcome>;
  started: boolean;
  forget: () => void;
  /** The sender's queue it is in. */
  owner: SenderQueue;
  /** Set for a message of the shared inbox. */
  shared?: SharedRun;
  /** Answers sent as they are, without the bot (a message sent first). */
  answers?: BotMessage[];
}

/** One sender's queue: processed strictly in order, one message at a time. */
interface SenderQueue {
  key: string;
  entries: Entry[];
  bytes: number;
  /** Its first message is with the bot. */
  running: boolean;
  /** It is in the wait list for a bot slot. */
  waiting: boolean;
}

/** The estimate of a message's memory the limits count: its text and its metadata as JSON. */
export function messageSize(message: UserMessage): number {
  let metadata = 0;
  try {
    metadata = JSON.stringify(message.metadata)?.length ?? 0;
  } catch {
    metadata = 0;
  }
  return message.text.length + metadata;
}

/**
 * The message pipeline: deduplicate, queue per sender (strict order per sender, concurrency across senders up to
 * `botConcurrency`, the others waiting in turn), run the bot, send each answer through the message's output channel.
 * Every queue is bounded: a message past a bound is refused with a `BacklogFullError` before anything is queued.
 */
export class Pipeline {
  readonly store: Store;
  /** Answers that carry an `id`: pending, then where they were sent (for edits and deletes through the API). */
  readonly sentLog: SentLog;
  readonly limits: Required<PipelineLimits>;
  private readonly bot: Bot;
  private readonly logger: Logger;
  private readonly dedupTtlMs: number;
  private readonly typingDelayMs: number;
  private readonly typingIntervalMs: number;
  private readonly typingMaxMs: number;
  readonly botTimeoutMs: number;
  /** Sent when the bot fails or times out (`--bot-apology`). */
  readonly apology: BotMessage[];
  /** Where answers are sent through (see `PipelineOptions.outbox`). */
  readonly outbox: Outbox | undefined;
  /**
   * Called for every message the bot failed to answer (threw, or timed out), after it was logged: the hook for
   * counting failures (metrics). A hook that throws is ignored.
   */
  onBotFailure: ((failure: BotFailure) => void) | undefined;
  /** Messages the bot failed to answer, by reason (for tests and diagnostics). */
  readonly botFailures = { timeout: 0, error: 0 };
  /** Each sender with messages queued or with the bot. */
  private readonly queues = new Map<string, SenderQueue>();
  /** Senders whose next message waits for a bot slot, in the order they started waiting. */
  private readonly waitList: SenderQueue[] = [];
  private running = 0;
  private queuedBytes = 0;
  /** The highest number of bot calls seen at once (for tests and diagnostics). */
  peakConcurrency = 0;
  /** A running average of how long a message takes, for the `Retry-After` estimate. */
  private averageMs = 1_000;
  /** See `PipelineOptions.inbox`. */
  readonly inbox: SharedInbox | undefined;
  private readonly sharedRetry: { ttlMs: number; minDelayMs: number; maxDelayMs: number };
  /** The channels by name, with their loggers: what a message read back from the shared inbox is answered through. */
  private readonly sources = new Map<string, { source: OutputSource; logger: Logger }>();
  /**
   * The reply address of each recipient's last message, for channels that cannot address a recipient from its id
   * alone (no `addressFor`): most recent last, bounded. Also in the store when it can keep values (Redis).
   */
  private readonly addresses = new Map<string, ReplyAddress>();
  /** Aborted when the shutdown starts: retries of shared messages stop waiting. */
  private readonly stopping = new AbortController();

  constructor(options: PipelineOptions) {
    this.bot = options.bot;
    this.store = options.store ?? new MemoryStore();
    this.sentLog = new SentLog(this.store);
    this.logger = options.logger ?? silentLogger;
    this.dedupTtlMs = options.dedupTtlMs ?? 15 * 60_000;
    this.typingDelayMs = options.typingDelayMs ?? 500;
    this.typingIntervalMs = options.typingIntervalMs ?? 4_000;
    this.typingMaxMs = options.typingMaxMs ?? DEFAULT_TYPING_MAX_MS;
    this.botTimeoutMs = options.botTimeoutMs ?? DEFAULT_BOT_TIMEOUT_MS;
    if (!(this.botTimeoutMs >= 1) || !Number.isFinite(this.botTimeoutMs)) throw new RangeError(`botTimeoutMs must be at least 1, got ${String(options.botTimeoutMs)}`);
    this.apology = options.apology ?? [];
    this.onBotFailure = options.onBotFailure;
    this.outbox = options.outbox;
    this.inbox = options.inbox;
    this.sharedRetry = { ttlMs: options.sharedRetry?.ttlMs ?? DEFAULT_OUTBOX_TTL_MS, minDelayMs: options.sharedRetry?.minDelayMs ?? 1_000, maxDelayMs: options.sharedRetry?.maxDelayMs ?? 60_000 };
    const pick = (key: keyof PipelineLimits, min: number) => {
      const value = options[key];
      if (value === undefined) return DEFAULT_LIMITS[key];
      if (!Number.isInteger(value) || value < min) throw new RangeError(`${key} must be a whole number of at least ${min}, got ${String(value)}`);
      return value;
    };
    this.limits = {
      senderBacklog: pick('senderBacklog', 1),
      senderBacklogBytes: pick('senderBacklogBytes', 1),
      queueBytes: pick('queueBytes', 1),
      botConcurrency: pick('botConcurrency', 1),
      botWait: pick('botWait', 0),
    };
  }

  /**
   * The `onNewMessage` handed to one channel's router. `channel` is asked for the output of each message that carries
   * a reply address (`outputChannel(replyTo)`).
   */
  handlerFor(logger: Logger = this.logger, channel?: OutputSource & { name?(): string }): OnNewMessage {
    if (channel && typeof channel.name === 'function') this.sources.set(channel.name(), { source: channel, logger });
    const enqueue = (message: UserMessage, options?: EnqueueOptions) => this.enqueue(message, logger, options, channel);
    const onNewMessage = (async (message: UserMessage, options?: EnqueueOptions) => (await enqueue(message, options)).done) as OnNewMessage;
    onNewMessage.enqueue = enqueue;
    return onNewMessage;
  }

  /** Number of senders with messages waiting or running. */
  get activeSenders(): number {
    return this.queues.size;
  }

  /** Bot calls running now. */
  get activeBotCalls(): number {
    return this.running;
  }

  /** Senders waiting for a bot slot now. */
  get waitingSenders(): number {
    return this.waitList.length;
  }

  /** Messages waiting for the bot or with it, every sender's (read on a metrics scrape: one pass over the senders). */
  get queuedMessages(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.entries.length;
    return count;
  }

  /** Every message queued or with the bot now, oldest first per sender (what a shutdown abandons at its grace's end). */
  pending(): PendingMessage[] {
    const list: PendingMessage[] = [];
    for (const queue of this.queues.values()) {
      for (const entry of queue.entries) {
        if (!entry.message) continue;
        list.push({ channel: entry.message.inputChannel, sender: entry.message.senderId, messageId: entry.message.messageId, withBot: entry.started, ...(entry.shared ? { shared: true } : {}) });
      }
    }
    return list;
  }

  /**
   * Waits until every queued message has been processed, and this instance holds no sender of the shared inbox (each
   * ran out of messages; while shutting down, each let go after its current message).
   */
  async drain(): Promise<void> {
    while (this.queues.size > 0 || this.sharedSenders > 0) {
      await Promise.all([...this.queues.values()].flatMap((q) => q.entries.map((e) => e.done)));
      await this.inbox?.idle();
    }
  }

  /** Starts taking messages from the shared inbox (those of this instance's channels, and senders nobody holds). */
  start(): void {
    this.inbox?.start((entry) => this.runShared(entry));
  }

  /**
   * The shutdown begins: the shared inbox takes no more senders (each finishes the message it is running, then lets
   * its sender go for another instance), and answers waiting for a retry stop waiting (their messages stay in the
   * inbox). Messages in this process's own queues are still processed.
   */
  beginShutdown(): void {
    this.stopping.abort();
    void this.inbox?.stop();
  }

  /** Senders of the shared inbox this instance holds now. */
  get sharedSenders(): number {
    return this.inbox?.heldSenders ?? 0;
  }

  async enqueue(message: UserMessage, logger: Logger = this.logger, options: EnqueueOptions = {}, source?: OutputSource): Promise<Accepted> {
    if (options.signal?.aborted) return { duplicate: false, done: Promise.resolve('dropped') };
    if (message.replyTo !== undefined && source?.outputChannel && typeof source.addressFor !== 'function') this.remember(message);
    if (this.inbox && message.replyTo !== undefined && source?.outputChannel && !options.signal) {
      const shared = await this.enqueueShared(this.inbox, message, logger);
      if (shared) return shared;
    }
    // Refused before anything is claimed or queued: a retry later is a fresh delivery.
    const key = `${message.inputChannel}\u0000${message.senderId}`;
    const size = messageSize(message);
    this.admit(key, size);
    // The message takes its place in the sender's queue now, in the order the channel handed it over, before the
    // dedup claim settles: a claim that resolves late (a remote store) or a message without an id (no claim at all)
    // must not let a later message of the same sender overtake it. Claimed and queued together: nothing can drop the
    // message in between.
    const fresh = this.claim(message, logger);
    // The request's trace goes with the message: it runs later, in whatever context freed its turn.
    const entry = this.queue(key, message, logger, fresh, size, options.signal, currentTrace() ?? requestTrace(), source);
    if (!(await fresh)) {
      logger.debug({ sender: message.senderId, messageId: message.messageId }, 'duplicate delivery ignored');
      return { duplicate: true, done: Promise.resolve('duplicate'), cancel: () => false };
    }
    return { duplicate: false, done: entry.done, cancel: () => this.drop(entry) };
  }

  /**
   * Adds a message to the shared inbox (before the channel acknowledges it): deduplicated there, bounded per sender by
   * `senderBacklog`, processed here at once when its sender is free. Undefined when Redis cannot be reached: the
   * message is then processed in this process (the store logs the outage once).
   */
  private async enqueueShared(inbox: SharedInbox, message: UserMessage, logger: Logger, answers?: BotMessage[]): Promise<Accepted | undefined> {
    const trace = currentTrace() ?? requestTrace();
    let result;
    try {
      result = await inbox.add(SharedInbox.senderKey(message.inputChannel, message.senderId), message.toJSON(), {
        ...(message.messageId === undefined ? {} : { seenKey: `seen:${message.inputChannel}:${message.messageId}` }),
        dedupTtlMs: this.dedupTtlMs,
        backlog: this.limits.senderBacklog,
        backlogBytes: this.limits.senderBacklogBytes,
        // As in one process: the senders the bot runs at once, and those waiting their turn.
        senders: this.limits.botConcurrency + this.limits.botWait,
        trace: JSON.stringify({ requestId: trace.requestId, traceId: trace.traceId, flags: trace.flags }),
        ...(answers ? { answers: JSON.stringify(answers) } : {}),
      });
    } catch {
      return undefined;
    }
    if (result.status === 'duplicate') {
      logger.debug({ sender: message.senderId, messageId: message.messageId }, 'duplicate delivery ignored');
      return { duplicate: true, done: Promise.resolve('duplicate') };
    }
    if (result.status === 'full') {
      if (result.reason === 'busy') throw new BacklogFullError('the bot is busy; retry later', this.retryAfter(this.limits.botWait / this.limits.botConcurrency + 1));
      throw new BacklogFullError('too many messages from this sender are waiting; retry later', this.retryAfter(this.limits.senderBacklog));
    }
    return { duplicate: false, done: result.done as Promise<Outcome> };
  }

  /** Processes one message read from the shared inbox, in this process's queue of its sender. */
  private async runShared(entry: InboxEntry): Promise<{ keep: boolean; outcome: Outcome }> {
    let message: UserMessage;
    try {
      message = UserMessage.fromJSON(entry.message);
    } catch (error) {
      this.logger.error({ err: error, id: entry.id }, 'inbox: a message in the inbox is not a message; removed');
      return { keep: false, outcome: 'failed' };
    }
    const channel = this.sources.get(message.inputChannel);
    if (!channel) {
      this.logger.error({ channel: message.inputChannel, sender: message.senderId, messageId: message.messageId }, 'inbox: a message of a channel this instance does not run; removed (every instance must run the same channels)');
      return { keep: false, outcome: 'failed' };
    }
    let trace = requestTrace();
    if (entry.trace) {
      try {
        const saved = JSON.parse(entry.trace) as Partial<RequestTrace>;
        trace = requestTrace({ requestId: saved.requestId, traceparent: `00-${saved.traceId}-${trace.spanId}-${saved.flags}` });
      } catch {
        // A new trace, then.
      }
    }
    let answers: BotMessage[] | undefined;
    if (entry.answers !== undefined) {
      try {
        answers = JSON.parse(entry.answers) as BotMessage[];
      } catch (error) {
        this.logger.error({ err: error, id: entry.id }, 'inbox: the answers of a message sent first are not JSON; removed');
        return { keep: false, outcome: 'failed' };
      }
    }
    const shared: SharedRun = { entry, interrupted: false };
    const key = `${message.inputChannel}\u0000${message.senderId}`;
    const size = messageSize(message) + (entry.answers?.length ?? 0);
    const outcome = await withTrace(trace, () => this.queue(key, message, channel.logger, Promise.resolve(true), size, undefined, trace, channel.source, shared, answers).done);
    return { keep: shared.interrupted, outcome };
  }

  /** Keeps a message's reply address as its sender's last (see `addresses`). */
  private remember(message: UserMessage): void {
    const key = `${message.inputChannel}\u0000${message.senderId}`;
    const known = this.addresses.get(key);
    let json: string;
    try {
      json = JSON.stringify(message.replyTo);
    } catch {
      return;
    }
    if (known !== undefined && JSON.stringify(known) === json) {
      // Most recent last.
      this.addresses.delete(key);
      this.addresses.set(key, known);
      return;
    }
    this.addresses.delete(key);
    this.addresses.set(key, message.replyTo!);
    if (this.addresses.size > REMEMBERED_ADDRESSES) this.addresses.delete(this.addresses.keys().next().value!);
    void this.store.put?.(`address:${message.inputChannel}:${message.senderId}`, json, ADDRESS_TTL_MS).catch(() => undefined);
  }

  /**
   * Where a message sent first to `recipient` on `channel` goes: the channel's address for the id (`addressFor`), else
   * the address of the recipient's last message (this process's memory, then the store's). Undefined: unknown.
   */
  async addressOf(channel: string, source: OutputSource, recipient: string): Promise<ReplyAddress | undefined> {
    if (typeof source.addressFor === 'function') {
      const address = source.addressFor(recipient);
      if (address !== undefined) return address;
    }
    const known = this.addresses.get(`${channel}\u0000${recipient}`);
    if (known !== undefined) return known;
    const kept = await this.store.get?.(`address:${channel}:${recipient}`).catch(() => undefined);
    if (kept === undefined) return undefined;
    try {
      const parsed = JSON.parse(kept) as unknown;
      return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as ReplyAddress) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Sends `answers` to the message's recipient as if the bot had answered it (a message sent first): in the
   * recipient's turn, after what is already queued for them, through the outbox — and kept in the shared inbox under
   * `--redis`. `message` carries the recipient (`senderId`), the channel and the reply address. Rejects only with a
   * `BacklogFullError`.
   */
  async enqueueAnswers(message: UserMessage, answers: BotMessage[], source: OutputSource, logger: Logger = this.logger): Promise<Accepted> {
    if (this.inbox && message.replyTo !== undefined && source.outputChannel) {
      const shared = await this.enqueueShared(this.inbox, message, logger, answers);
      if (shared) return shared;
    }
    const key = `${message.inputChannel}\u0000${message.senderId}`;
    let size = messageSize(message);
    try {
      size += JSON.stringify(answers).length;
    } catch {
      // Counted as the message alone.
    }
    this.admit(key, size);
    const { done } = this.queue(key, message, logger, Promise.resolve(true), size, undefined, currentTrace() ?? requestTrace(), source, undefined, answers);
    return { duplicate: false, done };
  }

  /** Throws a `BacklogFullError` when one more message of `size` for this sender would pass a bound. */
  private admit(key: string, size: number): void {
    const queue = this.queues.get(key);
    const limits = this.limits;
    if (queue) {
      // One message bigger than the byte cap is still taken when it is alone (the body limit bounds it).
      if (queue.entries.length >= limits.senderBacklog || queue.bytes + size > limits.senderBacklogBytes) {
        throw new BacklogFullError('too many messages from this sender are waiting; retry later', this.retryAfter(queue.entries.length));
      }
    } else if (this.running >= limits.botConcurrency && this.waitList.length >= limits.botWait) {
      throw new BacklogFullError('the bot is busy; retry later', this.retryAfter(this.waitList.length / limits.botConcurrency + 1));
    }
    if (this.queuedBytes > 0 && this.queuedBytes + size > limits.queueBytes) {
      throw new BacklogFullError('the bot is busy; retry later', this.retryAfter(this.waitList.length / limits.botConcurrency + 1));
    }
  }

  /** Seconds until `turns` messages are likely done, from the running average; 1 to 60. */
  private retryAfter(turns: number): number {
    return Math.min(60, Math.max(1, Math.ceil((turns * this.averageMs) / 1000)));
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

  private queue(key: string, message: UserMessage, logger: Logger, fresh: Promise<boolean>, size: number, signal: AbortSignal | undefined, trace: RequestTrace, source?: OutputSource, shared?: SharedRun, answers?: BotMessage[]): Entry {
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { key, entries: [], bytes: 0, running: false, waiting: false };
      this.queues.set(key, queue);
    }
    let settle!: (outcome: Outcome) => void;
    const done = new Promise<Outcome>((resolve) => (settle = resolve));
    const entry: Entry = { message, source, logger, trace, fresh, size, settle, done, started: false, forget: () => {}, owner: queue, ...(shared ? { shared } : {}), ...(answers ? { answers } : {}) };
    queue.entries.push(entry);
    queue.bytes += size;
    this.queuedBytes += size;
    if (!queue.running && !queue.waiting) {
      queue.waiting = true;
      this.waitList.push(queue);
    }
    this.pump();
    // Only a message that waits for its turn listens to its signal: one the bot took at once (in `pump`, just now) is
    // finished whatever happens to its client.
    if (signal && !entry.started) {
      const onAbort = () => this.drop(entry);
      signal.addEventListener('abort', onAbort, { once: true });
      entry.forget = () => signal.removeEventListener('abort', onAbort);
    }
    return entry;
  }

  /** A message whose client went away before its turn: out of the queue, never seen by the bot. False if too late. */
  private drop(entry: Entry): boolean {
    const queue = entry.owner;
    if (entry.started) return false;
    const index = queue.entries.indexOf(entry);
    if (index < 0) return false;
    queue.entries.splice(index, 1);
    this.release(queue, entry);
    entry.logger.debug({ sender: entry.message?.senderId }, 'the client went away; its queued message is dropped');
    entry.message = undefined;
    entry.settle('dropped');
    if (queue.entries.length === 0 && !queue.running) {
      if (queue.waiting) {
        queue.waiting = false;
        this.waitList.splice(this.waitList.indexOf(queue), 1);
      }
      this.queues.delete(queue.key);
    }
    return true;
  }

  private release(queue: SenderQueue, entry: Entry): void {
    queue.bytes -= entry.size;
    this.queuedBytes -= entry.size;
    entry.forget();
  }

  /** Starts the next waiting senders while bot slots are free. */
  private pump(): void {
    while (this.running < this.limits.botConcurrency && this.waitList.length > 0) {
      const queue = this.waitList.shift()!;
      queue.waiting = false;
      void this.runNext(queue);
    }
  }

  private async runNext(queue: SenderQueue): Promise<void> {
    const entry = queue.entries[0]!;
    entry.started = true;
    entry.forget();
    queue.running = true;
    this.running++;
    if (this.running > this.peakConcurrency) this.peakConcurrency = this.running;
    // The bot slot is given back as soon as the bot has answered: sending the answers to the platform goes on in the
    // sender's turn (in order) without holding a slot another sender's bot call could use.
    let holding = true;
    const botDone = () => {
      if (!holding) return;
      holding = false;
      this.running--;
      this.pump();
    };
    const started = Date.now();
    let outcome: Outcome;
    try {
      const message = entry.message!;
      outcome = (await entry.fresh) ? await withTrace(entry.trace, () => this.process(message, entry.logger, entry.trace, entry.source, entry.shared, entry.answers, botDone)) : 'duplicate';
    } catch (error) {
      // `done` never rejects, and a failure must not break the chain for the sender's later messages.
      entry.logger.error({ err: error, sender: entry.message?.senderId }, 'processing the message failed');
      outcome = 'failed';
    }
    if (outcome !== 'duplicate') this.averageMs = this.averageMs * 0.8 + (Date.now() - started) * 0.2;
    if (holding) {
      holding = false;
      this.running--;
    }
    queue.running = false;
    queue.entries.shift();
    this.release(queue, entry);
    entry.message = undefined;
    if (queue.entries.length > 0) {
      // To the back of the line: one busy sender does not keep a slot from the others.
      queue.waiting = true;
      this.waitList.push(queue);
    } else {
      this.queues.delete(queue.key);
    }
    entry.settle(outcome);
    this.pump();
  }

  /**
   * The output that answers a message: rebuilt by its channel from the reply address when it carries one, even when a
   * live output is attached too, so the path a message read back from a store takes is the one every message takes.
   * A live output alone (a channel written before addresses) still answers, in this process.
   */
  private outputOf(message: UserMessage, source: OutputSource | undefined, log: Logger): OutputChannel | undefined {
    if (message.replyTo === undefined || !source?.outputChannel) return message.output;
    try {
      return source.outputChannel(message.replyTo);
    } catch (error) {
      log.error({ err: error }, 'the channel could not rebuild the output from the reply address');
      return message.output;
    }
  }

  /** `botDone` is called once the bot has answered (or failed, or there is no bot call): its slot is free again. */
  private async process(message: UserMessage, logger: Logger, trace: RequestTrace, source?: OutputSource, shared?: SharedRun, answers?: BotMessage[], botDone: () => void = () => {}): Promise<Outcome> {
    const log = lazyChild(logger, { sender: message.senderId, trace: message.traceId });
    const output = this.outputOf(message, source, log);
    if (!output) {
      if (message.replyTo !== undefined && !source?.outputChannel) log.error('message has a reply address, but its channel has no outputChannel(replyTo); the bot cannot answer');
      else log.error('message has no output channel; the bot cannot answer');
      return 'failed';
    }
    if (answers) {
      // A message sent first: no bot call.
      botDone();
      return this.sendGiven({ message, output, log, shared, index: 0 }, answers);
    }
    // The bot's deadline: its signal is aborted, and every wait on it below gives up, when the time is up. A bot that
    // ignores the signal keeps running in the background, but its sender's next message does not wait for it.
    const started = Date.now();
    // The signal is made only for a bot that reads it (an AbortController is the dearest object of a message): the
    // timer rejects `timedOut` itself, and aborts the signal if there is one; one read later is born aborted.
    const context = new MessageContext(trace.requestId, childTraceparent(trace));
    let timeUp!: (reason: DOMException) => void;
    const timedOut = new Promise<never>((_, reject) => (timeUp = reject));
    timedOut.catch(() => undefined);
    const deadline = setTimeout(() => {
      const expired = new DOMException(`the bot did not answer within ${this.botTimeoutMs} ms`, 'TimeoutError');
      context.expire(expired);
      timeUp(expired);
    }, this.botTimeoutMs);
    const inTime = <T>(work: Promise<T>): Promise<T> => Promise.race([work, timedOut]);
    const sending: Sending = { message, output, log, shared, index: 0 };
    const failed = (error: unknown) => {
      botDone();
      return this.botFailed(sending, context.expired ? 'timeout' : 'error', error, started);
    };
    const stopTyping = this.startTyping(message, output, log);
    // A streamed text answer being produced (a streaming bot yielded strings).
    let text: TextStream | undefined;
    /** Ends the streamed text, if any, and sends it as one answer (the output shows its final state). */
    const endText = async () => {
      if (!text) return;
      const stream = text;
      text = undefined;
      await stream.close();
      if (stream.text.trim() === '') return;
      await this.send(sending, { text: stream.text }, stream.writer);
    };
    try {
      let answers: Iterator<unknown> | AsyncIterator<unknown>;
      let streaming = false;
      try {
        const result: unknown = await inTime(Promise.resolve().then(() => this.bot.handle(message, context)));
        if (Array.isArray(result)) answers = result[Symbol.iterator]();
        else if (isAsyncIterable(result)) {
          answers = result[Symbol.asyncIterator]();
          streaming = true;
        } else {
          log.error({ got: typeof result }, 'bot did not return a list of answers');
          answers = [][Symbol.iterator]();
        }
      } catch (error) {
        stopTyping();
        return await failed(error);
      }
      // A list is there whole: no more typing. A stream: typing until its first piece.
      if (!streaming) stopTyping();
      // A list is the whole answer, in time: sending it to a slow platform is not the bot's time.
      if (!streaming) {
        clearTimeout(deadline);
        botDone();
      }
      // A bot that yields its answers one by one has each sent as soon as it is yielded (what `rest?stream=true` shows).
      for (;;) {
        let next: IteratorResult<unknown>;
        try {
          next = streaming ? await inTime(Promise.resolve(answers.next())) : answers.next() as IteratorResult<unknown>;
        } catch (error) {
          stopTyping();
          // A generator stuck in an await cannot be stopped; one that is not is asked to finish (its `finally` runs).
          void Promise.resolve().then(() => answers.return?.()).catch(() => undefined);
          // What was streamed so far stays as it is shown, then the apology.
          try {
            await endText();
          } catch (sendError) {
            if (sendError instanceof Interrupted) return 'forwarded';
            log.error({ err: sendError }, 'sending an answer failed');
          }
          return await failed(error);
        }
        stopTyping();
        const answer = next.value;
        if (streaming && typeof answer === 'string') {
          // The next piece of the text answer being streamed.
          text ??= new TextStream(output, message.senderId, log, sending.shared !== undefined && sending.index < sending.shared.entry.sent);
          text.append(answer);
          continue;
        }
        try {
          // An answer object, or the end of the stream, ends the text being streamed.
          if (text) await endText();
        } catch (error) {
          if (error instanceof Interrupted) {
            await Promise.resolve(answers.return?.()).catch(() => undefined);
            return 'forwarded';
          }
          log.error({ err: error }, 'sending an answer failed');
          await Promise.resolve(answers.return?.()).catch(() => undefined);
          return 'failed';
        }
        if (next.done) {
          botDone();
          break;
        }
        if (answer === null || typeof answer !== 'object') {
          log.error({ got: typeof answer }, 'bot returned an answer that is not an object; skipped');
          continue;
        }
        try {
          await this.send(sending, answer as BotMessage);
        } catch (error) {
          if (error instanceof Interrupted) {
            await Promise.resolve(answers.return?.()).catch(() => undefined);
            return 'forwarded';
          }
          // Later answers would be out of context without this one, so the rest of this reply is dropped.
          log.error({ err: error }, 'sending an answer failed');
          await Promise.resolve(answers.return?.()).catch(() => undefined);
          return 'failed';
        }
      }
    } finally {
      clearTimeout(deadline);
      stopTyping();
      await text?.close();
    }
    if (output.flush) {
      try {
        await this.send(sending, undefined);
      } catch (error) {
        if (error instanceof Interrupted) return 'forwarded';
        log.error({ err: error }, 'sending the answers failed');
        return 'failed';
      }
    }
    return 'handled';
  }

  /** Sends answers given as they are (a message sent first), then the output's flush. */
  private async sendGiven(sending: Sending, answers: BotMessage[]): Promise<Outcome> {
    try {
      for (const answer of answers) await this.send(sending, structuredClone(answer));
      if (sending.output.flush) await this.send(sending, undefined);
    } catch (error) {
      if (error instanceof Interrupted) return 'forwarded';
      sending.log.error({ err: error }, 'sending an answer failed');
      return 'failed';
    }
    return 'handled';
  }

  /**
   * One answer (or, `answer` undefined, the output's flush): through the outbox when there is one. For a message of
   * the shared inbox, an answer sent before (by an instance that did not finish the message) is skipped, each sent one
   * is recorded, and one the platform cannot take for now is retried in place (see `sharedRetry`).
   */
  private async send(sending: Sending, answer: BotMessage | undefined, writer?: StreamingText): Promise<void> {
    const { message, log, shared } = sending;
    // A streamed text ends through its writer (the message already shown is edited to its final text).
    let output: Pick<OutputChannel, 'sendResponse' | 'flush'> = writer ? { sendResponse: (_recipient, final) => writer.end(final) } : sending.output;
    const id = answer !== undefined && writer === undefined ? answerId(answer) : undefined;
    if (id !== undefined) {
      // An answer that can be edited later: the id is ours, not the platform's, and where it lands is recorded.
      const { id: _id, ...rest } = answer!;
      answer = rest;
      output = this.recording(output, message, id, log);
    }
    const index = sending.index++;
    if (shared) {
      if (index < shared.entry.sent) return;
      await this.sendShared(sending, shared, answer, output);
      // Not waited for: the connection keeps Redis's order, so it lands before the message is removed.
      void this.inbox!.progress(shared.entry, index + 1);
      return;
    }
    if (!this.outbox) return deliver({ output, sender: message.senderId, answer });
    await this.outbox.send({ channel: message.inputChannel, sender: message.senderId, messageId: message.messageId, output, answer, logger: log });
  }

  /**
   * `output` with each answer's platform messages recorded under `id` in the sent log: sent (with the messages), or
   * failed — unless nothing of it was shown and it may be tried again (the outbox keeps it): then it stays pending.
   */
  private recording(output: Pick<OutputChannel, 'sendResponse' | 'flush'>, message: UserMessage, id: string, log: Logger): Pick<OutputChannel, 'sendResponse' | 'flush'> {
    const channel = message.inputChannel;
    const save = async (record: Parameters<SentLog['set']>[3]) => {
      try {
        await this.sentLog.set(channel, message.senderId, id, record);
      } catch (error) {
        log.warn({ err: error, id }, 'could not record where an answer was sent: it cannot be edited through the API');
      }
    };
    return {
      sendResponse: async (recipient, answer) => {
        const { messages, error } = await recordSent(() => output.sendResponse(recipient, answer));
        if (error === undefined || messages.length > 0) await save({ state: 'sent', messages });
        else if (!isSafeToRetry(error)) await save({ state: 'failed' });
        if (error !== undefined) throw error;
      },
      ...(output.flush ? { flush: (recipient: string) => output.flush!(recipient) } : {}),
    };
  }

  /** Sends an answer of a shared message, retrying while the platform cannot take it for now (nothing of it shown). */
  private async sendShared(sending: Sending, shared: SharedRun, answer: BotMessage | undefined, output: Pick<OutputChannel, 'sendResponse' | 'flush'>): Promise<void> {
    const { message, log } = sending;
    const { ttlMs, minDelayMs, maxDelayMs } = this.sharedRetry;
    const first = Date.now();
    for (let failures = 1; ; failures++) {
      const { delivered, error } = await countDeliveries(() => deliver({ output, sender: message.senderId, answer }));
      if (error === undefined) {
        if (failures > 1) log.info({ channel: message.inputChannel, sender: message.senderId, messageId: message.messageId, attempts: failures }, 'answer sent after the platform took it again');
        return;
      }
      const waitMs = asksWait(error);
      if (!isSafeToRetry(error) || delivered > 0 || ttlMs === 0) throw error;
      if (this.stopping.signal.aborted) {
        shared.interrupted = true;
        throw new Interrupted();
      }
      const delay = backoffDelay(failures, minDelayMs, maxDelayMs, waitMs);
      const fields = { channel: message.inputChannel, sender: message.senderId, messageId: message.messageId, attempts: failures };
      if (Date.now() + delay - first >= ttlMs) {
        log.error({ ...fields, reason: 'expired', ttlMs, err: error }, 'outbox gave up on an answer');
        try {
          this.outbox?.onGiveUp?.('expired', message.inputChannel);
        } catch {
          // A counting hook must not change what happens to the answers.
        }
        throw error;
      }
      if (failures === 1) log.warn({ ...fields, err: error, ttlMs }, 'the platform did not take the answer; retried while the message stays in the shared inbox');
      try {
        await sleep(delay, undefined, { signal: this.stopping.signal });
      } catch {
        // The shutdown began: the message stays in the inbox.
        shared.interrupted = true;
        throw new Interrupted();
      }
    }
  }

  /**
   * The bot threw or ran out of time: logged, counted (`onBotFailure`), the apology sent (and flushed) through the
   * output, and the output told (`botFailed`: the rest channel answers 5xx). The sender's queue then moves on.
   */
  private async botFailed(sending: Sending, reason: BotFailure['reason'], error: unknown, started: number): Promise<Outcome> {
    const { message, output, log } = sending;
    const durationMs = Date.now() - started;
    if (reason === 'timeout') log.error({ timeoutMs: this.botTimeoutMs }, 'the bot did not answer in time');
    else log.error({ err: error }, 'bot failed to handle the message');
    this.botFailures[reason]++;
    try {
      this.onBotFailure?.({ reason, channel: message.inputChannel, durationMs });
    } catch {
      // A counting hook must not change what happens to the message.
    }
    try {
      for (const answer of structuredClone(this.apology)) await this.send(sending, answer);
      if (this.apology.length > 0 && output.flush) await this.send(sending, undefined);
    } catch (sendError) {
      if (sendError instanceof Interrupted) return 'forwarded';
      log.error({ err: sendError }, 'sending the apology failed');
    }
    try {
      await output.botFailed?.(message.senderId, { reason, channel: message.inputChannel, durationMs });
    } catch (hookError) {
      log.error({ err: hookError }, 'the output failed to take note of the bot failure');
    }
    return 'failed';
  }

  private startTyping(message: UserMessage, output: OutputChannel, log: Logger): () => void {
    if (!output.sendTyping) return () => {};
    let interval: NodeJS.Timeout | undefined;
    // Counted rather than timed, so the cap holds however late the timers fire: at most this many indicators.
    let left = Math.max(1, Math.floor(Math.max(0, this.typingMaxMs - this.typingDelayMs) / this.typingIntervalMs) + 1);
    const show = () => {
      // Through a promise, so an indicator that throws synchronously or returns no promise cannot crash the process
      // from inside a timer.
      Promise.resolve()
        .then(() => output.sendTyping!(message.senderId))
        .catch((error: unknown) => log.debug({ err: error }, 'typing indicator failed'));
      left--;
      if (left <= 0 && interval) {
        clearInterval(interval);
        interval = undefined;
        log.debug({ typingMaxMs: this.typingMaxMs }, 'typing indicator stopped: the bot has been working past the cap');
      }
    };
    const timer = setTimeout(() => {
      show();
      if (left > 0) interval = setInterval(show, this.typingIntervalMs);
      else log.debug({ typingMaxMs: this.typingMaxMs }, 'typing indicator stopped: the bot has been working past the cap');
    }, this.typingDelayMs);
    return () => {
      clearTimeout(timer);
      if (interval) clearInterval(interval);
    };
  }
}

/**
 * A text answer a streaming bot is producing: the pieces so far, shown through the output's `streamText` (when it
 * has one and the answer was not sent before) no more often than its `streamIntervalMs`, one update at a time.
 */
class TextStream {
  text = '';
  readonly writer: StreamingText | undefined;
  private readonly intervalMs: number;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<void> | undefined;
  private dirty = false;
  private closed = false;

  constructor(output: OutputChannel, recipient: string, private readonly log: Logger, skip: boolean) {
    this.intervalMs = output.streamIntervalMs ?? 1_000;
    if (skip || !output.streamText) return;
    try {
      this.writer = output.streamText(recipient);
    } catch (error) {
      log.warn({ err: error }, 'the output could not start a streamed text; it is sent whole');
    }
  }

  append(piece: string): void {
    this.text += piece;
    if (this.writer && !this.closed) this.schedule();
  }

  /** Stops updating; resolves when the update under way (if any) is done. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.pending;
  }

  private schedule(): void {
    if (this.pending || this.timer) {
      this.dirty = true;
      return;
    }
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) this.push();
    else this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) this.push();
    }, wait);
  }

  private push(): void {
    this.dirty = false;
    this.last = Date.now();
    this.pending = Promise.resolve()
      .then(() => this.writer!.update(this.text))
      .catch((error: unknown) => this.log.warn({ err: error }, 'updating a streamed text failed; the final text is still sent'))
      .finally(() => {
        this.pending = undefined;
        if (this.dirty && !this.closed) this.schedule();
      });
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}
