#!/usr/bin/env node
// Throughput of the rest channel, as a ratio against a baseline measured in the same run: a bare node:http server
// answering the same JSON. Then the Telegram webhook (its API a local stub) with the in-memory store and with the
// Redis store (`--redis URL`, or a redis-server started here when one is on the PATH), as a ratio of the two.
// Loopback only, bounded in time. Usage: npm run bench [-- --seconds 10 --connections 50 --redis redis://…]
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { RedisStore, SwitchboardServer, loadChannels } from 'switchboard';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, connections: { type: 'string', default: '50' }, redis: { type: 'string' } } });
const duration = Number(values.seconds);
const connections = Number(values.connections);
const body = JSON.stringify({ sender: 'bench', message: 'hello' });

async function measure(url, senders) {
  let i = 0;
  const result = await autocannon({
    url,
    connections,
    duration,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // Many senders, so per-sender ordering does not serialise the whole run.
        setupRequest: (req) => ({ ...req, body: senders ? JSON.stringify({ sender: `u${i++ % 1000}`, message: 'hello' }) : body }),
      },
    ],
  });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

const baseline = createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    const { sender } = JSON.parse(raw);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify([{ recipient_id: sender, text: 'Hey! How are you?' }]));
  });
});
await new Promise((r) => baseline.listen(0, '127.0.0.1', r));
const base = await measure(`http://127.0.0.1:${baseline.address().port}/`, true);
baseline.close();

const channels = await loadChannels([], ['rest']);
const bot = { handle: async () => [{ text: 'Hey! How are you?' }] };
const server = new SwitchboardServer({ channels, bot });
const address = await server.listen(0, '127.0.0.1');
const memBefore = process.memoryUsage().rss;
const sb = await measure(`http://127.0.0.1:${address.port}/webhooks/rest/webhook`, true);
const memAfter = process.memoryUsage().rss;
await server.close();

// The Telegram webhook: acknowledged once the update is deduplicated and queued; answers go to a local stub API.
const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const secret = createHmac('sha256', TOKEN).update('switchboard-telegram-secret-token').digest('hex');
const stub = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true,"result":{}}');
  });
});
await new Promise((r) => stub.listen(0, '127.0.0.1', r));
let updateId = 0;
async function measureTelegram(store, seconds = duration) {
  const sections = [{ key: 'telegram', spec: 'telegram', aliased: false, source: 'bench', values: {
    access_token: TOKEN, verify: 'benchbot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook', api_url: `http://127.0.0.1:${stub.address().port}` } }];
  const telegramServer = new SwitchboardServer({ channels: await loadChannels(sections, []), bot, store });
  const { port } = await telegramServer.listen(0, '127.0.0.1');
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/webhooks/telegram/webhook`,
    connections,
    duration: seconds,
    requests: [{
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
      setupRequest: (req) => {
        const id = ++updateId;
        const chat = { id: 1000 + (id % 1000), type: 'private', first_name: 'Bench' };
        return { ...req, body: JSON.stringify({ update_id: id, message: { message_id: id, from: { id: chat.id, is_bot: false, first_name: 'Bench' }, chat, date: 1441645532, text: 'hello' } }) };
      },
    }],
  });
  await telegramServer.close();
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors + result.non2xx };
}
// A short warm-up first, so neither store is measured on a cold JIT.
await measureTelegram(undefined, 2);
const memory = await measureTelegram(undefined);
let redisUrl = values.redis;
let redisServer;
if (!redisUrl && spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0) {
  const probe = createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const redisPort = probe.address().port;
  await new Promise((r) => probe.close(r));
  redisServer = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${redisPort}`;
}
let redis;
if (redisUrl) {
  let store;
  for (let attempt = 0; !store; attempt++) {
    try {
      store = await RedisStore.connect({ url: redisUrl, prefix: `bench-${process.pid}:` });
    } catch (error) {
      if (!redisServer || attempt >= 50) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  redis = await measureTelegram(store);
}
redisServer?.kill('SIGKILL');
stub.close();

const row = (name, r) => `${name.padEnd(22)} ${String(Math.round(r.rps)).padStart(8)} req/s   p99 ${String(r.p99).padStart(4)} ms   errors ${r.errors}`;
process.stdout.write(
  [
    `rest channel, ${connections} connections, ${duration} s each, loopback`,
    row('baseline node:http', base),
    row('switchboard rest', sb),
    `ratio switchboard/baseline: ${(sb.rps / base.rps).toFixed(2)}`,
    `rss during run: ${(memBefore / 2 ** 20).toFixed(0)} → ${(memAfter / 2 ** 20).toFixed(0)} MiB`,
    '',
    `telegram webhook (acknowledged once deduplicated and queued), ${connections} connections, ${duration} s each`,
    row('in-memory store', memory),
    ...(redis
      ? [row('redis store', redis), `ratio redis/in-memory: ${(redis.rps / memory.rps).toFixed(2)} (target ≥ 0.7)`]
      : ['redis store            not measured: no redis-server on the PATH and no --redis URL']),
    '',
  ].join('\n'),
);
