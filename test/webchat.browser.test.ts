/**
 * End to end: the host with the socketio channel and the built-in moodbot, the web chat page in headless Chromium
 * (Debian's /usr/bin/chromium driven by playwright-core; no browser download). No skipping: without Chromium the test
 * fails and says how to install it (`apt-get install chromium`; .ci/run does). The restart tests run the real CLI
 * and the real rasa-webchat widget (test/clients, installed by `npm run test:browser`).
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { RulesBot, defaultBotPath } from '#src/bots/rules.js';
import SocketIOInput from '../channels/socketio/index.js';
import { SESSION_STORAGE_KEY } from '../channels/socketio/webchat.js';
import { PACKAGE_ROOT } from './fixtures.js';
import { ScriptedBot, startServer } from './harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** A stand-in for the moodbot's imgur picture: the machine (and CI) may have no network. */
/** A session id as the server signs them: `<sender id>.<HMAC-SHA256, base64url>`; the bot sees the sender id. */
const SIGNED_ID = /^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/;
const senderOf = (sessionId: string | null): string => (sessionId ?? '').slice(0, (sessionId ?? '').lastIndexOf('.'));
const PICTURE = '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="160"><rect width="240" height="160" fill="#fde68a"/><text x="120" y="90" font-size="28" text-anchor="middle" font-family="sans-serif">cheer up!</text></svg>';

test('the web chat page talks to the moodbot in headless Chromium and keeps its session across a reload', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`Chromium is not installed at ${CHROMIUM}${process.env.CI ? ' (CI is set: the browser test must run)' : ''}; install it with "apt-get install -y chromium" or set CHROMIUM_PATH`);
    return;
  }
  const channel = SocketIOInput.fromCredentials({ session_persistence: true });
  const moodbot = RulesBot.fromFile(defaultBotPath());
  const { url, bot } = await startServer(t, [channel], { bot: new ScriptedBot((message) => moodbot.handle(message)) });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  t.teardown(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 390, height: 780 } });
  await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) =>
    route.request().resourceType() === 'image' ? route.fulfill({ status: 200, contentType: 'image/svg+xml', body: PICTURE }) : route.abort(),
  );
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });

  await page.goto(`${url}/webhooks/socketio/webchat`);
  await page.waitForSelector('html[data-connection="connected"]');
  await page.waitForSelector('html[data-session-id]');
  const sessionId = await page.getAttribute('html', 'data-session-id');
  t.regex(sessionId ?? '', SIGNED_ID);
  t.is(await page.evaluate(`localStorage.getItem(${JSON.stringify(SESSION_STORAGE_KEY)})`), sessionId);

  // Keyboard only: the input has the focus, Enter sends.
  t.is(await page.evaluate('document.activeElement && document.activeElement.id'), 'message');
  await page.getByLabel('Your message').fill('hello');
  await page.keyboard.press('Enter');
  const log = page.getByRole('log', { name: 'Conversation' });
  await log.getByText('Hey! How are you?').waitFor();
  const chips = log.getByRole('group', { name: 'Suggested replies' }).getByRole('button');
  t.deepEqual(await chips.allTextContents(), ['great', 'sad']);

  await log.getByRole('button', { name: 'sad' }).click();
  await log.getByText('Did that help you?').waitFor();
  await log.getByText('Here is something to cheer you up:').waitFor();
  const image = log.locator('img');
  t.is(await image.getAttribute('src'), 'https://i.imgur.com/nGF1K8f.jpg');
  await page.waitForFunction(`(() => { const img = document.querySelector('#log img'); return Boolean(img && img.complete && img.naturalWidth > 0); })()`);
  t.true(await log.getByRole('button', { name: 'sad' }).isDisabled(), 'a used set of chips is disabled');
  t.deepEqual(await log.getByRole('group').last().getByRole('button').allTextContents(), ['yes', 'no']);
  const userLines = await page.locator('#log .msg.user p').allTextContents();
  t.deepEqual(userLines, ['hello', 'sad'], 'a chip shows its title as what the user said');

  const screenshot = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-webchat-')), 'webchat.png');
  await page.screenshot({ path: screenshot });
  t.log(`screenshot: ${screenshot}`);

  // Reload: the stored session is requested again and confirmed; the conversation continues under the same sender.
  await page.reload();
  await page.waitForSelector('html[data-connection="connected"]');
  await page.waitForSelector('html[data-session-id]');
  t.is(await page.getAttribute('html', 'data-session-id'), sessionId);
  await page.getByLabel('Your message').fill('bye');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByRole('log').getByText('Bye', { exact: true }).waitFor();

  t.deepEqual(bot.received.map((m) => m.senderId), Array(3).fill(senderOf(sessionId)), 'one sender, before and after the reload');
  t.deepEqual(bot.received.map((m) => m.text), ['hello', '/mood_unhappy', 'bye']);
  t.deepEqual(problems, []);

  // The server side goes away: the page shows that it is reconnecting.
  await channel.close();
  await page.waitForSelector('html[data-connection="reconnecting"]');
  t.true(await page.locator('#banner').isVisible());
  t.regex((await page.getByRole('status').textContent()) ?? '', /Reconnecting/);
});

/** Chromium, closed in the teardown; fails the test (never skips) when it is not installed. */
async function launch(t: ExecutionContext): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    t.fail(`Chromium is not installed at ${CHROMIUM}${process.env.CI ? ' (CI is set: the browser test must run)' : ''}; install it with "apt-get install -y chromium" or set CHROMIUM_PATH`);
    return undefined;
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  t.teardown(() => browser.close());
  return browser;
}

/** Page errors and console errors, to assert there were none. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });
  return problems;
}

/** A port nothing listens on now, so the restarted server can take the same one. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

interface Cli {
  child: ChildProcess;
  output: () => string;
}

/**
 * `node dist/run.js --port PORT` with the moodbot and the default channels (rest, socketio with session_persistence),
 * or those of a credentials file.
 */
async function startCli(t: ExecutionContext, port: number, credentials?: string): Promise<Cli> {
  const args = [path.join(PACKAGE_ROOT, 'dist', 'run.js'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', ...(credentials ? ['--credentials', credentials] : [])];
  const child = spawn(process.execPath, args, { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!output.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the CLI did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { child, output: () => output };
}

/** SIGTERM, as a process manager stops a server; resolves with the exit code and how long it took. */
async function stopCli(cli: Cli): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  const exited = once(cli.child, 'exit') as Promise<[number | null]>;
  cli.child.kill('SIGTERM');
  const [code] = await exited;
  return { code, ms: Date.now() - started };
}

/** Counts the main frame's navigations: a reload would show as one more. */
function countNavigations(page: Page): () => number {
  let count = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) count++;
  });
  return () => count;
}

test.serial('a graceful restart (SIGTERM, then the same port) under an open /webchat page: it reconnects with its session and the next message is answered, without a reload', async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const port = await freePort();
  const first = await startCli(t, port);
  const page = await (await browser.newContext()).newPage();
  const problems = watchProblems(page);
  const navigations = countNavigations(page);
  await page.goto(`http://127.0.0.1:${port}/webchat`);
  await page.waitForSelector('html[data-connection="connected"]');
  await page.waitForSelector('html[data-session-id]');
  const sessionId = await page.getAttribute('html', 'data-session-id');
  const log = page.getByRole('log', { name: 'Conversation' });
  await page.getByLabel('Your message').fill('hello');
  await page.keyboard.press('Enter');
  await log.getByText('Hey! How are you?').waitFor();

  const stopped = await stopCli(first);
  t.is(stopped.code, 0, first.output());
  t.log(`SIGTERM to exit: ${stopped.ms} ms`);
  t.true(stopped.ms < 3_000, `the server took ${stopped.ms} ms to stop`);
  await page.waitForSelector('html[data-connection="reconnecting"]');

  const second = await startCli(t, port);
  const restarted = Date.now();
  await page.waitForSelector('html[data-connection="connected"]', { timeout: 15_000 });
  t.log(`reconnected ${Date.now() - restarted} ms after the new server listened`);
  t.is(await page.getAttribute('html', 'data-session-id'), sessionId, 'the same session');
  await page.getByLabel('Your message').fill('bye');
  await page.keyboard.press('Enter');
  await log.getByText('Bye', { exact: true }).waitFor();
  t.deepEqual(await page.locator('#log .msg.user p').allTextContents(), ['hello', 'bye'], 'the conversation is still on the page');
  t.is(navigations(), 1, 'no reload');
  t.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection|favicon\.ico/.test(p)), []);
  t.is((await stopCli(second)).code, 0);
});

test.serial('the web chat page reconnects by itself after "io server disconnect" too', async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const channel = SocketIOInput.fromCredentials({ session_persistence: true });
  const { url, bot } = await startServer(t, [channel], { bot: new ScriptedBot((m) => [{ text: `you said: ${m.text}` }]) });
  const page = await (await browser.newContext()).newPage();
  const navigations = countNavigations(page);
  await page.goto(`${url}/webhooks/socketio/webchat`);
  await page.waitForSelector('html[data-session-id]');
  const sessionId = await page.getAttribute('html', 'data-session-id');
  const reasons: string[] = [];
  channel.server!.on('connection', (socket) => socket.on('disconnect', (reason) => reasons.push(reason)));

  // What a server that disconnects its clients on purpose (this one, before) sends; Socket.IO alone stays away.
  const connections = bot.received.length;
  channel.server!.disconnectSockets(true);
  await page.waitForSelector('html[data-connection="reconnecting"]');
  await page.waitForSelector('html[data-connection="connected"]', { timeout: 10_000 });
  t.is(await page.getAttribute('html', 'data-session-id'), sessionId);
  await page.getByLabel('Your message').fill('still here');
  await page.keyboard.press('Enter');
  await page.getByRole('log').getByText('you said: still here', { exact: true }).waitFor();
  t.is(bot.received.length, connections + 1);
  t.is(bot.received.at(-1)?.senderId, senderOf(sessionId));
  t.is(navigations(), 1, 'no reload');
});

const RASA_WEBCHAT = path.join(PACKAGE_ROOT, 'test', 'clients', 'node_modules', 'rasa-webchat', 'lib', 'index.js');

/**
 * A web site of its own (another port, so another origin: the widget connects across origins, as on a real site),
 * serving these paths. A real server rather than a routed fake origin: Chromium refuses requests from a public
 * origin to loopback (Private Network Access).
 */
async function serveSite(t: ExecutionContext, files: Record<string, [string, string]>): Promise<string> {
  const server = createHttpServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://site').pathname];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

test.serial('rasa-webchat 1.0.1 (the real widget) carries on after a graceful restart, without a reload', async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  if (!existsSync(RASA_WEBCHAT)) {
    t.fail(`rasa-webchat is not installed at ${RASA_WEBCHAT}: "npm run test:browser" installs test/clients (or run "npm ci --prefix test/clients")`);
    return;
  }
  const port = await freePort();
  // The embedding rasa-webchat's README gives.
  const widgetPage = `<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body><h1>A shop</h1>
<script src="/rasa-webchat.js"></script>
<script>
  WebChat.default({
    socketUrl: 'http://127.0.0.1:${port}',
    socketPath: '/socket.io/',
    customData: { language: 'en' },
    initPayload: '/greet',
    title: 'Moodbot',
    params: { storage: 'local' },
  }, null);
</script></body></html>`;
  const site = await serveSite(t, { '/': ['text/html', widgetPage], '/rasa-webchat.js': ['text/javascript', readFileSync(RASA_WEBCHAT, 'utf8')] });
  // The widget is on another origin: by default only this server's own pages may connect, so the site is listed.
  const credentials = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-webchat-')), 'credentials.yml');
  writeFileSync(credentials, `rest:\nsocketio:\n  session_persistence: true\n  cors_allowed_origins: ["${site}"]\n`);
  const first = await startCli(t, port, credentials);
  const context = await browser.newContext();
  // The widget's stylesheet imports Google Fonts: no network here.
  await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
  const page = await context.newPage();
  const problems = watchProblems(page);
  const navigations = countNavigations(page);
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`${site}/`);
  await page.locator('.rw-launcher').click();
  const responses = page.locator('.rw-response');
  await responses.getByText('Hey! How are you?').waitFor();
  const sessionId = await page.evaluate(`JSON.parse(localStorage.getItem('chat_session') || '{}').session_id`);
  t.regex(String(sessionId), SIGNED_ID, 'the widget keeps the signed id it was confirmed with');
  const input = page.locator('.rw-new-message');
  await input.fill('great');
  await page.locator('.rw-send').click();
  await responses.getByText('Great, carry on!').waitFor();

  const stopped = await stopCli(first);
  t.is(stopped.code, 0, first.output());
  // While disconnected, rasa-webchat hides itself.
  await input.waitFor({ state: 'hidden' });
  await startCli(t, port, credentials);
  const restarted = Date.now();
  // Socket.IO 3's client reconnects (a transport close, not "io server disconnect"), asks for its session again, and
  // the widget shows itself again with the conversation.
  await input.waitFor({ timeout: 15_000 });
  t.is(await page.evaluate(`JSON.parse(localStorage.getItem('chat_session') || '{}').session_id`), sessionId, 'the same session');
  t.true(await responses.getByText('Great, carry on!').isVisible());
  await input.fill('bye');
  await page.locator('.rw-send').click();
  await responses.getByText('Bye', { exact: true }).waitFor({ timeout: 15_000 });
  t.log(`answered ${Date.now() - restarted} ms after the new server listened`);
  t.is(navigations(), 1, 'no reload');
  t.true(sockets.length >= 2 && sockets.every((u) => u.includes('EIO=4')), `Engine.IO 4, no allowEIO3 needed: ${sockets.join(', ')}`);
  t.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection|fonts\.googleapis\.com/.test(p)), []);
});

test.serial('rasa-webchat on another site is refused by default (cors_allowed_origins is same-origin); the /webchat page of the server still connects', async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  if (!existsSync(RASA_WEBCHAT)) {
    t.fail(`rasa-webchat is not installed at ${RASA_WEBCHAT}: "npm run test:browser" installs test/clients (or run "npm ci --prefix test/clients")`);
    return;
  }
  const channel = SocketIOInput.fromCredentials({ session_persistence: true });
  const { url, bot, logs } = await startServer(t, [channel], { bot: new ScriptedBot((m) => [{ text: `you said: ${m.text}` }]) });
  const widgetPage = `<!doctype html><html><head><meta charset="utf-8"><title>elsewhere</title></head><body>
<script src="/rasa-webchat.js"></script>
<script>WebChat.default({ socketUrl: '${url}', socketPath: '/socket.io/', initPayload: '/greet', params: { storage: 'local' } }, null);</script></body></html>`;
  const site = await serveSite(t, { '/': ['text/html', widgetPage], '/rasa-webchat.js': ['text/javascript', readFileSync(RASA_WEBCHAT, 'utf8')] });
  const context = await browser.newContext();
  await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
  const page = await context.newPage();
  await page.goto(`${site}/`);
  const deadline = Date.now() + 15_000;
  while (!logs.text.includes('origin not in cors_allowed_origins refused') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  t.regex(logs.text, new RegExp(`"origin":"${site}".*origin not in cors_allowed_origins refused`));
  t.is(channel.server!.of('/').sockets.size, 0, 'no connection from the other site');
  t.is(bot.received.length, 0);

  const own = await (await browser.newContext()).newPage();
  await own.goto(`${url}/webhooks/socketio/webchat`);
  await own.waitForSelector('html[data-connection="connected"]');
  await own.getByLabel('Your message').fill('same origin');
  await own.keyboard.press('Enter');
  await own.getByRole('log').getByText('you said: same origin', { exact: true }).waitFor();
});
