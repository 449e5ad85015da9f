// Slow and broken bots (issue 14, item 4): one --bot-timeout for every bot kind, an AbortSignal for the bot, the
// apology for every kind, the sender's queue moving on, rest answering 5xx, and the typing indicator capped.
import test from 'ava';
import type { IncomingHttpHeaders } from 'node:http';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import { HttpClient, SwitchboardServer, createLogger, type Bot, type BotContext, type BotMessage, type UserMessage } from 'switchboard';
import { RemoteBot } from '#src/bots/index.js';
import { parseCli, start } from '#src/cli.js';
import { DEFAULT_APOLOGY, Pipeline } from '#src/pipeline.js';
import { UserMessage as Message } from '#src/message.js';
import { CollectingOutputChannel } from '#src/output.js';
import RestInput from '../channels/rest/index.js';
import { makeProject, type Project } from './fixtures.js';
import { LogCapture, ScriptedBot, listenStub } from './harness.js';

const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const BOT = `/bot${TOKEN}`;
const SECRET = createHmac('sha256', TOKEN).update('switchboard-telegram-secret-token').digest('hex');
const chat = { id: 1111111, first_name: 'Alice', type: 'private' };
const from = { id: 1111111, is_bot: false, first_name: 'Alice' };
const update = (updateId: number, text: string) => ({ update_id: updateId, message: { message_id: updateId, from, chat, date: 1441645532, text } });

async function until(condition: () => boolean, capMs = 5_000): Promise<void> {
  const end = Date.now() + capMs;
  while (!condition() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
}

let project: Project;
test.before(() => {
  project = makeProject();
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});
test.after.always(() => {
  project?.remove();
  nock.enableNetConnect();
});
test.afterEach.always(() => nock.cleanAll());

test.serial('a hung module bot: timed out, its signal aborted, the apology sent on Telegram, and the sender\'s next message answered', async (t) => {
  // A module bot that never answers "hang" and ignores its signal (the worst case): it only records what it was given.
  project.write('hung-bot.js', `export default async function (message, context) {
  if (message.text === 'hang') { globalThis.hungBotContext = context; return new Promise(() => {}); }
  return [{ text: 'you said: ' + message.text }];
}
`);
  const credentials = project.write('credentials.yml', `telegram:\n  access_token: "${TOKEN}"\n  verify: moodbot\n  webhook_url: https://bot.example.com/webhooks/telegram/webhook\n`);
  nock('https://api.telegram.org').post(`${BOT}/setWebhook`).reply(200, { ok: true, result: true });
  const parsed = parseCli(['--credentials', credentials, '--bot', './hung-bot.js', '--bot-timeout', '300', '--bot-apology', 'Sorry, that took too long.', '--port', '0', '--host', '127.0.0.1']);
  if (parsed.kind !== 'run') return t.fail();
  const logs = new LogCapture();
  const started = await start(parsed.options, { cwd: project.dir, logger: createLogger({ level: 'debug', destination: logs }) });
  t.teardown(() => started.server.close(100));

  const sent: unknown[] = [];
  const telegram = nock('https://api.telegram.org')
    .post(`${BOT}/sendMessage`, (body: unknown) => (sent.push(body), true))
    .times(2)
    .reply(200, { ok: true, result: {} });
  const post = (body: unknown) =>
    fetch(`${started.url}/webhooks/telegram/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET, 'x-request-id': `req-${(body as { update_id: number }).update_id}` },
      body: JSON.stringify(body),
    });

  t.is((await post(update(1, 'hang'))).status, 200);
  t.is((await post(update(2, 'hello'))).status, 200);
  await until(() => telegram.isDone());
  t.true(telegram.isDone(), `pending: ${telegram.pendingMocks().join(', ')}`);
  // In order: the apology for the hung message, then the answer to the next one.
  t.deepEqual(sent, [
    { chat_id: '1111111', text: 'Sorry, that took too long.' },
    { chat_id: '1111111', text: 'you said: hello' },
  ]);
  const context = (globalThis as { hungBotContext?: BotContext }).hungBotContext!;
  t.true(context.signal.aborted);
  t.is((context.signal.reason as DOMException).name, 'TimeoutError');
  t.is(context.requestId, 'req-1');
  t.regex(context.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const lines = logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.like(lines.find((line) => line.msg === 'the bot did not answer in time'), { level: 50, channel: 'telegram', sender: '1111111', reqId: 'req-1', timeoutMs: 300 });
  t.is(started.server.pipeline.botFailures.timeout, 1);
});

test.serial('the default apology is sent for a module bot that throws (CLI default), and the failure is counted', async (t) => {
  project.write('throwing-bot.js', 'export default async function () { throw new Error("bug in the bot"); }\n');
  const parsed = parseCli(['--channel', 'callback', '--bot', './throwing-bot.js', '--port', '0', '--host', '127.0.0.1']);
  if (parsed.kind !== 'run') return t.fail();
  // The callback channel needs its url: given through a credentials file.
  const credentials = project.write('callback.yml', 'callback:\n  url: https://hooks.example.com/answers\n');
  const started = await start({ ...parsed.options, channels: [], credentials }, { cwd: project.dir, logger: createLogger({ level: 'silent' }) });
  t.teardown(() => started.server.close(100));
  const failures: unknown[] = [];
  started.server.pipeline.onBotFailure = (failure) => failures.push(failure);
  const answered = nock('https://hooks.example.com').post('/answers', [{ recipient_id: 'carol', text: DEFAULT_APOLOGY[0]!.text }]).reply(200);
  const response = await fetch(`${started.url}/webhooks/callback/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sender: 'carol', message: 'hi' }),
  });
  t.is(response.status, 200);
  await until(() => answered.isDone());
  t.true(answered.isDone());
  t.like(failures[0], { reason: 'error', channel: 'callback' });
});

// ---------------------------------------------------------------------------------------------------------------------
// rest: a failed bot is a 5xx, not 200 []

function restPost(url: string, sender: string, message: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/webhooks/rest/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ sender, message }),
  }).then(async (response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as unknown }));
}

test.serial('rest: a bot past the timeout gets 504, one that throws 502, and the sender\'s next message is answered', async (t) => {
  const signals: AbortSignal[] = [];
  const bot = new ScriptedBot((message: UserMessage) => {
    if (message.text === 'boom') throw new Error('bot bug');
    return [{ text: `ok: ${message.text}` }];
  });
  // A bot that hangs on "hang" until its signal aborts (a well-behaved bot), otherwise the scripted answers.
  const hanging: Bot = {
    handle(message, context) {
      if (message.text !== 'hang') return bot.handle(message);
      signals.push(context!.signal);
      return new Promise<BotMessage[]>((_, reject) => context!.signal.addEventListener('abort', () => reject(context!.signal.reason)));
    },
  };
  const capture = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: capture });
  const server = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot: hanging, logger, botTimeoutMs: 200, botApology: [{ text: 'sorry' }] });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const host = `http://127.0.0.1:${port}`;

  const [hung, next] = await Promise.all([restPost(host, 'dave', 'hang'), restPost(host, 'dave', 'after')]);
  t.deepEqual({ status: hung.status, body: hung.body }, { status: 504, body: { error: 'the bot did not answer in time' } });
  t.deepEqual(next.body, [{ recipient_id: 'dave', text: 'ok: after' }], 'queued behind the hung message, answered once it timed out');
  t.true(signals[0]?.aborted);
  const failed = await restPost(host, 'dave', 'boom');
  t.deepEqual({ status: failed.status, body: failed.body }, { status: 502, body: { error: 'the bot failed to answer' } });
  t.deepEqual((await restPost(host, 'dave', 'still there?')).body, [{ recipient_id: 'dave', text: 'ok: still there?' }]);
  t.deepEqual(server.pipeline.botFailures, { timeout: 1, error: 1 });
  t.false(capture.text.includes('"status":500'));
});

test.serial('rest ?stream=true: a bot past the timeout streams the apology and ends the stream', async (t) => {
  const bot: Bot = { handle: (_m, context) => new Promise((_, reject) => context!.signal.addEventListener('abort', () => reject(new Error('stopped')))) };
  const server = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot, botTimeoutMs: 100, botApology: [{ text: 'sorry' }] });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const response = await fetch(`http://127.0.0.1:${port}/webhooks/rest/webhook?stream=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sender: 'erin', message: 'hi' }),
  });
  t.is(await response.text(), '{"recipient_id":"erin","text":"sorry"}\n');
  t.deepEqual(server.pipeline.botFailures, { timeout: 1, error: 0 });
});

// ---------------------------------------------------------------------------------------------------------------------
// The remote bot: the host's timeout aborts its call; the call carries the trace

interface SlowBotServer {
  url: string;
  headers: IncomingHttpHeaders[];
  closedEarly: number;
}

async function slowBotServer(t: import('ava').ExecutionContext, delayFor: (text: string) => number | 'never'): Promise<SlowBotServer> {
  const state: SlowBotServer = { url: '', headers: [], closedEarly: 0 };
  const base = await listenStub(t, (req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      state.headers.push(req.headers);
      const { message } = JSON.parse(raw) as { message: string };
      res.on('close', () => {
        if (!res.writableFinished) state.closedEarly++;
      });
      const delay = delayFor(message);
      if (delay === 'never') return;
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ text: `bot: ${message}` }]));
      }, delay);
    });
  });
  state.url = `${base}/webhooks/rest/webhook`;
  return state;
}

test.serial('remote bot: the host\'s --bot-timeout aborts the call (504), and the call carries the request\'s traceparent', async (t) => {
  const botServer = await slowBotServer(t, (text) => (text === 'slow' ? 'never' : 0));
  const capture = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: capture });
  const http = new HttpClient({ logger, minDelayMs: 5, maxDelayMs: 20 });
  // Its own per-attempt timeout is long: the host's deadline is what ends the call.
  const bot = new RemoteBot({ url: botServer.url, logger, http, timeoutMs: 60_000 });
  const server = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot, logger, http, botTimeoutMs: 250 });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const host = `http://127.0.0.1:${port}`;

  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const slow = await restPost(host, 'frank', 'slow', { traceparent: incoming });
  t.is(slow.status, 504);
  await until(() => botServer.closedEarly === 1);
  t.is(botServer.closedEarly, 1, 'the bot server\'s request was aborted, not left open');
  t.is(botServer.headers.length, 1, 'an aborted call is not retried');

  const fast = await restPost(host, 'frank', 'hi');
  t.deepEqual(fast.body, [{ recipient_id: 'frank', text: 'bot: hi' }]);
  // The incoming trace is joined: same trace id, our own span id, its flags.
  const [first, second] = botServer.headers.map((headers) => String(headers.traceparent));
  t.regex(first!, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
  t.not(first!.split('-')[2], '00f067aa0ba902b7');
  // Without one (or with an invalid one), a new trace starts.
  t.regex(second!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.false(second!.includes('4bf92f3577b34da6a3ce929d0e0e4736'));
  const lines = capture.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.like(lines.find((line) => line.msg === 'bot server failed to answer'), { sender: 'frank', reason: `POST ${botServer.url} aborted` });
  t.like(lines.find((line) => line.msg === 'the bot did not answer in time'), { sender: 'frank', channel: 'rest', timeoutMs: 250 });
});

// ---------------------------------------------------------------------------------------------------------------------
// The typing indicator stops after a cap

class TypingOutput extends CollectingOutputChannel {
  typing = 0;
  override async sendTyping(): Promise<void> {
    this.typing++;
  }
}

test('the typing indicator is repeated at most typingMaxMs / typingIntervalMs times, however long the bot works', async (t) => {
  const capture = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: capture });
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const pipeline = new Pipeline({
    bot: { handle: async () => (await released, [{ text: 'finally' }]) },
    logger,
    typingDelayMs: 5,
    typingIntervalMs: 10,
    typingMaxMs: 45,
    botTimeoutMs: 60_000,
  });
  const output = new TypingOutput();
  const accepted = await pipeline.enqueue(new Message({ text: 'think hard', senderId: 'gina', output }));
  await until(() => capture.text.includes('typing indicator stopped'));
  t.true(capture.text.includes('typing indicator stopped'));
  // 1 after the delay, then every 10 ms while under 45 ms: 5 in all, then no more however long the bot takes.
  t.is(output.typing, 5);
  release();
  t.is(await accepted.done, 'handled');
  t.is(output.typing, 5);
  t.deepEqual(output.messages.map((m) => m.text), ['finally']);
});

test('a bot timeout of less than 1 ms is refused; --bot-timeout checks its value', (t) => {
  t.throws(() => new Pipeline({ bot: { handle: () => [] }, botTimeoutMs: 0 }), { instanceOf: RangeError });
  t.throws(() => parseCli(['--bot-timeout', '0']), { message: /--bot-timeout must be milliseconds/ });
  t.throws(() => parseCli(['--bot-timeout', '2s']), { message: /--bot-timeout must be milliseconds/ });
  const parsed = parseCli(['--bot-timeout', '1500']);
  t.is(parsed.kind === 'run' ? parsed.options.botTimeoutMs : undefined, 1500);
});

test('a streaming bot that stalls between answers is timed out after what it already sent; the apology follows', async (t) => {
  const pipeline = new Pipeline({
    bot: {
      async *handle(_message: UserMessage, context?: BotContext) {
        yield { text: 'first' };
        await new Promise((resolve) => context!.signal.addEventListener('abort', resolve));
        yield { text: 'never sent' };
      },
    },
    botTimeoutMs: 100,
    apology: [{ text: 'sorry' }],
  });
  const output = new CollectingOutputChannel();
  const accepted = await pipeline.enqueue(new Message({ text: 'hi', senderId: 'hank', output }));
  t.is(await accepted.done, 'failed');
  t.deepEqual(output.messages.map((m) => m.text), ['first', 'sorry']);
});
