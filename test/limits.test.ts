// Issue 13, findings 1 and 9: every queue a remote client can fill is bounded (a sender's backlog in messages and bytes,
// all queued bytes, the wait list for the bot), bot calls run at most `botConcurrency` at once, a rest message whose
// client hung up never reaches the bot, a trickled body is cut off, and connections past `maxConnections` are refused.
// Each attack runs against a real listening server; each test also checks the legitimate path still works.
import test, { type ExecutionContext } from 'ava';
import { connect, type Socket } from 'node:net';
import nock from 'nock';
import { io as connectClient } from 'socket.io-client';
import { BacklogFullError, createLogger, SwitchboardServer, type BotMessage, type InputChannel, type PipelineLimits, type UserMessage } from 'switchboard';
import { LogCapture } from 'switchboard/testing';
import RestInput from '../channels/rest/index.js';
import CallbackInput from '../channels/callback/index.js';
import SocketIOInput from '../channels/socketio/index.js';
import { parseCli } from '#src/cli.js';
import { ConfigError } from '#src/errors.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, capMs = 10_000): Promise<boolean> {
  const end = Date.now() + capMs;
  while (!condition()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/** A bot that holds every message until `release()`, and counts how many it runs at once. */
class GateBot {
  readonly received: UserMessage[] = [];
  running = 0;
  peak = 0;
  private gate!: Promise<void>;
  private open!: () => void;

  constructor() {
    this.close();
  }

  close(): void {
    this.gate = new Promise<void>((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open();
  }

  async handle(message: UserMessage): Promise<BotMessage[]> {
    this.received.push(message);
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    try {
      await this.gate;
    } finally {
      this.running--;
    }
    return [{ text: `echo: ${message.text}` }];
  }
}

/** The bytes the pipeline counts as queued (text length + metadata JSON, `{}` here), to see a message arrive or leave. */
const queuedBytes = (host: Host) => (host.server.pipeline as unknown as { queuedBytes: number }).queuedBytes;

interface Host {
  url: string;
  port: number;
  server: SwitchboardServer;
  bot: GateBot;
  logs: LogCapture;
  post(sender: string, message: string, init?: RequestInit): Promise<{ status: number; headers: Headers; json: unknown }>;
}

async function startHost(
  t: ExecutionContext,
  options: { limits?: PipelineLimits; requestTimeoutMs?: number; maxConnections?: number; channels?: InputChannel[] } = {},
): Promise<Host> {
  const bot = new GateBot();
  const logs = new LogCapture();
  const server = new SwitchboardServer({
    channels: options.channels ?? [RestInput.fromCredentials({})],
    bot,
    logger: createLogger({ level: 'debug', destination: logs }),
    limits: options.limits,
    requestTimeoutMs: options.requestTimeoutMs,
    maxConnections: options.maxConnections,
  });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(async () => {
    bot.release();
    await server.close(1_000);
  });
  const url = `http://127.0.0.1:${address.port}`;
  const post = async (sender: string, message: string, init: RequestInit = {}) => {
    const response = await fetch(`${url}/webhooks/rest/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sender, message }),
      ...init,
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, json: text ? (JSON.parse(text) as unknown) : undefined };
  };
  return { url, port: address.port, server, bot, logs, post };
}

test('a sender past its backlog gets 429 with Retry-After and nothing is queued; other senders go on; the queued ones are answered in order', async (t) => {
  const host = await startHost(t, { limits: { senderBacklog: 3 } });
  const queued = [1, 2, 3].map((i) => host.post('flood', `m${i}`));
  t.true(await until(() => host.server.pipeline.activeSenders === 1 && host.bot.received.length === 1));
  await until(() => queuedBytes(host) >= 6);
  const refused = await host.post('flood', 'm4');
  t.is(refused.status, 429);
  t.regex(refused.headers.get('retry-after') ?? '', /^\d+$/);
  t.true(Number(refused.headers.get('retry-after')) >= 1);
  t.deepEqual(refused.json, { error: 'too many messages from this sender are waiting; retry later' });
  // Another sender is not affected.
  const other = host.post('alice', 'hi');
  t.true(await until(() => host.bot.received.some((m) => m.senderId === 'alice')));
  host.bot.release();
  t.deepEqual((await other).json, [{ recipient_id: 'alice', text: 'echo: hi' }]);
  const answers = await Promise.all(queued);
  t.deepEqual(answers.map((a) => a.json), [1, 2, 3].map((i) => [{ recipient_id: 'flood', text: `echo: m${i}` }]));
  t.deepEqual(host.bot.received.filter((m) => m.senderId === 'flood').map((m) => m.text), ['m1', 'm2', 'm3']);
  // Once the backlog is worked off, the sender is served again.
  t.is((await host.post('flood', 'm5')).status, 200);
});

test('a sender past its backlog bytes gets 429: big messages cannot pile up under the count', async (t) => {
  const host = await startHost(t, { limits: { senderBacklogBytes: 10_000 } });
  const first = host.post('big', 'a'.repeat(6_000));
  t.true(await until(() => host.bot.received.length === 1));
  const refused = await host.post('big', 'b'.repeat(6_000));
  t.is(refused.status, 429);
  t.truthy(refused.headers.get('retry-after'));
  // A small one still fits.
  const small = host.post('big', 'c'.repeat(100));
  t.true(await until(() => host.server.pipeline.activeSenders === 1 && queuedBytes(host) > 6_000));
  host.bot.release();
  t.is((await first).status, 200);
  t.is((await small).status, 200);
  t.deepEqual(host.bot.received.map((m) => m.text[0]), ['a', 'c']);
});

test('all queued messages together are bounded (queueBytes): many senders cannot add up past it', async (t) => {
  const host = await startHost(t, { limits: { queueBytes: 20_000, botConcurrency: 1 } });
  const accepted = [1, 2, 3].map((i) => host.post(`s${i}`, String(i).repeat(6_000)));
  t.true(await until(() => host.server.pipeline.activeSenders === 3));
  const refused = await host.post('s4', 'x'.repeat(6_000));
  t.is(refused.status, 429);
  t.deepEqual(refused.json, { error: 'the bot is busy; retry later' });
  host.bot.release();
  for (const response of await Promise.all(accepted)) t.is(response.status, 200);
});

test('bot calls never exceed botConcurrency; past the wait list a new sender gets 429; order per sender holds', async (t) => {
  const host = await startHost(t, { limits: { botConcurrency: 2, botWait: 2 } });
  const pending = ['a', 'b', 'c', 'd'].map((s) => host.post(s, `${s}1`));
  t.true(await until(() => host.server.pipeline.activeSenders === 4 && host.bot.received.length === 2));
  const second = ['a', 'c'].map((s) => host.post(s, `${s}2`));
  await until(() => host.server.pipeline.activeSenders === 4 && queuedBytes(host) >= 12);
  await sleep(100);
  t.is(host.bot.running, 2);
  t.is(host.server.pipeline.waitingSenders, 2);
  const refused = await host.post('e', 'e1');
  t.is(refused.status, 429);
  t.truthy(refused.headers.get('retry-after'));
  host.bot.release();
  await Promise.all([...pending, ...second]);
  t.is(host.bot.peak, 2);
  t.is(host.server.pipeline.peakConcurrency, 2);
  for (const s of ['a', 'c']) t.deepEqual(host.bot.received.filter((m) => m.senderId === s).map((m) => m.text), [`${s}1`, `${s}2`]);
  t.is((await host.post('e', 'e1')).status, 200);
});

test('a webhook channel that acknowledges at once (callback) answers 429 with Retry-After when the sender is full', async (t) => {
  nock('https://answers.example').persist().post('/hook').reply(200);
  t.teardown(() => nock.cleanAll());
  const host = await startHost(t, {
    limits: { senderBacklog: 1 },
    channels: [CallbackInput.fromCredentials({ url: 'https://answers.example/hook' })],
  });
  const call = (message: string) =>
    fetch(`${host.url}/webhooks/callback/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 'u', message }) });
  t.is((await call('one')).status, 200);
  const refused = await call('two');
  t.is(refused.status, 429);
  t.truthy(refused.headers.get('retry-after'));
  host.bot.release();
  t.true(await until(() => host.server.pipeline.activeSenders === 0));
  t.deepEqual(host.bot.received.map((m) => m.text), ['one']);
});

test('socket.io: a message past the sender backlog is answered with an error event (retry_after), not queued', async (t) => {
  const host = await startHost(t, {
    limits: { senderBacklog: 2 },
    channels: [SocketIOInput.fromCredentials({ session_persistence: true })],
  });
  const socket = connectClient(host.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  t.teardown(() => socket.close());
  const errors: Array<Record<string, unknown>> = [];
  const answers: string[] = [];
  socket.on('error', (e: Record<string, unknown>) => errors.push(e));
  socket.on('bot_uttered', (m: { text: string }) => answers.push(m.text));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const session = await new Promise<string>((resolve) => socket.emit('session_request', {}, (id: string) => resolve(id)));
  for (const i of [1, 2, 3, 4]) socket.emit('user_uttered', { message: `m${i}`, session_id: session });
  t.true(await until(() => errors.length === 2));
  t.like(errors[0], { error: 'too many messages from this sender are waiting; retry later', event: 'user_uttered' });
  t.true(typeof errors[0]!.retry_after === 'number' && (errors[0]!.retry_after as number) >= 1);
  host.bot.release();
  t.true(await until(() => answers.length === 2));
  t.deepEqual(answers, ['echo: m1', 'echo: m2']);
  t.deepEqual(host.bot.received.map((m) => m.text), ['m1', 'm2']);
});

test('rest: a message whose client hung up before its turn is dropped, the bot never sees it; the next one is answered', async (t) => {
  const host = await startHost(t);
  const first = host.post('u', 'first');
  t.true(await until(() => host.bot.received.length === 1));
  // A raw connection (not fetch, which nock wraps in this file): the request is sent whole, then the client hangs up.
  const second = rawConnection(host.port);
  await second.connected;
  const body = JSON.stringify({ sender: 'u', message: 'abandoned' });
  second.socket.write(`POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  t.true(await until(() => queuedBytes(host) === 'first'.length + 'abandoned'.length + 4));
  second.socket.destroy();
  t.true(await until(() => queuedBytes(host) === 'first'.length + 2));
  host.bot.release();
  t.deepEqual((await first).json, [{ recipient_id: 'u', text: 'echo: first' }]);
  t.deepEqual((await host.post('u', 'third')).json, [{ recipient_id: 'u', text: 'echo: third' }]);
  t.deepEqual(host.bot.received.map((m) => m.text), ['first', 'third']);
});

test('BacklogFullError is public and carries its Retry-After', (t) => {
  const error = new BacklogFullError('full', 7);
  t.is(error.status, 429);
  t.is(error.retryAfter, 7);
  t.deepEqual(error.headers, { 'Retry-After': '7' });
});

/** A raw TCP connection; resolves when the server closes it, with what it answered. */
function rawConnection(port: number): { socket: Socket; closed: Promise<string>; connected: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(data)));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed, connected };
}

test('a client trickling its body byte by byte is cut off after the request timeout while /health keeps answering', async (t) => {
  const host = await startHost(t, { requestTimeoutMs: 2_000 });
  const { socket, closed, connected } = rawConnection(host.port);
  await connected;
  const started = Date.now();
  socket.write('POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n');
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  const trickle = setInterval(() => {
    if (!socket.destroyed) socket.write('a');
  }, 100);
  t.teardown(() => clearInterval(trickle));
  let healthChecks = 0;
  while (!isClosed && Date.now() - started < 20_000) {
    const health = await fetch(`${host.url}/health`);
    t.is(health.status, 200);
    healthChecks++;
    await sleep(200);
  }
  const answer = await closed;
  const elapsed = Date.now() - started;
  // The default check interval of Node (30 s) let it run ~54 s; generous bound for a loaded machine.
  t.true(elapsed < 12_000, `cut off after ${elapsed} ms`);
  t.true(elapsed >= 1_500, `cut off after ${elapsed} ms`);
  t.regex(answer, /^HTTP\/1\.1 408/);
  t.true(healthChecks > 0);
  t.is(host.bot.received.length, 0);
  // A normal request is still served.
  host.bot.release();
  t.is((await host.post('u', 'hello')).status, 200);
});

test('connections past maxConnections are refused; once one closes, requests are served again', async (t) => {
  const host = await startHost(t, { maxConnections: 3 });
  const held = [rawConnection(host.port), rawConnection(host.port), rawConnection(host.port)];
  await Promise.all(held.map((c) => c.connected));
  t.true(await until(() => (host.server.httpServer as unknown as { _connections: number })._connections === 3));
  const extra = rawConnection(host.port);
  extra.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  const answer = await extra.closed;
  t.is(answer, '', 'the extra connection is closed without an answer');
  held[0]!.socket.destroy();
  t.true(await until(() => (host.server.httpServer as unknown as { _connections: number })._connections === 2));
  const health = await fetch(`${host.url}/health`, { headers: { connection: 'close' } });
  t.is(health.status, 200);
  for (const c of held) c.socket.destroy();
});

test('CLI: the limit flags are parsed, and a bad value is a usage error naming the flag', (t) => {
  const parsed = parseCli([
    '--sender-backlog', '5', '--sender-backlog-bytes', '64kb', '--queue-bytes', '8mb', '--bot-concurrency', '4',
    '--bot-wait', '0', '--request-timeout', '3000', '--max-connections', '100',
  ], {});
  t.is(parsed.kind, 'run');
  if (parsed.kind !== 'run') return;
  t.deepEqual(parsed.options.limits, { senderBacklog: 5, senderBacklogBytes: 65_536, queueBytes: 8 * 1024 * 1024, botConcurrency: 4, botWait: 0 });
  t.is(parsed.options.requestTimeoutMs, 3000);
  t.is(parsed.options.maxConnections, 100);
  const defaults = parseCli([], {});
  if (defaults.kind === 'run') t.deepEqual(defaults.options.limits, {});
  for (const [flag, value] of [['--bot-concurrency', '0'], ['--sender-backlog', 'x'], ['--sender-backlog-bytes', 'lots'], ['--request-timeout', '10'], ['--max-connections', '0']] as const) {
    const error = t.throws(() => parseCli([flag, value], {}), { instanceOf: ConfigError });
    t.true(error!.message.startsWith(flag), error!.message);
  }
});

test('rest ?stream=true: a full sender gets a JSON 429 before any stream starts; the queued stream is answered', async (t) => {
  const host = await startHost(t, { limits: { senderBacklog: 1 } });
  const stream = (message: string) =>
    fetch(`${host.url}/webhooks/rest/webhook?stream=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 's', message }) });
  const first = stream('one');
  t.true(await until(() => host.bot.received.length === 1));
  const refused = await stream('two');
  t.is(refused.status, 429);
  t.regex(refused.headers.get('content-type') ?? '', /application\/json/);
  t.deepEqual(await refused.json(), { error: 'too many messages from this sender are waiting; retry later' });
  host.bot.release();
  const answered = await first;
  t.is(answered.status, 200);
  t.is((await answered.text()).trim(), JSON.stringify({ recipient_id: 's', text: 'echo: one' }));
  t.deepEqual(host.bot.received.map((m) => m.text), ['one']);
});

test('a connection that sends nothing, or headers byte by byte, is closed after the headers timeout', async (t) => {
  const host = await startHost(t, { requestTimeoutMs: 2_000 });
  const silent = rawConnection(host.port);
  const slowHeaders = rawConnection(host.port);
  await Promise.all([silent.connected, slowHeaders.connected]);
  const started = Date.now();
  const header = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(1_000);
  let i = 0;
  const trickle = setInterval(() => {
    if (!slowHeaders.socket.destroyed && i < header.length) slowHeaders.socket.write(header[i++]!);
  }, 50);
  t.teardown(() => clearInterval(trickle));
  await Promise.all([silent.closed, slowHeaders.closed]);
  const elapsed = Date.now() - started;
  t.true(elapsed < 12_000, `closed after ${elapsed} ms`);
  t.is((await fetch(`${host.url}/health`)).status, 200);
});
