import test from 'ava';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import {
  ConfigError,
  HttpClient,
  SwitchboardServer,
  UserMessage,
  createLogger,
  type Bot,
  type BotMessage,
  type UserMessageInit,
} from 'switchboard';
import { BotServerError, RemoteBot, RulesBot, defaultBotPath, loadBot } from '#src/bots/index.js';
import { DEFAULT_APOLOGY } from '#src/pipeline.js';
import RestInput from '../channels/rest/index.js';
import { makeProject, type Project } from './fixtures.js';
import { LogCapture, listenStub } from './harness.js';

const GREETING: BotMessage[] = [
  { text: 'Hey! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] },
];

const ask = async (bot: Bot, text: string, init: UserMessageInit = {}) =>
  bot.handle(new UserMessage({ text, senderId: 'alice', inputChannel: 'rest', ...init }));

// ---------------------------------------------------------------------------------------------------------------------
// Module bots

let project: Project;
test.before(() => {
  project = makeProject();
  project.write('fn-bot.js', 'export default async function (message) { return [{ text: `fn: ${message.text}` }]; }\n');
  project.write('object-bot.js', 'export default { prefix: "object: ", async handle(message) { return [{ text: this.prefix + message.text }]; } };\n');
  project.write(
    'class-bot.js',
    'export default class EchoBot {\n  constructor() { this.prefix = "class: "; }\n  async handle(message) { return [{ text: this.prefix + message.text }]; }\n}\n',
  );
  project.write('field-bot.js', 'export default class FieldBot {\n  handle = async (message) => [{ text: `field: ${message.text}` }];\n}\n');
  project.write('my-bot.js', 'export const myBot = { handle: (message) => [{ text: `named: ${message.text}` }] };\nexport const version = 2;\n');
  project.write('config-and-bot.js', 'export default { name: "config, not a bot" };\nexport const bot = async (message) => [{ text: `bot export: ${message.text}` }];\n');
  project.write('common.cjs', 'module.exports = { handle: async (message) => [{ text: `cjs: ${message.text}` }] };\n');
  project.write('nothing.js', 'export const config = { a: 1 };\nexport const answer = 42;\n');
  project.write('no-handle.js', 'export default class NotABot { reply() { return []; } }\n');
  project.write('needs-args.js', 'export default class Picky {\n  constructor(url) { if (!url) throw new Error("give me a url"); }\n  handle() { return []; }\n}\n');
  project.write('throws.js', 'throw new Error("boom at import");\n');
  project.write('x.yml', readFileSync(defaultBotPath(), 'utf8'));
});
test.after.always(() => project?.remove());

const moduleBots: Array<[spec: string, answer: string]> = [
  ['./fn-bot.js', 'fn: hi'],
  ['./object-bot.js', 'object: hi'],
  ['./class-bot.js', 'class: hi'],
  ['./field-bot.js', 'field: hi'],
  ['./my-bot.js.myBot', 'named: hi'],
  ['./my-bot.myBot', 'named: hi'],
  ['./config-and-bot.js', 'bot export: hi'],
  ['./common.cjs', 'cjs: hi'],
  ['fn-bot.js', 'fn: hi'],
  ['my-bot.js.myBot', 'named: hi'],
];

for (const [spec, answer] of moduleBots) {
  test(`module bot ${spec} answers`, async (t) => {
    const bot = await loadBot(spec, { cwd: project.dir });
    t.deepEqual(await ask(bot, 'hi'), [{ text: answer }]);
  });
}

test('a module bot receives the whole message', async (t) => {
  project.write('spy-bot.js', 'export default (m) => [{ text: JSON.stringify([m.text, m.senderId, m.inputChannel, m.metadata]) }];\n');
  const bot = await loadBot('./spy-bot.js', { cwd: project.dir });
  t.deepEqual(await ask(bot, ' hey ', { metadata: { page: 'home' } }), [{ text: '["hey","alice","rest",{"page":"home"}]' }]);
});

const broken: Array<[spec: string, message: RegExp]> = [
  ['./nothing.js', /^cannot load bot "\.\/nothing\.js": .*it has no default export and no export named "bot" \(it exports: answer, config\)/],
  ['./my-bot.js.nope', /export "nope" of module "\.\/my-bot\.js": found at .*my-bot\.js, but it has no export "nope" \(it exports: myBot, version\)/],
  ['./my-bot.js.version', /its export "version" is not a bot: it is number/],
  ['./no-handle.js', /its default export is not a bot: the class has no handle\(message\) method/],
  ['./needs-args.js', /its default export is not a bot: constructing the class without arguments failed: give me a url/],
  ['./throws.js', /found at .*throws\.js, but importing it failed: boom at import/],
  ['./missing.js', /module "\.\/missing\.js": not found \(no file .*missing\.js\[\.js\|\.mjs\|\.cjs\]\)/],
  ['missing.yml', /missing\.yml: cannot read the bot file: no such file/],
  ['http://', /bot server URL "http:\/\/" is not a valid URL/],
];

for (const [spec, message] of broken) {
  test(`--bot ${spec} is a ConfigError that says why`, async (t) => {
    await t.throwsAsync(loadBot(spec, { cwd: project.dir }), { instanceOf: ConfigError, message });
  });
}

test('loadBot: a rules file by path, and the built-in moodbot without a spec', async (t) => {
  const fromFile = await loadBot('x.yml', { cwd: project.dir });
  t.true(fromFile instanceof RulesBot);
  t.deepEqual(await ask(fromFile, 'hello'), GREETING);
  for (const spec of [undefined, '']) {
    const moodbot = await loadBot(spec);
    t.true(moodbot instanceof RulesBot);
    t.deepEqual(await ask(moodbot, 'hello'), GREETING);
    t.deepEqual(await ask(moodbot, '/mood_great'), [{ text: 'Great, carry on!' }]);
  }
});

test('loadBot: an http(s) URL is a remote bot', async (t) => {
  const bot = await loadBot('https://bot.test/webhooks/rest/webhook', { timeoutMs: 1_000 });
  t.true(bot instanceof RemoteBot);
  t.is((bot as RemoteBot).url, 'https://bot.test/webhooks/rest/webhook');
});

// ---------------------------------------------------------------------------------------------------------------------
// The remote bot (serial: nock is process-wide)

const BOT_URL = 'http://bot.test/webhooks/rest/webhook';

test.before(() => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});
test.afterEach.always(() => nock.cleanAll());
test.after.always(() => nock.enableNetConnect());

function remote(options: { timeoutMs?: number } = {}) {
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const bot = new RemoteBot({ url: BOT_URL, logger, http: new HttpClient({ logger, minDelayMs: 5, maxDelayMs: 20 }), ...options });
  const errors = () => logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.level === 50);
  return { bot, logs, errors };
}

test.serial('remote bot: posts {sender, message, metadata, input_channel} and relays the answers without recipient_id', async (t) => {
  const bodies: unknown[] = [];
  const scope = nock('http://bot.test')
    .post('/webhooks/rest/webhook', (body: unknown) => {
      bodies.push(body);
      return true;
    })
    .reply(200, [
      { recipient_id: 'alice', text: 'Hi there', buttons: [{ title: 'ok', payload: '/ok' }] },
      { recipient_id: 'alice', image: 'https://img.test/a.png' },
      { recipient_id: 'alice', custom: { x: 1 } },
      null,
      'not an answer',
      [{ text: 'nested' }],
    ]);
  const { bot, errors } = remote();
  const answers = await ask(bot, 'hello', { inputChannel: 'telegram', metadata: { chat_type: 'private' } });
  t.deepEqual(bodies, [{ sender: 'alice', message: 'hello', metadata: { chat_type: 'private' }, input_channel: 'telegram' }]);
  t.deepEqual(answers, [
    { text: 'Hi there', buttons: [{ title: 'ok', payload: '/ok' }] },
    { image: 'https://img.test/a.png' },
    { custom: { x: 1 } },
  ]);
  t.true(scope.isDone());
  t.deepEqual(errors(), []);
});

test.serial('remote bot: a 503 (not processed) is retried through the shared client', async (t) => {
  const scope = nock('http://bot.test')
    .post('/webhooks/rest/webhook')
    .reply(503, 'busy')
    .post('/webhooks/rest/webhook', { sender: 'alice', message: 'hello', metadata: {}, input_channel: 'rest' })
    .reply(200, [{ recipient_id: 'alice', text: 'second time lucky' }]);
  const { bot, errors } = remote();
  t.deepEqual(await ask(bot, 'hello'), [{ text: 'second time lucky' }]);
  t.true(scope.isDone(), `pending: ${scope.pendingMocks().join(', ')}`);
  t.deepEqual(errors(), []);
});

test.serial('remote bot: when the bot server is down handle throws and the error is logged', async (t) => {
  let attempts = 0;
  nock('http://bot.test')
    .post('/webhooks/rest/webhook')
    .times(10)
    .replyWithError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5005'), { code: 'ECONNREFUSED', syscall: 'connect' }))
    .on('request', () => attempts++);
  const { bot, errors } = remote();
  await t.throwsAsync(ask(bot, 'hello'), { instanceOf: BotServerError });
  t.is(attempts, 2, 'the first attempt and one retry (the default for a bot server)');
  const [error, ...more] = errors();
  t.deepEqual(more, []);
  t.like(error, { msg: 'bot server failed to answer', sender: 'alice', channel: 'rest', url: BOT_URL });
  t.regex(String(error?.reason), /ECONNREFUSED/);

  // And a real refused connection: a port nothing listens on.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const logs = new LogCapture();
  const logger = createLogger({ level: 'error', destination: logs });
  const closed = new RemoteBot({ url: `http://127.0.0.1:${port}/webhooks/rest/webhook`, logger, http: new HttpClient({ logger, minDelayMs: 5, maxDelayMs: 20 }) });
  await t.throwsAsync(ask(closed, 'hello'), { instanceOf: BotServerError });
  t.regex(logs.text, /"msg":"bot server failed to answer"/);
  t.regex(logs.text, /ECONNREFUSED/);
});

test.serial('remote bot: an answer that is not a JSON array, a 404 or a timeout is a failure (the host apologises)', async (t) => {
  nock('http://bot.test').post('/webhooks/rest/webhook').reply(200, { error: 'not a list' });
  const object = remote();
  await t.throwsAsync(ask(object.bot, 'hello'), { instanceOf: BotServerError });
  t.like(object.errors()[0], { msg: 'bot server did not answer a JSON array', url: BOT_URL, status: 200 });

  nock('http://bot.test').post('/webhooks/rest/webhook').reply(404, 'no such route');
  const notFound = remote();
  await t.throwsAsync(ask(notFound.bot, 'hello'), { instanceOf: BotServerError });
  t.regex(String(notFound.errors()[0]?.reason), /answered 404/);

  nock('http://bot.test').post('/webhooks/rest/webhook').times(4).delay(300).reply(200, [{ text: 'too late' }]);
  const slow = remote({ timeoutMs: 30 });
  await t.throwsAsync(ask(slow.bot, 'hello'), { instanceOf: BotServerError });
  t.regex(String(slow.errors()[0]?.reason), /timed out after 30 ms/);
});

test.serial('remote bot behind the host: POST /webhooks/rest/webhook returns its answers; when it is down, 502', async (t) => {
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const http = new HttpClient({ logger, minDelayMs: 5, maxDelayMs: 20 });
  const bot = new RemoteBot({ url: BOT_URL, logger, http });
  const server = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot, logger, http });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const say = async (message: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/webhooks/rest/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sender: 'bob', message, metadata: { page: 'pricing' } }),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };

  const scope = nock('http://bot.test')
    .post('/webhooks/rest/webhook', { sender: 'bob', message: 'hello', metadata: { page: 'pricing' }, input_channel: 'rest' })
    .reply(200, [{ recipient_id: 'bob', text: 'Hello from Rasa' }, { recipient_id: 'bob', image: 'https://img.test/b.png' }]);
  t.deepEqual(await say('hello'), {
    status: 200,
    body: [{ recipient_id: 'bob', text: 'Hello from Rasa' }, { recipient_id: 'bob', image: 'https://img.test/b.png' }],
  });
  t.true(scope.isDone());

  // A refused connection: retried once (the default for a bot server), so two attempts.
  const down = nock('http://bot.test').post('/webhooks/rest/webhook').times(2).replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', syscall: 'connect' }));
  // Not `200 []` nor a 200 apology: a REST client must be able to tell a broken bot from a bot that said nothing.
  t.deepEqual(await say('again'), { status: 502, body: { error: 'the bot failed to answer' } });
  t.regex(logs.text, /bot server failed to answer/);
  t.true(down.isDone());

  // The server keeps running.
  nock('http://bot.test').post('/webhooks/rest/webhook').reply(200, [{ recipient_id: 'bob', text: 'back' }]);
  t.deepEqual(await say('still there?'), { status: 200, body: [{ recipient_id: 'bob', text: 'back' }] });
});

// ---------------------------------------------------------------------------------------------------------------------
// A failing bot server is not sent every message four times, and a dead one is not called for every message
// (issue 14, item 5). A real bot server on 127.0.0.1 counts what it receives.

interface FakeBotServer {
  url: string;
  bodies: unknown[];
  answer: (n: number) => Promise<{ status: number; body: unknown }> | { status: number; body: unknown };
}

async function startBotServer(t: import('ava').ExecutionContext, answer: FakeBotServer['answer']): Promise<FakeBotServer> {
  const state: FakeBotServer = { url: '', bodies: [], answer };
  const base = await listenStub(t, (req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', async () => {
      state.bodies.push(JSON.parse(raw));
      const { status, body } = await state.answer(state.bodies.length);
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  state.url = `${base}/webhooks/rest/webhook`;
  return state;
}

function remoteAt(url: string, options: Partial<ConstructorParameters<typeof RemoteBot>[0]> = {}) {
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const bot = new RemoteBot({ url, logger, http: new HttpClient({ logger, minDelayMs: 5, maxDelayMs: 20 }), ...options });
  const lines = () => logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { bot, lines };
}

test.serial('remote bot: a bot server answering 500 gets each message once, and handle throws', async (t) => {
  const server = await startBotServer(t, () => ({ status: 500, body: { error: 'boom' } }));
  const { bot } = remoteAt(server.url);
  await t.throwsAsync(ask(bot, 'hello'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 1, 'a 500 may come after the bot processed the message: not sent again');
});

test.serial('remote bot: a bot server too slow to answer gets the message once (no retry after a read timeout)', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const server = await startBotServer(t, async () => {
    await held;
    return { status: 200, body: [{ text: 'late' }] };
  });
  t.teardown(() => release());
  const { bot, lines } = remoteAt(server.url, { timeoutMs: 150 });
  await t.throwsAsync(ask(bot, 'hello'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 1);
  t.regex(String(lines().find((line) => line.msg === 'bot server failed to answer')?.reason), /timed out after 150 ms/);
  release();
});

test.serial('remote bot: a 503 is retried once by default; `retries` sets it', async (t) => {
  const server = await startBotServer(t, () => ({ status: 503, body: {} }));
  await t.throwsAsync(ask(remoteAt(server.url).bot, 'hello'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 2, 'the first attempt and one retry');
  server.bodies.length = 0;
  await t.throwsAsync(ask(remoteAt(server.url, { retries: 0 }).bot, 'hello'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 1);
});

test.serial('remote bot: the circuit opens after N failures in a row, fails fast, then lets one trial through', async (t) => {
  let now = 1_000_000;
  let healthy = false;
  const server = await startBotServer(t, () => (healthy ? { status: 200, body: [{ recipient_id: 'alice', text: 'back' }] } : { status: 500, body: {} }));
  const { bot, lines } = remoteAt(server.url, { breaker: { failures: 3, cooldownMs: 10_000, now: () => now } });

  for (let i = 0; i < 3; i++) await t.throwsAsync(ask(bot, `m${i}`), { instanceOf: BotServerError });
  t.is(server.bodies.length, 3);
  t.is(bot.breaker?.state, 'open');
  // Open: the bot server is not called, the user still gets the apology, the skip is logged.
  await t.throwsAsync(ask(bot, 'while open'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 3, 'not called while open');
  t.like(lines().find((line) => line.msg === 'bot server circuit open: not called, the apology is sent'), { level: 40, sender: 'alice', failures: 3 });

  // After the cool-down, one trial; it fails, so the circuit opens again at once.
  now += 10_000;
  t.is(bot.breaker?.state, 'half-open');
  await t.throwsAsync(ask(bot, 'trial 1'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 4);
  await t.throwsAsync(ask(bot, 'still open'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 4);

  // The next trial succeeds: closed, every message goes through again.
  now += 10_000;
  healthy = true;
  t.deepEqual(await ask(bot, 'trial 2'), [{ text: 'back' }]);
  t.is(bot.breaker?.state, 'closed');
  t.deepEqual(await ask(bot, 'and again'), [{ text: 'back' }]);
  t.is(server.bodies.length, 6);
  t.deepEqual((server.bodies as Array<{ message: string }>).map((body) => body.message), ['m0', 'm1', 'm2', 'trial 1', 'trial 2', 'and again']);
});

test.serial('remote bot: a 4xx is an answer (the host is up): it does not open the circuit', async (t) => {
  const server = await startBotServer(t, () => ({ status: 404, body: {} }));
  const { bot } = remoteAt(server.url, { breaker: { failures: 2, cooldownMs: 60_000 } });
  for (let i = 0; i < 4; i++) await t.throwsAsync(ask(bot, 'hello'), { instanceOf: BotServerError });
  t.is(server.bodies.length, 4);
  t.is(bot.breaker?.state, 'closed');
});

test.serial('remote bot behind the host: with the circuit open, rest answers 502 at once, and the bot server is not called', async (t) => {
  const server = await startBotServer(t, () => ({ status: 502, body: {} }));
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const http = new HttpClient({ logger, minDelayMs: 5, maxDelayMs: 20 });
  const bot = new RemoteBot({ url: server.url, logger, http, breaker: { failures: 2, cooldownMs: 60_000 } });
  const host = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot, logger, http });
  const { port } = await host.listen(0, '127.0.0.1');
  t.teardown(() => host.close(100));
  const say = async (message: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/webhooks/rest/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sender: 'bob', message }),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  const apology = { status: 502, body: { error: 'the bot failed to answer' } };
  t.deepEqual(await say('one'), apology);
  t.deepEqual(await say('two'), apology);
  t.is(server.bodies.length, 2);
  t.deepEqual(await say('three'), apology);
  t.is(server.bodies.length, 2, 'the open circuit failed fast');
});
