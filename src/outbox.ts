import { countDeliveries, HttpRequestError, isSafeToRetry } from './http.js';
import { silentLogger, type Logger } from './logger.js';
import type { BotMessage } from './message.js';
import type { OutputChannel } from './output.js';

/** The default `--outbox-ttl`: how long an answer the platform could not take is retried, in ms. */
export const DEFAULT_OUTBOX_TTL_MS = 10 * 60_000;

/** The outbox's bounds: past either, a new failure is given up at once. */
export const DEFAULT_OUTBOX_LIMITS = { maxAnswers: 10_000, maxBytes: 32 * 1024 * 1024 };

/**
 * One answer on its way to a user: the bot's answer for `output.sendResponse`, or (`answer` undefined) the output's
 * `flush` after the answers of one message. `output` is the live object in memory; an outbox that keeps answers
 * outside the process rebuilds it from the message's reply address instead.
 */
export interface OutboxAnswer {
  channel: string;
  sender: string;
  messageId: string | undefined;
  output: Pick<OutputChannel, 'sendResponse' | 'flush'>;
  answer: BotMessage | undefined;
  /** The log of the message it answers (its request's fields). */
  logger?: Logger;
}

/** An answer waiting in the outbox, as `Outbox.pending()` lists it. */
export interface PendingAnswer {
  channel: string;
  sender: string;
  messageId: string | undefined;
  /** Attempts made so far (0: it waits behind an earlier answer of its sender). */
  attempts: number;
}

/** Why the outbox gave up on an answer (the `reason` of its log line and of `Outbox.onGiveUp`). */
export type GiveUpReason = 'expired' | 'full' | 'not retryable' | 'partly sent' | 'shutdown';

/**
 * Where answers go that a platform could not take for now. `send` is called for every answer, in the sender's order:
 * it sends at once when the sender has nothing waiting, and keeps the answer when the send fails in a way that cannot
 * have reached the platform (connect errors, 429, 503: `HttpRequestError.safeToRetry`) or when earlier answers of
 * the same sender wait; kept answers are retried in order with exponential backoff until `ttl`, then given up with
 * an error log line naming channel, sender and message id. The memory implementation keeps them in this process;
 * another (Redis) can keep them where another instance finds them.
 */
export interface Outbox {
  /**
   * Resolves 'sent' when the answer reached the platform, 'queued' when it is kept for later; rejects with the
   * send's error when it failed in a way a retry could duplicate (the caller logs it, as before), or with an
   * `OutboxFullError` when it could not be kept.
   */
  send(item: OutboxAnswer): Promise<'sent' | 'queued'>;
  /** Answers waiting now. */
  readonly size: number;
  /** Their size (JSON length of the answers). */
  readonly bytes: number;
  /** Answers waiting now, oldest first per sender. */
  pending(): PendingAnswer[];
  /** Resolves when nothing waits (every kept answer sent or given up). */
  drain(): Promise<void>;
  /** Stops retrying; each answer still waiting is given up (reason `shutdown`) and returned. */
  close(): PendingAnswer[];
  /** Told of each answer given up, after its log line (metrics). A hook that throws is ignored. */
  onGiveUp: ((reason: GiveUpReason, channel: string) => void) | undefined;
}

/** The outbox cannot keep one more answer: `--outbox` bounds are reached. */
export class OutboxFullError extends Error {
  constructor() {
    super('the outbox is full; the answer is given up');
    this.name = 'OutboxFullError';
  }
}

export interface MemoryOutboxOptions {
  /** How long an answer is retried after its first failure (`--outbox-ttl`). Default 10 minutes. */
  ttlMs?: number;
  /** The first wait before a retry; doubled each time up to `maxDelayMs`, with jitter (half to all of it). Default 1 s. */
  minDelayMs?: number;
  /** Default 60 s. */
  maxDelayMs?: number;
  /** Answers kept at most, across senders. Default 10,000. */
  maxAnswers?: number;
  /** Their size at most (JSON length). Default 32 MiB. */
  maxBytes?: number;
  logger?: Logger;
  /** The clock the ttl is measured with (tests move it). */
  now?: () => number;
  /** 0 ≤ x < 1, for the jitter (tests make it fixed). */
  random?: () => number;
}

interface Kept {
  item: OutboxAnswer;
  size: number;
  /** When it is given up if still not sent. */
  deadline: number;
  attempts: number;
}

/** One sender's kept answers, retried strictly in order. */
interface Line {
  key: string;
  items: Kept[];
  /** Failed attempts in a row, for the backoff. */
  failures: number;
  timer: NodeJS.Timeout | undefined;
  busy: boolean;
  /** The wait the platform asked for on the last failure (`Retry-After`): the next try is not sooner. */
  waitMs: number;
}

/** The outbox of one process: kept answers are lost with it (the Redis one, with `--redis`, is not). */
export class MemoryOutbox implements Outbox {
  readonly ttlMs: number;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxAnswers: number;
  private readonly maxBytes: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly lines = new Map<string, Line>();
  private count = 0;
  private totalBytes = 0;
  private closed = false;
  private idle: Array<() => void> = [];
  onGiveUp: ((reason: GiveUpReason, channel: string) => void) | undefined;
  /** Answers given up, by reason (for tests and diagnostics). */
  readonly gaveUp: Record<GiveUpReason, number> = { 'expired': 0, 'full': 0, 'not retryable': 0, 'partly sent': 0, 'shutdown': 0 };

  constructor(options: MemoryOutboxOptions = {}) {
    const positive = (name: string, value: number | undefined, fallback: number) => {
      if (value === undefined) return fallback;
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a number of at least 0, got ${String(value)}`);
      return value;
    };
    this.ttlMs = positive('ttlMs', options.ttlMs, DEFAULT_OUTBOX_TTL_MS);
    this.minDelayMs = positive('minDelayMs', options.minDelayMs, 1_000);
    this.maxDelayMs = positive('maxDelayMs', options.maxDelayMs, 60_000);
    this.maxAnswers = positive('maxAnswers', options.maxAnswers, DEFAULT_OUTBOX_LIMITS.maxAnswers);
    this.maxBytes = positive('maxBytes', options.maxBytes, DEFAULT_OUTBOX_LIMITS.maxBytes);
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  async send(item: OutboxAnswer): Promise<'sent' | 'queued'> {
    const key = `${item.channel}\u0000${item.sender}`;
    const line = this.lines.get(key);
    // Behind the sender's waiting answers: sending it now would overtake them.
    if (line) {
      this.keep(item, 0);
      return 'queued';
    }
    const { delivered, error } = await countDeliveries(() => deliver(item));
    if (error === undefined) return 'sent';
    // The answer's first part failed before anything of it was shown: a later try shows it whole, once.
    // A platform asking for a wait past the ttl would only have it given up later: it fails now, as it would without.
    if (this.closed || !isSafeToRetry(error) || delivered > 0 || asksWait(error) > this.ttlMs) throw error;
    this.keep(item, 1, asksWait(error));
    (item.logger ?? this.logger).warn({ channel: item.channel, sender: item.sender, messageId: item.messageId, err: error, ttlMs: this.ttlMs }, 'the platform did not take the answer; kept in the outbox for a retry');
    return 'queued';
  }

  pending(): PendingAnswer[] {
    const list: PendingAnswer[] = [];
    for (const line of this.lines.values()) {
      for (const kept of line.items) list.push({ channel: kept.item.channel, sender: kept.item.sender, messageId: kept.item.messageId, attempts: kept.attempts });
    }
    return list;
  }

  drain(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  close(): PendingAnswer[] {
    this.closed = true;
    const abandoned = this.pending();
    for (const line of this.lines.values()) {
      clearTimeout(line.timer);
      for (const kept of line.items) this.giveUp(kept, 'shutdown');
    }
    this.lines.clear();
    this.count = 0;
    this.totalBytes = 0;
    this.settleIdle();
    return abandoned;
  }

  /** Keeps an answer at the end of its sender's line; throws `OutboxFullError` (after its log line) past the bounds. */
  private keep(item: OutboxAnswer, attempts: number, waitMs = 0): void {
    const size = answerSize(item.answer);
    const kept: Kept = { item, size, deadline: this.now() + this.ttlMs, attempts };
    if (this.closed || this.count + 1 > this.maxAnswers || this.totalBytes + size > this.maxBytes) {
      this.giveUp(kept, 'full');
      throw new OutboxFullError();
    }
    const key = `${item.channel}\u0000${item.sender}`;
    let line = this.lines.get(key);
    if (!line) {
      line = { key, items: [], failures: attempts, timer: undefined, busy: false, waitMs };
      this.lines.set(key, line);
    }
    line.items.push(kept);
    this.count++;
    this.totalBytes += size;
    if (!line.busy && line.timer === undefined) this.schedule(line);
  }

  /** The next try of a line: after a backoff that doubles with each failure in a row (none before the first). */
  private schedule(line: Line): void {
    const delay = backoffDelay(line.failures, this.minDelayMs, this.maxDelayMs, line.waitMs, this.random);
    // Not unref'd: kept answers are work in progress, like a call waiting to retry in the HTTP client.
    line.timer = setTimeout(() => {
      line.timer = undefined;
      void this.run(line);
    }, delay);
  }

  /** Sends the line's answers in order until one fails for now (then waits) or none is left. */
  private async run(line: Line): Promise<void> {
    line.busy = true;
    while (!this.closed && line.items.length > 0) {
      const kept = line.items[0]!;
      kept.attempts++;
      const { delivered, error } = await countDeliveries(() => deliver(kept.item));
      if (this.closed) return;
      if (error === undefined) {
        line.failures = 0;
        line.waitMs = 0;
        this.remove(line);
        (kept.item.logger ?? this.logger).info({ channel: kept.item.channel, sender: kept.item.sender, messageId: kept.item.messageId, attempts: kept.attempts }, 'answer sent from the outbox');
        continue;
      }
      const waitMs = asksWait(error);
      const reason: GiveUpReason | undefined = !isSafeToRetry(error) ? 'not retryable' : delivered > 0 ? 'partly sent' : this.now() + waitMs >= kept.deadline ? 'expired' : undefined;
      if (reason) {
        this.remove(line);
        this.giveUp(kept, reason, error);
        continue;
      }
      line.failures++;
      line.waitMs = waitMs;
      line.busy = false;
      this.schedule(line);
      return;
    }
    line.busy = false;
    if (line.items.length === 0 && this.lines.get(line.key) === line) this.lines.delete(line.key);
    this.settleIdle();
  }

  private remove(line: Line): void {
    const kept = line.items.shift()!;
    this.count--;
    this.totalBytes -= kept.size;
  }

  private giveUp(kept: Kept, reason: GiveUpReason, error?: unknown): void {
    const { item } = kept;
    const fields = { channel: item.channel, sender: item.sender, messageId: item.messageId, reason, attempts: kept.attempts, ...(error === undefined ? {} : { err: error }) };
    const log = item.logger ?? this.logger;
    if (reason === 'shutdown') log.error(fields, 'shutdown grace expired: answer in the outbox abandoned');
    else log.error({ ...fields, ttlMs: this.ttlMs }, 'outbox gave up on an answer');
    this.gaveUp[reason]++;
    try {
      this.onGiveUp?.(reason, item.channel);
    } catch {
      // A counting hook must not change what happens to the answers.
    }
  }

  private settleIdle(): void {
    if (this.count > 0) return;
    const waiting = this.idle;
    this.idle = [];
    for (const resolve of waiting) resolve();
  }
}

/**
 * The wait before the next try of an answer after `failures` failures in a row: `minDelayMs` doubling up to
 * `maxDelayMs`, with jitter (half to all of it), none before the first failure, and never sooner than the platform
 * asked (`waitMs`).
 */
export function backoffDelay(failures: number, minDelayMs: number, maxDelayMs: number, waitMs: number, random: () => number = Math.random): number {
  const base = failures === 0 ? 0 : Math.min(maxDelayMs, minDelayMs * 2 ** (failures - 1));
  return Math.max(waitMs, Math.round(base * (0.5 + random() * 0.5)));
}

/** The wait a failed send's platform asked for, in ms (0: none). */
export function asksWait(error: unknown): number {
  return error instanceof HttpRequestError ? error.retryAfterMs ?? 0 : 0;
}

/** Sends one answer (or, `answer` undefined, the output's flush) straight to the output: what the pipeline does without an outbox. */
export async function deliver(item: Pick<OutboxAnswer, 'output' | 'sender' | 'answer'>): Promise<void> {
  if (item.answer === undefined) await item.output.flush?.(item.sender);
  else await item.output.sendResponse(item.sender, item.answer);
}

function answerSize(answer: BotMessage | undefined): number {
  try {
    return JSON.stringify(answer)?.length ?? 0;
  } catch {
    return 0;
  }
}
