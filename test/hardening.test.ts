/**
 * Issue 13, findings 5, 10 and 11, against a real listening server: proxy headers trusted only with --trust-proxy,
 * --cors refusing other origins, and the credentials edge cases (blank secrets, loose file modes, `$${`).
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, CredentialsError, createLogger, interpolateEnv } from 'switchboard';
import { LogCapture } from 'switchboard/testing';
import { parseCli, start } from '#src/cli.js';
import { looseCredentialsFile } from '#src/credentials.js';
import CallbackInput from '../channels/callback/index.js';
import RestInput from '../channels/rest/index.js';
import SlackInput from '../channels/slack/index.js';
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

async function startFromFile(t: ExecutionContext, yaml: string, mode: number, env: NodeJS.ProcessEnv = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-creds-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'credentials.yml');
  await writeFile(file, yaml);
  await chmod(file, mode);
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const options = { credentials: 'credentials.yml', channels: [], port: 0, host: '127.0.0.1', cors: [], bodyLimit: '1mb', logLevel: 'debug' };
  const started = await start(options, { cwd: dir, env, logger });
  t.teardown(() => started.server.close(0));
  const { port } = started.server.httpServer.address() as AddressInfo;
  return { logs, url: `http://127.0.0.1:${port}` };
}

const hello = (token: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  body: JSON.stringify({ sender: 'me', message: 'hello' }),
});

test('a whitespace-only secret is refused at startup, naming the key but not the value; an empty one is as if absent', (t) => {
  for (const blank of [' ', '\t', ' \n ']) {
    const error = t.throws(() => RestInput.fromCredentials({ token: blank }), { instanceOf: CredentialsError });
    t.is(error!.message, '"token" is blank (only whitespace); give the secret or remove the key');
  }
  t.throws(() => SlackInput.fromCredentials({ slack_token: 'xoxb-1', slack_signing_secret: '  ', allow_unverified: true }), { message: /"slack_signing_secret" is blank/ }, 'not silently unverified');
  t.throws(() => CallbackInput.fromCredentials({ url: 'https://app.example.com/cb', basic_auth: { username: 'u', password: '  ' } }), { message: /"basic_auth" is blank/ });
  t.is(RestInput.fromCredentials({ token: '' }).credentials.token, undefined, 'an unset ${REST_TOKEN:-}: no token');
  t.is(RestInput.fromCredentials({ token: ' real ' }).credentials.token, ' real ', 'a secret with surrounding spaces is kept as written');
});

test('attack: a blank rest token cannot be configured, so " " never authenticates; a real token from the file works', async (t) => {
  await t.throwsAsync(startFromFile(t, 'rest:\n  token: " "\n', 0o600), { instanceOf: ConfigError, message: 'credentials.yml: rest: "token" is blank (only whitespace); give the secret or remove the key' });
  const { url } = await startFromFile(t, 'rest:\n  token: ${REST_TOKEN}\n', 0o600, { REST_TOKEN: 'tok-from-env' });
  t.is((await fetch(`${url}/webhooks/rest/webhook`, hello(' '))).status, 401);
  t.is((await fetch(`${url}/webhooks/rest/webhook`, hello('tok-from-env'))).status, 200);
});

test('a group- or world-readable credentials file is warned about at startup; chmod 600 is not', async (t) => {
  for (const [mode, who] of [[0o644, 'its group and all users'], [0o640, 'its group'], [0o604, 'all users'], [0o660, 'its group']] as const) {
    const { logs } = await startFromFile(t, 'rest:\n', mode);
    const warning = logs.lines.map((line) => JSON.parse(line) as { level: number; msg: string }).find((line) => /chmod 600/.test(line.msg));
    t.truthy(warning, mode.toString(8));
    t.is(warning!.level, 40);
    t.is(warning!.msg, `credentials.yml (mode ${mode.toString(8).padStart(4, '0')}) can be read or changed by ${who}, and it holds secrets: chmod 600 credentials.yml`);
  }
  const { logs } = await startFromFile(t, 'rest:\n', 0o600);
  t.notRegex(logs.text, /chmod 600/);
  t.is(looseCredentialsFile('credentials.yml', '/nonexistent'), undefined, 'a file that cannot be stat\u2019ed: reading it reports why');
  t.is(looseCredentialsFile('x', process.cwd(), 'win32'), undefined);
});

test('$${ writes a literal ${ in credentials; ${NAME} still interpolates', (t) => {
  const env = { NAME: 'value' };
  t.is(interpolateEnv('pa$${x}ss', env, 'f'), 'pa${x}ss');
  t.is(interpolateEnv('$${NAME}', env, 'f'), '${NAME}', 'escaped: not interpolated, even when set');
  t.is(interpolateEnv('$${UNSET}', env, 'f'), '${UNSET}', 'escaped: no error for an unset name');
  t.is(interpolateEnv('a${NAME}b$${NAME}c', env, 'f'), 'avalueb${NAME}c');
  t.is(interpolateEnv('cost: $$5 and $x', env, 'f'), 'cost: $$5 and $x', 'a $ not before { is left alone');
  t.throws(() => interpolateEnv('${UNSET}', env, 'f'), { instanceOf: ConfigError });
});

test('a rest token containing ${ is written with $${ and authenticates a real request', async (t) => {
  const { url } = await startFromFile(t, 'rest:\n  token: "t0k$${en}"\n', 0o600);
  t.is((await fetch(`${url}/webhooks/rest/webhook`, hello('t0k${en}'))).status, 200);
  t.is((await fetch(`${url}/webhooks/rest/webhook`, hello('t0k$${en}'))).status, 401);
});
