// The outbox: an answer the platform could not take (connection refused, 429, 503) is kept and retried in the
// sender's order until it is taken or its ttl passes; anything that may have reached the platform is not retried.
// Real servers on both sides: the host on port 0 receiving Telegram updates, and a stub Telegram Bot API on another
// port (given as `api_url`) that answers what each test tells it to.
import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpClient, HttpRequestError, MemoryOutbox, isSafeToRetry, type BotMessage, type UserMessage } from 'switchboard';
import { ScriptedBot, startTestHost, type TestHost } from 'switchboard/testing';
import CallbackInput from '../channels/callback/index.js';
import TelegramInput from '../channels/telegram/index.js';
import { parseCli } from '#src/cli.js';

// The token format of Telegram's documentation; never a real one.
const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const SECRET = 'outbox-test-secret-token';

interface Sent {
  chat: string;
  text: string;
}

/** What the stub answers a sendMessage: a status (with Telegram's error body when not 200), or a socket destroyed. */
type Answer = number | 'hang up';

/**
 * A stub Bot API: `setWebhook` always succeeds; each `sendMessage` is answered by `answer(request)`, and the ones
 * answered 200 are recorded in `delivered`, in the order they were taken.
 */
async function stubTelegram(t: ExecutionContext, answer: (sent: Sent) => Answer) {
  const delivered: Sent[] = [];
  let attempts = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const json = { 'content-type': 'application/json' };
      if (req.url?.endsWith('/setWebhook')) {
        res.writeHead(200, json).end(JSON.stringify({ ok: true, result: true, description: 'Webhook was set' }));
        return;
      }
      const body = JSON.parse(raw) as { chat_id: string; text: string };
      const sent = { chat: body.chat_id, text: body.text };
      attempts++;
      const status = answer(sent);
      if (status === 'hang up') {
        req.socket.destroy();
        return;
      }
      if (status === 200) {
        delivered.push(sent);
        res.writeHead(200, json).end(JSON.stringify({ ok: true, result: { message_id: delivered.length, chat: { id: Number(sent.chat), type: 'private' }, date: 1441645532, text: sent.text } }));
        return;
      }
      // Telegram's error shape (https://core.telegram.org/bots/api#making-requests).
      const description = status === 400 ? 'Bad Request: chat not found' : status === 429 ? 'Too Many Requests: retry after 1' : 'Service Unavailable';
      res.writeHead(status, json).end(JSON.stringify({ ok: false, error_code: status, description }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, delivered, attempts: () => attempts };
}

/** The host with the Telegram channel pointed at the stub; the outgoing client tries once per send (no quick retries). */
async function startHost(t: ExecutionContext, apiUrl: string, options: { outbox?: MemoryOutbox; outboxTtlMs?: number; bot?: ScriptedBot } = {}): Promise<TestHost> {
  const channel = await TelegramInput.fromCredentials({ access_token: TOKEN, verify: 'moodbot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook', secret_token: SECRET, api_url: apiUrl });
  const bot = options.bot ?? new ScriptedBot((message: UserMessage): BotMessage[] => [{ text: `${message.text} a` }, { text: `${message.text} b` }]);
  const host = await startTestHost(channel, { bot, outbox: options.outbox, outboxTtlMs: options.outboxTtlMs, http: { retries: 0 } });
  t.teardown(() => host.close());
  return host;
}

let updateId = 70_000;

/** Posts a Telegram Update (https://core.telegram.org/bots/api#update) with a private text message. */
async function say(host: TestHost, chat: number, text: string): Promise<number> {
  const from = { id: chat, is_bot: false, first_name: 'Alice' };
  const id = ++updateId;
  const update = { update_id: id, message: { message_id: id, from, chat: { id: chat, first_name: 'Alice', type: 'private' }, date: 1441645532, text } };
  const response = await host.request('/webhooks/telegram/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
    body: JSON.stringify(update),
  });
  if (response.status !== 200) throw new Error(`the host answered ${response.status}`);
  return id;
}

/** Resolves when `condition()` holds; fails the test (does not hang) if it never does. */
async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const lines = (host: TestHost) => host.logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
const texts = (sent: Sent[]) => sent.map((s) => s.text);
/** A short backoff (5 ms doubling to 20 ms, no jitter), so a test waits milliseconds where the default waits seconds. */
const quick = (options: { ttlMs?: number; maxAnswers?: number } = {}) => new MemoryOutbox({ minDelayMs: 5, maxDelayMs: 20, random: () => 1, ...options });

test('the platform answers 503 for a while, then recovers: every answer arrives once, in order, and the bot went on meanwhile', async (t) => {
  let down = true;
  const api = await stubTelegram(t, () => (down ? 503 : 200));
  const outbox = quick();
  const host = await startHost(t, api.url, { outbox });
  for (const text of ['one', 'two', 'three']) await say(host, 1111, text);
  // Every message reached the bot and was processed while the platform was down: their answers wait, in order.
  await host.bot.waitForMessages(3, 5_000);
  await until(() => outbox.size === 6, 'six answers kept');
  await until(() => api.attempts() >= 8, 'a few retries');
  t.deepEqual(api.delivered, []);
  t.deepEqual(outbox.pending().map((p) => p.sender), Array(6).fill('1111'));
  down = false;
  await until(() => api.delivered.length === 6 && outbox.size === 0, 'every answer delivered');
  t.deepEqual(texts(api.delivered), ['one a', 'one b', 'two a', 'two b', 'three a', 'three b']);
  const kept = lines(host).find((line) => line.msg === 'the platform did not take the answer; kept in the outbox for a retry');
  t.like(kept, { level: 40, channel: 'telegram', sender: '1111' });
  t.false(host.logs.text.includes('outbox gave up'));
  t.false(host.logs.text.includes(TOKEN));
  // Answers to new messages go straight out again once nothing waits.
  await say(host, 1111, 'four');
  await until(() => api.delivered.length === 8, 'the next answers');
  t.deepEqual(texts(api.delivered).slice(6), ['four a', 'four b']);
});

test('an answer still refused when its ttl passes is given up with an error line naming channel, sender and message id', async (t) => {
  const api = await stubTelegram(t, () => 503);
  const outbox = quick({ ttlMs: 150 });
  const host = await startHost(t, api.url, { outbox, bot: new ScriptedBot([{ text: 'never taken' }]) });
  const id = await say(host, 2222, 'hello');
  await until(() => host.logs.text.includes('outbox gave up on an answer'), 'the give-up line');
  const line = lines(host).find((l) => l.msg === 'outbox gave up on an answer');
  t.like(line, { level: 50, channel: 'telegram', sender: '2222', messageId: String(id), reason: 'expired', ttlMs: 150 });
  t.true((line!.attempts as number) >= 2, `attempts: ${String(line!.attempts)}`);
  t.is(outbox.size, 0);
  t.is(outbox.gaveUp.expired, 1);
  const metrics = await host.request('/metrics');
  t.regex(metrics.text, /switchboard_outbox_gave_up_total\{channel="telegram",reason="expired"\} 1/);
  t.regex(metrics.text, /switchboard_outbox_answers 0/);
});

test('a 400 is not retried: one attempt, logged as before, nothing kept', async (t) => {
  const api = await stubTelegram(t, () => 400);
  const outbox = quick();
  const host = await startHost(t, api.url, { outbox, bot: new ScriptedBot([{ text: 'to nowhere' }]) });
  await say(host, 3333, 'hello');
  await until(() => host.logs.text.includes('sending an answer failed'), 'the failure line');
  t.is(api.attempts(), 1);
  t.is(outbox.size, 0);
  t.false(host.logs.text.includes('kept in the outbox'));
});

test('a send whose connection is reset (the platform may have it) is not retried', async (t) => {
  const api = await stubTelegram(t, () => 'hang up');
  const outbox = quick();
  const host = await startHost(t, api.url, { outbox, bot: new ScriptedBot([{ text: 'maybe read' }]) });
  await say(host, 3334, 'hello');
  await until(() => host.logs.text.includes('sending an answer failed'), 'the failure line');
  t.is(api.attempts(), 1);
  t.is(outbox.size, 0);
  t.false(host.logs.text.includes('kept in the outbox'));
});

test('an answer cut after its first part was shown is not retried: the user would read that part twice', async (t) => {
  // One answer of two paragraphs is two sendMessage calls: the first is taken, the second refused.
  const api = await stubTelegram(t, (sent) => (sent.text === 'part two' ? 503 : 200));
  const outbox = quick();
  const host = await startHost(t, api.url, { outbox, bot: new ScriptedBot([{ text: 'part one\n\npart two' }]) });
  await say(host, 3335, 'hello');
  await until(() => host.logs.text.includes('sending an answer failed'), 'the failure line');
  t.deepEqual(texts(api.delivered), ['part one']);
  t.is(api.attempts(), 2);
  t.is(outbox.size, 0);
  t.false(host.logs.text.includes('kept in the outbox'));
});

test('one sender\'s later answer waits behind its kept one; another sender is not held up', async (t) => {
  // Sender 4444's first answer is refused until the test has seen sender 5555 answered (at once, all along): on a busy
  // machine a fixed number of refusals could be used up before the other sender's turn.
  let platformBack = false;
  const api = await stubTelegram(t, (sent) => (sent.chat === '4444' && sent.text === 'first' && !platformBack ? 503 : 200));
  // Slow retries for this test: the second message is processed while the first answer still waits.
  const slow = new MemoryOutbox({ minDelayMs: 300, maxDelayMs: 300, random: () => 1 });
  const host = await startHost(t, api.url, { outbox: slow, bot: new ScriptedBot((message: UserMessage) => [{ text: message.text }]) });
  await say(host, 4444, 'first');
  await until(() => slow.size === 1, 'the first answer kept');
  await say(host, 4444, 'second');
  await say(host, 5555, 'other');
  await host.bot.waitForMessages(3, 5_000);
  await until(() => api.delivered.some((s) => s.chat === '5555'), 'the other sender answered');
  // The other sender was answered while 4444's answers wait, and 4444's second did not overtake its first.
  t.deepEqual(api.delivered.filter((s) => s.chat === '4444'), []);
  t.is(slow.size, 2);
  platformBack = true;
  await until(() => api.delivered.length === 3, 'every answer');
  t.deepEqual(api.delivered.filter((s) => s.chat === '4444').map((s) => s.text), ['first', 'second']);
});

test('past its cap the outbox gives a new failure up at once, logged', async (t) => {
  const api = await stubTelegram(t, () => 503);
  const outbox = quick({ maxAnswers: 1 });
  const host = await startHost(t, api.url, { outbox, bot: new ScriptedBot((message: UserMessage) => [{ text: message.text }]) });
  await say(host, 6666, 'kept');
  await until(() => outbox.size === 1, 'one kept');
  const id = await say(host, 7777, 'refused');
  await until(() => host.logs.text.includes('"reason":"full"'), 'the full line');
  t.like(lines(host).find((l) => l.reason === 'full'), { level: 50, msg: 'outbox gave up on an answer', channel: 'telegram', sender: '7777', messageId: String(id) });
  t.is(outbox.size, 1);
  t.is(outbox.gaveUp.full, 1);
});

test('a shutdown waits for the outbox within its grace, then logs each answer it abandons', async (t) => {
  let down = true;
  const api = await stubTelegram(t, () => (down ? 503 : 200));
  const outbox = quick();
  const host = await startHost(t, api.url, { outbox, bot: new ScriptedBot([{ text: 'late' }]) });
  await say(host, 8888, 'hello');
  await until(() => outbox.size === 1, 'kept');
  setTimeout(() => (down = false), 100);
  t.deepEqual(await host.server.close(5_000), { abandoned: 0 });
  t.deepEqual(texts(api.delivered), ['late']);

  const api2 = await stubTelegram(t, () => 503);
  const outbox2 = quick();
  const host2 = await startHost(t, api2.url, { outbox: outbox2, bot: new ScriptedBot([{ text: 'never' }]) });
  const id = await say(host2, 9999, 'hello');
  await until(() => outbox2.size === 1, 'kept');
  t.deepEqual(await host2.server.close(200), { abandoned: 1 });
  t.like(lines(host2).find((l) => l.msg === 'shutdown grace expired: answer in the outbox abandoned'), { level: 50, channel: 'telegram', sender: '9999', messageId: String(id), reason: 'shutdown' });
  t.is(outbox2.size, 0);
  t.deepEqual(outbox2.pending(), []);
});

test('real time, default backoff: the platform answers 503 for 3 s, then recovers; every answer arrives in order', async (t) => {
  const downUntil = Date.now() + 3_000;
  const api = await stubTelegram(t, () => (Date.now() < downUntil ? 503 : 200));
  // The host's own outbox (`--outbox-ttl` default: 10 minutes, 1 s doubling backoff) and its test HTTP client.
  const host = await startHost(t, api.url);
  for (const text of ['m1', 'm2', 'm3']) await say(host, 1234, text);
  await until(() => api.delivered.length === 6 && host.server.pipeline.outbox!.size === 0, 'every answer', 20_000);
  t.deepEqual(texts(api.delivered), ['m1 a', 'm1 b', 'm2 a', 'm2 b', 'm3 a', 'm3 b']);
  t.log(`took ${Date.now() - downUntil + 3_000} ms, ${api.attempts()} attempts`);
});

test('--outbox-ttl 0: no outbox, an answer refused with 503 is dropped and logged as before', async (t) => {
  const api = await stubTelegram(t, () => 503);
  const host = await startHost(t, api.url, { outboxTtlMs: 0, bot: new ScriptedBot([{ text: 'dropped' }]) });
  t.is(host.server.pipeline.outbox, undefined);
  await say(host, 4321, 'hello');
  await until(() => host.logs.text.includes('sending an answer failed'), 'the failure line');
  t.is(api.attempts(), 1);
  t.false(host.logs.text.includes('kept in the outbox'));
});

test('HttpRequestError.safeToRetry: only what cannot have reached the server', async (t) => {
  const api = await stubTelegram(t, (sent) => (sent.text === '400' ? 400 : sent.text === '429' ? 429 : sent.text === 'hang up' ? 'hang up' : 503));
  const http = new HttpClient({ retries: 0, timeoutMs: 2_000 });
  const failure = async (url: string, text: string) => {
    const error = await t.throwsAsync(http.post(url, { chat_id: '1', text }), { instanceOf: HttpRequestError });
    return error!;
  };
  const send = `${api.url}/bot${TOKEN}/sendMessage`;
  t.true((await failure(send, '503')).safeToRetry);
  t.true((await failure(send, '429')).safeToRetry);
  t.false((await failure(send, '400')).safeToRetry);
  t.false((await failure(send, 'hang up')).safeToRetry);
  // Nothing listens on a port just closed: the connection is refused.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const refused = await failure(`http://127.0.0.1:${port}/bot/sendMessage`, 'x');
  t.true(refused.safeToRetry);
  t.true(isSafeToRetry(refused));
  t.false(isSafeToRetry(new Error('other')));
});

test('--outbox-ttl reaches the options; it must be whole milliseconds', (t) => {
  const parsed = parseCli(['--outbox-ttl', '120000'], {});
  t.is(parsed.kind === 'run' ? parsed.options.outboxTtlMs : undefined, 120_000);
  const defaults = parseCli([], {});
  t.is(defaults.kind === 'run' ? defaults.options.outboxTtlMs : 'not run', undefined);
  t.throws(() => parseCli(['--outbox-ttl', '10s'], {}), { message: /--outbox-ttl must be a whole number/ });
});

test('callback (batch): a batch the endpoint answered 503 is posted again whole, once it recovers', async (t) => {
  let refusals = 0;
  const bodies: unknown[] = [];
  const endpoint = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(raw));
      res.writeHead(refusals++ < 2 ? 503 : 200).end();
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  t.teardown(() => endpoint.close());
  const outbox = quick();
  const channel = await CallbackInput.fromCredentials({ url: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/bot` });
  const host = await startTestHost(channel, { bot: new ScriptedBot([{ text: 'one' }, { text: 'two' }]), outbox, http: { retries: 0 } });
  t.teardown(() => host.close());
  const response = await host.request('/webhooks/callback/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 'bob', message: 'hi' }) });
  t.is(response.status, 200);
  await until(() => bodies.length === 3 && outbox.size === 0, 'the batch taken');
  const batch = [{ recipient_id: 'bob', text: 'one' }, { recipient_id: 'bob', text: 'two' }];
  t.deepEqual(bodies, [batch, batch, batch]);
});
