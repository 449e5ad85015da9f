/**
 * socket.io across instances: two hosts sharing one real redis-server (started per test on a free port) and one
 * `session_secret`. A session started on A is resumed on B, and an answer emitted on either instance reaches the
 * session's sockets on both, through socket.io's Redis adapter.
 */
import anyTest, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { RedisStore, SwitchboardServer, type Logger, type UserMessage } from 'switchboard';
import { ScriptedBot } from 'switchboard/testing';
import SocketIOInput from '../channels/socketio/index.js';
import { captureLogs } from './harness.js';
import { RedisServer, redisTest } from './redis-server.js';
import { connect, next as nextEvent, session as askSession, type ClientSocket } from './socketio-client.js';

const next = <T = unknown>(socket: ClientSocket, event: string) => nextEvent<T>(socket, event, WAIT_MS);
const session = (socket: ClientSocket, sessionId?: string) => askSession(socket, sessionId, WAIT_MS);

const test = redisTest(anyTest) as typeof anyTest;

const SESSION_SECRET = 'shared-secret-of-two-instances-42';

interface Instance {
  url: string;
  bot: ScriptedBot;
  server: SwitchboardServer;
}

/** A host with the socketio channel (session_persistence, the shared secret) on a Redis store; its bot names it. */
async function instance(t: ExecutionContext, redis: RedisServer, name: string, prefix?: string, logger?: Logger): Promise<Instance> {
  const store = await RedisStore.connect({ url: redis.url, prefix, logger });
  const channel = SocketIOInput.fromCredentials({ session_persistence: true, session_secret: SESSION_SECRET });
  const bot = new ScriptedBot((m: UserMessage) => [{ text: `${name} answers: ${m.text}` }]);
  const server = new SwitchboardServer({ channels: [channel], bot, store, logger });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await server.close(0);
  });
  const address = await server.listen(0, '127.0.0.1');
  const close = server.close.bind(server);
  server.close = (graceMs?: number) => {
    closed = true;
    return close(graceMs);
  };
  return { url: `http://127.0.0.1:${address.port}`, bot, server };
}

/** socket.io answers cross Redis between instances: a little more time than the shared helper's default. */
const WAIT_MS = 5_000;

/** Waits for `check` to hold (polling), failing the test with `what` after 10 s. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}


test('session on A, reconnect to B: B confirms the session and answers it; an answer emitted on A reaches the socket on B', async (t) => {
  const redis = await RedisServer.start(t);
  const a = await instance(t, redis, 'A', 'deploy-a:');
  const b = await instance(t, redis, 'B', 'deploy-a:');

  // The session starts on A, which answers it.
  const onA = await connect(t, a);
  const sessionId = await session(onA);
  const first = next(onA, 'bot_uttered');
  onA.emit('user_uttered', { message: 'hello', session_id: sessionId });
  t.deepEqual(await first, { text: 'A answers: hello' });
  onA.disconnect();

  // The client comes back on B (another instance behind the load balancer): same session, answered by B.
  const onB = await connect(t, b);
  t.is(await session(onB, sessionId), sessionId, 'B confirms the session A signed');
  const second = next(onB, 'bot_uttered');
  onB.emit('user_uttered', { message: 'still me', session_id: sessionId });
  t.deepEqual(await second, { text: 'B answers: still me' });
  t.is(b.bot.received[0]?.senderId, a.bot.received[0]?.senderId, 'the same sender on both instances');

  // Another tab of the same session is on A: A's answer is emitted to the session's room on A, and reaches B.
  const otherTab = await connect(t, a);
  t.is(await session(otherTab, sessionId), sessionId);
  const onBoth = [next(onB, 'bot_uttered'), next(otherTab, 'bot_uttered')];
  otherTab.emit('user_uttered', { message: 'from the other tab', session_id: sessionId });
  t.deepEqual(await Promise.all(onBoth), [{ text: 'A answers: from the other tab' }, { text: 'A answers: from the other tab' }]);
  t.is(b.bot.received.length, 1, 'B\'s bot did not get A\'s message');

  // The adapter's channels carry the deployment's prefix; closing both hosts ends its subscriptions.
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  const channels = (await raw.pubsub('CHANNELS', '*')) as string[];
  t.true(channels.length > 0 && channels.every((name) => name.startsWith('deploy-a:socket.io')), JSON.stringify(channels));
  await a.server.close(0);
  await b.server.close(0);
  t.deepEqual(await raw.pubsub('CHANNELS', '*'), []);
  t.is(Number(await raw.call('PUBSUB', 'NUMPAT')), 0);
});

test('deployments with another prefix on the same Redis do not hear each other', async (t) => {
  const redis = await RedisServer.start(t);
  const a = await instance(t, redis, 'A', 'deploy-a:');
  const other = await instance(t, redis, 'O', 'deploy-b:');
  const onA = await connect(t, a);
  const sessionId = await session(onA);
  // The same session id (same secret) on the other deployment: it is its own room there.
  const onOther = await connect(t, other);
  t.is(await session(onOther, sessionId), sessionId);
  const heard: unknown[] = [];
  onOther.on('bot_uttered', (value: unknown) => heard.push(value));
  const answer = next(onA, 'bot_uttered');
  onA.emit('user_uttered', { message: 'hi', session_id: sessionId });
  t.deepEqual(await answer, { text: 'A answers: hi' });
  // Each deployment publishes and listens on channels under its own prefix only.
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  const channels = (await raw.pubsub('CHANNELS', '*')) as string[];
  t.true(channels.some((name) => name.startsWith('deploy-a:socket.io')) && channels.some((name) => name.startsWith('deploy-b:socket.io')), JSON.stringify(channels));
  t.true(channels.every((name) => name.startsWith('deploy-a:socket.io') || name.startsWith('deploy-b:socket.io')), JSON.stringify(channels));
  const own = next(onOther, 'bot_uttered');
  onOther.emit('user_uttered', { message: 'mine', session_id: sessionId });
  t.deepEqual(await own, { text: 'O answers: mine' });
  t.deepEqual(heard, [{ text: 'O answers: mine' }]);
});

test('Redis down: answers still reach the sockets on the instance, one warning, no crash; Redis back: across instances again', async (t) => {
  const redis = await RedisServer.start(t);
  const logs = captureLogs('info');
  const a = await instance(t, redis, 'A', undefined, logs.logger);
  const b = await instance(t, redis, 'B');
  const onA = await connect(t, a);
  const sessionId = await session(onA);
  const onB = await connect(t, b);
  t.is(await session(onB, sessionId), sessionId);

  await redis.stop();
  await until(() => logs.text().includes('Redis unreachable'), 'the store notices the outage');
  for (const text of ['one', 'two', 'three']) {
    const answer = next(onA, 'bot_uttered');
    onA.emit('user_uttered', { message: text, session_id: sessionId });
    t.deepEqual(await answer, { text: `A answers: ${text}` });
  }
  await until(() => logs.text().includes('socketio: Redis unreachable'), 'the channel warns that answers stay on this instance');
  t.is(logs.lines().filter((line) => String(line.msg).startsWith('socketio: Redis unreachable')).length, 1, 'one warning per outage, not per answer');

  // Redis comes back: both adapters reconnect and resubscribe by themselves, and answers cross instances again.
  await redis.restart();
  await until(() => logs.text().includes('socketio: Redis reachable again'), 'the channel sees Redis back');
  const raw = new Redis(redis.url);
  t.teardown(() => raw.quit());
  await until(async () => ((await raw.client('LIST')) as string).split('\n').filter((line) => / psub=1 /.test(line)).length === 2, 'both adapters subscribed again');
  const across = next(onB, 'bot_uttered');
  onA.emit('user_uttered', { message: 'back', session_id: sessionId });
  t.deepEqual(await across, { text: 'A answers: back' });
});
