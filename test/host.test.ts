import test from 'ava';
import RestInput from '../channels/rest/index.js';
import { refusedOriginLog } from '#src/server.js';
import { captureLogs, startServer, ScriptedBot } from './harness.js';

async function restServer(t: Parameters<typeof startServer>[0], options: Parameters<typeof startServer>[2] = {}) {
  return startServer(t, [RestInput.fromCredentials({})], options);
}

test('GET / and GET /health list the loaded channels', async (t) => {
  const { request } = await restServer(t);
  for (const path of ['/', '/health']) {
    const response = await request(path);
    t.is(response.status, 200);
    t.like(response.json, { status: 'ok', channels: ['rest'] });
  }
});

test('unknown route → 404 with a JSON error', async (t) => {
  const { request } = await restServer(t);
  const response = await request('/webhooks/nope/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.is(response.status, 404);
  t.deepEqual(response.json, { error: 'no route for POST /webhooks/nope/webhook' });
  t.regex(response.headers.get('content-type') ?? '', /application\/json/);
});

test('malformed JSON → 400, and the server keeps serving', async (t) => {
  const { request } = await restServer(t);
  const bad = await request('/webhooks/rest/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sender":' });
  t.is(bad.status, 400);
  t.deepEqual(bad.json, { error: 'malformed JSON body' });
  const good = await request('/webhooks/rest/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sender":"a","message":"x"}' });
  t.is(good.status, 200);
});

test('unsupported content type → 415 naming the type', async (t) => {
  const { request, bot } = await restServer(t);
  const response = await request('/webhooks/rest/webhook', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<a/>' });
  t.is(response.status, 415);
  t.deepEqual(response.json, { error: 'unsupported content type "application/xml"; send JSON, a form or plain text' });
  t.is(bot.received.length, 0);
});

test('body over the limit → 413 (rest: 64kb by default)', async (t) => {
  const { request, bot } = await restServer(t);
  const big = JSON.stringify({ sender: 'a', message: 'x'.repeat(64 * 1024 + 10) });
  const response = await request('/webhooks/rest/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
  t.is(response.status, 413);
  t.deepEqual(response.json, { error: 'request body is larger than the limit of 64kb' });
  t.is(bot.received.length, 0);
  const justUnder = JSON.stringify({ sender: 'a', message: 'x'.repeat(60 * 1024) });
  const ok = await request('/webhooks/rest/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: justUnder });
  t.is(ok.status, 200);
});

test('the body limit is configurable', async (t) => {
  const { request } = await restServer(t, { bodyLimit: '1kb' });
  const response = await request('/webhooks/rest/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sender: 'a', message: 'x'.repeat(2000) }),
  });
  t.is(response.status, 413);
});

test('a body with no content type is read as JSON', async (t) => {
  const { url } = await restServer(t, { bot: new ScriptedBot([{ text: 'ok' }]) });
  // fetch always sets a content type for string bodies; a Buffer body goes without one.
  const response = await fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', body: Buffer.from('{"sender":"a","message":"hi"}') });
  t.is(response.status, 200);
  t.deepEqual(await response.json(), [{ recipient_id: 'a', text: 'ok' }]);
});

test('a bot that throws gives the rest client a 502 with a safe message, not a 500 nor 200 []', async (t) => {
  const bot = new ScriptedBot(() => {
    throw new Error('bot exploded: secret-internal-detail');
  });
  const { request, logs } = await restServer(t, { bot });
  const response = await request('/webhooks/rest/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sender":"a","message":"hi"}' });
  t.is(response.status, 502);
  t.deepEqual(response.json, { error: 'the bot failed to answer' });
  t.false(response.text.includes('secret-internal-detail'));
  t.regex(logs.text, /bot failed to handle the message/);
  t.regex(logs.text, /"channel":"rest"/);
  t.regex(logs.text, /"sender":"a"/);
});

test('CORS: a listed origin is allowed, others are not', async (t) => {
  const { request } = await restServer(t, { cors: ['https://shop.example.com'] });
  const allowed = await request('/webhooks/rest/webhook', {
    method: 'OPTIONS',
    headers: { origin: 'https://shop.example.com', 'access-control-request-method': 'POST' },
  });
  t.is(allowed.headers.get('access-control-allow-origin'), 'https://shop.example.com');
  const refused = await request('/', { headers: { origin: 'https://evil.example.com' } });
  t.is(refused.headers.get('access-control-allow-origin'), null);
});

test('CORS: * allows any origin', async (t) => {
  const { request } = await restServer(t, { cors: ['*'] });
  const response = await request('/', { headers: { origin: 'https://anywhere.example.com' } });
  t.is(response.headers.get('access-control-allow-origin'), '*');
});

test('without --cors there are no CORS headers', async (t) => {
  const { request } = await restServer(t);
  const response = await request('/', { headers: { origin: 'https://shop.example.com' } });
  t.is(response.headers.get('access-control-allow-origin'), null);
});

test('a throwing route in a channel gives a JSON 500 without a stack trace, and the server lives on', async (t) => {
  const { InputChannel } = await import('switchboard');
  class Broken extends InputChannel {
    name() {
      return 'broken';
    }
    router() {
      const router = this.newRouter();
      router.post('/webhook', () => {
        throw new Error('kaboom at /secret/path.js:1:2');
      });
      return router;
    }
  }
  const { request, logs } = await startServer(t, [Broken.fromCredentials({})]);
  const response = await request('/webhooks/broken/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.is(response.status, 500);
  t.deepEqual(response.json, { error: 'internal error' });
  t.regex(logs.text, /kaboom/);
  t.is((await request('/health')).status, 200);
});

test('CORS: a refused browser origin logs once, at info, the --cors to add; allowed and same-origin requests do not', async (t) => {
  const { request, logs, url } = await restServer(t, { cors: ['https://shop.example.com'] });
  const advice = /origin https:\/\/x\.example is not allowed; start with --cors https:\/\/x\.example to allow it/;
  for (let i = 0; i < 3; i++) await request('/', { headers: { origin: 'https://x.example' } });
  await request('/webhooks/rest/webhook', { method: 'OPTIONS', headers: { origin: 'https://x.example', 'access-control-request-method': 'POST' } });
  const lines = logs.lines.filter((line) => advice.test(line));
  t.is(lines.length, 1, logs.text);
  t.like(JSON.parse(lines[0]!), { level: 30, origin: 'https://x.example' });

  await request('/', { headers: { origin: 'https://other.example:8443' } });
  t.regex(logs.text, /start with --cors https:\/\/other\.example:8443 to allow it/);
  await request('/', { headers: { origin: 'https://shop.example.com' } });
  await request('/', { headers: { origin: url } });
  t.notRegex(logs.text, /shop\.example\.com is not allowed/);
  t.notRegex(logs.text, /127\.0\.0\.1:\d+ is not allowed/);
  // A header that is not an origin a browser would send writes no advice.
  await request('/', { headers: { origin: 'https://a.example --cors *' } });
  t.notRegex(logs.text, /--cors \*/);
});

test('CORS: without --cors, a browser origin is refused and told which --cors to add; with * nothing is logged', async (t) => {
  const none = await restServer(t);
  await none.request('/', { headers: { origin: 'https://chat.example' } });
  t.regex(none.logs.text, /origin https:\/\/chat\.example is not allowed; start with --cors https:\/\/chat\.example to allow it/);
  const any = await restServer(t, { cors: ['*'] });
  await any.request('/', { headers: { origin: 'https://chat.example' } });
  t.notRegex(any.logs.text, /is not allowed/);
});

test('CORS: the remembered refused origins are capped; past the cap the oldest is forgotten (and logged again)', async (t) => {
  const { logger, lines } = captureLogs('info');
  const middleware = refusedOriginLog([], logger, 3);
  const see = (origin: string) => middleware({ get: () => origin, protocol: 'http', host: 'bot.example' } as never, async () => {});
  const count = (origin: string) => lines().filter((line) => line.origin === origin).length;
  for (const origin of ['https://first.example', 'https://o1.example', 'https://o2.example', 'https://o2.example']) await see(origin);
  await see('https://first.example');
  t.is(count('https://first.example'), 1, 'still remembered');
  t.is(count('https://o2.example'), 1);
  await see('https://o3.example');
  await see('https://first.example');
  t.is(count('https://first.example'), 2, 'forgotten once the cap was reached');
  await see('http://bot.example');
  t.is(count('http://bot.example'), 0, 'same origin');
});

test('duplicate slashes in a path are collapsed before routing, the query string untouched', async (t) => {
  const bot = new ScriptedBot((message) => [{ text: `got ${message.text}` }]);
  const { request } = await restServer(t, { bot });
  for (const path of ['//webhooks/rest/webhook', '/webhooks//rest/webhook', '/webhooks/rest///webhook?stream=false']) {
    const response = await request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sender":"a","message":"hi"}' });
    t.is(response.status, 200, path);
    t.deepEqual(response.json, [{ recipient_id: 'a', text: 'got hi' }], path);
  }
  const streamed = await request('//webhooks//rest/webhook?stream=true&x=a//b', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sender":"a","message":"hi"}' });
  t.is(streamed.text, '{"recipient_id":"a","text":"got hi"}\n');
  t.is((await request('//health')).status, 200);
  t.is((await request('//webhooks/nope')).status, 404);
});
