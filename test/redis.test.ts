/**
 * `--redis`: the Redis store against a real redis-server (started per test on a free port), the CLI's startup error,
 * and two hosts sharing one Redis: a delivery reaching both is answered once, a Redis outage loses nothing, and shared
 * deduplication comes back with Redis without a restart.
 */
import anyTest from 'ava';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { parseCli } from '#src/cli.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import TelegramInput from '../channels/telegram/index.js';
import { ConfigError, HttpClient, maskRedisUrl, RedisStore, SwitchboardServer, type Logger } from 'switchboard';
import { startFakePlatform, ScriptedBot } from 'switchboard/testing';
import { captureLogs } from './harness.js';
import { PACKAGE_ROOT, RUN, runCli as run } from './fixtures.js';
import { freePort, RedisServer, redisTest } from './redis-server.js';

const test = redisTest(anyTest) as typeof anyTest;

// The token format of Telegram's documentation; never a real one.
const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const chat = { id: 1111111, first_name: 'Alice', username: 'alice', type: 'private' };
const from = { id: 1111111, is_bot: false, first_name: 'Alice', username: 'alice' };
/** An Update as Telegram's webhook posts it (https://core.telegram.org/bots/webhooks#testing-your-bot-with-updates). */
const update = (updateId: number, text: string) => ({ update_id: updateId, message: { message_id: updateId, from, chat, date: 1441645532, text } });

/** Waits for `check` to hold (polling), failing the test with `what` after `timeoutMs` (10 s). */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function storeOn(t: import('ava').ExecutionContext, redis: RedisServer, options: { prefix?: string; logger?: Logger } = {}): Promise<RedisStore> {
  const store = await RedisStore.connect({ url: redis.url, ...options });
  t.teardown(() => store.close());
  return store;
}

test('a claim is one SET NX PX under the prefix: first true, then false, with the expiry set in Redis', async (t) => {
  const redis = await RedisServer.start(t);
  const store = await storeOn(t, redis, { prefix: 'deploy-a:' });
  t.true(await store.claim('seen:telegram:1', 60_000));
  t.false(await store.claim('seen:telegram:1', 60_000));
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  t.is(await raw.get('deploy-a:seen:telegram:1'), '1');
  const ttl = await raw.pttl('deploy-a:seen:telegram:1');
  t.true(ttl > 0 && ttl <= 60_000, `PTTL ${ttl}`);
  // An expired claim is gone (Redis removes it), and the key can be claimed again.
  t.true(await store.claim('short', 1));
  await until(async () => (await raw.exists('deploy-a:short')) === 0, 'Redis expires the claim');
  t.true(await store.claim('short', 60_000));
});

test('of many concurrent claims of one key from two stores, exactly one wins', async (t) => {
  const redis = await RedisServer.start(t);
  const [a, b] = [await storeOn(t, redis), await storeOn(t, redis)];
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).claim('seen:slack:Ev1', 60_000)));
  t.is(results.filter(Boolean).length, 1);
});

test('release forgets a claim; prefixes keep deployments apart; ping answers', async (t) => {
  const redis = await RedisServer.start(t);
  const a = await storeOn(t, redis);
  const other = await storeOn(t, redis, { prefix: 'other:' });
  t.is(a.prefix, 'switchboard:');
  t.true(await a.claim('k', 60_000));
  t.true(await other.claim('k', 60_000), 'another prefix is another deployment');
  await a.release('k');
  t.true(await a.claim('k', 60_000));
  await t.notThrowsAsync(a.ping());
});

test('a password in the URL is used (and a wrong one is a startup error that does not show it)', async (t) => {
  const redis = await RedisServer.start(t, ['--requirepass', 'open-sesame']);
  const store = await RedisStore.connect({ url: `redis://:open-sesame@127.0.0.1:${redis.port}` });
  t.teardown(() => store.close());
  t.true(await store.claim('k', 60_000));
  t.false(await store.claim('k', 60_000));
  const wrong = await t.throwsAsync(RedisStore.connect({ url: `redis://:wrong-pass@127.0.0.1:${redis.port}`, connectTimeoutMs: 2_000 }), { instanceOf: ConfigError });
  t.false(wrong!.message.includes('wrong-pass'), wrong!.message);
  t.regex(wrong!.message, /WRONGPASS/);
  t.true(wrong!.message.includes(`redis://:***@127.0.0.1:${redis.port}`));
});

test('rediss:// speaks TLS: against a plain redis-server it does not connect, where redis:// does', async (t) => {
  const redis = await RedisServer.start(t);
  const plain = await RedisStore.connect({ url: `redis://127.0.0.1:${redis.port}` });
  await plain.close();
  const error = await t.throwsAsync(RedisStore.connect({ url: `rediss://127.0.0.1:${redis.port}`, connectTimeoutMs: 1_000 }), { instanceOf: ConfigError });
  t.true(error!.message.startsWith(`cannot reach Redis at rediss://127.0.0.1:${redis.port}`), error!.message);
});

test('an unreachable Redis at startup is a ConfigError naming the URL with the password masked', async (t) => {
  const port = await freePort();
  const url = `redis://:s3cr3t-pass@127.0.0.1:${port}/0`;
  const error = await t.throwsAsync(RedisStore.connect({ url }), { instanceOf: ConfigError });
  t.regex(error!.message, new RegExp(`redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0`));
  t.false(error!.message.includes('s3cr3t'));
  t.is(maskRedisUrl('rediss://user:pw%40x@redis.example.com:6380'), 'rediss://user:***@redis.example.com:6380');
});

test('a Redis that accepts connections but never answers is a startup error after the connect timeout, not a hang', async (t) => {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const { port } = silent.address() as { port: number };
  const error = await t.throwsAsync(RedisStore.connect({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 }), { instanceOf: ConfigError });
  t.regex(error!.message, /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/);
});

test('Redis down at run time: claims fall back to true with one warning per outage; back up, dedup works again', async (t) => {
  const redis = await RedisServer.start(t);
  const logs = captureLogs('info');
  const store = await storeOn(t, redis, { logger: logs.logger });
  t.true(await store.claim('before', 60_000));
  await redis.stop();
  await until(() => store.unreachable, 'the store notices the outage');
  for (let i = 0; i < 20; i++) t.true(await store.claim('before', 60_000), 'processed rather than lost');
  await t.throwsAsync(store.ping());
  const warnings = logs.lines().filter((line) => typeof line.msg === 'string' && line.msg.startsWith('Redis unreachable'));
  t.is(warnings.length, 1, 'one warning for the whole outage');
  await redis.restart();
  await until(() => !store.unreachable, 'the store reconnects by itself');
  t.true(await store.claim('after', 60_000));
  t.false(await store.claim('after', 60_000));
  t.true(logs.lines().some((line) => line.msg === 'Redis reachable again: deduplication and the shared inbox resumed'));
});

test('a Redis that hangs: claims give up after the command timeout and fall back to true, one warning; unfrozen, dedup works again', async (t) => {
  const redis = await RedisServer.start(t);
  t.teardown(() => redis.resume());
  const logs = captureLogs('info');
  const store = await RedisStore.connect({ url: redis.url, logger: logs.logger, commandTimeoutMs: 200 });
  t.teardown(() => store.close());
  redis.pause();
  t.deepEqual(await Promise.all([store.claim('h', 60_000), store.claim('h', 60_000), store.claim('h', 60_000)]), [true, true, true]);
  t.is(logs.lines().filter((line) => typeof line.msg === 'string' && line.msg.startsWith('Redis unreachable')).length, 1);
  redis.resume();
  await until(async () => store.ping().then(() => true, () => false), 'Redis answers again');
  t.true(await store.claim('after', 60_000));
  t.false(await store.claim('after', 60_000));
  t.false(store.unreachable);
  t.true(logs.lines().some((line) => line.msg === 'Redis reachable again: deduplication and the shared inbox resumed'));
});

anyTest('parseCli: --redis, $SWITCHBOARD_REDIS_URL and --redis-prefix (default switchboard:); none of them: no Redis', (t) => {
  const options = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const parsed = parseCli(argv, env);
    return parsed.kind === 'run' ? { redis: parsed.options.redis, prefix: parsed.options.redisPrefix } : undefined;
  };
  t.deepEqual(options([]), { redis: undefined, prefix: undefined });
  t.deepEqual(options(['--redis', 'rediss://:pw@redis.example.com:6380/2']), { redis: 'rediss://:pw@redis.example.com:6380/2', prefix: 'switchboard:' });
  t.deepEqual(options(['--redis-prefix', 'staging:'], { SWITCHBOARD_REDIS_URL: 'redis://r:6379' }), { redis: 'redis://r:6379', prefix: 'staging:' });
  t.deepEqual(options(['--redis', 'redis://flag:6379'], { SWITCHBOARD_REDIS_URL: 'redis://env:6379' }), { redis: 'redis://flag:6379', prefix: 'switchboard:' }, 'the flag wins');
  t.throws(() => parseCli(['--redis', 'not a url'], {}), { instanceOf: ConfigError, message: /--redis must be a redis:\/\/ or rediss:\/\/ URL/ });
});

const runCli = (args: string[], env: NodeJS.ProcessEnv = {}) => run(args, { env });

// Needs no redis-server: nothing listens on the port.
anyTest('CLI: --redis (or $SWITCHBOARD_REDIS_URL) that cannot be reached exits 2 naming the URL without its password', async (t) => {
  const port = await freePort();
  const url = `redis://:secret@127.0.0.1:${port}`;
  for (const run of [() => runCli(['--redis', url, '--channel', 'rest', '--port', '0']), () => runCli(['--channel', 'rest', '--port', '0'], { SWITCHBOARD_REDIS_URL: url })]) {
    const result = await run();
    t.is(result.code, 2);
    t.true(result.stderr.includes(`redis://:***@127.0.0.1:${port}`), result.stderr);
    t.regex(result.stderr, /ECONNREFUSED/, 'the cause is named');
    t.false(result.stderr.includes('secret'));
    t.false(result.stdout.includes('secret'));
  }
  const scheme = await runCli(['--redis', 'http://:secret@127.0.0.1:6379', '--channel', 'rest']);
  t.is(scheme.code, 2);
  t.regex(scheme.stderr, /--redis must be a redis:\/\/ or rediss:\/\/ URL/);
  t.false(scheme.stderr.includes('secret'));
  const prefix = await runCli(['--redis-prefix', 'x:', '--channel', 'rest']);
  t.is(prefix.code, 2);
  t.regex(prefix.stderr, /--redis-prefix needs --redis/);
});

test('CLI: with a reachable Redis the server starts, keys carry --redis-prefix, and /health/ready is 200', async (t) => {
  const redis = await RedisServer.start(t);
  const telegram = await startFakePlatform();
  t.teardown(() => telegram.close());
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-redis-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const credentials = path.join(dir, 'credentials.yml');
  writeFileSync(credentials, `telegram:\n  access_token: "${TOKEN}"\n  verify: moodbot\n  webhook_url: https://bot.example.com/webhooks/telegram/webhook\n  api_url: ${telegram.url}\n`);
  const child = spawn(process.execPath, [RUN, '--redis', redis.url, '--redis-prefix', 'cli-test:', '--credentials', credentials, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'],
    { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  // A busy machine can take a while to start a Node process.
  await until(() => /listening on (http:\/\/\S+)/.test(out) || child.exitCode !== null, 'the CLI starts', 30_000);
  const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
  if (!url) return t.fail(`the CLI did not start: ${err}`);
  const secret = createHmac('sha256', TOKEN).update('switchboard-telegram-secret-token').digest('hex');
  const response = await fetch(`${url}/webhooks/telegram/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret }, body: JSON.stringify(update(42, 'hello')) });
  t.is(response.status, 200);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  const keys = await raw.keys('*');
  t.true(keys.length > 0 && keys.every((key) => key.startsWith('cli-test:')), keys.join(' '));
  // Once answered, the message leaves the shared inbox: only the deduplication claim stays.
  await until(async () => (await raw.keys('*')).length === 1, 'the answered message leaves the inbox');
  t.deepEqual(await raw.keys('*'), ['cli-test:seen:telegram:42']);
  t.is((await fetch(`${url}/health/ready`)).status, 200);
});

test('two hosts sharing Redis answer a Telegram update delivered to both once, keep answering while Redis is down, and dedup again once it is back', async (t) => {
  const redis = await RedisServer.start(t);
  const telegram = await startFakePlatform();
  t.teardown(() => telegram.close());
  const credentials = { access_token: TOKEN, verify: 'moodbot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook', api_url: telegram.url };
  const hosts: Array<{ server: SwitchboardServer; url: string; secret: string }> = [];
  for (let i = 0; i < 2; i++) {
    const logs = captureLogs('warn');
    const store = await RedisStore.connect({ url: redis.url, logger: logs.logger });
    const channel = TelegramInput.fromCredentials(credentials);
    const bot = new ScriptedBot((message) => [{ text: `re: ${message.text}` }]);
    const server = new SwitchboardServer({ channels: [channel], bot, store, logger: logs.logger, http: new HttpClient({ minDelayMs: 5, maxDelayMs: 20, timeoutMs: 3_000, logger: logs.logger }) });
    t.teardown(() => server.close(200));
    const { port } = await server.listen(0, '127.0.0.1');
    hosts.push({ server, url: `http://127.0.0.1:${port}`, secret: channel.secretToken });
  }
  const post = (host: (typeof hosts)[number], body: unknown) =>
    fetch(`${host.url}/webhooks/telegram/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': host.secret }, body: JSON.stringify(body) });
  const toBoth = async (body: unknown) => {
    const responses = await Promise.all(hosts.map((host) => post(host, body)));
    t.deepEqual(responses.map((r) => r.status), [200, 200]);
    await Promise.all(hosts.map((host) => host.server.pipeline.drain()));
  };
  const answers = () => telegram.requests.filter((r) => r.path.endsWith('/sendMessage')).map((r) => (JSON.parse(r.body) as { text: string }).text);

  await toBoth(update(100, 'first'));
  t.deepEqual(answers(), ['re: first'], 'answered once');

  await redis.stop();
  await toBoth(update(200, 'during the outage'));
  const [a, b] = hosts;
  t.is((await post(a!, update(201, 'to A'))).status, 200);
  t.is((await post(b!, update(202, 'to B'))).status, 200);
  await Promise.all(hosts.map((host) => host.server.pipeline.drain()));
  t.deepEqual(answers().filter((text) => text !== 're: during the outage').sort(), ['re: first', 're: to A', 're: to B']);
  t.true(answers().includes('re: during the outage'), 'nothing is lost while Redis is down (a duplicate is the price)');

  await redis.restart();
  await until(async () => (await Promise.all(hosts.map((host) => host.server.pipeline.store.ping!().then(() => true, () => false)))).every(Boolean), 'both hosts reconnect');
  await toBoth(update(300, 'after the outage'));
  t.is(answers().filter((text) => text === 're: after the outage').length, 1, 'answered once again, without a restart');
});
