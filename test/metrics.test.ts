/**
 * `/metrics`: real requests against a real listening server, then a scrape, and the counters must have moved by
 * exactly what was sent. Telegram's API is nock with the exact requests.
 */
import test from 'ava';
import { createHmac } from 'node:crypto';
import nock from 'nock';
import { io as connectClient } from 'socket.io-client';
import { HttpClient, SwitchboardServer, type BotMessage, type UserMessage } from 'switchboard';
import { ScriptedBot, startTestHost, type TestHost } from 'switchboard/testing';
import RestInput from '../channels/rest/index.js';
import SocketIOInput from '../channels/socketio/index.js';
import TelegramInput from '../channels/telegram/index.js';
import { RemoteBot, RulesBot, defaultBotPath } from '#src/bots/index.js';
import { botKind, MESSAGE_OUTCOMES } from '#src/metrics.js';
import { parseCli } from '#src/cli.js';

const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const API = 'https://api.telegram.org';
const SECRET = createHmac('sha256', TOKEN).update('switchboard-telegram-secret-token').digest('hex');
const SIGNED = { 'x-telegram-bot-api-secret-token': SECRET };
const TELEGRAM = { access_token: TOKEN, verify: 'moodbot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook' };

test.before(() => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});
test.after.always(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

const alice = { id: 1111111, is_bot: false, first_name: 'Alice', username: 'alice' };
const chat = { id: 1111111, first_name: 'Alice', username: 'alice', type: 'private' };
/** An Update as Telegram's webhook posts it (https://core.telegram.org/bots/api#update). */
const update = (updateId: number, text: string) => ({ update_id: updateId, message: { message_id: 1365 + updateId, from: alice, chat, date: 1441645532, text } });

/** Samples of one scrape: `name{labels} value` lines, keyed by the whole series. */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    map.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return map;
}

/** The value of the series named `name` whose labels include `labels` (0 when absent: a counter never incremented). */
function value(scrape: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let found = 0;
  for (const [series, number] of scrape) {
    const brace = series.indexOf('{');
    const seriesName = brace < 0 ? series : series.slice(0, brace);
    if (seriesName !== name) continue;
    const have = brace < 0 ? [] : series.slice(brace + 1, -1).split(',');
    if (wanted.every((w) => have.includes(w))) found += number;
  }
  return found;
}

async function scrape(url: string): Promise<{ text: string; series: Map<string, number> }> {
  const response = await fetch(`${url}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const text = await response.text();
  return { text, series: samples(text) };
}

async function post(host: TestHost, path: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(`${host.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

test('scrapes show every message outcome, the bot latency, platform calls, retries, gave-ups, the queue gauges and socket.io connections', async (t) => {
  nock(API).post(`/bot${TOKEN}/setWebhook`, { url: TELEGRAM.webhook_url, secret_token: SECRET }).reply(200, { ok: true, result: true });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const bot = new ScriptedBot(async (message: UserMessage): Promise<BotMessage[]> => {
    if (message.senderId === 'slow-sender') await gate;
    return [{ text: 'ok' }];
  });
  const host = await startTestHost(
    [RestInput.fromCredentials({}), TelegramInput.fromCredentials(TELEGRAM), SocketIOInput.fromCredentials({})],
    { bot, limits: { senderBacklog: 1 }, logLevel: 'silent', http: { minDelayMs: 1, maxDelayMs: 2 } },
  );
  t.teardown(() => host.close());
  t.teardown(() => release());
  const before = (await scrape(host.url)).series;
  // Every channel × outcome series is there from the start, at 0.
  for (const channel of ['rest', 'telegram', 'socketio']) {
    for (const outcome of MESSAGE_OUTCOMES) t.true(before.has(`switchboard_messages_received_total{channel="${channel}",outcome="${outcome}"}`), `${channel} ${outcome}`);
  }
  t.is(value(before, 'switchboard_platform_requests_total', { channel: 'telegram', method: 'POST', status_class: '2xx' }), 1, 'setWebhook at start');
  const delta = (after: Map<string, number>, name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
  const received = (channel: string, outcome: string) => ({ channel, outcome });

  // rest: handled, invalid (malformed JSON), and a slow sender's second message shed by its backlog of 1.
  t.is((await post(host, '/webhooks/rest/webhook', { sender: 'rest-sender-1', message: 'hello' })).status, 200);
  t.is((await post(host, '/webhooks/rest/webhook', '{"sender": ')).status, 400);
  const slow = post(host, '/webhooks/rest/webhook', { sender: 'slow-sender', message: 'first' });
  await bot.waitForMessages(2);
  const busy = (await scrape(host.url)).series;
  t.is(value(busy, 'switchboard_queue_messages'), 1);
  t.is(value(busy, 'switchboard_active_senders'), 1);
  t.is(value(busy, 'switchboard_bot_calls_active'), 1);
  const shed = await post(host, '/webhooks/rest/webhook', { sender: 'slow-sender', message: 'second' });
  t.is(shed.status, 429);
  release();
  t.is((await slow).status, 200);

  // telegram: a bad secret token, an update the bot never sees, a message answered after a 503 and a retry, the same
  // update again (a duplicate), and a message whose answer Telegram refuses (400: given up, the message failed).
  nock(API).post(`/bot${TOKEN}/sendMessage`, { chat_id: '1111111', text: 'ok' }).reply(503, { ok: false, error_code: 503, description: 'Service Unavailable' });
  nock(API).post(`/bot${TOKEN}/sendMessage`, { chat_id: '1111111', text: 'ok' }).reply(200, { ok: true, result: { message_id: 1 } });
  t.is((await post(host, '/webhooks/telegram/webhook', update(9001, 'hi'), { 'x-telegram-bot-api-secret-token': 'wrong' })).status, 401);
  t.is((await post(host, '/webhooks/telegram/webhook', { update_id: 9002, my_chat_member: { chat, from: alice, date: 1441645532 } }, SIGNED)).status, 200);
  t.is((await post(host, '/webhooks/telegram/webhook', update(9003, 'hi'), SIGNED)).status, 200);
  await host.server.pipeline.drain(); // (a backlog of 1 would shed the redelivery before it is seen as a duplicate)
  t.is((await post(host, '/webhooks/telegram/webhook', update(9003, 'hi'), SIGNED)).status, 200);
  await host.server.pipeline.drain();
  nock(API).post(`/bot${TOKEN}/sendMessage`, { chat_id: '1111111', text: 'ok' }).reply(400, { ok: false, error_code: 400, description: 'Bad Request: chat not found' });
  t.is((await post(host, '/webhooks/telegram/webhook', update(9004, 'hi again'), SIGNED)).status, 200);
  await host.server.pipeline.drain();
  t.true(nock.isDone(), `pending: ${nock.pendingMocks().join(', ')}`);

  // socket.io: one connected client.
  const socket = connectClient(host.url, { transports: ['websocket'], reconnection: false });
  t.teardown(() => socket.close());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });

  const { text, series: after } = await scrape(host.url);
  const messages = 'switchboard_messages_received_total';
  t.is(delta(after, messages, received('rest', 'handled')), 2);
  t.is(delta(after, messages, received('rest', 'invalid')), 1);
  t.is(delta(after, messages, received('rest', 'shed')), 1);
  t.is(delta(after, messages, received('telegram', 'rejected_signature')), 1);
  t.is(delta(after, messages, received('telegram', 'ignored')), 1);
  t.is(delta(after, messages, received('telegram', 'handled')), 1);
  t.is(delta(after, messages, received('telegram', 'duplicate')), 1);
  t.is(delta(after, messages, received('telegram', 'failed')), 1);
  t.is(delta(after, messages, {}), 9, 'nothing else counted');

  // The bot ran 4 times (2 rest, 2 telegram): a module bot, each observed once.
  t.is(delta(after, 'switchboard_bot_duration_seconds_count', { kind: 'module', result: 'ok' }), 4);
  t.true(value(after, 'switchboard_bot_duration_seconds_bucket', { kind: 'module', result: 'ok', le: '+Inf' }) === 4);

  const calls = 'switchboard_platform_requests_total';
  const telegramPost = { channel: 'telegram', method: 'POST' };
  t.is(delta(after, calls, { ...telegramPost, status_class: '5xx' }), 1);
  t.is(delta(after, calls, { ...telegramPost, status_class: '2xx' }), 1);
  t.is(delta(after, calls, { ...telegramPost, status_class: '4xx' }), 1);
  t.is(delta(after, 'switchboard_platform_retries_total', telegramPost), 1);
  t.is(delta(after, 'switchboard_platform_gave_up_total', telegramPost), 1);

  t.is(value(after, 'switchboard_queue_messages'), 0);
  t.is(value(after, 'switchboard_active_senders'), 0);
  t.is(value(after, 'switchboard_socketio_connections', { channel: 'socketio' }), 1);
  // Node's default metrics are there too.
  t.true(after.has('process_cpu_user_seconds_total'));
  t.true([...after.keys()].some((series) => series.startsWith('nodejs_heap_size_used_bytes')));

  // Bounded labels: no sender, chat id, update id or token in any label (values are numbers and may hold any digits).
  const labels = [...after.keys()].map((series) => series.slice(series.indexOf('{') + 1)).join('\n');
  t.true(labels.includes('channel="telegram"'));
  for (const unbounded of ['rest-sender-1', 'slow-sender', '1111111', '9003', TOKEN, SECRET]) t.false(labels.includes(unbounded), unbounded);
  for (const secret of [TOKEN, SECRET]) t.false(text.includes(secret));
});

test('a bot that throws is timed as an error and its message counted failed; a streaming bot is timed to its first answer', async (t) => {
  const host = await startTestHost([RestInput.fromCredentials({})], {
    bot: new ScriptedBot((message) => {
      if (message.text === 'boom') throw new Error('the bot broke');
      return [{ text: 'fine' }];
    }),
    logLevel: 'silent',
  });
  t.teardown(() => host.close());
  // rest answers a failed bot with 502 (the bot failed to answer).
  t.is((await post(host, '/webhooks/rest/webhook', { sender: 'a', message: 'boom' })).status, 502);
  t.is((await post(host, '/webhooks/rest/webhook', { sender: 'a', message: 'fine' })).status, 200);
  const { series } = await scrape(host.url);
  t.is(value(series, 'switchboard_bot_duration_seconds_count', { kind: 'module', result: 'error' }), 1);
  t.is(value(series, 'switchboard_bot_duration_seconds_count', { kind: 'module', result: 'ok' }), 1);
  t.is(value(series, 'switchboard_messages_received_total', { channel: 'rest', outcome: 'failed' }), 1);
  t.is(value(series, 'switchboard_messages_received_total', { channel: 'rest', outcome: 'handled' }), 1);

  // An async generator bot: the same object to the pipeline (the proxy keeps it), each yield sent.
  async function* stream(): AsyncGenerator<BotMessage> {
    yield { text: 'one' };
    yield { text: 'two' };
  }
  const streaming = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot: { handle: () => stream() } });
  const address = await streaming.listen(0, '127.0.0.1');
  t.teardown(() => streaming.close(200));
  const url = `http://127.0.0.1:${address.port}`;
  const answer = await fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', body: JSON.stringify({ sender: 'b', message: 'hi' }) });
  t.deepEqual(await answer.json(), [{ recipient_id: 'b', text: 'one' }, { recipient_id: 'b', text: 'two' }]);
  t.is(value((await scrape(url)).series, 'switchboard_bot_duration_seconds_count', { kind: 'module', result: 'ok' }), 1);
});

test('the bot kind label is what --bot loaded: remote, rules or module', (t) => {
  t.is(botKind(new RemoteBot({ url: 'http://127.0.0.1:5006/webhooks/rest/webhook', http: new HttpClient() })), 'remote');
  t.is(botKind(RulesBot.fromFile(defaultBotPath())), 'rules');
  t.is(botKind(new ScriptedBot()), 'module');
});

test('metrics on a port of their own leave the main port without /metrics; metrics: false serves none', async (t) => {
  const own = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot: new ScriptedBot(), metrics: { port: 0 } });
  const address = await own.listen(0, '127.0.0.1');
  t.teardown(() => own.close(200));
  const main = `http://127.0.0.1:${address.port}`;
  const metricsPort = own.metricsAddress?.port;
  t.truthy(metricsPort);
  t.not(metricsPort, address.port);
  t.is((await fetch(`${main}/metrics`)).status, 404);
  await fetch(`${main}/webhooks/rest/webhook`, { method: 'POST', body: JSON.stringify({ sender: 'a', message: 'hi' }) });
  const separate = await scrape(`http://127.0.0.1:${metricsPort}`);
  t.is(value(separate.series, 'switchboard_messages_received_total', { channel: 'rest', outcome: 'handled' }), 1);
  const other = await fetch(`http://127.0.0.1:${metricsPort}/webhooks/rest/webhook`, { method: 'POST', body: '{}' });
  t.is(other.status, 404);
  t.deepEqual(await other.json(), { error: 'only GET /metrics here' });

  const off = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot: new ScriptedBot(), metrics: false });
  const offAddress = await off.listen(0, '127.0.0.1');
  t.teardown(() => off.close(200));
  t.is(off.metrics, undefined);
  t.is((await fetch(`http://127.0.0.1:${offAddress.port}/metrics`)).status, 404);

  // Closing closes the metrics port too.
  await own.close(200);
  await t.throwsAsync(fetch(`http://127.0.0.1:${metricsPort}/metrics`));
});

test('two servers in one process keep their own counts', async (t) => {
  const one = await startTestHost([RestInput.fromCredentials({})], { logLevel: 'silent' });
  const two = await startTestHost([RestInput.fromCredentials({})], { logLevel: 'silent' });
  t.teardown(() => one.close());
  t.teardown(() => two.close());
  await post(one, '/webhooks/rest/webhook', { sender: 'a', message: 'hi' });
  await post(one, '/webhooks/rest/webhook', { sender: 'a', message: 'hi' });
  await post(two, '/webhooks/rest/webhook', { sender: 'a', message: 'hi' });
  const handled = { channel: 'rest', outcome: 'handled' };
  t.is(value((await scrape(one.url)).series, 'switchboard_messages_received_total', handled), 2);
  t.is(value((await scrape(two.url)).series, 'switchboard_messages_received_total', handled), 1);
});

test('--metrics-port and --no-metrics', (t) => {
  const run = (args: string[]) => {
    const parsed = parseCli(args, {});
    if (parsed.kind !== 'run') throw new Error('expected run options');
    return parsed.options;
  };
  t.like(run([]), { metrics: true, metricsPort: undefined });
  t.like(run(['--metrics-port', '9464']), { metrics: true, metricsPort: 9464 });
  t.like(run(['--no-metrics']), { metrics: false });
  t.throws(() => run(['--metrics-port', 'x']), { message: /--metrics-port must be a number/ });
  t.throws(() => run(['--metrics-port', '70000']), { message: /--metrics-port must be a number/ });
  t.throws(() => run(['--metrics-port', '9464', '--no-metrics']), { message: /contradict/ });
});
