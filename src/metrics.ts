import type { Context, Next } from 'koa';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Bot } from './bot.js';
import { RemoteBot } from './bots/remote.js';
import { RulesBot } from './bots/rules.js';
import { channelPrefix, type InputChannel } from './channel.js';
import { contextField } from './context.js';
import { BacklogFullError } from './errors.js';
import type { HttpObserver } from './http.js';
import type { OnNewMessage, Outcome, Pipeline } from './pipeline.js';

/**
 * What became of one message a platform delivered. The first four come from the pipeline (`failed`: the bot or the
 * platform call failed; `dropped`: its client hung up before its turn); the others from the webhook request's answer:
 * `ignored` is a delivery answered 2xx that handed the bot nothing (a platform event that is not a message, a
 * verification challenge), `rejected_signature` a 401/403, `invalid` a 400/413/415/422, `shed` a 429 (a queue bound).
 */
export const MESSAGE_OUTCOMES = ['handled', 'failed', 'dropped', 'duplicate', 'ignored', 'rejected_signature', 'invalid', 'shed', 'forwarded'] as const;
export type MessageOutcome = (typeof MESSAGE_OUTCOMES)[number];
export type BotKind = 'module' | 'rules' | 'remote';

/** Seconds: a rules bot answers in microseconds, a Rasa server in a few hundred milliseconds, a hung one never. */
const BOT_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Node's own metrics describe the process, not a server: collected once per process, on the first scrape. */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** Per webhook request: how many messages it handed the pipeline, so a request that handed none can be counted. */
const requestScope = contextField<{ messages: number }>('requestMessages');

/** The bot's kind, as the `kind` label: what `--bot` loaded. */
export function botKind(bot: Bot): BotKind {
  if (bot instanceof RemoteBot) return 'remote';
  if (bot instanceof RulesBot) return 'rules';
  return 'module';
}

/**
 * One server's Prometheus metrics, in a registry of its own so several servers in one process (tests, a host
 * embedding two) do not clash. Labels are bounded: channel names, HTTP methods, status classes, outcomes and bot kinds,
 * never a sender, a message id or a URL.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly messages: Counter<'channel' | 'outcome'>;
  private readonly botDuration: Histogram<'kind' | 'result'>;
  private readonly platformRequests: Counter<'channel' | 'method' | 'status_class'>;
  private readonly platformRetries: Counter<'channel' | 'method'>;
  private readonly platformGaveUp: Counter<'channel' | 'method'>;
  private readonly outboxGaveUp: Counter<'channel' | 'reason'>;
  private readonly proactive: Counter<'channel' | 'outcome'>;
  private readonly changes: Counter<'channel' | 'action' | 'outcome'>;
  private readonly channelNames: Set<string>;

  /** Read on each scrape for the queue gauges; see `watch`. */
  private pipeline: Pipeline | undefined;

  constructor(channels: InputChannel[]) {
    const registers = [this.registry];
    this.channelNames = new Set(channels.map((c) => c.name()));
    this.messages = new Counter({
      name: 'switchboard_messages_received_total',
      help: 'Messages and webhook deliveries received, by channel and what became of them',
      labelNames: ['channel', 'outcome'],
      registers,
    });
    // Every series exists from the start, so a rate over it is 0 rather than absent.
    for (const channel of this.channelNames) for (const outcome of MESSAGE_OUTCOMES) this.messages.inc({ channel, outcome }, 0);
    this.proactive = new Counter({
      name: 'switchboard_proactive_requests_total',
      help: 'Requests to send first (POST /api/v1/conversations/...), by channel and outcome (accepted, unsupported, shed, failed)',
      labelNames: ['channel', 'outcome'],
      registers,
    });
    this.changes = new Counter({
      name: 'switchboard_message_changes_total',
      help: 'Requests to edit or delete a sent answer (PATCH/DELETE /api/v1/conversations/.../messages/{id}), by channel, action (edit, delete) and outcome (done, unsupported, not_found, failed)',
      labelNames: ['channel', 'action', 'outcome'],
      registers,
    });
    this.botDuration = new Histogram({
      name: 'switchboard_bot_duration_seconds',
      help: 'Time the bot took to answer a message (a streaming bot: to its first answer), by bot kind and result',
      labelNames: ['kind', 'result'],
      buckets: BOT_BUCKETS,
      registers,
    });
    this.platformRequests = new Counter({
      name: 'switchboard_platform_requests_total',
      help: 'Outgoing calls to chat platforms, each attempt, by channel, HTTP method and status class (error: no answer)',
      labelNames: ['channel', 'method', 'status_class'],
      registers,
    });
    this.platformRetries = new Counter({
      name: 'switchboard_platform_retries_total',
      help: 'Outgoing platform calls attempted again after a failure',
      labelNames: ['channel', 'method'],
      registers,
    });
    this.platformGaveUp = new Counter({
      name: 'switchboard_platform_gave_up_total',
      help: 'Outgoing platform calls that failed for good (retries spent, or not safe to retry): an answer not delivered',
      labelNames: ['channel', 'method'],
      registers,
    });
    const gauge = (name: string, help: string, read: (pipeline: Pipeline) => number) => {
      const metrics = this;
      new Gauge({ name, help, registers, collect() { if (metrics.pipeline) this.set(read(metrics.pipeline)); } });
    };
    gauge('switchboard_queue_messages', 'Messages waiting for the bot or with it', (p) => p.queuedMessages);
    gauge('switchboard_active_senders', 'Senders with messages waiting or with the bot', (p) => p.activeSenders);
    gauge('switchboard_bot_calls_active', 'Bot calls running now', (p) => p.activeBotCalls);
    gauge('switchboard_senders_waiting', 'Senders waiting for a free bot call', (p) => p.waitingSenders);
    gauge('switchboard_outbox_answers', 'Answers kept in the outbox, waiting for the platform to take them', (p) => p.outbox?.size ?? 0);
    gauge('switchboard_outbox_bytes', 'Size of the answers kept in the outbox (JSON length)', (p) => p.outbox?.bytes ?? 0);
    this.outboxGaveUp = new Counter({
      name: 'switchboard_outbox_gave_up_total',
      help: 'Answers the outbox gave up on, by channel and reason (expired, full, not retryable, partly sent, shutdown)',
      labelNames: ['channel', 'reason'],
      registers,
    });
    new Gauge({
      name: 'switchboard_socketio_connections',
      help: 'Open socket.io connections, by channel',
      labelNames: ['channel'],
      registers,
      collect() {
        for (const channel of channels) {
          const count = (channel as { server?: { engine?: { clientsCount?: unknown } } }).server?.engine?.clientsCount;
          if (typeof count === 'number') this.set({ channel: channel.name() }, count);
        }
      },
    });
  }

  /** The pipeline whose queues the gauges show. */
  watch(pipeline: Pipeline): void {
    this.pipeline = pipeline;
    if (pipeline.outbox) pipeline.outbox.onGiveUp = (reason, channel) => this.outboxGaveUp.inc({ channel, reason });
  }

  /** The exposition text: this server's metrics, then the process's. */
  async text(): Promise<string> {
    return (await this.registry.metrics()) + (await processMetrics().metrics());
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** One request to send first, by the channel it named (a known one) and what became of it. */
  countProactive(channel: string, outcome: 'accepted' | 'unsupported' | 'shed' | 'failed'): void {
    if (this.channelNames.has(channel)) this.proactive.inc({ channel, outcome });
  }

  /** One request to edit or delete a sent answer, by the channel it named (a known one), the action and its outcome. */
  countChange(channel: string, action: 'edit' | 'delete', outcome: 'done' | 'unsupported' | 'not_found' | 'failed'): void {
    if (this.channelNames.has(channel)) this.changes.inc({ channel, action, outcome });
  }

  count(channel: string, outcome: MessageOutcome): void {
    this.messages.inc({ channel, outcome });
  }

  /**
   * A channel's `onNewMessage`, counting each message it hands over: refused by a bound (`shed`), a duplicate, or,
   * once processed, the pipeline's outcome.
   */
  countingHandler(channel: string, handler: OnNewMessage): OnNewMessage {
    const enqueue: OnNewMessage['enqueue'] = async (message, options) => {
      const scope = requestScope.get();
      if (scope) scope.messages++;
      let accepted;
      try {
        accepted = await handler.enqueue(message, options);
      } catch (error) {
        if (error instanceof BacklogFullError) this.count(channel, 'shed');
        throw error;
      }
      if (accepted.duplicate) this.count(channel, 'duplicate');
      else void accepted.done.then((outcome) => this.count(channel, pipelineOutcome(outcome)));
      return accepted;
    };
    const onNewMessage = (async (message, options) => (await enqueue(message, options)).done) as OnNewMessage;
    return Object.assign(onNewMessage, handler, { enqueue });
  }

  /**
   * Host middleware counting webhook deliveries that handed the bot no message, from their answer's status: a channel
   * route's 401 is a rejected signature whichever channel raised it, so no channel counts anything itself.
   */
  requests() {
    return async (ctx: Context, next: Next): Promise<void> => {
      const channel = channelPrefix(ctx.path);
      if (ctx.method !== 'POST' || !this.channelNames.has(channel)) return next();
      const scope = { messages: 0 };
      try {
        await requestScope.run(scope, next);
      } finally {
        // A thrown error is answered by the error middleware inside this one, so the status is final here.
        const outcome = scope.messages === 0 ? requestOutcome(ctx.status) : undefined;
        if (outcome) this.count(channel, outcome);
      }
    };
  }

  /** The bot, timed: the same object to everyone (`instanceof` and its other methods unchanged), `handle` observed. */
  timedBot(bot: Bot): Bot {
    const kind = botKind(bot);
    const observe = (started: bigint, result: 'ok' | 'error') =>
      this.botDuration.observe({ kind, result }, Number(process.hrtime.bigint() - started) / 1e9);
    return new Proxy(bot, {
      get: (target, property) => {
        const value: unknown = Reflect.get(target, property);
        if (property !== 'handle' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return (...args: unknown[]) => {
          const started = process.hrtime.bigint();
          let result: unknown;
          try {
            result = (value as (...a: unknown[]) => unknown).apply(target, args);
          } catch (error) {
            observe(started, 'error');
            throw error;
          }
          if (isAsyncIterable(result)) return timedIterable(result, (ok) => observe(started, ok ? 'ok' : 'error'));
          return Promise.resolve(result).then(
            (answers) => {
              if (isAsyncIterable(answers)) return timedIterable(answers, (ok) => observe(started, ok ? 'ok' : 'error'));
              observe(started, 'ok');
              return answers;
            },
            (error: unknown) => {
              observe(started, 'error');
              throw error;
            },
          );
        };
      },
    });
  }

  /** The hook one channel's outgoing client reports to. */
  httpObserver(channel: string): HttpObserver {
    return {
      attempt: (method, status) => this.platformRequests.inc({ channel, method, status_class: statusClass(status) }),
      retry: (method) => this.platformRetries.inc({ channel, method }),
      gaveUp: (method) => this.platformGaveUp.inc({ channel, method }),
    };
  }
}

function pipelineOutcome(outcome: Outcome): MessageOutcome {
  return outcome === 'handled' || outcome === 'dropped' || outcome === 'duplicate' || outcome === 'forwarded' ? outcome : 'failed';
}

function requestOutcome(status: number): MessageOutcome | undefined {
  if (status === 404 || status === 405) return undefined; // no such route: not a delivery
  if (status === 401 || status === 403) return 'rejected_signature';
  if (status === 429) return 'shed';
  if (status >= 500) return 'failed';
  if (status >= 400) return 'invalid';
  return 'ignored';
}

function statusClass(status: number | undefined): string {
  return status === undefined || status < 100 || status > 599 ? 'error' : `${Math.floor(status / 100)}xx`;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/** Reports once, when the first answer (or the end, or an error) comes out of a streaming bot. */
function timedIterable<T>(source: AsyncIterable<T>, report: (ok: boolean) => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const iterator = source[Symbol.asyncIterator]();
      let reported = false;
      const once = (ok: boolean) => {
        if (!reported) report(ok);
        reported = true;
      };
      return {
        next: async (...args: [] | [unknown]) => {
          try {
            const result = await iterator.next(...args);
            once(true);
            return result;
          } catch (error) {
            once(false);
            throw error;
          }
        },
        return: async (value?: unknown) => (iterator.return ? iterator.return(value) : { done: true as const, value: value as T }),
        ...(iterator.throw ? { throw: (error?: unknown) => iterator.throw!(error) } : {}),
      };
    },
  };
}
