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
import { DEFAULT_APOLOGY, RemoteBot, RulesBot, defaultBotPath, loadBot } from '#src/bots/index.js';
import RestInput from '../channels/rest/index.js';
import { makeProject, type Project } from './fixtures.js';
import { LogCapture } from './harness.js';

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

test('loadBot: an http(s) URL is a remote bot with the given apology', async (t) => {
  const bot = await loadBot('https://bot.test/webhooks/rest/webhook', { apology: [{ text: 'down' }] });
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

function remote(options: { apology?: BotMessage[]; timeoutMs?: number } = {}) {
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

test.serial('remote bot: a 500 is retried through the shared client', async (t) => {
  const scope = nock('http://bot.test')
    .post('/webhooks/rest/webhook')
    .reply(500, 'oops')
    .post('/webhooks/rest/webhook', { sender: 'alice', message: 'hello', metadata: {}, input_channel: 'rest' })
    .reply(200, [{ recipient_id: 'alice', text: 'second time lucky' }]);
  const { bot, errors } = remote();
  t.deepEqual(await ask(bot, 'hello'), [{ text: 'second time lucky' }]);
  t.true(scope.isDone(), `pending: ${scope.pendingMocks().join(', ')}`);
  t.deepEqual(errors(), []);
});

test.serial('remote bot: when the bot server is down the user gets the apology and the error is logged', async (t) => {
  let attempts = 0;
  nock('http://bot.test')
    .post('/webhooks/rest/webhook')
    .times(10)
    .replyWithError('connect ECONNREFUSED')
    .on('request', () => attempts++);
  const { bot, errors } = remote();
  t.deepEqual(await ask(bot, 'hello'), DEFAULT_APOLOGY);
  t.is(attempts, 4, 'the first attempt and 3 retries');
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
  t.deepEqual(await ask(closed, 'hello'), DEFAULT_APOLOGY);
  t.regex(logs.text, /"msg":"bot server failed to answer"/);
  t.regex(logs.text, /ECONNREFUSED/);
});

test.serial('remote bot: the apology is configurable, and an empty apology says nothing', async (t) => {
  nock('http://bot.test').post('/webhooks/rest/webhook').times(8).replyWithError('connect ECONNREFUSED');
  t.deepEqual(await ask(remote({ apology: [{ text: 'Back soon!' }] }).bot, 'hello'), [{ text: 'Back soon!' }]);
  t.deepEqual(await ask(remote({ apology: [] }).bot, 'hello'), []);
});

test.serial('remote bot: an answer that is not a JSON array, a 404 or a timeout gets the apology', async (t) => {
  nock('http://bot.test').post('/webhooks/rest/webhook').reply(200, { error: 'not a list' });
  const object = remote();
  t.deepEqual(await ask(object.bot, 'hello'), DEFAULT_APOLOGY);
  t.like(object.errors()[0], { msg: 'bot server did not answer a JSON array', url: BOT_URL, status: 200 });

  nock('http://bot.test').post('/webhooks/rest/webhook').reply(404, 'no such route');
  const notFound = remote();
  t.deepEqual(await ask(notFound.bot, 'hello'), DEFAULT_APOLOGY);
  t.regex(String(notFound.errors()[0]?.reason), /answered 404/);

  nock('http://bot.test').post('/webhooks/rest/webhook').times(4).delay(300).reply(200, [{ text: 'too late' }]);
  const slow = remote({ timeoutMs: 30 });
  t.deepEqual(await ask(slow.bot, 'hello'), DEFAULT_APOLOGY);
  t.regex(String(slow.errors()[0]?.reason), /timed out after 30 ms/);
});

test.serial('remote bot behind the host: POST /webhooks/rest/webhook returns its answers; when it is down, the apology', async (t) => {
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

  nock('http://bot.test').post('/webhooks/rest/webhook').times(4).replyWithError('connect ECONNREFUSED');
  t.deepEqual(await say('again'), { status: 200, body: [{ recipient_id: 'bob', ...DEFAULT_APOLOGY[0] }] });
  t.regex(logs.text, /bot server failed to answer/);

  // The server keeps running.
  nock('http://bot.test').post('/webhooks/rest/webhook').reply(200, [{ recipient_id: 'bob', text: 'back' }]);
  t.deepEqual(await say('still there?'), { status: 200, body: [{ recipient_id: 'bob', text: 'back' }] });
});
