/**
 * End to end: the host with the socketio channel and the built-in moodbot, the web chat page in headless Chromium
 * (Debian's /usr/bin/chromium driven by playwright-core; no browser download). No skipping: without Chromium the test
 * fails and says how to install it (`apt-get install chromium`; .ci/run does).
 */
import test from 'ava';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { RulesBot, defaultBotPath } from '#src/bots/rules.js';
import SocketIOInput from '../channels/socketio/index.js';
import { SESSION_STORAGE_KEY } from '../channels/socketio/webchat.js';
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
  t.regex(sessionId ?? '', /^[0-9a-f]{32}$/);
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

  t.deepEqual(bot.received.map((m) => m.senderId), [sessionId, sessionId, sessionId], 'one sender, before and after the reload');
  t.deepEqual(bot.received.map((m) => m.text), ['hello', '/mood_unhappy', 'bye']);
  t.deepEqual(problems, []);

  // The server side goes away: the page shows that it is reconnecting.
  await channel.close();
  await page.waitForSelector('html[data-connection="reconnecting"]');
  t.true(await page.locator('#banner').isVisible());
  t.regex((await page.getByRole('status').textContent()) ?? '', /Reconnecting/);
});
