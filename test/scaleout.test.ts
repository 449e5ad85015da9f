/**
 * Scaling out (issue 15), black-box: real CLI processes sharing one real redis-server, a stub Telegram Bot API and a
 * remote bot server that records what reaches it. One sender's messages sent alternately to two instances reach the
 * bot in order and never overlap; a Telegram update sent to both is answered once; an instance killed with SIGKILL
 * mid-work has its acknowledged messages answered by the other, in per-chat order.
 */
import anyTest, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakePlatform, type FakePlatform } from 'switchboard/testing';
import { PACKAGE_ROOT, RUN } from './fixtures.js';
import { RedisServer, redisTest } from './redis-server.js';

const test = redisTest(anyTest) as typeof anyTest;

// The token format of Telegram's documentation; never a real one.
const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const SECRET = createHmac('sha256', TOKEN).update('switchboard-telegram-secret-token').digest('hex');

/** An Update as Telegram's webhook posts it (https://core.telegram.org/bots/webhooks#testing-your-bot-with-updates). */
function update(updateId: number, chatId: number, text: string) {
  const user = { id: chatId, is_bot: false, first_name: 'Alice', username: `user${chatId}` };
  return { update_id: updateId, message: { message_id: updateId, from: user, chat: { ...user, type: 'private' }, date: 1441645532, text } };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A remote bot (Rasa's REST protocol) that answers `re: <text>` after `delayMs`, recording arrivals and overlaps. */
interface RecordingBot {
  url: string;
  /** `sender/text` in the order they reached the bot. */
  arrivals: string[];
  /** The most messages of one sender the bot was working on at once. */
  peakPerSender: number;
}

async function startBot(t: ExecutionContext, delayMs: () => number): Promise<RecordingBot> {
  const working = new Map<string, number>();
  const bot: RecordingBot = { url: '', arrivals: [], peakPerSender: 0 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const { sender, message } = JSON.parse(body) as { sender: string; message: string };
      bot.arrivals.push(`${sender}/${message}`);
      const now = (working.get(sender) ?? 0) + 1;
      working.set(sender, now);
      bot.peakPerSender = Math.max(bot.peakPerSender, now);
      setTimeout(() => {
        working.set(sender, (working.get(sender) ?? 1) - 1);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ text: `re: ${message}` }]));
      }, delayMs());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  bot.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;
  return bot;
}

interface Instance {
  url: string;
  child: ChildProcess;
  output: () => string;
}

/** Starts the real CLI with Telegram on the stub API, the recording bot and the shared Redis. */
async function startInstance(t: ExecutionContext, redis: RedisServer, telegram: FakePlatform, bot: RecordingBot, extra: string[] = []): Promise<Instance> {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-scale-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const credentials = path.join(dir, 'credentials.yml');
  writeFileSync(credentials, `telegram:\n  access_token: "${TOKEN}"\n  verify: moodbot\n  webhook_url: https://bot.example.com/webhooks/telegram/webhook\n  api_url: ${telegram.url}\n`);
  const child = spawn(process.execPath, [RUN, '--redis', redis.url, '--credentials', credentials, '--bot', bot.url, '--port', '0', '--host', '127.0.0.1', '--log-level', 'info', ...extra],
    { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await until(() => /listening on (http:\/\/\S+)/.test(out) || child.exitCode !== null, 'the CLI starts');
  const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`the CLI did not start:\n${out}`);
  return { url, child, output: () => out };
}

async function post(instance: Instance, body: unknown): Promise<number> {
  const response = await fetch(`${instance.url}/webhooks/telegram/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

/** What the stub Telegram API was asked to send, as `chat/text`, in order. */
function sent(telegram: FakePlatform): string[] {
  return telegram.requests
    .filter((r) => r.path.endsWith('/sendMessage'))
    .map((r) => JSON.parse(r.body) as { chat_id: number | string; text: string })
    .map((m) => `${m.chat_id}/${m.text}`);
}

test('two processes sharing Redis: 200 messages of one sender sent alternately to both reach the bot in order, one at a time; an update sent to both is answered once', async (t) => {
  const redis = await RedisServer.start(t);
  const telegram = await startFakePlatform();
  t.teardown(() => telegram.close());
  const bot = await startBot(t, () => Math.floor(Math.random() * 4));
  const [a, b] = await Promise.all([startInstance(t, redis, telegram, bot), startInstance(t, redis, telegram, bot)]);
  const chat = 1111111;
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    // Past the sender's backlog (20 waiting) an instance answers 429, and Telegram delivers the update again later.
    let status: number;
    while ((status = await post(i % 2 === 0 ? a! : b!, update(1000 + i, chat, `m${i}`))) === 429) {
      refused++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    t.is(status, 200);
  }
  t.log(`deliveries refused with 429 (sender backlog full) and retried: ${refused}`);
  const expected = Array.from({ length: 200 }, (_, i) => `${chat}/m${i}`);
  await until(() => sent(telegram).length >= 200, 'all 200 answers are sent', 60_000);
  t.deepEqual(bot.arrivals, expected, 'the bot saw every message once, in the order they were sent');
  t.is(bot.peakPerSender, 1, 'never two messages of the sender with the bot at once');
  t.deepEqual(sent(telegram), expected.map((line) => line.replace('/m', '/re: m')), 'answered in order');

  // The same delivery reaching both instances at once (a retry racing the first attempt) is processed once.
  const statuses = await Promise.all([post(a!, update(5000, chat, 'twice')), post(b!, update(5000, chat, 'twice'))]);
  t.deepEqual(statuses, [200, 200]);
  await until(() => sent(telegram).includes(`${chat}/re: twice`), 'the update is answered');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(sent(telegram).filter((line) => line === `${chat}/re: twice`).length, 1);
  t.is(bot.arrivals.filter((line) => line === `${chat}/twice`).length, 1);
});

test('an instance killed with SIGKILL mid-work: the other answers every message it had acknowledged, in per-chat order, within 30 s', async (t) => {
  const redis = await RedisServer.start(t);
  const telegram = await startFakePlatform();
  t.teardown(() => telegram.close());
  const bot = await startBot(t, () => 300);
  const claim = ['--inbox-claim-ttl', '3000'];
  const [a, b] = await Promise.all([startInstance(t, redis, telegram, bot, claim), startInstance(t, redis, telegram, bot, claim)]);
  const chats = [2001, 2002, 2003, 2004];
  // 20 updates, five per chat, all acknowledged by A.
  for (let n = 0; n < 5; n++) {
    for (const chat of chats) t.is(await post(a!, update(chat * 100 + n, chat, `c${chat}-${n}`)), 200);
  }
  // A is killed while its bot calls are under way: the first answers are out, most messages are still waiting.
  await until(() => sent(telegram).length >= 1, 'A sends its first answer');
  a!.child.kill('SIGKILL');
  const killedAt = Date.now();
  const sentByA = sent(telegram).length;
  const expected = chats.flatMap((chat) => Array.from({ length: 5 }, (_, n) => `${chat}/re: c${chat}-${n}`));
  await until(() => expected.every((line) => sent(telegram).includes(line)), 'every acknowledged message is answered', 30_000);
  const tookMs = Date.now() - killedAt;
  const all = sent(telegram);
  for (const chat of chats) {
    // Each answer's first appearance, per chat, is in the order the messages came in.
    const firsts = [...new Set(all.filter((line) => line.startsWith(`${chat}/`)))];
    t.deepEqual(firsts, expected.filter((line) => line.startsWith(`${chat}/`)), `chat ${chat} in order`);
  }
  const duplicates = all.length - new Set(all).size;
  t.log(`A sent ${sentByA} answer(s) before SIGKILL; B sent the rest within ${tookMs} ms of the kill; answers sent twice: ${duplicates}`);
  t.true(tookMs < 30_000);
  t.true(duplicates <= chats.length, `at most one answer per chat can be sent twice (the one A was sending when killed), got ${duplicates}`);
  t.true(/resuming a sender/.test(b!.output()), 'B says it resumed the senders A held');
});
