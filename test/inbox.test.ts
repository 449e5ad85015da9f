/**
 * The shared inbox (`--redis`), in process against a real redis-server: answers of a platform that is down for 20 s
 * wait in the inbox and all arrive in order once it is back (and the in-memory outbox does the same without Redis); a
 * message resumed from the inbox skips the answers already sent; a shutdown hands the sender's waiting messages to
 * another instance; a channel without reply addresses is named at startup.
 */
import anyTest, { type ExecutionContext } from 'ava';
import Router from '@koa/router';
import { Redis } from 'ioredis';
import TelegramInput from '../channels/telegram/index.js';
import { HttpClient, InputChannel, MemoryOutbox, RedisStore, SharedInbox, SwitchboardServer, UserMessage, type Bot, type Logger, type PipelineLimits, type Store } from 'switchboard';
import { startFakePlatform, ScriptedBot, type FakePlatform } from 'switchboard/testing';
import { captureLogs } from './harness.js';
import { RedisServer, redisTest } from './redis-server.js';

const test = redisTest(anyTest) as typeof anyTest;

// The token format of Telegram's documentation; never a real one.
const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';

function update(updateId: number, chatId: number, text: string) {
  const user = { id: chatId, is_bot: false, first_name: 'Alice', username: `user${chatId}` };
  return { update_id: updateId, message: { message_id: updateId, from: user, chat: { ...user, type: 'private' }, date: 1441645532, text } };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Host {
  server: SwitchboardServer;
  url: string;
  secret: string;
  logs: ReturnType<typeof captureLogs>;
}

async function startHost(t: ExecutionContext, telegram: FakePlatform, bot: Bot, options: { store?: Store; logs?: ReturnType<typeof captureLogs>; outbox?: MemoryOutbox; inboxClaimTtlMs?: number; limits?: PipelineLimits } = {}): Promise<Host> {
  const logs = options.logs ?? captureLogs('info');
  const channel = TelegramInput.fromCredentials({ access_token: TOKEN, verify: 'moodbot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook', api_url: telegram.url });
  const server = new SwitchboardServer({
    channels: [channel], bot, store: options.store, logger: logs.logger, outbox: options.outbox, inboxClaimTtlMs: options.inboxClaimTtlMs, limits: options.limits,
    sharedRetry: { minDelayMs: 500, maxDelayMs: 3_000 },
    http: new HttpClient({ minDelayMs: 5, maxDelayMs: 20, timeoutMs: 3_000, logger: logs.logger }),
  });
  t.teardown(() => server.close(500));
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${port}`, secret: channel.secretToken, logs };
}

async function post(host: Host, body: unknown): Promise<number> {
  const response = await fetch(`${host.url}/webhooks/telegram/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': host.secret },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

async function storeOn(t: ExecutionContext, redis: RedisServer, logger?: Logger): Promise<RedisStore> {
  const store = await RedisStore.connect({ url: redis.url, ...(logger ? { logger } : {}) });
  t.teardown(() => store.close());
  return store;
}

/** A stub Telegram API whose sendMessage answers 503 until `downUntil`, recording what it accepted. */
async function flakyTelegram(t: ExecutionContext, downForMs: number): Promise<{ platform: FakePlatform; accepted: string[]; refused: () => number }> {
  const downUntil = Date.now() + downForMs;
  const accepted: string[] = [];
  let refused = 0;
  const platform = await startFakePlatform((request) => {
    if (!request.path.endsWith('/sendMessage')) return undefined;
    if (Date.now() < downUntil) {
      refused++;
      return { status: 503, body: { ok: false, error_code: 503, description: 'Service Unavailable' } };
    }
    const { chat_id, text } = JSON.parse(request.body) as { chat_id: number; text: string };
    accepted.push(`${chat_id}/${text}`);
    return undefined;
  });
  t.teardown(() => platform.close());
  return { platform, accepted, refused: () => refused };
}

test('the platform answers 503 for 20 s: every answer arrives once it is back, in order, with Redis (kept in the shared inbox) and without (in-memory outbox)', async (t) => {
  t.timeout(60_000);
  const redis = await RedisServer.start(t);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  const shared = await flakyTelegram(t, 20_000);
  const memory = await flakyTelegram(t, 20_000);
  const echo = () => new ScriptedBot((message) => [{ text: `re: ${message.text}` }]);
  const hosts = [
    await startHost(t, shared.platform, echo(), { store: await storeOn(t, redis) }),
    await startHost(t, memory.platform, echo(), { outbox: new MemoryOutbox({ minDelayMs: 500, maxDelayMs: 3_000 }) }),
  ];
  const chats = [3001, 3002];
  const expected = chats.flatMap((chat) => [0, 1, 2].map((n) => `${chat}/re: c${chat}-${n}`));
  for (const host of hosts) {
    for (let n = 0; n < 3; n++) for (const chat of chats) t.is(await post(host, update(chat * 10 + n, chat, `c${chat}-${n}`)), 200);
  }
  await wait(2_000);
  t.is(shared.accepted.length + memory.accepted.length, 0, 'nothing gets through while the platform is down');
  t.true(shared.refused() > 0 && memory.refused() > 0);
  // With Redis, what waits is in Redis: each chat's messages are still in its stream of the shared inbox.
  for (const chat of chats) t.is(await raw.xlen(`switchboard:inbox:q:telegram:${chat}`), 3, `chat ${chat}'s messages wait in the inbox`);
  await until(() => shared.accepted.length >= 6 && memory.accepted.length >= 6, 'every answer arrives after the outage', 40_000);
  for (const [name, accepted] of [['shared inbox', shared.accepted], ['memory outbox', memory.accepted]] as const) {
    for (const chat of chats) {
      t.deepEqual(accepted.filter((line) => line.startsWith(`${chat}/`)), expected.filter((line) => line.startsWith(`${chat}/`)), `${name}: chat ${chat} complete, once each, in order`);
    }
  }
  await until(async () => (await raw.keys('switchboard:inbox:*')).length === 0, 'the inbox is empty once everything was sent');
  t.true(hosts[0]!.logs.lines().some((line) => line.msg === 'the platform did not take the answer; retried while the message stays in the shared inbox'));
});

test('a message resumed from the shared inbox skips the answers an instance that died had already sent', async (t) => {
  const redis = await RedisServer.start(t);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  const telegram = await startFakePlatform();
  t.teardown(() => telegram.close());
  // What an instance that died left behind: the message in its sender's stream, progress saying one answer was sent.
  const leftBy = (await storeOn(t, redis)).inbox();
  const message = new UserMessage({ text: 'two answers please', senderId: '4001', replyTo: { chat_id: '4001' }, inputChannel: 'telegram', messageId: '77' });
  const added = await leftBy.add(SharedInbox.senderKey('telegram', '4001'), message.toJSON(), { dedupTtlMs: 60_000, backlog: 20 });
  if (added.status !== 'added') return t.fail(added.status);
  await raw.hset('switchboard:inbox:sent:telegram:4001', added.id, '1');

  const bot = new ScriptedBot([{ text: 'first (sent before)' }, { text: 'second' }]);
  await startHost(t, telegram, bot, { store: await storeOn(t, redis) });
  await until(() => telegram.requests.some((r) => r.path.endsWith('/sendMessage')), 'the message is resumed');
  await until(async () => (await raw.exists('switchboard:inbox:q:telegram:4001')) === 0, 'and removed once answered');
  t.is(bot.received.length, 1, 'the bot is asked again (at least once to the bot)');
  t.is(bot.received[0]!.text, 'two answers please');
  const texts = telegram.requests.filter((r) => r.path.endsWith('/sendMessage')).map((r) => (JSON.parse(r.body) as { text: string }).text);
  t.deepEqual(texts, ['second'], 'the answer already sent is not sent again');
});

test('a shutdown lets the sender go after its current message: another instance answers the rest, in order, once each', async (t) => {
  const redis = await RedisServer.start(t);
  const telegram = await startFakePlatform();
  t.teardown(() => telegram.close());
  const slow = () => new ScriptedBot(async (message) => {
    await wait(300);
    return [{ text: `re: ${message.text}` }];
  });
  const a = await startHost(t, telegram, slow(), { store: await storeOn(t, redis), inboxClaimTtlMs: 3_000 });
  const b = await startHost(t, telegram, slow(), { store: await storeOn(t, redis), inboxClaimTtlMs: 3_000 });
  for (let n = 0; n < 4; n++) t.is(await post(a, update(5000 + n, 5001, `m${n}`)), 200);
  await wait(100);
  const report = await a.server.close(10_000);
  t.is(report.abandoned, 0);
  const answers = () => telegram.requests.filter((r) => r.path.endsWith('/sendMessage')).map((r) => (JSON.parse(r.body) as { text: string }).text);
  t.true(answers().length >= 1 && answers().length < 4, `A answered its current message only (${answers().length})`);
  await until(() => answers().length >= 4, 'B answers the rest', 10_000);
  await b.server.pipeline.drain();
  t.deepEqual(answers(), ['re: m0', 're: m1', 're: m2', 're: m3']);
});

test('under --redis, a channel that attaches live outputs only is named at startup: its messages are not durable', async (t) => {
  const redis = await RedisServer.start(t);
  class LiveOnly extends InputChannel {
    name() {
      return 'liveonly';
    }
    router() {
      return new Router();
    }
  }
  const logs = captureLogs('warn');
  const server = new SwitchboardServer({ channels: [new LiveOnly({})], bot: new ScriptedBot(), store: await storeOn(t, redis), logger: logs.logger });
  t.teardown(() => server.close(100));
  const warning = logs.lines().find((line) => line.channel === 'liveonly');
  t.truthy(warning);
  t.regex(String(warning?.msg), /no outputChannel\(replyTo\): its messages are processed in this process only/);
  // Without Redis, nothing to warn about.
  const quiet = captureLogs('warn');
  const local = new SwitchboardServer({ channels: [new LiveOnly({})], bot: new ScriptedBot(), logger: quiet.logger });
  t.teardown(() => local.close(100));
  t.is(quiet.lines().length, 0);
});

test('the shared inbox is bounded as one process is: a sender\'s backlog (messages and bytes), and the senders waiting', async (t) => {
  const redis = await RedisServer.start(t);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  const telegram = await startFakePlatform();
  t.teardown(() => telegram.close());
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const bot = new ScriptedBot(async (message) => {
    await gate;
    return [{ text: `re: ${message.text.slice(0, 10)}` }];
  });
  const host = await startHost(t, telegram, bot, { store: await storeOn(t, redis), limits: { senderBacklog: 3, senderBacklogBytes: 2_000, botConcurrency: 1, botWait: 1 } });
  // Sender 6001: three messages wait (one with the bot), the fourth is refused.
  for (let n = 0; n < 3; n++) t.is(await post(host, update(6100 + n, 6001, `m${n}`)), 200);
  t.is(await post(host, update(6103, 6001, 'm3')), 429);
  // A second sender may wait (one at the bot, one waiting: botConcurrency + botWait = 2); a third is refused.
  t.is(await post(host, update(6200, 6002, 'other')), 200);
  t.is(await post(host, update(6300, 6003, 'third')), 429);
  // Bytes: 6002's next message, big enough to pass 2,000 bytes with what waits, is refused; alone it would be taken.
  t.is(await post(host, update(6201, 6002, 'x'.repeat(2_500))), 429);
  t.is(Number(await raw.hget('switchboard:inbox:sent:telegram:6002', '#bytes')) > 0, true);
  open();
  await until(() => telegram.requests.filter((r) => r.path.endsWith('/sendMessage')).length >= 4, 'the accepted messages are answered');
  await until(async () => (await raw.keys('switchboard:inbox:*')).length === 0, 'the inbox is empty, its counters gone');
  // Refused deliveries were not claimed: the platform's retry is processed.
  t.is(await post(host, update(6103, 6001, 'm3')), 200);
  await until(() => bot.received.some((m) => m.text === 'm3'), 'the retried delivery reaches the bot');
});
