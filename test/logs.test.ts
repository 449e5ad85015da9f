// Logs (issue 14, item 7): an access line per request with its route pattern, a request id on every line of a message
// and in X-Request-Id, W3C trace context, repeated warnings rate-limited, and a dedup memory that shrinks back.
import test from 'ava';
import { createHmac } from 'node:crypto';
import nock from 'nock';
import { SwitchboardServer, createLogger, type Bot } from 'switchboard';
import { MemoryStore, SWEEP_INTERVAL_MS } from '#src/store.js';
import { parseTraceparent, requestTrace } from '#src/trace.js';
import RestInput from '../channels/rest/index.js';
import TelegramInput from '../channels/telegram/index.js';
import { LogCapture, ScriptedBot } from './harness.js';

type Line = Record<string, unknown>;

async function host(t: import('ava').ExecutionContext, bot: Bot, options: { warnLimit?: { max: number; windowMs: number; now: () => number } } = {}) {
  const capture = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: capture, ...(options.warnLimit ? { warnLimit: options.warnLimit } : {}) });
  const server = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot, logger });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  return { url: `http://127.0.0.1:${port}`, server, lines: () => capture.lines.map((line) => JSON.parse(line) as Line) };
}

const say = (url: string, headers: Record<string, string> = {}, body: unknown = { sender: 'ann', message: 'hi' }) =>
  fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/** The access line is written when the response is finished: by the time the client has read it, it is there. */
const accessLines = (lines: Line[]) => lines.filter((line) => line.msg === 'request');

test('one access line per request: method, route pattern, status, duration, channel, request id; X-Request-Id answered', async (t) => {
  const bot: Bot = {
    handle(message, context) {
      return [{ text: `${message.text} / ${context!.requestId}` }];
    },
  };
  const { url, lines } = await host(t, bot);
  const response = await say(url, { 'x-request-id': 'client-req-42' });
  t.is(response.headers.get('x-request-id'), 'client-req-42');
  t.deepEqual(await response.json(), [{ recipient_id: 'ann', text: 'hi / client-req-42' }]);

  const [access] = accessLines(lines());
  t.like(access, { level: 30, method: 'POST', route: '/webhooks/rest/webhook', status: 200, channel: 'rest', reqId: 'client-req-42' });
  t.is(typeof access?.durationMs, 'number');
  t.regex(String(access?.traceId), /^[0-9a-f]{32}$/);
  // Every line written for that request carries its id (the pipeline's, the channel's).
  const forRequest = lines().filter((line) => line.reqId === 'client-req-42');
  t.true(forRequest.length >= 1);
  t.false(lines().some((line) => line.sender === 'ann' && line.reqId !== 'client-req-42'));

  // A route with what a client put in the path is logged by its pattern, never by the raw path.
  const missing = await fetch(`${url}/webhooks/rest/nope/user-12345?token=abc`, { method: 'POST' });
  t.is(missing.status, 404);
  t.regex(missing.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'errors are answered with the request id too');
  const notFound = accessLines(lines()).find((line) => line.status === 404);
  t.like(notFound, { method: 'POST', route: null });
  t.false(JSON.stringify(lines()).includes('user-12345'));
  t.false(JSON.stringify(lines()).includes('token=abc'));
});

test('an X-Request-Id that is not sane is replaced by a generated one; each request gets its own', async (t) => {
  const { url, lines } = await host(t, new ScriptedBot([{ text: 'ok' }]));
  for (const bad of ['has space', 'a'.repeat(129), 'quote"inside', '']) {
    const response = await say(url, bad === '' ? {} : { 'x-request-id': bad });
    const id = response.headers.get('x-request-id') ?? '';
    t.regex(id, /^[0-9a-f-]{36}$/, `replaced: ${JSON.stringify(bad.slice(0, 20))}`);
    await response.arrayBuffer();
  }
  const ids = accessLines(lines()).map((line) => line.reqId);
  t.is(new Set(ids).size, 4);
  t.false(JSON.stringify(lines()).includes('quote\\"inside'));
});

test('health probes are logged at debug, not info', async (t) => {
  const { url, lines } = await host(t, new ScriptedBot());
  await (await fetch(`${url}/health`)).arrayBuffer();
  t.like(accessLines(lines())[0], { level: 20, route: '/health', status: 200 });
});

test('traceparent: W3C Trace Context level 1 validation', (t) => {
  t.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    parentId: '00f067aa0ba902b7',
    flags: '01',
  });
  // A later version may add fields; version 00 may not.
  t.truthy(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra'));
  for (const invalid of [
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
    'garbage',
    undefined,
  ]) t.is(parseTraceparent(invalid), undefined, String(invalid));
  const fresh = requestTrace({ traceparent: 'garbage' });
  t.regex(fresh.traceId, /^[0-9a-f]{32}$/);
  t.is(fresh.flags, '01');
  t.is(requestTrace({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' }).flags, '00');
});

// ---------------------------------------------------------------------------------------------------------------------
// A flood of rejected signatures does not flood the log

const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const SECRET = createHmac('sha256', TOKEN).update('switchboard-telegram-secret-token').digest('hex');

test.serial('rejected signatures under a flood: at most N warnings per window, then one "suppressed K" line; verified requests go on', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });
  nock('https://api.telegram.org').post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true });
  const sent = nock('https://api.telegram.org').post(`/bot${TOKEN}/sendMessage`).reply(200, { ok: true, result: {} });
  let now = 1_000_000;
  const capture = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: capture, warnLimit: { max: 5, windowMs: 60_000, now: () => now } });
  const telegram = TelegramInput.fromCredentials({ access_token: TOKEN, verify: 'moodbot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook' });
  const server = new SwitchboardServer({ channels: [telegram], bot: new ScriptedBot([{ text: 'ok' }]), logger });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const post = (secret: string, updateId: number) =>
    fetch(`http://127.0.0.1:${port}/webhooks/telegram/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
      body: JSON.stringify({ update_id: updateId, message: { message_id: updateId, date: 1441645532, chat: { id: 7, type: 'private' }, from: { id: 7, is_bot: false, first_name: 'M' }, text: 'hi' } }),
    });
  const lines = () => capture.lines.map((line) => JSON.parse(line) as Line);
  const rejected = () => lines().filter((line) => line.msg === 'request rejected: not verified');

  for (let i = 0; i < 30; i++) t.is((await post('forged', 100 + i)).status, 401);
  t.is(rejected().length, 5, 'five warnings, the other 25 counted');
  t.like(rejected()[0], { level: 40, channel: 'telegram' });
  // Every request still has its access line (info is not limited).
  t.is(accessLines(lines()).filter((line) => line.status === 401).length, 30);
  // The genuine sender is not affected.
  t.is((await post(SECRET, 999)).status, 200);

  now += 60_000;
  t.is((await post('forged', 200)).status, 401);
  const suppressed = lines().find((line) => line.msg === 'suppressed 25 more of: request rejected: not verified');
  t.like(suppressed, { level: 40, channel: 'telegram', suppressed: 25 });
  t.false('reqId' in suppressed!, 'a count over many requests carries none of their ids');
  t.is(rejected().length, 6, 'a new window: written again');
  for (let i = 0; i < 50 && !sent.isDone(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(sent.isDone());
});

test('warnings are limited per channel and message: another message, or the host\'s own, is not suppressed', (t) => {
  const capture = new LogCapture();
  const logger = createLogger({ level: 'warn', destination: capture, warnLimit: { max: 2, windowMs: 60_000, now: () => 0 } });
  const slack = logger.child({ channel: 'slack' });
  const facebook = logger.child({ channel: 'facebook' });
  for (let i = 0; i < 5; i++) {
    slack.warn({ i }, 'request rejected: not verified');
    facebook.warn({ i }, 'request rejected: not verified');
    slack.warn('another warning');
    logger.error({ i }, 'errors are never suppressed');
  }
  const msgs = capture.lines.map((line) => JSON.parse(line) as Line);
  t.is(msgs.filter((line) => line.channel === 'slack' && line.msg === 'request rejected: not verified').length, 2);
  t.is(msgs.filter((line) => line.channel === 'facebook' && line.msg === 'request rejected: not verified').length, 2);
  t.is(msgs.filter((line) => line.msg === 'another warning').length, 2);
  t.is(msgs.filter((line) => line.msg === 'errors are never suppressed').length, 5);
  // warnLimit: false writes everything.
  const all = new LogCapture();
  const unlimited = createLogger({ level: 'warn', destination: all, warnLimit: false });
  for (let i = 0; i < 20; i++) unlimited.warn('same');
  t.is(all.lines.length, 20);
});

// ---------------------------------------------------------------------------------------------------------------------
// The dedup memory shrinks back after a burst

test('MemoryStore: 50k ids in a burst; once expired, the next claim sweeps them and the size is back near 0', async (t) => {
  let now = 5_000_000;
  const store = new MemoryStore(() => now);
  t.teardown(() => store.close());
  const ttl = 15 * 60_000;
  for (let i = 0; i < 50_000; i++) await store.claim(`seen:slack:burst-${i}`, ttl);
  t.is(store.size, 50_000);
  // An hour later, a trickle: one new message.
  now += 60 * 60_000;
  t.true(await store.claim('seen:slack:later', ttl));
  t.is(store.size, 1);
  // Still deduplicating after the sweep and the rebuild.
  t.false(await store.claim('seen:slack:later', ttl));
  t.true(await store.claim('seen:slack:burst-7', ttl), 'an expired id is new again');
});

test('MemoryStore: with no claims at all after a burst, the periodic sweep empties it; live ids are kept', async (t) => {
  let now = 0;
  const store = new MemoryStore(() => now);
  t.teardown(() => store.close());
  for (let i = 0; i < 5_000; i++) await store.claim(`old-${i}`, 1_000);
  now += 500;
  for (let i = 0; i < 10; i++) await store.claim(`live-${i}`, 60 * 60_000);
  now += SWEEP_INTERVAL_MS;
  // What the unref'd timer does every SWEEP_INTERVAL_MS.
  store.sweep();
  t.is(store.size, 10);
  t.false(await store.claim('live-3', 1_000));
});
