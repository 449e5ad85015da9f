/**
 * `switchboard/testing`: helpers a channel author calls from their own tests, with any test runner. Start a host with
 * a channel on an ephemeral port, post webhooks, see the `UserMessage`s the bot received, script its answers, and run
 * `conformance()` to check the channel keeps the contract every Switchboard channel keeps.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bot } from '../bot.js';
import type { InputChannel, InputChannelClass } from '../channel.js';
import { HttpClient, type HttpClientOptions } from '../http.js';
import { createLogger, type Logger } from '../logger.js';
import type { BotMessage, UserMessage } from '../message.js';
import type { Outbox } from '../outbox.js';
import type { PipelineLimits } from '../pipeline.js';
import { describeCredentials, type CredentialsSchema } from '../schema.js';
import { isValidChannelName } from '../channel.js';
import { SwitchboardServer, type RegistrationRetry } from '../server.js';
import { Writable } from 'node:stream';

export { conformance, ConformanceError } from './conformance.js';
export type { ConformanceOptions, ConformanceReport, ConformanceCheck } from './conformance.js';

/** A bot that records every message it receives and answers from a script (a list, or a function of the message). */
export class ScriptedBot implements Bot {
  readonly received: UserMessage[] = [];
  answers: BotMessage[] | ((message: UserMessage) => BotMessage[] | Promise<BotMessage[]>);

  constructor(answers: ScriptedBot['answers'] = [{ text: 'ok' }]) {
    this.answers = answers;
  }

  async handle(message: UserMessage): Promise<BotMessage[]> {
    this.received.push(message);
    return typeof this.answers === 'function' ? this.answers(message) : structuredClone(this.answers);
  }

  /** Resolves once `count` messages were received; rejects after `timeoutMs`. */
  async waitForMessages(count: number, timeoutMs = 3_000): Promise<UserMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`the bot received ${this.received.length} message(s), expected ${count}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.received.slice(0, count);
  }
}

/** Log lines written by the test host, kept as text so a test can check what was (or was not) logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    callback();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface WebhookResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface PostOptions {
  /** Relative to the channel's prefix; default `/webhook`. */
  path?: string;
  headers?: Record<string, string>;
  method?: string;
}

export interface TestHost {
  /** `http://127.0.0.1:<port>` */
  url: string;
  server: SwitchboardServer;
  bot: ScriptedBot;
  logs: LogCapture;
  logger: Logger;
  /** Messages the bot received so far. */
  readonly received: UserMessage[];
  /**
   * Posts to a channel's route: a string body is sent as is (with `content-type` from headers, default JSON), an
   * object as JSON, a `URLSearchParams` as a form.
   */
  post(channel: string, body: string | object | URLSearchParams, options?: PostOptions): Promise<WebhookResponse>;
  /** A plain request against the host, path from the root. */
  request(path: string, init?: RequestInit): Promise<WebhookResponse>;
  close(): Promise<void>;
}

export interface TestHostOptions {
  bot?: ScriptedBot;
  /** The answers of the default ScriptedBot. */
  answers?: ScriptedBot['answers'];
  logLevel?: string;
  /** As the host's `--cors`, `--body-limit` and `--trust-proxy`. */
  cors?: string[];
  bodyLimit?: string | number;
  trustProxy?: boolean;
  /** The pipeline's limits (as `--sender-backlog`, `--bot-concurrency`, ...); the defaults otherwise. */
  limits?: PipelineLimits;
  /** Over the outgoing client's test settings (5–20 ms backoff, a 3 s timeout): a shorter `timeoutMs`, a `sleep`. */
  http?: Omit<HttpClientOptions, 'logger'>;
  /** As `--bot-timeout` and `--bot-apology` (default: the host's 30 s, and no apology). */
  botTimeoutMs?: number;
  botApology?: BotMessage[];
  /** As `--outbox-ttl` (default: the host's 10 minutes), or the outbox itself (one with a short backoff). */
  outboxTtlMs?: number;
  outbox?: Outbox;
  /**
   * Retries of channels' platform registrations (`InputChannel.register`). Default here: one attempt, no retry, so a
   * test's intercepted calls are not raced by a retry; pass `{ attempts, minDelayMs }` to test the retries.
   */
  registration?: RegistrationRetry;
}

async function readResponse(response: Response): Promise<WebhookResponse> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Starts a host with these channels on 127.0.0.1 and an ephemeral port. Close it when done. */
export async function startTestHost(channels: InputChannel | InputChannel[], options: TestHostOptions = {}): Promise<TestHost> {
  const bot = options.bot ?? new ScriptedBot(options.answers);
  const logs = new LogCapture();
  // Every line kept: a test reads what its own request logged, however many similar warnings came before.
  const logger = createLogger({ level: options.logLevel ?? 'debug', destination: logs, warnLimit: false });
  const http = new HttpClient({ minDelayMs: 5, maxDelayMs: 20, timeoutMs: 3_000, ...options.http, logger });
  const server = new SwitchboardServer({
    channels: Array.isArray(channels) ? channels : [channels],
    bot,
    logger,
    http,
    cors: options.cors,
    bodyLimit: options.bodyLimit,
    trustProxy: options.trustProxy,
    limits: options.limits,
    botTimeoutMs: options.botTimeoutMs,
    botApology: options.botApology,
    outboxTtlMs: options.outboxTtlMs,
    outbox: options.outbox,
    registration: options.registration ?? { attempts: 1 },
  });
  const address = await server.listen(0, '127.0.0.1');
  // The server never waits for its channels' platform registrations (Telegram's setWebhook); a test sees their first
  // attempt made, so the calls it intercepts are the ones of startup and then its own.
  await server.registering();
  const url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    server,
    bot,
    logs,
    logger,
    get received() {
      return bot.received;
    },
    async post(channel, body, postOptions = {}) {
      const headers: Record<string, string> = { ...(postOptions.headers ?? {}) };
      const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
      let raw: string;
      if (body instanceof URLSearchParams) {
        raw = body.toString();
        if (!hasType) headers['content-type'] = 'application/x-www-form-urlencoded';
      } else {
        raw = typeof body === 'string' ? body : JSON.stringify(body);
        if (!hasType) headers['content-type'] = 'application/json';
      }
      const response = await fetch(`${url}/webhooks/${channel}${postOptions.path ?? '/webhook'}`, { method: postOptions.method ?? 'POST', headers, body: raw });
      return readResponse(response);
    },
    async request(path, init) {
      return readResponse(await fetch(url + path, init));
    },
    close: async () => {
      await server.close(200);
    },
  };
}

/** A request a fake platform received. */
export interface PlatformRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakePlatform {
  /** Base URL to give a channel as its `api_url`. */
  url: string;
  readonly requests: PlatformRequest[];
  close(): Promise<void>;
}

/**
 * A stand-in for a platform's API on 127.0.0.1: records every request and answers 200 with a JSON body that most
 * APIs' clients take as success (`{"ok": true, "result": {}, "id": "fake"}`), or what `answer` returns.
 */
export async function startFakePlatform(answer?: (request: PlatformRequest) => { status?: number; body?: unknown } | undefined): Promise<FakePlatform> {
  const requests: PlatformRequest[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const request = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body };
      requests.push(request);
      const custom = answer?.(request);
      res.writeHead(custom?.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(custom?.body ?? { ok: true, result: {}, id: 'fake', success: true }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The keys a channel's schema requires: those to leave out, one at a time, to check the error names them. */
export function requiredKeys(channelClass: InputChannelClass): string[] {
  const schema = (channelClass as { credentials?: CredentialsSchema }).credentials;
  return describeCredentials(schema)
    .filter((key) => key.required || key.verification)
    .map((key) => key.key);
}

export { isValidChannelName };
