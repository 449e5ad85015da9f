/**
 * The shared harness for channel tests: a channel's tests are a table of labelled cases (request in → expected
 * status and body → what the bot receives → expected outgoing calls), run against a real server on an ephemeral
 * port, with the platform's API intercepted by nock.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import { WebSocket } from 'ws';
import { UserMessage, createLogger, type BotMessage, type InputChannel, type InputChannelClass, type Logger, type PipelineLimits, type SwitchboardServer, type HttpClientOptions } from 'switchboard';
import { LogCapture, ScriptedBot as KitBot, startTestHost } from 'switchboard/testing';

/** The testing kit's scripted bot, answering nothing unless told, with the harness's `waitFor(count)`. */
export class ScriptedBot extends KitBot {
  constructor(answers: KitBot['answers'] = []) {
    super(answers);
  }

  /** Resolves once the bot has received `count` messages (or rejects after `timeoutMs`). */
  async waitFor(count: number, timeoutMs = 3_000): Promise<void> {
    await this.waitForMessages(count, timeoutMs);
  }
}

export { LogCapture };

/** A logger at `level` whose JSON lines are kept: as text, or parsed. */
export function captureLogs(level = 'debug'): { logger: Logger; text: () => string; lines: () => Array<Record<string, unknown>> } {
  const capture = new LogCapture();
  return {
    logger: createLogger({ level, destination: capture }),
    text: () => capture.text,
    lines: () => capture.lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

export interface TestServer {
  server: SwitchboardServer;
  url: string;
  bot: ScriptedBot;
  logs: LogCapture;
  /** `fetch` against the server: path relative to the root. */
  request(path: string, init?: RequestInit): Promise<{ status: number; headers: Headers; text: string; json: unknown }>;
}

export interface StartOptions {
  bot?: ScriptedBot;
  cors?: string[];
  bodyLimit?: string | number;
  trustProxy?: boolean;
  limits?: PipelineLimits;
  /** The outgoing client's settings over the test defaults (a short `timeoutMs`). */
  http?: Omit<HttpClientOptions, 'logger'>;
  /** As `--bot-timeout` and `--bot-apology` (default: the host's 30 s, and no apology). */
  botTimeoutMs?: number;
  botApology?: BotMessage[];
}

/** Starts a host with these channels on port 0 (the testing kit's `startTestHost`); closed in the test's teardown. */
export async function startServer(t: ExecutionContext, channels: InputChannel[], options: StartOptions = {}): Promise<TestServer> {
  const bot = options.bot ?? new ScriptedBot();
  const host = await startTestHost(channels, { bot, cors: options.cors, bodyLimit: options.bodyLimit, trustProxy: options.trustProxy, limits: options.limits, http: options.http, botTimeoutMs: options.botTimeoutMs, botApology: options.botApology });
  t.teardown(() => host.close());
  return { server: host.server, url: host.url, bot, logs: host.logs, request: host.request };
}

/** One outgoing call the channel must make, and what the platform answers. */
export interface OutgoingCall {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Origin and path, without query: `https://graph.facebook.com/v21.0/me/messages`. */
  url: string;
  /** Exact query parameters expected, if any. */
  query?: Record<string, string>;
  /** Headers that must be present with these values (lower-case names). */
  headers?: Record<string, string | RegExp>;
  /** The exact body: an object for JSON, a string for anything else. */
  body?: unknown;
  /** Body as form fields (parsed from application/x-www-form-urlencoded). */
  form?: Record<string, string | string[]>;
  reply?: { status?: number; body?: unknown; headers?: Record<string, string> };
}

export interface ChannelCase {
  label: string;
  method?: 'GET' | 'POST' | 'PUT';
  /** Relative to the channel's prefix; default `/webhook`. */
  path?: string;
  headers?: Record<string, string>;
  /** A string is sent as is; an object as JSON. */
  body?: string | object;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  /** Signs the request: gets the raw body, returns headers to add. */
  sign?: (raw: string) => Record<string, string>;
  status: number;
  /** Exact JSON body, or exact text, or a check. */
  response?: ((t: ExecutionContext, response: { text: string; json: unknown; headers: Headers }) => void) | string | number | boolean | object | null;
  /** What the bot answers. */
  answers?: BotMessage[];
  /** What the bot must receive (checked with t.like per message); [] asserts it received nothing. */
  received?: Array<{ text?: string; senderId?: string; messageId?: string; inputChannel?: string; metadata?: Record<string, unknown> }>;
  outgoing?: OutgoingCall[];
  /** Sends the same request this many times (deduplication). */
  repeat?: number;
  /**
   * The durable path: each message the bot received goes through `JSON.parse(JSON.stringify())`, a new instance of
   * the channel built from the same credentials (as another server, or this one after a restart, would be) rebuilds
   * the output from the round-tripped reply address alone (`outputChannel(replyTo)`), and the case's answers are sent
   * again: the answer calls must be exactly the ones the live run made. `true`: every outgoing call is an answer; a
   * number: the index of the first one (earlier calls fetch or log in: the new instance may make them again).
   */
  roundTrip?: true | number;
}

export interface ChannelSuite {
  /** The channel class and its credentials section. */
  channel: InputChannelClass;
  credentials: Record<string, unknown>;
  cases: ChannelCase[];
}

interface Captured {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

function interceptCall(call: OutgoingCall, captured: Captured[], optional = false): nock.Scope {
  const target = new URL(call.url);
  const scope = nock(target.origin);
  const method = (call.method ?? 'POST').toLowerCase() as 'post';
  const interceptor = scope[method](target.pathname + target.search === target.pathname ? target.pathname : target.pathname);
  const queried = call.query ? interceptor.query(call.query) : interceptor.query(true);
  const withQuery = optional ? queried.optionally() : queried;
  return withQuery.reply(function reply(uri, body) {
    captured.push({ method: call.method ?? 'POST', path: uri, headers: this.req.headers, body });
    const answer = call.reply ?? {};
    const replyBody = answer.body === undefined ? { ok: true } : answer.body;
    return [answer.status ?? 200, typeof replyBody === 'string' ? replyBody : JSON.stringify(replyBody), { 'content-type': typeof replyBody === 'string' ? 'text/plain' : 'application/json', ...(answer.headers ?? {}) }];
  });
}

function parseCapturedBody(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/**
 * A copy without the object keys whose value is `undefined`: JSON leaves them out, and reading them gives `undefined`
 * either way, so they are no loss in a round trip (a `Date` or a class instance is).
 */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, withoutUndefined(v)]));
}

/** What makes two outgoing calls the same call. */
function callShape(call: Captured): Record<string, unknown> {
  return {
    method: call.method,
    path: call.path,
    body: parseCapturedBody(call.body),
    contentType: call.headers['content-type'],
    authorization: call.headers.authorization,
  };
}

/** See `ChannelCase.roundTrip`. */
async function replayFromData(t: ExecutionContext, channel: InputChannel, bot: ScriptedBot, testCase: ChannelCase, live: Captured[]): Promise<void> {
  const first = testCase.roundTrip === true ? 0 : testCase.roundTrip!;
  const answerCalls = (testCase.outgoing ?? []).slice(first);
  t.true(answerCalls.length > 0, 'a round-trip case has answer calls to compare');
  t.true(bot.received.length > 0, 'a round-trip case has messages to replay');
  t.is(typeof channel.outputChannel, 'function', 'the channel rebuilds outputs from addresses');
  const replayed: Captured[] = [];
  const preparing: Captured[] = [];
  for (const call of (testCase.outgoing ?? []).slice(0, first)) interceptCall(call, preparing, true);
  const scopes = answerCalls.map((call) => interceptCall(call, replayed));
  for (const received of bot.received) {
    t.not(received.replyTo, undefined, 'the message carries a reply address');
    const data: unknown = JSON.parse(JSON.stringify(received));
    t.false(JSON.stringify(data).includes('"output"'), 'no live output in the data');
    const copy = UserMessage.fromJSON(data);
    t.deepEqual(copy.toJSON(), withoutUndefined(received.toJSON()), 'the message survives the JSON round trip');
    const output = channel.outputChannel!(copy.replyTo!);
    for (const answer of testCase.answers ?? [{ text: 'ok' }]) await output.sendResponse(copy.senderId, structuredClone(answer));
    await output.flush?.(copy.senderId);
  }
  t.deepEqual(scopes.flatMap((scope) => scope.pendingMocks()), [], 'every answer call was made again');
  t.deepEqual(replayed.map(callShape), live.slice(first).map(callShape), 'the round-tripped messages make exactly the calls of the live run');
}

/** Runs one channel's table of cases, one ava test per case. */
export function runChannelCases(test: TestFn, suite: ChannelSuite): void {
  test.before(() => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
  });
  test.afterEach.always(() => nock.cleanAll());

  for (const testCase of suite.cases) {
    test.serial(testCase.label, async (t) => {
      const channel = await suite.channel.fromCredentials(suite.credentials);
      const bot = new ScriptedBot(testCase.answers ?? [{ text: 'ok' }]);
      const { request } = await startServer(t, [channel], { bot });
      const captured: Captured[] = [];
      const scopes = (testCase.outgoing ?? []).map((call) => interceptCall(call, captured));

      const { path, init } = webhookRequest(channel.name(), testCase);
      let response;
      for (let i = 0; i < (testCase.repeat ?? 1); i++) {
        response = await request(path, init);
      }
      const last = response!;
      t.is(last.status, testCase.status, `status of ${testCase.method ?? 'POST'} ${path}: ${last.text}`);
      t.false(/\bat .+\(.+:\d+:\d+\)/.test(last.text), 'no stack trace in the response');
      if (typeof testCase.response === 'function') {
        (testCase.response as (t: ExecutionContext, r: typeof last) => void)(t, last);
      } else if (typeof testCase.response === 'string') {
        t.is(last.text, testCase.response);
      } else if (testCase.response !== undefined) {
        t.deepEqual(last.json, testCase.response);
      }

      const expectedOutgoing = testCase.outgoing ?? [];
      if (expectedOutgoing.length > 0) {
        const done = await waitUntil(() => captured.length >= expectedOutgoing.length);
        t.true(done, `expected ${expectedOutgoing.length} outgoing calls, saw ${captured.length}: pending ${scopes.flatMap((s) => s.pendingMocks()).join(', ')}`);
      }
      if (testCase.received) await assertReceived(t, bot, testCase.received);
      expectedOutgoing.forEach((call, index) => {
        const actual = captured[index];
        if (!actual) return;
        t.is(actual.path.split('?')[0], new URL(call.url).pathname, `outgoing call ${index + 1} path`);
        for (const [name, value] of Object.entries(call.headers ?? {})) {
          const header = String(actual.headers[name] ?? '');
          if (value instanceof RegExp) t.regex(header, value, `outgoing call ${index + 1} header ${name}`);
          else t.is(header, value, `outgoing call ${index + 1} header ${name}`);
        }
        if (call.body !== undefined) t.deepEqual(parseCapturedBody(actual.body), call.body, `outgoing call ${index + 1} body`);
        if (call.form !== undefined) {
          const fields: Record<string, string | string[]> = {};
          for (const [key, value] of new URLSearchParams(String(actual.body))) {
            const existing = fields[key];
            fields[key] = existing === undefined ? value : ([] as string[]).concat(existing, value);
          }
          t.deepEqual(fields, call.form, `outgoing call ${index + 1} form`);
        }
      });
      // No call beyond the expected ones: nock would have refused it and the channel logged an error.
      t.is(captured.length, expectedOutgoing.length, 'number of outgoing calls');
      if (testCase.roundTrip !== undefined) await replayFromData(t, await suite.channel.fromCredentials(suite.credentials), bot, testCase, captured);
    });
  }
}

/**
 * A plain HTTP server on 127.0.0.1 and an ephemeral port (a bot server, a platform stub that answers late or never),
 * closed with its open connections in the test's teardown. Returns its base URL.
 */
export async function listenStub(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A case's request: its body encoded as the platform sends it (form, text or JSON), signed, on the channel's path. */
function webhookRequest(channel: string, step: Pick<ChannelCase, 'headers' | 'form' | 'body' | 'sign' | 'path' | 'method'>): { path: string; init: { method: string; headers: Record<string, string>; body: string | undefined } } {
  const headers: Record<string, string> = { ...(step.headers ?? {}) };
  let raw: string | undefined;
  if (step.form) {
    raw = new URLSearchParams(step.form).toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  } else if (typeof step.body === 'string') {
    raw = step.body;
  } else if (step.body !== undefined) {
    raw = JSON.stringify(step.body);
    headers['content-type'] ??= 'application/json';
  }
  if (step.sign) Object.assign(headers, step.sign(raw ?? ''));
  return { path: `/webhooks/${channel}${step.path ?? '/webhook'}`, init: { method: step.method ?? (raw === undefined ? 'GET' : 'POST'), headers, body: raw } };
}

/**
 * The messages the bot received after the first `before` are `expected` (their number, then `t.like` each); [] asserts
 * none arrived within 50 ms. `label` prefixes the messages (a call's step).
 */
async function assertReceived(t: ExecutionContext, bot: ScriptedBot, expected: NonNullable<ChannelCase['received']>, before = 0, label?: string): Promise<void> {
  if (expected.length > 0) await bot.waitFor(before + expected.length).catch(() => undefined);
  else await new Promise((resolve) => setTimeout(resolve, 50));
  const got = bot.received.slice(before);
  t.is(got.length, expected.length, label === undefined ? 'number of messages the bot received' : `${label}: number of messages the bot received`);
  expected.forEach((wanted, index) => {
    const actual = got[index];
    if (actual) t.like({ text: actual.text, senderId: actual.senderId, messageId: actual.messageId, inputChannel: actual.inputChannel, metadata: actual.metadata }, wanted, label);
  });
}

/**
 * One step of a call: a request the platform sends in the middle of a conversation, what the bot answers to the
 * messages it makes, the exact response, and the messages the bot received from this step alone.
 */
export interface CallStep extends Pick<ChannelCase, 'label' | 'method' | 'path' | 'headers' | 'body' | 'form' | 'sign' | 'status' | 'response' | 'received'> {
  /** What the bot answers to each message of this step: a list, or one per message. */
  answers?: BotMessage[] | ((message: UserMessage) => BotMessage[] | Promise<BotMessage[]>);
}

export interface CallCase {
  label: string;
  steps: CallStep[];
  /** This call's credentials section, over the suite's. */
  credentials?: Record<string, unknown>;
  /** The host's `--bot-timeout` and `--bot-apology` for this call. */
  botTimeoutMs?: number;
  botApology?: BotMessage[];
  /** Before the server starts (open what the platform opened before the steps begin). */
  prepare?: (channel: InputChannel) => void;
}

export interface CallSuite {
  channel: InputChannelClass;
  credentials: Record<string, unknown>;
  calls: CallCase[];
}

/**
 * Runs whole conversations (a phone call: start, turns, end) against one server per call, step by step in order: the
 * state a platform builds up between requests (an open conversation) carries from one step to the next.
 */
export function runCallCases(test: TestFn, suite: CallSuite): void {
  for (const call of suite.calls) {
    test.serial(call.label, async (t) => {
      const channel = await suite.channel.fromCredentials({ ...suite.credentials, ...call.credentials });
      call.prepare?.(channel);
      const bot = new ScriptedBot([]);
      const { request } = await startServer(t, [channel], { bot, botTimeoutMs: call.botTimeoutMs, botApology: call.botApology });
      for (const step of call.steps) {
        bot.answers = step.answers ?? [];
        const before = bot.received.length;
        const { path, init } = webhookRequest(channel.name(), step);
        const response = await request(path, init);
        t.is(response.status, step.status, `${step.label}: status of ${path}: ${response.text}`);
        t.false(/\bat .+\(.+:\d+:\d+\)/.test(response.text), `${step.label}: no stack trace in the response`);
        if (typeof step.response === 'function') (step.response as (t: ExecutionContext, r: typeof response) => void)(t, response);
        else if (typeof step.response === 'string') t.is(response.text, step.response, step.label);
        else if (step.response !== undefined) t.deepEqual(response.json, step.response, step.label);
        if (step.received) await assertReceived(t, bot, step.received, before, step.label);
      }
    });
  }
}

/** One frame the platform sends over the channel's WebSocket, and the frames the channel must send back. */
export interface SocketStep {
  /** Sent as JSON (a string as it is). */
  send: string | object;
  /** The frames the channel answers with, exactly (parsed JSON), in order; [] asserts none comes within 100 ms. */
  expect?: unknown[];
  /** The answer must be complete within this many ms of the send (the platform's deadline). Default 3000. */
  within?: number;
}

/**
 * A WebSocket case (a platform that connects to the channel, such as jambonz): the upgrade request, then a table of
 * frames in → frames out over that one connection, then what the bot received.
 */
export interface SocketCase {
  label: string;
  /** Credentials over the suite's. */
  credentials?: Record<string, unknown>;
  /** Relative to the channel's prefix; default `/websocket`. */
  path?: string;
  /** Upgrade request headers; default the suite's. */
  headers?: Record<string, string>;
  /** Subprotocols offered; default the suite's. */
  protocols?: string[];
  /** The status the upgrade is refused with; unset: it must succeed (101). */
  refused?: number;
  steps?: SocketStep[];
  /** What the bot answers (a function gets each message). */
  answers?: ScriptedBot['answers'];
  /** The host's `--bot-apology` and `--bot-timeout`. */
  apology?: BotMessage[];
  botTimeoutMs?: number;
  /** What the bot must receive (checked with t.like per message); [] asserts it received nothing. */
  received?: ChannelCase['received'];
}

export interface SocketSuite {
  channel: InputChannelClass;
  credentials: Record<string, unknown>;
  headers?: Record<string, string>;
  protocols?: string[];
  cases: SocketCase[];
}

/** Runs one WebSocket channel's table of cases, one ava test per case, against a real host on port 0. */
export function runSocketCases(test: TestFn, suite: SocketSuite): void {
  for (const testCase of suite.cases) {
    test.serial(testCase.label, async (t) => {
      const channel = await suite.channel.fromCredentials({ ...suite.credentials, ...(testCase.credentials ?? {}) });
      const bot = new ScriptedBot(testCase.answers ?? [{ text: 'ok' }]);
      const host = await startTestHost(channel, { bot, botApology: testCase.apology, botTimeoutMs: testCase.botTimeoutMs });
      t.teardown(() => host.close());
      const url = `${host.url.replace(/^http/, 'ws')}/webhooks/${channel.name()}${testCase.path ?? '/websocket'}`;
      const ws = new WebSocket(url, testCase.protocols ?? suite.protocols ?? [], { headers: testCase.headers ?? suite.headers ?? {} });
      t.teardown(() => ws.terminate());
      const frames: unknown[] = [];
      ws.on('message', (data) => frames.push(JSON.parse(String(data))));
      const opened = await new Promise<number>((resolve) => {
        ws.once('open', () => resolve(101));
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => resolve(0));
      });
      t.is(opened, testCase.refused ?? 101, 'the upgrade status');
      if (opened === 101) {
        for (const [index, step] of (testCase.steps ?? []).entries()) {
          const before = frames.length;
          const started = Date.now();
          ws.send(typeof step.send === 'string' ? step.send : JSON.stringify(step.send));
          const expected = step.expect ?? [];
          const within = step.within ?? 3_000;
          if (expected.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
          else {
            const done = await waitUntil(() => frames.length >= before + expected.length, within + 1_000);
            t.true(done, `step ${index + 1}: expected ${expected.length} frame(s), saw ${frames.length - before}`);
            t.true(Date.now() - started <= within, `step ${index + 1}: answered in ${Date.now() - started} ms, more than ${within}`);
          }
          t.deepEqual(frames.slice(before), expected, `step ${index + 1}: the frames sent back`);
        }
      }
      if (testCase.received) await assertReceived(t, bot, testCase.received);
    });
  }
}
