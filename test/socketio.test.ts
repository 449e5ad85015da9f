import test, { type ExecutionContext } from 'ava';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as netConnect } from 'node:net';
import { SwitchboardServer, createLogger, type BotMessage, type PipelineLimits, type UserMessage } from 'switchboard';
import SocketIOInput, { CLOSE_GRACE_MS, SocketIOInput as Named, defaultSessionSecretFile, signSessionId, verifyJwt, verifySessionId } from '../channels/socketio/index.js';
import { LogCapture, ScriptedBot, startServer, type TestServer } from './harness.js';
import { connect, next, session, type ClientSocket } from './socketio-client.js';

interface Started {
  channel: SocketIOInput;
  host: TestServer;
  bot: ScriptedBot;
}

async function start(
  t: ExecutionContext,
  credentials: Record<string, unknown> = {},
  answers: ConstructorParameters<typeof ScriptedBot>[0] = (m: UserMessage) => [{ text: `you said: ${m.text}` }],
  limits?: PipelineLimits,
): Promise<Started> {
  const channel = SocketIOInput.fromCredentials(credentials);
  const bot = new ScriptedBot(answers);
  const host = await startServer(t, [channel], { bot, limits });
  return { channel, host, bot };
}

/** Collects `count` events (fails on timeout with what arrived). */
function collect(socket: ClientSocket, event: string, count: number, timeoutMs = 3_000): Promise<unknown[]> {
  const seen: unknown[] = [];
  return new Promise<unknown[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`expected ${count} ${event} events, got ${seen.length}: ${JSON.stringify(seen)}`));
    }, timeoutMs);
    function on(value: unknown) {
      seen.push(value);
      if (seen.length === count) {
        clearTimeout(timer);
        socket.off(event, on);
        resolve(seen);
      }
    }
    socket.on(event, on);
  });
}

/** Collects every `event` for `ms` milliseconds. */
async function quiet(socket: ClientSocket, event: string, ms = 150): Promise<unknown[]> {
  const seen: unknown[] = [];
  const on = (value: unknown) => seen.push(value);
  socket.on(event, on);
  await new Promise((resolve) => setTimeout(resolve, ms));
  socket.off(event, on);
  return seen;
}

/** A session id as the server signs them: `<sender id>.<HMAC-SHA256, base64url>`. */
const SIGNED_ID = /^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/;

/** The sender id in a signed session id (what the bot sees). */
function senderOf(sessionId: string): string {
  return sessionId.slice(0, sessionId.lastIndexOf('.'));
}


test('the default export is the channel class, named socketio, with a health route', async (t) => {
  t.is(SocketIOInput, Named);
  const { host } = await start(t);
  const health = await host.request('/webhooks/socketio/');
  t.is(health.status, 200);
  t.deepEqual(health.json, { status: 'ok' });
  const root = await host.request('/');
  t.deepEqual((root.json as { channels: string[] }).channels, ['socketio']);
});

test('without session_persistence: session_confirm is a bare signed id, the socket id is the sender', async (t) => {
  const { host, bot } = await start(t);
  const socket = await connect(t, host);
  const fresh = await session(socket);
  t.regex(fresh, SIGNED_ID, 'a new uuid4 hex, signed, when no id is given');
  t.is(await session(socket, fresh), fresh, 'an id this server signed is confirmed as it is');
  const chosen = await session(socket, 'my-session');
  t.regex(chosen, SIGNED_ID, 'an id the server did not sign gets a new one');
  t.not(senderOf(chosen), senderOf(fresh));

  const answer = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: '  hello  ', session_id: 'my-session' });
  t.deepEqual(await answer, { text: 'you said: hello' });
  t.is(bot.received.length, 1);
  t.like(bot.received[0], { text: 'hello', senderId: socket.id, inputChannel: 'socketio' });

  // A second socket of the "same" session gets nothing: without persistence the socket is the conversation.
  const other = await connect(t, host);
  await session(other, 'my-session');
  const elsewhere = quiet(other, 'bot_uttered');
  const again = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'again', session_id: 'my-session' });
  await again;
  t.deepEqual(await elsewhere, []);
});

test('with session_persistence: the session id is the sender, every socket of the session gets the answers, a reconnect keeps the sender', async (t) => {
  const { host, bot } = await start(t, { session_persistence: true });
  const first = await connect(t, host);
  const sessionId = await session(first);
  const second = await connect(t, host);
  t.is(await session(second, sessionId), sessionId);
  const stranger = await connect(t, host);
  await session(stranger);

  const toFirst = next(first, 'bot_uttered');
  const toSecond = next(second, 'bot_uttered');
  const toStranger = quiet(stranger, 'bot_uttered', 300);
  first.emit('user_uttered', { message: 'hi', session_id: sessionId });
  t.deepEqual(await toFirst, { text: 'you said: hi' });
  t.deepEqual(await toSecond, { text: 'you said: hi' });
  t.deepEqual(await toStranger, [], 'other sessions hear nothing');
  t.regex(sessionId, SIGNED_ID);
  t.is(bot.received[0]?.senderId, senderOf(sessionId), 'the bot sees the sender id, without the signature');

  // The page reloads: a new socket asks for the stored session and carries on the same conversation.
  first.disconnect();
  second.disconnect();
  const again = await connect(t, host);
  t.is(await session(again, sessionId), sessionId);
  const answer = next(again, 'bot_uttered');
  again.emit('user_uttered', { message: 'still me', session_id: sessionId });
  t.deepEqual(await answer, { text: 'you said: still me' });
  t.is(bot.received[1]?.senderId, senderOf(sessionId));
  t.not(again.id, sessionId);

  // A client that sends before its session_request (a reconnect racing it) is joined to the session and answered.
  const eager = await connect(t, host);
  const eagerAnswer = next(eager, 'bot_uttered');
  eager.emit('user_uttered', { message: 'eager', session_id: sessionId });
  t.deepEqual(await eagerAnswer, { text: 'you said: eager' });
  t.is(bot.received[2]?.senderId, senderOf(sessionId));
});

test('every answer kind is one event per answer part, in Rasa\'s shapes and in order', async (t) => {
  const element = { title: 'Card', subtitle: 'sub', image_url: 'https://example.com/c.png', buttons: [{ title: 'Go', payload: '/go' }] };
  const answers: BotMessage[] = [
    { text: 'first\n\nsecond' },
    { text: 'Pick one', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'no payload' }] },
    { text: 'one\n\ntwo', quick_replies: [{ title: 'yes', payload: '/affirm' }] },
    { image: 'https://example.com/cat.png' },
    { elements: [element, { title: 'Second' }] },
    { attachment: { type: 'video', payload: { src: 'https://example.com/v.mp4' } } },
    { custom: { data: { kind: 'payload-only' }, other: 'ignored' } },
    { custom: { whole: 'object' } },
    { text: 'caption', image: 'https://example.com/after.png' },
  ];
  const { host } = await start(t, {}, answers);
  const socket = await connect(t, host);
  await session(socket);
  const events = collect(socket, 'bot_uttered', 13);
  socket.emit('user_uttered', { message: 'show me everything' });
  t.deepEqual(await events, [
    { text: 'first' },
    { text: 'second' },
    { text: 'Pick one', quick_replies: [{ content_type: 'text', title: 'great', payload: '/mood_great' }, { content_type: 'text', title: 'no payload', payload: 'no payload' }] },
    { text: 'one', quick_replies: [] },
    { text: 'two', quick_replies: [{ content_type: 'text', title: 'yes', payload: '/affirm' }] },
    { attachment: { type: 'image', payload: { src: 'https://example.com/cat.png' } } },
    { attachment: { type: 'template', payload: { template_type: 'generic', elements: element } } },
    { attachment: { type: 'template', payload: { template_type: 'generic', elements: { title: 'Second' } } } },
    { attachment: { type: 'video', payload: { src: 'https://example.com/v.mp4' } } },
    { kind: 'payload-only' },
    { whole: 'object' },
    { text: 'caption' },
    { attachment: { type: 'image', payload: { src: 'https://example.com/after.png' } } },
  ]);
  t.deepEqual(await quiet(socket, 'bot_uttered'), [], 'nothing more');
});

test('a text is split at blank lines as Rasa splits it: each part keeps its own whitespace, with or without buttons', async (t) => {
  const { host } = await start(t, {}, [
    { text: '  a \n\n b \n\nc  ' },
    { text: 'x \n\n y ', buttons: [{ title: 'ok', payload: '/ok' }] },
  ]);
  const socket = await connect(t, host);
  await session(socket);
  const events = collect(socket, 'bot_uttered', 5);
  socket.emit('user_uttered', { message: 'split' });
  t.deepEqual(await events, [
    { text: 'a ' },
    { text: ' b ' },
    { text: 'c' },
    { text: 'x ', quick_replies: [] },
    { text: ' y', quick_replies: [{ content_type: 'text', title: 'ok', payload: '/ok' }] },
  ]);
});

test('custom event names from the credentials', async (t) => {
  const { host, bot } = await start(t, { user_message_evt: 'user_says', bot_message_evt: 'bot_says' });
  const socket = await connect(t, host);
  await session(socket);
  const wrongName = quiet(socket, 'bot_uttered', 300);
  const answer = next(socket, 'bot_says');
  socket.emit('user_uttered', { message: 'ignored: not the configured event' });
  socket.emit('user_says', { message: 'hello' });
  t.deepEqual(await answer, { text: 'you said: hello' });
  t.deepEqual(await wrongName, []);
  t.is(bot.received.length, 1);
  t.is(bot.received[0]?.text, 'hello');
});

test('reserved event names are refused in the credentials', (t) => {
  t.throws(() => SocketIOInput.fromCredentials({ bot_message_evt: 'connect' }), { message: /bot_message_evt/ });
  t.throws(() => SocketIOInput.fromCredentials({ user_message_evt: 'session_request' }), { message: /user_message_evt/ });
});

test('bad events get an error event (and the ack) and never reach the bot; later good events are answered', async (t) => {
  const { host, bot } = await start(t, { session_persistence: true });
  const socket = await connect(t, host);
  const sessionId = await session(socket);
  const bad: unknown[] = ['just a string', 42, null, [1, 2], {}, { message: 7, session_id: sessionId }, { message: '   ', session_id: sessionId }, { message: 'no session' }, { message: 'bad session', session_id: { x: 1 } }];
  const errors = collect(socket, 'error', bad.length);
  for (const data of bad) socket.emit('user_uttered', data);
  const received = (await errors) as Array<{ error: string; event: string }>;
  t.true(received.every((e) => e.event === 'user_uttered' && typeof e.error === 'string' && e.error !== ''));
  t.regex(received[7]!.error, /session_id is required/);
  const acked = await socket.timeout(2_000).emitWithAck('user_uttered', { nomessage: true });
  t.regex((acked as { error: string }).error, /message must be a non-empty string/);
  const badSession = next<{ error: string }>(socket, 'error');
  socket.emit('session_request', { session_id: 'x'.repeat(300) });
  t.regex((await badSession).error, /session_id must be a string/);

  const answer = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'good', session_id: sessionId });
  t.deepEqual(await answer, { text: 'you said: good' });
  t.deepEqual(bot.received.map((m) => m.text), ['good']);
  t.regex(host.logs.text, /bad event ignored/);
});

test('an oversized event closes that connection; the server carries on', async (t) => {
  const { host, bot } = await start(t, { max_payload_bytes: 2048 });
  const socket = await connect(t, host);
  await session(socket);
  const closed = next<string>(socket, 'disconnect');
  socket.emit('user_uttered', { message: 'x'.repeat(10_000) });
  t.is(await closed, 'transport close');
  const other = await connect(t, host);
  await session(other);
  const answer = next(other, 'bot_uttered');
  other.emit('user_uttered', { message: 'small' });
  t.deepEqual(await answer, { text: 'you said: small' });
  t.deepEqual(bot.received.map((m) => m.text), ['small']);
});

test('metadata: customData (object or JSON string), Rasa\'s metadata field, a custom metadata_key', async (t) => {
  const { host, bot } = await start(t);
  const socket = await connect(t, host);
  const answers = collect(socket, 'bot_uttered', 4);
  socket.emit('user_uttered', { message: 'a', customData: { language: 'de' } });
  socket.emit('user_uttered', { message: 'b', customData: '{"page":"/pricing"}' });
  socket.emit('user_uttered', { message: 'c', metadata: { from: 'rasa' } });
  socket.emit('user_uttered', { message: 'd', customData: 'not json' });
  await answers;
  t.deepEqual(bot.received.map((m) => m.metadata), [{ language: 'de' }, { page: '/pricing' }, { from: 'rasa' }, {}]);

  const custom = await start(t, { metadata_key: 'extra' });
  const s2 = await connect(t, custom.host);
  const two = collect(s2, 'bot_uttered', 2);
  s2.emit('user_uttered', { message: 'a', extra: { x: 1 } });
  s2.emit('user_uttered', { message: 'b', customData: { y: 2 } });
  await two;
  t.deepEqual(custom.bot.received.map((m) => m.metadata), [{ x: 1 }, {}]);
});

test('a namespace and a socketio_path from the credentials', async (t) => {
  const { host, bot } = await start(t, { namespace: 'chat', socketio_path: '/chat-io' });
  const socket = await connect(t, host, { namespace: '/chat', path: '/chat-io' });
  await session(socket);
  const answer = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'in the namespace' });
  t.deepEqual(await answer, { text: 'you said: in the namespace' });
  t.is(bot.received.length, 1);
  // The root namespace has no handlers.
  const root = await connect(t, host, { path: '/chat-io' });
  root.emit('user_uttered', { message: 'nobody listens' });
  t.deepEqual(await quiet(root, 'bot_uttered'), []);
  t.is(bot.received.length, 1);
  const client = await host.request('/chat-io/socket.io.min.js');
  t.is(client.status, 200);
});

test('cors_allowed_origins refuses other browser origins, also over WebSocket', async (t) => {
  const { host } = await start(t, { cors_allowed_origins: ['https://shop.example'] });
  await t.notThrowsAsync(connect(t, host, { extraHeaders: { origin: 'https://shop.example' } }));
  await t.notThrowsAsync(connect(t, host), 'no Origin header: not a browser');
  await t.throwsAsync(connect(t, host, { extraHeaders: { origin: 'https://evil.example' } }));
});

function hs256(payload: Record<string, unknown>, key: string): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const data = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}`;
  return `${data}.${createHmac('sha256', key).update(data).digest('base64url')}`;
}

test('jwt_key: a connection needs a valid auth.token', async (t) => {
  const key = 'jwt-secret-for-tests';
  const { host, channel } = await start(t, { jwt_key: key });
  const now = Math.floor(Date.now() / 1000);
  await t.throwsAsync(connect(t, host), { message: /not authorized/ });
  await t.throwsAsync(connect(t, host, { auth: { token: hs256({ sub: 'u' }, 'wrong key') } }), { message: /not authorized/ });
  await t.throwsAsync(connect(t, host, { auth: { token: hs256({ sub: 'u', exp: now - 10 }, key) } }), { message: /not authorized/ });
  const socket = await connect(t, host, { auth: { token: `Bearer ${hs256({ sub: 'u', exp: now + 60 }, key)}` } });
  const answer = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'authorized' });
  t.deepEqual(await answer, { text: 'you said: authorized' });
  t.false(JSON.stringify(host.logs.lines).includes(key), 'the key is never logged');
  t.true(channel.unknownKeys.length === 0);
});

test('verifyJwt checks the algorithm, signature and times; exp is required; aud, iss and the session claim when asked', async (t) => {
  const token = hs256({ sub: 'u', nbf: 2_000, exp: 4_000 }, 'k');
  t.like((await verifyJwt(token, 'k', 'HS256', 3_000_000)) as object, { sub: 'u' });
  t.is(await verifyJwt(token, 'k', 'HS256', 1_000_000), 'token not yet valid');
  t.is(await verifyJwt(hs256({ sub: 'u', exp: 2_000 }, 'k'), 'k', 'HS256', 3_000_000), 'token expired');
  t.is(await verifyJwt(token, 'k', 'HS512', 3_000_000), 'algorithm not allowed (expected HS512)');
  t.is(await verifyJwt('a.b', 'k', 'HS256'), 'malformed JWT');
  t.is(await verifyJwt(token.slice(0, -2) + 'xx', 'k', 'HS256', 3_000_000), 'bad signature');
  t.is(await verifyJwt(token, 'other key', 'HS256', 3_000_000), 'bad signature');
  t.is(await verifyJwt(hs256({ sub: 'u' }, 'k'), 'k', 'HS256', 3_000_000), 'claim exp missing', 'a token that never expires is refused');
  const full = hs256({ sub: 'u', exp: 4_000, aud: 'shop', iss: 'https://id.example' }, 'k');
  t.like((await verifyJwt(full, 'k', 'HS256', 3_000_000, { audience: 'shop', issuer: 'https://id.example', claim: 'sub' })) as object, { sub: 'u' });
  t.is(await verifyJwt(full, 'k', 'HS256', 3_000_000, { audience: 'admin' }), 'claim aud not valid');
  t.is(await verifyJwt(full, 'k', 'HS256', 3_000_000, { issuer: 'https://other.example' }), 'claim iss not valid');
  t.is(await verifyJwt(token, 'k', 'HS256', 3_000_000, { audience: 'shop' }), 'claim aud missing');
  t.is(await verifyJwt(full, 'k', 'HS256', 3_000_000, { claim: 'user_id' }), 'claim user_id missing');
});

test('the web chat page is served by the channel with a strict CSP; webchat: false turns it off', async (t) => {
  const { host } = await start(t, { bot_message_evt: 'answer' });
  const page = await host.request('/webhooks/socketio/webchat');
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /^text\/html/);
  t.regex(page.text, /<meta name="switchboard-webchat" content="\{&quot;path&quot;:&quot;\/socket.io&quot;/);
  t.regex(page.text, /&quot;botMessageEvt&quot;:&quot;answer&quot;/);
  t.regex(page.text, /<script src="\/socket.io\/socket.io.min.js">/);
  t.regex(page.text, /aria-live="polite"/);
  t.regex(page.text, /<label for="message"/);
  const csp = page.headers.get('content-security-policy') ?? '';
  t.regex(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
  t.false(csp.includes('unsafe-inline'));
  const client = await host.request('/socket.io/socket.io.min.js');
  t.is(client.status, 200);
  t.regex(client.headers.get('content-type') ?? '', /javascript/);

  const off = await start(t, { webchat: false });
  t.is((await off.host.request('/webhooks/socketio/webchat')).status, 404);

  const channel = SocketIOInput.fromCredentials({});
  channel.serveWebchat = false;
  const cli = await startServer(t, [channel]);
  t.is((await cli.request('/webhooks/socketio/webchat')).status, 404, 'serveWebchat = false (--no-webchat) wins');
});

/** A host with one socketio channel on this port of 127.0.0.1 (a restarted server), closed in the teardown. */
async function hostOn(t: ExecutionContext, port: number, credentials: Record<string, unknown>, bot: ScriptedBot): Promise<SwitchboardServer> {
  const logs = new LogCapture();
  const server = new SwitchboardServer({ channels: [SocketIOInput.fromCredentials(credentials)], bot, logger: createLogger({ level: 'debug', destination: logs }) });
  t.teardown(() => server.close(100));
  await server.listen(port, '127.0.0.1');
  return server;
}

test('closing the host closes the transport without a disconnect packet: the client reconnects to the restarted server and the conversation goes on', async (t) => {
  const { host, bot } = await start(t, { session_persistence: true });
  // As a browser's client: reconnection on (quick here), polling first then WebSocket.
  const socket = await connect(t, host, { transports: ['polling', 'websocket'], reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  const sessionId = await session(socket);
  await new Promise<void>((resolve) => (socket.io.engine.transport.name === 'websocket' ? resolve() : socket.io.engine.once('upgrade', () => resolve())));
  const first = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'before', session_id: sessionId });
  t.deepEqual(await first, { text: 'you said: before' });

  const reason = next<string>(socket, 'disconnect');
  const started = Date.now();
  await host.server.close(100);
  t.true(Date.now() - started < 1_000, `the host closed in ${Date.now() - started} ms`);
  t.is(await reason, 'transport close', 'not "io server disconnect", after which clients stay away');
  t.false(host.server.httpServer.listening);

  const port = Number(new URL(host.url).port);
  const again = new ScriptedBot((m: UserMessage) => [{ text: `restarted, you said: ${m.text}` }]);
  const reconnected = next(socket, 'connect', 5_000);
  await hostOn(t, port, { session_persistence: true }, again);
  await reconnected;
  t.is(await session(socket, sessionId), sessionId);
  const answer = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'after', session_id: sessionId });
  t.deepEqual(await answer, { text: 'restarted, you said: after' });
  t.deepEqual(bot.received.map((m) => [m.senderId, m.text]), [[senderOf(sessionId), 'before']]);
  t.deepEqual(again.received.map((m) => [m.senderId, m.text]), [[senderOf(sessionId), 'after']], 'the restarted server (same secret file) resumes the session');
});

test('closing the host delivers the answers in flight before closing the connection', async (t) => {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const { host, bot } = await start(t, {}, async (m: UserMessage) => {
    await released;
    return [{ text: `late answer to ${m.text}` }, { text: 'and one more' }];
  });
  const socket = await connect(t, host);
  const seen: unknown[] = [];
  socket.on('bot_uttered', (message: unknown) => seen.push(message));
  const closedBy = next<string>(socket, 'disconnect');
  socket.on('disconnect', (why: string) => seen.push(`disconnect: ${why}`));
  socket.emit('user_uttered', { message: 'slow' });
  await bot.waitFor(1);
  const closing = host.server.close(2_000);
  setTimeout(release, 100);
  await closing;
  await closedBy;
  t.deepEqual(seen, [{ text: 'late answer to slow' }, { text: 'and one more' }, 'disconnect: transport close']);
});

test('shutdown does not wait for a WebSocket client that never answers the closing handshake', async (t) => {
  const { host } = await start(t);
  const port = Number(new URL(host.url).port);
  // A raw WebSocket client: it opens Engine.IO and joins the namespace, then never writes again (no close frame).
  const raw = netConnect(port, '127.0.0.1');
  t.teardown(() => raw.destroy());
  raw.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let received = '';
  raw.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const rawClosed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
  while (!received.includes('"sid"')) await new Promise((resolve) => setTimeout(resolve, 10));
  const mask = Buffer.from([1, 2, 3, 4]);
  const connectPacket = Buffer.from('40').map((byte, i) => byte ^ mask[i % 4]!);
  raw.write(Buffer.concat([Buffer.from([0x81, 0x80 | connectPacket.length]), mask, connectPacket]));
  while (!received.includes('40{"sid"')) await new Promise((resolve) => setTimeout(resolve, 10));

  const started = Date.now();
  await host.server.close(100);
  const took = Date.now() - started;
  await rawClosed;
  // ws would wait 30 s for the peer's close frame.
  t.true(took < CLOSE_GRACE_MS + 1_000, `the host closed in ${took} ms`);
  t.true(took >= CLOSE_GRACE_MS - 50, `the client had ${took} ms to answer`);
});

test('session takeover: an id the server did not sign (a leaked sender id, a guess, a forged signature) starts a new session; the owner carries on', async (t) => {
  const { host, bot, channel } = await start(t, { session_persistence: true });
  const alice = await connect(t, host);
  const aliceId = await session(alice);
  const hello = next(alice, 'bot_uttered');
  alice.emit('user_uttered', { message: 'my secret', session_id: aliceId });
  await hello;
  const leaked = bot.received[0]!.senderId;
  t.is(leaked, senderOf(aliceId), 'the bot sees the sender id, without the signature');
  t.false(host.logs.text.includes(aliceId.split('.')[1]!), 'the signature is never logged');

  // From another page of any origin: the leaked sender id, a forged signature, Alice's signature on another id.
  const mallory = await connect(t, host);
  const aliceHears = quiet(alice, 'bot_uttered', 500);
  for (const attempt of [leaked, `${leaked}.${'A'.repeat(43)}`, `${leaked}.`, `${'0'.repeat(32)}.${aliceId.split('.')[1]}`]) {
    const given = await session(mallory, attempt);
    t.regex(given, SIGNED_ID);
    t.not(senderOf(given), leaked, `${attempt} does not resume Alice's session`);
  }
  const refused = next<{ error: string }>(mallory, 'error');
  mallory.emit('user_uttered', { message: 'injected', session_id: leaked });
  t.regex((await refused).error, /not issued by this server/);
  const forged = next<{ error: string }>(mallory, 'error');
  mallory.emit('user_uttered', { message: 'injected', session_id: `${leaked}.${'A'.repeat(43)}` });
  t.regex((await forged).error, /not issued by this server/);
  t.deepEqual(await aliceHears, [], 'Alice sees nothing of it');
  t.false(bot.received.some((m) => m.text === 'injected'), 'nothing reached the bot under Alice\'s sender');
  t.deepEqual(bot.received.map((m) => m.senderId), [leaked]);

  // Another server with another secret cannot resume it either; Alice's own reconnect does.
  const other = await start(t, { session_persistence: true, session_secret: 'another-server-secret-0123456789' });
  const elsewhere = await connect(t, other.host);
  t.not(senderOf(await session(elsewhere, aliceId)), leaked);
  const back = await connect(t, host);
  t.is(await session(back, aliceId), aliceId);
  const answer = next(back, 'bot_uttered');
  back.emit('user_uttered', { message: 'still me', session_id: aliceId });
  t.deepEqual(await answer, { text: 'you said: still me' });
  t.is(bot.received.at(-1)?.senderId, leaked);
  t.is(channel.unknownKeys.length, 0);
});

test('session_secret: servers sharing it resume each other\'s sessions; a blank or short one is refused', async (t) => {
  const session_secret = 'shared-secret-of-two-instances-42';
  const a = await start(t, { session_persistence: true, session_secret });
  const b = await start(t, { session_persistence: true, session_secret });
  const first = await connect(t, a.host);
  const id = await session(first);
  const second = await connect(t, b.host);
  t.is(await session(second, id), id);
  const answer = next(second, 'bot_uttered');
  second.emit('user_uttered', { message: 'on b', session_id: id });
  await answer;
  t.is(b.bot.received[0]?.senderId, senderOf(id));
  t.false(JSON.stringify(a.host.logs.lines).includes(session_secret) || JSON.stringify(b.host.logs.lines).includes(session_secret));
  t.throws(() => SocketIOInput.fromCredentials({ session_secret: '                    ' }), { message: /session_secret/ });
  t.throws(() => SocketIOInput.fromCredentials({ session_secret: 'short' }), { message: /session_secret/ });
});

test('a socket is in at most one session room: 200 session_requests leave one room behind, and the old session hears nothing', async (t) => {
  const { host, channel } = await start(t, { session_persistence: true, max_events_per_second: 1000 });
  const socket = await connect(t, host);
  const first = await session(socket);
  const confirms = collect(socket, 'session_confirm', 200, 10_000);
  for (let i = 0; i < 200; i++) socket.emit('session_request', {});
  const last = (await confirms).at(-1) as string;
  const serverSide = channel.server!.of('/').sockets.get(socket.id ?? '')!;
  t.deepEqual([...serverSide.rooms].sort(), [serverSide.id, senderOf(last)].sort());
  t.true(channel.server!.of('/').adapter.rooms.size <= 2, `rooms: ${channel.server!.of('/').adapter.rooms.size}`);
  // Back to the first session by sending into it: the socket moves, it is not in both.
  const answer = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'back', session_id: first });
  t.deepEqual(await answer, { text: 'you said: back' });
  t.deepEqual([...serverSide.rooms].sort(), [serverSide.id, senderOf(first)].sort());
});

test('cors_allowed_origins defaults to the server\'s own origin: other sites are refused, its own pages and non-browsers pass', async (t) => {
  const { host } = await start(t);
  const own = new URL(host.url).origin;
  await t.throwsAsync(connect(t, host, { extraHeaders: { origin: 'https://evil.example' } }), undefined, 'WebSocket from another site');
  await t.throwsAsync(connect(t, host, { transports: ['polling'], extraHeaders: { origin: 'https://evil.example' } }), undefined, 'polling from another site');
  await t.throwsAsync(connect(t, host, { extraHeaders: { origin: 'null' } }), undefined, 'a sandboxed page');
  const polling = await host.request(`/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'https://evil.example' } });
  t.is(polling.status, 403);
  t.is(polling.headers.get('access-control-allow-origin'), null);
  await t.notThrowsAsync(connect(t, host, { extraHeaders: { origin: own } }), 'the page this server serves (/webchat)');
  await t.notThrowsAsync(connect(t, host), 'no Origin header: not a browser');
  await t.notThrowsAsync(connect(t, host, { extraHeaders: { origin: 'https://bot.example', 'x-forwarded-host': 'bot.example' } }), 'behind a reverse proxy that rewrites Host');
  await t.throwsAsync(connect(t, host, { extraHeaders: { origin: 'https://evil.example', 'x-forwarded-host': 'bot.example' } }));

  // With a list, the listed sites and the server's own pages.
  const listed = await start(t, { cors_allowed_origins: ['https://shop.example'] });
  await t.notThrowsAsync(connect(t, listed.host, { extraHeaders: { origin: new URL(listed.host.url).origin } }));
  await t.notThrowsAsync(connect(t, listed.host, { extraHeaders: { origin: 'https://shop.example' } }));
  await t.throwsAsync(connect(t, listed.host, { extraHeaders: { origin: 'https://evil.example' } }));
  const star = await start(t, { cors_allowed_origins: '*' });
  await t.notThrowsAsync(connect(t, star.host, { extraHeaders: { origin: 'https://anyone.example' } }), '* is still possible, when asked for');
});

const JWT_KEY = 'jwt-secret-for-session-tests';
const token = (claims: Record<string, unknown>, seconds = 60): string => hs256({ exp: Math.floor(Date.now() / 1000) + seconds, ...claims }, JWT_KEY);

test('jwt_key: a session is bound to the token\'s sub: bob\'s token cannot join alice\'s session, alice\'s new token can', async (t) => {
  const { host, bot } = await start(t, { session_persistence: true, jwt_key: JWT_KEY });
  const alice = await connect(t, host, { auth: { token: token({ sub: 'alice' }) } });
  const aliceId = await session(alice);
  const first = next(alice, 'bot_uttered');
  alice.emit('user_uttered', { message: 'hi', session_id: aliceId });
  await first;

  const bob = await connect(t, host, { auth: { token: token({ sub: 'bob' }) } });
  const aliceHears = quiet(alice, 'bot_uttered', 500);
  const bobs = await session(bob, aliceId);
  t.not(senderOf(bobs), senderOf(aliceId), 'bob gets a session of his own');
  const refused = next<{ error: string }>(bob, 'error');
  bob.emit('user_uttered', { message: 'as alice', session_id: aliceId });
  t.regex((await refused).error, /not issued by this server/);
  t.deepEqual(await aliceHears, []);
  t.deepEqual(bot.received.map((m) => m.text), ['hi']);

  // A token without exp, or with no sub, is refused at connect.
  await t.throwsAsync(connect(t, host, { auth: { token: hs256({ sub: 'alice' }, JWT_KEY) } }), { message: /not authorized/ });
  await t.throwsAsync(connect(t, host, { auth: { token: token({}) } }), { message: /not authorized/ });

  const again = await connect(t, host, { auth: { token: token({ sub: 'alice' }, 120) } });
  t.is(await session(again, aliceId), aliceId);
  const answer = next(again, 'bot_uttered');
  again.emit('user_uttered', { message: 'me again', session_id: aliceId });
  t.deepEqual(await answer, { text: 'you said: me again' });
  t.is(bot.received.at(-1)?.senderId, senderOf(aliceId));
});

test('jwt_key: jwt_audience, jwt_issuer and jwt_session_claim are required when set', async (t) => {
  const { host } = await start(t, { session_persistence: true, jwt_key: JWT_KEY, jwt_audience: 'shop', jwt_issuer: 'https://id.example', jwt_session_claim: 'user_id' });
  const good = { aud: 'shop', iss: 'https://id.example', user_id: 'alice' };
  await t.throwsAsync(connect(t, host, { auth: { token: token({ ...good, aud: 'admin' }) } }), { message: /not authorized/ });
  await t.throwsAsync(connect(t, host, { auth: { token: token({ ...good, iss: 'https://evil.example' }) } }), { message: /not authorized/ });
  await t.throwsAsync(connect(t, host, { auth: { token: token({ aud: 'shop', iss: 'https://id.example', sub: 'alice' }) } }), { message: /not authorized/ });
  const alice = await connect(t, host, { auth: { token: token(good) } });
  const id = await session(alice);
  // Same sub, another user_id: another user.
  const other = await connect(t, host, { auth: { token: token({ ...good, user_id: 'bob', sub: 'alice' }) } });
  t.not(senderOf(await session(other, id)), senderOf(id));
  const same = await connect(t, host, { auth: { token: token(good) } });
  t.is(await session(same, id), id);
});

test('jwt_key: the connection is closed when its token expires', async (t) => {
  const { host } = await start(t, { jwt_key: JWT_KEY });
  const socket = await connect(t, host, { auth: { token: token({ sub: 'alice' }, 2) } });
  const told = next<{ error: string }>(socket, 'error', 15_000);
  const closed = next<string>(socket, 'disconnect', 15_000);
  t.deepEqual(await told, { error: 'token expired', event: 'connect' });
  t.is(await closed, 'io server disconnect', 'on purpose: the client does not reconnect with the expired token');
  const longer = await connect(t, host, { auth: { token: token({ sub: 'alice' }, 600) } });
  const fine = next(longer, 'bot_uttered');
  longer.emit('user_uttered', { message: 'new token' });
  t.deepEqual(await fine, { text: 'you said: new token' });
});

// Serial: ava runs it before the others, so the flood does not slow down their assertions.
test.serial('event rate limit: a flood of 3,000 user_uttered from one socket reaches the bot at most at the limit, the flooder is cut off, others are answered', async (t) => {
  // A sender backlog as large as the flood: this test is about the event rate limit alone (the backlog has its own).
  const { host, bot } = await start(t, {}, undefined, { senderBacklog: 3_000 });
  const flooder = await connect(t, host);
  const errors: Array<{ error: string }> = [];
  flooder.on('error', (e: { error: string }) => errors.push(e));
  const cut = next<string>(flooder, 'disconnect', 20_000);
  const started = Date.now();
  for (let i = 0; i < 3_000; i++) flooder.emit('user_uttered', { message: `flood ${i}`, customData: { pad: 'x'.repeat(1_000) } });
  t.is(await cut, 'io server disconnect');
  const seconds = (Date.now() - started) / 1000;
  await bot.waitFor(40, 20_000);
  t.true(errors.length >= 1, 'the client is told');
  t.regex(errors[0]!.error, /too many events/);

  const health = await host.request('/webhooks/socketio/');
  t.is(health.status, 200);
  const other = await connect(t, host);
  const answer = next(other, 'bot_uttered', 30_000);
  other.emit('user_uttered', { message: 'legit' });
  t.deepEqual(await answer, { text: 'you said: legit' });
  const fromFlooder = bot.received.filter((m) => m.text.startsWith('flood')).length;
  t.true(fromFlooder >= 40 && fromFlooder <= 40 + Math.ceil(20 * seconds) + 1, `${fromFlooder} of 3,000 reached the bot; the flooder was cut off after ${seconds} s`);
  t.true(errors.length <= 41 + fromFlooder, `${errors.length} error events`);
  t.log(`${fromFlooder} of 3,000 reached the bot; cut off after ${seconds} s with ${errors.length} error events`);
  t.regex(host.logs.text, /kept sending too many events/);
});

test('event rate limit: a client within it is not limited; max_events_per_second sets it', async (t) => {
  const { host, bot } = await start(t, { max_events_per_second: 2 });
  const socket = await connect(t, host);
  const errors = quiet(socket, 'error', 1_000);
  const answers = collect(socket, 'bot_uttered', 4, 5_000);
  for (let i = 0; i < 4; i++) socket.emit('user_uttered', { message: `m${i}` });
  t.is((await answers).length, 4, 'a burst of twice the rate passes');
  t.deepEqual(await errors, []);
  // Past the burst (the bucket refills one event per 500 ms): some of these are refused, with the reason in the ack.
  const acks = (await Promise.all(Array.from({ length: 4 }, (_, i) => socket.timeout(5_000).emitWithAck('user_uttered', { message: `more ${i}` })))) as Array<{ error?: string }>;
  const refused = acks.filter((a) => a.error !== undefined);
  t.true(refused.length >= 1, JSON.stringify(acks));
  t.regex(refused[0]!.error!, /too many events \(at most 2 a second\)/);
  t.is(bot.received.length, 4 + acks.length - refused.length, 'refused events never reach the bot');
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const later = next(socket, 'bot_uttered');
  socket.emit('user_uttered', { message: 'after a pause' });
  t.deepEqual(await later, { text: 'you said: after a pause' });
});

test('signSessionId / verifySessionId: only the same secret and binding verify', (t) => {
  const key = new TextEncoder().encode('k'.repeat(32));
  const id = signSessionId('abc', 'alice', key);
  t.is(verifySessionId(id, 'alice', key), 'abc');
  t.is(verifySessionId(id, 'bob', key), undefined);
  t.is(verifySessionId(id, 'alice', new TextEncoder().encode('j'.repeat(32))), undefined);
  const signature = signSessionId('x\u0000abc', 'alice', key).split('.')[1]!;
  t.is(verifySessionId(`abc.${signature}`, 'alice\u0000x', key), undefined, 'no (binding, sender) pair reads as another');
  t.is(verifySessionId('abc', 'alice', key), undefined);
  t.is(verifySessionId('.abc', '', key), undefined);
  t.is(verifySessionId(`${id}x`, 'alice', key), undefined);
});

// Serial (ava runs these before the concurrent tests): it changes XDG_STATE_HOME for the time of the test.
test.serial('without session_secret, the secret is made once and kept (0600) under XDG_STATE_HOME: a new server resumes the sessions; without a writable place, a warning', async (t) => {
  const saved = process.env.XDG_STATE_HOME;
  t.teardown(() => {
    if (saved === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = saved;
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-state-'));
  process.env.XDG_STATE_HOME = dir;
  const file = defaultSessionSecretFile();
  t.is(file, path.join(dir, 'switchboard', 'socketio-session-secret'));
  const a = await start(t, { session_persistence: true });
  t.is(statSync(file).mode & 0o777, 0o600);
  const secret = readFileSync(file, 'utf8');
  t.true(secret.length >= 43);
  const id = await session(await connect(t, a.host));
  await a.host.server.close(100);
  const b = await start(t, { session_persistence: true });
  t.is(readFileSync(file, 'utf8'), secret, 'kept, not made again');
  t.is(await session(await connect(t, b.host), id), id, 'the restarted server resumes the session');
  t.false(b.host.logs.text.includes(secret));

  chmodSync(file, 0o644);
  const c = await start(t, { session_persistence: true });
  t.regex(c.host.logs.text, /session secret file can be read by other users/);

  const blocked = path.join(dir, 'a-file');
  writeFileSync(blocked, '');
  process.env.XDG_STATE_HOME = blocked;
  const d = await start(t, { session_persistence: true });
  t.regex(d.host.logs.text, /sessions will not survive a restart/);
  t.not(await session(await connect(t, d.host), id), id, 'another secret: the session is not resumed');
});
