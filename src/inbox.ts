import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from './logger.js';
import type { UserMessageData } from './message.js';

/** How long one instance's claim on a sender lasts without a heartbeat (`--inbox-claim-ttl`): a crashed instance's senders are resumed elsewhere after it. */
export const DEFAULT_CLAIM_TTL_MS = 15_000;

/** Senders looked at per sweep for claims whose instance is gone. */
const SWEEP_LIMIT = 10_000;

/**
 * A Lua function both ACK and NEXT use: takes a processed entry out of a sender's stream, with its bytes (its `s`
 * field) off the stream's `#bytes` count and its progress forgotten.
 */
const REMOVE = `
local function remove(stream, sent, id)
  local entry = redis.call('XRANGE', stream, id, id)
  if #entry > 0 then
    local fields = entry[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 's' then redis.call('HINCRBY', sent, '#bytes', -tonumber(fields[i + 1])) end
    end
  end
  redis.call('XDEL', stream, id)
  redis.call('HDEL', sent, id)
end
`;

/**
 * Adds a message to its sender's stream, after the deduplication claim, and claims the sender for this instance when
 * nobody holds it. Refused ('full') past the sender's backlog (messages, or bytes unless it is alone) or, for a sender
 * with nothing waiting, past the senders allowed to have messages waiting (all instances together).
 * KEYS: seen key ('' when the message has no platform id), stream, claim, active set, sent hash (its `#bytes` field
 * counts the stream's bytes). ARGV: dedup ttl, backlog, instance id, claim ttl, now, sender key, message JSON, trace,
 * claim (1/0), answers JSON ('': none), backlog bytes, size, senders.
 */
const ADD = `
if KEYS[1] ~= '' then
  if not redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return {'duplicate'} end
end
local count = redis.call('XLEN', KEYS[2])
local bytes = tonumber(redis.call('HGET', KEYS[5], '#bytes') or '0')
local size = tonumber(ARGV[12])
local refused
if count >= tonumber(ARGV[2]) or (count > 0 and bytes + size > tonumber(ARGV[11])) then
  refused = 'sender'
elseif count == 0 and not redis.call('ZSCORE', KEYS[4], ARGV[6]) and redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[13]) then
  refused = 'busy'
end
if refused then
  if KEYS[1] ~= '' then redis.call('DEL', KEYS[1]) end
  return {'full', refused}
end
local id
if ARGV[10] ~= '' then
  id = redis.call('XADD', KEYS[2], '*', 'm', ARGV[7], 'r', ARGV[8], 's', ARGV[12], 'a', ARGV[10])
else
  id = redis.call('XADD', KEYS[2], '*', 'm', ARGV[7], 'r', ARGV[8], 's', ARGV[12])
end
redis.call('HINCRBY', KEYS[5], '#bytes', size)
redis.call('ZADD', KEYS[4], 'NX', ARGV[5], ARGV[6])
local claimed = 0
if ARGV[9] == '1' and redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4], 'NX') then claimed = 1 end
local owner = redis.call('GET', KEYS[3]) or ''
return {'added', id, claimed, owner}
`;

/**
 * The holder's next message of a sender (the oldest), with how many of its answers were already sent; when the stream
 * is empty the claim is let go in the same step, so a message added meanwhile finds the sender free. The message just
 * processed (ARGV[4], '' for none) is removed first, in the same step: its bytes and progress forgotten.
 * KEYS: stream, claim, active set, sent hash. ARGV: instance id, claim ttl, sender key, processed entry id.
 */
const NEXT = `
${REMOVE}
if ARGV[4] ~= '' then remove(KEYS[1], KEYS[4], ARGV[4]) end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'lost'} end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then
  redis.call('DEL', KEYS[2], KEYS[1], KEYS[4])
  redis.call('ZREM', KEYS[3], ARGV[3])
  return {'empty'}
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local id = first[1][1]
local sent = redis.call('HGET', KEYS[4], id) or '0'
local out = {'entry', id, sent}
for _, value in ipairs(first[1][2]) do table.insert(out, value) end
return out
`;

/** A message done with: out of the stream, its bytes and progress forgotten. KEYS: stream, sent hash. ARGV: entry id. */
const ACK = `
${REMOVE}
remove(KEYS[1], KEYS[2], ARGV[1])
return 1
`;

/** Heartbeat: every claim still this instance's is extended; returns the (1-based) indexes of those that are not. */
const RENEW = `
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) else table.insert(lost, i) end
end
return lost
`;

/** Lets a claim go, if it is still this instance's. KEYS: claim. ARGV: instance id. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Claims senders that have messages and no holder (their instance crashed, or let them go while shutting down).
 * KEYS: active set. ARGV: key base, instance id, claim ttl, limit.
 */
const SWEEP = `
local senders = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[4]) - 1)
local got = {}
for _, sender in ipairs(senders) do
  if redis.call('EXISTS', ARGV[1] .. 'q:' .. sender) == 0 then
    redis.call('ZREM', KEYS[1], sender)
  elseif redis.call('SET', ARGV[1] .. 'lock:' .. sender, ARGV[2], 'PX', ARGV[3], 'NX') then
    table.insert(got, sender)
  end
end
return got
`;

interface Scripts {
  inboxAdd(seen: string, stream: string, claim: string, active: string, sent: string, ...argv: string[]): Promise<[string, string?, number?, string?]>;
  inboxNext(stream: string, claim: string, active: string, sent: string, ...argv: string[]): Promise<string[]>;
  inboxAck(stream: string, sent: string, id: string): Promise<number>;
  inboxRenew(...keysAndArgs: string[]): Promise<number[]>;
  inboxRelease(claim: string, me: string): Promise<number>;
  inboxSweep(active: string, ...argv: string[]): Promise<string[]>;
}

/** How a message is added (see `SharedInbox.add`). */
export interface AddOptions {
  /** The deduplication key (under the prefix, as the store's claims are), when the message has a platform id. */
  seenKey?: string;
  dedupTtlMs: number;
  /** Messages one sender may have waiting (`--sender-backlog`). */
  backlog: number;
  /** Their size, text and metadata as JSON (`--sender-backlog-bytes`); one message alone is always taken. */
  backlogBytes?: number;
  /** Senders that may have messages waiting, all instances together. */
  senders?: number;
  /** The request's trace, as JSON. */
  trace?: string;
  /** Answers to send as they are (a message sent first), as JSON. */
  answers?: string;
}

/** One message read back from the shared inbox. */
export interface InboxEntry {
  /** The stream entry id (`<ms>-<seq>`). */
  id: string;
  /** The sender's key (channel and sender). */
  sender: string;
  message: UserMessageData;
  /** The trace of the request that brought it in (`RequestTrace` as JSON), for the logs and the bot. */
  trace: string | undefined;
  /** How many of its answers (and flushes) were already sent, by an instance that did not finish it. */
  sent: number;
  /** Answers to send as they are, without asking the bot (a message sent first), as JSON. */
  answers: string | undefined;
}

/**
 * What the inbox's holder does with one message: resolves with `keep: true` when the message must stay in the inbox
 * (the shutdown interrupted it: another instance, or this one restarted, sends what is left).
 */
export type InboxRunner = (entry: InboxEntry) => Promise<{ keep: boolean; outcome: string }>;

/** What `SharedInbox.add` made of a message. */
export type AddResult =
  | { status: 'duplicate' }
  /** Refused: `sender` when the sender's backlog is full, `busy` when too many senders have messages waiting. */
  | { status: 'full'; reason: 'sender' | 'busy' }
  /** In the inbox; `done` settles when this instance processed it, or with `forwarded` when another instance holds its sender. */
  | { status: 'added'; id: string; done: Promise<string> };

export interface SharedInboxOptions {
  client: Redis;
  /** The key prefix (`--redis-prefix`); the inbox's keys are under `<prefix>inbox:`. */
  prefix: string;
  logger?: Logger;
  /** `--inbox-claim-ttl`: see `DEFAULT_CLAIM_TTL_MS`. */
  claimTtlMs?: number;
  /** How often claims are renewed and orphaned senders looked for. Default: a third of the claim ttl. */
  heartbeatMs?: number;
  /** Told when a Redis command failed or succeeded (the store's one-warning-per-outage log). */
  onDown?: (error: Error) => void;
  onUp?: () => void;
}

/**
 * The durable, ordered inbox shared by every instance on one Redis. Each sender has a Redis stream of its messages, in
 * arrival order, and at most one instance holds the sender (a claim key with a ttl, renewed by a heartbeat while it
 * works). The holder reads the sender's messages one at a time, runs each, and removes it only after its answers were
 * sent; different senders are held by different instances or run side by side. A message is added (XADD) before the
 * platform is acknowledged; when its sender is free the receiving instance claims it and runs it at once, else the
 * holder finds it next. A crashed instance's claims expire, and any instance's sweep claims those senders and resumes
 * their messages in order, skipping the answers progress says were sent. No home-made protocol: Lua scripts over
 * streams, sorted sets and keys, each step atomic in Redis.
 */
export class SharedInbox {
  readonly instanceId = randomUUID();
  readonly claimTtlMs: number;
  private readonly heartbeatMs: number;
  private readonly client: Redis & Scripts;
  private readonly prefix: string;
  private readonly base: string;
  private readonly active: string;
  private readonly logger: Logger;
  private readonly onDown: (error: Error) => void;
  private readonly onUp: () => void;
  private runner: InboxRunner | undefined;
  /** The senders this instance holds, each with its running loop. */
  private readonly held = new Map<string, Promise<void>>();
  /** Local callers waiting for an entry's outcome, by sender, then entry id. */
  private readonly waiters = new Map<string, Map<string, (outcome: string) => void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private sweeping = false;

  constructor(options: SharedInboxOptions) {
    this.claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
    if (!Number.isInteger(this.claimTtlMs) || this.claimTtlMs < 1_000) throw new RangeError(`claimTtlMs must be a whole number of at least 1000, got ${String(options.claimTtlMs)}`);
    this.heartbeatMs = options.heartbeatMs ?? Math.floor(this.claimTtlMs / 3);
    this.prefix = options.prefix;
    this.base = `${options.prefix}inbox:`;
    this.active = `${this.base}active`;
    this.logger = options.logger ?? silentLogger;
    this.onDown = options.onDown ?? (() => undefined);
    this.onUp = options.onUp ?? (() => undefined);
    const client = options.client as Redis & Partial<Scripts>;
    if (!client.inboxAdd) {
      client.defineCommand('inboxAdd', { numberOfKeys: 5, lua: ADD });
      client.defineCommand('inboxNext', { numberOfKeys: 4, lua: NEXT });
      client.defineCommand('inboxAck', { numberOfKeys: 2, lua: ACK });
      client.defineCommand('inboxRenew', { lua: RENEW });
      client.defineCommand('inboxRelease', { numberOfKeys: 1, lua: RELEASE });
      client.defineCommand('inboxSweep', { numberOfKeys: 1, lua: SWEEP });
    }
    this.client = client as Redis & Scripts;
  }

  /** The key of one sender of one channel (the part of the inbox's keys that names it). */
  static senderKey(channel: string, sender: string): string {
    return `${encodeURIComponent(channel)}:${sender}`;
  }

  /** Starts the heartbeat and the sweep (at once, then every `heartbeatMs`); `runner` runs each message. */
  start(runner: InboxRunner): void {
    this.runner = runner;
    this.stopping = false;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  /** Senders this instance holds now. */
  get heldSenders(): number {
    return this.held.size;
  }

  /**
   * Adds a message to its sender's stream (after the deduplication claim `seenKey`, under the prefix, as the store's
   * claims are) and, unless the
   * inbox is stopping, runs it here when the sender is free. Rejects when Redis cannot be reached (the caller processes
   * the message itself).
   */
  async add(sender: string, message: UserMessageData, options: AddOptions): Promise<AddResult> {
    const json = JSON.stringify(message);
    const size = json.length + (options.answers?.length ?? 0);
    const reply = await this.command(() =>
      this.client.inboxAdd(
        options.seenKey === undefined ? '' : this.prefix + options.seenKey,
        this.key('q', sender),
        this.key('lock', sender),
        this.active,
        this.key('sent', sender),
        String(Math.max(1, Math.ceil(options.dedupTtlMs))),
        String(options.backlog),
        this.instanceId,
        String(this.claimTtlMs),
        String(Date.now()),
        sender,
        json,
        options.trace ?? '',
        this.stopping || !this.runner ? '0' : '1',
        options.answers ?? '',
        String(options.backlogBytes ?? Number.MAX_SAFE_INTEGER),
        String(size),
        String(options.senders ?? Number.MAX_SAFE_INTEGER),
      ),
    );
    if (reply[0] === 'duplicate') return { status: 'duplicate' };
    if (reply[0] === 'full') return { status: 'full', reason: reply[1] === 'busy' ? 'busy' : 'sender' };
    const id = String(reply[1]);
    const claimed = Number(reply[2]) === 1;
    const owner = String(reply[3] ?? '');
    if (owner !== this.instanceId) return { status: 'added', id, done: Promise.resolve('forwarded') };
    const done = new Promise<string>((resolve) => {
      let list = this.waiters.get(sender);
      if (!list) this.waiters.set(sender, (list = new Map()));
      list.set(id, resolve);
    });
    if (claimed) this.hold(sender);
    return { status: 'added', id, done };
  }

  /** Records that the first `sent` answers (and flushes) of an entry reached the platform. Never rejects. */
  async progress(entry: InboxEntry, sent: number): Promise<void> {
    try {
      await this.command(() => this.client.hset(this.key('sent', entry.sender), entry.id, String(sent)));
    } catch {
      // At worst the answer is sent again after a crash.
    }
  }

  /** Resolves when this instance holds no sender (every loop ran out of messages, or stopped). */
  async idle(): Promise<void> {
    while (this.held.size > 0) await Promise.all([...this.held.values()]);
  }

  /**
   * Stops taking senders: each loop finishes the message it is running and lets its sender go (another instance's
   * sweep, or this one restarted, takes the rest); new messages are only added. Resolves when every loop stopped.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.held.values()]);
  }

  /**
   * Stops everything: timers off, every sender still held let go at once (a message still with the bot past the
   * shutdown's grace is resumed by another instance, its sent answers skipped).
   */
  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.held.keys()].map((sender) => this.release(sender)));
  }

  private key(kind: 'q' | 'lock' | 'sent', sender: string): string {
    return `${this.base}${kind}:${sender}`;
  }

  /** Runs the loop of a sender this instance just claimed (after the one still finishing, if any). */
  private hold(sender: string): void {
    const previous = this.held.get(sender);
    const loop = (previous ?? Promise.resolve()).then(() => this.run(sender));
    this.held.set(sender, loop);
    void loop.finally(() => {
      if (this.held.get(sender) === loop) this.held.delete(sender);
    });
  }

  /** Runs a held sender's messages in order until none is left, the claim is lost, Redis fails or the inbox stops. */
  private async run(sender: string): Promise<void> {
    const log = this.logger;
    /** The message just processed: removed from the stream by the next read, in the same step. */
    let processed: string | undefined;
    try {
      for (;;) {
        if (this.stopping) {
          if (processed !== undefined) await this.ack(sender, processed);
          await this.release(sender);
          return;
        }
        let reply: string[];
        try {
          reply = await this.command(() => this.client.inboxNext(this.key('q', sender), this.key('lock', sender), this.active, this.key('sent', sender), this.instanceId, String(this.claimTtlMs), sender, processed ?? ''));
        } catch (error) {
          // Redis is away: the claim runs out and a sweep (here or elsewhere) resumes the sender when it is back (a
          // message processed but not yet removed is then processed again, its answers sent skipped by progress).
          log.debug({ err: error }, 'inbox: reading the next message failed; the sender is resumed later');
          return;
        }
        processed = undefined;
        if (reply[0] !== 'entry') {
          if (reply[0] === 'lost') log.warn({ sender }, 'inbox: this instance lost its claim on a sender (it was too slow, or Redis was away); another instance goes on');
          return;
        }
        const entry = this.entryOf(sender, reply);
        if (!entry) {
          processed = reply[1]!;
          continue;
        }
        let result: { keep: boolean; outcome: string };
        try {
          result = await this.runner!(entry);
        } catch (error) {
          log.error({ err: error, sender }, 'inbox: processing a message failed');
          result = { keep: false, outcome: 'failed' };
        }
        if (result.keep) {
          await this.release(sender);
          return;
        }
        processed = entry.id;
        this.settle(sender, entry.id, result.outcome);
      }
    } finally {
      // Entries this instance added but did not run go on elsewhere (or later here).
      const list = this.waiters.get(sender);
      if (list) {
        this.waiters.delete(sender);
        for (const resolve of list.values()) resolve('forwarded');
      }
    }
  }

  private entryOf(sender: string, reply: string[]): InboxEntry | undefined {
    const id = reply[1]!;
    const sent = Number(reply[2]) || 0;
    const fields = new Map<string, string>();
    for (let i = 3; i + 1 < reply.length; i += 2) fields.set(reply[i]!, reply[i + 1]!);
    let message: UserMessageData;
    try {
      message = JSON.parse(fields.get('m') ?? '') as UserMessageData;
    } catch (error) {
      this.logger.error({ err: error, sender, id }, 'inbox: a message in the inbox is not JSON; removed');
      this.settle(sender, id, 'failed');
      return undefined;
    }
    const trace = fields.get('r') || undefined;
    return { id, sender, message, trace, sent, answers: fields.get('a') };
  }

  private async ack(sender: string, id: string): Promise<void> {
    try {
      await this.command(() => this.client.inboxAck(this.key('q', sender), this.key('sent', sender), id));
    } catch (error) {
      // Its answers were sent; at worst they are sent again when the sender is resumed.
      this.logger.warn({ err: error, sender, id }, 'inbox: removing a processed message failed; it may be answered again');
    }
  }

  private async release(sender: string): Promise<void> {
    try {
      await this.command(() => this.client.inboxRelease(this.key('lock', sender), this.instanceId));
    } catch {
      // It runs out by itself.
    }
  }

  private settle(sender: string, id: string, outcome: string): void {
    const list = this.waiters.get(sender);
    const resolve = list?.get(id);
    if (!resolve) return;
    list!.delete(id);
    if (list!.size === 0) this.waiters.delete(sender);
    resolve(outcome);
  }

  /** The heartbeat: renews this instance's claims, then claims senders nobody holds. */
  private async beat(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const senders = [...this.held.keys()];
      if (senders.length > 0) {
        const lost = await this.command(() => this.client.inboxRenew(String(senders.length), ...senders.map((s) => this.key('lock', s)), this.instanceId, String(this.claimTtlMs)));
        for (const index of lost) this.logger.warn({ sender: senders[index - 1] }, 'inbox: a claim ran out while this instance held it; another instance may go on with the sender');
      }
      if (this.stopping || !this.runner) return;
      const orphans = await this.command(() => this.client.inboxSweep(this.active, this.base, this.instanceId, String(this.claimTtlMs), String(SWEEP_LIMIT)));
      for (const sender of orphans) {
        this.logger.info({ sender }, 'inbox: resuming a sender whose messages nobody was processing');
        this.hold(sender);
      }
    } catch (error) {
      this.logger.debug({ err: error }, 'inbox: heartbeat failed');
    } finally {
      this.sweeping = false;
    }
  }

  private async command<T>(run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      this.onUp();
      return result;
    } catch (error) {
      this.onDown(error as Error);
      throw error;
    }
  }
}
