/**
 * Issue 13, finding 2: `input_channel` impersonation, and the optional `token` / JWT authentication of `rest` and
 * `callback`, performed against a real listening server.
 */
import test, { type ExecutionContext } from 'ava';
import { SignJWT } from 'jose';
import nock from 'nock';
import { SwitchboardServer, createLogger, type InputChannel } from 'switchboard';
import { LogCapture } from 'switchboard/testing';
import CallbackInput from '../../channels/callback/index.js';
import RestInput from '../../channels/rest/index.js';
import { SocketIOInput } from '../../channels/socketio/index.js';
import { ScriptedBot, startServer } from '../harness.js';

const TOKEN = 's3cret-rest-token-0123456789';
const JWT_KEY = 'a-shared-hs256-secret-of-enough-length';
const IMPERSONATION = { sender: 'U1', message: 'transfer everything', input_channel: 'slack' };

function post(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

async function jwt(claims: Record<string, unknown>, options: { key?: string; alg?: string; exp?: string | number } = {}): Promise<string> {
  let builder = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setIssuedAt();
  if (options.exp !== undefined) builder = builder.setExpirationTime(options.exp);
  return builder.sign(new TextEncoder().encode(options.key ?? JWT_KEY));
}

async function rest(t: ExecutionContext, credentials: Record<string, unknown> = {}) {
  const bot = new ScriptedBot((m) => [{ text: `${m.inputChannel}:${m.senderId}` }]);
  const server = await startServer(t, [RestInput.fromCredentials(credentials)], { bot });
  return { ...server, bot };
}

test('rest: the impersonation attack no longer lands in slack: input_channel is ignored without auth', async (t) => {
  const { request, bot, logs } = await rest(t);
  const response = await request('/webhooks/rest/webhook', post(IMPERSONATION));
  t.is(response.status, 200);
  t.deepEqual(response.json, [{ recipient_id: 'U1', text: 'rest:U1' }]);
  t.is(bot.received.length, 1);
  t.is(bot.received[0]!.inputChannel, 'rest', 'attributed to rest, not to the Slack user U1');
  t.regex(logs.text, /input_channel ignored/);
});

test('rest: allow_input_channel: true honours input_channel (the legitimate configured path)', async (t) => {
  const { request, bot } = await rest(t, { allow_input_channel: true });
  const response = await request('/webhooks/rest/webhook', post({ sender: 'c', message: 'hi', input_channel: 'website' }));
  t.is(response.status, 200);
  t.is(bot.received[0]!.inputChannel, 'website');
});

test('rest with token: 401 without it or with a wrong one, nothing reaches the bot; the token never echoes', async (t) => {
  const { request, bot, logs } = await rest(t, { token: TOKEN });
  const attempts: Array<[string, RequestInit]> = [
    ['/webhooks/rest/webhook', post(IMPERSONATION)],
    ['/webhooks/rest/webhook', post(IMPERSONATION, { authorization: 'Bearer wrong-token' })],
    ['/webhooks/rest/webhook', post(IMPERSONATION, { authorization: `Bearer ${TOKEN}x` })],
    ['/webhooks/rest/webhook', post(IMPERSONATION, { authorization: `Basic ${TOKEN}` })],
    ['/webhooks/rest/webhook?token=wrong', post(IMPERSONATION)],
    ['/webhooks/rest/webhook?token=', post(IMPERSONATION)],
    [`/webhooks/rest/webhook?token=${TOKEN.slice(0, -1)}`, post(IMPERSONATION)],
    ['/webhooks/rest/webhook?stream=true', post(IMPERSONATION)],
  ];
  for (const [path, init] of attempts) {
    const response = await request(path, init);
    t.is(response.status, 401, `${path} ${JSON.stringify(init.headers)}`);
    t.true(typeof (response.json as { error?: unknown }).error === 'string');
    t.false(response.text.includes(TOKEN.slice(0, 10)));
  }
  t.is(bot.received.length, 0);
  t.false(logs.text.includes(TOKEN), 'the token is never logged');
});

test('rest with token: 200 with Authorization: Bearer or ?token=, and then input_channel is honoured', async (t) => {
  const { request, bot, logs } = await rest(t, { token: TOKEN });
  const header = await request('/webhooks/rest/webhook', post({ sender: 'a', message: 'hi' }, { authorization: `Bearer ${TOKEN}` }));
  t.is(header.status, 200);
  t.deepEqual(header.json, [{ recipient_id: 'a', text: 'rest:a' }]);
  const lower = await request('/webhooks/rest/webhook', post({ sender: 'a', message: 'hi' }, { authorization: `bearer ${TOKEN}` }));
  t.is(lower.status, 200, 'the scheme is case-insensitive');
  const query = await request(`/webhooks/rest/webhook?token=${TOKEN}`, post({ sender: 'b', message: 'hi', input_channel: 'kiosk' }));
  t.is(query.status, 200);
  t.deepEqual(query.json, [{ recipient_id: 'b', text: 'kiosk:b' }], 'an authenticated request may set input_channel');
  const stream = await request(`/webhooks/rest/webhook?stream=true&token=${TOKEN}`, post({ sender: 'c', message: 'hi' }));
  t.is(stream.status, 200);
  t.is(stream.text, '{"recipient_id":"c","text":"rest:c"}\n');
  t.is(bot.received.length, 4);
  t.false(logs.text.includes(TOKEN), 'the token (in the query string) is never logged');
});

test('rest with jwt_key: a valid JWT passes (input_channel honoured); bad signature, expired, wrong algorithm, garbage are 401', async (t) => {
  const { request, bot } = await rest(t, { jwt_key: JWT_KEY });
  const valid = await jwt({ user: { username: 'a', role: 'user' } }, { exp: '1h' });
  const ok = await request('/webhooks/rest/webhook', post({ sender: 'a', message: 'hi', input_channel: 'app' }, { authorization: `Bearer ${valid}` }));
  t.is(ok.status, 200);
  t.deepEqual(ok.json, [{ recipient_id: 'a', text: 'app:a' }]);
  const noExp = await jwt({ user: { username: 'a', role: 'user' } });
  t.is((await request('/webhooks/rest/webhook', post({ sender: 'a', message: 'hi' }, { authorization: `Bearer ${noExp}` }))).status, 200, 'no exp: accepted, as by Rasa (PyJWT)');

  const refused: Array<[string, string, RegExp]> = [
    ['bad signature', await jwt({ sub: 'a' }, { key: 'another-secret-of-enough-length!!', exp: '1h' }), /bad signature/],
    ['expired', await jwt({ sub: 'a' }, { exp: Math.floor(Date.now() / 1000) - 600 }), /expired/],
    ['another HS algorithm', await jwt({ sub: 'a' }, { alg: 'HS512', exp: '1h' }), /algorithm not allowed/],
    ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"a"}').toString('base64url')}.`, /invalid JWT/],
    ['garbage', 'a.b.c', /invalid JWT/],
  ];
  for (const [label, token, reason] of refused) {
    const response = await request('/webhooks/rest/webhook', post(IMPERSONATION, { authorization: `Bearer ${token}` }));
    t.is(response.status, 401, label);
    t.regex((response.json as { error: string }).error, reason, label);
  }
  t.is((await request(`/webhooks/rest/webhook?token=${valid}`, post(IMPERSONATION))).status, 401, 'a JWT is read from the header only, as Rasa does');
  t.is(bot.received.length, 2);
});

test('rest with jwt_key: Rasa\u2019s scope — a user JWT speaks only as its user.username (403 otherwise), an admin JWT as anyone', async (t) => {
  const { request, bot } = await rest(t, { jwt_key: JWT_KEY });
  const as = async (claims: Record<string, unknown>, sender: string) =>
    request('/webhooks/rest/webhook', post({ sender, message: 'hi', input_channel: 'slack' }, { authorization: `Bearer ${await jwt(claims, { exp: '1h' })}` }));
  const impersonation = await as({ user: { username: 'a', role: 'user' } }, 'U1');
  t.is(impersonation.status, 403, 'a user token cannot post as another sender');
  t.regex((impersonation.json as { error: string }).error, /does not cover this sender/);
  t.is((await as({ sub: 'U1' }, 'U1')).status, 403, 'no user claim: no scope, as in Rasa');
  t.is((await as({ user: { username: 'U1', role: 'guest' } }, 'U1')).status, 403);
  t.is((await as({ user: { username: 1, role: 'user' } }, '1')).status, 403, 'username must be the same string');
  t.is(bot.received.length, 0);
  t.is((await as({ user: { username: 'U1', role: 'user' } }, 'U1')).status, 200);
  t.is((await as({ user: { role: 'admin' } }, 'anyone')).status, 200);
  t.deepEqual(bot.received.map((m) => [m.senderId, m.inputChannel]), [['U1', 'slack'], ['anyone', 'slack']]);
});

test('rest with token and jwt_key: either authenticates', async (t) => {
  const { request } = await rest(t, { token: TOKEN, jwt_key: JWT_KEY });
  t.is((await request('/webhooks/rest/webhook', post({ sender: 'a', message: 'hi' }, { authorization: `Bearer ${TOKEN}` }))).status, 200);
  t.is((await request('/webhooks/rest/webhook', post({ sender: 'a', message: 'hi' }, { authorization: `Bearer ${await jwt({ user: { role: 'admin' } }, { exp: '1h' })}` }))).status, 200);
  const wrong = await request('/webhooks/rest/webhook', post({ sender: 'a', message: 'hi' }, { authorization: 'Bearer nope' }));
  t.is(wrong.status, 401);
  t.deepEqual(wrong.json, { error: 'invalid token' });
});

async function listenOn(t: ExecutionContext, host: string, credentials: Record<string, unknown>, Channel: { fromCredentials(credentials?: unknown): InputChannel } = RestInput): Promise<string> {
  const logs = new LogCapture();
  const server = new SwitchboardServer({
    channels: [Channel.fromCredentials(credentials)],
    bot: new ScriptedBot(),
    logger: createLogger({ level: 'debug', destination: logs }),
  });
  t.teardown(() => server.close(0));
  await server.listen(0, host);
  return logs.text;
}

test('rest: a startup warning when it has no token and listens on all interfaces; none with a token or on loopback', async (t) => {
  const open = await listenOn(t, '0.0.0.0', {});
  t.regex(open, /"level":40.*rest has no token and listens on 0\.0\.0\.0/);
  t.notRegex(await listenOn(t, '0.0.0.0', { token: TOKEN }), /has no token/);
  t.notRegex(await listenOn(t, '0.0.0.0', { jwt_key: JWT_KEY }), /has no token/);
  t.notRegex(await listenOn(t, '127.0.0.1', {}), /has no token/);
  const callback = await listenOn(t, '0.0.0.0', { url: 'https://app.example.com/cb' }, CallbackInput);
  t.regex(callback, /callback has no token.*set \\"auth_token\\"/);
});

test.serial('callback: input_channel ignored without auth; auth_token required when set (401, nothing posted), then honoured', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });
  const bot = new ScriptedBot((m) => [{ text: `${m.inputChannel}:${m.senderId}` }]);
  const open = await startServer(t, [CallbackInput.fromCredentials({ url: 'https://app.example.com/cb' })], { bot });
  const posted: unknown[] = [];
  nock('https://app.example.com').post('/cb').times(3).reply(200, (_uri, body) => {
    posted.push(body);
    return 'ok';
  });
  t.is((await open.request('/webhooks/callback/webhook', post(IMPERSONATION))).status, 200);
  await bot.waitFor(1);
  t.is(bot.received[0]!.inputChannel, 'callback');

  const guardedBot = new ScriptedBot((m) => [{ text: `${m.inputChannel}:${m.senderId}` }]);
  const guarded = await startServer(t, [CallbackInput.fromCredentials({ url: 'https://app.example.com/cb', auth_token: TOKEN, token: 'outgoing' })], { bot: guardedBot });
  t.is((await guarded.request('/webhooks/callback/webhook', post(IMPERSONATION))).status, 401);
  t.is((await guarded.request('/webhooks/callback/webhook?token=outgoing', post(IMPERSONATION))).status, 401, 'the outgoing token does not authenticate');
  const ok = await guarded.request('/webhooks/callback/webhook', post({ sender: 'k', message: 'hi', input_channel: 'kiosk' }, { authorization: `Bearer ${TOKEN}` }));
  t.is(ok.status, 200);
  await guardedBot.waitFor(1);
  t.is(guardedBot.received.length, 1);
  t.is(guardedBot.received[0]!.inputChannel, 'kiosk');
});

test('rest: input_channel "socketio" no longer files a message into a jwt_key-protected socket.io session', async (t) => {
  const bot = new ScriptedBot((m) => [{ text: `${m.inputChannel}:${m.senderId}` }]);
  const channels = [RestInput.fromCredentials({}), SocketIOInput.fromCredentials({ jwt_key: JWT_KEY })];
  const { request } = await startServer(t, channels, { bot });
  const response = await request('/webhooks/rest/webhook', post({ sender: 'alice-session-id', message: 'hi', input_channel: 'socketio' }));
  t.is(response.status, 200);
  t.deepEqual(response.json, [{ recipient_id: 'alice-session-id', text: 'rest:alice-session-id' }]);
  t.is(bot.received[0]!.inputChannel, 'rest');
});
